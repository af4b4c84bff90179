//! Runs attune-core's sync engine ([`Syncer`]) with the fetch transport on the open profile,
//! and says how it ended in words.

use attune_core::codes::POOL_TARGET;
use attune_core::sync::{
    CodeSync, HoldReason, InstructionProblem, PullPosition, SyncError, SyncIdentity, SyncProgress,
    SyncReport, Syncer,
};

use super::enrolment::Enrolment;
use super::runner::{SyncSummary, load_state};
use super::transport::FetchTransport;
use crate::features::fieldwork::codes::SessionCodes;
use crate::protocol::UpdateOutcome;
use crate::session::{Session, now};

/// What one run did.
pub struct Report {
    /// Where reading study instructions stands, to save. The engine returns it once the
    /// purges it covers are durable, also from a run that stopped early.
    pub position: Option<PullPosition>,
    /// How it ended, in words.
    pub summary: SyncSummary,
}

/// One sync of the open profile; `progress(done, total)` after each batch.
pub async fn run(
    session: &Session,
    enrolment: &Enrolment,
    progress: impl Fn(usize, usize) + 'static,
) -> Result<Report, String> {
    let state = load_state(session).await?;
    let position = PullPosition {
        cursor: state.cursor,
        last_seq: state.last_seq,
    };
    let device_key = enrolment.signing_key();
    let study_key = enrolment.study_key()?;
    let study_signing_key = enrolment.pinned_signing_key()?;
    let transport = FetchTransport::new(&enrolment.server, &enrolment.token);
    let identity = SyncIdentity {
        vault: &session.vault,
        device_key: &device_key,
        study_key: &study_key,
        study_signing_key: &study_signing_key,
        device: session.device,
        author: session.profile.id,
    };
    let clock = now;
    let syncer = Syncer::new(&session.store, &transport, identity, &clock);
    // Codes for every group of the protocol in use; participants waiting with provisional
    // labels are confirmed before anything is sent.
    let keeper = SessionCodes::new(session);
    let codes = CodeSync {
        keeper: &keeper,
        prefixes: crate::protocol::current()
            .groups
            .iter()
            .filter_map(|g| g.code_prefix.chars().next())
            .collect(),
        target: POOL_TARGET,
    };
    let outcome = syncer
        .run_with_codes(position, &codes, |p: SyncProgress| {
            progress(p.done, p.total)
        })
        .await;
    let (report, error) = match outcome {
        Ok(report) => (report, None),
        Err(failure) => (*failure.report, Some(failure.error)),
    };
    let mut summary = summarise(&report, error.as_ref());
    // Kept durably before the position that covers them is saved; if that fails, the
    // position is not saved and the updates come again next time.
    let position = match crate::protocol::apply_updates(session, &report.protocol_updates).await {
        Ok(outcomes) => {
            summary.protocol = protocol_words(&outcomes);
            Some(report.position)
        }
        Err(message) => {
            summary.ok = false;
            summary.protocol = Some(format!(
                "A study protocol update could not be kept ({message}); it is received again next time."
            ));
            None
        }
    };
    Ok(Report { position, summary })
}

/// A study instruction that was not applied, in words for the fieldworker.
fn instruction_words(problem: &InstructionProblem) -> String {
    match problem {
        InstructionProblem::NotSigned { seq, .. } => format!(
            "A study instruction (number {seq}) was refused: it is not signed by your study \
             team's key, so this tablet did not apply it, and the instructions after it wait. \
             Tell your study admin: the server may have been tampered with."
        ),
        InstructionProblem::Missing { expected, .. } => format!(
            "A study instruction is missing (number {expected} did not arrive): the \
             instructions after it wait until it does. If this stays, tell your study admin."
        ),
        InstructionProblem::Replayed { seq, .. } => format!(
            "A study instruction (number {seq}) came again and was ignored: this tablet \
             applied it before."
        ),
        InstructionProblem::UnsignedRevocation { .. } => {
            "The server refuses this tablet as revoked, but your study team did not sign a \
             revocation, so sync stopped and this tablet is not treated as revoked. Your work \
             is still on this tablet. Tell your study admin."
                .into()
        }
        other => format!("A study instruction was not applied: {other}."),
    }
}

/// The protocol updates of a run, in words: the version now in use, and what was ignored.
fn protocol_words(outcomes: &[UpdateOutcome]) -> Option<String> {
    let mut words = Vec::new();
    if let Some(version) = outcomes.iter().rev().find_map(|outcome| match outcome {
        UpdateOutcome::Applied(version) => Some(*version),
        UpdateOutcome::Ignored(_) => None,
    }) {
        words.push(format!(
            "Study protocol updated to version {version}. Visits opened from now on use it; \
             records already made keep their version."
        ));
    }
    for outcome in outcomes {
        if let UpdateOutcome::Ignored(reason) = outcome {
            words.push(format!("A study protocol update was ignored: {reason}."));
        }
    }
    (!words.is_empty()).then(|| words.join(" "))
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
    } else if report.revoked.is_none() && error.is_none() && report.held.is_empty() {
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
            "{} kept as conflicts for the research team to look at{}.",
            report.conflicts,
            report
                .conflicts_by_reason()
                .map(|listed| format!(" ({listed})"))
                .unwrap_or_default()
        ));
    }
    if report.unknown_message.is_some() {
        words.push(
            "The server sent a message this version of Attune cannot read: tap \"Update ready\" when it appears (or reopen Attune with signal) to get the new version."
                .into(),
        );
    }
    // Records of participants with provisional codes are said apart: they are not a fault.
    let (provisional, other): (Vec<_>, Vec<_>) = report
        .held
        .iter()
        .partition(|h| h.reason == HoldReason::ProvisionalCode);
    if let Some(held) = other.first() {
        words.push(format!(
            "{} {} could not be sent yet: {}.",
            other.len(),
            if other.len() == 1 {
                "record"
            } else {
                "records"
            },
            held.reason
        ));
    }
    if !provisional.is_empty() {
        words.push(format!(
            "{} {} of participants with provisional codes stay on this tablet until the server reserves codes for it.",
            provisional.len(),
            if provisional.len() == 1 { "record" } else { "records" },
        ));
    }
    if let Some(error) = &report.codes_error {
        words.push(format!(
            "The server could not reserve participant codes ({error}): new participants get provisional codes until it can."
        ));
    }
    // A replay is harmless (ignored); a refused or missing instruction, or an unsigned
    // revocation, needs the study admin.
    let instructions_ok = report
        .instruction_problems
        .iter()
        .all(|problem| matches!(problem, InstructionProblem::Replayed { .. }));
    SyncSummary {
        at: now(),
        ok: error.is_none()
            && report.revoked.is_none()
            && report.held.is_empty()
            && report.unknown_message.is_none()
            && instructions_ok
            && report.codes_error.is_none(),
        instructions: report
            .instruction_problems
            .iter()
            .map(instruction_words)
            .collect(),
        words: words.join(" "),
        revoked: report.revoked.clone(),
        purged: report.purged.clone(),
        conflicts: report.conflicts,
        protocol: None,
        confirmed: report
            .confirmed
            .iter()
            .map(|c| format!("{} is now {}", c.provisional, c.code))
            .collect(),
    }
}
