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

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use attune_core::attachment::sha256_hex;
use attune_core::consent::{self, ConsentOutcome, UnknownConsentForm};
use attune_core::export::{ExportInput, ExportRecord, Format, path_segment};
use attune_core::fieldwork::{ConsentBody, InterviewNoteBody};
use attune_core::protocol::{Protocol, default_protocol};
use attune_core::{
    AttachmentBody, Kind, ParticipantId, Revision, StudyPrivateKey, Timestamp, open_attachment,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::blobs::BlobFolder;
use crate::store::{ConflictReason, ExportLogEntry, Store, StoredEnvelope, WithdrawalRecord};
use crate::verify::{self, Devices, Problem};
use attune_core::review::open::{Held, OpenedRevision, Withdrawn, open_all};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records written (one CSV row each).
    pub records: usize,
    /// Revisions written to the JSON.
    pub revisions: usize,
    /// Envelopes left out because their participant withdrew.
    pub withdrawn_envelopes_excluded: usize,
    /// Conflicting revisions written beside the records in the JSON.
    pub conflicts: usize,
    /// Attachment files written.
    pub attachments: usize,
    /// Attachments that could not be written (listed in the manifest).
    pub attachment_problems: usize,
    /// Revisions and conflicts that failed verification: listed in the manifest's
    /// `problems`, left out of records.csv and records.json.
    pub problems: usize,
    /// Withdrawal requests from tablets the study team has not confirmed with a signed
    /// withdrawal: listed in the manifest's `withdrawal_requests` as `pending`; their
    /// participant is still in the export.
    pub pending_withdrawal_requests: usize,
    /// Word documents written, one per interview (`interviews/`).
    pub interview_documents: usize,
    /// ELAN files written, one per recorded interview (`elan/`).
    pub elan_files: usize,
}

type Opened = OpenedRevision;

/// The manifest's `legacy_withdrawals`: withdrawals from before signing, which named a code.
fn legacy_withdrawals(withdrawals: &[WithdrawalRecord]) -> Vec<Value> {
    let signed_codes: HashSet<&str> = withdrawals
        .iter()
        .filter(|w| w.participant_id.is_some())
        .map(|w| w.participant_code.as_str())
        .collect();
    withdrawals
        .iter()
        .filter(|w| w.participant_id.is_none())
        .map(|withdrawal| {
            let resolved = signed_codes.contains(withdrawal.participant_code.as_str());
            json!({
                "message_id": withdrawal.message_id,
                "participant_code": withdrawal.participant_code,
                "created_at": withdrawal.created_at.as_millis(),
                "applies_to": if resolved {
                    "the participant named by the signed withdrawal for this code"
                } else {
                    "every participant with this code"
                },
            })
        })
        .collect()
}

fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn revision_json(opened: &Opened) -> Value {
    let r = &opened.revision;
    json!({
        "rev": r.rev,
        "hash": r.hash,
        "parent_hash": r.parent_hash,
        "time": r.time.as_millis(),
        "device": r.device,
        "fieldworker": opened.fieldworker,
        "author": r.author,
        "participant": r.participant,
        "visit": r.visit,
        "protocol": r.protocol.as_ref().map(|p| json!({"id": p.id, "version": p.version})),
        "body": body_value(&r.body),
    })
}

/// A conflict as written: the revision, and why the server kept it apart.
fn conflict_json(opened: &Opened, reason: ConflictReason, detail: Option<&str>) -> Value {
    let mut value = revision_json(opened);
    value["reason"] = json!(reason.as_str());
    value["detail"] = json!(detail);
    value
}

/// A revision (or kept conflict) left out because it failed verification.
fn problem_json(stored: &StoredEnvelope, what: &str, problem: &Problem) -> Value {
    let e = &stored.envelope;
    json!({
        "record_id": e.record_id,
        "rev": e.rev,
        "hash": e.hash,
        "kind": e.kind,
        "participant_code": e.participant_code,
        "device_id": stored.device_id,
        "what": what,
        "problem": problem.code(),
        "reason": problem.to_string(),
    })
}

fn csv_field(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

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
    blobs: &BlobFolder,
    key: &StudyPrivateKey,
    out: &Path,
    who: &str,
    now: Timestamp,
    formats: &[Format],
) -> Result<ExportSummary> {
    let withdrawals = store.withdrawals().await?;
    let withdrawn = Withdrawn::of(&withdrawals);
    let devices = Devices::new(&store.list_devices().await?);
    let stored = store.envelopes().await?;
    let kept = store.kept_conflicts().await?;
    let withdrawal_requests = {
        let mut participants = stored.clone();
        participants.extend(store.conflicts().await?);
        verify::withdrawal_requests(&stored, &participants, &devices, &withdrawals)
    };
    let opened = open_all(&stored, &kept, &devices, &withdrawn, key);
    let excluded = opened.withdrawn_excluded;
    let mut failed_records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut problems: Vec<Value> = Vec::new();
    for failed in &opened.failed {
        let listed = problem_json(&failed.stored, failed.held.as_str(), &failed.problem);
        if failed.held == Held::Revision {
            failed_records
                .entry(failed.stored.envelope.record_id.to_string())
                .or_default()
                .push(listed.clone());
        }
        problems.push(listed);
    }
    let revisions = &opened.revisions;
    let conflicts: Vec<(&Opened, ConflictReason, Option<String>)> = opened
        .conflicts
        .iter()
        .map(|c| (&c.opened, c.reason, c.detail.clone()))
        .collect();
    let records = opened.histories();
    let published: Vec<Protocol> = store
        .published_protocols()
        .await?
        .iter()
        .filter_map(|p| Protocol::parse(&p.protocol).ok())
        .collect();
    let protocols: Vec<&Protocol> = std::iter::once(default_protocol())
        .chain(published.iter())
        .collect();
    let quotes = QuoteConsent::of(&protocols, &records);
    create_private_dir(out).await?;
    let mut csv = String::from(
        "record_id,rev,kind,participant_code,time,body,attachment,device,fieldworker,verified,quote_not_agreed\n",
    );
    let mut json_records = Vec::new();
    let mut analysis_records = Vec::new();
    let mut attachments = Attachments::default();
    for (record_id, history) in &records {
        let Some(latest) = history.last() else {
            continue;
        };
        let r = &latest.revision;
        let attachment = match attachments.export(store, blobs, key, out, latest).await? {
            Some(path) => Some(path),
            None => attachments.export_drawing(out, latest).await?,
        };
        // A drawing's picture is in its file: the CSV names the file instead of holding
        // the base64 (the JSON keeps the body as it was recorded).
        let body = match &attachment {
            Some(path) if r.kind == Kind::ActivityResponse => {
                let mut value = body_value(&r.body);
                if let Some(png) = value.pointer_mut("/answer/png") {
                    *png = Value::String(path.clone());
                }
                value.to_string()
            }
            _ => String::from_utf8_lossy(&r.body).into_owned(),
        };
        // Verified: every revision of the record verified. Otherwise this row is its last
        // revision that did, and the manifest lists the ones left out.
        let record_problems = failed_records.remove(record_id).unwrap_or_default();
        let verified = record_problems.is_empty();
        let code = latest.participant_code.as_deref().unwrap_or("");
        let quote_not_agreed = quotes.not_agreed(r);
        analysis_records.push(ExportRecord {
            revision: r.clone(),
            participant_code: latest.participant_code.clone(),
            device: latest.device.clone(),
            fieldworker: latest.fieldworker.clone(),
            verified,
            file: attachment.clone(),
        });
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(record_id),
            r.rev,
            csv_field(r.kind.as_str()),
            csv_field(code),
            r.time.as_millis(),
            csv_field(&body),
            csv_field(attachment.as_deref().unwrap_or("")),
            csv_field(&latest.device),
            csv_field(&latest.fieldworker),
            verified,
            quote_not_agreed,
        ));
        let record_conflicts: Vec<Value> = conflicts
            .iter()
            .filter(|(c, _, _)| c.revision.record_id == r.record_id)
            .map(|(c, reason, detail)| conflict_json(c, *reason, detail.as_deref()))
            .collect();
        json_records.push(json!({
            "record_id": record_id,
            "kind": r.kind,
            "participant_code": latest.participant_code,
            "device": latest.device,
            "fieldworker": latest.fieldworker,
            "verified": verified,
            "quote_not_agreed": quote_not_agreed,
            "revisions": history.iter().map(|opened| revision_json(opened)).collect::<Vec<_>>(),
            "conflicts": record_conflicts,
            "problems": record_problems,
            "attachment": attachment,
        }));
    }
    // Conflicts of records with no revision written (never stored, or failed from rev 1).
    let other_conflicts: Vec<Value> = conflicts
        .iter()
        .filter(|(c, _, _)| !records.contains_key(&c.revision.record_id.to_string()))
        .map(|(c, reason, detail)| {
            let mut value = conflict_json(c, *reason, detail.as_deref());
            value["record_id"] = json!(c.revision.record_id);
            value["kind"] = json!(c.revision.kind);
            value["participant_code"] = json!(c.participant_code);
            value
        })
        .collect();
    let json_text = serde_json::to_vec_pretty(&json!({
        "records": json_records,
        "conflicts_without_record": other_conflicts,
    }))?;

    let mut files = Vec::new();
    for (name, bytes) in [
        ("records.csv", csv.into_bytes()),
        ("records.json", json_text),
    ] {
        write_private(&out.join(name), &bytes).await?;
        files.push(json!({ "name": name, "bytes": bytes.len(), "sha256": sha256_hex(&bytes) }));
    }
    // The analysis files (tidy CSVs, REFI-QDA project, documents, ELAN), made by core from
    // the same latest revisions; their paths are relative to `out`, written as given.
    let base_path = tokio::fs::canonicalize(out)
        .await
        .with_context(|| format!("cannot find {}", out.display()))?;
    let analysis = attune_core::export::analysis_files(&ExportInput {
        records: &analysis_records,
        protocols: &protocols,
        exported_at: now,
        base_path: &base_path.to_string_lossy(),
        withdrawn_participants: withdrawn.count(),
        formats,
    })?;
    for file in &analysis {
        write_private(&out.join(&file.name), &file.bytes).await?;
        files.push(json!({
            "name": file.name,
            "bytes": file.bytes.len(),
            "sha256": sha256_hex(&file.bytes),
        }));
    }
    let summary = ExportSummary {
        records: records.len(),
        revisions: revisions.len(),
        withdrawn_envelopes_excluded: excluded,
        conflicts: conflicts.len(),
        attachments: attachments.files.len(),
        attachment_problems: attachments.problems.len(),
        problems: problems.len(),
        pending_withdrawal_requests: withdrawal_requests
            .iter()
            .filter(|r| r.is_pending())
            .count(),
        interview_documents: analysis
            .iter()
            .filter(|f| f.name.starts_with("interviews/"))
            .count(),
        elan_files: analysis
            .iter()
            .filter(|f| f.name.starts_with("elan/"))
            .count(),
    };
    let requests_json: Vec<Value> = withdrawal_requests
        .iter()
        .map(|r| {
            json!({
                "participant_id": r.participant_id.to_string(),
                "participant_code": r.participant_code,
                "record_id": r.record_id.to_string(),
                "device_id": r.device_id,
                "fieldworker": r.fieldworker,
                "requested_at": r.requested_at.as_millis(),
                "received_at": r.received_at.as_millis(),
                "status": r.status(),
                "confirmed_by_message": r.confirmed_by,
                "problem": r.problem,
            })
        })
        .collect();
    let manifest = json!({
        "exported_at": now.as_millis(),
        "exported_by": who,
        "records": summary.records,
        "revisions": summary.revisions,
        "conflicts": summary.conflicts,
        "withdrawn_participants": withdrawn.count(),
        "withdrawn_envelopes_excluded": summary.withdrawn_envelopes_excluded,
        "legacy_withdrawals": legacy_withdrawals(&withdrawals),
        "withdrawal_requests": requests_json,
        "pending_withdrawal_requests": summary.pending_withdrawal_requests,
        "files": files,
        "attachments": attachments.files,
        "attachment_problems": attachments.problems,
        "problems": problems,
    });
    let manifest_path = out.join("manifest.json");
    write_private(&manifest_path, &serde_json::to_vec_pretty(&manifest)?).await?;
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
                withdrawn.count(),
                summary.problems
            ),
        })
        .await?;
    Ok(summary)
}

/// Each participant's latest consent, read against the form it was given on: whether an
/// interview note flagged as a quote comes from a participant who did not agree to direct
/// quotes ([`attune_core::consent::quote_not_agreed`]), the export's `quote_not_agreed`.
struct QuoteConsent {
    latest: BTreeMap<ParticipantId, (Timestamp, Result<ConsentOutcome, UnknownConsentForm>)>,
}

impl QuoteConsent {
    /// From the latest revision of every consent record exported. A consent that kept no copy
    /// of its form is read against the built-in protocol and every version published.
    fn of(protocols: &[&Protocol], records: &BTreeMap<String, Vec<&Opened>>) -> Self {
        let mut latest = BTreeMap::new();
        for history in records.values() {
            let Some(r) = history
                .iter()
                .map(|opened| &opened.revision)
                .max_by_key(|r| r.rev)
            else {
                continue;
            };
            let Some(participant) = r.participant.filter(|_| r.kind == Kind::Consent) else {
                continue;
            };
            let Ok(body) = serde_json::from_slice::<ConsentBody>(&r.body) else {
                continue;
            };
            if latest
                .get(&participant)
                .is_some_and(|(time, _)| *time >= r.time)
            {
                continue;
            }
            let outcome = consent::evaluate_given(&body, protocols.iter().copied());
            latest.insert(participant, (r.time, outcome));
        }
        QuoteConsent { latest }
    }

    /// Whether `r` is an interview note flagged as a quote whose participant's latest consent
    /// does not allow quotes.
    fn not_agreed(&self, r: &Revision) -> bool {
        if r.kind != Kind::InterviewNote {
            return false;
        }
        let Ok(note) = serde_json::from_slice::<InterviewNoteBody>(&r.body) else {
            return false;
        };
        let consent = r
            .participant
            .and_then(|p| self.latest.get(&p))
            .map(|(_, outcome)| outcome);
        consent::quote_not_agreed(&note, consent)
    }
}

/// The attachment files of an export, and the attachments that could not be written.
#[derive(Default)]
struct Attachments {
    files: Vec<Value>,
    problems: Vec<Value>,
}

impl Attachments {
    /// Writes the attachment of `latest` (if it is an attachment record whose content hash is
    /// known) and returns its path relative to the export folder. A problem with the upload is
    /// noted, not raised; only a failure to write into the export folder is an error.
    async fn export(
        &mut self,
        store: &dyn Store,
        blobs: &BlobFolder,
        key: &StudyPrivateKey,
        out: &Path,
        latest: &Opened,
    ) -> Result<Option<String>> {
        let r = &latest.revision;
        if r.kind != Kind::Attachment {
            return Ok(None);
        }
        let body: AttachmentBody = match serde_json::from_slice(&r.body) {
            Ok(body) => body,
            Err(error) => {
                self.problem(
                    latest,
                    None,
                    format!("the attachment body is malformed: {error}"),
                );
                return Ok(None);
            }
        };
        let Some(content_sha256) = body.sha256.clone() else {
            self.problem(
                latest,
                Some(&body),
                "the device had not finished the attachment".into(),
            );
            return Ok(None);
        };
        let plaintext = match find_plaintext(store, blobs, key, &body, &content_sha256).await {
            Ok(plaintext) => plaintext,
            Err(problem) => {
                self.problem(latest, Some(&body), problem);
                return Ok(None);
            }
        };
        let relative = format!(
            "attachments/{}/{}.{}",
            folder(latest),
            r.record_id,
            extension(&body.media_type)
        );
        write_file(out, &relative, &plaintext).await?;
        self.files.push(json!({
            "name": relative,
            "record_id": r.record_id,
            "participant_code": latest.participant_code,
            "media_type": body.media_type,
            "bytes": plaintext.len(),
            "sha256": content_sha256,
        }));
        Ok(Some(relative))
    }

    /// Writes the picture of a child's drawing (an activity response whose answer holds a
    /// base64 PNG) to `drawings/<folder>/<record id>.png` and returns that path.
    async fn export_drawing(&mut self, out: &Path, latest: &Opened) -> Result<Option<String>> {
        let r = &latest.revision;
        if r.kind != Kind::ActivityResponse {
            return Ok(None);
        }
        let value = body_value(&r.body);
        let Some(png) = value
            .pointer("/answer/png")
            .and_then(Value::as_str)
            .filter(|png| !png.is_empty())
        else {
            return Ok(None);
        };
        let picture = match BASE64.decode(png) {
            Ok(bytes) if bytes.starts_with(PNG_SIGNATURE) => bytes,
            _ => {
                self.problem(latest, None, "the drawing's picture is not a PNG".into());
                return Ok(None);
            }
        };
        let relative = format!("drawings/{}/{}.png", folder(latest), r.record_id);
        write_file(out, &relative, &picture).await?;
        self.files.push(json!({
            "name": relative,
            "record_id": r.record_id,
            "participant_code": latest.participant_code,
            "media_type": "image/png",
            "bytes": picture.len(),
            "sha256": sha256_hex(&picture),
        }));
        Ok(Some(relative))
    }

    fn problem(&mut self, latest: &Opened, body: Option<&AttachmentBody>, problem: String) {
        self.problems.push(json!({
            "record_id": latest.revision.record_id,
            "participant_code": latest.participant_code,
            "blob_id": body.map(|body| body.blob),
            "problem": problem,
        }));
    }
}

/// The checked plaintext of an attachment, or why it cannot be had.
async fn find_plaintext(
    store: &dyn Store,
    blobs: &BlobFolder,
    key: &StudyPrivateKey,
    body: &AttachmentBody,
    content_sha256: &str,
) -> std::result::Result<Vec<u8>, String> {
    let uploads = store
        .uploads_of_blob(&body.blob.to_string())
        .await
        .map_err(|error| format!("cannot look up its uploads: {error}"))?;
    if uploads.is_empty() {
        return Err("never uploaded".into());
    }
    let mut problems = Vec::new();
    for upload in &uploads {
        let sealed = match blobs.read(&upload.sha256).await {
            Ok(Some(sealed)) => sealed,
            Ok(None) => {
                problems.push(format!("upload {} is incomplete", upload.sha256));
                continue;
            }
            Err(error) => {
                problems.push(format!("upload {} cannot be read: {error}", upload.sha256));
                continue;
            }
        };
        match open_attachment(&sealed, key) {
            Ok((blob, plaintext)) if blob == body.blob => {
                if sha256_hex(&plaintext) == content_sha256 {
                    return Ok(plaintext);
                }
                problems.push(format!(
                    "upload {} does not match the record's SHA-256",
                    upload.sha256
                ));
            }
            Ok(_) => problems.push(format!("upload {} is another blob", upload.sha256)),
            Err(error) => problems.push(format!("upload {}: {error}", upload.sha256)),
        }
    }
    Err(problems.join("; "))
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The folder of a record's files, one safe path segment: its participant's code and id
/// (`C01-0190...`; the id keeps apart two participants who share a code), or
/// `no-participant`.
fn folder(latest: &Opened) -> String {
    match latest.revision.participant {
        Some(id) => format!(
            "{}-{id}",
            path_segment(latest.participant_code.as_deref().unwrap_or("unnamed"))
        ),
        None => "no-participant".into(),
    }
}

/// Writes `bytes` to `relative` under the export folder, creating its folders.
async fn write_file(out: &Path, relative: &str, bytes: &[u8]) -> Result<()> {
    write_private(&out.join(relative), bytes).await
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

/// A file extension for a media type (parameters such as `;codecs=opus` ignored).
fn extension(media_type: &str) -> &'static str {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "audio/webm" | "video/webm" => "webm",
        "audio/mp4" | "audio/x-m4a" => "m4a",
        "video/mp4" => "mp4",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" => "wav",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_is_marked_when_its_participant_did_not_agree_to_quotes() {
        use attune_core::consent::{ConsentAnswers, evaluate};
        use attune_core::{Authorship, DeviceId, Links, ProfileId, RecordId};
        let form = default_protocol().consent_form_for("carers").unwrap();
        let outcome = |quotes: bool| {
            let mut answers = ConsentAnswers::new();
            for item in &form.items {
                answers.set(item.id.clone(), item.id != "quotes" || quotes);
            }
            Ok(evaluate(form, &answers))
        };
        let (said_no, said_yes, unknown) = (
            ParticipantId::new(Timestamp(1)),
            ParticipantId::new(Timestamp(2)),
            ParticipantId::new(Timestamp(3)),
        );
        let quotes = QuoteConsent {
            latest: BTreeMap::from([
                (said_no, (Timestamp(5), outcome(false))),
                (said_yes, (Timestamp(5), outcome(true))),
            ]),
        };
        let by = Authorship {
            device: DeviceId::new(Timestamp(1)),
            author: ProfileId::new(Timestamp(1)),
            time: Timestamp(9),
        };
        let note = |participant, flags: &[&str]| {
            let body = json!({"guide_id": "guide-carers", "text": "said", "flags": flags,
                "updated": 1});
            Revision::first(
                RecordId::new(Timestamp(9)),
                Kind::InterviewNote,
                Links {
                    participant: Some(participant),
                    ..Links::default()
                },
                body.to_string().into_bytes(),
                by,
            )
        };
        assert!(quotes.not_agreed(&note(said_no, &["quote"])));
        assert!(!quotes.not_agreed(&note(said_no, &["follow_up"])));
        assert!(!quotes.not_agreed(&note(said_yes, &["quote"])));
        assert!(
            quotes.not_agreed(&note(unknown, &["quote"])),
            "no consent known"
        );
    }

    #[test]
    fn media_types_get_their_usual_extensions() {
        assert_eq!(extension("audio/webm;codecs=opus"), "webm");
        assert_eq!(extension("audio/mp4"), "m4a");
        assert_eq!(extension("image/png"), "png");
        assert_eq!(extension("application/x-unknown"), "bin");
    }

    #[test]
    fn participant_codes_cannot_leave_the_attachments_folder() {
        assert_eq!(path_segment("VIG-001"), "VIG-001");
        assert_eq!(path_segment("../etc"), "___etc");
        assert_eq!(path_segment(".."), "unnamed");
        assert_eq!(path_segment(""), "unnamed");
    }
}
