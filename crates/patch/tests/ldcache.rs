//! The ld.so.cache module against glibc's own `ldconfig` on a real Debian 12
//! root filesystem: entry order, byte-level round trip as `ldconfig -p`
//! reads it, and an update that must equal what `ldconfig` writes.

use std::path::Path;
use std::process::Command;

use patch::ldcache::Cache;

/// `ldconfig -p -C FILE` without its first line (which names the file).
fn listing(cache: &Path) -> String {
    let out = testkit::run(Command::new("ldconfig").arg("-p").arg("-C").arg(cache));
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn agrees_with_ldconfig_on_a_real_root() {
    let root = testkit::debian_rootfs(&testkit::debian_layout());
    let original = std::fs::read(root.join("etc/ld.so.cache")).unwrap();
    let cache = Cache::parse(&original).unwrap();
    assert!(cache.entries.len() > 20);

    // Round trip: the bytes ldconfig wrote, tail-merged string table included.
    assert!(
        cache.write() == original,
        "written bytes differ from ldconfig's"
    );
    // And ldconfig reads our bytes as it reads its own.
    let work = tempfile::tempdir().unwrap();
    let written = work.path().join("written.cache");
    std::fs::write(&written, cache.write()).unwrap();
    assert_eq!(listing(&written), listing(&root.join("etc/ld.so.cache")));

    // Remove a library from a copy of the root and let ldconfig rebuild its
    // cache; adding the library back with `update` must give ldconfig's
    // original cache, entry for entry and in the same order.
    let copy = work.path().join("root");
    testkit::run(Command::new("cp").arg("-a").arg(&root).arg(&copy));
    let victim = cache
        .entries
        .iter()
        .find(|e| e.key.starts_with("libzstd") || e.key.starts_with("libz."))
        .expect("the image has zlib or zstd")
        .clone();
    let relative = victim.value.trim_start_matches('/');
    // The cache names the link as ldconfig found it; remove it where it resolves.
    let resolved = std::fs::canonicalize(copy.join(Path::new(relative).parent().unwrap())).unwrap();
    // The link and the file it names: ldconfig finds libraries by their ELF soname.
    let link = resolved.join(&victim.key);
    let target = std::fs::canonicalize(&link).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::fs::remove_file(&target).unwrap();
    testkit::run(Command::new("ldconfig").arg("-X").arg("-r").arg(&copy));
    let mut without = Cache::parse(&std::fs::read(copy.join("etc/ld.so.cache")).unwrap()).unwrap();
    assert!(!without.entries.iter().any(|e| e.value == victim.value));
    assert!(without.update(&[(victim.key.clone(), victim.value.clone())], &[]));
    assert_eq!(without.entries, cache.entries);
}

/// Every key `ldconfig` wrote is the ELF soname our reader finds in the file
/// the entry names (libbz2.so.1.0, libdb-5.3.so: not guessable from names).
#[test]
fn reads_the_sonames_ldconfig_keys_by() {
    let root = testkit::debian_rootfs(&testkit::debian_layout());
    let cache = Cache::parse(&std::fs::read(root.join("etc/ld.so.cache")).unwrap()).unwrap();
    for entry in &cache.entries {
        let relative = entry.value.trim_start_matches('/');
        let dir = std::fs::canonicalize(root.join(Path::new(relative).parent().unwrap())).unwrap();
        let mut file = dir.join(Path::new(relative).file_name().unwrap());
        for _ in 0..8 {
            match std::fs::read_link(&file) {
                Ok(target) if target.is_absolute() => {
                    file = root.join(target.strip_prefix("/").unwrap())
                }
                Ok(target) => file = file.parent().unwrap().join(target),
                Err(_) => break,
            }
        }
        let elf = std::fs::read(&file).unwrap();
        assert_eq!(
            patch::ldcache::soname(&elf).as_deref(),
            Some(entry.key.as_str()),
            "{}",
            file.display()
        );
    }
}
