#!/usr/bin/env python3
"""Registry push/pull benchmark: drydock's embedded registry vs CNCF Distribution 2.8.

Called by scripts/bench/registry.sh (which installs the tools and builds drydock);
see docs/performance.md for what is measured and how to read the output.

Standard library only. Linux only (/proc is used for memory and CPU figures).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the fixture format changes so cached layouts are rebuilt.
FIXTURE_VERSION = "3"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

MIB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A functional failure: the script exits non-zero."""


# --------------------------------------------------------------------------
# Fixtures: OCI image layouts written by hand.
# --------------------------------------------------------------------------


class _HashingWriter:
    """File-like sink that hashes and counts what goes through it."""

    def __init__(self, out):
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _write_layer(blobs: Path, name: str, size: int, chunks) -> dict:
    """Write a gzip (level 1) tar layer holding one file of `size` bytes taken
    from the `chunks` iterator. Returns the descriptor plus the diff_id."""
    tmp = blobs / f".tmp-{os.getpid()}-{name.replace('/', '_')}"
    diff = hashlib.sha256()
    with open(tmp, "wb") as raw:
        sink = _HashingWriter(raw)
        # wbits=31: gzip container. Header with mtime 0 for reproducibility.
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)

        def feed(data: bytes) -> None:
            diff.update(data)
            out = comp.compress(data)
            if out:
                sink.write(out)

        feed(_tar_header(name, size))
        written = 0
        for chunk in chunks:
            feed(chunk)
            written += len(chunk)
        if written != size:
            raise BenchError(f"layer {name}: wrote {written} bytes, expected {size}")
        pad = (-size) % 512
        feed(b"\0" * pad)
        feed(b"\0" * 1024)  # end-of-archive marker
        sink.write(comp.flush())
    digest = "sha256:" + sink.sha.hexdigest()
    tmp.rename(blobs / sink.sha.hexdigest())
    return {
        "descriptor": {"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": sink.size},
        "diff_id": "sha256:" + diff.hexdigest(),
    }


def _write_json_blob(blobs: Path, obj) -> dict:
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    hexd = hashlib.sha256(data).hexdigest()
    (blobs / hexd).write_bytes(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}


def _finish_layout(root: Path, tag: str, layers: list[dict], label: str) -> None:
    blobs = root / "blobs" / "sha256"
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Labels": {"dev.drydock.bench": label}},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(len(layers))],
    }
    cfg = _write_json_blob(blobs, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **cfg},
        "layers": [l["descriptor"] for l in layers],
    }
    man = _write_json_blob(blobs, manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **man,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_text(json.dumps(index, indent=2))


def _random_chunks(size: int, chunk: int = 4 * MIB):
    left = size
    while left > 0:
        n = min(chunk, left)
        yield os.urandom(n)
        left -= n


def make_big_layout(root: Path, tag: str, size: int) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = _write_layer(blobs, "data.bin", size, _random_chunks(size))
    _finish_layout(root, tag, [layer], "big")


def make_small_layout(root: Path, tag: str, count: int) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    rng = random.Random(20240101)  # sizes are reproducible; content is random
    layers = []
    for i in range(count):
        size = rng.randint(4 * 1024, 64 * 1024)
        layers.append(_write_layer(blobs, f"layer-{i:03d}.bin", size, _random_chunks(size)))
    _finish_layout(root, tag, layers, "small")


@dataclass
class Fixture:
    key: str          # "1gib" / "200layers"
    title: str        # shown in the table
    layout: Path
    tag: str
    repo: str         # repository name pushed to
    payload: int = 0  # bytes of all blobs (layers + config), the throughput numerator
    layers: int = 0
    manifest_digest: str = ""


def _inspect_layout(fx: Fixture) -> None:
    index = json.loads((fx.layout / "index.json").read_text())
    desc = index["manifests"][0]
    fx.manifest_digest = desc["digest"]
    manifest = json.loads((fx.layout / "blobs" / "sha256" / desc["digest"].split(":", 1)[1]).read_text())
    fx.layers = len(manifest["layers"])
    fx.payload = manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])


def ensure_fixtures(base: Path, big_mib: int, small_count: int) -> list[Fixture]:
    base.mkdir(parents=True, exist_ok=True)
    fixtures = [
        Fixture("1gib", f"{big_mib} MiB, 1 layer" if big_mib != 1024 else "1 GiB, 1 layer",
                base / f"big-{big_mib}mib-v{FIXTURE_VERSION}", "1gib", "bench/big"),
        Fixture("200layers", f"{small_count} small layers",
                base / f"small-{small_count}-v{FIXTURE_VERSION}", "200layers", "bench/small"),
    ]
    makers = {
        "1gib": lambda root: make_big_layout(root, "1gib", big_mib * MIB),
        "200layers": lambda root: make_small_layout(root, "200layers", small_count),
    }
    for fx in fixtures:
        stamp = fx.layout / ".complete"
        if not stamp.exists():
            if fx.layout.exists():
                shutil.rmtree(fx.layout)
            log(f"creating fixture {fx.layout} (once; cached) ...")
            t0 = time.monotonic()
            tmp = fx.layout.with_name(fx.layout.name + ".partial")
            if tmp.exists():
                shutil.rmtree(tmp)
            makers[fx.key](tmp)
            # One-off validation by an independent reader.
            r = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp}:{fx.tag}"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"skopeo inspect rejected the generated layout {tmp}:\n{r.stderr}")
            r = subprocess.run(["skopeo", "inspect", f"oci:{tmp}:{fx.tag}"], capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"skopeo inspect rejected the generated layout {tmp}:\n{r.stderr}")
            tmp.rename(fx.layout)
            stamp.write_text("ok\n")
            log(f"  done in {time.monotonic() - t0:.1f}s")
        _inspect_layout(fx)
    return fixtures


def warm_page_cache(fixtures: list[Fixture]) -> None:
    """Read every source blob once so all timed pushes start with a warm cache."""
    for fx in fixtures:
        for p in (fx.layout / "blobs" / "sha256").iterdir():
            with open(p, "rb") as f:
                while f.read(8 * MIB):
                    pass


# --------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def vm_kib(pid: int, key: str) -> int:
    return int(proc_status(pid)[key].split()[0])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, clear_refs value 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Registry:
    name = "?"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    # Subclasses fill in command().
    def command(self, data_dir: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, round_no: int) -> None:
        run_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-r{round_no}-", dir=self.workdir))
        data_dir = run_dir / "data"
        data_dir.mkdir()
        self.run_dir = run_dir
        self.port = free_port()
        cmd, env = self.command(data_dir)
        self.log_path = run_dir / "server.log"
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env}, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited during start-up (code {self.proc.returncode}):\n"
                                 + self.log_tail())
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                raise BenchError(f"{self.name}: GET /v2/ answered {e.code}; the benchmark needs a registry "
                                 "without authentication") from e
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not answer on {self.host} within 30s:\n" + self.log_tail())
            time.sleep(0.05)

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except (OSError, AttributeError):
            return "(no log)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "run_dir", None) is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None


class Distribution(Registry):
    name = "distribution"

    def __init__(self, workdir: Path, binary: str):
        super().__init__(workdir)
        self.binary = binary

    def command(self, data_dir):
        config = self.run_dir / "config.yml"
        # JSON is valid YAML.
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(data_dir)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "drydock-bench"},
        }, indent=2))
        return [self.binary, "serve", str(config)], {}


class Drydock(Registry):
    name = "drydock"

    def __init__(self, workdir: Path, binary: str, extra: list[str]):
        super().__init__(workdir)
        self.binary = binary
        self.extra = extra

    def command(self, data_dir):
        return ([self.binary, "serve", "--listen", self.host, "--data-dir", str(data_dir), *self.extra],
                {"DRYDOCK_LOG": os.environ.get("DRYDOCK_LOG", "warn")})


# --------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    peak_rss_kib: int | None  # VmHWM during the phase (exact, reset before it)
    cpu_s: float              # registry CPU time (user+sys) during the phase
    threads: int


@dataclass
class Results:
    # (registry, fixture key, op) -> samples
    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=dict)

    def add(self, reg: str, fx: str, op: str, s: Sample) -> None:
        self.samples.setdefault((reg, fx, op), []).append(s)

    def get(self, reg, fx, op) -> list[Sample]:
        return self.samples.get((reg, fx, op), [])


# skopeo (containers/image) keeps a BoltDB "blob info cache" that, for root, always
# lives in /var/lib/containers/cache; it remembers where blobs were seen (and may
# make skopeo try cross-repository mounts from earlier runs) and fdatasyncs on every
# update (about 1,200 times for one push of the 200-layer image). To start every
# copy fresh and keep the host's state out of the numbers, each skopeo runs in a
# private mount namespace with an empty tmpfs over that directory.
SKOPEO_CACHE_DIR = "/var/lib/containers/cache"


def skopeo_prefix() -> list[str]:
    mode = os.environ.get("BENCH_SKOPEO_CACHE", "isolated")
    if mode == "system":
        return []
    if os.geteuid() == 0 and shutil.which("unshare"):
        os.makedirs(SKOPEO_CACHE_DIR, exist_ok=True)
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size=64m tmpfs {SKOPEO_CACHE_DIR}"],
            capture_output=True, text=True)
        if probe.returncode == 0:
            return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    f'mount -t tmpfs -o size=64m tmpfs {SKOPEO_CACHE_DIR} && exec "$@"', "skopeo-bench"]
        log(f"note: cannot isolate skopeo's blob info cache ({probe.stderr.strip()}); using the system one")
    else:
        log("note: not root or no unshare: skopeo uses its persistent blob info cache")
    return []


SKOPEO_PREFIX: list[str] = []


def run_skopeo(args: list[str], what: str) -> float:
    cmd = [*SKOPEO_PREFIX, "skopeo", "--insecure-policy", "copy", "--quiet", *args]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise BenchError(f"{what} failed ({' '.join(cmd)}):\n{r.stderr.strip()}")
    return dt


def measure(reg: Registry, fn) -> Sample:
    # Flush dirty pages left by the previous phase so they are not written back
    # on this phase's clock.
    os.sync()
    pid = reg.pid
    can_reset = reset_peak_rss(pid)
    cpu0 = cpu_seconds(pid)
    dt = fn()
    if not reg.alive():
        raise BenchError(f"{reg.name} died during the measurement:\n" + reg.log_tail())
    st = proc_status(pid)
    return Sample(
        seconds=dt,
        peak_rss_kib=int(st["VmHWM"].split()[0]) if can_reset else None,
        cpu_s=cpu_seconds(pid) - cpu0,
        threads=int(st["Threads"]),
    )


def bench_one(reg: Registry, fx: Fixture, round_no: int, pull_dir: Path, results: Results) -> None:
    """Fresh registry, push the fixture, pull it back, verify digests."""
    reg.start(round_no)
    try:
        ref = f"docker://{reg.host}/{fx.repo}:{fx.tag}"
        digest_file = reg.run_dir / "pushed.digest"
        push = measure(reg, lambda: run_skopeo(
            ["--dest-tls-verify=false", "--digestfile", str(digest_file), f"oci:{fx.layout}:{fx.tag}", ref],
            f"push of {fx.key} to {reg.name}"))
        pushed = digest_file.read_text().strip()
        if pushed != fx.manifest_digest:
            raise BenchError(f"{reg.name}: pushed manifest digest {pushed} differs from the source's "
                             f"{fx.manifest_digest} (skopeo rewrote the image; the comparison would be unfair)")
        out = Path(tempfile.mkdtemp(prefix=f"pull-{reg.name}-", dir=pull_dir))
        try:
            pull = measure(reg, lambda: run_skopeo(
                ["--src-tls-verify=false", ref, f"oci:{out}:{fx.tag}"],
                f"pull of {fx.key} from {reg.name}"))
            index = json.loads((out / "index.json").read_text())
            pulled = index["manifests"][0]["digest"]
            if pulled != pushed:
                raise BenchError(f"{reg.name}: pulled manifest digest {pulled} != pushed {pushed}")
            nblobs = sum(1 for _ in (out / "blobs" / "sha256").iterdir())
            if nblobs != fx.layers + 2:
                raise BenchError(f"{reg.name}: pulled layout has {nblobs} blobs, expected {fx.layers + 2}")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        results.add(reg.name, fx.key, "push", push)
        results.add(reg.name, fx.key, "pull", pull)
        rss = lambda s: f"{s.peak_rss_kib / 1024:.1f} MiB" if s.peak_rss_kib is not None else "?"
        log(f"round {round_no} {reg.name:12s} {fx.key:9s} push {push.seconds:6.2f}s "
            f"({fx.payload / MIB / push.seconds:7.1f} MiB/s, peak RSS {rss(push)}, cpu {push.cpu_s:.2f}s)  "
            f"pull {pull.seconds:6.2f}s ({fx.payload / MIB / pull.seconds:7.1f} MiB/s, peak RSS {rss(pull)}, "
            f"cpu {pull.cpu_s:.2f}s)")
    finally:
        reg.stop()


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def median_sample(samples: list[Sample]) -> Sample | None:
    if not samples:
        return None
    return Sample(
        seconds=statistics.median(s.seconds for s in samples),
        peak_rss_kib=(max(s.peak_rss_kib for s in samples)
                      if all(s.peak_rss_kib is not None for s in samples) else None),
        cpu_s=statistics.median(s.cpu_s for s in samples),
        threads=max(s.threads for s in samples),
    )


def report(results: Results, fixtures: list[Fixture], regs: list[str], rss_limit_mib: float) -> list[str]:
    """Print the table; return a list of target misses (informational)."""
    have_both = "drydock" in regs and "distribution" in regs
    rows = []
    misses = []
    for fx in fixtures:
        for op in ("push", "pull"):
            cells = {}
            for r in ("drydock", "distribution"):
                m = median_sample(results.get(r, fx.key, op))
                cells[r] = m
            dd, ds = cells["drydock"], cells["distribution"]
            mbps = lambda m: fx.payload / MIB / m.seconds if m else None
            ratio = (mbps(dd) / mbps(ds)) if (dd and ds) else None
            rows.append((fx, op, dd, ds, mbps(dd), mbps(ds), ratio))
            if ratio is not None and ratio < 1.0:
                misses.append(f"{fx.title} {op}: drydock at {ratio:.2f}x Distribution (target >= 1.0x)")
            if fx.key == "1gib" and op == "push" and dd and dd.peak_rss_kib is not None \
                    and dd.peak_rss_kib / 1024 > rss_limit_mib:
                misses.append(f"drydock peak RSS during the 1 GiB push is {dd.peak_rss_kib / 1024:.1f} MiB "
                              f"(target <= {rss_limit_mib:.0f} MiB)")

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def rss(m):
        return "n/a" if m is None or m.peak_rss_kib is None else f"{m.peak_rss_kib / 1024:.1f} MiB"

    header = ("| image | op | drydock MiB/s | Distribution MiB/s | ratio (drydock/Distribution) "
              "| drydock peak RSS | Distribution peak RSS |")
    print()
    print("Median of each measurement; MiB/s = bytes of blobs moved (layers + config) / wall time of skopeo copy.")
    print("Peak RSS = VmHWM of the registry process during that phase (reset before it); max over rounds.")
    print()
    print(header)
    print("|" + "---|" * 7)
    for fx, op, dd, ds, a, b, ratio in rows:
        print(f"| {fx.title} | {op} | {f(a, '.1f')} | {f(b, '.1f')} | "
              f"{f(ratio, '.2f') + ('x' if ratio is not None else '')} | {rss(dd)} | {rss(ds)} |")
    print()
    print("Details: wall seconds median (min–max over rounds); registry CPU seconds (user+sys) during the phase, "
          "median; max threads")
    print()
    print("| image | op | drydock s | Distribution s | drydock CPU s | Distribution CPU s "
          "| drydock threads | Distribution threads |")
    print("|" + "---|" * 8)
    def secs(reg, fx, op):
        ss = [s.seconds for s in results.get(reg, fx.key, op)]
        if not ss:
            return "n/a"
        return f"{statistics.median(ss):.2f} ({min(ss):.2f}–{max(ss):.2f})"

    for fx, op, dd, ds, *_ in rows:
        g = lambda m, attr, fmt: "n/a" if m is None else format(getattr(m, attr), fmt)
        print(f"| {fx.title} | {op} | {secs('drydock', fx, op)} | {secs('distribution', fx, op)} | "
              f"{g(dd, 'cpu_s', '.2f')} | {g(ds, 'cpu_s', '.2f')} | {g(dd, 'threads', 'd')} | "
              f"{g(ds, 'threads', 'd')} |")
    print()
    if have_both:
        if misses:
            print("Targets missed:")
            for m in misses:
                print(f"  - {m}")
        else:
            print(f"Targets met: drydock >= 1.0x Distribution on every row; "
                  f"peak RSS during the 1 GiB push <= {rss_limit_mib:.0f} MiB.")
    else:
        print("Only one registry measured: no ratio, targets not evaluated.")
    return misses


def machine_summary() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem_gib = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    return f"{os.cpu_count()} CPUs ({model}), {mem_gib} RAM, load average at start {load}"


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--drydock", help="drydock binary (omit with --only distribution)")
    ap.add_argument("--distribution", default="/usr/bin/docker-registry")
    ap.add_argument("--only", choices=["drydock", "distribution"], help="benchmark one registry alone")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--big-mib", type=int, default=int(os.environ.get("BENCH_BIG_MIB", "1024")))
    ap.add_argument("--small-layers", type=int, default=int(os.environ.get("BENCH_SMALL_LAYERS", "200")))
    ap.add_argument("--fixtures", type=Path, required=True, help="cache directory for the OCI layouts")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where registry data dirs and pulled layouts go (default: a temp dir next to the fixtures, "
                         "i.e. on the same disk)")
    ap.add_argument("--pull-dir", type=Path, default=None,
                    help="parent of the fresh OCI layouts that pulls write to (default: the work dir, same disk; "
                         "/dev/shm takes the pull side's disk writes and fsyncs out of the measurement)")
    ap.add_argument("--rss-limit-mib", type=float, default=64)
    ap.add_argument("--drydock-arg", action="append", default=[], help="extra argument for `drydock serve`")
    args = ap.parse_args()

    regs = ["drydock", "distribution"] if args.only is None else [args.only]
    if "drydock" in regs and not args.drydock:
        ap.error("--drydock is required unless --only distribution")

    fixtures = ensure_fixtures(args.fixtures, args.big_mib, args.small_layers)
    for fx in fixtures:
        log(f"fixture {fx.title}: {fx.layout} ({fx.payload / MIB:.1f} MiB of blobs, {fx.layers} layers, "
            f"manifest {fx.manifest_digest[:19]}...)")

    parent = args.workdir or args.fixtures.parent
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="registry-bench-", dir=parent))
    registries: dict[str, Registry] = {}
    if "drydock" in regs:
        # Run a private copy: a concurrent `cargo build` must not swap the binary mid-run.
        drydock_copy = workdir / "drydock"
        shutil.copy2(args.drydock, drydock_copy)
        registries["drydock"] = Drydock(workdir, str(drydock_copy), args.drydock_arg)
    if "distribution" in regs:
        registries["distribution"] = Distribution(workdir, args.distribution)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    pull_dir = workdir
    if args.pull_dir is not None:
        pull_dir = Path(tempfile.mkdtemp(prefix="registry-bench-pulls-", dir=args.pull_dir))

    global SKOPEO_PREFIX
    SKOPEO_PREFIX = skopeo_prefix()

    results = Results()
    print(f"Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"Machine: {machine_summary()}")
    print(f"skopeo: {subprocess.run(['skopeo', '--version'], capture_output=True, text=True).stdout.strip()}"
          f" (blob info cache: {'fresh tmpfs per copy' if SKOPEO_PREFIX else 'system'})")
    try:
        warm_page_cache(fixtures)
        for round_no in range(1, args.rounds + 1):
            # Alternate which registry goes first, round by round.
            order = regs if round_no % 2 == 1 else list(reversed(regs))
            for fx in fixtures:
                for name in order:
                    bench_one(registries[name], fx, round_no, pull_dir, results)
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        return 130
    finally:
        for reg in registries.values():
            reg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(pull_dir, ignore_errors=True)

    print(f"Load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    report(results, fixtures, regs, args.rss_limit_mib)
    # Missing targets is not a failure of the script: the numbers are the output.
    return 0


if __name__ == "__main__":
    sys.exit(main())
