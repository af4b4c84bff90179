//! Attachment uploads, content-addressed, in one of two blob stores behind [`BlobStore`]:
//! a folder in the data directory ([`BlobFolder`], the default) or an S3-compatible bucket
//! ([`S3Blobs`], `--blob-url s3://bucket/prefix`).
//!
//! ## The blob folder
//!
//! ```text
//! <data_dir>/uploads/<sha256>.part      an upload still arriving; its size is the offset
//! <data_dir>/blobs/<first 2 hex>/<sha256> a complete upload whose SHA-256 was checked
//! ```
//!
//! The files are the truth about offsets: every append is fsynced before it is acknowledged,
//! so the size of the `.part` file is exactly what a device may rely on. A complete upload is
//! renamed into `blobs/` only after its whole SHA-256 matched, and the directories are fsynced
//! after the rename, so a blob that exists is whole. The database (`uploads` table) says which
//! attachment each upload is, for export.
//!
//! Appends to one upload are serialised by a per-upload lock ([`BlobFolder::lock`]); the lock
//! is per process, so several server processes must not share one blob folder.

mod s3;

pub use s3::S3Blobs;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use attune_core::attachment::is_sha256_hex;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

/// How much of an upload the folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobState {
    /// Bytes held in the `.part` file (0 if there is none yet).
    Partial(u64),
    /// The blob is complete and its hash was checked.
    Complete,
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The piece does not start where the held bytes end.
    #[error("the upload is at offset {0}")]
    OffsetMismatch(u64),
    /// The upload is already complete.
    #[error("the upload is already complete")]
    Complete,
    /// The whole upload's SHA-256 did not match its name: the partial file was deleted.
    #[error("the uploaded bytes do not match their SHA-256")]
    HashMismatch,
    /// The filesystem or the object store failed.
    #[error("blob store: {0}")]
    Io(#[from] io::Error),
}

/// Where attachments are kept: a folder in the data directory or an S3-compatible bucket.
/// Both hold the same states and answer appends the same way. Cheap to clone.
#[derive(Clone, Debug)]
pub enum BlobStore {
    /// `uploads/`, `blobs/` in the data directory.
    Folder(BlobFolder),
    /// `uploads/<sha256>/<offset>` pieces and `blobs/<sha256>` objects in a bucket.
    S3(S3Blobs),
}

impl BlobStore {
    /// The store a `--blob-url` names (`s3://bucket/prefix`), or the folder in `data_dir`
    /// without one.
    pub fn open(blob_url: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        match blob_url.map(str::trim).filter(|url| !url.is_empty()) {
            None => Ok(Self::Folder(BlobFolder::new(data_dir))),
            Some(url) => S3Blobs::from_url(url).map(Self::S3),
        }
    }

    /// Where the blobs are, for logs: the folder or the `s3://` URL.
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(folder) => folder.root.display().to_string(),
            Self::S3(s3) => s3.url().to_owned(),
        }
    }

    /// Waits for this process's lock on one upload: appends under it cannot interleave.
    pub async fn lock(&self, sha256: &str) -> OwnedMutexGuard<()> {
        match self {
            Self::Folder(folder) => folder.lock(sha256).await,
            Self::S3(s3) => s3.lock(sha256).await,
        }
    }

    /// How much of the upload named `sha256` is held.
    pub async fn state(&self, sha256: &str) -> io::Result<BlobState> {
        match self {
            Self::Folder(folder) => folder.state(sha256).await,
            Self::S3(s3) => s3.state(sha256).await,
        }
    }

    /// Appends `piece` at `offset` to the upload named `sha256` of `length` bytes, durable
    /// before returning the new offset; completes (hash checked) or discards the upload when
    /// it is whole. Hold [`BlobStore::lock`] around it.
    pub async fn append(
        &self,
        sha256: &str,
        length: u64,
        offset: u64,
        piece: axum::body::Bytes,
    ) -> Result<BlobState, AppendError> {
        match self {
            Self::Folder(folder) => folder.append(sha256, length, offset, piece).await,
            Self::S3(s3) => s3.append(sha256, length, offset, piece).await,
        }
    }

    /// Completes an upload of `length` bytes that holds them all but is not complete (the
    /// server stopped, or the final write failed, after the last piece was acknowledged):
    /// checks the SHA-256 and keeps the blob ([`BlobState::Complete`]) or discards the
    /// upload ([`AppendError::HashMismatch`]). Hold [`BlobStore::lock`] around it.
    pub async fn finish(&self, sha256: &str, length: u64) -> Result<BlobState, AppendError> {
        // An empty piece at the end: both backends complete a whole upload on it.
        self.append(sha256, length, length, axum::body::Bytes::new())
            .await
    }

    /// The bytes of a complete blob, or `None` if there is no complete blob of that name.
    pub async fn read(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            Self::Folder(folder) => folder.read(sha256).await,
            Self::S3(s3) => s3.read(sha256).await,
        }
    }
}

impl From<BlobFolder> for BlobStore {
    fn from(folder: BlobFolder) -> Self {
        Self::Folder(folder)
    }
}

impl From<S3Blobs> for BlobStore {
    fn from(s3: S3Blobs) -> Self {
        Self::S3(s3)
    }
}

/// Per-process locks, one per upload, dropped when no one holds or waits for them.
#[derive(Clone, Debug, Default)]
pub(crate) struct UploadLocks(Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>);

impl UploadLocks {
    pub(crate) async fn lock(&self, sha256: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(sha256).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(sha256.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// The blob folder in a data directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobFolder {
    root: PathBuf,
    locks: UploadLocks,
}

impl BlobFolder {
    /// The blob folder under `data_dir`. Nothing is created until the first upload.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: data_dir.into(),
            locks: UploadLocks::default(),
        }
    }

    /// Where a complete blob lives: `blobs/<first 2 hex>/<sha256>`.
    ///
    /// # Panics
    /// If `sha256` is not 64 lower-case hex digits (callers check names from outside first).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        assert!(is_sha256_hex(sha256), "not a SHA-256 name: {sha256:?}");
        self.root.join("blobs").join(&sha256[..2]).join(sha256)
    }

    fn part_path(&self, sha256: &str) -> PathBuf {
        assert!(is_sha256_hex(sha256), "not a SHA-256 name: {sha256:?}");
        self.root.join("uploads").join(format!("{sha256}.part"))
    }

    /// Waits for the lock on one upload: appends under it cannot interleave.
    pub async fn lock(&self, sha256: &str) -> OwnedMutexGuard<()> {
        self.locks.lock(sha256).await
    }

    /// How much of the upload named `sha256` is held.
    pub async fn state(&self, sha256: &str) -> io::Result<BlobState> {
        let (blob, part) = (self.blob_path(sha256), self.part_path(sha256));
        blocking(move || state(&blob, &part)).await
    }

    /// Appends `piece` at `offset` to the upload named `sha256` of `length` bytes, fsynced
    /// before returning the new offset. When the upload is then whole, checks its SHA-256 and
    /// moves it into `blobs/` ([`BlobState::Complete`]), or deletes it
    /// ([`AppendError::HashMismatch`]). Hold [`BlobFolder::lock`] around it.
    pub async fn append(
        &self,
        sha256: &str,
        length: u64,
        offset: u64,
        piece: axum::body::Bytes,
    ) -> Result<BlobState, AppendError> {
        let folder = self.clone();
        let sha256 = sha256.to_owned();
        blocking(move || folder.append_blocking(&sha256, length, offset, &piece)).await
    }

    fn append_blocking(
        &self,
        sha256: &str,
        length: u64,
        offset: u64,
        piece: &[u8],
    ) -> Result<BlobState, AppendError> {
        let (blob, part) = (self.blob_path(sha256), self.part_path(sha256));
        match state(&blob, &part)? {
            BlobState::Complete => return Err(AppendError::Complete),
            BlobState::Partial(held) if held != offset => {
                return Err(AppendError::OffsetMismatch(held));
            }
            BlobState::Partial(_) => {}
        }
        let uploads_dir = self.root.join("uploads");
        if offset == 0 {
            create_dir_synced(&uploads_dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&part)?;
        if offset == 0 {
            // The new file's directory entry must survive a crash too.
            sync_dir(&uploads_dir)?;
        }
        let written = file.write_all(piece).and_then(|()| file.sync_all());
        if let Err(error) = written {
            // Leave the file as it was, so the offset stays what was acknowledged.
            let _ = file.set_len(offset).and_then(|()| file.sync_all());
            return Err(error.into());
        }
        let held = offset + piece.len() as u64;
        if held < length {
            return Ok(BlobState::Partial(held));
        }
        drop(file);
        if sha256_of_file(&part)? != sha256 {
            fs::remove_file(&part)?;
            sync_dir(&uploads_dir)?;
            return Err(AppendError::HashMismatch);
        }
        let shard = blob.parent().unwrap_or(&self.root).to_path_buf();
        create_dir_synced(&shard)?;
        fs::rename(&part, &blob)?;
        sync_dir(&shard)?;
        sync_dir(&uploads_dir)?;
        Ok(BlobState::Complete)
    }

    /// The bytes of a complete blob, or `None` if there is no complete blob of that name.
    pub async fn read(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        let blob = self.blob_path(sha256);
        blocking(move || match fs::read(&blob) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
        .await
    }
}

fn state(blob: &Path, part: &Path) -> io::Result<BlobState> {
    if blob.is_file() {
        return Ok(BlobState::Complete);
    }
    match fs::metadata(part) {
        Ok(metadata) => Ok(BlobState::Partial(metadata.len())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(BlobState::Partial(0)),
        Err(error) => Err(error),
    }
}

fn sha256_of_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(attune_core::hex::encode(&hasher.finalize()))
}

/// Creates `dir` (and its parents) if missing, fsyncing each new directory's parent.
fn create_dir_synced(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_synced(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// fsync on a directory: makes the entries created or renamed in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static, E: From<io::Error> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| E::from(io::Error::other(error)))?
}
