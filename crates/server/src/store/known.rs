//! What a push batch knows of the stored revisions it touches: see `checks.rs`.

/// What one push batch knows of the stored revisions it touches (`known_for` in
/// `checks.rs`): read at its start, kept up to date as it stores. Stored revisions are never
/// changed or deleted, so what it holds stays true for the transaction.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The records and revision numbers the first query asked for: for every pair of them,
    /// absence from `stored` means not stored.
    pub(crate) records: std::collections::BTreeSet<String>,
    pub(crate) revs: std::collections::BTreeSet<i64>,
    /// (record id, rev) to (hash, device id) of the revisions stored.
    pub(crate) stored: std::collections::HashMap<(String, i64), (String, String)>,
    /// The records with a gap conflict kept, before or during the batch: the only ones a
    /// newly stored revision can fill a gap of.
    pub(crate) gapped: std::collections::HashSet<String>,
    /// Whether new revisions are inserted together at the end of the batch (taken as stored
    /// as soon as they pass their checks) rather than one statement each.
    pub(crate) defer: bool,
    pub(crate) deferred: Vec<Deferred>,
}

/// A revision that passed its checks, to be inserted at the end of its batch.
#[derive(Debug)]
pub(crate) struct Deferred {
    pub(crate) record_id: String,
    pub(crate) rev: i64,
    pub(crate) hash: String,
    pub(crate) kind: &'static str,
    pub(crate) participant_code: Option<String>,
    pub(crate) device_id: String,
    pub(crate) time: i64,
    pub(crate) received_at: i64,
    pub(crate) json: String,
}

impl Known {
    /// Covering each row's revision, its parent and the record's first revision (its owner).
    pub(crate) fn covering(rows: &[crate::store::sql::EnvelopeRow]) -> Self {
        let mut known = Self::default();
        for row in rows {
            known.records.insert(row.record_id.clone());
            known.revs.insert(row.rev);
            if row.rev > 1 {
                known.revs.insert(row.rev - 1);
                known.revs.insert(1);
            }
        }
        known
    }

    /// `Some(Some(..))` stored, `Some(None)` not stored, `None` not covered (ask the database).
    pub(crate) fn lookup(&self, record_id: &str, rev: i64) -> Option<Option<&(String, String)>> {
        let key = (record_id.to_string(), rev);
        if let Some(found) = self.stored.get(&key) {
            return Some(Some(found));
        }
        (self.records.contains(record_id) && self.revs.contains(&rev)).then_some(None)
    }
}
