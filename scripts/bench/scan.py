#!/usr/bin/env python3
"""Scanner benchmark helper (Python stdlib only). See docs/performance.md.

Subcommands:
  packages LAYOUT TAG          print the image's installed packages and sources (from its dpkg status)
  tracker LAYOUT TAG OUT       write a Debian Security Tracker-format JSON sized like the real tracker
                               for bookworm, deterministic (fixed seed), with records for the image's
                               installed sources in every status
  run --drydock BIN --trivy BIN --layout DIR --tag TAG --data DIR [--runs N] [--cold-runs N]
                               cold and warm wall time and peak RSS of `drydock scan` and
                               `trivy image --input` on the same layout, and the ratios

Timing: each run is one process, wall time from spawn to exit (time.perf_counter), peak RSS and CPU
from that process's own rusage (os.wait4), so no wrapper process is on the clock.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

SEED = 20261123

# --------------------------------------------------------------------------- image


def _blob(layout, digest):
    alg, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", alg, hexd)


def image_layers(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            with open(_blob(layout, m["digest"])) as f:
                manifest = json.load(f)
            return [l["digest"] for l in manifest["layers"]]
    sys.exit(f"{layout} has no tag {tag}")


def dpkg_status_text(layout, tag):
    """The image's /var/lib/dpkg/status: the topmost layer that has one wins."""
    status = None
    for digest in image_layers(layout, tag):
        with open(_blob(layout, digest), "rb") as raw:
            head = raw.read(2)
        mode = "r:gz" if head == b"\x1f\x8b" else "r:"
        with tarfile.open(_blob(layout, digest), mode) as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if name == "var/lib/dpkg/status" and member.isfile():
                    status = tar.extractfile(member).read().decode()
    if status is None:
        sys.exit("the image has no /var/lib/dpkg/status")
    return status


def installed(layout, tag):
    """[(package, version, source, source_version)] of installed packages."""
    out = []
    for stanza in dpkg_status_text(layout, tag).split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key] = value.strip()
        if not fields.get("Package") or not fields.get("Status", "").endswith(" installed"):
            continue
        version = fields.get("Version", "")
        source, source_version = fields["Package"], version
        if "Source" in fields:
            parts = fields["Source"].split()
            source = parts[0]
            if len(parts) > 1:
                source_version = parts[1].strip("()")
        out.append((fields["Package"], version, source, source_version))
    return out


# --------------------------------------------------------------------------- tracker

URGENCIES = [("unimportant", 24), ("low", 18), ("medium", 26), ("high", 8), ("not yet assigned", 22), ("low**", 2)]
SYLLABLES = ["lib", "gtk", "py", "x", "font", "perl", "ruby", "node", "go", "qt", "kde", "gnome", "net", "ssl",
             "img", "media", "sql", "db", "http", "xml", "json", "yaml", "zip", "crypt", "sys", "util", "tool",
             "core", "base", "web", "mail", "vim", "tex", "sound", "video", "codec", "pdf", "ps", "cups", "dns"]
WORDS = ("buffer overflow use-after-free out-of-bounds read write NULL pointer dereference integer "
         "denial of service crafted file remote attacker allows via function memory leak heap stack "
         "certificate validation bypass injection request smuggling parser infinite loop").split()


def _pick(rng, weighted):
    total = sum(w for _, w in weighted)
    x = rng.uniform(0, total)
    for value, w in weighted:
        x -= w
        if x <= 0:
            return value
    return weighted[-1][0]


def _description(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(18, 45))).capitalize() + "."


def _random_version(rng):
    v = ".".join(str(rng.randint(0, 20)) for _ in range(rng.randint(2, 3)))
    return f"{v}-{rng.randint(1, 9)}"


def generate_tracker(layout, tag, target_records=36000, target_sources=2000):
    """Returns (tracker dict, stats). Deterministic for a given image."""
    rng = random.Random(SEED)
    image_sources = {}
    for _pkg, _ver, source, source_version in installed(layout, tag):
        image_sources.setdefault(source, source_version)
    # Real-tracker-like sizes for well-known sources; the rest lognormal (median ~25).
    known = {"linux": 6200, "imagemagick": 900, "chromium": 0, "openssl": 260, "glibc": 190, "curl": 170,
             "binutils": 420, "tiff": 260, "perl": 110, "systemd": 95, "nginx": 45, "gnutls28": 60,
             "libxml2": 110, "sqlite3": 90, "zlib": 12, "openssh": 95, "python3.11": 120, "vim": 220}
    records = {}
    for source in sorted(image_sources):
        records[source] = known.get(source) or max(3, int(rng.lognormvariate(3.2, 0.9)))
    names = set(image_sources) | {"linux", "imagemagick", "binutils", "tiff", "vim", "python3.11"}
    for s in ("linux", "imagemagick", "binutils", "tiff", "vim", "python3.11"):
        records.setdefault(s, known[s])
    while len(names) < target_sources:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        if rng.random() < 0.3:
            name += str(rng.randint(1, 9))
        if name not in names:
            names.add(name)
            records[name] = 0
    fillers = sorted(n for n in names if records[n] == 0)
    remaining = target_records - sum(records.values())
    weights = [rng.lognormvariate(0, 1.2) for _ in fillers]
    scale = remaining / sum(weights)
    for name, w in zip(fillers, weights):
        records[name] = max(1, round(w * scale))

    tracker = {}
    cve_serial = 0
    stats = {"image_sources": len(image_sources), "image_records": 0,
             "fixed_newer": 0, "already_fixed": 0, "open": 0, "not_affected": 0, "undetermined": 0}
    for source in sorted(records):
        entries = {}
        installed_version = image_sources.get(source)
        for _ in range(records[source]):
            cve_serial += 1
            year = 2005 + (cve_serial * 7919) % 21
            cve = f"CVE-{year}-{10000 + cve_serial:05d}"
            releases = {}
            for codename, presence in (("bullseye", 0.75), ("bookworm", 1.0), ("trixie", 0.9), ("sid", 0.95)):
                if rng.random() > presence:
                    continue
                urgency = _pick(rng, URGENCIES)
                if codename == "bookworm" and installed_version is not None:
                    # Shares as in the real tracker for a bookworm image: most issues
                    # are fixed in (or never affected) what is installed; a few are open.
                    kind = _pick(rng, [("already_fixed", 66), ("not_affected", 22), ("open", 6),
                                       ("fixed_newer", 4), ("undetermined", 2)])
                    stats[kind] += 1
                    stats["image_records"] += 1
                    repo_version = installed_version
                    if kind == "already_fixed":
                        fixed = installed_version if rng.random() < 0.3 else installed_version + "~pre1"
                        rel = {"status": "resolved", "fixed_version": fixed}
                    elif kind == "not_affected":
                        rel = {"status": "resolved", "fixed_version": "0"}
                    elif kind == "fixed_newer":
                        rel = {"status": "resolved", "fixed_version": f"{installed_version}+deb12u{rng.randint(1, 9)}"}
                    elif kind == "open":
                        rel = {"status": "open"}
                        if rng.random() < 0.3:
                            rel["nodsa"] = "Minor issue"
                            rel["nodsa_reason"] = rng.choice(["", "ignored", "postponed"])
                    else:
                        rel = {"status": "undetermined"}
                else:
                    repo_version = _random_version(rng)
                    r = rng.random()
                    if r < 0.6:
                        rel = {"status": "resolved", "fixed_version": repo_version}
                    elif r < 0.75:
                        rel = {"status": "resolved", "fixed_version": "0"}
                    else:
                        rel = {"status": "open"}
                rel["repositories"] = {codename: repo_version}
                if codename == "bookworm" and rng.random() < 0.3:
                    rel["repositories"]["bookworm-security"] = repo_version
                rel["urgency"] = urgency
                releases[codename] = rel
            entry = {"description": _description(rng), "scope": rng.choice(["local", "remote"]), "releases": releases}
            if rng.random() < 0.4:
                entry["debianbug"] = 900000 + cve_serial
            entries[cve] = entry
        tracker[source] = entries
    stats["sources"] = len(tracker)
    stats["records"] = sum(len(v) for v in tracker.values())
    stats["bookworm_records"] = sum(1 for v in tracker.values() for e in v.values() if "bookworm" in e["releases"])
    stats["release_records"] = sum(len(e["releases"]) for v in tracker.values() for e in v.values())
    return tracker, stats


# --------------------------------------------------------------------------- timing


def timed(cmd, env=None):
    """Runs cmd once; returns (wall s, CPU s) of that process alone (os.wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"[bench] {' '.join(cmd)} failed ({code}):\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def peak_rss_kib(cmd, env=None):
    """Peak RSS of cmd in KiB, from GNU time (`%M`). Not os.wait4's ru_maxrss: for a child
    spawned by Python, Linux counts the pre-exec copy of the Python process (~20 MiB) too."""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M"] + cmd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(out.read().strip().splitlines()[-1])


def summary(samples, rss):
    walls = [s[0] for s in samples]
    return {"median_ms": statistics.median(walls) * 1000, "min_ms": min(walls) * 1000,
            "max_ms": max(walls) * 1000, "cpu_ms": statistics.median(s[1] for s in samples) * 1000,
            "rss_mib": max(rss) / 1024 if rss else None, "n": len(samples)}


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run_bench(args):
    image = f"{args.layout}:{args.tag}"
    env = dict(os.environ, DRYDOCK_LOG="warn")
    db = os.path.join(args.data, "advisories.db")
    if not os.path.exists(db):
        sys.exit(f"[bench] no advisory store at {db}")
    cache = os.path.join(args.data, "scan-cache")
    work = tempfile.mkdtemp(prefix="drydock-scan-bench-", dir=args.workdir)
    have_time = os.access("/usr/bin/time", os.X_OK)

    def drydock(fmt="cyclonedx", store=True):
        # The advisory store alone: the security repository would need the network (see the doc).
        # Without the store (a --db that does not exist) drydock reports the inventory only.
        cmd = [args.drydock, "scan", f"oci:{image}", "--format", fmt, "--no-security-repo", "--data-dir", args.data]
        return cmd + ([] if store else ["--db", os.path.join(work, "no-such.db")])

    def trivy(cache_dir):
        return [args.trivy, "image", "--input", image, "--format", "cyclonedx", "--skip-db-update",
                "--skip-java-db-update", "--skip-check-update", "--offline-scan", "--quiet",
                "--cache-dir", cache_dir]

    # What each tool reports, checked once, off the clock.
    shutil.rmtree(cache, ignore_errors=True)
    out = subprocess.run(drydock("json"), env=env, check=True, capture_output=True).stdout
    findings = sum(len(r.get("Vulnerabilities") or []) for r in json.loads(out)["Results"])
    out = subprocess.run(drydock(), env=env, check=True, capture_output=True).stdout
    packages = sum(1 for c in json.loads(out).get("components", []) if c.get("type") == "library")
    tc = os.path.join(work, "trivy-check")
    bom = json.loads(subprocess.run(trivy(tc), check=True, capture_output=True).stdout)
    shutil.rmtree(tc, ignore_errors=True)
    trivy_packages = sum(1 for c in bom.get("components", []) if c.get("type") == "library")
    print(f"[bench] drydock: {packages} packages, {findings} findings; "
          f"trivy: {trivy_packages} packages (inventory only)", file=sys.stderr)

    tools = {
        "drydock": lambda phase, i: drydock(),
        "drydock-inventory": lambda phase, i: drydock(store=False),
        "trivy": lambda phase, i: trivy(os.path.join(work, f"trivy-cold-{i}") if phase == "cold"
                                        else os.path.join(work, "trivy-warm")),
    }

    def prepare(tool, phase, i):
        if phase == "cold":
            # Cold: drydock with no layer cache (the advisory store present), Trivy with an empty cache dir.
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(os.path.join(work, f"trivy-cold-{i}"), ignore_errors=True)

    results = {"load_start": loadavg(), "packages": packages, "findings": findings,
               "trivy_packages": trivy_packages, "cold": {}, "warm": {}}
    samples = {phase: {t: [] for t in tools} for phase in ("cold", "warm")}
    for i in range(args.cold_runs):
        names = list(tools)
        for tool in names[i % 3:] + names[:i % 3]:
            prepare(tool, "cold", i)
            samples["cold"][tool].append(timed(tools[tool]("cold", i), env))
    # Warm: both caches filled by a first (untimed) run, then N runs each, the order rotating.
    shutil.rmtree(cache, ignore_errors=True)
    for tool in tools:
        timed(tools[tool]("warm", 0), env)
    for i in range(args.runs):
        names = list(tools)
        for tool in names[i % 3:] + names[:i % 3]:
            samples["warm"][tool].append(timed(tools[tool]("warm", i), env))
    # drydock's other formats, warm (the table is the default; json is Trivy's own schema), and the
    # floor: starting and ending the drydock process, no scan.
    extra = {f"drydock --format {fmt}": drydock(fmt) for fmt in ("table", "json")}
    extra["drydock --version (process start and exit only)"] = [args.drydock, "--version"]
    extra_samples = {name: [timed(cmd, env) for _ in range(args.runs)] for name, cmd in extra.items()}
    # Peak RSS, in separate runs under GNU time (3 per row).
    rss = {phase: {t: [] for t in tools} for phase in ("cold", "warm")}
    extra_rss = {name: [] for name in extra}
    if have_time:
        for phase in ("cold", "warm"):
            for tool in tools:
                for i in range(3):
                    prepare(tool, phase, 100 + i)
                    rss[phase][tool].append(peak_rss_kib(tools[tool](phase, 100 + i), env))
        for name, cmd in extra.items():
            extra_rss[name] = [peak_rss_kib(cmd, env) for _ in range(3)]
    shutil.rmtree(work, ignore_errors=True)
    results["load_end"] = loadavg()
    for phase in ("cold", "warm"):
        for tool in tools:
            results[phase][tool] = summary(samples[phase][tool], rss[phase][tool])
    results["extra_warm"] = {name: summary(extra_samples[name], extra_rss[name]) for name in extra}

    labels = {"drydock": "drydock scan (inventory + advisories + CycloneDX with vulnerabilities)",
              "drydock-inventory": "drydock scan, no advisory store (inventory-only CycloneDX)",
              "trivy": "trivy image --format cyclonedx (inventory only)"}
    fmt_rss = lambda s: "n/a" if s["rss_mib"] is None else f"{s['rss_mib']:.1f}"
    print()
    print(f"Scan of {image}: {packages} packages; drydock {findings} findings against the store; "
          f"Trivy lists {trivy_packages} packages. Load average {results['load_start']} -> {results['load_end']}.")
    print()
    print("| run | what | wall median ms | min–max ms | CPU ms (median) | peak RSS MiB | n |")
    print("|---|---|---|---|---|---|---|")
    for phase in ("cold", "warm"):
        for tool in tools:
            s = results[phase][tool]
            print(f"| {phase} | {labels[tool]} | {s['median_ms']:.1f} | {s['min_ms']:.1f}–{s['max_ms']:.1f} | "
                  f"{s['cpu_ms']:.0f} | {fmt_rss(s)} | {s['n']} |")
    for name, s in results["extra_warm"].items():
        print(f"| warm | {name} | {s['median_ms']:.1f} | {s['min_ms']:.1f}–{s['max_ms']:.1f} | "
              f"{s['cpu_ms']:.0f} | {fmt_rss(s)} | {s['n']} |")
    print()
    for phase in ("cold", "warm"):
        t = results[phase]["trivy"]["median_ms"]
        full = t / results[phase]["drydock"]["median_ms"]
        inv = t / results[phase]["drydock-inventory"]["median_ms"]
        results[f"{phase}_ratio"] = full
        results[f"{phase}_ratio_inventory"] = inv
        print(f"{phase} ratio trivy/drydock (median wall): full scan {full:.1f}x; inventory vs inventory {inv:.1f}x")
    dw = results["warm"]["drydock"]["median_ms"]
    print(f"target warm ratio >= 10x (full scan vs Trivy's inventory): "
          f"{'MET' if results['warm_ratio'] >= 10 else 'MISSED'} ({results['warm_ratio']:.1f}x)")
    print(f"target drydock warm wall <= 50 ms: {'MET' if dw <= 50 else 'MISSED'} ({dw:.1f} ms median)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


# --------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("packages")
    p.add_argument("layout")
    p.add_argument("tag")
    t = sub.add_parser("tracker")
    t.add_argument("layout")
    t.add_argument("tag")
    t.add_argument("out")
    r = sub.add_parser("run")
    r.add_argument("--drydock", required=True)
    r.add_argument("--trivy", required=True)
    r.add_argument("--layout", required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--runs", type=int, default=10)
    r.add_argument("--cold-runs", type=int, default=5)
    r.add_argument("--workdir", default=None)
    r.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.command == "packages":
        pkgs = installed(args.layout, args.tag)
        print(f"{len(pkgs)} installed packages from {len({p[2] for p in pkgs})} source packages")
    elif args.command == "tracker":
        tracker, stats = generate_tracker(args.layout, args.tag)
        data = json.dumps(tracker, sort_keys=True).encode()
        tmp = args.out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, args.out)
        stats["bytes"] = len(data)
        stats["sha256"] = hashlib.sha256(data).hexdigest()
        print(json.dumps(stats))
    else:
        run_bench(args)


if __name__ == "__main__":
    main()
