#!/usr/bin/env bash
# Registry benchmark: push and pull a 1 GiB single-layer image and a 200-layer
# image with skopeo, against drydock's embedded registry and CNCF Distribution
# 2.8 (Debian's docker-registry) in the same run; prints MiB/s, the ratio and
# the peak RSS of both registries. See docs/performance.md.
#
# Usage: bash scripts/bench/registry.sh [--only distribution|drydock] [--rounds N]
#
# Environment:
#   DRYDOCK_BIN         use this drydock binary instead of `cargo build --release -p drydock`
#   BENCH_ROUNDS        rounds per measurement, median reported (default 3)
#   BENCH_BIG_MIB       size of the single large layer in MiB (default 1024)
#   BENCH_SMALL_LAYERS  number of small layers (default 200)
#   BENCH_FIXTURES      fixture cache (default target/bench-fixtures/registry)
#   DISTRIBUTION_BIN    Distribution binary (default /usr/bin/docker-registry)
#
# Exits non-zero only on a functional failure (a tool missing, a copy failing,
# a digest mismatch), never because a performance target was missed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

for arg in "$@"; do
    if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
        exec python3 "$here/registry.py" --help
    fi
done

only=""
for ((i = 1; i <= $#; i++)); do
    if [[ "${!i}" == "--only" ]]; then
        j=$((i + 1)); only="${!j:-}"
    elif [[ "${!i}" == --only=* ]]; then
        only="${!i#--only=}"
    fi
done

distribution_bin="${DISTRIBUTION_BIN:-/usr/bin/docker-registry}"

# Tools: skopeo, python3 and Distribution. scripts/install-test-deps.sh installs
# them (idempotently, from Debian's packages) when it exists.
if [[ -f scripts/install-test-deps.sh ]]; then
    bash scripts/install-test-deps.sh
fi
missing=()
command -v skopeo >/dev/null 2>&1 || missing+=("skopeo (apt-get install skopeo)")
command -v python3 >/dev/null 2>&1 || missing+=("python3")
if [[ "$only" != "drydock" && ! -x "$distribution_bin" ]]; then
    missing+=("$distribution_bin (apt-get install docker-registry: CNCF Distribution 2.8)")
fi
if ((${#missing[@]})); then
    echo "[bench] missing tools: ${missing[*]}" >&2
    echo "[bench] install them (scripts/install-test-deps.sh, or apt-get install the packages above) and retry" >&2
    exit 2
fi
if [[ "$only" != "drydock" ]]; then
    version="$("$distribution_bin" --version 2>/dev/null || true)"
    echo "[bench] Distribution: $version" >&2
    [[ "$version" == *" 2.8"* || "$version" == *" v2.8"* ]] ||
        echo "[bench] warning: expected CNCF Distribution 2.8, got: $version" >&2
fi

drydock_args=()
if [[ "$only" != "distribution" ]]; then
    if [[ -n "${DRYDOCK_BIN:-}" ]]; then
        drydock_bin="$DRYDOCK_BIN"
    else
        echo "[bench] building drydock (cargo build --release -p drydock)" >&2
        if ! cargo build --release -p drydock >&2; then
            echo "[bench] cargo build failed; fix the workspace, or point DRYDOCK_BIN at a drydock binary" >&2
            exit 2
        fi
        drydock_bin="${CARGO_TARGET_DIR:-$repo/target}/release/drydock"
    fi
    [[ -x "$drydock_bin" ]] || { echo "[bench] drydock binary not found: $drydock_bin" >&2; exit 2; }
    drydock_args=(--drydock "$drydock_bin")
fi

fixtures="${BENCH_FIXTURES:-$repo/target/bench-fixtures/registry}"
mkdir -p "$fixtures"

# The Python driver stops its registries and removes its temp dirs itself
# (try/finally, SIGTERM/SIGHUP handled); this trap forwards an interrupt to it
# and waits, so nothing outlives the script.
driver_pid=""
cleanup() {
    if [[ -n "$driver_pid" ]] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        wait "$driver_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

python3 "$here/registry.py" --fixtures "$fixtures" --distribution "$distribution_bin" \
    "${drydock_args[@]}" "$@" &
driver_pid=$!
set +e
wait "$driver_pid"
rc=$?
set -e
driver_pid=""
exit "$rc"
