//! Runs attune-core's sync engine with the fetch transport on the open profile.

use super::enrolment::Enrolment;
use super::runner::SyncSummary;
use crate::session::Session;

/// What one run did.
pub struct Report {
    /// The new pull cursor, once the purges it covers are durable.
    pub cursor: Option<i64>,
    /// How it ended, in words.
    pub summary: SyncSummary,
}

/// One sync of the open profile.
pub async fn run(
    _session: &Session,
    _enrolment: &Enrolment,
    _progress: impl Fn(usize, usize) + 'static,
) -> Result<Report, String> {
    Err("The sync engine is not in this build yet.".into())
}
