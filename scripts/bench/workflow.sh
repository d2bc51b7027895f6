#!/usr/bin/env bash
# Workflow benchmark: one continuous-patching workflow over 100 tags (20 base
# images x 5 tags) on drydock's embedded registry, package cache warm; prints
# the wall time against the 60 s target and ACR's pacing, and the server's
# idle and peak RSS. See docs/performance.md.
#
# Usage: bash scripts/bench/workflow.sh
# Environment: DRYDOCK_BIN (skip the build), BENCH_BASES (20), BENCH_TAGS_PER_BASE (5),
#              BENCH_PARALLELISM (2), BENCH_FIXTURES (target/bench-fixtures/scan: the image)
# Needs root once, to build the Debian image with debootstrap.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

fixtures="${BENCH_FIXTURES:-$repo/target/bench-fixtures/scan}"
layout="$fixtures/debian"
tag="12-nginx"
if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
  bash scripts/install-test-deps.sh
  bash scripts/build-debian-image.sh bookworm "$layout" "$tag" http://deb.debian.org/debian nginx,curl,openssl
fi
drydock="${DRYDOCK_BIN:-}"
if [[ -z $drydock ]]; then
  cargo build --release --locked -p drydock
  drydock="$repo/target/release/drydock"
fi
python3 "$here/workflow.py" --drydock "$drydock" --layout "$layout" --tag "$tag" \
  --bases "${BENCH_BASES:-20}" --tags-per-base "${BENCH_TAGS_PER_BASE:-5}" \
  --parallelism "${BENCH_PARALLELISM:-2}"
