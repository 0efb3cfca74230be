#!/usr/bin/env bash
# Rebuild the sample images in sample/ (committed; run only to change them): a squashfs image
# and a two-layer OCI layout in stacker's format (squashfs + dm-verity data appended by
# veritysetup, root hashes in the layer annotations). Needs root (mknod) and a built tree.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$work/base top=$work/top
mkdir -p $base/{etc,bin,usr/share/doc/sample,var/empty,dev} $top/etc $top/usr/share/doc/sample
printf 'NAME="atomfs sample"\nID=atomfs-sample\nVERSION_ID=1\n' > $base/etc/os-release
echo sample > $base/etc/hostname
printf '#!/bin/sh\necho hello from the atomfs sample image\n' > $base/bin/hello
chmod 755 $base/bin/hello
ln -s hello $base/bin/hi
seq 1 20000 > $base/usr/share/doc/sample/numbers.txt
echo "A small image for the README demo and the tests." > $base/usr/share/doc/sample/README
ln $base/usr/share/doc/sample/README $base/usr/share/doc/sample/README.hardlink
mknod $base/dev/null c 1 3
setfattr -n user.sample -v demo $base/etc/hostname
# The upper layer changes things the way an overlayfs upper dir records them.
printf 'NAME="atomfs sample"\nID=atomfs-sample\nVERSION_ID=2\n' > $top/etc/os-release
echo "Welcome to the atomfs sample (top layer)." > $top/etc/motd
mknod $top/usr/share/doc/sample/numbers.txt c 0 0   # whiteout: deleted in this layer
find $base $top -exec touch -h -d '2024-01-01 00:00:00' {} +
mksquashfs $base sample/sample.sqfs -noappend -quiet -no-progress -comp zstd -all-root >/dev/null
for l in base top; do
  mksquashfs $work/$l $work/$l.sqfs -noappend -quiet -no-progress -comp zstd -all-root >/dev/null
  size=$(stat -c %s $work/$l.sqfs)   # mksquashfs pads to 4096: this is the hash offset
  veritysetup format $work/$l.sqfs $work/$l.sqfs --hash-offset=$size --data-blocks=$((size / 4096)) \
    | awk '/Root hash:/ {print $3}' > $work/$l.root
done
rm -rf sample/oci
node --input-type=module -e "
import { writeLayout } from './packages/oci/dist/src/index.js';
import { readFileSync } from 'node:fs';
const root = (l) => readFileSync('$work/' + l + '.root', 'utf8').trim();
await writeLayout('sample/oci', { tag: 'sample', layers: [
  { file: '$work/base.sqfs', rootHash: root('base') },
  { file: '$work/top.sqfs', rootHash: root('top') },
] });
"
du -sh sample/oci sample/sample.sqfs
