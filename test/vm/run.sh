#!/usr/bin/env bash
# The kernel dm-verity path of `atomfs mount`, run for real: boots Debian's kernel (6.1, where
# dm-verity, loop, squashfs and overlayfs are modules) in qemu with this machine's / shared
# read-only over virtio-9p under a tmpfs overlay (so the guest has this checkout, node,
# veritysetup and mksquashfs as they are here; /tmp on an ext4 scratch disk), runs
# test/vm/kernel-dm-verity.test.ts and packages/atomfs/test/dm-verity.test.ts (built) as root in
# the guest — where device-mapper exists and they do not skip — and exits with their status
# (non-zero also when the guest could not boot or run them, or left a dm or loop device). Run as root.
#
# Environment: VM_ACCEL=kvm|tcg (default: try KVM, fall back to TCG), VM_MEM (MiB, default 1024),
# VM_CPUS (default 2), VM_TIMEOUT (seconds, default 1500), VM_NO_SETUP=1 (skip scripts/setup.sh),
# VM_TEST_ARGS (extra node --test arguments), VM_TEST_FILES (test files, relative to the checkout),
# VM_SHELL_CMD (a bash command to run in the guest instead of the tests, for investigating).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
[ "$(id -u)" = 0 ] || { echo "Error: test/vm/run.sh needs root" >&2; exit 1; }
t0=$(date +%s)

# ---- what the VM run needs, installed when missing ---------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The initramfs has no libc: its busybox must be the static one (ldd fails on static binaries).
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 && /bin/busybox --list | grep -qx switch_root; } || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v modprobe >/dev/null || need+=(kmod)
command -v dmsetup >/dev/null || need+=(dmsetup)
[ -x /lib/systemd/systemd-udevd ] || need+=(udev)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  echo "vm: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "${VM_NO_SETUP:-}" = 1 ] || bash scripts/setup.sh

# Debian's kernel (6.1 on bookworm) with its modules; the newest if several.
kver=""
for k in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V); do
  v=${k#/boot/vmlinuz-}
  modinfo -k "$v" dm-verity >/dev/null 2>&1 && kver=$v
done
[ -n "$kver" ] || { echo "Error: no Debian kernel in /boot whose modules (/lib/modules) have dm-verity" >&2; exit 1; }

# ---- the initramfs: busybox + what mounting the shared root needs ------------------------------
work=$(mktemp -d /var/tmp/atomfs-vm.XXXXXX)
qemu_pid=""
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ir/bin" "$work/ir/mods" "$work/ir/proc" "$work/ir/sys" "$work/ir/dev" "$work/out"
cp /bin/busybox "$work/ir/bin/busybox"
cp test/vm/initramfs-init "$work/ir/init"
chmod 0755 "$work/ir/init"
# Dependency order as modprobe resolves it (virtio_ring before virtio, 9pnet before 9p, ...).
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe -S "$kver" --show-depends "$m"; done |
  awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' | while read -r f; do
    case "$f" in
      *.ko) cp "$f" "$work/ir/mods/" ;;
      *.ko.xz) xz -dc "$f" > "$work/ir/mods/$(basename "$f" .xz)" ;;
      *.ko.zst) zstd -qdc "$f" > "$work/ir/mods/$(basename "$f" .zst)" ;;
      *) echo "Error: unknown module file $f" >&2; exit 1 ;;
    esac
    basename "${f%.xz}" | sed 's/\.zst$//' >> "$work/ir/mods/order"
  done
(cd "$work/ir" && find . | cpio -o -H newc --quiet | gzip -1 > "$work/initrd.gz")

# The guest's /tmp and /var/tmp: ext4 on a sparse disk (6.1's tmpfs has no user.* xattrs, which
# the test trees and stacker-style layers carry).
truncate -s 4G "$work/scratch.img"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$work/scratch.img"

{
  printf 'VM_TEST_ARGS=%q\n' "${VM_TEST_ARGS:-}"
  [ -n "${VM_TEST_FILES:-}" ] && printf 'VM_TEST_FILES=%q\n' "$VM_TEST_FILES"
  [ -n "${VM_SHELL_CMD:-}" ] && printf 'VM_SHELL_CMD=%q\n' "$VM_SHELL_CMD"
} > "$work/out/env"

qemu_common=(
  -m "${VM_MEM:-1024}" -smp "${VM_CPUS:-2}" -display none -monitor none -serial stdio -no-reboot -net none
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.gz"
  -virtfs "local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$work/out,mount_tag=out,security_model=none,multidevs=remap"
  -drive "file=$work/scratch.img,if=virtio,format=raw,cache=unsafe"
)
cmdline="console=ttyS0 quiet panic=-1 atomfs.dir=$repo"

# ---- KVM when it boots here, else TCG ----------------------------------------------------------
# On this project's machines nested KVM hangs in early boot (every -cpu tried) or qemu asserts
# on an MSR; TCG boots the same kernel in ~10 s. A probe boot finds out in seconds.
accel_args=()
case "${VM_ACCEL:-auto}" in
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  kvm) accel_args=(-accel kvm -cpu host) ;;
  auto)
    # thread=multi: one host thread per guest cpu (measured: two busy guest processes in the time of one).
    accel_args=(-accel tcg,thread=multi -cpu max)
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
      probe=$(timeout 15 qemu-system-x86_64 -accel kvm -cpu host "${qemu_common[@]}" -append "$cmdline atomfs.probe" </dev/null 2>&1 || true)
      if grep -q ATOMFS-VM-BOOTED <<< "$probe"; then accel_args=(-accel kvm -cpu host); fi
    fi ;;
  *) echo "Error: VM_ACCEL must be kvm, tcg or auto" >&2; exit 1 ;;
esac
echo "vm: kernel $kver, ${accel_args[*]}, ${VM_MEM:-1024} MiB, ${VM_CPUS:-2} cpus (set-up took $(( $(date +%s) - t0 )) s)" >&2

# ---- the run -----------------------------------------------------------------------------------
t1=$(date +%s)
set +e
timeout --foreground -k 10 "${VM_TIMEOUT:-1500}" qemu-system-x86_64 "${accel_args[@]}" "${qemu_common[@]}" \
  -append "$cmdline" </dev/null 2>&1 | tee "$work/console.log" | sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g'
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - t1 ))
status=$(cat "$work/out/status" 2>/dev/null || true)
if [ -z "$status" ]; then
  status=$(sed -n 's/.*ATOMFS-VM-STATUS \([0-9]*\).*/\1/p' "$work/console.log" | tail -1)
fi
if [ -z "$status" ]; then
  [ "$qrc" = 124 ] && why="timed out after ${VM_TIMEOUT:-1500} s" || why="qemu exited $qrc"
  echo "vm: FAILED: the guest reported no result ($why)" >&2
  exit 1
fi
echo "vm: guest finished in $elapsed s (whole run $(( $(date +%s) - t0 )) s), status $status" >&2
[ "$status" = 0 ] || { echo "vm: FAILED: guest tests exited $status" >&2; exit 1; }
echo "vm: passed" >&2
