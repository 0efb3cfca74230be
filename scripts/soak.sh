#!/usr/bin/env bash
# Opt-in long reliability runs (issue 7), as root, after a build:
#   SOAK_SECONDS      load test duration, 16 readers (default 600; CI runs 30)
#   SOAK_READERS      parallel readers (default 16)
#   FUZZ_MOUNT_CASES  mutated images mounted and walked (default 2000; CI runs 100)
#   FUZZ_MOUNT_SEED   fuzz seed (default: the current time, printed so a failure can be replayed)
#   SOAK_ROUNDS       how many times to repeat the fault and security tests (default 3)
# Example: SOAK_SECONDS=3600 FUZZ_MOUNT_CASES=10000 bash scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root (the tests compare with kernel mounts and create users)" >&2; exit 1; }
export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export SOAK_READERS="${SOAK_READERS:-16}"
export FUZZ_MOUNT_CASES="${FUZZ_MOUNT_CASES:-2000}"
export FUZZ_MOUNT_SEED="${FUZZ_MOUNT_SEED:-$(date +%s)}"
rounds="${SOAK_ROUNDS:-3}"
[ -x node_modules/.bin/tsc ] || { echo "soak.sh: run 'bash scripts/setup.sh' first" >&2; exit 1; }
./node_modules/.bin/tsc -b packages/atomfs test
# The user-namespace parts need what distributions ship (this machine kind ships 0600).
chmod 0666 /dev/fuse
echo "soak: load ${SOAK_SECONDS}s x ${SOAK_READERS} readers, fuzz ${FUZZ_MOUNT_CASES} cases (seed ${FUZZ_MOUNT_SEED}), faults+security x ${rounds}"
run() { node --test --test-reporter=spec --test-timeout=$(( (SOAK_SECONDS + FUZZ_MOUNT_CASES * 10 + 900) * 1000 )) "$@"; }
run test/dist/reliability-load.test.js
run test/dist/fuzz-mount.test.js
for i in $(seq 1 "$rounds"); do
  echo "soak: faults and security, round $i of $rounds"
  run test/dist/reliability-faults.test.js test/dist/reliability-security.test.js
done
# Whatever failed above, nothing of these tests may be left running or mounted.
tmp=$(node -p 'require("os").tmpdir()')
left=$(pgrep -fa 'atomfs __serve|sqfs mount' | grep -E "$tmp/atomfs-(rel|fuzz-mount)-" || true)
mounts=$(grep -E " $tmp/atomfs-(rel|fuzz-mount)-" /proc/self/mountinfo || true)
if [ -n "$left$mounts" ]; then printf 'soak: left behind:\n%s\n%s\n' "$left" "$mounts" >&2; exit 1; fi
echo "soak: done"
