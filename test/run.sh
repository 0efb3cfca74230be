#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds, runs every test.
# Runs as root (tests compare with the kernel's own squashfs/overlayfs mounts and create users).
# Two tiers (and the VM between them): first the packages' own tests and the golden images (decoders, formats, unit tests:
# quick, no FUSE mounts), then the FUSE package and the suites that drive the CLI, mounts, the
# kernel's mounts and real clients. Both always run; the exit status is non-zero if either failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Distributions ship /dev/fuse as 0666; this machine kind ships 0600. Unprivileged tests need it.
[ -e /dev/fuse ] && chmod 0666 /dev/fuse
mapfile -t fast < <(find packages/*/dist/test test/dist/golden.test.js -name '*.test.js' -not -path 'packages/fuse/*' 2>/dev/null | sort)
mapfile -t slow < <(find packages/fuse/dist/test test/dist -name '*.test.js' -not -name golden.test.js 2>/dev/null | sort)
if [ ${#fast[@]} -eq 0 ] || [ ${#slow[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
status=0
echo "== tier 1: ${#fast[@]} files: packages' own tests and golden images"
node --test --test-reporter=spec "$@" "${fast[@]}" || status=1
# The kernel dm-verity path needs device-mapper, which this machine kind lacks: a VM runs it
# (test/vm/run.sh, ~5 min; ATOMFS_SKIP_VM=1 skips it), before tier 2 so that the suite's
# summary stays the last lines.
if [ "${ATOMFS_SKIP_VM:-}" != 1 ]; then
  echo "== the kernel dm-verity path, in a VM"
  VM_NO_SETUP=1 bash test/vm/run.sh || { echo "test/run.sh: the VM run (test/vm/run.sh) failed" >&2; status=1; }
fi
echo "== tier 2: ${#slow[@]} files: FUSE, CLI, mounts, kernel comparisons, real clients, reliability"
node --test --test-reporter=spec "$@" "${slow[@]}" || status=1
exit $status
