#!/usr/bin/env bash
# Install everything atomfs needs on a fresh Debian machine (idempotent), then build.
# Needs root for apt-get (CI and the project machines run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mksquashfs >/dev/null || need_apt+=(squashfs-tools)
command -v veritysetup >/dev/null || need_apt+=(cryptsetup-bin)
command -v squashfuse_ll >/dev/null || need_apt+=(squashfuse)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
command -v getfattr >/dev/null || need_apt+=(attr)
command -v fio >/dev/null || need_apt+=(fio)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v flock >/dev/null || need_apt+=(util-linux)
command -v systemd-escape >/dev/null || need_apt+=(systemd)
command -v ss >/dev/null || need_apt+=(iproute2)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v python3 >/dev/null || need_apt+=(python3)
command -v gensquashfs >/dev/null || need_apt+=(squashfs-tools-ng)
command -v mkfs.erofs >/dev/null || need_apt+=(erofs-utils)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v lxc-usernsexec >/dev/null || need_apt+=(lxc)
command -v systemd-nspawn >/dev/null || need_apt+=(systemd-container)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# corepack's signature check fails on these machines: install the pinned pnpm with npm.
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "9.15.9" ]; then
  npm install -g pnpm@9.15.9 >/dev/null 2>&1
fi
pnpm install --frozen-lockfile --reporter=silent
pnpm run -s build
