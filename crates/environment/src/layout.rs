//! Where drydock keeps what it keeps, under one data directory.
//!
//! Owns the names of the data directory's entries; nothing else in drydock
//! joins a path onto the data directory. Creates nothing: each store creates
//! its own files when it first writes.

use std::path::{Path, PathBuf};

/// The data directory's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> DataLayout {
        DataLayout { root: root.into() }
    }

    /// The data directory itself (the embedded registry's storage lives here).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The advisory database (`drydock db update` and `db import` write it).
    pub fn advisory_db(&self) -> PathBuf {
        self.root.join("advisories.db")
    }

    /// Per-layer scans, pulled registry images and the security
    /// repository's verified indexes, shared by every scan.
    pub fn scan_cache(&self) -> PathBuf {
        self.root.join("scan-cache")
    }

    /// Downloaded packages, parsed suite indexes and the working layout of
    /// images being patched.
    pub fn patch_cache(&self) -> PathBuf {
        self.root.join("patch-cache")
    }

    /// The server's workflows, runs and their logs.
    pub fn workflow_db(&self) -> PathBuf {
        self.root.join("workflows.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_under_the_data_directory_and_distinct() {
        let layout = DataLayout::new("/srv/drydock");
        let entries = [
            layout.advisory_db(),
            layout.scan_cache(),
            layout.patch_cache(),
            layout.workflow_db(),
        ];
        for entry in &entries {
            assert_eq!(entry.parent(), Some(layout.root()));
        }
        let distinct: std::collections::BTreeSet<_> = entries.iter().collect();
        assert_eq!(distinct.len(), entries.len());
    }
}
