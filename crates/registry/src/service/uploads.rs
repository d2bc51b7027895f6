//! Upload sessions: each is a temp file `uploads/<uuid>` that request bodies
//! are streamed into through a bounded buffer while a sha256 is computed, so
//! memory per upload stays constant whatever the blob size. The incremental
//! hash lives in memory keyed by session id; after a restart it is rebuilt by
//! rehashing the temp file. A chunk that fails half-way (truncated body) is
//! rolled back, leaving the session where it was.
//!
//! Completing a session verifies the digest, fsyncs, renames the file into
//! the blob store and only then records the blob, under the shared data lock
//! so garbage collection cannot interleave. Never records anything for an
//! upload that did not verify.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use futures_util::TryStreamExt;
use oci::{Algorithm, Digest, Hasher};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use uuid::Uuid;

use crate::Registry;
use crate::error::Error;
use crate::storage::{metadata, unix_now};

/// Bytes buffered between the request body and the temp file.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Where a chunk is expected to start, from its `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u64,
    /// Inclusive end; `None` when the client did not say.
    pub end: Option<u64>,
}

struct Session {
    size: u64,
    hasher: Hasher,
}

/// The upload sessions of one registry process.
pub struct Uploads {
    dir: PathBuf,
    sessions: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Session>>>>,
}

impl Uploads {
    pub fn new(dir: PathBuf) -> Uploads {
        Uploads {
            dir,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<Session>>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session with an empty temp file.
    pub async fn start(&self) -> Result<Uuid, Error> {
        let id = Uuid::new_v4();
        tokio::fs::File::create(self.path(id)).await?;
        self.sessions().insert(
            id,
            Arc::new(tokio::sync::Mutex::new(Session {
                size: 0,
                hasher: Hasher::new(Algorithm::Sha256),
            })),
        );
        Ok(id)
    }

    /// The session's state, rebuilt from its temp file when this process has
    /// not seen it (e.g. after a restart). A session whose temp file is gone
    /// (expired by a `drydock gc` in another process) is unknown.
    async fn session(&self, id: Uuid) -> Result<Arc<tokio::sync::Mutex<Session>>, Error> {
        let known = self.sessions().get(&id).cloned();
        if let Some(session) = known {
            if tokio::fs::try_exists(self.path(id)).await? {
                return Ok(session);
            }
            self.sessions().remove(&id);
            return Err(Error::BlobUploadUnknown(id.to_string()));
        }
        let (hasher, size) = hash_file(&self.path(id), Algorithm::Sha256)
            .await
            .map_err(|_| Error::BlobUploadUnknown(id.to_string()))?;
        let session = Arc::new(tokio::sync::Mutex::new(Session { size, hasher }));
        Ok(self.sessions().entry(id).or_insert(session).clone())
    }

    /// Bytes received so far.
    pub async fn size(&self, id: Uuid) -> Result<u64, Error> {
        let session = self.session(id).await?;
        let size = session.lock().await.size;
        Ok(size)
    }

    /// Appends a request body to the session and returns the new size.
    pub async fn append(
        &self,
        id: Uuid,
        range: Option<ChunkRange>,
        body: Body,
        location: &str,
    ) -> Result<u64, Error> {
        let session = match self.session(id).await {
            Ok(session) => session,
            Err(e) => {
                drain(body).await;
                return Err(e);
            }
        };
        let mut session = session.lock().await;
        self.append_locked(id, &mut session, range, body, location)
            .await?;
        Ok(session.size)
    }

    async fn append_locked(
        &self,
        id: Uuid,
        session: &mut Session,
        range: Option<ChunkRange>,
        body: Body,
        location: &str,
    ) -> Result<(), Error> {
        if let Some(range) = range
            && range.start != session.size
        {
            drain(body).await;
            return Err(Error::ChunkOutOfOrder {
                location: location.to_string(),
                start: range.start,
                size: session.size,
            });
        }
        let mut file = match tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.path(id))
            .await
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.sessions().remove(&id);
                return Err(Error::BlobUploadUnknown(id.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        // A request cancelled mid-chunk (client gone) may have left bytes
        // past what the session accounts for: drop them.
        file.set_len(session.size).await?;
        file.seek(SeekFrom::Start(session.size)).await?;
        let mut hasher = session.hasher.clone();
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let written = stream_into(body, &mut writer, &mut hasher).await;
        let expected = range.and_then(|r| r.end.map(|end| (end + 1).saturating_sub(r.start)));
        let outcome = match written {
            Ok(n) if expected.is_some_and(|e| e != n) => Err(Error::BlobUploadInvalid(format!(
                "chunk has {n} bytes but its Content-Range announced {}",
                expected.unwrap_or_default()
            ))),
            other => other,
        };
        match outcome {
            Ok(n) => {
                session.size += n;
                session.hasher = hasher;
                Ok(())
            }
            Err(e) => {
                // Roll the chunk back so the session stays consistent with its hash.
                writer.into_inner().set_len(session.size).await?;
                Err(e)
            }
        }
    }

    /// Appends an optional final chunk, verifies `digest`, installs the blob
    /// and links it into `repo`. Returns the blob size. On a digest mismatch
    /// the session is discarded.
    pub async fn complete(
        &self,
        registry: &Registry,
        id: Uuid,
        repo: &str,
        digest: &Digest,
        final_chunk: (Option<ChunkRange>, Body),
        location: &str,
    ) -> Result<u64, Error> {
        let session = self.session(id).await?;
        let mut session = session.lock().await;
        let (range, body) = final_chunk;
        self.append_locked(id, &mut session, range, body, location)
            .await?;
        let path = self.path(id);
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => session.hasher.clone().finish(),
            other => hash_file(&path, other).await?.0.finish(),
        };
        if &actual != digest {
            self.discard(id).await?;
            return Err(Error::DigestInvalid(format!(
                "upload content hashes to {actual}, not {digest}; the upload was discarded"
            )));
        }
        tokio::fs::File::open(&path).await?.sync_all().await?;
        let size = session.size;
        let (repo, digest_text, blobs, metadata, lock) = (
            repo.to_string(),
            digest.to_string(),
            registry.inner.blobs.clone(),
            registry.inner.metadata.clone(),
            registry.inner.lock.clone(),
        );
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let _guard = lock.shared_blocking()?;
            blobs.install_blocking(&path, &digest)?;
            metadata
                .call_blocking(|c| metadata::link_blob(c, &repo, &digest_text, size, unix_now()))
        })
        .await??;
        self.sessions().remove(&id);
        Ok(size)
    }

    /// Cancels a session and removes its temp file.
    pub async fn discard(&self, id: Uuid) -> Result<(), Error> {
        let known = self.sessions().remove(&id).is_some();
        match tokio::fs::remove_file(self.path(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && known => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::BlobUploadUnknown(id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets sessions whose temp files garbage collection expired.
    pub fn forget(&self, ids: &[Uuid]) {
        let mut sessions = self.sessions();
        for id in ids {
            sessions.remove(id);
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// Reads and drops what a client is still sending before it is told no, so
/// the connection survives for its retry; gives up on very large bodies.
async fn drain(body: Body) {
    const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
    let mut stream = body.into_data_stream();
    let mut drained = 0;
    while drained < DRAIN_LIMIT
        && let Ok(Some(chunk)) = stream.try_next().await
    {
        drained += chunk.len();
    }
}

/// Streams `body` through `hasher` into `writer`; returns the byte count.
async fn stream_into(
    body: Body,
    writer: &mut BufWriter<tokio::fs::File>,
    hasher: &mut Hasher,
) -> Result<u64, Error> {
    let mut stream = body.into_data_stream();
    let mut count = 0u64;
    loop {
        let chunk = stream.try_next().await.map_err(|e| {
            Error::BlobUploadInvalid(format!("request body could not be read completely: {e}"))
        })?;
        let Some(chunk) = chunk else { break };
        hasher.update(&chunk);
        writer.write_all(&chunk).await?;
        count += chunk.len() as u64;
    }
    writer.flush().await?;
    Ok(count)
}

/// Hashes a file from disk; returns the hasher state and the file size.
async fn hash_file(path: &std::path::Path, algorithm: Algorithm) -> Result<(Hasher, u64), Error> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0u8; WRITE_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hasher, size))
}
