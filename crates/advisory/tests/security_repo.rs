//! The security-repository feed against Debian's and Ubuntu's live
//! archives. Expectations come from the archives and from apt itself at
//! test time, never hard-coded: the oracle is `apt list --upgradable` in a
//! chroot of a plain bookworm image whose sources list only
//! `bookworm-security`. The oracle test needs root (chroot) and
//! debootstrap/umoci (the image is built once, by `testkit`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use advisory::{Distro, Error, Family, InstalledSource, SecurityRepo, SecurityRepoOptions};
use repo::apt::packages::{self, IndexPackage};
use repo::distributions::{DEBIAN_KEYRING, UBUNTU_ARCHIVE_KEY};
use repo::{AptClient, Cache, Keyring, Suite};

const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";
const UBUNTU_ARCHIVE: &str = "http://archive.ubuntu.com/ubuntu";
const UBUNTU_SECURITY: &str = "http://security.ubuntu.com/ubuntu";

fn bookworm() -> Distro {
    Distro::new(Family::Debian, "bookworm")
}

fn http() -> oci::SharedHttp {
    oci::SharedHttp::default()
}

fn repo(cache: &Path, offline: bool) -> SecurityRepo {
    let mut options = SecurityRepoOptions::new(cache, http());
    options.offline = offline;
    SecurityRepo::new(options).unwrap()
}

fn host_architecture() -> String {
    testkit::run(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

/// A suite's `<component>/binary-<arch>/Packages` entries, via the repo crate.
async fn index(keyring: Keyring, suite: &Suite, component: &str) -> Vec<IndexPackage> {
    let cache = testkit::cache_dir().join("apt");
    let apt = AptClient::new(http(), Cache::new(cache), keyring);
    let verified = apt.release(suite).await.unwrap();
    let stem = format!("{component}/binary-{}/Packages", host_architecture());
    let bytes = apt.index(&verified, &stem).await.unwrap();
    packages::parse(&stem, &bytes).unwrap()
}

fn debian_keyring() -> Keyring {
    Keyring::from_files(&[DEBIAN_KEYRING]).unwrap()
}

fn ubuntu_keyring() -> Keyring {
    let mut keyring = Keyring::from_files(&[] as &[&str]).unwrap();
    keyring.add(UBUNTU_ARCHIVE_KEY).unwrap();
    keyring
}

/// Sources of `index` with their newest binary's source version and the
/// size of their smallest binary, smallest first.
fn small_sources(index: &[IndexPackage]) -> Vec<(String, String, u64)> {
    let mut sources: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for p in index {
        let slot = sources
            .entry(&p.source_name)
            .or_insert((&p.source_version, p.size));
        slot.1 = slot.1.min(p.size);
    }
    let mut sources: Vec<(String, String, u64)> = sources
        .into_iter()
        .map(|(s, (v, size))| (s.to_string(), v.to_string(), size))
        .collect();
    sources.sort_by_key(|s| (s.2, s.0.clone()));
    sources
}

// ---------------------------------------------------------------- oracle

/// A copy of the bookworm image whose apt sees only `bookworm-security`,
/// updated; removed on drop.
struct Chroot {
    root: PathBuf,
}

impl Chroot {
    fn new(image: &Path) -> Chroot {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("security-repo-chroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        testkit::run(Command::new("cp").arg("-a").arg(image).arg(&root));
        let chroot = Chroot { root };
        let etc_apt = chroot.root.join("etc/apt");
        std::fs::write(
            etc_apt.join("sources.list"),
            "deb http://deb.debian.org/debian-security bookworm-security main\n",
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(etc_apt.join("sources.list.d"));
        std::fs::create_dir_all(etc_apt.join("sources.list.d")).unwrap();
        // apt needs /dev/null and name resolution; nothing else is mounted.
        std::fs::create_dir_all(chroot.root.join("dev")).unwrap();
        testkit::run(
            Command::new("mknod")
                .args(["-m", "666"])
                .arg(chroot.root.join("dev/null"))
                .args(["c", "1", "3"]),
        );
        std::fs::copy("/etc/resolv.conf", chroot.root.join("etc/resolv.conf")).unwrap();
        chroot.run(&["apt-get", "update", "-q"]);
        chroot
    }

    fn run(&self, args: &[&str]) -> String {
        testkit::run(
            Command::new("chroot")
                .arg(&self.root)
                .args(args)
                .env("LC_ALL", "C"),
        )
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `name/suite version arch [upgradable from: old]` lines → (name, candidate version).
fn upgradable(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .filter(|l| l.contains("[upgradable from:"))
        .map(|l| {
            let (name, rest) = l.split_once('/').unwrap();
            let version = rest.split_whitespace().nth(1).unwrap();
            (name.to_string(), version.to_string())
        })
        .collect()
}

/// `Source: name (version)` of an `apt-cache show` paragraph, defaulting to the package's own.
fn source_of(paragraph: &str) -> (String, String) {
    let field = |name| testkit::field(paragraph, name);
    let package = field("Package").unwrap();
    let version = field("Version").unwrap();
    match field("Source") {
        None => (package, version),
        Some(source) => match source.split_once(" (") {
            Some((name, v)) => (name.to_string(), v.trim_end_matches(')').to_string()),
            None => (source, version),
        },
    }
}

#[tokio::test]
async fn fixable_sources_equal_apt_upgradable_in_a_security_only_chroot() {
    let image = testkit::debian_rootfs(&testkit::debian_layout());
    let chroot = Chroot::new(&image);

    // The oracle: what apt would upgrade, as (source, source version of the candidate).
    let candidates = upgradable(&chroot.run(&["apt", "list", "--upgradable"]));
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    if !candidates.is_empty() {
        let mut show = vec!["apt-cache", "show"];
        let specs: Vec<String> = candidates.iter().map(|(n, v)| format!("{n}={v}")).collect();
        show.extend(specs.iter().map(String::as_str));
        for paragraph in chroot
            .run(&show)
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
        {
            let (source, version) = source_of(paragraph);
            expected.insert(source, version);
        }
    }

    // Our feed, given the image's installed sources.
    let inventory = pkgdb::inventory::from_dir(&chroot.root).unwrap();
    let installed: Vec<InstalledSource> = inventory
        .packages
        .iter()
        .map(InstalledSource::from)
        .collect();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("security-repo-cache");
    let feed = repo(&cache, false);
    let advisories = feed
        .advisories(&bookworm(), &host_architecture(), &installed)
        .await
        .unwrap();
    // Source → the suite's version, which the stable id of its upload names
    // (the advisory's own id, or the alias of each CVE of the upload).
    let mut reported: BTreeMap<String, String> = BTreeMap::new();
    for advisory in &advisories {
        let upload_id = if advisory.id.starts_with("DRYDOCK-") {
            advisory.id.clone()
        } else {
            advisory.details.aliases[0].clone()
        };
        let prefix = format!("DRYDOCK-DEBIAN-{}-", advisory.package);
        let upload = upload_id
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{}: {upload_id} is not its upload's id", advisory.id))
            .to_string();
        let fixed = advisory.status.fixed_version().unwrap();
        assert_ne!(
            pkgdb::version::dpkg::compare(fixed, &upload),
            std::cmp::Ordering::Greater,
            "{}: fixed in {fixed}, after the suite's {upload}",
            advisory.id
        );
        let previous = reported.insert(advisory.package.clone(), upload.clone());
        assert!(
            previous.is_none_or(|p| p == upload),
            "{}: two uploads",
            advisory.package
        );
        assert_eq!(advisory.distro, bookworm());
    }
    assert_eq!(
        reported.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "sources reported by the feed vs. sources of `apt list --upgradable`"
    );
    // Each upload is the security pocket's version of the source, apt's candidate.
    assert_eq!(reported, expected);
    eprintln!(
        "{} fixable sources, {} advisories: {:?}",
        reported.len(),
        advisories.len(),
        advisories.iter().map(|a| &a.id).collect::<Vec<_>>()
    );

    // At least one CVE id, and it is in the changelog apt's own download carries.
    let cve = advisories
        .iter()
        .find(|a| a.id.starts_with("CVE-"))
        .expect("no advisory with a CVE id among the fixable sources");
    let binaries: Vec<&str> = candidates
        .iter()
        .filter(|(name, _)| {
            inventory
                .packages
                .iter()
                .any(|p| &p.name == name && p.source_name == cve.package)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let mut texts = String::new();
    for binary in binaries {
        chroot.run(&[
            "sh",
            "-c",
            &format!("cd /tmp && apt-get download -q {binary}"),
        ]);
        for deb in std::fs::read_dir(chroot.root.join("tmp")).unwrap() {
            let deb = deb.unwrap().path();
            if deb.extension().is_none_or(|e| e != "deb") {
                continue;
            }
            let unpacked = chroot.root.join("tmp/unpacked");
            testkit::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
            let listing = testkit::run(
                Command::new("sh")
                    .arg("-c")
                    .arg("zcat usr/share/doc/*/changelog*.gz 2>/dev/null || true")
                    .current_dir(&unpacked),
            );
            texts.push_str(&listing);
            std::fs::remove_dir_all(&unpacked).unwrap();
            std::fs::remove_file(&deb).unwrap();
        }
        if texts.contains(&cve.id) {
            break;
        }
    }
    assert!(
        texts.contains(&cve.id),
        "{} ({}) is not in the changelogs of its upgradable binaries",
        cve.id,
        cve.package
    );
}

// ---------------------------------------------------------------- Ubuntu

#[tokio::test]
async fn ubuntu_noble_security_against_the_release_pocket() {
    let arch = host_architecture();
    if arch != "amd64" {
        eprintln!("skipped: ports.ubuntu.com is not reachable from every machine here");
        return;
    }
    let security = index(
        ubuntu_keyring(),
        &Suite::new(UBUNTU_SECURITY, "noble-security"),
        "main",
    )
    .await;
    let release = index(
        ubuntu_keyring(),
        &Suite::new(UBUNTU_ARCHIVE, "noble"),
        "main",
    )
    .await;
    let released: BTreeMap<&str, &str> = release
        .iter()
        .map(|p| (p.source_name.as_str(), p.source_version.as_str()))
        .collect();
    // A few sources with small binaries that the release pocket also has, "installed" at the
    // release pocket's version.
    let picked: Vec<(String, String, String)> = small_sources(&security)
        .into_iter()
        .filter_map(|(source, fixed, _)| {
            let old = released.get(source.as_str())?.to_string();
            (old != fixed).then_some((source, old, fixed))
        })
        .take(3)
        .collect();
    assert!(!picked.is_empty());
    let installed: Vec<InstalledSource> = picked
        .iter()
        .map(|(source, old, _)| InstalledSource {
            source_name: source.clone(),
            source_version: old.clone(),
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let feed = repo(cache.path(), false);
    let ubuntu = Distro::new(Family::Ubuntu, "24.04");
    let advisories = feed.advisories(&ubuntu, &arch, &installed).await.unwrap();
    for (source, _, _) in &picked {
        let found: Vec<_> = advisories.iter().filter(|a| &a.package == source).collect();
        assert!(!found.is_empty(), "nothing for {source}");
        for advisory in found {
            assert_eq!(advisory.severity_source.as_deref(), Some("ubuntu"));
            if advisory.id.starts_with("CVE-") {
                assert_eq!(
                    advisory.details.urls,
                    [format!("https://ubuntu.com/security/{}", advisory.id)]
                );
            } else {
                assert!(
                    advisory
                        .id
                        .starts_with(&format!("DRYDOCK-UBUNTU-{source}-"))
                );
            }
        }
    }
    eprintln!(
        "{:?}",
        advisories
            .iter()
            .map(|a| (&a.package, &a.id))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- cache and bad input

/// Two bookworm-security sources with small binaries, "installed" at a
/// version older than anything (so every changelog entry counts).
async fn two_small_sources() -> Vec<InstalledSource> {
    let security = index(
        debian_keyring(),
        &Suite::new(DEBIAN_SECURITY, "bookworm-security"),
        "main",
    )
    .await;
    small_sources(&security)
        .into_iter()
        .take(2)
        .map(|(source, _, _)| InstalledSource {
            source_name: source,
            source_version: "0~".into(),
        })
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn offline_uses_the_cache_and_damage_is_refetched() {
    let installed = two_small_sources().await;
    let arch = host_architecture();
    let cache = tempfile::tempdir().unwrap();

    // Offline with nothing cached: a clear error.
    let error = repo(cache.path(), true)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotCached { .. }), "{error}");
    assert!(error.to_string().contains("offline"), "{error}");

    let online = repo(cache.path(), false)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert!(!online.is_empty());
    let sources: BTreeSet<&str> = online.iter().map(|a| a.package.as_str()).collect();
    assert_eq!(sources.len(), installed.len());

    // Offline after one online run: the same answer from the cache alone.
    let offline = repo(cache.path(), true)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert_eq!(offline, online);

    // A damaged changelog record is detected: offline, that upload falls back to the
    // stable id; online, it is read again and rewritten.
    let records = files_under(&cache.path().join("security-repo/changelogs"));
    assert_eq!(records.len(), installed.len());
    let damaged = &records[0];
    let source = damaged
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let text = std::fs::read_to_string(damaged).unwrap();
    let forged = text.replacen(
        "\"entries\":[",
        "\"entries\":[{\"version\":\"0.1\",\"cves\":[\"CVE-1999-0001\"]},",
        1,
    );
    assert_ne!(forged, text, "{source} has no changelog entries");
    std::fs::write(damaged, forged).unwrap();
    let offline = repo(cache.path(), true)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert!(offline.iter().all(|a| a.id != "CVE-1999-0001"));
    let fallback: Vec<&str> = offline
        .iter()
        .filter(|a| a.package == source)
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(fallback.len(), 1, "{fallback:?}");
    assert!(fallback[0].starts_with(&format!("DRYDOCK-DEBIAN-{source}-")));
    let again = repo(cache.path(), false)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert_eq!(again, online);
    assert_eq!(std::fs::read_to_string(damaged).unwrap(), text);

    // A damaged cached index is detected.
    let downloads = files_under(&cache.path().join("sha256"));
    let index = downloads
        .iter()
        .find(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
                || bytes.starts_with(&[0x1f, 0x8b])
        })
        .expect("no cached index");
    let mut bytes = std::fs::read(index).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(index, &bytes).unwrap();
    // The upload selection derived from the verified index is kept apart and still serves offline…
    let derived = repo(cache.path(), true)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert_eq!(derived, online);
    // …and without it, the damaged index itself is refused offline and fetched again online.
    std::fs::remove_dir_all(cache.path().join("security-repo/uploads")).unwrap();
    let error = repo(cache.path(), true)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotCached { .. }), "{error}");
    let again = repo(cache.path(), false)
        .advisories(&bookworm(), &arch, &installed)
        .await
        .unwrap();
    assert_eq!(again, online);
}

#[tokio::test]
async fn unknown_releases_and_architectures_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let feed = repo(cache.path(), false);
    let installed = [InstalledSource {
        source_name: "zlib".into(),
        source_version: "1".into(),
    }];
    for distro in [
        Distro::new(Family::Debian, "nosuchrelease"),
        Distro::new(Family::Debian, "12"),
        Distro::new(Family::Ubuntu, "7.04"),
        Distro::new(Family::Alpine, "3.20"),
    ] {
        let error = feed
            .advisories(&distro, "amd64", &installed)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::UnknownRelease { .. }),
            "{distro}: {error}"
        );
        assert!(error.to_string().contains(&distro.release), "{error}");
    }
    let error = feed
        .advisories(&bookworm(), "vax", &installed)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoArchitecture { .. }), "{error}");
}

/// A mirror answering for `trixie-security` with bookworm-security's (validly
/// signed) InRelease is refused: a signature alone does not say which suite.
#[tokio::test]
async fn a_validly_signed_release_of_another_suite_is_refused() {
    let url = format!("{DEBIAN_SECURITY}/dists/bookworm-security/InRelease");
    let http = oci::client::http_client_builder().build().unwrap();
    let text = http.get(&url).send().await.unwrap().text().await.unwrap();
    let app = axum::Router::new().fallback(move || {
        let text = text.clone();
        async move { text }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cache = tempfile::tempdir().unwrap();
    let mut options = SecurityRepoOptions::new(cache.path(), oci::SharedHttp::default());
    options.debian_mirror = Some(format!("http://{address}"));
    let feed = SecurityRepo::new(options).unwrap();
    let error = feed
        .advisories(&Distro::new(Family::Debian, "trixie"), "amd64", &[])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::WrongSuite { .. }), "{error}");
}

#[test]
fn the_shipped_ubuntu_key_is_the_2018_archive_key() {
    // The fingerprint is checked against the one Ubuntu publishes, recorded in keys/README.md.
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../repo/keys/README.md"),
    )
    .unwrap();
    assert!(readme.contains("F6EC B376 2474 EDA9 D21B  7022 8719 20D1 991B C93C"));
    if Command::new("gpg").arg("--version").output().is_ok() {
        let home = tempfile::tempdir().unwrap();
        let shown = testkit::run(
            Command::new("gpg")
                .arg("--homedir")
                .arg(home.path())
                .args(["--show-keys", "--with-colons"])
                .arg(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../repo/keys/ubuntu-archive-2018.gpg"),
                ),
        );
        let fingerprints: Vec<&str> = shown
            .lines()
            .filter_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':'))
            .collect();
        assert_eq!(fingerprints, ["F6ECB3762474EDA9D21B7022871920D1991BC93C"]);
    }
    ubuntu_keyring();
}

#[test]
fn the_feed_can_be_shared_and_its_futures_spawned() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let cache = tempfile::tempdir().unwrap();
    let feed = repo(cache.path(), true);
    send_sync(&feed);
    send(feed.advisories(&bookworm(), "amd64", &[]));
}
