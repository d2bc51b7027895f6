#!/usr/bin/env bash
# Patcher benchmark: `drydock patch` of a Debian 12 image (nginx, curl,
# openssl; ~120 packages) held in drydock's embedded registry, cold and warm,
# beside buildah doing the same upgrade (`buildah from`, `buildah run
# --isolation chroot -- apt-get install --only-upgrade <the same packages>`,
# `buildah commit` to the registry) in the same run. Prints medians, peak RSS
# and the ratios buildah/drydock. See docs/performance.md.
#
# Usage: bash scripts/bench/patch.sh [--only drydock|buildah]
#
# Environment:
#   DRYDOCK_BIN      use this drydock binary instead of `cargo build --release -p drydock`
#   BENCH_RUNS       warm runs per tool (default 5); BENCH_COLD_RUNS cold runs (default 3)
#   BENCH_RSS_RUNS   extra runs per row under GNU time for peak RSS (default 2)
#   BENCH_FIXTURES   work directory (default target/bench-fixtures/patch)
#   BENCH_LAYOUT     the image's OCI layout, tag 12-nginx (default target/bench-fixtures/scan/debian,
#                    shared with scripts/bench/scan.sh; built here when missing)
#   BENCH_MAX_LOAD   wait (up to BENCH_MAX_WAIT s, default 600) until the 1-minute load average is below this (default 0.8)
#   BUILDAH_STORAGE_DRIVER  buildah's storage driver (default overlay)
#
# Needs root (debootstrap once, buildah's chroot isolation) and the network
# (deb.debian.org: both tools fetch the same suites). Exits non-zero only on a
# functional failure, never because a performance target was missed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

only=""
while (($#)); do
    case "$1" in
    --only) only="${2:?--only drydock|buildah}"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[bench] unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$only" in "" | drydock | buildah) ;; *) echo "[bench] --only drydock|buildah" >&2; exit 2 ;; esac
if [[ $(id -u) -ne 0 ]]; then echo "[bench] needs root (buildah --isolation chroot, debootstrap)" >&2; exit 2; fi

fixtures="${BENCH_FIXTURES:-$repo/target/bench-fixtures/patch}"
layout="${BENCH_LAYOUT:-$repo/target/bench-fixtures/scan/debian}"
tag="12-nginx"
mkdir -p "$fixtures"

# Tools: buildah, umoci, debootstrap (scripts/install-test-deps.sh) and GNU time.
bash scripts/install-test-deps.sh
if [[ ! -x /usr/bin/time ]]; then
    echo "[bench] installing GNU time (apt-get install time)" >&2
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
        echo "[bench] GNU time unavailable: peak RSS will read n/a" >&2
fi
command -v buildah >/dev/null || { echo "[bench] buildah missing (apt-get install buildah)" >&2; exit 2; }
command -v unshare >/dev/null || { echo "[bench] unshare missing (util-linux)" >&2; exit 2; }

# 1. The image, built once (the same build as scripts/bench/scan.sh, and the same cache).
if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
    echo "[bench] building Debian 12 + nginx, curl, openssl into $layout:$tag" >&2
    bash scripts/build-debian-image.sh bookworm "$layout" "$tag" http://deb.debian.org/debian nginx,curl,openssl
fi
echo "[bench] image $layout:$tag: $(python3 "$here/scan.py" packages "$layout" "$tag")" >&2

# 2. drydock. The binary is copied, so a concurrent cargo build cannot swap it mid-run.
if [[ -n "${DRYDOCK_BIN:-}" ]]; then
    drydock_bin="$DRYDOCK_BIN"
else
    echo "[bench] building drydock (cargo build --release -p drydock)" >&2
    cargo build --release -p drydock >&2
    drydock_bin="${CARGO_TARGET_DIR:-$repo/target}/release/drydock"
fi
[[ -x "$drydock_bin" ]] || { echo "[bench] drydock binary not found: $drydock_bin" >&2; exit 2; }
[[ "$drydock_bin" -ef "$fixtures/drydock.bin" ]] || cp "$drydock_bin" "$fixtures/drydock.bin"
drydock_bin="$fixtures/drydock.bin"

# The machine, for the record.
echo "[bench] date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' + uncommitted changes under crates/')" >&2
echo "[bench] cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; RAM $(free -g | awk '/Mem:/{print $2}') GiB" >&2
echo "[bench] disk: $(df -hT "$fixtures" | awk 'NR==2{print $1, $2, $3}')" >&2
echo "[bench] deb.debian.org: $(getent hosts deb.debian.org | head -1 | awk '{print $1}')" >&2
echo "[bench] drydock: $("$drydock_bin" --version 2>/dev/null); $(buildah --version)" >&2

wait_for_quiet() {
    local max="${BENCH_MAX_LOAD:-0.8}" limit="${BENCH_MAX_WAIT:-600}" waited=0
    while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$max" 'BEGIN{exit !(l > m)}'; do
        if ((waited >= limit)); then
            echo "[bench] load average still $(cut -d' ' -f1 /proc/loadavg) after ${limit} s; measuring anyway" >&2
            return
        fi
        ((waited == 0)) && echo "[bench] load average $(cut -d' ' -f1 /proc/loadavg) > $max; waiting for a quieter machine" >&2
        sleep 15; waited=$((waited + 15))
    done
}

wait_for_quiet
echo "[bench] uptime: $(uptime)" >&2
python3 "$here/patch.py" run --drydock "$drydock_bin" --layout "$layout" --tag "$tag" --workdir "$fixtures" \
    --runs "${BENCH_RUNS:-5}" --cold-runs "${BENCH_COLD_RUNS:-3}" --rss-runs "${BENCH_RSS_RUNS:-2}" \
    ${only:+--only "$only"} --storage-driver "${BUILDAH_STORAGE_DRIVER:-overlay}" \
    --json "$fixtures/patch-results.json"
