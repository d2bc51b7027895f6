//! Replacing a small file whole: the one atomic write drydock's caches use.
//!
//! Owns writing bytes to a temporary file beside the target, syncing it and
//! renaming it over the target, so a reader sees the old file or the new
//! one, never a part; a failure leaves the target as it was and no
//! temporary file behind. Streams that are verified while written (blobs,
//! downloads) have their own temp-verify-rename path in [`crate::layout`].

use std::io::Write as _;
use std::path::Path;

/// Whether a write must survive a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced to disk before it replaces the target (records, verified state).
    Synced,
    /// Not synced: a cache entry whose loss after a crash is only a miss
    /// (readers treat a damaged entry as absent), spared the sync's cost.
    Cache,
}

/// Writes `bytes` to `path` atomically, creating its directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if durability == Durability::Synced {
        temp.as_file().sync_all()?;
    }
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/entry");
        write_atomic(&path, b"first", Durability::Synced).unwrap();
        write_atomic(&path, b"second", Durability::Cache).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["entry"]);
    }

    #[test]
    fn a_failed_write_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_atomic(&target, b"bytes", Durability::Synced).is_err());
        assert!(target.join("inside").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
