#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds, runs every test.
# Runs as root (tests compare with the kernel's own squashfs/overlayfs mounts and create users).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Distributions ship /dev/fuse as 0666; this machine kind ships 0600. Unprivileged tests need it.
[ -e /dev/fuse ] && chmod 0666 /dev/fuse
mapfile -t files < <(find packages/*/dist/test test/dist -name '*.test.js' 2>/dev/null | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# The kernel dm-verity path needs device-mapper, which this machine kind lacks: a VM runs it
# (test/vm/run.sh, ~5 min), first, so the suite's summary stays the last lines.
vm_rc=0
[ "${ATOMFS_SKIP_VM:-}" = 1 ] || VM_NO_SETUP=1 bash test/vm/run.sh || vm_rc=$?
rc=0
node --test --test-reporter=spec "$@" "${files[@]}" || rc=$?
[ "$vm_rc" = 0 ] || echo "test/run.sh: the VM run (test/vm/run.sh) failed" >&2
[ "$rc" = 0 ] || exit "$rc"
exit "$vm_rc"
