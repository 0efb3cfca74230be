#!/usr/bin/env bash
# Rebuild the golden images in test/golden/ (committed; run only to change them): small squashfs
# images of one tree, one per compressor, each with what independent tools said of it when it
# was made: `unsquashfs -lln` (the listing) and sha256sum of every regular file of the source.
# test/golden.test.ts holds atomfs to them without root and without squashfs-tools installed.
# Needs root (mknod, chown) and squashfs-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p $src/{bin,etc,dev,srv/deep/er/still,empty} "$src/with space"
printf '#!/bin/sh\necho golden\n' > $src/bin/tool && chmod 4755 $src/bin/tool
ln -s tool $src/bin/link
ln -s /etc/hostname $src/etc/abs-link
echo golden > $src/etc/hostname
ln $src/etc/hostname $src/etc/hostname.hard
seq 1 30000 > $src/srv/numbers.txt
head -c 60000 /dev/urandom > $src/srv/random.bin
truncate -s 1M $src/srv/sparse && printf 'end' >> $src/srv/sparse
echo deep > $src/srv/deep/er/still/file
echo spaced > "$src/with space/a b.txt"
printf '' > $src/empty/zero
mknod $src/dev/null c 1 3
mknod $src/dev/loop9 b 7 9
mkfifo $src/dev/fifo
chown 1000:1000 $src/srv/numbers.txt
chmod 0640 $src/srv/numbers.txt
find $src -exec touch -h -d '2024-02-03 04:05:06' {} +
rm -f test/golden/*
for comp in gzip xz lzo lz4 zstd; do
  img=test/golden/tree-$comp.sqfs
  mksquashfs $src $img -noappend -quiet -no-progress -comp $comp -b 16384 >/dev/null
  unsquashfs -lln $img > test/golden/tree-$comp.unsquashfs-lln
done
(cd $src && find . -type f -exec sha256sum {} + | sed 's| \./| /|' | sort -k2) > test/golden/tree.sha256sum
ls -l test/golden
