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
mp="$out/mnt"
mkdir -p "$mp"
echo "== atomfs sqfs mount $img $mp   (our FUSE server)"
bin/atomfs sqfs mount "$img" "$mp"
trap 'bin/atomfs sqfs umount "$mp" 2>/dev/null; rm -rf "$out"' EXIT
ls -la "$mp" "$mp/bin"
cat "$mp/etc/os-release"
echo "== atomfs sqfs umount $mp"
bin/atomfs sqfs umount "$mp"
trap 'rm -rf "$out"' EXIT

oci=sample/oci:sample
rootfs="$out/rootfs-oci"
mkdir -p "$rootfs"
echo "== atomfs mount $oci $rootfs   (2 layers, every block checked against dm-verity)"
bin/atomfs --debug mount "$oci" "$rootfs"
trap 'bin/atomfs umount "$rootfs" 2>/dev/null; rm -rf "$out"' EXIT
find "$rootfs" | sort
echo "-- etc/os-release (from the top layer):"
cat "$rootfs/etc/os-release"
echo "== atomfs verify $rootfs"
bin/atomfs verify "$rootfs"
echo "== atomfs umount $rootfs"
bin/atomfs umount "$rootfs"
trap 'rm -rf "$out"' EXIT
echo "demo done"
