#!/usr/bin/env bash
# `pnpm bench`: installs what is needed, builds, runs every issue benchmark (bench/index.ts) and
# writes bench/results/latest.json. Needs root: loop/FUSE mounts and dropping the page cache.
# Environment: RUNS (default 5), ONLY=extract,fuse,verity,latency,rss,shapes,workloads (any subset), ATOMFS_BENCH_DIR
# (datasets, default /var/tmp/atomfs-bench). Then `node bench/dist/readme-table.js --write` updates README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench: run as root (mounts, drop_caches)" >&2
  exit 1
fi
bash scripts/setup.sh
exec node bench/dist/index.js "$@"
