#!/usr/bin/env python3
"""Workflow benchmark (Python stdlib only). See docs/performance.md.

A continuous-patching workflow over 100 tags (20 base images x 5 tags) on
the embedded registry of one `drydock serve`, with the package cache warm:
wall time from `drydock workflow create --run-immediately` to the last run's
end, every image scanned and patched; plus the server's RSS when idle (after
start-up, and again after the work) and its peak during the run.

  workflow.py --drydock BIN --layout DIR --tag TAG [--bases 20] [--tags-per-base 5]

The images: base b is the given image plus a small layer of its own (a
file under /etc), and tag t of base b adds another small layer, so the 100
images are all distinct and share 20 base stacks, as real registries do.
Warm-up (not timed): one image of the same content is patched first by a
workflow on a throw-away repository, which fills the download, index and
layer caches; then that workflow is deleted.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

ACR_BATCH, ACR_PAUSE = 10, 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request) as response:
        return response.status, dict(response.headers), response.read()


def small_layer(path, content):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(path)
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, mtime=0)
    return gz, "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def push_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = http("POST", f"{base}/v2/{repo}/blobs/uploads/")
    location = {k.lower(): v for k, v in headers.items()}["location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    http("PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return digest, len(data)


def derive(base, repo, manifest, config, name, content):
    """Pushes manifest+config with one more small layer; returns (manifest, config)."""
    layer, diff_id = small_layer(name, content)
    digest, size = push_blob(base, repo, layer)
    config = json.loads(json.dumps(config))
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created_by": f"bench: add {name}"})
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest, config_size = push_blob(base, repo, config_bytes)
    manifest = json.loads(json.dumps(manifest))
    manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
    return manifest, config


def put_manifest(base, repo, tag, manifest):
    body = json.dumps(manifest).encode()
    http("PUT", f"{base}/v2/{repo}/manifests/{tag}", body, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})


def get_json(base, path):
    return json.loads(http("GET", base + path, None, {"Accept": "application/vnd.oci.image.manifest.v1+json"})[2])


def wait_runs(drydock, env, workflow, timeout=1800):
    start = time.monotonic()
    while True:
        out = subprocess.run([drydock, "task", "list-runs", "--workflow", workflow, "--top", "1000", "--output", "json"],
                             env=env, capture_output=True, text=True, check=True).stdout
        runs = json.loads(out)
        if runs and all(r["status"] not in ("Queued", "Running") for r in runs):
            return runs
        if time.monotonic() - start > timeout:
            sys.exit(f"runs did not finish in {timeout}s")
        time.sleep(0.25)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--drydock", required=True)
    parser.add_argument("--layout", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--bases", type=int, default=20)
    parser.add_argument("--tags-per-base", type=int, default=5)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    total = args.bases * args.tags_per_base

    work = tempfile.mkdtemp(prefix="drydock-bench-workflow-")
    data = os.path.join(work, "data")
    port = free_port()
    listen = f"127.0.0.1:{port}"
    base = f"http://{listen}"
    env = dict(os.environ, DRYDOCK_URL=base, DRYDOCK_DATA_DIR=data, DRYDOCK_LOG="warn")
    serve = subprocess.Popen([args.drydock, "serve", "--listen", listen, "--data-dir", data,
                              "--parallelism", str(args.parallelism)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    serve.stdout.readline()
    time.sleep(1.0)
    idle_start = rss_kib(serve.pid, "VmRSS")
    try:
        run = lambda *a: subprocess.run([args.drydock, *a], env=env, check=True, capture_output=True, text=True).stdout
        run("import", f"oci:{args.layout}:{args.tag}", f"{listen}/warmup:1")
        run("import", f"oci:{args.layout}:{args.tag}", f"{listen}/bench:original")

        # Warm-up: the same packages, downloaded and indexed once; then the workflow is removed.
        config_path = os.path.join(work, "warmup.json")
        with open(config_path, "w") as f:
            json.dump({"version": "v1", "repositories": [{"repository": "warmup", "tags": ["1"]}]}, f)
        run("workflow", "create", "--name", "warmup", "--config", config_path, "--schedule", "30d", "--run-immediately")
        warm = wait_runs(args.drydock, env, "warmup")
        if not any(r["kind"] == "patch" and r["status"] == "Succeeded" for r in warm):
            sys.exit(f"the warm-up patch did not succeed: {warm}")
        run("workflow", "delete", "--name", "warmup", "--yes")

        # 100 distinct images over 20 base stacks, in one repository.
        original = get_json(base, "/v2/bench/manifests/original")
        config = json.loads(http("GET", f"{base}/v2/bench/blobs/{original['config']['digest']}")[2])
        for b in range(args.bases):
            base_manifest, base_config = derive(base, "bench", original, config, f"etc/bench-base-{b}", f"base {b}\n".encode())
            for t in range(args.tags_per_base):
                manifest, _ = derive(base, "bench", base_manifest, base_config, f"etc/bench-tag-{t}", f"tag {b}.{t}\n".encode())
                put_manifest(base, "bench", f"b{b}-t{t}", manifest)
        tags = [f"b{b}-t{t}" for b in range(args.bases) for t in range(args.tags_per_base)]
        config_path = os.path.join(work, "bench.json")
        with open(config_path, "w") as f:
            json.dump({"version": "v1", "repositories": [{"repository": "bench", "tags": tags}]}, f)

        started = time.monotonic()
        run("workflow", "create", "--name", "bench", "--config", config_path, "--schedule", "30d", "--run-immediately")
        peak = 0
        while True:
            peak = max(peak, rss_kib(serve.pid, "VmRSS"))
            out = subprocess.run([args.drydock, "task", "list-runs", "--workflow", "bench", "--top", "1000", "--output", "json"],
                                 env=env, capture_output=True, text=True, check=True).stdout
            runs = json.loads(out)
            if runs and all(r["status"] not in ("Queued", "Running") for r in runs):
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        hwm = rss_kib(serve.pid, "VmHWM")
        # Idle: the blocking pool's threads end after 10 s unused, and the
        # scheduler's 15 s tick returns freed memory.
        time.sleep(20)
        idle_after = rss_kib(serve.pid, "VmRSS")
        if os.environ.get("BENCH_SMAPS"):
            sizes = {}
            name = ""
            with open(f"/proc/{serve.pid}/smaps") as f:
                for line in f:
                    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                        parts = line.split()
                        name = parts[5] if len(parts) > 5 else "[anon]"
                    elif line.startswith("Rss:"):
                        sizes[name] = sizes.get(name, 0) + int(line.split()[1])
            for name, kib in sorted(sizes.items(), key=lambda x: -x[1])[:6]:
                print(f"  smaps {kib / 1024:.1f} MiB {name}")
            print("  threads", rss_kib(serve.pid, "Threads"))

        def count(kind, status):
            return sum(1 for r in runs if r["kind"] == kind and r["status"] == status)
        patched = count("patch", "Succeeded")
        failed = [r for r in runs if r["status"] == "Failed"]
        tags_after = json.loads(run("repo", "tags", "bench"))
        new_tags = [t for t in tags_after if re.fullmatch(r"b\d+-t\d+-1", t)]
    finally:
        serve.terminate()
        serve.wait()
        shutil.rmtree(work, ignore_errors=True)

    def seconds(run):
        from datetime import datetime
        parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
        return (parse(run["finished_at"]) - parse(run["started_at"])).total_seconds()
    durations = {kind: sorted(seconds(r) for r in runs if r["kind"] == kind and r.get("started_at") and r.get("finished_at"))
                 for kind in ("scan", "patch")}
    acr_floor = (total // ACR_BATCH - 1) * ACR_PAUSE
    print(f"workflow over {total} tags ({args.bases} bases x {args.tags_per_base} tags), parallelism {args.parallelism}, package cache warm")
    print(f"  wall {elapsed:.1f} s  (target <= 60 s: {'MET' if elapsed <= 60 else 'MISSED'})")
    print(f"  scans {sum(1 for r in runs if r['kind'] == 'scan')}, patches succeeded {patched}, failed runs {len(failed)}, new -1 tags {len(new_tags)}")
    for kind, values in durations.items():
        if values:
            print(f"  {kind} run: median {statistics.median(values):.2f} s, max {values[-1]:.2f} s")
    print(f"  ACR's pacing alone (batches of {ACR_BATCH}, {ACR_PAUSE} s pauses): >= {acr_floor} s before any scanning -> {acr_floor / elapsed:.1f}x")
    print(f"  serve RSS: idle at start {idle_start / 1024:.1f} MiB, idle after {idle_after / 1024:.1f} MiB (target <= 50 MiB: {'MET' if max(idle_start, idle_after) <= 50 * 1024 else 'MISSED'}), peak {max(peak, hwm) / 1024:.1f} MiB")
    if failed:
        for r in failed[:5]:
            print("  failed:", r.get("id"), r.get("reason"))
        sys.exit(1)
    if patched != total or len(new_tags) != total:
        sys.exit(f"expected {total} patches, got {patched} ({len(new_tags)} new tags)")


if __name__ == "__main__":
    main()
