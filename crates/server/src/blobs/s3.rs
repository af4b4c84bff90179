//! The S3 blob store: attachment uploads in an S3-compatible bucket (`--blob-url
//! s3://bucket/prefix`), shared safely by several server processes.
//!
//! ```text
//! <prefix>/uploads/<sha256>/<offset, 20 digits>   one acknowledged piece of an upload
//! <prefix>/blobs/<sha256>                          a complete upload whose SHA-256 was checked
//! ```
//!
//! Every piece a device sent is its own object, put (durably, as S3 acknowledges) before the
//! new offset is answered. The offset is not kept anywhere else: it is the end of the chain of
//! pieces listed from offset 0, each starting where the one before ends. So any server
//! process, or one started after a crash, answers the same offset. When the chain reaches the
//! upload's length, the pieces are read in order and hashed; only if the SHA-256 matches is
//! `blobs/<sha256>` written (one put, or a multipart upload for large attachments, aborted on a
//! mismatch), then the pieces are deleted. A blob that exists is therefore whole.
//!
//! Credentials, endpoint and region come from the usual `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`,
//! `AWS_REGION`, ...); an `http://` endpoint is allowed (a bucket on the local network).
//!
//! The lock in [`S3Blobs::lock`] is per process: two processes given the same piece at the
//! same offset at once would both put it (the same key, so the chain stays consistent when the
//! pieces are the same bytes, as they are for one device resending).

use std::io;
use std::sync::Arc;

use attune_core::attachment::is_sha256_hex;
use axum::body::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

use super::{AppendError, BlobState, UploadLocks};

/// Attachments at or below this size are written as one object; larger ones by a multipart
/// upload (parts of [`PART_SIZE`]), so a large attachment is never held in memory whole.
const SINGLE_PUT_LIMIT: u64 = 32 << 20;
/// The multipart upload's part size (S3 wants at least 5 MiB, except for the last part).
const PART_SIZE: usize = 8 << 20;

/// The blobs in an S3-compatible bucket, under a prefix. Cheap to clone.
#[derive(Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    url: String,
    locks: UploadLocks,
    single_put_limit: u64,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3Blobs")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One piece of an upload in the bucket.
struct Piece {
    offset: u64,
    size: u64,
    path: Path,
}

impl S3Blobs {
    /// The bucket and prefix of `s3://bucket/prefix` (prefix optional), with credentials,
    /// endpoint and region from the `AWS_*` environment variables.
    pub fn from_url(url: &str) -> Result<Self, String> {
        Self::from_url_with(url, &[])
    }

    /// [`S3Blobs::from_url`] with these settings over the environment's, each named as the
    /// variable without `AWS_` (`("endpoint", "http://127.0.0.1:9000")`, `("access_key_id",
    /// ...)`, `("secret_access_key", ...)`, `("region", ...)`).
    pub fn from_url_with(url: &str, settings: &[(&str, &str)]) -> Result<Self, String> {
        let (bucket, prefix) = parse_url(url)?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_allow_http(true);
        for (key, value) in settings {
            let key = key
                .parse()
                .map_err(|error| format!("unknown S3 setting {key:?}: {error}"))?;
            builder = builder.with_config(key, *value);
        }
        let s3 = builder
            .build()
            .map_err(|error| format!("cannot use {url}: {error}"))?;
        Ok(Self::with_store(Arc::new(s3), prefix, url))
    }

    /// Blobs in `store` under `prefix` (empty: at the top). `url` names it in logs.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Self {
            store,
            url: url.to_owned(),
            locks: UploadLocks::default(),
            single_put_limit: SINGLE_PUT_LIMIT,
        }
    }

    /// Completes uploads larger than `limit` bytes by a multipart upload instead of one put
    /// (the default is 32 MiB; tests lower it to exercise the multipart path).
    #[must_use]
    pub fn with_single_put_limit(mut self, limit: u64) -> Self {
        self.single_put_limit = limit;
        self
    }

    /// The `s3://` URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object of a complete blob: `blobs/<sha256>`, under the prefix.
    ///
    /// # Panics
    /// If `sha256` is not 64 lower-case hex digits (callers check names from outside first).
    pub fn blob_key(&self, sha256: &str) -> Path {
        assert!(is_sha256_hex(sha256), "not a SHA-256 name: {sha256:?}");
        Path::from_iter(["blobs", sha256])
    }

    fn uploads_dir(sha256: &str) -> Path {
        assert!(is_sha256_hex(sha256), "not a SHA-256 name: {sha256:?}");
        Path::from_iter(["uploads", sha256])
    }

    fn piece_key(sha256: &str, offset: u64) -> Path {
        Self::uploads_dir(sha256).child(format!("{offset:020}"))
    }

    /// Waits for this process's lock on one upload.
    pub async fn lock(&self, sha256: &str) -> OwnedMutexGuard<()> {
        self.locks.lock(sha256).await
    }

    async fn is_complete(&self, sha256: &str) -> io::Result<bool> {
        match self.store.head(&self.blob_key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(io_error(error)),
        }
    }

    /// The chain of pieces from offset 0, each starting where the one before ends. A piece
    /// past a gap (none is ever acknowledged) ends the chain.
    async fn chain(&self, sha256: &str) -> io::Result<Vec<Piece>> {
        let dir = Self::uploads_dir(sha256);
        let mut listed = Vec::new();
        let mut objects = self.store.list(Some(&dir));
        while let Some(object) = objects.next().await {
            let object = object.map_err(io_error)?;
            let Some(offset) = object
                .location
                .filename()
                .and_then(|name| name.parse::<u64>().ok())
            else {
                continue;
            };
            listed.push(Piece {
                offset,
                size: object.size,
                path: object.location,
            });
        }
        listed.sort_by_key(|piece| piece.offset);
        let mut chain: Vec<Piece> = Vec::new();
        let mut end = 0;
        for piece in listed {
            if piece.offset != end {
                if piece.offset > end {
                    break;
                }
                continue;
            }
            end += piece.size;
            chain.push(piece);
        }
        Ok(chain)
    }

    fn end(chain: &[Piece]) -> u64 {
        chain.last().map_or(0, |piece| piece.offset + piece.size)
    }

    /// How much of the upload named `sha256` is held.
    pub async fn state(&self, sha256: &str) -> io::Result<BlobState> {
        if self.is_complete(sha256).await? {
            return Ok(BlobState::Complete);
        }
        Ok(BlobState::Partial(Self::end(&self.chain(sha256).await?)))
    }

    /// Puts `piece` at `offset` of the upload named `sha256` of `length` bytes as its own
    /// object; when the upload is then whole, checks its SHA-256 and writes `blobs/<sha256>`
    /// ([`BlobState::Complete`]), or deletes the pieces ([`AppendError::HashMismatch`]).
    pub async fn append(
        &self,
        sha256: &str,
        length: u64,
        offset: u64,
        piece: Bytes,
    ) -> Result<BlobState, AppendError> {
        if self.is_complete(sha256).await? {
            return Err(AppendError::Complete);
        }
        let mut chain = self.chain(sha256).await?;
        let held = Self::end(&chain);
        if held != offset {
            return Err(AppendError::OffsetMismatch(held));
        }
        if !piece.is_empty() {
            let path = Self::piece_key(sha256, offset);
            let size = piece.len() as u64;
            self.store
                .put(&path, PutPayload::from(piece))
                .await
                .map_err(io_error)?;
            chain.push(Piece { offset, size, path });
        }
        let held = Self::end(&chain);
        if held < length {
            return Ok(BlobState::Partial(held));
        }
        self.complete(sha256, length, &chain).await
    }

    /// Hashes the pieces in order and writes the blob if the SHA-256 matches its name.
    async fn complete(
        &self,
        sha256: &str,
        length: u64,
        chain: &[Piece],
    ) -> Result<BlobState, AppendError> {
        let blob = self.blob_key(sha256);
        let mut hasher = Sha256::new();
        let matched = if length <= self.single_put_limit {
            let mut whole = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
            for piece in chain {
                let bytes = self.get(&piece.path).await?;
                hasher.update(&bytes);
                whole.extend_from_slice(&bytes);
            }
            let matched = attune_core::hex::encode(&hasher.finalize()) == sha256;
            if matched {
                self.store
                    .put(&blob, PutPayload::from(whole))
                    .await
                    .map_err(io_error)?;
            }
            matched
        } else {
            let upload = self.store.put_multipart(&blob).await.map_err(io_error)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            for piece in chain {
                let bytes = match self.get(&piece.path).await {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        let _ = writer.abort().await;
                        return Err(error.into());
                    }
                };
                hasher.update(&bytes);
                writer.write(&bytes);
            }
            if attune_core::hex::encode(&hasher.finalize()) == sha256 {
                writer.finish().await.map_err(io_error)?;
                true
            } else {
                writer.abort().await.map_err(io_error)?;
                false
            }
        };
        // The blob is written (or the bytes are wrong): the pieces are no longer needed.
        for piece in chain {
            match self.store.delete(&piece.path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) if matched => {
                    // The blob is whole; a leftover piece only costs space.
                    tracing::warn!(upload = %sha256, %error, "cannot delete an upload piece");
                }
                Err(error) => return Err(io_error(error).into()),
            }
        }
        if matched {
            Ok(BlobState::Complete)
        } else {
            Err(AppendError::HashMismatch)
        }
    }

    async fn get(&self, path: &Path) -> io::Result<Bytes> {
        self.store
            .get(path)
            .await
            .map_err(io_error)?
            .bytes()
            .await
            .map_err(io_error)
    }

    /// The bytes of a complete blob, or `None` if there is no complete blob of that name.
    pub async fn read(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        match self.store.get(&self.blob_key(sha256)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(io_error)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(io_error(error)),
        }
    }
}

/// `s3://bucket/prefix` → (bucket, prefix).
fn parse_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?} names no bucket (s3://bucket/prefix)"));
    }
    Ok((bucket, prefix))
}

fn io_error(error: object_store::Error) -> io::Error {
    match error {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, error),
        error => io::Error::other(error),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn blob_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_url("s3://study/attune"), Ok(("study", "attune")));
        assert_eq!(parse_url("s3://study/a/b/"), Ok(("study", "a/b/")));
        assert_eq!(parse_url("s3://study"), Ok(("study", "")));
        assert!(parse_url("s3:///x").is_err());
        assert!(parse_url("https://study/x").is_err());
    }
}
