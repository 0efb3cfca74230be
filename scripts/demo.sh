#!/usr/bin/env bash
# The main job on the sample image that ships in the repo: set up, then show what atomfs does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
img=sample/sample.sqfs
echo "== atomfs sqfs info $img"
bin/atomfs sqfs info "$img"
echo "== atomfs sqfs ls -l $img"
bin/atomfs sqfs ls -l "$img"
echo "== atomfs sqfs cat $img /etc/os-release"
bin/atomfs sqfs cat "$img" /etc/os-release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== atomfs sqfs extract $img $out/rootfs"
bin/atomfs sqfs extract "$img" "$out/rootfs"
ls -la "$out/rootfs"
