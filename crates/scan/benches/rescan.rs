//! Rescanning 1,000 tags that share 20 base images (target: ≤ 5 s), in one
//! process with one [`Scanner`] over a warm advisory store and the live
//! security-repository feed (its state filled once before the rounds). See
//! docs/performance.md; `scripts/bench/scan.sh` runs it.
//!
//! Fixtures, built once and kept under `target/bench-fixtures/scan/` (or
//! `$BENCH_FIXTURES`):
//! - `debian/` — Debian 12 with nginx, curl and openssl (debootstrap, via
//!   `scripts/build-debian-image.sh`; needs root), one big layer;
//! - `data/advisories.db` — the store imported from `tracker.json`, the
//!   synthetic Debian Security Tracker feed `scripts/bench/scan.py tracker`
//!   writes (deterministic);
//! - `rescan/` — one OCI layout with 20 base images and 1,000 tags. Base `b`
//!   is the Debian layer plus a layer of its own that rewrites
//!   `/var/lib/dpkg/status` with `b + 1` more packages (as an `apt-get
//!   install` layer would), so the 20 bases have 20 different inventories.
//!   Each tag is base `tag % 20` plus a tiny top layer of its own (an "app"
//!   file), so all 1,000 manifests, configs and top layers are distinct.
//!
//! Each round scans every tag with an empty layer cache (cold: the Debian
//! layer is read once, each base layer once, each top layer once), then
//! again with the cache filled (warm), rendering each report as Trivy JSON
//! as the CLI would. Prints total wall, per-scan mean and the process's peak
//! RSS per phase (VmHWM, reset between phases); medians over rounds.
//!
//! Runs only under `cargo bench` (or with `DRYDOCK_BENCH_RUN=1`), so
//! `cargo test --all-targets` does not spend minutes here.
//!
//! Two ways, each measured: one Scanner scanning the tags one after another,
//! and one thread per core each with a Scanner of its own (its own store
//! connection; the layer cache directory is shared), as a rescan job on a
//! multi-core machine would run.
//!
//! Environment: `BENCH_ROUNDS` (default 3), `BENCH_TAGS` (1000),
//! `BENCH_BASES` (20), `BENCH_WORKERS` (the number of cores), `BENCH_FIXTURES`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use advisory::{SecurityRepo, SecurityRepoOptions, Store};
use oci::{ClientOptions, Digest};
use scan::render::{self, Format};
use scan::{Scanner, ScannerOptions};
use serde_json::{Value, json};

const DEBIAN_TAG: &str = "12-nginx";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Bump when the rescan layout's recipe changes, so a stale one is rebuilt.
const RECIPE: &str = "rescan-v1";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest");
    layout.join("blobs").join(alg).join(hex)
}

/// Writes `bytes` as a blob of `layout`; returns its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = Digest::sha256_of(bytes).to_string();
    let path = blob_path(layout, &digest);
    if !path.exists() {
        std::fs::write(&path, bytes).unwrap();
    }
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// A gzip layer holding `files` (path, content); returns (gzip bytes, diff ID).
fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *content).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&tar).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The Debian image's manifest (resolved by tag) and config.
fn debian_image(layout: &Path) -> (Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == DEBIAN_TAG)
        .expect("the Debian image's tag");
    let manifest = read_json(&blob_path(layout, entry["digest"].as_str().unwrap()));
    let config = read_json(&blob_path(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    (manifest, config)
}

/// `/var/lib/dpkg/status` of the Debian image's (single) layer.
fn debian_status(layout: &Path, manifest: &Value) -> String {
    let mut status = None;
    for l in manifest["layers"].as_array().unwrap() {
        let file = std::fs::File::open(blob_path(layout, l["digest"].as_str().unwrap())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if path.trim_start_matches("./") == "var/lib/dpkg/status" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                status = Some(text);
            }
        }
    }
    status.expect("the Debian image has a dpkg status")
}

fn ensure_debian(fixtures: &Path) -> PathBuf {
    let layout = fixtures.join("debian");
    let built = std::fs::read_to_string(layout.join("index.json"))
        .is_ok_and(|i| i.contains(&format!("\"{DEBIAN_TAG}\"")));
    if !built {
        eprintln!(
            "[rescan] building the Debian 12 image (debootstrap, needs root; a minute or two)"
        );
        run(Command::new("bash")
            .arg(repo_root().join("scripts/build-debian-image.sh"))
            .arg("bookworm")
            .arg(&layout)
            .arg(DEBIAN_TAG)
            .arg("http://deb.debian.org/debian")
            .arg("nginx,curl,openssl"));
    }
    layout
}

fn ensure_store(fixtures: &Path, debian: &Path) -> PathBuf {
    let db = fixtures.join("data/advisories.db");
    if db.exists() {
        return db;
    }
    let feed = fixtures.join("tracker.json");
    if !feed.exists() {
        eprintln!("[rescan] generating the synthetic tracker feed");
        run(Command::new("python3")
            .arg(repo_root().join("scripts/bench/scan.py"))
            .arg("tracker")
            .arg(debian)
            .arg(DEBIAN_TAG)
            .arg(&feed));
    }
    eprintln!("[rescan] importing {}", feed.display());
    let feeds = advisory::feeds::load(&[feed], None).expect("load the feed");
    let temp = fixtures.join("data/advisories.db.tmp");
    let _ = std::fs::remove_file(&temp);
    Store::open(&temp)
        .expect("create the store")
        .replace_feeds(&feeds)
        .expect("import the feed");
    std::fs::rename(&temp, &db).unwrap();
    db
}

/// The 20-base, 1,000-tag layout.
fn ensure_rescan_layout(fixtures: &Path, debian: &Path, bases: usize, tags: usize) -> PathBuf {
    let layout = fixtures.join(format!("rescan-{bases}x{tags}"));
    let marker = layout.join(".complete");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == RECIPE) {
        return layout;
    }
    eprintln!(
        "[rescan] building {} ({bases} bases, {tags} tags)",
        layout.display()
    );
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&layout);
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let (manifest, config) = debian_image(debian);
    let status = debian_status(debian, &manifest);
    // The Debian layer(s), shared by every image: hard-linked (copied across file systems).
    let base_layers: Vec<Value> = manifest["layers"].as_array().unwrap().clone();
    for l in &base_layers {
        let digest = l["digest"].as_str().unwrap();
        let to = blob_path(&layout, digest);
        if std::fs::hard_link(blob_path(debian, digest), &to).is_err() {
            std::fs::copy(blob_path(debian, digest), &to).unwrap();
        }
    }
    let base_diff_ids: Vec<Value> = config["rootfs"]["diff_ids"].as_array().unwrap().clone();

    // Per base: a layer that rewrites the dpkg status with b + 1 more packages.
    let mut base_extra = Vec::new();
    for b in 0..bases {
        let mut text = status.trim_end().to_string();
        text.push('\n');
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for k in 0..=b {
            let name = format!("bench-tool-{b}-{k}");
            text.push_str(&format!(
                "\nPackage: {name}\nStatus: install ok installed\nPriority: optional\nSection: utils\n\
                 Installed-Size: {}\nMaintainer: drydock bench <bench@drydock.invalid>\nArchitecture: amd64\n\
                 Version: 1.{b}.{k}-1\nDescription: benchmark package {k} of base {b}\n",
                16 + k
            ));
            files.push((
                format!("usr/bin/{name}"),
                format!("#!/bin/sh\necho {name}\n").into_bytes(),
            ));
        }
        files.push(("var/lib/dpkg/status".into(), text.into_bytes()));
        files.push(("etc/bench-base".into(), format!("base {b}\n").into_bytes()));
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        let (gz, diff_id) = layer(&refs);
        base_extra.push((put_blob(&layout, LAYER_GZIP, &gz), diff_id));
    }

    let mut index_entries = Vec::with_capacity(tags);
    for t in 0..tags {
        let b = t % bases;
        let app = format!(
            "app {t} on base {b}\nbuild {}\n",
            Digest::sha256_of(t.to_string().as_bytes())
        );
        let (gz, top_diff_id) = layer(&[
            (&format!("srv/app/tag-{t}.txt"), app.as_bytes()),
            ("srv/app/VERSION", format!("1.0.{t}\n").as_bytes()),
        ]);
        let top = put_blob(&layout, LAYER_GZIP, &gz);
        let mut diff_ids = base_diff_ids.clone();
        diff_ids.push(Value::String(base_extra[b].1.clone()));
        diff_ids.push(Value::String(top_diff_id));
        let mut cfg = config.clone();
        cfg["rootfs"]["diff_ids"] = Value::Array(diff_ids);
        cfg["created"] = Value::String(format!("2026-01-01T00:{:02}:{:02}Z", t / 60 % 60, t % 60));
        cfg["config"]["Labels"] = json!({"bench.tag": t.to_string(), "bench.base": b.to_string()});
        let cfg_desc = put_blob(&layout, CONFIG, &serde_json::to_vec(&cfg).unwrap());
        let mut layers = base_layers.clone();
        layers.push(base_extra[b].0.clone());
        layers.push(top);
        let m = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": cfg_desc,
            "layers": layers,
        });
        let mut desc = put_blob(&layout, MANIFEST, &serde_json::to_vec(&m).unwrap());
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag_name(t)});
        index_entries.push(desc);
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index_entries});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(&marker, RECIPE).unwrap();
    eprintln!("[rescan] built in {:.1?}", started.elapsed());
    layout
}

fn tag_name(t: usize) -> String {
    format!("app-{t:04}")
}

/// This process's peak RSS since the last reset, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Pass {
    wall: Duration,
    rss_kib: u64,
    findings: usize,
    packages: usize,
}

/// How long the bench reuses the security pocket's verified `InRelease`
/// (drydock's default is an hour; the bench must not refetch mid-round).
const FEED_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A scanner as `drydock scan` builds one: the advisory store and the live
/// security-repository feed, whose state (verified `InRelease`, versions,
/// changelogs) lives in `feed_cache`, apart from the layer cache in `cache`.
fn scanner(db: &Path, cache: &Path, feed_cache: &Path) -> Scanner {
    let feed = SecurityRepo::new(SecurityRepoOptions {
        max_age: Some(FEED_MAX_AGE),
        ..SecurityRepoOptions::new(feed_cache, oci::SharedHttp::default())
    })
    .expect("the security-repository feed");
    Scanner::new(
        Some(Store::open_existing(db).expect("open the advisory store")),
        Some(feed),
        ScannerOptions {
            cache_dir: cache.to_path_buf(),
            registry: ClientOptions::default(),
            filters: Default::default(),
            clock: Default::default(),
        },
    )
    .expect("scanner")
}

/// Scans tags `worker`, `worker + workers`, … with `scanner`; (findings, packages).
fn scan_share(
    scanner: &Scanner,
    layout: &Path,
    tags: usize,
    worker: usize,
    workers: usize,
) -> (usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut findings = 0;
    let mut packages = 0;
    for t in (worker..tags).step_by(workers) {
        let image = format!("oci:{}:{}", layout.display(), tag_name(t));
        let report = runtime
            .block_on(scanner.scan(&image))
            .unwrap_or_else(|e| panic!("{image}: {e}"));
        let text = render::render(&report, Format::Json);
        std::hint::black_box(text);
        findings += report
            .results
            .iter()
            .map(|r| r.findings.len())
            .sum::<usize>();
        packages += report
            .results
            .iter()
            .map(|r| r.packages.len())
            .sum::<usize>();
    }
    (findings, packages)
}

/// One pass over every tag: `scanners.len()` threads, each with its own
/// Scanner (its own store connection), sharing the layer cache directory.
/// Hands the scanners back for the next pass.
fn pass(scanners: Vec<Scanner>, layout: &Path, tags: usize) -> (Pass, Vec<Scanner>) {
    reset_peak_rss();
    let started = Instant::now();
    let workers = scanners.len();
    let done: Vec<(Scanner, (usize, usize))> = std::thread::scope(|scope| {
        let handles: Vec<_> = scanners
            .into_iter()
            .enumerate()
            .map(|(w, s)| {
                scope.spawn(move || {
                    let counts = scan_share(&s, layout, tags, w, workers);
                    (s, counts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let pass = Pass {
        wall: started.elapsed(),
        rss_kib: peak_rss_kib(),
        findings: done.iter().map(|d| d.1.0).sum(),
        packages: done.iter().map(|d| d.1.1).sum(),
    };
    (pass, done.into_iter().map(|d| d.0).collect())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    let benching =
        std::env::args().any(|a| a == "--bench") || std::env::var_os("DRYDOCK_BENCH_RUN").is_some();
    if !benching {
        eprintln!("rescan: a benchmark; run it with `cargo bench -p scan --bench rescan`");
        return;
    }
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let tags = env_usize("BENCH_TAGS", 1000);
    let bases = env_usize("BENCH_BASES", 20).clamp(1, tags.max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = env_usize("BENCH_WORKERS", cores).max(1);
    let fixtures = std::env::var_os("BENCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/bench-fixtures/scan"));
    std::fs::create_dir_all(fixtures.join("data")).unwrap();
    let debian = ensure_debian(&fixtures);
    let db = ensure_store(&fixtures, &debian);
    phases(&debian, &db, &fixtures);
    let layout = ensure_rescan_layout(&fixtures, &debian, bases, tags);
    // The feed's state is filled once (online), off the clock, as Trivy's database would be.
    let feed_cache = fixtures.join("feed-cache");
    {
        let warm_up = fixtures.join(format!("rescan-feed-warm-up-{}", std::process::id()));
        let (pass, _) = pass(vec![scanner(&db, &warm_up, &feed_cache)], &layout, bases);
        let _ = std::fs::remove_dir_all(&warm_up);
        eprintln!(
            "[rescan] security-repository feed ready ({} findings over {bases} tags)",
            pass.findings
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // What resolving one tag costs in this layout (index.json with every tag): a scan does it twice.
    let resolve_ms = {
        let opened = runtime.block_on(oci::OciLayout::open(&layout)).unwrap();
        let started = Instant::now();
        for t in 0..50 {
            runtime
                .block_on(opened.resolve(Some(&tag_name(t * tags / 50))))
                .unwrap();
        }
        started.elapsed().as_secs_f64() * 1000.0 / 50.0
    };
    let mut rows: Vec<(String, Vec<Pass>)> = Vec::new();
    let mut worker_counts = vec![1];
    if workers > 1 {
        worker_counts.push(workers);
    }
    for &n in &worker_counts {
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let cache = tempfile_dir(&fixtures, round);
            let scanners: Vec<Scanner> =
                (0..n).map(|_| scanner(&db, &cache, &feed_cache)).collect();
            let (c, scanners) = pass(scanners, &layout, tags);
            let (w, scanners) = pass(scanners, &layout, tags);
            assert_eq!(
                (c.findings, c.packages),
                (w.findings, w.packages),
                "cold and warm scans disagree"
            );
            eprintln!(
                "[rescan] {n} worker(s), round {}: cold {:.2} s ({:.0} MiB), warm {:.2} s ({:.0} MiB); {} packages, {} findings in all",
                round + 1,
                c.wall.as_secs_f64(),
                c.rss_kib as f64 / 1024.0,
                w.wall.as_secs_f64(),
                w.rss_kib as f64 / 1024.0,
                w.packages,
                w.findings
            );
            cold.push(c);
            warm.push(w);
            drop(scanners);
            let _ = std::fs::remove_dir_all(&cache);
        }
        let who = if n == 1 {
            "1 Scanner, sequential".to_string()
        } else {
            format!("{n} threads, a Scanner each")
        };
        rows.push((format!("cold (empty layer cache), {who}"), cold));
        rows.push((format!("warm (layer cache filled), {who}"), warm));
    }

    println!();
    println!(
        "Rescan of {tags} tags sharing {bases} base images, in one process; each report rendered as Trivy JSON; \
         median of {rounds} rounds (min–max)."
    );
    println!();
    println!(
        "| phase | total wall s | min–max s | per scan ms | peak RSS MiB | packages | findings |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut verdicts = Vec::new();
    for (name, passes) in &rows {
        let walls: Vec<f64> = passes.iter().map(|p| p.wall.as_secs_f64()).collect();
        let m = median(walls.clone());
        let lo = walls.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = walls.iter().cloned().fold(0.0, f64::max);
        let rss = passes.iter().map(|p| p.rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        println!(
            "| {name} | {m:.2} | {lo:.2}–{hi:.2} | {:.2} | {rss:.1} | {} | {} |",
            m * 1000.0 / tags as f64,
            passes[0].packages,
            passes[0].findings
        );
        verdicts.push(format!(
            "{name}: {} ({m:.2} s)",
            if m <= 5.0 { "MET" } else { "MISSED" }
        ));
    }
    println!();
    println!(
        "Resolving one tag in this {tags}-tag layout (reading and parsing index.json): {resolve_ms:.2} ms; \
         each scan resolves twice."
    );
    println!("target rescan of {tags} tags <= 5 s:");
    for v in verdicts {
        println!("  {v}");
    }
}

/// A fresh, empty cache directory for one round.
fn tempfile_dir(fixtures: &Path, round: usize) -> PathBuf {
    let dir = fixtures.join(format!("rescan-cache-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where one warm scan of the Debian image spends its time, phase by phase,
/// as the CLI does them (median of 50 repetitions, in-process, so without
/// process start-up and exit).
fn phases(debian: &Path, db: &Path, fixtures: &Path) {
    use pkgdb::inventory::{LayerCache as _, from_layout};
    use scan::matching;
    use scan::scanner::DiskLayerCache;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache_dir = tempfile_dir(fixtures, 999);
    let cache = DiskLayerCache::new(cache_dir.join("layers"));
    let layout = runtime.block_on(oci::OciLayout::open(debian)).unwrap();
    // Fill the cache.
    runtime
        .block_on(from_layout(
            &layout,
            Some(DEBIAN_TAG),
            &cache,
            pkgdb::ScanLimits::default(),
        ))
        .unwrap();
    let (manifest, _) = debian_image(debian);
    let layer: Digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let names = [
        "open the advisory store (SQLite)",
        "registry client (TLS roots; unused for oci:)",
        "open layout, resolve tag",
        "  of which: layer-cache entry read + decode",
        "inventory from layout (cache warm)",
        "advisories for the image's sources (packed, as the scanner reads them)",
        "matching (advisory views + decisions)",
        "render JSON (Trivy schema)",
        "render CycloneDX",
        "render table",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut counts = (0, 0, 0, 0);
    for _ in 0..50 {
        let mut lap = Instant::now();
        let mut mark = |i: usize, samples: &mut Vec<Vec<f64>>| {
            samples[i].push(lap.elapsed().as_secs_f64() * 1000.0);
            lap = Instant::now();
        };
        let store = Store::open_existing(db).unwrap();
        mark(0, &mut samples);
        let client = oci::RegistryClient::new(ClientOptions::default()).unwrap();
        std::hint::black_box(&client);
        mark(1, &mut samples);
        let layout = runtime.block_on(oci::OciLayout::open(debian)).unwrap();
        runtime.block_on(layout.resolve(Some(DEBIAN_TAG))).unwrap();
        mark(2, &mut samples);
        std::hint::black_box(cache.get(&layer).expect("cached"));
        mark(3, &mut samples);
        let inventory = runtime
            .block_on(from_layout(
                &layout,
                Some(DEBIAN_TAG),
                &cache,
                pkgdb::ScanLimits::default(),
            ))
            .unwrap();
        mark(4, &mut samples);
        let (distro, family) = matching::distro_of(inventory.os.as_ref().unwrap()).unwrap();
        let mut sources: Vec<&str> = inventory
            .packages
            .iter()
            .map(|p| p.source_name.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let packed = store.packed_advisories_for_many(&distro, &sources).unwrap();
        mark(5, &mut samples);
        // One feed in the bench store: each source's views are already in order.
        let views: std::collections::BTreeMap<&str, Vec<advisory::AdvisoryView>> = packed
            .iter()
            .map(|(source, feeds)| {
                let views = feeds.iter().flat_map(|feed| feed.views().unwrap());
                (source.as_str(), views.collect())
            })
            .collect();
        let findings =
            matching::findings_from_views(family, &inventory.packages, &views, &Default::default());
        let advisories_read = views.values().map(Vec::len).sum::<usize>();
        drop(views);
        mark(6, &mut samples);
        let report = scan::Report {
            artifact_name: "bench".into(),
            artifact_digest: None,
            os: None,
            image_config: inventory.image_config.clone().unwrap_or_default(),
            results: vec![scan::TargetResult {
                target: "bench".into(),
                family,
                packages: inventory.packages.iter().map(matching::entry).collect(),
                findings,
            }],
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        std::hint::black_box(render::render(&report, Format::Json));
        mark(7, &mut samples);
        std::hint::black_box(render::render(&report, Format::CycloneDx));
        mark(8, &mut samples);
        std::hint::black_box(render::render(&report, Format::Table));
        mark(9, &mut samples);
        counts = (
            inventory.packages.len(),
            sources.len(),
            advisories_read,
            report.results[0].findings.len(),
        );
    }
    let _ = std::fs::remove_dir_all(&cache_dir);
    println!();
    println!(
        "Phases of one warm scan of the Debian image ({} packages, {} sources, {} advisories read, {} findings); \
         in-process, median of 50:",
        counts.0, counts.1, counts.2, counts.3
    );
    println!();
    println!("| phase | median ms |");
    println!("|---|---|");
    let mut total = 0.0;
    for (i, name) in names.iter().enumerate() {
        let m = median(samples[i].clone());
        if i != 3 {
            total += m;
        }
        println!("| {name} | {m:.2} |");
    }
    println!("| total (in-process) | {total:.2} |");
}
