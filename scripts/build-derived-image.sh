#!/usr/bin/env bash
# Builds an image on top of another the way a Dockerfile's RUN lines do: each
# STEP runs inside the image (buildah run with chroot isolation: no daemon, no
# runtime) and is committed as a layer of its own; the result is pushed into
# an OCI layout, its new layers compressed with COMPRESSION (gzip or zstd).
# Needs root and buildah (scripts/install-test-deps.sh).
#
#   scripts/build-derived-image.sh BASE_LAYOUT BASE_TAG OUT_LAYOUT TAG COMPRESSION STEP...
#   scripts/build-derived-image.sh img/debian bookworm-apps img/app app zstd 'apt-get remove -y curl'
set -euo pipefail

base_layout=$(realpath "${1:?usage: $0 BASE_LAYOUT BASE_TAG OUT_LAYOUT TAG COMPRESSION STEP...}")
base_tag=${2:?base tag}
# buildah takes transport paths with no '..' in them.
out=$(realpath -m "${3:?output layout}")
tag=${4:?tag}
compression=${5:?gzip or zstd}
shift 5
(($#)) || { echo "$0: no STEP given" >&2; exit 2; }
command -v buildah >/dev/null || { echo "$0: buildah is missing; run scripts/install-test-deps.sh" >&2; exit 1; }

driver=${BUILDAH_STORAGE_DRIVER:-vfs}
b() { buildah --storage-driver "$driver" "$@"; }
images=()
ctr=$(b from --quiet "oci:$base_layout:$base_tag")
cleanup() {
  b rm "$ctr" >/dev/null 2>&1 || true
  for image in "${images[@]}"; do b rmi -f "$image" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
for step in "$@"; do
  b run --isolation chroot "$ctr" -- sh -ec "$step" >&2
  image=$(b commit --quiet --format oci "$ctr")
  images+=("$image")
  b rm "$ctr" >/dev/null
  ctr=$(b from --quiet "$image")
done
b push --quiet --format oci --compression-format "$compression" "${images[-1]}" "oci:$out:$tag" >&2
echo "Built $out:$tag ($# layers on $base_tag, $compression)" >&2
