#!/usr/bin/env python3
"""Patcher benchmark helper (Python stdlib only): `drydock patch` vs buildah. See docs/performance.md.

Called by scripts/bench/patch.sh (which installs the tools, builds the image and drydock).

Subcommands:
  run --drydock BIN --layout DIR --tag TAG --workdir DIR [--runs N] [--cold-runs N] [--rss-runs N]
      [--only drydock|buildah] [--json FILE]
                 cold and warm wall time, CPU and peak RSS of patching IMAGE in a registry
                 (`drydock serve`): `drydock patch --update-all` (and, warm, the default
                 scan-driven mode and, as root with bubblewrap, sandbox mode
                 `--run-maintainer-scripts`) against buildah (from, run apt-get, commit to the
                 registry), and the ratios buildah/drydock

Every timed run gets a fresh registry (a new `drydock serve` data dir, same port) holding only the
original image, imported with `drydock import`, so both tools pull the same image and push their
new layer into a registry that does not have it yet.

Timing: each run is one process tree, spawned directly by Python; wall time is spawn to exit
(time.perf_counter), CPU is user + sys of the tree (os.wait4: the process and the descendants it
waited for). Peak RSS comes from separate runs under GNU time (`%M`: the largest single process of
the tree), because wait4's ru_maxrss for a child of Python counts Python's pre-exec pages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# The suites the image's own sources.list lacks (it lists bookworm only); drydock adds the same
# pockets itself (crates/patch/src/sources.rs, `effective`).
EXTRA_SOURCES = ("deb http://deb.debian.org/debian bookworm-updates main\\n"
                 "deb http://deb.debian.org/debian-security bookworm-security main\\n")  # for printf
BLOB_INFO_CACHE = "/var/lib/containers/cache"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A functional failure: the script exits non-zero."""


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no output)"


# --------------------------------------------------------------------------- registry


class Registry:
    """`drydock serve` on one fixed port; `fresh()` restarts it on a new, empty data dir and
    imports the original image, so every run starts from the same registry state."""

    def __init__(self, drydock: str, workdir: Path, layout: str, tag: str):
        self.drydock = drydock
        self.workdir = workdir
        self.layout = layout
        self.tag = tag
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.data: Path | None = None
        self.env = dict(os.environ, DRYDOCK_LOG="warn")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def image(self) -> str:
        return f"{self.host}/debian:{self.tag}"

    def fresh(self) -> None:
        self.stop()
        self.data = Path(tempfile.mkdtemp(prefix="registry-", dir=self.workdir))
        log_path = self.data / "serve.log"
        with open(log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                [self.drydock, "serve", "--listen", self.host, "--data-dir", str(self.data / "data"),
                 "--gc-interval", "0"],
                stdout=logf, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"drydock serve exited during start-up ({self.proc.returncode}):\n"
                                 + tail(log_path))
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"drydock serve did not answer on {self.host} within 30 s:\n" + tail(log_path))
            time.sleep(0.02)
        out = subprocess.run([self.drydock, "import", f"oci:{self.layout}:{self.tag}", self.image, "--plain-http"],
                             env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise BenchError(f"drydock import failed:\n{out.stderr}")

    def manifest(self, tag: str) -> dict:
        req = urllib.request.Request(f"http://{self.host}/v2/debian/manifests/{tag}",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None


# --------------------------------------------------------------------------- timing


def timed(cmd: list[str], out_dir: Path, env=None) -> tuple[float, float, Path]:
    """Runs cmd once, stdout/stderr to files in out_dir; returns (wall s, CPU s, stdout path)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = out_dir / "stdout", out_dir / "stderr"
    with open(stdout, "wb") as o, open(stderr, "wb") as e:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({code}):\n{tail(stderr)}\n{tail(stdout, 10)}")
    return wall, usage.ru_utime + usage.ru_stime, stdout


def peak_rss_kib(cmd: list[str], out_dir: Path, env=None) -> int:
    """Peak RSS in KiB from GNU time (`%M`): the largest single process of the tree."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rss = out_dir / "rss"
    with open(out_dir / "stdout", "wb") as o, open(out_dir / "stderr", "wb") as e:
        code = subprocess.run(["/usr/bin/time", "-o", str(rss), "-f", "%M"] + cmd, env=env,
                              stdout=o, stderr=e).returncode
    if code != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({code}):\n{tail(out_dir / 'stderr')}")
    return int(rss.read_text().strip().splitlines()[-1])


def summary(samples, rss) -> dict:
    walls = [s[0] for s in samples]
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "cpu_s": statistics.median(s[1] for s in samples),
            "rss_mib": max(rss) / 1024 if rss else None, "n": len(samples), "rss_n": len(rss)}


# --------------------------------------------------------------------------- the tools


UPGRADED = re.compile(r"(\d+) package\(s\) upgraded, (\d+) added")
APT_UPGRADED = re.compile(r"(\d+) upgraded, (\d+) newly installed")


def drydock_upgraded(stdout: Path) -> int:
    m = UPGRADED.search(stdout.read_text(errors="replace"))
    if not m:
        raise BenchError(f"drydock patch printed no 'package(s) upgraded' line:\n{tail(stdout)}")
    return int(m.group(1))


def plan_packages(stdout: Path) -> list[str]:
    """The PACKAGE column of the plan `drydock patch` prints."""
    names, in_plan = [], False
    for line in stdout.read_text(errors="replace").splitlines():
        if line.startswith("Plan"):
            in_plan = True
        elif in_plan and line.startswith("  PACKAGE"):
            continue
        elif in_plan and line.startswith("  ") and not line.startswith("  not upgraded") \
                and not line.startswith(("  note:", "  reproduced:", "  not run:")):
            names.append(line.split()[0])
        else:
            in_plan = False
    return names


class Drydock:
    def __init__(self, binary: str, registry: Registry, workdir: Path):
        self.binary = binary
        self.registry = registry
        self.workdir = workdir
        self.env = dict(os.environ, DRYDOCK_LOG="warn")
        self.serial = 0

    def command(self, data_dir: Path, update_all: bool = True, sandbox: bool = False) -> list[str]:
        self.serial += 1
        cmd = [self.binary, "patch", self.registry.image, "--plain-http", "--tag", f"bench-{self.serial}",
               "--data-dir", str(data_dir)]
        return cmd + (["--update-all"] if update_all else []) + (["--run-maintainer-scripts"] if sandbox else [])


class Buildah:
    """buildah from / run (apt-get) / commit to the registry, with --isolation chroot.

    Each run is one shell script in a private mount namespace (`unshare --mount`) with its own
    containers/image blob-info cache mounted over /var/lib/containers/cache: an empty tmpfs when
    cold, a bench-private directory kept between runs when warm. The script writes a timestamp
    after each step, so the steps can be reported too."""

    def __init__(self, registry: Registry, workdir: Path, driver: str):
        self.registry = registry
        self.workdir = workdir
        self.driver = driver
        self.packages: list[str] = []
        self.serial = 0

    def command(self, state: Path, archives: Path, blob_cache: Path | None, steps: Path,
                lists: Path | None = None) -> list[str]:
        """state: storage (root, runroot); archives: apt's .deb cache; blob_cache: None = fresh tmpfs;
        lists: apt's lists, None = a new empty directory (re-downloaded, as Copa does)."""
        self.serial += 1
        name = f"bench-{self.serial}"
        keep_lists = lists is not None
        if lists is None:
            lists = Path(tempfile.mkdtemp(prefix="apt-lists-", dir=self.workdir))
        lists.mkdir(parents=True, exist_ok=True)
        for d in (state / "root", state / "runroot", archives):
            d.mkdir(parents=True, exist_ok=True)
        b = (f"buildah --root {state / 'root'} --runroot {state / 'runroot'} --storage-driver {self.driver}")
        apt = ("export DEBIAN_FRONTEND=noninteractive && "
               f"printf '{EXTRA_SOURCES}' > /etc/apt/sources.list.d/drydock-bench.list && "
               "apt-get update -q && echo \"BENCH-STAMP $(date +%s.%N)\" && "
               f"apt-get install -y -q --only-upgrade {' '.join(self.packages)} && "
               "rm -f /etc/apt/sources.list.d/drydock-bench.list /var/cache/apt/*.bin")
        script = "\n".join([
            "set -e",
            f"stamp() {{ date +%s.%N >> {steps}; }}",
            f": > {steps}; stamp",
            f"{b} from -q --name {name} --tls-verify=false docker://{self.registry.image} >/dev/null",
            "stamp",
            f"{b} run --isolation chroot -v {archives}:/var/cache/apt/archives -v {lists}:/var/lib/apt/lists "
            f"{name} -- sh -c {shlex_quote(apt)}",
            "stamp",
            f"{b} commit -q --tls-verify=false --rm {name} "
            f"docker://{self.registry.host}/debian:buildah-{self.serial} >/dev/null",
            "stamp",
        ] + ([] if keep_lists else [f"rm -rf {lists}"]))
        mount = (f"mount -t tmpfs -o size=64m tmpfs {BLOB_INFO_CACHE}" if blob_cache is None
                 else f"mount --bind {blob_cache} {BLOB_INFO_CACHE}")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'{mount} && exec sh -c "$1"', "buildah-bench", script]


def shlex_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def apt_upgraded(stdout: Path) -> int:
    m = APT_UPGRADED.search(stdout.read_text(errors="replace"))
    if not m:
        raise BenchError(f"apt-get printed no 'N upgraded' line:\n{tail(stdout)}")
    return int(m.group(1))


def step_times(steps: Path, stdout: Path) -> list[float]:
    """from, apt-get update, apt-get install (and the rest of `buildah run`), commit (+ push, rm)."""
    t = [float(x) for x in steps.read_text().split()]
    m = re.search(r"^BENCH-STAMP (\S+)$", stdout.read_text(errors="replace"), re.M)
    if len(t) != 4 or not m:
        raise BenchError(f"buildah run: step times missing:\n{tail(stdout)}")
    t.insert(2, float(m.group(1)))
    return [b - a for a, b in zip(t, t[1:])]


# --------------------------------------------------------------------------- checks


def inventory(drydock: str, image: str, workdir: Path) -> dict[str, str]:
    """name -> version of the packages in a registry image (drydock scan's CycloneDX inventory)."""
    data = Path(tempfile.mkdtemp(prefix="inventory-", dir=workdir))
    try:
        out = subprocess.run([drydock, "scan", image, "--plain-http", "--format", "cyclonedx",
                              "--no-security-repo", "--data-dir", str(data), "--db", str(data / "none.db")],
                             env=dict(os.environ, DRYDOCK_LOG="warn"), capture_output=True)
        if out.returncode != 0:
            raise BenchError(f"drydock scan {image} failed:\n{out.stderr.decode(errors='replace')}")
        bom = json.loads(out.stdout)
        return {c["name"]: c.get("version", "") for c in bom.get("components", []) if c.get("type") == "library"}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def new_layer(registry: Registry, tag: str) -> tuple[str, int]:
    layers = registry.manifest(tag)["layers"]
    return layers[-1]["mediaType"], layers[-1]["size"]


# --------------------------------------------------------------------------- run


def run_bench(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="drydock-patch-bench-", dir=args.workdir))
    registry = Registry(args.drydock, workdir, args.layout, args.tag)
    try:
        return _run(args, workdir, registry)
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args, workdir: Path, registry: Registry) -> int:
    want = {"drydock", "buildah"} if not args.only else {args.only}
    dd = Drydock(args.drydock, registry, workdir)
    bh = Buildah(registry, workdir, args.storage_driver)
    have_time = os.access("/usr/bin/time", os.X_OK)
    results = {"load_start": loadavg(), "port": registry.port, "cold": {}, "warm": {}}
    out = workdir / "out"
    run_no = iter(range(1_000_000))

    # ---- Functional check, off the clock; it also warms the warm states.
    dd_warm = workdir / "drydock-warm"        # --data-dir of the warm --update-all runs
    dd_warm_scan = workdir / "drydock-warm-scan"  # --data-dir of the warm scan-driven runs
    registry.fresh()
    _, _, so = timed(dd.command(dd_warm), out / "check-drydock", dd.env)
    upgraded = drydock_upgraded(so)
    bh.packages = plan_packages(so)
    if upgraded == 0 or len(bh.packages) != upgraded:
        raise BenchError(f"drydock upgraded {upgraded} package(s), plan lists {bh.packages}:\n{tail(so)}")
    drydock_tag = f"bench-{dd.serial}"
    results["drydock_packages"] = bh.packages
    results["drydock_upgraded"] = upgraded
    log(f"drydock --update-all upgrades {upgraded} packages: {' '.join(bh.packages)}")
    results["drydock_layer"] = new_layer(registry, drydock_tag)
    if "drydock" in want:
        _, _, so = timed(dd.command(dd_warm_scan, update_all=False), out / "check-drydock-scan", dd.env)
        results["drydock_scan_upgraded"] = drydock_upgraded(so)
        log(f"drydock (scan-driven) upgrades {results['drydock_scan_upgraded']} packages")
    bh_warm_state, bh_warm_archives = workdir / "buildah-warm", workdir / "buildah-warm-archives"
    bh_warm_blobcache = workdir / "buildah-warm-blob-info-cache"
    bh_warm_blobcache.mkdir()
    bh_warm_lists = workdir / "buildah-warm-lists"
    if "buildah" in want:
        steps = workdir / "steps-check"
        _, _, so = timed(bh.command(bh_warm_state, bh_warm_archives, bh_warm_blobcache, steps),
                         out / "check-buildah")
        results["buildah_upgraded"] = apt_upgraded(so)
        results["buildah_layer"] = new_layer(registry, f"buildah-{bh.serial}")
        log(f"buildah (apt-get install --only-upgrade) upgraded {results['buildah_upgraded']} packages")
        before = inventory(args.drydock, registry.image, workdir)
        after_dd = inventory(args.drydock, f"{registry.host}/debian:{drydock_tag}", workdir)
        after_bh = inventory(args.drydock, f"{registry.host}/debian:buildah-{bh.serial}", workdir)
        differ = sorted(n for n in set(after_dd) | set(after_bh) if after_dd.get(n) != after_bh.get(n))
        changed = sorted(n for n in after_dd if before.get(n) != after_dd[n])
        results["same_versions"] = not differ
        results["inventory_differences"] = {n: [after_dd.get(n), after_bh.get(n)] for n in differ}
        log(f"inventories: {len(before)} packages; drydock changed {len(changed)}; "
            + ("buildah's image has the same versions" if not differ else
               f"versions differ (drydock, buildah): {results['inventory_differences']}"))
        if results["buildah_upgraded"] != upgraded:
            log(f"note: apt upgraded {results['buildah_upgraded']} packages, drydock {upgraded}")

    # ---- The runs. Each tool's states:
    #   drydock cold: a new, empty --data-dir (no patch cache: indexes, .debs, layers all fetched);
    #   drydock warm: the data dir of the check run (and one more untimed run, below);
    #   buildah cold: new, empty storage, apt .deb cache and blob-info cache;
    #   buildah warm: the check run's storage (base image present) and .deb cache.
    # apt lists start empty in every buildah run (re-downloaded, as Copa does).
    def run_tool(tool: str, phase: str, rss: bool):
        i = next(run_no)
        registry.fresh()
        d = out / f"{i}-{tool}-{phase}"
        cleanup = []
        steps = None
        if tool.startswith("drydock"):
            if phase == "cold":
                data = Path(tempfile.mkdtemp(prefix="drydock-cold-", dir=workdir))
                cleanup.append(data)
            else:
                data = dd_warm_scan if tool == "drydock-scan" else dd_warm  # sandbox: the --update-all state
            cmd, env = dd.command(data, update_all=(tool != "drydock-scan"),
                                  sandbox=(tool == "drydock-sandbox")), dd.env
        else:
            steps = workdir / f"steps-{i}"
            if phase == "cold":
                state = Path(tempfile.mkdtemp(prefix="buildah-cold-", dir=workdir))
                cmd = bh.command(state, state / "archives", None, steps)
                cleanup.append(state)
            else:
                # buildah-lists: also apt's lists kept between runs (not what Copa does; for reference).
                cmd = bh.command(bh_warm_state, bh_warm_archives, bh_warm_blobcache, steps,
                                 bh_warm_lists if tool == "buildah-lists" else None)
            env = None
        try:
            if rss:
                return peak_rss_kib(cmd, d, env)
            wall, cpu, so = timed(cmd, d, env)
            count = drydock_upgraded(so) if tool.startswith("drydock") else apt_upgraded(so)
            split = step_times(steps, so) if steps else None
            return wall, cpu, count, split
        finally:
            for c in cleanup:
                shutil.rmtree(c, ignore_errors=True)
            if steps:
                steps.unlink(missing_ok=True)

    # Sandbox mode (--run-maintainer-scripts) needs root and bubblewrap; warm only, beside native.
    sandbox = os.geteuid() == 0 and shutil.which("bwrap") is not None
    if not sandbox:
        log("sandbox mode not measured: it needs root and bubblewrap")
    tools = {"cold": [t for t in ("drydock", "buildah") if t in want],
             "warm": [t for t in ("drydock", "drydock-scan", "drydock-sandbox", "buildah", "buildah-lists")
                      if t.split("-")[0] in want and (t != "drydock-sandbox" or sandbox)]}
    if "drydock" in want:
        # A second untimed run of each warm drydock state: the first filled the caches from empty.
        run_tool("drydock", "warm", False)
        run_tool("drydock-scan", "warm", False)
        if sandbox:
            run_tool("drydock-sandbox", "warm", False)
    if "buildah" in want:
        run_tool("buildah-lists", "warm", False)  # fills the kept lists
    samples = {p: {t: [] for t in tools[p]} for p in tools}
    counts = {p: {t: set() for t in tools[p]} for p in tools}
    splits = {p: {t: [] for t in tools[p]} for p in tools}
    for phase, n in (("cold", args.cold_runs), ("warm", args.runs)):
        for i in range(n):
            names = tools[phase]
            for tool in names[i % len(names):] + names[:i % len(names)]:
                wall, cpu, count, split = run_tool(tool, phase, False)
                samples[phase][tool].append((wall, cpu))
                counts[phase][tool].add(count)
                if split:
                    splits[phase][tool].append(split)
                log(f"{phase} {tool}: {wall:.2f} s wall, {cpu:.2f} s CPU, {count} upgraded (load {loadavg()})")
    rss = {p: {t: [] for t in tools[p]} for p in tools}
    if have_time:
        for phase in ("cold", "warm"):
            for tool in tools[phase]:
                for _ in range(args.rss_runs):
                    rss[phase][tool].append(run_tool(tool, phase, True))
    results["load_end"] = loadavg()
    for phase in tools:
        for tool in tools[phase]:
            s = summary(samples[phase][tool], rss[phase][tool])
            s["upgraded"] = sorted(counts[phase][tool])
            if splits[phase][tool]:
                s["steps_median_s"] = [statistics.median(x) for x in zip(*splits[phase][tool])]
            results[phase][tool] = s

    # ---- Report.
    labels = {"drydock": "drydock patch --update-all",
              "drydock-scan": "drydock patch (default: scan-driven)",
              "drydock-sandbox": "drydock patch --update-all --run-maintainer-scripts (sandbox mode)",
              "buildah": "buildah from + run apt-get + commit",
              "buildah-lists": "buildah, apt lists also kept warm (not Copa's way; reference only)"}
    fmt_rss = lambda s: "n/a" if s["rss_mib"] is None else f"{s['rss_mib']:.1f}"
    print()
    print(f"Patch of {registry.image.replace(str(registry.port), 'PORT')}: drydock upgrades {upgraded} packages "
          f"({' '.join(bh.packages)}). Load average {results['load_start']} -> {results['load_end']}.")
    if "buildah" in want:
        print(f"buildah: apt upgraded {results['buildah_upgraded']}; patched images "
              + ("list the same package versions" if results["same_versions"]
                 else f"DIFFER: {results['inventory_differences']}") + ".")
        print(f"New layer: drydock {results['drydock_layer'][1] / 2**20:.1f} MiB, "
              f"buildah {results['buildah_layer'][1] / 2**20:.1f} MiB ({results['buildah_layer'][0]}).")
    print()
    print("| run | what | wall median s | min–max s | CPU s (median) | peak RSS MiB | upgraded | n |")
    print("|---|---|---|---|---|---|---|---|")
    for phase in ("cold", "warm"):
        for tool in tools[phase]:
            s = results[phase][tool]
            print(f"| {phase} | {labels[tool]} | {s['median_s']:.2f} | {s['min_s']:.2f}–{s['max_s']:.2f} | "
                  f"{s['cpu_s']:.2f} | {fmt_rss(s)} | {'/'.join(map(str, s['upgraded']))} | {s['n']} |")
    if "buildah" in want:
        print()
        print("buildah steps, median s (from / apt-get update / apt-get install + end of run / commit+push+rm):")
        for phase in ("cold", "warm"):
            for tool in tools[phase]:
                st = results[phase][tool].get("steps_median_s")
                if st:
                    print(f"  {phase} {tool}: " + " / ".join(f"{x:.2f}" for x in st))
    print()
    ok = True
    if want == {"drydock", "buildah"}:
        for phase in ("cold", "warm"):
            r = results[phase]["buildah"]["median_s"] / results[phase]["drydock"]["median_s"]
            results[f"{phase}_ratio"] = r
            print(f"{phase} ratio buildah/drydock --update-all (median wall): {r:.1f}x")
        r = results["warm_ratio"]
        print(f"target >= 10x faster than buildah (warm): {'MET' if r >= 10 else 'MISSED'} ({r:.1f}x)")
        if "drydock-sandbox" in results["warm"]:
            r = results["warm"]["buildah"]["median_s"] / results["warm"]["drydock-sandbox"]["median_s"]
            results["warm_sandbox_ratio"] = r
            print(f"warm ratio buildah/drydock --run-maintainer-scripts (median wall): {r:.1f}x (no target)")
    if "drydock" in want:
        dw = results["warm"]["drydock"]["median_s"]
        print(f"target drydock warm wall <= 1 s: {'MET' if dw <= 1 else 'MISSED'} ({dw:.2f} s median)")
        for phase in ("warm", "cold"):
            m = results[phase]["drydock"]["rss_mib"]
            if m is not None:
                print(f"target drydock peak RSS <= 200 MiB ({phase}): {'MET' if m <= 200 else 'MISSED'} ({m:.1f} MiB)")
        for phase in ("cold", "warm"):
            for tool in tools[phase]:
                if tool.startswith("drydock") and results[phase][tool]["upgraded"] != \
                        [results["drydock_scan_upgraded"] if tool == "drydock-scan" else upgraded]:
                    log(f"{phase} {tool} upgraded {results[phase][tool]['upgraded']} packages, "
                        f"the check run {upgraded}")
                    ok = False
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--drydock", required=True)
    r.add_argument("--layout", required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--cold-runs", type=int, default=3)
    r.add_argument("--rss-runs", type=int, default=2)
    r.add_argument("--only", choices=["drydock", "buildah"], default=None)
    r.add_argument("--storage-driver", default="overlay")
    r.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        sys.exit(run_bench(args))
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
