//! Runs attune-core's sync engine ([`Syncer`]) with the fetch transport on the open profile,
//! and says how it ended in words.

use attune_core::sync::{SyncError, SyncIdentity, SyncProgress, SyncReport, Syncer};

use super::enrolment::Enrolment;
use super::runner::{SyncSummary, load_state};
use super::transport::FetchTransport;
use crate::session::{Session, now};

/// What one run did.
pub struct Report {
    /// The pull cursor to save. The engine returns it once the purges it covers are
    /// durable, also from a run that stopped early.
    pub cursor: Option<i64>,
    /// How it ended, in words.
    pub summary: SyncSummary,
}

/// One sync of the open profile; `progress(done, total)` after each batch.
pub async fn run(
    session: &Session,
    enrolment: &Enrolment,
    progress: impl Fn(usize, usize) + 'static,
) -> Result<Report, String> {
    let cursor = load_state(session).await?.cursor;
    let device_key = enrolment.signing_key();
    let study_key = enrolment.study_key()?;
    let transport = FetchTransport::new(&enrolment.server, &enrolment.token);
    let identity = SyncIdentity {
        vault: &session.vault,
        device_key: &device_key,
        study_key: &study_key,
        device: session.device,
        author: session.profile.id,
    };
    let clock = now;
    let syncer = Syncer::new(&session.store, &transport, identity, &clock);
    let outcome = syncer
        .run(cursor, |p: SyncProgress| progress(p.done, p.total))
        .await;
    Ok(match outcome {
        Ok(report) => Report {
            cursor: Some(report.cursor),
            summary: summarise(&report, None),
        },
        Err(failure) => Report {
            cursor: Some(failure.report.cursor),
            summary: summarise(&failure.report, Some(&failure.error)),
        },
    })
}

/// The report in words for the fieldworker.
fn summarise(report: &SyncReport, error: Option<&SyncError>) -> SyncSummary {
    let mut words = Vec::new();
    let sent = report.acknowledged();
    if let Some(reason) = &report.revoked {
        words.push(format!(
            "Sync stopped: the study team revoked this tablet ({reason})."
        ));
    } else if let Some(error) = error {
        words.push(if error.is_retryable() {
            "The server could not be reached, so sync stopped. Nothing is lost: the rest is sent next time."
                .to_string()
        } else {
            format!("Sync stopped: {error}. Nothing is lost: it is tried again next time.")
        });
    }
    if sent > 0 {
        words.push(format!(
            "{sent} {} sent and confirmed by the server.",
            if sent == 1 { "record" } else { "records" }
        ));
    } else if report.revoked.is_none() && error.is_none() {
        words.push("Everything on this tablet is on the server.".into());
    }
    if report.attachments > 0 {
        words.push(format!(
            "{} {} (audio, drawings) on the server.",
            report.attachments,
            if report.attachments == 1 {
                "attachment"
            } else {
                "attachments"
            }
        ));
    }
    if report.conflicts > 0 {
        words.push(format!(
            "{} kept as conflicts for the research team to look at.",
            report.conflicts
        ));
    }
    if let Some(held) = report.held.first() {
        words.push(format!(
            "{} {} could not be sent yet: {}.",
            report.held.len(),
            if report.held.len() == 1 {
                "record"
            } else {
                "records"
            },
            held.reason
        ));
    }
    SyncSummary {
        at: now(),
        ok: error.is_none() && report.revoked.is_none() && report.held.is_empty(),
        words: words.join(" "),
        revoked: report.revoked.clone(),
        purged: report.purged.clone(),
        conflicts: report.conflicts,
    }
}
