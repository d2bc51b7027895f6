//! The store through its public API: replacing feeds, lookups by source
//! package (decoded and packed), provenance, schema versions and the
//! migration from version 1, concurrent readers, lookup speed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use advisory::feeds::{self, LoadedFeed};
use advisory::{
    Advisory, AdvisoryView, Details, Distro, Error, Family, FeedKind, FeedSource, Severity, Status,
    Store,
};
use support::fixture;

fn bookworm() -> Distro {
    Distro::new(Family::Debian, "bookworm")
}

fn synthetic_feed(name: &str, packages: usize, per_package: usize, version: &str) -> LoadedFeed {
    let details = Arc::new(Details::new(
        Some("t"),
        Some("d"),
        vec!["ALIAS-1".into()],
        vec![],
    ));
    let advisories = (0..packages)
        .flat_map(|p| {
            let details = Arc::clone(&details);
            (0..per_package).map(move |n| Advisory {
                id: format!("CVE-2024-{n}"),
                distro: bookworm(),
                package: format!("pkg{p}"),
                status: Status::Fixed {
                    fixed_version: version.to_string(),
                },
                introduced: None,
                last_affected: None,
                severity: Severity::Medium,
                severity_source: Some("debian".into()),
                details: Arc::clone(&details),
            })
        })
        .collect();
    LoadedFeed {
        source: FeedSource {
            name: name.to_string(),
            kind: FeedKind::Tracker,
            location: "test".into(),
            fetched_at: 1_700_000_000,
            modified_at: None,
            sha256: "0".repeat(64),
        },
        advisories,
    }
}

#[test]
fn imported_feeds_answer_lookups_by_source_package() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("sub/advisories.db")).unwrap();
    let loaded = feeds::load(&[fixture("tracker.json"), fixture("osv/debian")], None).unwrap();
    let stored = store.replace_feeds(&loaded).unwrap();
    assert_eq!(stored.len(), 2);

    let glibc = store.advisories_for(&bookworm(), "glibc").unwrap();
    let found: Vec<(&str, &str, &str)> = glibc
        .iter()
        .map(|f| {
            (
                f.advisory.id.as_str(),
                f.feed.as_str(),
                f.advisory.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("CVE-2010-4756", "debian-tracker", "affected"),
            ("CVE-2010-4756", "osv-debian", "affected"),
            ("CVE-2024-2961", "debian-tracker", "fixed"),
            ("CVE-2024-2961", "osv-debian", "fixed"),
        ]
    );
    // What went in comes back out, field for field.
    let original = loaded[0]
        .advisories
        .iter()
        .find(|a| a.id == "CVE-2024-2961" && a.distro.release == "bookworm")
        .unwrap();
    assert_eq!(&glibc[2].advisory, original);
    assert!(
        store
            .advisories_for(&bookworm(), "no-such-package")
            .unwrap()
            .is_empty()
    );
    let jammy = Distro::new(Family::Ubuntu, "22.04");
    assert!(store.advisories_for(&jammy, "glibc").unwrap().is_empty());

    let feeds = store.feeds().unwrap();
    let summary: Vec<(&str, FeedKind, u64)> = feeds
        .iter()
        .map(|f| (f.source.name.as_str(), f.source.kind, f.advisories))
        .collect();
    assert_eq!(
        summary,
        [
            ("debian-tracker", FeedKind::Tracker, 14),
            ("osv-debian", FeedKind::Osv, 6)
        ]
    );
    assert_eq!(feeds[0].source, loaded[0].source);
}

#[test]
fn an_import_replaces_its_feed_and_a_failed_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");
    let mut store = Store::open(&path).unwrap();
    store
        .replace_feeds(&[synthetic_feed("a", 3, 2, "1.0-1")])
        .unwrap();
    store
        .replace_feeds(&[synthetic_feed("b", 1, 1, "9.9-9")])
        .unwrap();
    store
        .replace_feeds(&[synthetic_feed("a", 2, 1, "2.0-1")])
        .unwrap();
    let pkg0 = store.advisories_for(&bookworm(), "pkg0").unwrap();
    let versions: Vec<(&str, Option<&str>)> = pkg0
        .iter()
        .map(|f| (f.feed.as_str(), f.advisory.status.fixed_version()))
        .collect();
    assert_eq!(versions, [("a", Some("2.0-1")), ("b", Some("9.9-9"))]);
    assert!(
        store
            .advisories_for(&bookworm(), "pkg2")
            .unwrap()
            .is_empty()
    );

    // A malformed second import fails before anything is written.
    let bad = dir.path().join("tracker.json");
    std::fs::write(
        &bad,
        b"{\"zlib\": {\"CVE-1\": {\"releases\": {\"sid\": {\"status\": 7}}}}}",
    )
    .unwrap();
    assert!(matches!(
        feeds::load(&[bad], None),
        Err(Error::Parse { .. })
    ));
    // And one store's write is atomic for its readers (see the concurrency test).
    let counts: Vec<u64> = store
        .feeds()
        .unwrap()
        .iter()
        .map(|f| f.advisories)
        .collect();
    assert_eq!(counts, [2, 1]);
    drop(store);
    let reopened = Store::open_existing(&path).unwrap();
    assert_eq!(
        reopened.advisories_for(&bookworm(), "pkg1").unwrap().len(),
        1
    );
}

#[test]
fn readers_see_a_whole_feed_or_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");
    let mut writer = Store::open(&path).unwrap();
    writer
        .replace_feeds(&[synthetic_feed("a", 50, 10, "1")])
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let reader = Store::open_existing(&path).unwrap();
                let mut seen = std::collections::BTreeSet::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let found = reader
                        .advisories_for_many(&bookworm(), &["pkg0", "pkg49"])
                        .unwrap();
                    let versions: std::collections::BTreeSet<(usize, Option<String>)> = found
                        .values()
                        .flat_map(|v| {
                            v.iter().map(|f| {
                                (
                                    v.len(),
                                    f.advisory.status.fixed_version().map(str::to_string),
                                )
                            })
                        })
                        .collect();
                    assert_eq!(versions.len(), 1, "a mixed view: {versions:?}");
                    seen.extend(versions);
                }
                seen
            })
        })
        .collect();
    for round in 0..20 {
        let feed = if round % 2 == 0 {
            synthetic_feed("a", 50, 20, "2")
        } else {
            synthetic_feed("a", 50, 10, "1")
        };
        writer.replace_feeds(&[feed]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let seen = reader.join().unwrap();
        assert!(
            seen.iter()
                .all(|(n, v)| (*n, v.as_deref()) == (10, Some("1"))
                    || (*n, v.as_deref()) == (20, Some("2"))),
            "{seen:?}"
        );
    }
}

#[test]
fn newer_schemas_and_missing_databases_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisories.db");
    let error = Store::open_existing(&path).err().unwrap().to_string();
    assert!(error.contains("run `drydock db update`"), "{error}");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = Store::open(&path).err().unwrap().to_string();
    assert!(
        error.contains("has schema version 99, newer than this drydock reads (2)"),
        "{error}"
    );
}

#[test]
fn a_warm_lookup_of_120_packages_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("advisories.db")).unwrap();
    // ~the size of the tracker for one release: 30k packages × 10 advisories.
    store
        .replace_feeds(&[synthetic_feed("a", 30_000, 10, "1")])
        .unwrap();
    let names: Vec<String> = (0..120).map(|n| format!("pkg{}", n * 200)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    store.advisories_for_many(&bookworm(), &names).unwrap();
    let started = Instant::now();
    let found = store.advisories_for_many(&bookworm(), &names).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(found.len(), 120);
    assert!(found.values().all(|v| v.len() == 10));
    eprintln!("120 packages, 1200 advisories: {elapsed:?}");
    // The target is 50 ms in release builds; debug builds get slack.
    assert!(elapsed < Duration::from_millis(250), "{elapsed:?}");
}

/// Writes `feeds` the way schema version 1 stored them: one `advisories` row
/// per advisory, `details` once per shared record, JSON lists.
fn write_version_1(path: &std::path::Path, feeds: &[LoadedFeed]) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "CREATE TABLE feeds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
             location TEXT NOT NULL, fetched_at INTEGER NOT NULL, modified_at INTEGER,
             sha256 TEXT NOT NULL, advisories INTEGER NOT NULL);
         CREATE TABLE details (id INTEGER PRIMARY KEY, feed_id INTEGER NOT NULL, title TEXT,
             description TEXT, aliases TEXT NOT NULL, urls TEXT NOT NULL);
         CREATE INDEX details_by_feed ON details(feed_id);
         CREATE TABLE advisories (feed_id INTEGER NOT NULL, family TEXT NOT NULL,
             release TEXT NOT NULL, package TEXT NOT NULL, vulnerability TEXT NOT NULL,
             status TEXT NOT NULL, fixed_version TEXT, introduced TEXT, last_affected TEXT,
             severity TEXT NOT NULL, severity_source TEXT, details_id INTEGER NOT NULL);
         CREATE INDEX advisories_by_package ON advisories(family, release, package);
         CREATE INDEX advisories_by_feed ON advisories(feed_id);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    for (feed_id, feed) in feeds.iter().enumerate() {
        let s = &feed.source;
        tx.execute(
            "INSERT INTO feeds VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                feed_id as i64,
                s.name,
                s.kind.as_str(),
                s.location,
                s.fetched_at,
                s.modified_at,
                s.sha256,
                feed.advisories.len() as i64
            ],
        )
        .unwrap();
        let mut details_ids = std::collections::HashMap::new();
        for a in &feed.advisories {
            let next = details_ids.len() as i64 + 1_000 * feed_id as i64;
            let details_id = *details_ids
                .entry(Arc::as_ptr(&a.details))
                .or_insert_with(|| {
                    let d = &a.details;
                    tx.execute(
                        "INSERT INTO details VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        rusqlite::params![
                            next,
                            feed_id as i64,
                            d.title,
                            d.description,
                            serde_json::to_string(&d.aliases).unwrap(),
                            serde_json::to_string(&d.urls).unwrap()
                        ],
                    )
                    .unwrap();
                    next
                });
            tx.execute(
                "INSERT INTO advisories VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                rusqlite::params![
                    feed_id as i64,
                    a.distro.family.as_str(),
                    a.distro.release,
                    a.package,
                    a.id,
                    a.status.as_str(),
                    a.status.fixed_version(),
                    a.introduced,
                    a.last_affected,
                    a.severity.as_str(),
                    a.severity_source,
                    details_id
                ],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn a_version_1_store_is_migrated_with_its_data_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = feeds::load(&[fixture("tracker.json"), fixture("osv/debian")], None).unwrap();
    let old = dir.path().join("v1.db");
    write_version_1(&old, &loaded);
    let migrated = Store::open_existing(&old).unwrap();
    let mut fresh = Store::open(&dir.path().join("v2.db")).unwrap();
    fresh.replace_feeds(&loaded).unwrap();

    assert_eq!(migrated.feeds().unwrap(), fresh.feeds().unwrap());
    let mut keys: Vec<(Distro, String)> = loaded
        .iter()
        .flat_map(|feed| &feed.advisories)
        .map(|a| (a.distro.clone(), a.package.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    assert!(keys.len() > 5, "{keys:?}");
    for (distro, package) in &keys {
        let after = migrated.advisories_for(distro, package).unwrap();
        assert!(!after.is_empty(), "{distro} {package}");
        assert_eq!(
            after,
            fresh.advisories_for(distro, package).unwrap(),
            "{distro} {package}"
        );
    }
    drop(migrated);
    let conn = rusqlite::Connection::open(&old).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, advisory::store::SCHEMA_VERSION);
    let old_tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('advisories', 'details')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(old_tables, 0);
}

#[test]
fn packed_lookups_read_the_same_advisories_as_decoded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("advisories.db")).unwrap();
    let loaded = feeds::load(&[fixture("tracker.json"), fixture("osv/debian")], None).unwrap();
    store.replace_feeds(&loaded).unwrap();
    let mut keys: Vec<(Distro, String)> = loaded
        .iter()
        .flat_map(|feed| &feed.advisories)
        .map(|a| (a.distro.clone(), a.package.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut both_feeds = 0;
    for (distro, package) in &keys {
        let packed = store
            .packed_advisories_for_many(distro, &[package.as_str(), "no-such-package"])
            .unwrap();
        assert_eq!(packed.keys().collect::<Vec<_>>(), [package], "{distro}");
        let feeds = &packed[package];
        assert!(feeds.windows(2).all(|f| f[0].feed() < f[1].feed()));
        both_feeds += usize::from(feeds.len() > 1);
        let mut views: Vec<AdvisoryView> = feeds
            .iter()
            .flat_map(|feed| feed.views().unwrap())
            .collect();
        views.sort_by(|a, b| a.id.cmp(b.id));
        let decoded = store.advisories_for(distro, package).unwrap();
        let expected: Vec<AdvisoryView> = decoded.iter().map(AdvisoryView::from).collect();
        assert_eq!(views, expected, "{distro} {package}");
    }
    assert!(
        both_feeds > 0,
        "some package has advisories from both feeds"
    );
}
