//! The pieces of [`Prepared::assemble`](super::Prepared::assemble): the rows of
//! `records.csv` and `records.json`, the recordings and drawings as files, the manifest's
//! lists, and whether a quote may be quoted.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::attachment::sha256_hex;
use crate::consent::{self, ConsentOutcome, UnknownConsentForm};
use crate::fieldwork::{AttachmentBody, ConsentBody, InterviewNoteBody};
use crate::ids::ParticipantId;
use crate::protocol::Protocol;
use crate::record::{Kind, Revision};
use crate::review::open::{OpenedConflict, OpenedRevision};
use crate::review::verify::{Problem, WithdrawalRequest};
use crate::review::{StoredEnvelope, WithdrawalRecord};
use crate::sync::ConflictReason;
use crate::time::Timestamp;

use super::WantedAttachment;
use crate::export::{ExportFile, ExportRecord, path_segment};

type Opened = OpenedRevision;

/// JSON laid out as the export writes it (two-space indents).
pub(super) fn pretty(value: &Value) -> Vec<u8> {
    // A `Value` always serialises (its keys are strings).
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// The manifest's `legacy_withdrawals`: withdrawals from before signing, which named a code.
pub(super) fn legacy_withdrawals(withdrawals: &[WithdrawalRecord]) -> Vec<Value> {
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

/// The manifest's `withdrawal_requests`.
pub(super) fn requests_json(requests: &[WithdrawalRequest]) -> Vec<Value> {
    requests
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
        .collect()
}

/// The manifest's problems as a person reads them, verification first.
pub(super) fn problems_in_words(problems: &[Value], attachments: &[Value]) -> Vec<String> {
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or("").to_owned();
    let verification = problems.iter().map(|p| {
        format!(
            "{} {} rev {} ({}) was left out: {}",
            text(p, "what"),
            text(p, "record_id"),
            p["rev"],
            text(p, "kind"),
            text(p, "reason")
        )
    });
    let files = attachments.iter().map(|p| {
        let code = p["participant_code"].as_str().unwrap_or("no participant");
        format!(
            "The file of record {} ({code}) is not in the export: {}",
            text(p, "record_id"),
            text(p, "problem")
        )
    });
    verification.chain(files).collect()
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
pub(super) fn problem_json(stored: &StoredEnvelope, what: &str, problem: &Problem) -> Value {
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

/// `records.csv`, `records.json` (still to be written) and the records for the analysis files.
pub(super) struct RecordFiles {
    pub(super) csv: String,
    pub(super) json: Vec<u8>,
    pub(super) analysis_records: Vec<ExportRecord>,
}

/// One CSV row and one JSON record per record (its latest verified revision), the record's
/// recording or drawing laid out as a file on the way.
pub(super) fn record_files(
    records: &BTreeMap<String, Vec<&Opened>>,
    conflicts: &[OpenedConflict],
    failed_records: &mut BTreeMap<String, Vec<Value>>,
    quotes: &QuoteConsent,
    attachments: &mut Attachments,
) -> RecordFiles {
    let mut csv = String::from(
        "record_id,rev,kind,participant_code,time,body,attachment,device,fieldworker,verified,quote_not_agreed\n",
    );
    let mut json_records = Vec::new();
    let mut analysis_records = Vec::new();
    for (record_id, history) in records {
        let Some(latest) = history.last() else {
            continue;
        };
        let r = &latest.revision;
        let attachment = attachments
            .attachment(latest)
            .or_else(|| attachments.drawing(latest));
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
            .filter(|c| c.opened.revision.record_id == r.record_id)
            .map(|c| conflict_json(&c.opened, c.reason, c.detail.as_deref()))
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
        .filter(|c| !records.contains_key(&c.opened.revision.record_id.to_string()))
        .map(|c| {
            let mut value = conflict_json(&c.opened, c.reason, c.detail.as_deref());
            value["record_id"] = json!(c.opened.revision.record_id);
            value["kind"] = json!(c.opened.revision.kind);
            value["participant_code"] = json!(c.opened.participant_code);
            value
        })
        .collect();
    let json = pretty(&json!({
        "records": json_records,
        "conflicts_without_record": other_conflicts,
    }));
    RecordFiles {
        csv,
        json,
        analysis_records,
    }
}

/// The recording an attachment record needs, if its body reads and its device finished it.
pub(super) fn wanted(latest: &Opened) -> Option<WantedAttachment> {
    let r = &latest.revision;
    if r.kind != Kind::Attachment {
        return None;
    }
    let body: AttachmentBody = serde_json::from_slice(&r.body).ok()?;
    Some(WantedAttachment {
        record_id: r.record_id.to_string(),
        blob: body.blob,
        media_type: body.media_type,
        sha256: body.sha256?,
        participant_code: latest.participant_code.clone(),
    })
}

/// Each participant's latest consent, read against the form it was given on: whether an
/// interview note flagged as a quote comes from a participant who did not agree to direct
/// quotes ([`consent::quote_not_agreed`]), the export's `quote_not_agreed`.
pub(crate) struct QuoteConsent {
    pub(crate) latest:
        BTreeMap<ParticipantId, (Timestamp, Result<ConsentOutcome, UnknownConsentForm>)>,
}

impl QuoteConsent {
    /// From the latest revision of every consent record exported. A consent that kept no copy
    /// of its form is read against the built-in protocol and every version published.
    pub(crate) fn of(protocols: &[&Protocol], records: &BTreeMap<String, Vec<&Opened>>) -> Self {
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
    pub(crate) fn not_agreed(&self, r: &Revision) -> bool {
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

/// The recordings and drawings of an export as files, and those that could not be had.
pub(super) struct Attachments {
    /// The plaintext of each recording, by record id ([`super::open_uploads`]), taken as
    /// its file is laid out.
    opened: HashMap<String, Result<Vec<u8>, String>>,
    /// The manifest's `attachments`.
    pub(super) files: Vec<Value>,
    /// The manifest's `attachment_problems`.
    pub(super) problems: Vec<Value>,
    /// The files laid out.
    pub(super) written: Vec<ExportFile>,
}

impl Attachments {
    pub(super) fn new(opened: HashMap<String, Result<Vec<u8>, String>>) -> Self {
        Attachments {
            opened,
            files: Vec::new(),
            problems: Vec::new(),
            written: Vec::new(),
        }
    }

    /// The file of `latest`'s recording (if it is an attachment record whose content hash is
    /// known and whose plaintext was had): its path relative to the export folder. A problem
    /// with the upload is noted.
    pub(super) fn attachment(&mut self, latest: &Opened) -> Option<String> {
        let r = &latest.revision;
        if r.kind != Kind::Attachment {
            return None;
        }
        let body: AttachmentBody = match serde_json::from_slice(&r.body) {
            Ok(body) => body,
            Err(error) => {
                let problem = format!("the attachment body is malformed: {error}");
                self.problem(latest, None, problem);
                return None;
            }
        };
        let Some(content_sha256) = body.sha256.clone() else {
            let problem = "the device had not finished the attachment".into();
            self.problem(latest, Some(&body), problem);
            return None;
        };
        let plaintext = match self.opened.remove(&r.record_id.to_string()) {
            Some(Ok(plaintext)) => plaintext,
            Some(Err(problem)) => {
                self.problem(latest, Some(&body), problem);
                return None;
            }
            None => {
                self.problem(latest, Some(&body), "it was not fetched".into());
                return None;
            }
        };
        let relative = format!(
            "attachments/{}/{}.{}",
            folder(latest),
            r.record_id,
            extension(&body.media_type)
        );
        self.files.push(json!({
            "name": relative,
            "record_id": r.record_id,
            "participant_code": latest.participant_code,
            "media_type": body.media_type,
            "bytes": plaintext.len(),
            "sha256": content_sha256,
        }));
        self.written.push(ExportFile {
            name: relative.clone(),
            bytes: plaintext,
        });
        Some(relative)
    }

    /// The picture of a child's drawing (an activity response whose answer holds a base64
    /// PNG) as `drawings/<folder>/<record id>.png`; that path.
    pub(super) fn drawing(&mut self, latest: &Opened) -> Option<String> {
        let r = &latest.revision;
        if r.kind != Kind::ActivityResponse {
            return None;
        }
        let value = body_value(&r.body);
        let png = value
            .pointer("/answer/png")
            .and_then(Value::as_str)
            .filter(|png| !png.is_empty())?;
        let picture = match BASE64.decode(png) {
            Ok(bytes) if bytes.starts_with(PNG_SIGNATURE) => bytes,
            _ => {
                self.problem(latest, None, "the drawing's picture is not a PNG".into());
                return None;
            }
        };
        let relative = format!("drawings/{}/{}.png", folder(latest), r.record_id);
        self.files.push(json!({
            "name": relative,
            "record_id": r.record_id,
            "participant_code": latest.participant_code,
            "media_type": "image/png",
            "bytes": picture.len(),
            "sha256": sha256_hex(&picture),
        }));
        self.written.push(ExportFile {
            name: relative.clone(),
            bytes: picture,
        });
        Some(relative)
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

/// A file extension for a media type (parameters such as `;codecs=opus` ignored).
pub(crate) fn extension(media_type: &str) -> &'static str {
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
