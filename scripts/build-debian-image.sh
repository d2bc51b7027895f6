#!/usr/bin/env bash
# Builds a real Debian or Ubuntu image from the distribution's archive into an
# OCI image layout: debootstrap --variant=minbase, then umoci to pack the root
# filesystem as one layer. Needs root (debootstrap) and network access to the
# archive. The result is the archive's release as published, so it lacks the
# security updates issued since: a realistic target for scanning and patching.
# debootstrap verifies the suite's Release signature against KEYRING when it
# is set, else against the keyring its script names (Debian's is installed by
# scripts/install-test-deps.sh); a build it could not verify fails.
# ARCH builds for another architecture (arm64): debootstrap's first stage
# on the host, the second in a chroot the host runs through qemu-user's
# binfmt_misc emulator (scripts/install-test-deps.sh registers it).
#
#   scripts/build-debian-image.sh SUITE LAYOUT_DIR TAG [MIRROR] [EXTRA_PACKAGES]
#   scripts/build-debian-image.sh bookworm .drydock/images/debian 12
#   KEYRING=ubuntu-archive-keyring.gpg \
#     scripts/build-debian-image.sh noble .drydock/images/ubuntu 24.04 http://archive.ubuntu.com/ubuntu
set -euo pipefail

suite=${1:?usage: $0 SUITE LAYOUT_DIR TAG [MIRROR] [EXTRA_PACKAGES]}
layout=${2:?layout directory}
tag=${3:?tag}
mirror=${4:-http://deb.debian.org/debian}
extra=${5:-}
keyring=${KEYRING:-}
arch=${ARCH:-$(dpkg --print-architecture)}
foreign=()
if [[ $arch != "$(dpkg --print-architecture)" ]]; then foreign=(--arch="$arch" --foreign); fi
if [[ -n $keyring && ! -r $keyring ]]; then echo "$0: KEYRING $keyring is not readable" >&2; exit 1; fi

for tool in debootstrap umoci; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing; run scripts/install-test-deps.sh" >&2; exit 1; }
done
if [[ $(id -u) -ne 0 ]]; then echo "$0: debootstrap needs root" >&2; exit 1; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

script=()
# Debian 12's debootstrap has no script for Ubuntu releases newer than it; gutsy's works for them.
if [[ ! -e /usr/share/debootstrap/scripts/$suite ]]; then script=(/usr/share/debootstrap/scripts/gutsy); fi

echo "Building $suite ($arch) from $mirror with debootstrap (a minute or two; longer emulated)..." >&2
debootstrap --variant=minbase "${foreign[@]}" ${extra:+--include="$extra"} ${keyring:+--keyring="$keyring"} \
  "$suite" "$rootfs" "$mirror" "${script[@]}" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}
if ((${#foreign[@]})); then
  chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
fi
# Without its keyring debootstrap only warns, and installs what it downloaded unverified.
if ! grep -q "^I: Valid Release signature" "$work/debootstrap.log"; then
  grep -i "signature\|keyring" "$work/debootstrap.log" >&2 || true
  echo "$0: debootstrap did not verify $suite's Release signature; set KEYRING to the archive's keyring" >&2
  exit 1
fi

# What a container image does not carry: device nodes, caches, downloaded lists.
rm -rf "${rootfs:?}"/dev/* "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*

[[ -f $layout/oci-layout ]] || umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
cp -a "$rootfs"/. "$work/bundle/rootfs/"
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" --os linux --architecture "$arch" \
  --config.cmd /bin/bash --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umoci gc --layout "$layout"
echo "Built $layout:$tag" >&2
