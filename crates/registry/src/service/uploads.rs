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

use crate::error::RequestError;
use crate::storage::{BlobStore, DataLock, Metadata, StorageError, metadata, unix_now};

/// Bytes buffered between the request body and the temp file.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Where a chunk is expected to start, from its `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    /// The chunk's first byte's offset in the upload.
    pub start: u64,
    /// Inclusive end; `None` when the client did not say.
    pub end: Option<u64>,
}

struct Session {
    size: u64,
    hasher: Hasher,
}

/// The upload sessions of one registry process, and what completing one
/// needs: the blob store to install into, the metadata store to record in
/// and the data lock that keeps garbage collection away meanwhile.
pub struct UploadService {
    dir: PathBuf,
    sessions: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Session>>>>,
    blobs: BlobStore,
    metadata: Metadata,
    lock: DataLock,
}

impl UploadService {
    /// The service over these storage handles, with no session known yet.
    pub fn new(blobs: BlobStore, metadata: Metadata, lock: DataLock) -> UploadService {
        UploadService {
            dir: blobs.uploads_dir(),
            sessions: Mutex::new(HashMap::new()),
            blobs,
            metadata,
            lock,
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
    pub async fn start(&self) -> Result<Uuid, RequestError> {
        let id = Uuid::new_v4();
        let path = self.path(id);
        tokio::fs::File::create(&path)
            .await
            .map_err(StorageError::io("create upload file", path))?;
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
    async fn session(&self, id: Uuid) -> Result<Arc<tokio::sync::Mutex<Session>>, RequestError> {
        let known = self.sessions().get(&id).cloned();
        if let Some(session) = known {
            let path = self.path(id);
            if tokio::fs::try_exists(&path)
                .await
                .map_err(StorageError::io("look for upload file", path))?
            {
                return Ok(session);
            }
            self.sessions().remove(&id);
            return Err(RequestError::BlobUploadUnknown(id.to_string()));
        }
        let (hasher, size) = hash_file(&self.path(id), Algorithm::Sha256)
            .await
            .map_err(|_| RequestError::BlobUploadUnknown(id.to_string()))?;
        let session = Arc::new(tokio::sync::Mutex::new(Session { size, hasher }));
        Ok(self.sessions().entry(id).or_insert(session).clone())
    }

    /// Bytes received so far.
    pub async fn size(&self, id: Uuid) -> Result<u64, RequestError> {
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
    ) -> Result<u64, RequestError> {
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
    ) -> Result<(), RequestError> {
        if let Some(range) = range
            && range.start != session.size
        {
            drain(body).await;
            return Err(RequestError::ChunkOutOfOrder {
                location: location.to_string(),
                start: range.start,
                size: session.size,
            });
        }
        let path = self.path(id);
        let failed = |action| StorageError::io(action, &path);
        let mut file = match tokio::fs::OpenOptions::new().write(true).open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.sessions().remove(&id);
                return Err(RequestError::BlobUploadUnknown(id.to_string()));
            }
            Err(e) => return Err(failed("open upload file")(e).into()),
        };
        // A request cancelled mid-chunk (client gone) may have left bytes
        // past what the session accounts for: drop them.
        file.set_len(session.size)
            .await
            .map_err(failed("truncate upload file"))?;
        file.seek(SeekFrom::Start(session.size))
            .await
            .map_err(failed("seek in upload file"))?;
        let mut hasher = session.hasher.clone();
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let written = stream_into(body, &mut writer, &mut hasher, &path).await;
        let expected = range.and_then(|r| r.end.map(|end| (end + 1).saturating_sub(r.start)));
        let outcome = match written {
            Ok(n) if expected.is_some_and(|e| e != n) => {
                Err(RequestError::BlobUploadInvalid(format!(
                    "chunk has {n} bytes but its Content-Range announced {}",
                    expected.unwrap_or_default()
                )))
            }
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
                writer
                    .into_inner()
                    .set_len(session.size)
                    .await
                    .map_err(failed("truncate upload file"))?;
                Err(e)
            }
        }
    }

    /// Appends an optional final chunk, verifies `digest`, installs the blob
    /// and links it into `repo`. Returns the blob size. On a digest mismatch
    /// the session is discarded.
    pub async fn complete(
        &self,
        id: Uuid,
        repo: &str,
        digest: &Digest,
        final_chunk: (Option<ChunkRange>, Body),
        location: &str,
    ) -> Result<u64, RequestError> {
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
            return Err(RequestError::DigestInvalid(format!(
                "upload content hashes to {actual}, not {digest}; the upload was discarded"
            )));
        }
        let size = session.size;
        let (repo, digest_text, blobs, metadata, lock) = (
            repo.to_string(),
            digest.to_string(),
            self.blobs.clone(),
            self.metadata.clone(),
            self.lock.clone(),
        );
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(StorageError::io("sync upload file", &path))?;
            let _guard = lock.shared_blocking()?;
            blobs.install_blocking(&path, &digest)?;
            metadata
                .call_blocking(|c| metadata::link_blob(c, &repo, &digest_text, size, unix_now()))
        })
        .await
        .map_err(StorageError::from)??;
        self.sessions().remove(&id);
        Ok(size)
    }

    /// Cancels a session and removes its temp file.
    pub async fn discard(&self, id: Uuid) -> Result<(), RequestError> {
        let known = self.sessions().remove(&id).is_some();
        let path = self.path(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && known => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(RequestError::BlobUploadUnknown(id.to_string()))
            }
            Err(e) => Err(StorageError::io("remove upload file", path)(e).into()),
        }
    }

    /// Forgets sessions whose temp files garbage collection expired.
    pub fn forget(&self, ids: &[Uuid]) {
        let mut sessions = self.sessions();
        for id in ids {
            sessions.remove(id);
        }
    }

    /// Where the sessions' temp files are.
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
    path: &std::path::Path,
) -> Result<u64, RequestError> {
    let mut stream = body.into_data_stream();
    let mut count = 0u64;
    loop {
        let chunk = stream.try_next().await.map_err(|e| {
            RequestError::BlobUploadInvalid(format!(
                "request body could not be read completely: {e}"
            ))
        })?;
        let Some(chunk) = chunk else { break };
        hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(StorageError::io("write upload file", path))?;
        count += chunk.len() as u64;
    }
    writer
        .flush()
        .await
        .map_err(StorageError::io("write upload file", path))?;
    Ok(count)
}

/// Hashes a file from disk; returns the hasher state and the file size.
async fn hash_file(
    path: &std::path::Path,
    algorithm: Algorithm,
) -> Result<(Hasher, u64), StorageError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(StorageError::io("open upload file", path))?;
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0u8; WRITE_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(StorageError::io("read upload file", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hasher, size))
}
