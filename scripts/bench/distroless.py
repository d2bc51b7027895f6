#!/usr/bin/env python3
"""Builds a distroless-style Debian 12 image (like gcr.io/distroless/base-debian12) into an OCI layout.

  distroless.py LAYOUT_DIR TAG [--work DIR] [--suite bookworm] [--mirror http://deb.debian.org/debian]

The packages are the ones crates/testkit/src/distroless.rs uses (Google's `base` image's set):
base-files, netbase, tzdata, libc6, libssl3, ca-certificates, zlib1g, libgcc-s1, as today's versions in
Debian's `bookworm` suite (the release as published, no security updates: a realistic scan target).
Each is downloaded from the mirror with its SHA256 checked against the suite's `Packages` index, whose
SHA256 is checked against the suite's `InRelease`, whose signature gpgv checks against
/usr/share/keyrings/debian-archive-keyring.gpg (trivydb.py's download helpers). Then, as distroless
images are made: each `.deb`'s data is extracted into one root filesystem (`dpkg-deb -x`; no maintainer
script runs), its control paragraph (no `Status` field) is written to `var/lib/dpkg/status.d/<name>` and
its md5sums beside it as `<name>.md5sums`. No dpkg, no apt, no shell. umoci packs the root filesystem as
one gzip layer (amd64, linux). Needs root (umoci unpack/repack keep ownership), network, dpkg-deb, umoci.
"""

import argparse
import lzma
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trivydb  # noqa: E402

PACKAGES = ["base-files", "netbase", "tzdata", "libc6", "libssl3", "ca-certificates", "zlib1g", "libgcc-s1"]
STATUS_D = "var/lib/dpkg/status.d"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        raise trivydb.Failure(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return r.stdout


def fetch_debs(suite_name, mirror, arch, names, store):
    """{name: (path, version)} of NAMES' newest versions in the suite, checksums verified."""
    suite = trivydb.Suite("debian", mirror, suite_name, arch)
    with tempfile.TemporaryDirectory() as tmp:
        suite.load(store, tmp, 6 * 3600, False)
    index = suite._index("main", f"binary-{arch}")
    if not index:
        raise trivydb.Failure(f"{suite.url}/InRelease lists no main/binary-{arch} Packages index")
    sha, size = suite.sha256[index]
    by_hash = suite.fields.get("Acquire-By-Hash", "").lower() == "yes"
    urls = ([f"{suite.url}/{os.path.dirname(index)}/by-hash/SHA256/{sha}"] if by_hash else []) + [f"{suite.url}/{index}"]
    path = store.blob(sha, size, urls, f"{suite.url}/{index}")
    with open(path, "rb") as f:
        data = f.read()
    data = lzma.decompress(data) if index.endswith(".xz") else gzip.decompress(data) if index.endswith(".gz") else data
    best = {}
    for fields in trivydb.deb822_paragraphs(data.decode("utf-8", "replace")):
        name = fields.get("Package")
        if name in names and fields.get("Architecture") in (arch, "all"):
            cur = best.get(name)
            if cur is None or trivydb.version_cmp(fields["Version"], cur["Version"]) > 0:
                best[name] = fields
    missing = [n for n in names if n not in best]
    if missing:
        raise trivydb.Failure(f"{suite.url}: no {', '.join(missing)} in {index}")
    out = {}
    for name in names:
        f = best[name]
        deb = store.blob(f["SHA256"], int(f["Size"]), [f"{mirror.rstrip('/')}/{f['Filename']}"], f["Filename"])
        out[name] = (deb, f["Version"])
    return out, suite.fields.get("Date", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layout")
    ap.add_argument("tag")
    ap.add_argument("--work", default=trivydb.DEFAULT_WORK, help="download cache (shared with trivydb.py)")
    ap.add_argument("--suite", default="bookworm")
    ap.add_argument("--mirror", default="http://deb.debian.org/debian")
    ap.add_argument("--arch", default="amd64")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("distroless.py: needs root (umoci keeps the files' ownership)")
    for tool in ("umoci", "dpkg-deb", "gpgv"):
        if not shutil.which(tool):
            sys.exit(f"distroless.py: {tool} is missing (scripts/install-test-deps.sh)")
    layout = os.path.abspath(args.layout)
    image = f"{layout}:{args.tag}"
    try:
        store = trivydb.Store(os.path.abspath(args.work), offline=False)
        debs, date = fetch_debs(args.suite, args.mirror, args.arch, PACKAGES, store)
        with tempfile.TemporaryDirectory(prefix="distroless-") as work:
            if not os.path.exists(os.path.join(layout, "oci-layout")):
                run(["umoci", "init", "--layout", layout])
            run(["umoci", "new", "--image", image])
            bundle = os.path.join(work, "bundle")
            run(["umoci", "unpack", "--image", image, bundle])
            rootfs = os.path.join(bundle, "rootfs")
            status_d = os.path.join(rootfs, STATUS_D)
            os.makedirs(status_d, exist_ok=True)
            for name in PACKAGES:
                deb, _version = debs[name]
                run(["dpkg-deb", "-x", deb, rootfs])
                control = run(["dpkg-deb", "--info", deb, "control"])
                if b"\nStatus:" in b"\n" + control:
                    raise trivydb.Failure(f"{name}: a .deb's control file has a Status field")
                with open(os.path.join(status_d, name), "wb") as f:
                    f.write(control)
                md5 = subprocess.run(["dpkg-deb", "--info", deb, "md5sums"], capture_output=True)
                if md5.returncode == 0 and md5.stdout:
                    with open(os.path.join(status_d, name + ".md5sums"), "wb") as f:
                        f.write(md5.stdout)
            run(["umoci", "repack", "--image", image, bundle])
            run(["umoci", "config", "--image", image, "--os", "linux", "--architecture", args.arch])
            run(["umoci", "gc", "--layout", layout])
    except trivydb.Failure as e:
        sys.exit(f"distroless.py: error: {e}")
    print(f"distroless.py: built {image} from {args.suite} ({date}): "
          + ", ".join(f"{n} {debs[n][1]}" for n in PACKAGES), file=sys.stderr)


if __name__ == "__main__":
    main()
