#!/usr/bin/env python3
"""Scanner benchmark helper (Python stdlib only). See docs/performance.md and scan.sh.

Subcommands:
  packages LAYOUT TAG          print the image's installed packages and sources (dpkg status or status.d)
  tracker LAYOUT TAG OUT       write a Debian Security Tracker-format JSON sized like the real tracker
                               for bookworm, deterministic (fixed seed), with records for the image's
                               installed sources in every status. Only crates/scan/benches/rescan.rs uses
                               it now (its own store, target/bench-fixtures/scan/data/advisories.db).
  run --drydock BIN --trivy BIN --row SLUG LAYOUT:TAG LABEL [--row ...] --workdir DIR
      [--inventory-row SLUG] [--target-row SLUG] [--runs N] [--cold-runs N] [--json FILE]
                               per row, in one run with the tools alternating: the default
                               `drydock scan` against Trivy's vulnerability scan on a Trivy database
                               built from the same security pocket, warm and cold (medians, peak
                               RSS, ratios), and whether both report the same findings; for
                               --inventory-row also the inventory-only comparison (CycloneDX).

What `run` measures, per row (everything below is printed with the real paths):

  drydock   drydock scan oci:LAYOUT:TAG --ignore-unfixed --format json --data-dir DATA
            The default command, no extra flag. DATA (DIR/rows/SLUG/data) has no advisory store
            (advisories.db): the findings come from the live security-repository feed, the image's
            `<codename>-security` pocket. Its state (verified InRelease, Packages indexes, upload
            changelogs) is filled online by one unmeasured run with --security-repo-max-age 0 just
            before the row is measured; the measured runs reuse that InRelease (default reuse: one hour),
            so they make no network request (checked after the row: under strace -f, the same commands,
            warm and cold, connect to no AF_INET/AF_INET6 address; the stored InRelease's mtime is
            unchanged, i.e. it was not refetched during the row).
  trivy     trivy image --input LAYOUT:TAG --scanners vuln --pkg-types os --ignore-unfixed --format json
              --skip-db-update --skip-java-db-update --offline-scan --quiet --cache-dir C
            C (DIR/rows/SLUG/trivy) holds db/trivy.db written by scripts/bench/trivydb.py (`build --refresh`,
            just before drydock's feed is filled) for this image alone: for every installed source older
            than the pocket's newest upload of it, every CVE named in that upload's Debian changelog, fixed
            in the highest changelog version naming it, severity from that entry's urgency. Same pocket,
            same InRelease (its Date is compared with the one drydock stored and printed).
  warm      drydock's layer cache (DATA/scan-cache/layers) and Trivy's scan cache (C/fanal) filled by
            one unmeasured run of each, then N measured runs each, the order alternating.
  cold      before each drydock run DATA/scan-cache/layers is removed (the feed state in
            DATA/scan-cache/{releases,security-repo,sha256} stays, as Trivy's DB does); before each
            Trivy run everything in C except db/ is removed.
  findings  off the clock, once per row, from the same two default commands: sets of (PkgName,
            InstalledVersion, VulnerabilityID, FixedVersion, Severity). drydock's own ids
            (`DRYDOCK-…`, pocket uploads whose changelog names no CVE) are counted apart, not compared.
            A difference is printed loudly and recorded (identical: false); it does not fail the run.
  inventory (--inventory-row only) drydock scan oci:LAYOUT:TAG --format cyclonedx --no-security-repo
            --data-dir INV (no store, no feed: packages only) against trivy image --input LAYOUT:TAG
            --format cyclonedx --skip-db-update --skip-java-db-update --skip-check-update --offline-scan
            --quiet --cache-dir S (Trivy's SBOM: no vulnerability scan); cold = INV/scan-cache/layers
            removed, S removed.

Timing: each run is one process, wall time from spawn to exit (time.perf_counter), CPU from that
process's own rusage (os.wait4), so no wrapper process is on the clock; stdout goes to /dev/null.
Peak RSS: GNU time's %M in separate runs (3 per tool and phase), the highest reported.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trivydb  # noqa: E402  (the Trivy DB builder; its image reader serves `packages`)

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


def machine():
    info = {"cores": os.cpu_count(), "load_average": loadavg()}
    with open("/proc/cpuinfo") as f:
        info["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    with open("/proc/meminfo") as f:
        info["ram_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    return info


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def empty_except(directory, keep):
    """Removes everything in DIRECTORY except the entries named in KEEP."""
    for entry in os.listdir(directory) if os.path.isdir(directory) else []:
        if entry in keep:
            continue
        p = os.path.join(directory, entry)
        if os.path.isdir(p) and not os.path.islink(p):
            rmtree(p)
        else:
            os.unlink(p)


def capture(cmd, env=None):
    r = subprocess.run(cmd, env=env, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"[bench] {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return r.stdout, r.stderr.decode(errors="replace")


def network_use(cmd, env=None):
    """(AF_INET/AF_INET6 sockets opened, connects to them) by cmd and its threads and children,
    from strace -f; None without strace."""
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", out.name] + cmd, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = out.read().splitlines()
    sockets = [l for l in lines if "socket(AF_INET" in l]
    connects = [l for l in lines if "connect(" in l and ("AF_INET" in l or "sin_port" in l or "sin6_port" in l)]
    return {"inet_sockets": len(sockets), "inet_connects": len(connects), "connects": connects[:5]}


# --------------------------------------------------------------------------- findings

KEY_FIELDS = ("PkgName", "InstalledVersion", "VulnerabilityID", "FixedVersion", "Severity")


def findings(report):
    """(set of KEY_FIELDS tuples without drydock's own ids, drydock-own-id tuples, raw count)."""
    compared, own, raw = set(), set(), 0
    for result in report.get("Results") or []:
        for v in result.get("Vulnerabilities") or []:
            raw += 1
            t = tuple(v.get(k, "") for k in KEY_FIELDS)
            (own if t[2].startswith("DRYDOCK-") else compared).add(t)
    return compared, own, raw


def compare(drydock_report, trivy_report):
    d, d_own, d_raw = findings(drydock_report)
    t, t_own, t_raw = findings(trivy_report)
    by_key = lambda s: {x[:3]: x[3:] for x in s}
    dk, tk = by_key(d), by_key(t)
    differ = sorted((k, dk[k], tk[k]) for k in set(dk) & set(tk) if dk[k] != tk[k])
    only_d = sorted(x for x in d - t if x[:3] not in tk)
    only_t = sorted(x for x in t - d if x[:3] not in dk)
    return {
        "identical": d == t,
        "drydock": len(d), "drydock_raw": d_raw, "drydock_own_ids": len(d_own),
        "drydock_own_id_list": sorted(" ".join(x[:3]) for x in d_own),
        "trivy": len(t), "trivy_raw": t_raw,
        "cves": len({x[2] for x in d | t}),
        "packages_with_findings": len({x[0] for x in d | t}),
        "only_drydock": [dict(zip(KEY_FIELDS, x)) for x in only_d],
        "only_trivy": [dict(zip(KEY_FIELDS, x)) for x in only_t],
        "differ": [{"PkgName": k[0], "InstalledVersion": k[1], "VulnerabilityID": k[2],
                    "drydock": {"FixedVersion": a[0], "Severity": a[1]},
                    "trivy": {"FixedVersion": b[0], "Severity": b[1]}} for k, a, b in differ],
    }


def stored_inrelease_dates(data):
    """{path: (Date field, mtime)} of the InRelease files drydock's feed stored under DATA."""
    out = {}
    releases = os.path.join(data, "scan-cache", "releases")
    for name in sorted(os.listdir(releases)) if os.path.isdir(releases) else []:
        if "." in name:
            continue
        p = os.path.join(releases, name)
        with open(p, errors="replace") as f:
            m = re.search(r"^Date:\s*(.+)$", f.read(), re.M)
        out[p] = (m.group(1).strip() if m else "", os.path.getmtime(p))
    return out


# --------------------------------------------------------------------------- the run


class Row:
    def __init__(self, slug, image, label, workdir):
        layout, sep, tag = image.rpartition(":")
        if not sep or "/" in tag:
            sys.exit(f"[bench] --row {slug}: {image} is not LAYOUT:TAG")
        self.slug, self.label = slug, label
        self.layout, self.tag = os.path.abspath(layout), tag
        self.image = f"{self.layout}:{self.tag}"
        self.dir = os.path.join(os.path.abspath(workdir), "rows", slug)
        self.trivy_cache = os.path.join(self.dir, "trivy")
        self.data = os.path.join(self.dir, "data")
        self.advisories = os.path.join(self.dir, "advisories.json")
        self.inventory_data = os.path.join(self.dir, "inventory-data")
        self.sbom_cache = os.path.join(self.dir, "trivy-sbom")


def drydock_cmd(binary, row):
    return [binary, "scan", f"oci:{row.image}", "--ignore-unfixed", "--format", "json", "--data-dir", row.data]


def trivy_cmd(binary, row):
    return [binary, "image", "--input", row.image, "--scanners", "vuln", "--pkg-types", "os", "--ignore-unfixed",
            "--format", "json", "--skip-db-update", "--skip-java-db-update", "--offline-scan", "--quiet",
            "--cache-dir", row.trivy_cache]


def drydock_inventory_cmd(binary, row):
    return [binary, "scan", f"oci:{row.image}", "--format", "cyclonedx", "--no-security-repo",
            "--data-dir", row.inventory_data]


def trivy_sbom_cmd(binary, row):
    return [binary, "image", "--input", row.image, "--format", "cyclonedx", "--skip-db-update",
            "--skip-java-db-update", "--skip-check-update", "--offline-scan", "--quiet", "--cache-dir", row.sbom_cache]


def bench_row(args, row, inventory, env):
    os.makedirs(row.dir, exist_ok=True)
    result = {"label": row.label, "image": row.image, "load_start": loadavg()}
    inv = trivydb.image_inventory(row.image, trivydb.DEFAULT_WORK)
    result["os"] = f"{inv['os']['ID']} {inv['os']['VERSION_ID']} ({inv['os']['VERSION_CODENAME']})"
    result["packages"] = len(inv["packages"])
    result["sources"] = len({p["source"] for p in inv["packages"]})
    state = trivydb.read_layers(row.layout, [l["digest"] for l in trivydb.resolve_manifest(row.layout, row.tag)[1]["layers"]])
    result["dpkg_database"] = ("var/lib/dpkg/status" if "var/lib/dpkg/status" in state else
                               "var/lib/dpkg/status.d/ (distroless)")
    print(f"[bench] {row.slug}: {row.image}: {result['os']}, {result['packages']} packages from "
          f"{result['sources']} sources ({result['dpkg_database']})", file=sys.stderr)

    # 1. Trivy's DB for this image and 2. drydock's feed state, both from the pocket as published now
    # (network, off the clock): the DB built (`--refresh`: its InRelease fetched now), then one unmeasured
    # drydock run with --security-repo-max-age 0 (its InRelease fetched now; the measured runs reuse it).
    # Should the pocket change in between (different InRelease Dates), both are done once more.
    if os.path.exists(os.path.join(row.data, "advisories.db")):
        sys.exit(f"[bench] {row.data}/advisories.db exists: the default-path rows must have no advisory store")
    os.makedirs(row.trivy_cache, exist_ok=True)
    for attempt in (1, 2):
        empty_except(row.trivy_cache, {"db"})
        _, err = capture([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "trivydb.py"),
                          "build", "--image", row.image, "--out", row.trivy_cache, "--json", row.advisories,
                          "--refresh"])
        print("[bench] " + err.strip().splitlines()[-1], file=sys.stderr)
        with open(row.advisories) as f:
            adv = json.load(f)
        suite = adv["suites"][0]
        rmtree(os.path.join(row.data, "scan-cache", "layers"))
        capture(drydock_cmd(args.drydock, row) + ["--security-repo-max-age", "0"], env)
        primed = stored_inrelease_dates(row.data)
        dates = sorted({d for d, _ in primed.values()})
        same = dates == [suite["date"]]
        if same:
            break
        print(f"[bench] WARNING {row.slug}: drydock's stored InRelease Date {dates} differs from the one the Trivy "
              f"DB was built from ({suite['date']}): the pocket changed in between"
              + ("; once more" if attempt == 1 else "; findings may differ"), file=sys.stderr)
    result["trivy_db"] = {
        "path": os.path.join(row.trivy_cache, "db", "trivy.db"), "suite": suite["suite"], "arch": suite["arch"],
        "inrelease_date": suite["date"], "advisories": len(adv["advisories"]),
        "cves": len({a["id"] for a in adv["advisories"]}), "sources_behind_pocket": len(suite["outdated_sources"]),
        "truncated_changelogs": len(suite["truncated_changelogs"]),
    }
    result["drydock_feed"] = {"inrelease_dates": dates, "primed_at": time.time()}
    result["same_pocket_snapshot"] = same

    # 3. Findings, off the clock: the default commands, once each.
    d_out, d_err = capture(drydock_cmd(args.drydock, row), env)
    t_out, _ = capture(trivy_cmd(args.trivy, row))
    cmp = compare(json.loads(d_out), json.loads(t_out))
    if d_err.strip():
        cmp["drydock_stderr"] = d_err.strip().splitlines()[:10]
    result["findings"] = cmp
    print(f"[bench] {row.slug}: findings drydock {cmp['drydock']} (+{cmp['drydock_own_ids']} DRYDOCK- ids), "
          f"trivy {cmp['trivy']}: {'identical' if cmp['identical'] else 'DIFFERENT'}", file=sys.stderr)

    # 4. The tools of this row.
    tools = {
        "drydock": (drydock_cmd(args.drydock, row), lambda: rmtree(os.path.join(row.data, "scan-cache", "layers"))),
        "trivy": (trivy_cmd(args.trivy, row), lambda: empty_except(row.trivy_cache, {"db"})),
    }
    if inventory:
        os.makedirs(row.inventory_data, exist_ok=True)
        if os.path.exists(os.path.join(row.inventory_data, "advisories.db")):
            sys.exit(f"[bench] {row.inventory_data}/advisories.db exists: the inventory row must have no store")
        tools["drydock-inventory"] = (drydock_inventory_cmd(args.drydock, row),
                                      lambda: rmtree(os.path.join(row.inventory_data, "scan-cache", "layers")))
        tools["trivy-sbom"] = (trivy_sbom_cmd(args.trivy, row), lambda: rmtree(row.sbom_cache))
        out, _ = capture(drydock_inventory_cmd(args.drydock, row), env)
        result["drydock_inventory_packages"] = sum(1 for c in json.loads(out).get("components", [])
                                                   if c.get("type") == "library")
        rmtree(row.sbom_cache)
        out, _ = capture(trivy_sbom_cmd(args.trivy, row))
        result["trivy_sbom_packages"] = sum(1 for c in json.loads(out).get("components", [])
                                            if c.get("type") == "library")
    names = list(tools)
    rotation = lambda i: names[i % len(names):] + names[:i % len(names)]
    samples = {phase: {t: [] for t in tools} for phase in ("cold", "warm")}
    for i in range(args.cold_runs):
        for tool in rotation(i):
            cmd, make_cold = tools[tool]
            make_cold()
            samples["cold"][tool].append(timed(cmd, env))
    # Warm: each cache filled by one unmeasured run, then the measured runs, the order rotating.
    for tool in names:
        timed(tools[tool][0], env)
    for i in range(args.runs):
        for tool in rotation(i):
            samples["warm"][tool].append(timed(tools[tool][0], env))
    extra = {}
    if inventory:
        extra["drydock --version (process start and exit only)"] = [args.drydock, "--version"]
    extra_samples = {name: [timed(cmd, env) for _ in range(args.runs)] for name, cmd in extra.items()}
    # Peak RSS, in separate runs under GNU time (3 per tool and phase).
    rss = {phase: {t: [] for t in tools} for phase in ("cold", "warm")}
    extra_rss = {name: [] for name in extra}
    if os.access("/usr/bin/time", os.X_OK):
        for phase in ("cold", "warm"):
            for _ in range(3):
                for tool in names:
                    cmd, make_cold = tools[tool]
                    if phase == "cold":
                        make_cold()
                    rss[phase][tool].append(peak_rss_kib(cmd, env))
        for name, cmd in extra.items():
            extra_rss[name] = [peak_rss_kib(cmd, env) for _ in range(3)]

    # 5. No network on the clock: the measured commands under strace (warm, then cold), and no InRelease refetch.
    after = stored_inrelease_dates(row.data)
    refetched = sorted(p for p in after if p not in primed or after[p][1] != primed[p][1])
    net = {"drydock warm": network_use(tools["drydock"][0], env), "trivy warm": network_use(tools["trivy"][0])}
    tools["drydock"][1]()
    net["drydock cold"] = network_use(tools["drydock"][0], env)
    tools["trivy"][1]()
    net["trivy cold"] = network_use(tools["trivy"][0])
    timed(tools["drydock"][0], env)  # leave both caches warm
    result["network"] = {"checks": net, "inrelease_refetched_during_row": refetched,
                         "seconds_since_feed_fetch": time.time() - result["drydock_feed"]["primed_at"]}
    offline = not refetched and all(v is None or v["inet_connects"] == 0 for v in net.values())
    result["network"]["no_network_on_the_clock"] = offline
    if not offline:
        print(f"[bench] WARNING {row.slug}: network use by a measured command: {json.dumps(result['network'])}",
              file=sys.stderr)

    result["load_end"] = loadavg()
    result["commands"] = {t: " ".join(tools[t][0]) for t in tools}
    for phase in ("cold", "warm"):
        result[phase] = {t: summary(samples[phase][t], rss[phase][t]) for t in tools}
        result[f"{phase}_ratio"] = result[phase]["trivy"]["median_ms"] / result[phase]["drydock"]["median_ms"]
        if inventory:
            result[f"{phase}_ratio_inventory"] = (result[phase]["trivy-sbom"]["median_ms"]
                                                  / result[phase]["drydock-inventory"]["median_ms"])
    result["extra_warm"] = {name: summary(extra_samples[name], extra_rss[name]) for name in extra}
    return result


LABELS = {"drydock": "drydock scan (default: security-repository feed)",
          "trivy": "trivy image --scanners vuln (DB from the same pocket)",
          "drydock-inventory": "drydock scan --format cyclonedx --no-security-repo, no store (inventory)",
          "trivy-sbom": "trivy image --format cyclonedx (SBOM: inventory only)"}


def fmt_rss(s):
    return "n/a" if s["rss_mib"] is None else f"{s['rss_mib']:.1f}"


def table(res, tools):
    print("| phase | what | wall median ms | min–max ms | CPU ms (median) | peak RSS MiB | n |")
    print("|---|---|---|---|---|---|---|")
    for phase in ("cold", "warm"):
        for tool in tools:
            s = res[phase][tool]
            print(f"| {phase} | {LABELS[tool]} | {s['median_ms']:.1f} | {s['min_ms']:.1f}–{s['max_ms']:.1f} | "
                  f"{s['cpu_ms']:.0f} | {fmt_rss(s)} | {s['n']} |")


def print_findings(cmp, limit=60):
    verdict = "IDENTICAL" if cmp["identical"] else "*** DIFFERENT ***"
    print(f"Findings (off the clock, the same two commands; compared as sets of ({', '.join(KEY_FIELDS)})): "
          f"drydock {cmp['drydock']}, Trivy {cmp['trivy']} -> {verdict}; {cmp['cves']} CVEs over "
          f"{cmp['packages_with_findings']} packages. drydock also reports {cmp['drydock_own_ids']} update(s) "
          f"under its own DRYDOCK- ids (changelog names no CVE), not compared"
          + (f": {', '.join(cmp['drydock_own_id_list'][:8])}" if cmp["drydock_own_ids"] else "") + ".")
    if cmp["identical"]:
        return
    print(f"!!! {len(cmp['only_drydock'])} only in drydock, {len(cmp['only_trivy'])} only in Trivy, "
          f"{len(cmp['differ'])} with a different FixedVersion/Severity:")
    lines = [f"    only drydock: {' '.join(x[k] for k in KEY_FIELDS)}" for x in cmp["only_drydock"]]
    lines += [f"    only trivy:   {' '.join(x[k] for k in KEY_FIELDS)}" for x in cmp["only_trivy"]]
    lines += [f"    differ:       {x['PkgName']} {x['InstalledVersion']} {x['VulnerabilityID']}: drydock "
              f"{x['drydock']['FixedVersion']} {x['drydock']['Severity']}, trivy {x['trivy']['FixedVersion']} "
              f"{x['trivy']['Severity']}" for x in cmp["differ"]]
    for l in lines[:limit]:
        print(l)
    if len(lines) > limit:
        print(f"    ... {len(lines) - limit} more in the results JSON")


def run_bench(args):
    sys.stdout.reconfigure(line_buffering=True)  # the report and stderr's progress lines in order
    env = dict(os.environ, DRYDOCK_LOG="warn")
    rows = [Row(slug, image, label, args.workdir) for slug, image, label in args.row]
    for opt in ("inventory_row", "target_row"):
        if getattr(args, opt) and getattr(args, opt) not in {r.slug for r in rows}:
            print(f"[bench] --{opt.replace('_', '-')} {getattr(args, opt)} is not among the rows run; skipped",
                  file=sys.stderr)
            setattr(args, opt, None)
    versions = {"drydock": capture([args.drydock, "--version"])[0].decode().strip(),
                "trivy": capture([args.trivy, "--version"])[0].decode().strip().splitlines()[0].replace("Version: ", "")}
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
               "versions": versions,
               "runs": args.runs, "cold_runs": args.cold_runs, "rows": {}}
    for row in rows:
        results["rows"][row.slug] = bench_row(args, row, row.slug == args.inventory_row, env)

    print()
    print(f"Scan benchmark, {results['date']}: {versions['drydock']} ({args.drydock}) against Trivy "
          f"{versions['trivy']} ({args.trivy}); per row the tools alternate in one run; {args.runs} warm and "
          f"{args.cold_runs} cold runs per tool; wall = median of one process each (os.wait4), peak RSS = GNU "
          f"time %M (max of 3 separate runs).")
    print()
    print("What the rows measure:")
    print("  drydock: `drydock scan oci:LAYOUT:TAG --ignore-unfixed --format json --data-dir DATA` (the default "
          "command: no advisory store in DATA, findings from the live security-repository feed of the image's "
          "<codename>-security pocket; feed state filled online by one unmeasured --security-repo-max-age 0 run "
          "before the row, then reused, verified InRelease kept for the default hour: no network on the clock, "
          "checked with strace)")
    print("  trivy:   `trivy image --input LAYOUT:TAG --scanners vuln --pkg-types os --ignore-unfixed --format json "
          "--skip-db-update --skip-java-db-update --offline-scan --quiet --cache-dir C`, C/db/trivy.db built by "
          "scripts/bench/trivydb.py from the same pocket for this image (per installed source behind the pocket: "
          "each CVE its upload's changelog names, fixed version and urgency from the changelog)")
    print("  warm:    drydock's layer cache (DATA/scan-cache/layers) and Trivy's scan cache (C/fanal) filled by one "
          "unmeasured run each; cold: DATA/scan-cache/layers removed before each drydock run (feed state kept), "
          "everything in C but db/ removed before each Trivy run (DB kept)")
    for row in rows:
        r = results["rows"][row.slug]
        db = r["trivy_db"]
        net = r["network"]
        print()
        print(f"## {r['label']}: oci:{r['image']}")
        print(f"{r['os']}, {r['packages']} packages from {r['sources']} sources ({r['dpkg_database']}). "
              f"Load average {r['load_start']} -> {r['load_end']}.")
        print(f"Trivy DB {db['path']}: {db['advisories']} advisories ({db['cves']} CVEs) for the "
              f"{db['sources_behind_pocket']} installed sources behind {db['suite']} ({db['arch']}, InRelease Date "
              f"{db['inrelease_date']}); drydock's feed read InRelease Date {', '.join(r['drydock_feed']['inrelease_dates'])}"
              f" -> {'same pocket snapshot' if r['same_pocket_snapshot'] else '*** DIFFERENT SNAPSHOTS ***'}.")
        print(f"drydock: {r['commands']['drydock']}")
        print(f"trivy:   {r['commands']['trivy']}")
        print_findings(r["findings"])
        print(f"Network on the clock: {'none' if net['no_network_on_the_clock'] else '*** YES ***'} (strace -f of the "
              f"measured commands warm and cold after the row: "
              + ", ".join(f"{k} {'n/a' if v is None else str(v['inet_connects']) + ' inet connects'}"
                          for k, v in net["checks"].items())
              + f"; stored InRelease {'refetched' if net['inrelease_refetched_during_row'] else 'not refetched'}, "
              f"{net['seconds_since_feed_fetch']:.0f} s after the feed fetch)")
        print()
        table(r, ["drydock", "trivy"])
        for name, s in r["extra_warm"].items():
            print(f"| warm | {name} | {s['median_ms']:.1f} | {s['min_ms']:.1f}–{s['max_ms']:.1f} | "
                  f"{s['cpu_ms']:.0f} | {fmt_rss(s)} | {s['n']} |")
        print()
        print(f"ratio trivy/drydock (median wall): warm {r['warm_ratio']:.1f}x, cold {r['cold_ratio']:.1f}x")

    inv_row = args.inventory_row and results["rows"][args.inventory_row]
    if inv_row:
        print()
        print(f"## Inventory only, {inv_row['label']} (second comparison: no vulnerability data on either side)")
        print(f"drydock: {inv_row['commands']['drydock-inventory']}   (no store, no feed: a CycloneDX inventory; "
              f"{inv_row['drydock_inventory_packages']} packages)")
        print(f"trivy:   {inv_row['commands']['trivy-sbom']}   (Trivy's SBOM, no vulnerability scan; "
              f"{inv_row['trivy_sbom_packages']} packages)")
        print("cold: drydock's layer cache removed / Trivy's cache dir removed before each run; warm: both kept.")
        print()
        table(inv_row, ["drydock-inventory", "trivy-sbom"])
        print()
        print(f"ratio trivy/drydock (median wall), inventory vs inventory: warm {inv_row['warm_ratio_inventory']:.1f}x, "
              f"cold {inv_row['cold_ratio_inventory']:.1f}x")

    if args.target_row and args.target_row in results["rows"]:
        r = results["rows"][args.target_row]
        dw = r["warm"]["drydock"]["median_ms"]
        rss = [r[p]["drydock"]["rss_mib"] for p in ("cold", "warm")]
        met = lambda ok: "MET" if ok else "MISSED"
        targets = {
            "warm >= 10x Trivy's vulnerability scan": (r["warm_ratio"] >= 10, f"{r['warm_ratio']:.2f}x"),
            "drydock warm <= 15 ms": (dw <= 15, f"{dw:.1f} ms median"),
            "cold >= 3x Trivy's cold": (r["cold_ratio"] >= 3, f"{r['cold_ratio']:.2f}x"),
            "drydock peak RSS <= 32 MiB": (None not in rss and max(rss) <= 32,
                                           "n/a" if None in rss else f"{max(rss):.1f} MiB"),
            "identical findings": (r["findings"]["identical"],
                                   "identical" if r["findings"]["identical"] else "DIFFERENT"),
        }
        print()
        print(f"Targets on {r['label']}:")
        for name, (ok, value) in targets.items():
            print(f"  {name}: {met(ok)} ({value})")
        results["targets"] = {name: {"met": ok, "value": value} for name, (ok, value) in targets.items()}
    different = [s for s, r in results["rows"].items() if not r["findings"]["identical"]]
    if different:
        print()
        print(f"!!! FINDINGS DIFFER between drydock and Trivy on: {', '.join(different)} (see above)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"\n[bench] results: {args.json}", file=sys.stderr)


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
    r.add_argument("--row", nargs=3, action="append", required=True, metavar=("SLUG", "LAYOUT:TAG", "LABEL"))
    r.add_argument("--inventory-row", default=None, help="the row that also gets the inventory-only comparison")
    r.add_argument("--target-row", default=None, help="the row the targets are checked on")
    r.add_argument("--runs", type=int, default=10)
    r.add_argument("--cold-runs", type=int, default=5)
    r.add_argument("--workdir", required=True)
    r.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.command == "packages":
        try:
            inv = trivydb.image_inventory(f"{os.path.abspath(args.layout)}:{args.tag}", trivydb.DEFAULT_WORK)
        except trivydb.Failure as e:
            sys.exit(f"scan.py: {e}")
        pkgs = inv["packages"]
        print(f"{len(pkgs)} installed packages from {len({p['source'] for p in pkgs})} source packages")
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
