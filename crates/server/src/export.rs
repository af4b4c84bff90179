//! `attune-server export`: decrypts every stored envelope with the study private key and writes
//! `records.csv` (one row per latest revision), `records.json` (every revision, and any kept
//! conflicts) and `manifest.json` (SHA-256 of each file). Participants with a withdrawal are
//! left out. Every export is logged in the database.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use attune_core::{Revision, StudyPrivateKey, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::{ControlKind, ExportLogEntry, Store, StoredEnvelope};

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
}

struct Opened {
    revision: Revision,
    participant_code: Option<String>,
}

fn open_all(
    stored: Vec<StoredEnvelope>,
    key: &StudyPrivateKey,
    withdrawn: &HashSet<String>,
    excluded: &mut usize,
) -> Result<Vec<Opened>> {
    let mut opened = Vec::new();
    for item in stored {
        let envelope = item.envelope;
        if envelope
            .participant_code
            .as_ref()
            .is_some_and(|code| withdrawn.contains(code))
        {
            *excluded += 1;
            continue;
        }
        let revision = envelope.open(key).with_context(|| {
            format!(
                "cannot open record {} revision {}",
                envelope.record_id, envelope.rev
            )
        })?;
        opened.push(Opened {
            revision,
            participant_code: envelope.participant_code,
        });
    }
    Ok(opened)
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
        "author": r.author,
        "participant": r.participant,
        "visit": r.visit,
        "protocol": r.protocol.as_ref().map(|p| json!({"id": p.id, "version": p.version})),
        "body": body_value(&r.body),
    })
}

fn csv_field(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Decrypts everything in `store` into `out` (created if missing) and logs the export as
/// done by `who` at `now`.
pub async fn export(
    store: &dyn Store,
    key: &StudyPrivateKey,
    out: &Path,
    who: &str,
    now: Timestamp,
) -> Result<ExportSummary> {
    let withdrawn: HashSet<String> = store
        .control_messages_after(0)
        .await?
        .into_iter()
        .map(|message| match message.kind {
            ControlKind::Withdrawal { participant_code } => participant_code,
        })
        .collect();
    let mut excluded = 0;
    let revisions = open_all(store.envelopes().await?, key, &withdrawn, &mut excluded)?;
    let conflicts = open_all(store.conflicts().await?, key, &withdrawn, &mut excluded)?;

    // Records in id order (UUIDv7: creation order), revisions in rev order.
    let mut records: BTreeMap<String, Vec<&Opened>> = BTreeMap::new();
    for opened in &revisions {
        records
            .entry(opened.revision.record_id.to_string())
            .or_default()
            .push(opened);
    }
    let mut csv = String::from("record_id,rev,kind,participant_code,time,body\n");
    let mut json_records = Vec::new();
    for (record_id, history) in &mut records {
        history.sort_by_key(|opened| opened.revision.rev);
        let Some(latest) = history.last() else {
            continue;
        };
        let r = &latest.revision;
        let body = String::from_utf8_lossy(&r.body);
        let code = latest.participant_code.as_deref().unwrap_or("");
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            csv_field(record_id),
            r.rev,
            csv_field(r.kind.as_str()),
            csv_field(code),
            r.time.as_millis(),
            csv_field(&body)
        ));
        let record_conflicts: Vec<Value> = conflicts
            .iter()
            .filter(|c| c.revision.record_id == r.record_id)
            .map(revision_json)
            .collect();
        json_records.push(json!({
            "record_id": record_id,
            "kind": r.kind,
            "participant_code": latest.participant_code,
            "revisions": history.iter().map(|opened| revision_json(opened)).collect::<Vec<_>>(),
            "conflicts": record_conflicts,
        }));
    }
    let json_text = serde_json::to_vec_pretty(&json!({ "records": json_records }))?;

    tokio::fs::create_dir_all(out)
        .await
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    for (name, bytes) in [
        ("records.csv", csv.into_bytes()),
        ("records.json", json_text),
    ] {
        let path = out.join(name);
        tokio::fs::write(&path, &bytes)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
        files.push(json!({ "name": name, "bytes": bytes.len(), "sha256": sha256_hex(&bytes) }));
    }
    let summary = ExportSummary {
        records: records.len(),
        revisions: revisions.len(),
        withdrawn_envelopes_excluded: excluded,
        conflicts: conflicts.len(),
    };
    let manifest = json!({
        "exported_at": now.as_millis(),
        "exported_by": who,
        "records": summary.records,
        "revisions": summary.revisions,
        "conflicts": summary.conflicts,
        "withdrawn_participants": withdrawn.len(),
        "withdrawn_envelopes_excluded": summary.withdrawn_envelopes_excluded,
        "files": files,
    });
    let manifest_path = out.join("manifest.json");
    tokio::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .await
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    store
        .log_export(&ExportLogEntry {
            who: who.to_owned(),
            at: now,
            what: format!(
                "{} records, {} revisions, {} conflicts to {} ({} withdrawn participants excluded)",
                summary.records,
                summary.revisions,
                summary.conflicts,
                out.display(),
                withdrawn.len()
            ),
        })
        .await?;
    Ok(summary)
}
