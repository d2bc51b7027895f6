//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
//!
//! Owns reading and writing a layout directory the way skopeo, umoci and
//! podman do: tags are the `org.opencontainers.image.ref.name` annotation of
//! `index.json` entries. Blobs are written to a temporary file, verified,
//! synced and renamed into place; `index.json` is replaced atomically. Blob
//! paths come only from validated [`Digest`]s, so no name can escape the
//! layout directory.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use tokio::io::AsyncWriteExt;

use crate::client::{BlobStream, verified_stream};
use crate::digest::{Digest, Verifier};
use crate::error::{Error, LayoutError, Result};
use crate::manifest::{ContentRef, media_type};

/// The annotation of an `index.json` entry that holds its tag.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const READ_CHUNK: usize = 256 * 1024;

/// A valid layout tag standing for `text` (an image reference, a path):
/// characters a tag cannot hold become `_`, and it is cut at 128.
pub fn tag_naming(text: &str) -> String {
    let mut tag: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    tag.truncate(128);
    tag
}

/// Held while `index.json` is rewritten; the file lock ends with the file.
struct IndexLock {
    _file: std::fs::File,
    _task: tokio::sync::OwnedMutexGuard<()>,
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

/// What [`OciLayout::resolve`] reads of `index.json`, borrowed from its
/// bytes: parsing and validating the whole image index costs about a
/// millisecond per thousand tags, which a rescan of many tags pays per tag.
#[derive(serde::Deserialize)]
struct IndexEntries<'a> {
    #[serde(borrow)]
    manifests: Vec<IndexEntry<'a>>,
}

#[derive(serde::Deserialize)]
struct IndexEntry<'a> {
    #[serde(rename = "mediaType", borrow)]
    media_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    digest: std::borrow::Cow<'a, str>,
    size: u64,
    #[serde(default, borrow)]
    annotations: Option<EntryAnnotations<'a>>,
}

/// The one annotation a lookup reads; the others are skipped unparsed.
#[derive(serde::Deserialize)]
struct EntryAnnotations<'a> {
    #[serde(rename = "org.opencontainers.image.ref.name", borrow)]
    ref_name: Option<std::borrow::Cow<'a, str>>,
}

impl IndexEntry<'_> {
    fn tag(&self) -> Option<&str> {
        self.annotations.as_ref()?.ref_name.as_deref()
    }
}

impl OciLayout {
    /// Opens an existing layout, checking its `oci-layout` marker.
    pub async fn open(root: impl Into<PathBuf>) -> Result<OciLayout> {
        let root = root.into();
        let marker = root.join(LAYOUT_FILE);
        let text = tokio::fs::read_to_string(&marker).await;
        let failed = |reason| Error::Layout {
            path: root.clone(),
            reason,
        };
        let text = text.map_err(|e| failed(LayoutError::NotALayout(e)))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| failed(LayoutError::MarkerNotJson(e)))?;
        if value.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(failed(LayoutError::MarkerVersion));
        }
        Ok(OciLayout { root })
    }

    /// Opens a layout, creating an empty one when the directory has none.
    pub async fn create(root: impl Into<PathBuf>) -> Result<OciLayout> {
        let root = root.into();
        if tokio::fs::try_exists(root.join(LAYOUT_FILE))
            .await
            .unwrap_or(false)
        {
            return OciLayout::open(root).await;
        }
        tokio::fs::create_dir_all(root.join("blobs"))
            .await
            .map_err(Error::io(&root))?;
        let layout = OciLayout { root };
        let _locked = layout.lock_index().await?;
        // Another task or process may have created it while this one waited.
        if !tokio::fs::try_exists(layout.root.join("index.json"))
            .await
            .unwrap_or(false)
        {
            let empty = empty_index().map_err(|e| layout.error(LayoutError::EmptyIndex(e)))?;
            layout.write_index(&empty).await?;
        }
        layout
            .write_atomically(LAYOUT_FILE, LAYOUT_VERSION.as_bytes())
            .await?;
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The layout's `index.json`.
    pub async fn read_index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let bytes = tokio::fs::read(&path).await.map_err(Error::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| self.error(LayoutError::InvalidIndex(e)))
    }

    fn error(&self, reason: LayoutError) -> Error {
        Error::Layout {
            path: self.root.clone(),
            reason,
        }
    }

    /// The tags in `index.json`, in file order.
    pub async fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .read_index()
            .await?
            .manifests()
            .iter()
            .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME_ANNOTATION).cloned())
            .collect())
    }

    /// The descriptor a tag names; without a tag, the only entry of the index.
    pub async fn resolve(&self, tag: Option<&str>) -> Result<ContentRef> {
        let path = self.root.join("index.json");
        let bytes = tokio::fs::read(&path).await.map_err(Error::io(&path))?;
        if let Ok(index) = serde_json::from_slice::<IndexEntries<'_>>(&bytes) {
            let mut matching = index.manifests.iter().filter(|entry| match tag {
                Some(tag) => entry.tag() == Some(tag),
                None => index.manifests.len() == 1,
            });
            if let Some(entry) = matching.next() {
                return Ok(ContentRef {
                    digest: entry
                        .digest
                        .parse()
                        .map_err(crate::manifest::ManifestError::from)?,
                    size: entry.size,
                    media_type: entry.media_type.to_string(),
                });
            }
        }
        // Not found, or not an index the light reading understands: the full
        // image index says which tags there are, or why the file is invalid.
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| self.error(LayoutError::InvalidIndex(e)))?;
        let entries = index.manifests();
        let chosen = match tag {
            Some(tag) => entries.iter().find(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME_ANNOTATION))
                    .map(String::as_str)
                    == Some(tag)
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        let descriptor = chosen.ok_or_else(|| {
            let tags = entries
                .iter()
                .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME_ANNOTATION).cloned())
                .collect::<Vec<_>>();
            self.error(match tag {
                Some(tag) => LayoutError::NoSuchTag {
                    tag: tag.to_string(),
                    tags,
                },
                None => LayoutError::Ambiguous {
                    count: entries.len(),
                    location: format!("oci:{}", self.root.display()),
                    tags,
                },
            })
        })?;
        Ok(ContentRef {
            digest: descriptor
                .digest()
                .as_ref()
                .parse()
                .map_err(crate::manifest::ManifestError::from)?,
            size: descriptor.size(),
            media_type: descriptor.media_type().to_string(),
        })
    }

    /// Whether the blob `digest` is stored.
    pub async fn has_blob(&self, digest: &Digest) -> bool {
        tokio::fs::try_exists(self.blob_path(digest))
            .await
            .unwrap_or(false)
    }

    /// Streams a blob, verifying digest and size as it is read.
    pub async fn read_blob(&self, content: &ContentRef) -> Result<BlobStream> {
        let path = self.blob_path(&content.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(format!(
                    "blob {} in {}",
                    content.digest,
                    self.root.display()
                )),
                _ => Error::io(&path)(e),
            })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK)
            .map(move |r| r.map_err(Error::io(&path)));
        Ok(verified_stream(stream, content))
    }

    /// Reads a whole blob into memory, verified.
    pub async fn read_blob_bytes(&self, content: &ContentRef) -> Result<Bytes> {
        crate::client::collect_stream(self.read_blob(content).await?).await
    }

    /// Writes a blob from a stream; the file appears only once it is complete and verified.
    pub async fn write_blob(&self, content: &ContentRef, mut stream: BlobStream) -> Result<()> {
        let final_path = self.blob_path(&content.digest);
        if tokio::fs::try_exists(&final_path).await.unwrap_or(false) {
            return Ok(());
        }
        let dir = final_path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(Error::io(&dir))?;
        let temp = self.temp_path();
        let result = async {
            let mut file = tokio::io::BufWriter::with_capacity(
                READ_CHUNK,
                tokio::fs::File::create(&temp)
                    .await
                    .map_err(Error::io(&temp))?,
            );
            let mut verifier = Verifier::new(content.digest.clone(), Some(content.size));
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                verifier.update(&chunk)?;
                file.write_all(&chunk).await.map_err(Error::io(&temp))?;
            }
            verifier.finish()?;
            file.flush().await.map_err(Error::io(&temp))?;
            file.get_ref().sync_all().await.map_err(Error::io(&temp))?;
            tokio::fs::rename(&temp, &final_path)
                .await
                .map_err(Error::io(&final_path))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    /// Writes small content (a manifest, a config) as a blob.
    pub async fn write_blob_bytes(&self, bytes: Bytes, media_type: &str) -> Result<ContentRef> {
        let content = ContentRef {
            digest: Digest::sha256_of(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
        };
        let stream: BlobStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        self.write_blob(&content, stream).await?;
        Ok(content)
    }

    /// Points `tag` at `content` in `index.json` (replacing the tag's old
    /// entry), or, without a tag, adds an untagged entry unless one exists.
    pub async fn set_tag(&self, tag: Option<&str>, content: &ContentRef) -> Result<()> {
        let _locked = self.lock_index().await?;
        let index = self.read_index().await?;
        let mut entries: Vec<Descriptor> = index.manifests().clone();
        let tag_of = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .cloned()
        };
        let mut descriptor = Descriptor::new(
            MediaType::from(content.media_type.as_str()),
            content.size,
            oci_spec::image::Digest::try_from(content.digest.to_string()).map_err(|source| {
                self.error(LayoutError::Digest {
                    digest: content.digest.clone(),
                    source,
                })
            })?,
        );
        match tag {
            Some(tag) => {
                entries.retain(|d| tag_of(d).as_deref() != Some(tag));
                descriptor.set_annotations(Some(
                    [(REF_NAME_ANNOTATION.to_string(), tag.to_string())].into(),
                ));
            }
            None => {
                let exists = entries.iter().any(|d| {
                    d.digest().as_ref() == content.digest.to_string() && tag_of(d).is_none()
                });
                if exists {
                    return Ok(());
                }
            }
        }
        entries.push(descriptor);
        let mut index = index;
        index.set_manifests(entries);
        self.write_index(&index).await
    }

    /// Holds `index.json` for a read-modify-write: an exclusive lock on
    /// `.index.lock` (other processes) taken under a per-layout mutex (other
    /// tasks of this one), released when the guard drops.
    async fn lock_index(&self) -> Result<IndexLock> {
        static LOCKS: std::sync::Mutex<Vec<(PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>)>> =
            std::sync::Mutex::new(Vec::new());
        let mutex = {
            let mut locks = LOCKS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match locks.iter().find(|(root, _)| *root == self.root) {
                Some((_, mutex)) => mutex.clone(),
                None => {
                    let mutex = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                    locks.push((self.root.clone(), mutex.clone()));
                    mutex
                }
            }
        };
        let task = mutex.lock_owned().await;
        let path = self.root.join(".index.lock");
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::create(&path).map_err(Error::io(&path))?;
            file.lock().map_err(Error::io(&path))?;
            Ok::<_, Error>(file)
        })
        .await
        .map_err(|e| self.error(LayoutError::Lock(e)))??;
        Ok(IndexLock {
            _file: file,
            _task: task,
        })
    }

    async fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes =
            serde_json::to_vec(index).map_err(|e| self.error(LayoutError::EncodeIndex(e)))?;
        self.write_atomically("index.json", &bytes).await
    }

    async fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let temp = self.temp_path();
        let target = self.root.join(name);
        let result = async {
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(Error::io(&temp))?;
            file.write_all(bytes).await.map_err(Error::io(&temp))?;
            file.sync_all().await.map_err(Error::io(&temp))?;
            tokio::fs::rename(&temp, &target)
                .await
                .map_err(Error::io(&target))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    fn temp_path(&self) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(format!(".drydock-tmp-{}-{n}", std::process::id()))
    }
}

fn empty_index() -> std::result::Result<ImageIndex, oci_spec::OciSpecError> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(media_type::OCI_INDEX))
        .manifests(Vec::<Descriptor>::new())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_tags_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).await.unwrap();
        let content = layout
            .write_blob_bytes(Bytes::from_static(b"{}"), media_type::OCI_MANIFEST)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (layout, content) = (layout.clone(), content.clone());
                tokio::spawn(async move { layout.set_tag(Some(&format!("t{i}")), &content).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(layout.tags().await.unwrap().len(), 32);
    }

    #[tokio::test]
    async fn writes_and_reads_tagged_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).await.unwrap();
        let content = layout
            .write_blob_bytes(Bytes::from_static(b"{}"), media_type::OCI_MANIFEST)
            .await
            .unwrap();
        layout.set_tag(Some("v1"), &content).await.unwrap();
        layout.set_tag(Some("v1"), &content).await.unwrap();
        layout.set_tag(Some("v2"), &content).await.unwrap();
        let reopened = OciLayout::open(dir.path()).await.unwrap();
        assert_eq!(reopened.tags().await.unwrap(), ["v1", "v2"]);
        assert_eq!(reopened.resolve(Some("v2")).await.unwrap(), content);
        assert!(
            reopened.resolve(None).await.is_err(),
            "two entries need a tag"
        );
        assert!(reopened.resolve(Some("v3")).await.is_err());
        assert_eq!(
            reopened.read_blob_bytes(&content).await.unwrap().as_ref(),
            b"{}"
        );
    }

    #[tokio::test]
    async fn resolves_tags_as_written_by_other_tools() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).await.unwrap();
        let digest = |n: u8| Digest::sha256_of(&[n]).to_string();
        let write_index = |entries: serde_json::Value| {
            let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
            // Written with the tag escaped, as some tools write non-ASCII.
            let text = index.to_string().replace("café", "caf\\u00e9");
            std::fs::write(dir.path().join("index.json"), text).unwrap();
        };
        // Other annotations beside the tag, a tag with an escape, an untagged entry.
        write_index(serde_json::json!([
            {"mediaType": media_type::OCI_MANIFEST, "digest": digest(1), "size": 10,
             "annotations": {"org.opencontainers.image.created": "2026-12-06",
                             REF_NAME_ANNOTATION: "v1"}},
            {"mediaType": media_type::OCI_INDEX, "digest": digest(2), "size": 20,
             "annotations": {REF_NAME_ANNOTATION: "café"}},
            {"mediaType": media_type::OCI_MANIFEST, "digest": digest(3), "size": 30},
        ]));
        let v1 = layout.resolve(Some("v1")).await.unwrap();
        assert_eq!((v1.digest.to_string(), v1.size), (digest(1), 10));
        assert_eq!(v1.media_type, media_type::OCI_MANIFEST);
        let cafe = layout.resolve(Some("café")).await.unwrap();
        assert_eq!(
            (cafe.digest.to_string(), cafe.media_type.as_str()),
            (digest(2), media_type::OCI_INDEX)
        );
        match layout.resolve(Some("v2")).await {
            Err(Error::Layout {
                reason: LayoutError::NoSuchTag { tags, .. },
                ..
            }) => assert_eq!(tags, ["v1", "café"]),
            other => panic!("{other:?}"),
        }
        assert!(
            layout.resolve(None).await.is_err(),
            "three entries need a tag"
        );

        // One entry resolves without a tag.
        write_index(serde_json::json!([
            {"mediaType": media_type::OCI_MANIFEST, "digest": digest(3), "size": 30},
        ]));
        assert_eq!(layout.resolve(None).await.unwrap().size, 30);

        // An entry without a media type is not a valid index, whatever the tag.
        write_index(serde_json::json!([
            {"digest": digest(1), "size": 10, "annotations": {REF_NAME_ANNOTATION: "v1"}},
        ]));
        assert!(matches!(
            layout.resolve(Some("v1")).await,
            Err(Error::Layout {
                reason: LayoutError::InvalidIndex(_),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn refuses_corrupt_blobs_and_non_layouts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OciLayout::open(dir.path()).await.is_err());
        let layout = OciLayout::create(dir.path()).await.unwrap();
        let claimed = ContentRef {
            digest: Digest::sha256_of(b"expected"),
            size: 8,
            media_type: String::new(),
        };
        let stream: BlobStream = Box::pin(futures_util::stream::once(async {
            Ok(Bytes::from_static(b"tampered"))
        }));
        assert!(layout.write_blob(&claimed, stream).await.is_err());
        assert!(!layout.has_blob(&claimed.digest).await);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".drydock-tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // A blob altered on disk after it was written is caught when read.
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("blobs/sha256").join(claimed.digest.hex()),
            b"tampered",
        )
        .unwrap();
        assert!(layout.read_blob_bytes(&claimed).await.is_err());
    }
}
