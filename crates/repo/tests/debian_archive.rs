//! The APT client against Debian's live archive: real `InRelease` files
//! verified with the keys of Debian's `debian-archive-keyring` package, real
//! indexes and `.deb` files checked against them. Expectations are computed
//! from what the archive serves today, never hard-coded.

use repo::apt::packages::{self, IndexPackage};
use repo::changelog::{self, ChangelogLocation};
use repo::{
    AptClient, Cache, DataEntry, DebFile, Error, Keyring, KeyringError, ReleaseReuse, Suite,
};

const DEBIAN: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";
use repo::distributions::DEBIAN_KEYRING;
const REMOVED_KEYS: &str = "/usr/share/keyrings/debian-archive-removed-keys.gpg";

fn client(cache: &std::path::Path, keyring: &str) -> AptClient {
    let keyring = Keyring::from_files(&[keyring])
        .unwrap_or_else(|e| panic!("{e} (the debian-archive-keyring package provides it)"));
    AptClient::new(oci::SharedHttp::default(), Cache::new(cache), keyring)
}

async fn raw_in_release(suite: &Suite) -> String {
    let url = format!("{}/dists/{}/InRelease", suite.base_url, suite.name);
    reqwest::get(&url).await.unwrap().text().await.unwrap()
}

/// The verified bookworm-security amd64 index, parsed, and its raw text.
async fn security_index(apt: &AptClient) -> (Vec<IndexPackage>, String) {
    let verified = apt
        .release(&Suite::new(DEBIAN_SECURITY, "bookworm-security"))
        .await
        .unwrap();
    let bytes = apt
        .index(&verified, "main/binary-amd64/Packages")
        .await
        .unwrap();
    let parsed = packages::parse("bookworm-security Packages", &bytes).unwrap();
    (parsed, String::from_utf8(bytes).unwrap())
}

/// Index entries below `max_size` bytes, smallest first.
fn by_size(entries: &[IndexPackage], max_size: u64) -> Vec<&IndexPackage> {
    let mut small: Vec<&IndexPackage> = entries.iter().filter(|p| p.size < max_size).collect();
    small.sort_by_key(|p| p.size);
    small
}

#[tokio::test]
async fn verifies_debian_suites_signed_with_rsa_subkeys_and_ed25519() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    for suite in [
        Suite::new(DEBIAN, "bookworm"),
        Suite::new(DEBIAN_SECURITY, "bookworm-security"),
    ] {
        let verified = apt
            .release(&suite)
            .await
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        assert!(
            verified
                .release
                .codename
                .as_deref()
                .is_some_and(|c| c.starts_with("bookworm")),
            "{suite}: {:?}",
            verified.release.codename
        );
        assert!(verified.release.architectures.iter().any(|a| a == "amd64"));
        assert!(
            verified
                .release
                .files
                .keys()
                .any(|p| p.ends_with("binary-amd64/Packages.xz"))
        );
    }
}

#[tokio::test]
async fn refuses_tampered_wrongly_signed_unsigned_and_expired_releases() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    let suite = Suite::new(DEBIAN_SECURITY, "bookworm-security");
    let original = raw_in_release(&suite).await;
    let now = 0;
    apt.verify_release(&suite, &original, now)
        .expect("the untouched file verifies");

    // One changed character in a checksum breaks every signature.
    let line = original
        .lines()
        .find(|l| l.contains("main/binary-amd64/Packages.xz"))
        .unwrap();
    let flipped = line.replacen(|c: char| c.is_ascii_hexdigit(), "0", 1);
    let flipped = if flipped == line {
        line.replacen('0', "1", 1)
    } else {
        flipped
    };
    let tampered = original.replace(line, &flipped);
    assert!(matches!(
        apt.verify_release(&suite, &tampered, now),
        Err(Error::Keyring(KeyringError::BadSignature { .. }))
    ));

    // Only the body, without the signature block.
    let body = original
        .split("-----BEGIN PGP SIGNATURE-----")
        .next()
        .unwrap();
    assert!(matches!(
        apt.verify_release(&suite, body, now),
        Err(Error::Keyring(KeyringError::NotSigned { .. }))
    ));

    // Keys Debian no longer uses do not vouch for today's file.
    let stale = client(cache.path(), REMOVED_KEYS);
    assert!(matches!(
        stale.verify_release(&suite, &original, now),
        Err(Error::Keyring(KeyringError::BadSignature { .. }))
    ));

    // A replay after Valid-Until is refused.
    let valid_until = apt
        .verify_release(&suite, &original, now)
        .unwrap()
        .release
        .valid_until;
    let valid_until = valid_until.expect("the security suite carries Valid-Until");
    assert!(matches!(
        apt.verify_release(&suite, &original, valid_until + 1),
        Err(Error::Expired { .. })
    ));
}

/// The stored `InRelease` of the only suite a test's cache holds, and its record.
fn stored_release(cache: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = cache.join("releases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let [signed, record] = &files[..] else {
        panic!("{files:?}: expected one InRelease and its record")
    };
    assert_eq!(record.extension().unwrap(), "verified");
    (signed.clone(), record.clone())
}

#[tokio::test]
async fn a_stored_release_is_reused_only_as_the_keyring_that_verified_it_recorded_it() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    let suite = Suite::new(DEBIAN_SECURITY, "bookworm-security");
    let reuse = ReleaseReuse {
        max_age: Some(std::time::Duration::from_secs(3600)),
        offline: false,
    };
    let offline = ReleaseReuse {
        max_age: None,
        offline: true,
    };
    let fetched = apt.release_reusing(&suite, reuse).await.unwrap();
    let (signed, record) = stored_release(cache.path());
    let original = std::fs::read_to_string(&signed).unwrap();
    let reused = client(cache.path(), DEBIAN_KEYRING)
        .release_reusing(&suite, offline)
        .await
        .unwrap();
    assert_eq!(reused.release.files, fetched.release.files);

    // Another keyring (keys Debian no longer uses) never takes the record for
    // its own: it verifies the stored file and refuses it.
    let stale = client(cache.path(), REMOVED_KEYS);
    assert!(matches!(
        stale.release_reusing(&suite, offline).await,
        Err(Error::Keyring(KeyringError::BadSignature { .. }))
    ));

    // What another process finds (a client of its own: a client remembers
    // the suites it returned while they may be reused).
    let next_process = || client(cache.path(), DEBIAN_KEYRING);

    // A stored file that is not the one recorded is verified again: tampered, refused.
    let line = original
        .lines()
        .find(|l| l.contains("main/binary-amd64/Packages.xz"))
        .unwrap();
    let flipped = line.replacen(|c: char| c.is_ascii_hexdigit(), "x", 1);
    std::fs::write(&signed, original.replace(line, &flipped)).unwrap();
    assert!(matches!(
        next_process().release_reusing(&suite, offline).await,
        Err(Error::Keyring(KeyringError::BadSignature { .. }))
    ));

    // A damaged record (its text no longer matches its checksum) is ignored:
    // the intact stored file verifies again and the record is rewritten.
    std::fs::write(&signed, &original).unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replace(line, &flipped)).unwrap();
    let again = next_process()
        .release_reusing(&suite, offline)
        .await
        .unwrap();
    assert_eq!(again.release.files, fetched.release.files);
    assert_eq!(std::fs::read_to_string(&record).unwrap(), text);

    // Without a stored file, offline has nothing to reuse.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        client(empty.path(), DEBIAN_KEYRING)
            .release_reusing(&suite, offline)
            .await,
        Err(Error::NotStored { .. })
    ));
}

#[tokio::test]
async fn fetches_verified_indexes_and_debs_through_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    let (entries, text) = security_index(&apt).await;
    // Every paragraph of the real index parses into an entry.
    assert_eq!(
        entries.len(),
        text.lines().filter(|l| l.starts_with("Package: ")).count()
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.source_name.is_empty() && !e.source_version.is_empty())
    );
    let first = &entries[0];
    let (filename, sha256, size) = (first.filename.clone(), first.sha256.clone(), first.size);

    let deb = apt
        .download(DEBIAN_SECURITY, &filename, &sha256, size)
        .await
        .unwrap();
    let bytes = std::fs::read(&deb).unwrap();
    assert!(
        bytes.starts_with(b"!<arch>\ndebian-binary"),
        "a .deb is an ar archive"
    );
    assert_eq!(bytes.len() as u64, size);

    // A second request is served from the cache: the base URL is not even valid.
    let again = apt
        .download("http://127.0.0.1:9/nowhere", &filename, &sha256, size)
        .await
        .unwrap();
    assert_eq!(again, deb);

    // A checksum that does not match is refused and leaves nothing cached.
    let wrong = "0".repeat(64);
    let error = apt
        .download(DEBIAN_SECURITY, &filename, &wrong, size)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Checksum { .. }), "{error}");
    assert!(
        apt.cache()
            .get(&format!("sha256:{wrong}").parse().unwrap())
            .await
            .is_none()
    );
    let error = apt
        .download(
            DEBIAN_SECURITY,
            &format!("{filename}.missing"),
            &wrong,
            size,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
    let error = apt
        .download(DEBIAN_SECURITY, "../../etc/passwd", &sha256, size)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidEntry { .. }), "{error}");
}

fn dpkg_deb(args: &[&str], deb: &std::path::Path) -> String {
    let out = std::process::Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn reads_real_debs_as_dpkg_deb_does() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    let (entries, _) = security_index(&apt).await;
    // A few packages of different sizes and compressions, chosen from today's index.
    let pool = by_size(&entries, u64::MAX);
    for entry in [pool[0], pool[pool.len() / 3], pool[pool.len() / 2]] {
        let (filename, sha256, size) = (&entry.filename, &entry.sha256, &entry.size);
        let path = apt
            .download(DEBIAN_SECURITY, filename, sha256, *size)
            .await
            .unwrap();
        let deb = DebFile::new(&path);

        let control = deb.control_files().unwrap();
        let ours = String::from_utf8(control["control"].clone()).unwrap();
        assert_eq!(
            ours.trim_end(),
            dpkg_deb(&["--field"], &path).trim_end(),
            "{filename}"
        );

        let mut listed = Vec::new();
        deb.walk_data(|path, _| {
            listed.push(path.to_string());
            Ok(true)
        })
        .unwrap();
        let listing = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -t",
                path.display()
            ))
            .output()
            .unwrap();
        let expected: Vec<String> = String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .map(repo::deb::normalize_path)
            .collect();
        assert_eq!(listed, expected, "{filename}");

        // Every binary package documents itself; the entry is a directory or a symlink to a sibling's.
        let package = ours
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap();
        let doc = deb
            .data_entry(&format!("./usr/share/doc/{package}"))
            .unwrap();
        assert!(
            matches!(doc, Some(DataEntry::Directory | DataEntry::Symlink(_))),
            "{filename}: {doc:?}"
        );
    }
}

/// (source, version, distributions, urgency) of a changelog's newest entries, per dpkg-parsechangelog.
fn dpkg_parsechangelog(text: &str, count: usize) -> Vec<(String, String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("changelog");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new("dpkg-parsechangelog")
        .args(["--format", "rfc822", "--count", &count.to_string(), "-l"])
        .arg(&file)
        .output()
        .expect("dpkg-parsechangelog (dpkg-dev) is required");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let field = |name: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            (
                field("Source:"),
                field("Version:"),
                field("Distribution:"),
                field("Urgency:"),
            )
        })
        .collect()
}

#[tokio::test]
async fn reads_changelogs_of_security_uploads_as_dpkg_parsechangelog_does() {
    let cache = tempfile::tempdir().unwrap();
    let apt = client(cache.path(), DEBIAN_KEYRING);
    let (entries, _) = security_index(&apt).await;
    let pool = by_size(&entries, 2_000_000);
    let step = (pool.len() / 6).max(1);
    let mut found = 0;
    for entry in pool.iter().step_by(step).take(6) {
        let (package, filename) = (&entry.name, &entry.filename);
        let path = apt
            .download(DEBIAN_SECURITY, filename, &entry.sha256, entry.size)
            .await
            .unwrap();
        match changelog::read_from_deb(&DebFile::new(&path), package).unwrap() {
            ChangelogLocation::Found(text) => {
                found += 1;
                let ours: Vec<(String, String, String, String)> = changelog::parse(&text)
                    .unwrap()
                    .into_iter()
                    .take(10)
                    .map(|e| {
                        (
                            e.source,
                            e.version,
                            e.distributions.join(" "),
                            e.urgency.unwrap_or_default(),
                        )
                    })
                    .collect();
                assert_eq!(ours, dpkg_parsechangelog(&text, 10), "{filename}");
                assert!(
                    ours[0].2.contains("security"),
                    "{filename}: newest entry is the security upload"
                );
            }
            ChangelogLocation::Elsewhere(target) => assert!(!target.is_empty(), "{filename}"),
            ChangelogLocation::Missing => {
                panic!("{filename}: a Debian package without a changelog")
            }
        }
    }
    assert!(
        found > 0,
        "at least one sampled package carries its own changelog"
    );
}
