//! `docker save` archives, turned into OCI image layouts.
//!
//! Owns reading both shapes `docker save` (and `skopeo copy … docker-archive:`)
//! write: the legacy one (`manifest.json` naming a config file and layer
//! tars, layers sometimes as symlinks between directories) and the newer one
//! that also embeds an OCI layout (`blobs/sha256/…`). The archive is read in
//! one pass: large members stream straight into the layout as blobs named by
//! their digest, small JSON members are kept in memory (bounded). Archive
//! member names are only ever used as lookup keys, never as paths to write,
//! so a hostile name cannot place a file anywhere.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;

use crate::digest::{Digest, Hasher};
use crate::error::{ArchiveError, Error, Result};
use crate::layout::OciLayout;
use crate::manifest::{ContentRef, media_type};

/// JSON members (manifest.json, configs) up to this size are kept in memory.
const SMALL_JSON_LIMIT: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// What one pass over the archive found.
#[derive(Default)]
struct Members {
    small: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, ContentRef>,
    links: HashMap<String, String>,
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl Members {
    /// Follows symlinks (at most 16) to the member a name stands for.
    fn resolve(&self, name: &str) -> String {
        let mut current = normalize(name);
        for _ in 0..16 {
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => break,
            }
        }
        current
    }
}

fn layer_media_type(first_bytes: &[u8]) -> &'static str {
    if first_bytes.starts_with(&[0x1f, 0x8b]) {
        media_type::OCI_LAYER_GZIP
    } else if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

fn archive_error(archive: &Path, reason: ArchiveError) -> Error {
    Error::Archive {
        path: archive.to_path_buf(),
        reason,
    }
}

/// Streams one member into a temp file in the layout while hashing it, then
/// names it by its digest.
fn store_blob(layout_root: &Path, entry: &mut impl Read, size: u64) -> std::io::Result<ContentRef> {
    use std::io::Write;
    let blobs = layout_root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let temp = layout_root.join(format!(".drydock-archive-{}", std::process::id()));
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&temp)?);
    let mut hasher = Hasher::new(crate::digest::Algorithm::Sha256);
    let mut buffer = vec![0u8; 1 << 20];
    let mut first = Vec::new();
    loop {
        let n = entry.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        if first.len() < 4 {
            first.extend_from_slice(&buffer[..n.min(4)]);
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])?;
    }
    file.flush()?;
    file.get_ref().sync_all()?;
    let digest = hasher.finish();
    std::fs::rename(&temp, blobs.join(digest.hex()))?;
    Ok(ContentRef {
        digest,
        size,
        media_type: layer_media_type(&first).to_string(),
    })
}

fn read_members(archive: &Path, layout_root: &Path) -> Result<Members> {
    let file = std::fs::File::open(archive).map_err(Error::io(archive))?;
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut members = Members::default();
    let entries = tar
        .entries()
        .map_err(|e| archive_error(archive, ArchiveError::NotTar(e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(archive, ArchiveError::Entry(e)))?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                // Symlinks are relative to their directory; hard links to the archive root.
                let base = if kind.is_symlink() {
                    name.rsplit_once('/').map_or("", |(dir, _)| dir).to_string()
                } else {
                    String::new()
                };
                members
                    .links
                    .insert(name, normalize(&format!("{base}/{target}")));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        if size <= SMALL_JSON_LIMIT && name.ends_with("json") {
            let mut content = Vec::new();
            (&mut entry)
                .take(SMALL_JSON_LIMIT)
                .read_to_end(&mut content)
                .map_err(|source| {
                    archive_error(
                        archive,
                        ArchiveError::Member {
                            name: name.clone(),
                            source,
                        },
                    )
                })?;
            members.small.insert(name, content);
        } else {
            let stored =
                store_blob(layout_root, &mut entry, size).map_err(Error::io(layout_root))?;
            members.blobs.insert(name, stored);
        }
    }
    Ok(members)
}

/// Converts a `docker save` archive into an image in `layout` under `tag`
/// and returns the new manifest. Only the first image of a multi-image archive is taken.
pub async fn import(archive: &Path, layout: &OciLayout, tag: &str) -> Result<ContentRef> {
    let (archive_path, root) = (archive.to_path_buf(), layout.root().to_path_buf());
    let members = tokio::task::spawn_blocking(move || read_members(&archive_path, &root))
        .await
        .map_err(|e| archive_error(archive, ArchiveError::Task(e)))??;
    let manifest_bytes = members
        .small
        .get("manifest.json")
        .ok_or_else(|| archive_error(archive, ArchiveError::NoManifest))?;
    let manifests: Vec<ArchiveManifest> = serde_json::from_slice(manifest_bytes)
        .map_err(|e| archive_error(archive, ArchiveError::BadManifest(e)))?;
    let image = manifests
        .first()
        .ok_or_else(|| archive_error(archive, ArchiveError::NoImage))?;
    let config_name = members.resolve(&image.config);
    let config = match members.small.get(&config_name) {
        Some(bytes) => Bytes::from(bytes.clone()),
        None => match members.blobs.get(&config_name) {
            Some(blob) => layout.read_blob_bytes(blob).await?,
            None => {
                return Err(archive_error(
                    archive,
                    ArchiveError::MissingConfig(image.config.clone()),
                ));
            }
        },
    };
    let config_ref = layout
        .write_blob_bytes(config, media_type::OCI_CONFIG)
        .await?;
    let mut layers = Vec::with_capacity(image.layers.len());
    for name in &image.layers {
        let blob = members
            .blobs
            .get(&members.resolve(name))
            .ok_or_else(|| archive_error(archive, ArchiveError::MissingLayer(name.clone())))?;
        layers.push(serde_json::json!({
            "mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size,
        }));
    }
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_ref.digest.to_string(), "size": config_ref.size},
        "layers": layers,
    });
    if let Some(name) = image.repo_tags.first() {
        manifest["annotations"] = serde_json::json!({"org.opencontainers.image.base.name": name});
    }
    let bytes = Bytes::from(
        serde_json::to_vec(&manifest)
            .map_err(|e| archive_error(archive, ArchiveError::Encode(e)))?,
    );
    let content = layout
        .write_blob_bytes(bytes, media_type::OCI_MANIFEST)
        .await?;
    layout.set_tag(Some(tag), &content).await?;
    Ok(content)
}

/// The digest of an archive file's path and size, for naming its import.
pub fn archive_key(archive: &Path) -> Result<Digest> {
    let metadata = std::fs::metadata(archive).map_err(Error::io(archive))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = format!("{}:{}:{modified}", archive.display(), metadata.len());
    Ok(Digest::sha256_of(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_and_links_resolve() {
        assert_eq!(normalize("./a/../b//c"), "b/c");
        assert_eq!(normalize("../../etc/passwd"), "etc/passwd");
        let mut members = Members::default();
        members.links.insert("x/layer.tar".into(), "abc.tar".into());
        members.links.insert("loop".into(), "loop".into());
        assert_eq!(members.resolve("x/layer.tar"), "abc.tar");
        assert_eq!(members.resolve("loop"), "loop");
    }
}
