//! `attune-server export`: decrypts every stored envelope with the study private key and writes
//! `records.csv` (one row per latest revision), `records.json` (every revision, and any kept
//! conflicts) and `manifest.json` (SHA-256 of each file). Every export is logged in the
//! database.
//!
//! Withdrawn participants are left out by **id**: every revision (and conflict) whose
//! `participant` (inside the sealed revision) names a participant with a signed withdrawal.
//! Two participants may share a code (made on two tablets); only the one withdrawn goes. A
//! withdrawal recorded before withdrawals were signed names only a code: it still leaves out
//! every participant with that code (the conservative reading), unless a signed withdrawal
//! was recorded for that code since (`attune-server withdraw` resolves a code to one
//! participant); the manifest lists such code-only withdrawals under `legacy_withdrawals`.
//! Withdrawal requests made on tablets ([`crate::verify::withdrawal_requests`]) are listed
//! under `withdrawal_requests` with their status: `confirmed` (a signed withdrawal names the
//! participant, who is left out), `pending` (not confirmed yet: the participant is still in
//! the export, and `pending_withdrawal_requests` counts them) or `refused` (does not verify).
//!
//! Attachments (records of kind `attachment` whose body names a blob, a media type and the
//! content's SHA-256) are opened from the blob folder with the study key, checked against that
//! SHA-256 and written to `attachments/<participant code>-<participant id>/<record id>.<ext>`
//! (the id keeps apart two participants who share a code); the CSV's
//! `attachment` column and the JSON's `attachment` field give that path, and the manifest lists
//! each file with its hash. An attachment that cannot be exported (never uploaded, upload
//! incomplete, does not open, wrong hash) is listed under `attachment_problems` in the
//! manifest; the rest of the export goes ahead.
//!
//! Before anything is written, every revision is verified: its signature against the public
//! key of the device enrolled under its device id, its record's chain of parent hashes (a
//! missing or altered revision fails the chain from there), its record's owner (revision 1's
//! device, or another device of the same fieldworker) and that it opens with the study key.
//! What fails is listed under `problems` in the manifest (record, rev, reason) and left out of
//! records.csv and records.json; the export goes ahead with the rest. The CSV's `device`,
//! `fieldworker` and `verified` columns (and the JSON's fields of the same names) say which
//! device made the row's revision, whose it is, and whether every revision of the record
//! verified (`false`: later revisions were left out, see `problems`).
//!
//! The CSV's last column, `quote_not_agreed` (and the JSON's field of that name), is `true`
//! for an interview note flagged as a quote whose participant's latest consent, read against
//! the form it was given on, does not agree to direct quotes (a "no" to the form's `quotes`
//! item, or no consent known): that note must not be quoted.
//!
//! A child's drawing (an activity response whose answer holds the picture as base64 PNG) is
//! written to `drawings/<participant code>-<participant id>/<record id>.png`; the CSV row
//! names that file in its `attachment` column and in place of the base64.
//!
//! Beside these, the analysis files that [`attune_core::export::analysis_files`] makes from
//! the same latest revisions (tidy CSVs, codebook, README, R and SPSS loaders, the REFI-QDA
//! project, a Word document per interview, an ELAN file per recorded interview), listed in
//! the manifest's `files`. Every file and folder is created readable by its owner only.
//!
//! What goes in each file is laid out by core ([`attune_core::export::bundle`], the same
//! code the researcher console runs in the browser to build its zip); this reads the store
//! and the blob folder, and writes the files.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use attune_core::export::Format;
use attune_core::export::bundle::{self, Options, Upload, WantedAttachment};
use attune_core::review::Snapshot;
use attune_core::{StudyPrivateKey, Timestamp};

use crate::blobs::BlobStore;
use crate::store::{ExportLogEntry, Store};

/// What an export wrote.
pub use attune_core::export::bundle::Summary as ExportSummary;

/// Decrypts everything in `store` (attachments from `blobs`) into `out` (created if missing)
/// and logs the export as done by `who` at `now`.
///
/// Every revision is verified first ([`crate::verify`]: its signature against the device
/// enrolled under its id, its record's chain and owner) and must open with `key`; one that
/// fails is listed in the manifest's `problems` (record, rev, reason) and left out of
/// records.csv and records.json, with every later revision of its record. The rest of the
/// export goes ahead: one bad envelope never blocks the study's data.
pub async fn export(
    store: &dyn Store,
    blobs: &BlobStore,
    key: &StudyPrivateKey,
    out: &Path,
    who: &str,
    now: Timestamp,
    formats: &[Format],
) -> Result<ExportSummary> {
    let snapshot = Snapshot {
        devices: store.list_devices().await?,
        envelopes: store.envelopes().await?,
        conflicts: store.kept_conflicts().await?,
        withdrawals: store.withdrawals().await?,
        protocols: store
            .published_protocols()
            .await?
            .into_iter()
            .map(|p| p.protocol)
            .collect(),
        // Not applied to the export yet: conflict resolutions made in the console are read
        // there (docs/researcher.md says so).
        team_records: store.team_records().await?,
    };
    let prepared = bundle::prepare(&snapshot, key);
    let mut opened = HashMap::new();
    for wanted in prepared.attachments() {
        let uploads = uploads(store, blobs, &wanted).await;
        let plaintext = bundle::open_uploads(key, &wanted, uploads);
        opened.insert(wanted.record_id, plaintext);
    }
    create_private_dir(out).await?;
    // The REFI-QDA project and ELAN files link the recordings by this absolute path.
    let base_path = tokio::fs::canonicalize(out)
        .await
        .with_context(|| format!("cannot find {}", out.display()))?;
    let bundle = prepared.assemble(
        opened,
        &Options {
            exported_at: now,
            exported_by: who,
            base_path: &base_path.to_string_lossy(),
            formats,
        },
    )?;
    for file in &bundle.files {
        write_private(&out.join(&file.name), &file.bytes).await?;
    }
    let summary = bundle.summary;
    store
        .log_export(&ExportLogEntry {
            who: who.to_owned(),
            at: now,
            what: format!(
                "{} records, {} revisions, {} conflicts, {} attachments to {} ({} withdrawn \
                 participants excluded, {} revisions left out as unverified)",
                summary.records,
                summary.revisions,
                summary.conflicts,
                summary.attachments,
                out.display(),
                bundle.withdrawn_participants,
                summary.problems
            ),
        })
        .await?;
    Ok(summary)
}

/// Every upload of `wanted`'s blob, each read from the blob folder (or why it cannot be).
async fn uploads(
    store: &dyn Store,
    blobs: &BlobStore,
    wanted: &WantedAttachment,
) -> std::result::Result<Vec<Upload>, String> {
    let uploads = store
        .uploads_of_blob(&wanted.blob.to_string())
        .await
        .map_err(|error| format!("cannot look up its uploads: {error}"))?;
    let mut read = Vec::new();
    for upload in &uploads {
        let name = format!("upload {}", upload.sha256);
        let sealed = match blobs.read(&upload.sha256).await {
            Ok(Some(sealed)) => Ok(sealed),
            Ok(None) => Err(format!("{name} is incomplete")),
            Err(error) => Err(format!("{name} cannot be read: {error}")),
        };
        read.push(Upload { name, sealed });
    }
    Ok(read)
}

/// Creates `folder` and its parents, readable by the owner only (on Unix).
async fn create_private_dir(folder: &Path) -> Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(folder)
        .await
        .with_context(|| format!("cannot create {}", folder.display()))
}

/// Writes `bytes` to `path` (creating its folders), readable and writable by the owner only
/// (on Unix): an export holds the study's decrypted data.
async fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent).await?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A file left by an earlier export keeps its mode when opened: narrow it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .await
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .with_context(|| format!("cannot write {}", path.display()))
}
