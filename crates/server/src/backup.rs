//! `attune-server backup` and `restore`: one tar file with a consistent copy of the SQLite
//! database and every complete attachment, made while the server keeps serving.
//!
//! ```text
//! attune-backup.json          what the file holds (format, when, counts, the database's SHA-256)
//! attune.db                   the database, copied with `VACUUM INTO` (one consistent moment)
//! blobs/<2 hex>/<sha256>      each complete attachment, still sealed to the study key
//! ```
//!
//! The database is copied first, the attachments after: an attachment is renamed into
//! `blobs/` only once whole, and never changes or goes away, so every attachment the copied
//! database can know of is in the file. Uploads still arriving (`uploads/*.part`) are left
//! out: after a restore the server holds none of their bytes, and each tablet starts that
//! upload again from the beginning, as after any interrupted upload.
//!
//! A restore unpacks into an empty data directory only, accepts nothing but the entries
//! above (no other path can be written), checks every attachment's SHA-256 against its name
//! and the database's against the manifest, and runs SQLite's integrity check before moving
//! anything into place; a file that fails leaves the directory as it was.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use attune_core::attachment::is_sha256_hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::store::DATABASE_FILE;

/// The manifest's name inside the backup file.
pub const MANIFEST: &str = "attune-backup.json";

/// The backup file format this version writes and reads.
const FORMAT: u32 = 1;

/// What a backup file holds (`attune-backup.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    /// The backup file format (1).
    pub format: u32,
    /// The attune-server version that made it.
    pub server_version: String,
    /// When it was made (UTC, RFC 3339).
    pub created_at: String,
    /// The database copy's SHA-256, hex.
    pub database_sha256: String,
    /// The database copy's size in bytes.
    pub database_bytes: u64,
    /// How many attachments it holds.
    pub attachments: u64,
    /// Their total size in bytes.
    pub attachment_bytes: u64,
}

/// Writes a backup of the SQLite data directory `data_dir` to the new file `out`.
///
/// # Errors
/// `out` exists, the database cannot be copied, or a file cannot be read or written; a
/// failed backup leaves no file at `out`.
pub async fn backup(data_dir: &Path, out: &Path) -> anyhow::Result<BackupManifest> {
    let database = data_dir.join(DATABASE_FILE);
    if !database.is_file() {
        bail!(
            "{} holds no study database ({DATABASE_FILE}): give the server's --data-dir",
            data_dir.display()
        );
    }
    if out.exists() {
        bail!(
            "{} already exists: give a new file name (a backup never overwrites one)",
            out.display()
        );
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".attune-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let copy = staging.path().join(DATABASE_FILE);
    snapshot_database(&database, &copy).await?;
    let data_dir = data_dir.to_owned();
    let out = out.to_owned();
    let partial = staging.path().join("backup.tar");
    tokio::task::spawn_blocking(move || {
        let manifest = write_archive(&data_dir, &copy, &partial)?;
        // Renamed into place only when whole and on disk.
        fs::rename(&partial, &out).with_context(|| format!("cannot write {}", out.display()))?;
        Ok(manifest)
    })
    .await
    .context("the backup task failed")?
}

/// `VACUUM INTO`: a copy of the database as of one moment, while others keep writing.
async fn snapshot_database(database: &Path, copy: &Path) -> anyhow::Result<()> {
    let mut connection = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| anyhow!("{e}"))?
        .filename(database)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open {}", database.display()))?;
    let target = copy
        .to_str()
        .ok_or_else(|| anyhow!("the backup's folder name is not UTF-8"))?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut connection)
        .await
        .context("cannot copy the database")?;
    connection.close().await.ok();
    Ok(())
}

fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((attune_core::hex::encode(&hasher.finalize()), total))
}

/// Every complete attachment under `data_dir/blobs`, as (path inside the backup, file).
fn attachments(data_dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let root = data_dir.join("blobs");
    let mut found = Vec::new();
    let Ok(shards) = fs::read_dir(&root) else {
        return Ok(found);
    };
    for shard in shards {
        let shard = shard?;
        let name = shard.file_name().to_string_lossy().into_owned();
        if !shard.file_type()?.is_dir() || name.len() != 2 {
            continue;
        }
        for blob in fs::read_dir(shard.path())? {
            let blob = blob?;
            let sha = blob.file_name().to_string_lossy().into_owned();
            if blob.file_type()?.is_file() && is_sha256_hex(&sha) && sha.starts_with(&name) {
                found.push((format!("blobs/{name}/{sha}"), blob.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn write_archive(data_dir: &Path, copy: &Path, partial: &Path) -> anyhow::Result<BackupManifest> {
    let (database_sha256, database_bytes) = sha256_file(copy)?;
    let blobs = attachments(data_dir)?;
    let mut attachment_bytes = 0;
    for (_, path) in &blobs {
        attachment_bytes += fs::metadata(path)?.len();
    }
    let manifest = BackupManifest {
        format: FORMAT,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: crate::api::now().to_rfc3339(),
        database_sha256,
        database_bytes,
        attachments: blobs.len() as u64,
        attachment_bytes,
    };
    let file = File::create(partial)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.mode(tar::HeaderMode::Deterministic);
    let json = serde_json::to_vec_pretty(&manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    tar.append_path_with_name(copy, DATABASE_FILE)?;
    for (name, path) in &blobs {
        tar.append_path_with_name(path, name)?;
    }
    let mut writer = tar.into_inner()?;
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(manifest)
}

/// Restores the backup file `from` into the empty (or missing) data directory `data_dir`.
///
/// # Errors
/// `data_dir` already holds a study, or the file is not a whole, unaltered backup; nothing
/// is left in `data_dir` then.
pub async fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<BackupManifest> {
    if data_dir.join(DATABASE_FILE).exists() || data_dir.join("blobs").exists() {
        bail!(
            "{} already holds a study: restore into a new, empty directory (a restore never \
             replaces data)",
            data_dir.display()
        );
    }
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".attune-restore-")
        .tempdir_in(data_dir)
        .with_context(|| format!("cannot write in {}", data_dir.display()))?;
    let (from_path, staged) = (from.to_owned(), staging.path().to_owned());
    let manifest = tokio::task::spawn_blocking(move || unpack(&from_path, &staged))
        .await
        .context("the restore task failed")??;
    integrity_check(&staging.path().join(DATABASE_FILE)).await?;
    fs::rename(
        staging.path().join(DATABASE_FILE),
        data_dir.join(DATABASE_FILE),
    )?;
    if staging.path().join("blobs").exists() {
        fs::rename(staging.path().join("blobs"), data_dir.join("blobs"))?;
    }
    Ok(manifest)
}

/// Where an entry of a backup may go, or why it is refused.
fn entry_place(name: &str) -> Option<&str> {
    if name == MANIFEST || name == DATABASE_FILE {
        return Some(name);
    }
    let rest = name.strip_prefix("blobs/")?;
    let (shard, sha) = rest.split_once('/')?;
    (shard.len() == 2 && is_sha256_hex(sha) && sha.starts_with(shard)).then_some(name)
}

fn unpack(from: &Path, staged: &Path) -> anyhow::Result<BackupManifest> {
    let not_backup = || {
        anyhow!(
            "{} is not an Attune backup file (attune-server backup makes them)",
            from.display()
        )
    };
    let file = File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut manifest = None;
    let mut attachments = 0u64;
    for entry in archive.entries().map_err(|_| not_backup())? {
        let mut entry = entry.map_err(|_| not_backup())?;
        let name = entry
            .path()
            .map_err(|_| not_backup())?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let place = entry_place(&name).ok_or_else(|| {
            anyhow!(
                "{} holds {name:?}, which no Attune backup holds: nothing was restored",
                from.display()
            )
        })?;
        if place == MANIFEST {
            let mut json = Vec::new();
            entry.by_ref().take(1 << 20).read_to_end(&mut json)?;
            let read: BackupManifest = serde_json::from_slice(&json).map_err(|_| not_backup())?;
            if read.format != FORMAT {
                bail!(
                    "{} is a backup of format {}, which this attune-server ({}) cannot read",
                    from.display(),
                    read.format,
                    env!("CARGO_PKG_VERSION")
                );
            }
            manifest = Some(read);
            continue;
        }
        let target = staged.join(place);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = File::create(&target)?;
        io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        let (sha, _) = sha256_file(&target)?;
        if let Some(expected) = place.rsplit('/').next().filter(|_| place != DATABASE_FILE) {
            if sha != expected {
                bail!(
                    "the attachment {expected} in {} does not match its SHA-256: the file is \
                     damaged or was altered; nothing was restored",
                    from.display()
                );
            }
            attachments += 1;
        }
    }
    let manifest = manifest.ok_or_else(not_backup)?;
    let database = staged.join(DATABASE_FILE);
    let (sha, _) = sha256_file(&database).map_err(|_| not_backup())?;
    if sha != manifest.database_sha256 {
        bail!(
            "the database in {} does not match its SHA-256: the file is damaged or was \
             altered; nothing was restored",
            from.display()
        );
    }
    if attachments != manifest.attachments {
        bail!(
            "{} should hold {} attachments but holds {attachments}: it is incomplete; nothing \
             was restored",
            from.display(),
            manifest.attachments
        );
    }
    Ok(manifest)
}

async fn integrity_check(database: &Path) -> anyhow::Result<()> {
    let mut connection = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| anyhow!("{e}"))?
        .filename(database)
        .connect()
        .await
        .context("cannot open the restored database")?;
    let (result,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .context("cannot check the restored database")?;
    connection.close().await.ok();
    if result != "ok" {
        bail!(
            "the restored database fails SQLite's integrity check ({result}): nothing was restored"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::entry_place;

    #[test]
    fn only_the_backups_own_entries_are_accepted() {
        let sha = "ab".to_owned() + &"0".repeat(62);
        assert_eq!(entry_place("attune.db"), Some("attune.db"));
        assert_eq!(
            entry_place("attune-backup.json"),
            Some("attune-backup.json")
        );
        assert!(entry_place(&format!("blobs/ab/{sha}")).is_some());
        for bad in [
            format!("blobs/cd/{sha}"),
            format!("blobs/ab/../../{sha}"),
            "../attune.db".to_owned(),
            "/etc/passwd".to_owned(),
            "uploads/x.part".to_owned(),
            format!("blobs/ab/{sha}/x"),
        ] {
            assert_eq!(entry_place(&bad), None, "{bad}");
        }
    }
}
