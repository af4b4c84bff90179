//! The whole export, sans I/O: what the server holds ([`Snapshot`]) and the study key in, every
//! file of the export out, as `attune-server export` writes it to a folder and the researcher
//! console zips it in the browser. The same bytes either way (apart from when it was made, by
//! whom, and the folder it is in: [`Options`]).
//!
//! Two steps, because the recordings are fetched by the caller (the server reads its blob
//! folder, the console asks the server for each one):
//!
//! 1. [`prepare`] verifies and opens every revision ([`open_all`]) and says which
//!    recordings it needs ([`Prepared::attachments`]);
//! 2. the caller fetches each one's sealed uploads and opens them with [`open_uploads`]
//!    (decryption and the SHA-256 check are here too);
//! 3. [`Prepared::assemble`] lays out every file: the recordings and drawings,
//!    `records.csv`, `records.json`, the [`analysis_files`](super::analysis_files) and
//!    `manifest.json` (the SHA-256 of each file, and every problem met on the way).
//!
//! Every revision is verified first (its signature against the device enrolled under its id,
//! its record's chain and owner) and must open with the key; one that fails is listed in the
//! manifest's `problems` (record, rev, reason) and left out of records.csv and records.json,
//! with every later revision of its record. A recording that cannot be had is listed under
//! `attachment_problems`. The rest of the export goes ahead: one bad envelope or upload never
//! blocks the study's data. Withdrawn participants are left out by id (see
//! `attune-server export`'s documentation for the details of legacy, code-only withdrawals).

mod parts;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::attachment::sha256_hex;
use crate::envelope::StudyPrivateKey;
use crate::ids::BlobId;
use crate::open_attachment;
use crate::protocol::{Protocol, default_protocol};
use crate::review::Snapshot;
use crate::review::open::{Held, Opened, Withdrawn, open_all};
use crate::review::verify::{Devices, WithdrawalRequest, withdrawal_requests};

use super::{ExportError, ExportFile, ExportInput, Format};
use parts::{Attachments, QuoteConsent, RecordFiles};

/// What was exported, in numbers (the CLI prints them and logs the export with them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
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

/// A recording the export needs: an attachment record whose device finished it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedAttachment {
    /// The attachment record's id (the key of [`Prepared::assemble`]'s map).
    pub record_id: String,
    /// The blob holding the sealed recording.
    pub blob: BlobId,
    /// Its media type, e.g. `audio/webm;codecs=opus`.
    pub media_type: String,
    /// The SHA-256 of the plaintext, as the tablet recorded it.
    pub sha256: String,
    /// The participant code on the record's envelope, if any.
    pub participant_code: Option<String>,
}

/// One upload of a blob as the caller found it: a name for problems (e.g. `upload <sha256>`)
/// and its sealed bytes, or why they cannot be read (the whole sentence, with the name).
#[derive(Clone, Debug)]
pub struct Upload {
    /// How problems name it, e.g. `upload 3f2a…`.
    pub name: String,
    /// The sealed bytes, or what went wrong reading them.
    pub sealed: Result<Vec<u8>, String>,
}

/// The plaintext of `wanted` from the first of `uploads` that opens with `key` as that blob
/// and matches the record's SHA-256; otherwise every upload's problem, joined with `; `.
/// `uploads` is `Err` when the caller could not even list them (the problem, in words).
///
/// # Errors
/// The problem, in words, as the manifest's `attachment_problems` lists it.
pub fn open_uploads(
    key: &StudyPrivateKey,
    wanted: &WantedAttachment,
    uploads: Result<Vec<Upload>, String>,
) -> Result<Vec<u8>, String> {
    let uploads = uploads?;
    if uploads.is_empty() {
        return Err("never uploaded".into());
    }
    let mut problems = Vec::new();
    for upload in uploads {
        let name = &upload.name;
        let sealed = match upload.sealed {
            Ok(sealed) => sealed,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        match open_attachment(&sealed, key) {
            Ok((blob, plaintext)) if blob == wanted.blob => {
                if sha256_hex(&plaintext) == wanted.sha256 {
                    return Ok(plaintext);
                }
                problems.push(format!("{name} does not match the record's SHA-256"));
            }
            Ok(_) => problems.push(format!("{name} is another blob")),
            Err(error) => problems.push(format!("{name}: {error}")),
        }
    }
    Err(problems.join("; "))
}

/// What only the caller knows: when, by whom, where, and which analysis files.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// When the export was made.
    pub exported_at: crate::time::Timestamp,
    /// Who made it (the manifest's `exported_by`).
    pub exported_by: &'a str,
    /// The export folder as an absolute path, for the REFI-QDA project and ELAN's media
    /// links; empty when it is not known (a zip unpacked anywhere): the relative links hold.
    pub base_path: &'a str,
    /// Which analysis files to make ([`Format::ALL`] for every one).
    pub formats: &'a [Format],
}

/// The export, every file laid out.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// Every file, `manifest.json` last: recordings and drawings, `records.csv`,
    /// `records.json`, the analysis files, the manifest.
    pub files: Vec<ExportFile>,
    /// The numbers.
    pub summary: Summary,
    /// Every problem of the manifest (`problems` and `attachment_problems`), in words.
    pub problems: Vec<String>,
    /// Withdrawn participants left out.
    pub withdrawn_participants: usize,
}

/// Everything opened, before the recordings are fetched ([`prepare`]).
#[derive(Debug)]
pub struct Prepared {
    opened: Opened,
    withdrawn: Withdrawn,
    snapshot_withdrawals: Vec<crate::review::WithdrawalRecord>,
    requests: Vec<WithdrawalRequest>,
    protocols: Vec<Protocol>,
}

/// Verifies and opens `snapshot` with `key` (step 1).
pub fn prepare(snapshot: &Snapshot, key: &StudyPrivateKey) -> Prepared {
    let withdrawn = Withdrawn::of(&snapshot.withdrawals);
    let devices = Devices::new(&snapshot.devices);
    let mut participants = snapshot.envelopes.clone();
    participants.extend(snapshot.conflicts.iter().map(|c| c.stored.clone()));
    let requests = withdrawal_requests(
        &snapshot.envelopes,
        &participants,
        &devices,
        &snapshot.withdrawals,
    );
    let opened = open_all(
        &snapshot.envelopes,
        &snapshot.conflicts,
        &devices,
        &withdrawn,
        key,
    );
    let protocols = std::iter::once(default_protocol().clone())
        .chain(
            snapshot
                .protocols
                .iter()
                .filter_map(|json| Protocol::parse(json).ok()),
        )
        .collect();
    Prepared {
        opened,
        withdrawn,
        snapshot_withdrawals: snapshot.withdrawals.clone(),
        requests,
        protocols,
    }
}

impl Prepared {
    /// What was opened.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// The recordings to fetch and open (step 2), in record order.
    pub fn attachments(&self) -> Vec<WantedAttachment> {
        self.opened
            .histories()
            .values()
            .filter_map(|history| parts::wanted(history.last()?))
            .collect()
    }

    /// Every file of the export (step 3), with `opened` the result of [`open_uploads`] for
    /// each of [`Prepared::attachments`], by record id (one missing is listed as a problem).
    ///
    /// # Errors
    /// [`ExportError`] when no protocol is known or a zip would exceed the zip format.
    pub fn assemble(
        &self,
        opened: HashMap<String, Result<Vec<u8>, String>>,
        options: &Options<'_>,
    ) -> Result<Bundle, ExportError> {
        let records = self.opened.histories();
        let protocols: Vec<&Protocol> = self.protocols.iter().collect();
        let quotes = QuoteConsent::of(&protocols, &records);
        let mut attachments = Attachments::new(opened);
        let mut problems = Vec::new();
        let mut failed_records: std::collections::BTreeMap<String, Vec<Value>> =
            std::collections::BTreeMap::new();
        for failed in &self.opened.failed {
            let listed = parts::problem_json(&failed.stored, failed.held.as_str(), &failed.problem);
            if failed.held == Held::Revision {
                failed_records
                    .entry(failed.stored.envelope.record_id.to_string())
                    .or_default()
                    .push(listed.clone());
            }
            problems.push(listed);
        }
        let RecordFiles {
            csv,
            json,
            analysis_records,
        } = parts::record_files(
            &records,
            &self.opened.conflicts,
            &mut failed_records,
            &quotes,
            &mut attachments,
        );
        let mut files = std::mem::take(&mut attachments.written);
        let mut listed = Vec::new();
        for (name, bytes) in [("records.csv", csv.into_bytes()), ("records.json", json)] {
            listed
                .push(json!({ "name": name, "bytes": bytes.len(), "sha256": sha256_hex(&bytes) }));
            files.push(ExportFile {
                name: name.to_owned(),
                bytes,
            });
        }
        let analysis = super::analysis_files(&ExportInput {
            records: &analysis_records,
            protocols: &protocols,
            exported_at: options.exported_at,
            base_path: options.base_path,
            withdrawn_participants: self.withdrawn.count(),
            formats: options.formats,
        })?;
        for file in &analysis {
            listed.push(json!({
                "name": file.name,
                "bytes": file.bytes.len(),
                "sha256": sha256_hex(&file.bytes),
            }));
        }
        let count = |prefix: &str| {
            analysis
                .iter()
                .filter(|f| f.name.starts_with(prefix))
                .count()
        };
        let summary = Summary {
            records: records.len(),
            revisions: self.opened.revisions.len(),
            withdrawn_envelopes_excluded: self.opened.withdrawn_excluded,
            conflicts: self.opened.conflicts.len(),
            attachments: attachments.files.len(),
            attachment_problems: attachments.problems.len(),
            problems: problems.len(),
            pending_withdrawal_requests: self.requests.iter().filter(|r| r.is_pending()).count(),
            interview_documents: count("interviews/"),
            elan_files: count("elan/"),
        };
        files.extend(analysis);
        let in_words = parts::problems_in_words(&problems, &attachments.problems);
        let manifest = self.manifest(options, &summary, listed, &attachments, problems);
        files.push(ExportFile {
            name: "manifest.json".into(),
            bytes: parts::pretty(&manifest),
        });
        Ok(Bundle {
            files,
            summary,
            problems: in_words,
            withdrawn_participants: self.withdrawn.count(),
        })
    }

    /// `manifest.json`: the numbers, withdrawals, every file with its hash, and every problem.
    fn manifest(
        &self,
        options: &Options<'_>,
        summary: &Summary,
        listed: Vec<Value>,
        attachments: &Attachments,
        problems: Vec<Value>,
    ) -> Value {
        json!({
            "exported_at": options.exported_at.as_millis(),
            "exported_by": options.exported_by,
            "records": summary.records,
            "revisions": summary.revisions,
            "conflicts": summary.conflicts,
            "withdrawn_participants": self.withdrawn.count(),
            "withdrawn_envelopes_excluded": summary.withdrawn_envelopes_excluded,
            "legacy_withdrawals": parts::legacy_withdrawals(&self.snapshot_withdrawals),
            "withdrawal_requests": parts::requests_json(&self.requests),
            "pending_withdrawal_requests": summary.pending_withdrawal_requests,
            "files": listed,
            "attachments": attachments.files,
            "attachment_problems": attachments.problems,
            "problems": problems,
        })
    }
}
