//! What the server checks before it stores a pushed envelope ([`super::Store::push_checked`]):
//! the chain (rev n's parent is the stored rev n-1), the record's owner (rev 1's device, or
//! another device of the same fieldworker) and, for participant records, that the code is not
//! another participant record's. An envelope that fails is kept as a conflict with its reason,
//! never dropped; a gap conflict is stored once the revision it waited for arrives.
//!
//! The same SQL on both backends, as in `sql.rs`: the macro expands once per backend with its
//! sqlx database type.

/// Implements the push checks as inherent methods of a type with a `pool` field of a sqlx
/// pool of `$db`.
macro_rules! impl_push_checks {
    ($store:ty, $db:ty) => {
        impl $store {
            /// [`Store::push_checked`](crate::store::Store::push_checked).
            async fn push_checked_in(
                &self,
                device_id: &str,
                batch: &[attune_core::Envelope],
                received_at: attune_core::Timestamp,
            ) -> Result<Vec<$crate::store::Pushed>, $crate::store::StoreError> {
                let rows = batch
                    .iter()
                    .map($crate::store::sql::EnvelopeRow::new)
                    .collect::<Result<Vec<_>, _>>()?;
                // First with the batch's new revisions inserted together at its end; if another
                // writer (PostgreSQL) stored one of them meanwhile, again from the start with
                // one insert at a time, each settled as it goes.
                for together in [true, false] {
                    let mut tx = self.begin_write().await?;
                    let mut known = Self::known_for(&mut tx, &rows).await?;
                    known.defer = together;
                    let mut results = Vec::with_capacity(batch.len());
                    for (envelope, row) in batch.iter().zip(&rows) {
                        let pushed = Self::push_one(
                            &mut tx,
                            &mut known,
                            device_id,
                            envelope,
                            row,
                            received_at.as_millis(),
                        )
                        .await?;
                        results.push(pushed);
                    }
                    if !Self::insert_deferred(&mut tx, &mut known).await? {
                        tx.rollback().await?;
                        continue;
                    }
                    tx.commit().await?;
                    for (envelope, pushed) in batch.iter().zip(&results) {
                        if let Some(reason) = pushed.reason {
                            tracing::warn!(
                                record = %envelope.record_id,
                                rev = envelope.rev,
                                device = device_id,
                                reason = reason.as_str(),
                                "revision kept as a conflict"
                            );
                        }
                    }
                    return Ok(results);
                }
                Err($crate::store::StoreError::Corrupt(
                    "a push found its revisions taken with nothing deferred".into(),
                ))
            }

            /// Inserts the revisions [`Self::insert_envelope`] deferred, some rows per
            /// statement; false if any (record id, rev) was taken meanwhile (nothing is
            /// reported then: the caller rolls back).
            async fn insert_deferred(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &mut $crate::store::known::Known,
            ) -> Result<bool, $crate::store::StoreError> {
                /// 9 values a row: well under every SQLite build's limit of bound values.
                const ROWS_PER_STATEMENT: usize = 50;
                let deferred = std::mem::take(&mut known.deferred);
                for rows in deferred.chunks(ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO envelopes (record_id, rev, hash, kind, participant_code, \
                         device_id, time, received_at, envelope) ",
                    );
                    query.push_values(rows, |mut values, row| {
                        values
                            .push_bind(row.record_id.clone())
                            .push_bind(row.rev)
                            .push_bind(row.hash.clone())
                            .push_bind(row.kind)
                            .push_bind(row.participant_code.clone())
                            .push_bind(row.device_id.clone())
                            .push_bind(row.time)
                            .push_bind(row.received_at)
                            .push_bind(row.json.clone());
                    });
                    query.push(" ON CONFLICT (record_id, rev) DO NOTHING");
                    let done = query.build().execute(&mut **tx).await?;
                    if done.rows_affected() != rows.len() as u64 {
                        return Ok(false);
                    }
                }
                Ok(true)
            }

            /// What the stored revisions of `rows` are, in one query (and which of their records
            /// have a gap conflict waiting, in another): the checks of a batch of new revisions
            /// then ask the database nothing more than to insert them.
            async fn known_for(
                tx: &mut sqlx::Transaction<'static, $db>,
                rows: &[$crate::store::sql::EnvelopeRow],
            ) -> Result<$crate::store::known::Known, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut known = $crate::store::known::Known::covering(rows);
                if rows.is_empty() {
                    return Ok(known);
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT record_id, rev, hash, device_id FROM envelopes WHERE record_id IN (",
                );
                let mut ids = query.separated(", ");
                for id in &known.records {
                    ids.push_bind(id.clone());
                }
                query.push(") AND rev IN (");
                let mut revs = query.separated(", ");
                for rev in &known.revs {
                    revs.push_bind(*rev);
                }
                query.push(")");
                for found in query.build().fetch_all(&mut **tx).await? {
                    known.stored.insert(
                        (found.try_get("record_id")?, found.try_get("rev")?),
                        (found.try_get("hash")?, found.try_get("device_id")?),
                    );
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT DISTINCT record_id FROM conflicts WHERE reason = 'gap' \
                     AND record_id IN (",
                );
                let mut ids = query.separated(", ");
                for id in &known.records {
                    ids.push_bind(id.clone());
                }
                query.push(")");
                for found in query.build().fetch_all(&mut **tx).await? {
                    known.gapped.insert(found.try_get("record_id")?);
                }
                Ok(known)
            }

            async fn push_one(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &mut $crate::store::known::Known,
                device_id: &str,
                envelope: &attune_core::Envelope,
                row: &$crate::store::sql::EnvelopeRow,
                received_at: i64,
            ) -> Result<$crate::store::Pushed, $crate::store::StoreError> {
                use $crate::store::{ConflictReason, PushOutcome, Pushed};
                let same_rev = |existing: String| {
                    if existing == row.hash {
                        None
                    } else {
                        Some((
                            ConflictReason::RevTaken,
                            format!(
                                "rev {} of this record is stored with hash {existing}",
                                row.rev
                            ),
                        ))
                    }
                };
                let already = Pushed {
                    outcome: PushOutcome::AlreadyStored,
                    reason: None,
                };
                if let Some(existing) =
                    Self::stored_hash_in(tx, known, &row.record_id, row.rev).await?
                {
                    return match same_rev(existing) {
                        None => Ok(already),
                        Some((reason, detail)) => {
                            Self::keep(tx, known, device_id, envelope, row, received_at, reason, &detail)
                                .await
                        }
                    };
                }
                if let Some((reason, detail)) =
                    Self::check(tx, known, device_id, envelope, row).await?
                {
                    return Self::keep(tx, known, device_id, envelope, row, received_at, reason, &detail)
                        .await;
                }
                if !Self::insert_envelope(tx, known, device_id, envelope, row, received_at).await? {
                    // Another transaction stored this (record id, rev) meanwhile.
                    let existing = Self::stored_hash(tx, &row.record_id, row.rev)
                        .await?
                        .ok_or_else(|| {
                            $crate::store::StoreError::Corrupt(
                                "a revision vanished while it was stored".into(),
                            )
                        })?;
                    return match same_rev(existing) {
                        None => Ok(already),
                        Some((reason, detail)) => {
                            Self::keep(tx, known, device_id, envelope, row, received_at, reason, &detail)
                                .await
                        }
                    };
                }
                if known.gapped.contains(&row.record_id) {
                    Self::fill_gaps(tx, known, &row.record_id, row.rev, row.hash.clone()).await?;
                }
                Ok(Pushed {
                    outcome: PushOutcome::Stored,
                    reason: None,
                })
            }

            /// Why `envelope`, not yet stored, cannot be stored now (or `None`: it may). Claims
            /// a participant record's code for it as a side effect.
            async fn check(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &$crate::store::known::Known,
                device_id: &str,
                envelope: &attune_core::Envelope,
                row: &$crate::store::sql::EnvelopeRow,
            ) -> Result<Option<($crate::store::ConflictReason, String)>, $crate::store::StoreError>
            {
                use $crate::store::ConflictReason;
                if row.rev < 1 {
                    return Ok(Some((
                        ConflictReason::ParentMismatch,
                        "revisions are numbered from 1".into(),
                    )));
                }
                if row.rev == 1 {
                    if let Some(parent) = envelope.parent_hash {
                        return Ok(Some((
                            ConflictReason::ParentMismatch,
                            format!("a first revision names a parent ({parent})"),
                        )));
                    }
                } else {
                    let previous = row.rev - 1;
                    // Known absent is asked again: on PostgreSQL another push may have stored it
                    // since the batch began (a gap is rare, the query cheap).
                    let stored = match Self::stored_hash_in(tx, known, &row.record_id, previous)
                        .await?
                    {
                        Some(stored) => Some(stored),
                        None => Self::stored_hash(tx, &row.record_id, previous).await?,
                    };
                    let Some(stored) = stored else {
                        return Ok(Some((
                            ConflictReason::Gap,
                            format!("rev {previous} of this record is not stored"),
                        )));
                    };
                    let parent = envelope.parent_hash.map(|hash| hash.to_hex());
                    if parent.as_deref() != Some(stored.as_str()) {
                        return Ok(Some((
                            ConflictReason::ParentMismatch,
                            format!(
                                "its parent hash is {}, the stored rev {previous} is {stored}",
                                parent.as_deref().unwrap_or("none")
                            ),
                        )));
                    }
                    let owner: Option<String> = match known.lookup(&row.record_id, 1) {
                        Some(found) => found.map(|(_, owner)| owner.clone()),
                        None => {
                            sqlx::query_scalar(
                                "SELECT device_id FROM envelopes WHERE record_id = $1 AND rev = 1",
                            )
                            .bind(&row.record_id)
                            .fetch_optional(&mut **tx)
                            .await?
                        }
                    };
                    if let Some(owner) = owner
                        && owner != device_id
                    {
                        let owner_fieldworker = Self::fieldworker_of(tx, &owner).await?;
                        let fieldworker = Self::fieldworker_of(tx, device_id).await?;
                        if !$crate::store::same_fieldworker(&owner_fieldworker, &fieldworker) {
                            return Ok(Some((
                                ConflictReason::OwnedByAnotherDevice,
                                format!(
                                    "the record was created on device {owner} \
                                     ({owner_fieldworker}), this device is {fieldworker}'s"
                                ),
                            )));
                        }
                    }
                }
                if envelope.kind == attune_core::Kind::Participant
                    && let Some(code) = envelope
                        .participant_code
                        .as_deref()
                        .filter(|code| !code.trim().is_empty())
                {
                    sqlx::query(
                        "INSERT INTO participant_codes (code, record_id, device_id, claimed_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING",
                    )
                    .bind(code)
                    .bind(&row.record_id)
                    .bind(device_id)
                    .bind(envelope.time.as_millis())
                    .execute(&mut **tx)
                    .await?;
                    let holder: String = sqlx::query_scalar(
                        "SELECT record_id FROM participant_codes WHERE code = $1",
                    )
                    .bind(code)
                    .fetch_one(&mut **tx)
                    .await?;
                    if holder != row.record_id {
                        return Ok(Some((
                            ConflictReason::CodeTaken,
                            format!("code {code} is held by participant record {holder}"),
                        )));
                    }
                }
                Ok(None)
            }

            /// A gap conflict waiting for the revision just stored (`rev`, `hash`) is checked
            /// again and stored if it passes; and so on up the chain.
            async fn fill_gaps(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &mut $crate::store::known::Known,
                record_id: &str,
                mut rev: i64,
                mut hash: String,
            ) -> Result<(), $crate::store::StoreError> {
                use sqlx::Row as _;
                loop {
                    let next = rev + 1;
                    if Self::stored_hash_in(tx, known, record_id, next).await?.is_some() {
                        return Ok(());
                    }
                    let waiting = sqlx::query(
                        "SELECT device_id, received_at, envelope FROM conflicts \
                         WHERE record_id = $1 AND rev = $2 AND reason = 'gap' ORDER BY seq",
                    )
                    .bind(record_id)
                    .bind(next)
                    .fetch_all(&mut **tx)
                    .await?;
                    let mut filled = None;
                    for candidate in &waiting {
                        let stored = $crate::store::sql::stored_from_row(candidate)?;
                        let envelope = stored.envelope;
                        if envelope.parent_hash.map(|parent| parent.to_hex()).as_ref()
                            != Some(&hash)
                        {
                            continue;
                        }
                        let row = $crate::store::sql::EnvelopeRow::new(&envelope)?;
                        if Self::check(tx, known, &stored.device_id, &envelope, &row)
                            .await?
                            .is_some()
                        {
                            continue;
                        }
                        let received_at: i64 = candidate.try_get("received_at")?;
                        if Self::insert_envelope(
                            tx,
                            known,
                            &stored.device_id,
                            &envelope,
                            &row,
                            received_at,
                        )
                        .await?
                        {
                            tracing::info!(
                                record = record_id,
                                rev = next,
                                "a revision kept for a gap is stored: the gap was filled"
                            );
                            filled = Some(row.hash);
                            break;
                        }
                    }
                    match filled {
                        Some(filled) => {
                            rev = next;
                            hash = filled;
                        }
                        None => return Ok(()),
                    }
                }
            }

            /// [`Self::stored_hash`], answered from `known` where it covers the revision.
            async fn stored_hash_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &$crate::store::known::Known,
                record_id: &str,
                rev: i64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                match known.lookup(record_id, rev) {
                    Some(found) => Ok(found.map(|(hash, _)| hash.clone())),
                    None => Self::stored_hash(tx, record_id, rev).await,
                }
            }

            async fn stored_hash(
                tx: &mut sqlx::Transaction<'static, $db>,
                record_id: &str,
                rev: i64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT hash FROM envelopes WHERE record_id = $1 AND rev = $2",
                )
                .bind(record_id)
                .bind(rev)
                .fetch_optional(&mut **tx)
                .await?)
            }

            async fn fieldworker_of(
                tx: &mut sqlx::Transaction<'static, $db>,
                device_id: &str,
            ) -> Result<String, $crate::store::StoreError> {
                let fieldworker: Option<String> =
                    sqlx::query_scalar("SELECT fieldworker FROM devices WHERE id = $1")
                        .bind(device_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                fieldworker.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("no device {device_id}"))
                })
            }

            /// Inserts into `envelopes`; false if its (record id, rev) is taken. When `known`
            /// defers, only notes it as stored, for [`Self::insert_deferred`] at the end.
            async fn insert_envelope(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &mut $crate::store::known::Known,
                device_id: &str,
                envelope: &attune_core::Envelope,
                row: &$crate::store::sql::EnvelopeRow,
                received_at: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                if known.defer {
                    known.stored.insert(
                        (row.record_id.clone(), row.rev),
                        (row.hash.clone(), device_id.to_string()),
                    );
                    known.deferred.push($crate::store::known::Deferred {
                        record_id: row.record_id.clone(),
                        rev: row.rev,
                        hash: row.hash.clone(),
                        kind: row.kind,
                        participant_code: envelope.participant_code.clone(),
                        device_id: device_id.to_string(),
                        time: envelope.time.as_millis(),
                        received_at,
                        json: row.json.clone(),
                    });
                    return Ok(true);
                }
                let done = sqlx::query(
                    "INSERT INTO envelopes (record_id, rev, hash, kind, participant_code, \
                     device_id, time, received_at, envelope) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (record_id, rev) DO NOTHING",
                )
                .bind(&row.record_id)
                .bind(row.rev)
                .bind(&row.hash)
                .bind(row.kind)
                .bind(envelope.participant_code.as_deref())
                .bind(device_id)
                .bind(envelope.time.as_millis())
                .bind(received_at)
                .bind(&row.json)
                .execute(&mut **tx)
                .await?;
                let inserted = done.rows_affected() == 1;
                if inserted {
                    known.stored.insert(
                        (row.record_id.clone(), row.rev),
                        (row.hash.clone(), device_id.to_string()),
                    );
                }
                Ok(inserted)
            }

            /// Keeps `envelope` as a conflict (once: a resend finds the row kept before and
            /// reports its reason).
            #[allow(clippy::too_many_arguments)]
            async fn keep(
                tx: &mut sqlx::Transaction<'static, $db>,
                known: &mut $crate::store::known::Known,
                device_id: &str,
                envelope: &attune_core::Envelope,
                row: &$crate::store::sql::EnvelopeRow,
                received_at: i64,
                reason: $crate::store::ConflictReason,
                detail: &str,
            ) -> Result<$crate::store::Pushed, $crate::store::StoreError> {
                if reason == $crate::store::ConflictReason::Gap {
                    known.gapped.insert(row.record_id.clone());
                }
                sqlx::query(
                    "INSERT INTO conflicts (record_id, rev, hash, kind, participant_code, \
                     device_id, time, received_at, envelope, reason, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (record_id, rev, hash) DO NOTHING",
                )
                .bind(&row.record_id)
                .bind(row.rev)
                .bind(&row.hash)
                .bind(row.kind)
                .bind(envelope.participant_code.as_deref())
                .bind(device_id)
                .bind(envelope.time.as_millis())
                .bind(received_at)
                .bind(&row.json)
                .bind(reason.as_str())
                .bind(detail)
                .execute(&mut **tx)
                .await?;
                let kept: String = sqlx::query_scalar(
                    "SELECT reason FROM conflicts WHERE record_id = $1 AND rev = $2 AND hash = $3",
                )
                .bind(&row.record_id)
                .bind(row.rev)
                .bind(&row.hash)
                .fetch_one(&mut **tx)
                .await?;
                Ok($crate::store::Pushed {
                    outcome: $crate::store::PushOutcome::Conflict,
                    reason: Some($crate::store::ConflictReason::from_name(&kept)),
                })
            }

            /// [`Store::kept_conflicts`](crate::store::Store::kept_conflicts).
            async fn kept_conflicts_in(
                &self,
            ) -> Result<Vec<$crate::store::KeptConflict>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query($crate::store::checks::KEPT_CONFLICTS)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let reason: String = row.try_get("reason")?;
                        Ok($crate::store::KeptConflict {
                            stored: $crate::store::sql::stored_from_row(row)?,
                            reason: $crate::store::ConflictReason::from_name(&reason),
                            detail: row.try_get("detail")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use impl_push_checks;

/// The kept conflicts, not those stored since (a gap that was filled), in arrival order.
pub(crate) const KEPT_CONFLICTS: &str = "SELECT c.device_id, c.received_at, c.envelope, \
     c.reason, c.detail FROM conflicts c WHERE NOT EXISTS (SELECT 1 FROM envelopes e \
     WHERE e.record_id = c.record_id AND e.rev = c.rev AND e.hash = c.hash) ORDER BY c.seq";
