#!/bin/bash
# PID 1 of the test guest (see test/vm/run.sh): the host's / read-only under a tmpfs overlay.
# Sets up what a Debian host with device-mapper has (proc, sys, devtmpfs, udev, the dm-verity,
# loop, squashfs, erofs, overlay and fuse modules), runs the kernel-path scenarios as root and reports
# "ATOMFS-VM-STATUS <exit code>" on the console and in /out/status before powering off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
cd "$(dirname "$0")/../.." || exit 1

finish() {
  echo "ATOMFS-VM-STATUS $1"
  [ -d /out ] && echo "$1" > /out/status
  sync
  echo o > /proc/sysrq-trigger
  sleep 30
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
for d in /run /dev/shm; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
chmod 0755 /run
# /tmp and /var/tmp on ext4 (the scratch disk): tests need user.* xattrs, which 6.1's tmpfs lacks.
modprobe virtio_blk && modprobe ext4 && mkdir -p /scratch && mount -t ext4 /dev/vda /scratch ||
  { echo "vm-guest: no scratch disk"; finish 2; }
for d in tmp var-tmp; do mkdir -p "/scratch/$d" && chmod 1777 "/scratch/$d"; done
# A checkout under /tmp or /var/tmp (CI may clone there) would be hidden by those mounts: it is
# reached through /checkout instead (the tests find everything relative to their own files).
case "$(pwd -P)/" in
  /tmp/* | /var/tmp/*)
    mkdir -p /checkout && mount --bind "$(pwd -P)" /checkout && cd /checkout || { echo "vm-guest: cannot bind the checkout"; finish 2; }
    ;;
esac
mount --bind /scratch/tmp /tmp
mount --bind /scratch/var-tmp /var/tmp
mkdir -p /out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /out || echo "vm-guest: no /out share"
hostname atomfs-vm
ip link set lo up 2>/dev/null
# Settings from run.sh (VM_TEST_ARGS, VM_TEST_FILES).
[ -f /out/env ] && . /out/env

for m in loop dm_mod dm_verity squashfs erofs overlay fuse; do
  modprobe "$m" || { echo "vm-guest: modprobe $m failed"; finish 2; }
done
# udev makes /dev/mapper/<name> and tells libdevmapper when it is ready, as on a real host.
if [ -x /lib/systemd/systemd-udevd ]; then
  /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/null
  udevadm trigger --action=add --subsystem-match=block --subsystem-match=misc 2>/dev/null
  udevadm settle --timeout=20 2>/dev/null
fi
# Kernel messages (dm-verity's "data block N is corrupted", expected in the scenarios) go to the
# log, not over the test output; the log's end is shown when something failed.
dmesg -n 1
echo "vm-guest: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB; $(veritysetup --version)"

export ATOMFS_VM_GUEST=1
if [ -n "${VM_SHELL_CMD:-}" ]; then
  # For investigating: run this command instead of the tests (VM_SHELL_CMD=... test/vm/run.sh).
  bash -c "$VM_SHELL_CMD"
  finish $?
fi
read -r -a files <<< "${VM_TEST_FILES:-test/dist/vm/kernel-dm-verity.test.js packages/atomfs/dist/test/dm-verity.test.js}"
start=$(date +%s)
node --test --test-reporter=spec --test-concurrency=1 ${VM_TEST_ARGS:-} "${files[@]}"
rc=$?
echo "vm-guest: tests took $(( $(date +%s) - start )) s"
# Nothing may be left behind by the scenarios.
left=$(dmsetup ls 2>/dev/null | grep -v 'No devices found')
loops=$(losetup -a)
if [ -n "$left" ] || [ -n "$loops" ]; then
  echo "vm-guest: left behind: dm [$left] loop [$loops]"
  [ $rc -eq 0 ] && rc=3
fi
if [ $rc -ne 0 ]; then
  echo "vm-guest: the kernel log's end:"
  dmesg | tail -40
fi
finish $rc
