//! The SQL both backends share. Placeholders are `$1, $2...`, which PostgreSQL and sqlx's
//! SQLite driver both bind by number; integers are `BIGINT`/`INTEGER` (i64) on both. The
//! macro expands once per backend so each gets concrete types (no `Any` driver).

/// Implements [`super::Store`] for a type with a `pool` field of a sqlx pool.
macro_rules! impl_sql_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                $crate::store::sql::close_pool(&self.pool).await;
            }

            async fn set_study_public_key(
                &self,
                key: &str,
                now: attune_core::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO study (id, public_key, created_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(key)
                .bind(now.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn study_public_key(&self) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(
                    sqlx::query_scalar::<_, String>("SELECT public_key FROM study WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn create_enrolment_code(
                &self,
                code_hash: &str,
                fieldworker: &str,
                expires_at: attune_core::Timestamp,
                now: attune_core::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO enrolment_codes (code_hash, fieldworker, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(code_hash)
                .bind(fieldworker)
                .bind(now.as_millis())
                .bind(expires_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn enrol_device(
                &self,
                code_hash: &str,
                device: $crate::store::NewDevice,
                now: attune_core::Timestamp,
            ) -> Result<$crate::store::EnrolOutcome, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::EnrolOutcome;
                let mut tx = self.begin_write().await?;
                let Some(code) = sqlx::query(
                    "SELECT fieldworker, expires_at, used_at, device_id FROM enrolment_codes \
                     WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Ok(EnrolOutcome::UnknownCode);
                };
                let fieldworker: String = code.try_get("fieldworker")?;
                let expires_at: i64 = code.try_get("expires_at")?;
                let used_at: Option<i64> = code.try_get("used_at")?;
                let used_by: Option<String> = code.try_get("device_id")?;
                if let Some(used_at) = used_at {
                    // The same device retrying shortly after: its answer (and so its token)
                    // was lost on the way. It gets a new token below; anyone else is refused.
                    let retry = used_by.as_deref() == Some(device.id.as_str())
                        && now.as_millis().saturating_sub(used_at)
                            <= $crate::store::REENROL_WINDOW_MS;
                    if !retry {
                        return Ok(EnrolOutcome::AlreadyUsed);
                    }
                } else {
                    if expires_at <= now.as_millis() {
                        return Ok(EnrolOutcome::Expired);
                    }
                    // `used_at IS NULL` again: of two concurrent redemptions only one wins.
                    let claimed = sqlx::query(
                        "UPDATE enrolment_codes SET used_at = $2, device_id = $3 \
                         WHERE code_hash = $1 AND used_at IS NULL",
                    )
                    .bind(code_hash)
                    .bind(now.as_millis())
                    .bind(&device.id)
                    .execute(&mut *tx)
                    .await?;
                    if claimed.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(EnrolOutcome::AlreadyUsed);
                    }
                }
                let inserted = sqlx::query(
                    "INSERT INTO devices (id, fieldworker, name, public_key, token_hash, status, \
                     enrolled_at) VALUES ($1, $2, $3, $4, $5, 'active', $6) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&device.id)
                .bind(&fieldworker)
                .bind(&device.name)
                .bind(&device.public_key)
                .bind(&device.token_hash)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() != 1 {
                    // Already enrolled. The same device (same signing key, still active)
                    // enrolling again, because it never received its token, gets a new one;
                    // the lost token stops working. Anything else keeps the id taken.
                    let renewed = sqlx::query(
                        "UPDATE devices SET token_hash = $2 \
                         WHERE id = $1 AND public_key = $3 AND status = 'active'",
                    )
                    .bind(&device.id)
                    .bind(&device.token_hash)
                    .bind(&device.public_key)
                    .execute(&mut *tx)
                    .await?;
                    if renewed.rows_affected() != 1 {
                        // Roll back now, not on drop: sqlx rolls a dropped transaction back
                        // in the background, and on SQLite the next write could find the
                        // lock still held. The code stays usable.
                        tx.rollback().await?;
                        return Ok(EnrolOutcome::DeviceIdTaken);
                    }
                }
                let row = sqlx::query(&format!(
                    "{} WHERE id = $1",
                    $crate::store::sql::DEVICE_SELECT
                ))
                .bind(&device.id)
                .fetch_one(&mut *tx)
                .await?;
                let enrolled = $crate::store::sql::device_from_row(&row)?;
                tx.commit().await?;
                Ok(EnrolOutcome::Enrolled(enrolled))
            }

            async fn device_by_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::store::Device>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "{} WHERE token_hash = $1",
                    $crate::store::sql::DEVICE_SELECT
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| $crate::store::sql::device_from_row(&row))
                    .transpose()
            }

            async fn list_devices(
                &self,
            ) -> Result<Vec<$crate::store::Device>, $crate::store::StoreError> {
                let rows = sqlx::query(&format!(
                    "{} ORDER BY enrolled_at, id",
                    $crate::store::sql::DEVICE_SELECT
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| $crate::store::sql::device_from_row(row))
                    .collect()
            }

            async fn revoke_device(
                &self,
                device_id: &str,
                message: &$crate::store::NewControlMessage,
            ) -> Result<$crate::store::RevokeOutcome, $crate::store::StoreError> {
                use $crate::store::RevokeOutcome;
                let $crate::store::ControlKind::Revocation {
                    device_id: named,
                    reason,
                } = &message.kind
                else {
                    return Err($crate::store::sql::wrong_kind("revocation", &message.kind));
                };
                if named.to_string() != device_id {
                    return Err($crate::store::StoreError::Corrupt(format!(
                        "a revocation of {named} recorded for device {device_id}"
                    )));
                }
                let mut tx = self.begin_write().await?;
                let Some(statement) = sqlx::query_scalar::<_, Option<i64>>(
                    "SELECT revocation_message_id FROM devices WHERE id = $1",
                )
                .bind(device_id)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::UnknownDevice);
                };
                if statement.is_some() {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::AlreadyRevoked);
                }
                let Some(id) = $crate::store::sql::insert_control(&mut tx, message).await? else {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::SeqTaken);
                };
                sqlx::query(
                    "UPDATE devices SET status = 'revoked', revoked_reason = $2, \
                     revoked_at = COALESCE(revoked_at, $3), revocation_message_id = $4 \
                     WHERE id = $1",
                )
                .bind(device_id)
                .bind(reason)
                .bind(message.created_at.as_millis())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(RevokeOutcome::Revoked($crate::store::sql::stored_message(
                    id, message,
                )))
            }

            async fn push(
                &self,
                device_id: &str,
                batch: &[attune_core::Envelope],
                received_at: attune_core::Timestamp,
            ) -> Result<Vec<$crate::store::PushOutcome>, $crate::store::StoreError> {
                Ok(self
                    .push_checked_in(device_id, batch, received_at)
                    .await?
                    .into_iter()
                    .map(|pushed| pushed.outcome)
                    .collect())
            }

            async fn envelopes(
                &self,
            ) -> Result<Vec<$crate::store::StoredEnvelope>, $crate::store::StoreError> {
                self.stored_in(
                    "SELECT device_id, received_at, envelope FROM envelopes ORDER BY seq",
                )
                .await
            }

            async fn conflicts(
                &self,
            ) -> Result<Vec<$crate::store::StoredEnvelope>, $crate::store::StoreError> {
                self.stored_in($crate::store::checks::KEPT_CONFLICTS).await
            }

            async fn add_withdrawal(
                &self,
                message: &$crate::store::NewControlMessage,
            ) -> Result<$crate::store::AddOutcome, $crate::store::StoreError> {
                if !matches!(message.kind, $crate::store::ControlKind::Withdrawal { .. }) {
                    return Err($crate::store::sql::wrong_kind("withdrawal", &message.kind));
                }
                let mut tx = self.begin_write().await?;
                let Some(id) = $crate::store::sql::insert_control(&mut tx, message).await? else {
                    tx.rollback().await?;
                    return Ok($crate::store::AddOutcome::SeqTaken);
                };
                tx.commit().await?;
                Ok($crate::store::AddOutcome::Added(
                    $crate::store::sql::stored_message(id, message),
                ))
            }

            async fn publish_protocol(
                &self,
                protocol_id: &str,
                version: u32,
                message: &$crate::store::NewControlMessage,
            ) -> Result<$crate::store::PublishOutcome, $crate::store::StoreError> {
                let $crate::store::ControlKind::ProtocolUpdate { protocol } = &message.kind else {
                    return Err($crate::store::sql::wrong_kind(
                        "protocol_update",
                        &message.kind,
                    ));
                };
                let mut tx = self.begin_write().await?;
                // A version published unsigned (before signing) may be published again,
                // signed; an older one may not.
                let latest: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(CASE WHEN seq IS NULL THEN protocol_version - 1 \
                     ELSE protocol_version END) FROM control_messages \
                     WHERE kind = 'protocol_update' AND protocol_id = $1",
                )
                .bind(protocol_id)
                .fetch_one(&mut *tx)
                .await?;
                if let Some(latest) = latest
                    && latest >= i64::from(version)
                {
                    tx.rollback().await?;
                    let published: i64 = sqlx::query_scalar(
                        "SELECT MAX(protocol_version) FROM control_messages \
                         WHERE kind = 'protocol_update' AND protocol_id = $1",
                    )
                    .bind(protocol_id)
                    .fetch_one(&self.pool)
                    .await?;
                    return Ok($crate::store::PublishOutcome::NotNewer {
                        latest: $crate::store::sql::stored_version(published)?,
                    });
                }
                let Some(message_id) = $crate::store::sql::insert_control_with(
                    &mut tx,
                    message,
                    Some((protocol_id, i64::from(version))),
                )
                .await?
                else {
                    tx.rollback().await?;
                    return Ok($crate::store::PublishOutcome::SeqTaken);
                };
                tx.commit().await?;
                Ok($crate::store::PublishOutcome::Published(
                    $crate::store::PublishedProtocol {
                        message_id,
                        seq: Some(message.seq),
                        protocol_id: protocol_id.to_owned(),
                        version,
                        protocol: protocol.clone(),
                        published_at: message.created_at,
                    },
                ))
            }

            async fn published_protocols(
                &self,
            ) -> Result<Vec<$crate::store::PublishedProtocol>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, seq, protocol_id, protocol_version, protocol, created_at \
                     FROM control_messages WHERE kind = 'protocol_update' ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::PublishedProtocol {
                            message_id: row.try_get("id")?,
                            seq: $crate::store::sql::stored_seq(row.try_get("seq")?)?,
                            protocol_id: row.try_get("protocol_id")?,
                            version: $crate::store::sql::stored_version(
                                row.try_get("protocol_version")?,
                            )?,
                            protocol: row.try_get("protocol")?,
                            published_at: attune_core::Timestamp(row.try_get("created_at")?),
                        })
                    })
                    .collect()
            }

            async fn control_messages_after(
                &self,
                cursor: i64,
            ) -> Result<Vec<$crate::store::ControlMessage>, $crate::store::StoreError> {
                let rows = sqlx::query(&format!(
                    "{} WHERE id > $1 AND seq IS NOT NULL ORDER BY id",
                    $crate::store::sql::CONTROL_SELECT
                ))
                .bind(cursor)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| $crate::store::sql::control_from_row(row))
                    .collect()
            }

            async fn log_export(
                &self,
                entry: &$crate::store::ExportLogEntry,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("INSERT INTO export_log (who, at, what) VALUES ($1, $2, $3)")
                    .bind(&entry.who)
                    .bind(entry.at.as_millis())
                    .bind(&entry.what)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn export_log(
                &self,
            ) -> Result<Vec<$crate::store::ExportLogEntry>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query("SELECT who, at, what FROM export_log ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::ExportLogEntry {
                            who: row.try_get("who")?,
                            at: attune_core::Timestamp(row.try_get("at")?),
                            what: row.try_get("what")?,
                        })
                    })
                    .collect()
            }
            async fn set_study_signing_key(
                &self,
                signing_public_key: &str,
                public_key_signature: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "UPDATE study SET signing_public_key = $1, public_key_signature = $2 \
                     WHERE id = 1 AND signing_public_key IS NULL",
                )
                .bind(signing_public_key)
                .bind(public_key_signature)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn study_keys(
                &self,
            ) -> Result<Option<$crate::store::StudyRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT public_key, signing_public_key, public_key_signature FROM study \
                     WHERE id = 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok($crate::store::StudyRecord {
                        public_key: row.try_get("public_key")?,
                        signing_public_key: row.try_get("signing_public_key")?,
                        public_key_signature: row.try_get("public_key_signature")?,
                    })
                })
                .transpose()
            }

            async fn next_control_seq(&self) -> Result<u64, $crate::store::StoreError> {
                let highest: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(seq) FROM control_messages")
                        .fetch_one(&self.pool)
                        .await?;
                Ok($crate::store::sql::stored_seq(highest)?.unwrap_or(0) + 1)
            }

            async fn withdrawals(
                &self,
            ) -> Result<Vec<$crate::store::WithdrawalRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, seq, participant_id, participant_code, created_at \
                     FROM control_messages WHERE kind = 'withdrawal' ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::WithdrawalRecord {
                            message_id: row.try_get("id")?,
                            seq: $crate::store::sql::stored_seq(row.try_get("seq")?)?,
                            participant_id: row
                                .try_get::<Option<String>, _>("participant_id")?
                                .map(|id| $crate::store::sql::parse_id(&id))
                                .transpose()?,
                            participant_code: row.try_get("participant_code")?,
                            created_at: attune_core::Timestamp(row.try_get("created_at")?),
                        })
                    })
                    .collect()
            }

            async fn revocation_statement(
                &self,
                device_id: &str,
            ) -> Result<Option<$crate::store::ControlMessage>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "{} WHERE id = (SELECT revocation_message_id FROM devices WHERE id = $1) \
                     AND seq IS NOT NULL",
                    $crate::store::sql::CONTROL_SELECT
                ))
                .bind(device_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| $crate::store::sql::control_from_row(&row))
                    .transpose()
            }

            async fn create_enrol_challenge(
                &self,
                challenge: &str,
                expires_at: attune_core::Timestamp,
                now: attune_core::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM enrol_challenges WHERE expires_at <= $1")
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO enrol_challenges (challenge, created_at, expires_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(challenge)
                .bind(now.as_millis())
                .bind(expires_at.as_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_enrol_challenge(
                &self,
                challenge: &str,
                now: attune_core::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                // Deleted whether or not it has expired: either way it is never good again.
                let taken: Option<i64> = sqlx::query_scalar(
                    "DELETE FROM enrol_challenges WHERE challenge = $1 RETURNING expires_at",
                )
                .bind(challenge)
                .fetch_optional(&self.pool)
                .await?;
                Ok(taken.is_some_and(|expires_at| expires_at > now.as_millis()))
            }

            async fn push_checked(
                &self,
                device_id: &str,
                batch: &[attune_core::Envelope],
                received_at: attune_core::Timestamp,
            ) -> Result<Vec<$crate::store::Pushed>, $crate::store::StoreError> {
                self.push_checked_in(device_id, batch, received_at).await
            }

            async fn kept_conflicts(
                &self,
            ) -> Result<Vec<$crate::store::KeptConflict>, $crate::store::StoreError> {
                self.kept_conflicts_in().await
            }

            async fn reserve_codes(
                &self,
                device_id: &str,
                wants: &[$crate::store::ReserveWant],
                now: attune_core::Timestamp,
            ) -> Result<Vec<$crate::store::CodeBlock>, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let mut blocks = Vec::new();
                for want in wants {
                    let prefix = want.prefix.as_str();
                    // A write first: on SQLite it takes the write lock before anything is
                    // read, so a concurrent reservation waits (busy timeout) rather than
                    // failing on a stale read.
                    sqlx::query(
                        "INSERT INTO code_counters (prefix, next_number) VALUES ($1, 1) \
                         ON CONFLICT (prefix) DO NOTHING",
                    )
                    .bind(prefix)
                    .execute(&mut *tx)
                    .await?;
                    let rows = sqlx::query(
                        "SELECT id, prefix, first_number, numbers FROM code_blocks \
                         WHERE device_id = $1 AND prefix = $2 AND id > $3 ORDER BY id",
                    )
                    .bind(device_id)
                    .bind(prefix)
                    .bind(want.after)
                    .fetch_all(&mut *tx)
                    .await?;
                    let again = rows
                        .iter()
                        .map(|row| $crate::store::sql::block_from_row(row))
                        .collect::<Result<Vec<_>, _>>()?;
                    let held: u64 = again.iter().map(|b| u64::from(b.count)).sum();
                    blocks.extend(again);
                    let missing = u64::from(want.want.min(attune_core::codes::MAX_BLOCK))
                        .saturating_sub(held);
                    if missing == 0 {
                        continue;
                    }
                    let issued: i64 = sqlx::query_scalar(
                        "SELECT CAST(COALESCE(SUM(numbers), 0) AS BIGINT) FROM code_blocks \
                         WHERE device_id = $1 AND prefix = $2",
                    )
                    .bind(device_id)
                    .bind(prefix)
                    .fetch_one(&mut *tx)
                    .await?;
                    let pushed: i64 = sqlx::query_scalar(
                        "SELECT COUNT(DISTINCT record_id) FROM envelopes \
                         WHERE kind = 'participant' AND device_id = $1 AND participant_code LIKE $2",
                    )
                    .bind(device_id)
                    .bind(format!("{prefix}%"))
                    .fetch_one(&mut *tx)
                    .await?;
                    let outstanding = u64::try_from(issued.saturating_sub(pushed)).unwrap_or(0);
                    let room = u64::from(attune_core::codes::MAX_OUTSTANDING)
                        .saturating_sub(outstanding);
                    let count = missing.min(room);
                    if count == 0 {
                        continue;
                    }
                    let known: Vec<Option<String>> = sqlx::query_scalar(
                        "SELECT participant_code FROM envelopes \
                         WHERE kind = 'participant' AND participant_code LIKE $1 \
                         UNION SELECT participant_code FROM conflicts \
                         WHERE kind = 'participant' AND participant_code LIKE $1 \
                         UNION SELECT participant_code FROM control_messages \
                         WHERE kind = 'withdrawal' AND participant_code LIKE $1",
                    )
                    .bind(format!("{prefix}%"))
                    .fetch_all(&mut *tx)
                    .await?;
                    let floor = $crate::store::sql::first_free_number(prefix, &known);
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    let next: i64 = sqlx::query_scalar(
                        "UPDATE code_counters SET next_number = \
                         (CASE WHEN next_number > $2 THEN next_number ELSE $2 END) + $3 \
                         WHERE prefix = $1 RETURNING next_number",
                    )
                    .bind(prefix)
                    .bind(floor)
                    .bind(count)
                    .fetch_one(&mut *tx)
                    .await?;
                    let first = next - count;
                    if next - 1 > i64::from(u32::MAX) {
                        return Err($crate::store::StoreError::Corrupt(format!(
                            "participant code numbers of {prefix} are used up"
                        )));
                    }
                    let row = sqlx::query(
                        "INSERT INTO code_blocks \
                         (prefix, device_id, first_number, numbers, reserved_at) \
                         VALUES ($1, $2, $3, $4, $5) \
                         RETURNING id, prefix, first_number, numbers",
                    )
                    .bind(prefix)
                    .bind(device_id)
                    .bind(first)
                    .bind(count)
                    .bind(now.as_millis())
                    .fetch_one(&mut *tx)
                    .await?;
                    blocks.push($crate::store::sql::block_from_row(&row)?);
                }
                tx.commit().await?;
                Ok(blocks)
            }

            async fn code_blocks(
                &self,
            ) -> Result<Vec<$crate::store::ReservedBlock>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, prefix, first_number, numbers, device_id, reserved_at \
                     FROM code_blocks ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::ReservedBlock {
                            block: $crate::store::sql::block_from_row(row)?,
                            device_id: row.try_get("device_id")?,
                            reserved_at: attune_core::Timestamp(row.try_get("reserved_at")?),
                        })
                    })
                    .collect()
            }
        }

        impl $store {
            /// The envelopes a `SELECT device_id, received_at, envelope ...` returns.
            async fn stored_in(
                &self,
                query: &'static str,
            ) -> Result<Vec<$crate::store::StoredEnvelope>, $crate::store::StoreError> {
                let rows = sqlx::query(query).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| $crate::store::sql::stored_from_row(row))
                    .collect()
            }
        }
    };
}

pub(crate) use impl_sql_store;

use attune_core::{Envelope, Timestamp};
use sqlx::Row;

use super::{
    CodeBlock, ControlKind, ControlMessage, Device, DeviceStatus, StoreError, StoredEnvelope,
};

/// Closes every connection of `pool` before returning.
///
/// sqlx 0.8.6's `Pool::close` can return with a connection still open (launchbadge/sqlx#3217,
/// fixed upstream after that release): a dropped `PoolConnection` is handed back by a spawned
/// task, which can put it in the idle queue after `close` last looked there, and the permit
/// count `close` waits on can be satisfied early. On SQLite that connection is never closed: a
/// CLI command exits without checkpointing, leaving the WAL behind, and a process keeping
/// such a connection shares its stale view of the WAL index with any connection it opens
/// later (this is how the CLI's export-log row went missing on reopening). Closing again
/// until the pool is empty closes the straggler once it lands in the idle queue.
pub(crate) async fn close_pool<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    pool.close().await;
    while pool.size() > 0 {
        // Let the task returning the straggler run, then close what it returned.
        tokio::task::yield_now().await;
        pool.close().await;
    }
}

pub(crate) const DEVICE_SELECT: &str = "SELECT id, fieldworker, name, public_key, status, \
     revoked_reason, enrolled_at FROM devices";

pub(crate) fn device_from_row<'r, R>(row: &'r R) -> Result<Device, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(Device {
        id: row.try_get("id")?,
        fieldworker: row.try_get("fieldworker")?,
        name: row.try_get("name")?,
        public_key: row.try_get("public_key")?,
        status: match status.as_str() {
            "active" => DeviceStatus::Active,
            "revoked" => DeviceStatus::Revoked,
            other => return Err(StoreError::Corrupt(format!("device status {other:?}"))),
        },
        revoked_reason: row.try_get("revoked_reason")?,
        enrolled_at: Timestamp(row.try_get("enrolled_at")?),
    })
}

/// A protocol version as stored (BIGINT) back to `u32`.
pub(crate) fn stored_version(version: i64) -> Result<u32, StoreError> {
    u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("stored protocol version {version}")))
}

/// A stored instruction number (BIGINT) back to `u64`.
pub(crate) fn stored_seq(seq: Option<i64>) -> Result<Option<u64>, StoreError> {
    seq.map(|seq| u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("stored seq {seq}"))))
        .transpose()
}

/// An id stored as text back to its type.
pub(crate) fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored id {text:?}")))
}

pub(crate) fn wrong_kind(expected: &str, kind: &ControlKind) -> StoreError {
    StoreError::Corrupt(format!("a {expected} was to be recorded, not {kind:?}"))
}

/// The signed control messages' columns, for [`control_from_row`].
pub(crate) const CONTROL_SELECT: &str = "SELECT id, seq, kind, participant_id, participant_code, \
     protocol, device_id, reason, created_at, signature FROM control_messages";

/// A signed control message from a row of [`CONTROL_SELECT`].
pub(crate) fn control_from_row<'r, R>(row: &'r R) -> Result<ControlMessage, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let text = |column: &str| -> Result<Option<String>, StoreError> { Ok(row.try_get(column)?) };
    let missing =
        || StoreError::Corrupt(format!("control message {id} ({kind}) without its content"));
    let kind = match kind.as_str() {
        "withdrawal" => ControlKind::Withdrawal {
            participant_id: parse_id(&text("participant_id")?.ok_or_else(missing)?)?,
            participant_code: text("participant_code")?.ok_or_else(missing)?,
        },
        "protocol_update" => ControlKind::ProtocolUpdate {
            protocol: text("protocol")?.ok_or_else(missing)?,
        },
        "revocation" => ControlKind::Revocation {
            device_id: parse_id(&text("device_id")?.ok_or_else(missing)?)?,
            reason: text("reason")?.ok_or_else(missing)?,
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "control message {id} of kind {other:?}"
            )));
        }
    };
    Ok(ControlMessage {
        id,
        seq: stored_seq(row.try_get("seq")?)?
            .ok_or_else(|| StoreError::Corrupt(format!("control message {id} has no seq")))?,
        kind,
        created_at: Timestamp(row.try_get("created_at")?),
        signature: text("signature")?
            .ok_or_else(|| StoreError::Corrupt(format!("control message {id} is not signed")))?,
    })
}

/// The message as stored under `id`.
pub(crate) fn stored_message(id: i64, message: &super::NewControlMessage) -> ControlMessage {
    ControlMessage {
        id,
        seq: message.seq,
        kind: message.kind.clone(),
        created_at: message.created_at,
        signature: message.signature.clone(),
    }
}

/// Inserts a signed control message in `tx`; its id, or `None` if its `seq` is taken.
pub(crate) async fn insert_control<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    message: &super::NewControlMessage,
) -> Result<Option<i64>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    insert_control_with(tx, message, None).await
}

/// [`insert_control`], with a protocol update's protocol id and version.
pub(crate) async fn insert_control_with<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    message: &super::NewControlMessage,
    protocol_version: Option<(&str, i64)>,
) -> Result<Option<i64>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut columns = ControlColumns::default();
    match &message.kind {
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => {
            columns.kind = "withdrawal";
            columns.participant_id = Some(participant_id.to_string());
            columns.participant_code = Some(participant_code.clone());
        }
        ControlKind::ProtocolUpdate { protocol } => {
            columns.kind = "protocol_update";
            columns.protocol = Some(protocol.clone());
        }
        ControlKind::Revocation { device_id, reason } => {
            columns.kind = "revocation";
            columns.device_id = Some(device_id.to_string());
            columns.reason = Some(reason.clone());
        }
        ControlKind::Unknown => return Err(wrong_kind("known kind", &message.kind)),
    }
    let seq = i64::try_from(message.seq)
        .map_err(|_| StoreError::Corrupt(format!("seq {} out of range", message.seq)))?;
    let (protocol_id, version) = match protocol_version {
        Some((id, version)) => (Some(id.to_owned()), Some(version)),
        None => (None, None),
    };
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO control_messages (seq, kind, participant_id, participant_code, \
         protocol_id, protocol_version, protocol, device_id, reason, created_at, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (seq) DO NOTHING RETURNING id",
    )
    .bind(seq)
    .bind(columns.kind)
    .bind(columns.participant_id)
    .bind(columns.participant_code)
    .bind(protocol_id)
    .bind(version)
    .bind(columns.protocol)
    .bind(columns.device_id)
    .bind(columns.reason)
    .bind(message.created_at.as_millis())
    .bind(message.signature.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.map(|(id,)| id))
}

#[derive(Default)]
struct ControlColumns {
    kind: &'static str,
    participant_id: Option<String>,
    participant_code: Option<String>,
    protocol: Option<String>,
    device_id: Option<String>,
    reason: Option<String>,
}

pub(crate) fn stored_from_row<'r, R>(row: &'r R) -> Result<StoredEnvelope, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let json: String = row.try_get("envelope")?;
    Ok(StoredEnvelope {
        envelope: serde_json::from_str(&json)
            .map_err(|error| StoreError::Corrupt(format!("stored envelope: {error}")))?,
        device_id: row.try_get("device_id")?,
        received_at: Timestamp(row.try_get("received_at")?),
    })
}

/// The columns of an envelope row, as bound.
pub(crate) struct EnvelopeRow {
    pub(crate) record_id: String,
    pub(crate) rev: i64,
    pub(crate) hash: String,
    pub(crate) kind: &'static str,
    pub(crate) json: String,
}

impl EnvelopeRow {
    pub(crate) fn new(envelope: &Envelope) -> Result<Self, StoreError> {
        Ok(Self {
            record_id: envelope.record_id.to_string(),
            rev: i64::from(envelope.rev),
            hash: envelope.hash.to_hex(),
            kind: envelope.kind.as_str(),
            json: serde_json::to_string(envelope)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        })
    }
}

/// A code block from its row (`id, prefix, first_number, numbers`).
pub(crate) fn block_from_row<'r, R>(row: &'r R) -> Result<CodeBlock, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let number = |column: &str| -> Result<u32, StoreError> {
        let value: i64 = row.try_get(column)?;
        u32::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("code block {column} {value}")))
    };
    Ok(CodeBlock {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        first: number("first_number")?,
        count: number("numbers")?,
    })
}

/// One more than the highest number of the codes with `prefix` among `known` (others are
/// ignored): where a prefix's counter must start.
pub(crate) fn first_free_number(prefix: &str, known: &[Option<String>]) -> i64 {
    let highest = known
        .iter()
        .flatten()
        .filter_map(|code| attune_core::protocol::parse_code(code))
        .filter(|(p, _)| prefix.chars().eq(std::iter::once(*p)))
        .map(|(_, n)| i64::from(n))
        .max()
        .unwrap_or(0);
    highest + 1
}
