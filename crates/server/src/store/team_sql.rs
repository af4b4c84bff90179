//! The SQL of [`super::TeamStore`], shared by both backends (as `sql.rs`).

/// Implements [`super::TeamStore`] for a type with a `pool` field of a sqlx pool.
macro_rules! impl_team_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::TeamStore for $store {
            async fn create_team_invitation(
                &self,
                invitation: &$crate::store::NewTeamInvitation,
                now: attune_core::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO team_invitations (token_hash, role, name, created_by, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&invitation.token_hash)
                .bind(invitation.role.as_str())
                .bind(&invitation.name)
                .bind(&invitation.created_by)
                .bind(now.as_millis())
                .bind(invitation.expires_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn team_invitation(
                &self,
                token_hash: &str,
                now: attune_core::Timestamp,
            ) -> Result<$crate::store::InvitationState, $crate::store::StoreError> {
                let row = sqlx::query_as::<_, (String, String, i64, Option<i64>)>(
                    "SELECT role, name, expires_at, used_at FROM team_invitations \
                     WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                $crate::store::team::invitation_state(row, now)
            }

            async fn register_team_member(
                &self,
                invitation_hash: &str,
                member: &$crate::store::NewTeamMember,
                passkey: &$crate::store::Passkey,
                now: attune_core::Timestamp,
            ) -> Result<$crate::store::RegisterOutcome, $crate::store::StoreError> {
                use $crate::store::{InvitationState, RegisterOutcome};
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, (String, String, i64, Option<i64>)>(
                    "SELECT role, name, expires_at, used_at FROM team_invitations \
                     WHERE token_hash = $1",
                )
                .bind(invitation_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let role = match $crate::store::team::invitation_state(row, now)? {
                    InvitationState::Usable { role, .. } => role,
                    other => return Ok(RegisterOutcome::Invitation(other)),
                };
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT credential_id FROM team_passkeys WHERE credential_id = $1",
                )
                .bind(&passkey.credential_id)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_some() {
                    return Ok(RegisterOutcome::CredentialTaken);
                }
                sqlx::query(
                    "INSERT INTO team_members (id, name, role, user_handle, created_at, \
                     last_sign_in) VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(&member.id)
                .bind(&member.name)
                .bind(role.as_str())
                .bind(&member.user_handle)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                // `used_at IS NULL` again: of two concurrent registrations only one wins.
                let claimed = sqlx::query(
                    "UPDATE team_invitations SET used_at = $2, member_id = $3 \
                     WHERE token_hash = $1 AND used_at IS NULL",
                )
                .bind(invitation_hash)
                .bind(now.as_millis())
                .bind(&member.id)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(RegisterOutcome::Invitation(InvitationState::Used));
                }
                sqlx::query(
                    "INSERT INTO team_passkeys (credential_id, member_id, algorithm, public_key, \
                     sign_count, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&passkey.credential_id)
                .bind(&member.id)
                .bind(passkey.algorithm)
                .bind(&passkey.public_key)
                .bind(i64::from(passkey.sign_count))
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let registered = self.team_member(&member.id).await?.ok_or_else(|| {
                    $crate::store::StoreError::Corrupt("a member vanished after insert".into())
                })?;
                Ok(RegisterOutcome::Registered(registered))
            }

            async fn team_member(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::TeamMember>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM team_members WHERE id = $1",
                    $crate::store::team::MEMBER_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| $crate::store::team::member_from_row(&row))
                    .transpose()
            }

            async fn team_members(
                &self,
            ) -> Result<Vec<attune_core::team::MemberSummary>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(&format!(
                    "SELECT {}, (SELECT COUNT(*) FROM team_passkeys p \
                     WHERE p.member_id = team_members.id) AS passkeys \
                     FROM team_members ORDER BY created_at, id",
                    $crate::store::team::MEMBER_COLUMNS
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let member = $crate::store::team::member_from_row(row)?;
                        Ok(attune_core::team::MemberSummary {
                            member_id: member.id,
                            name: member.name,
                            role: member.role,
                            created_at: member.created_at,
                            last_sign_in: member.last_sign_in,
                            passkeys: $crate::store::team::count_of(row.try_get("passkeys")?)?,
                        })
                    })
                    .collect()
            }

            async fn create_ceremony(
                &self,
                ceremony: &$crate::store::Ceremony,
                now: attune_core::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM team_ceremonies WHERE expires_at <= $1")
                    .bind(now.as_millis())
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO team_ceremonies (id, kind, challenge, origin, rp_id, \
                     invitation_hash, member_name, user_handle, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&ceremony.id)
                .bind(ceremony.kind.as_str())
                .bind(&ceremony.challenge)
                .bind(&ceremony.origin)
                .bind(&ceremony.rp_id)
                .bind(&ceremony.invitation_hash)
                .bind(&ceremony.member_name)
                .bind(&ceremony.user_handle)
                .bind(now.as_millis())
                .bind(ceremony.expires_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_ceremony(
                &self,
                id: &str,
                now: attune_core::Timestamp,
            ) -> Result<Option<$crate::store::Ceremony>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "DELETE FROM team_ceremonies WHERE id = $1 RETURNING {}",
                    $crate::store::team::CEREMONY_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let ceremony = row
                    .map(|row| $crate::store::team::ceremony_from_row(&row))
                    .transpose()?;
                Ok(ceremony.filter(|c| c.expires_at > now))
            }

            async fn passkey(
                &self,
                credential_id: &str,
            ) -> Result<Option<$crate::store::Passkey>, $crate::store::StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM team_passkeys WHERE credential_id = $1",
                    $crate::store::team::PASSKEY_COLUMNS
                ))
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| $crate::store::team::passkey_from_row(&row))
                    .transpose()
            }

            async fn record_sign_in(
                &self,
                credential_id: &str,
                sign_count: u32,
                now: attune_core::Timestamp,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let moved = sqlx::query(
                    "UPDATE team_passkeys SET sign_count = $2, last_used_at = $3 \
                     WHERE credential_id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
                )
                .bind(credential_id)
                .bind(i64::from(sign_count))
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE team_members SET last_sign_in = $2 WHERE id = \
                     (SELECT member_id FROM team_passkeys WHERE credential_id = $1)",
                )
                .bind(credential_id)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_team_session(
                &self,
                token_hash: &str,
                member_id: &str,
                expires_at: attune_core::Timestamp,
                now: attune_core::Timestamp,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM team_sessions WHERE expires_at <= $1")
                    .bind(now.as_millis())
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO team_sessions (token_hash, member_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(member_id)
                .bind(now.as_millis())
                .bind(expires_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn team_session(
                &self,
                token_hash: &str,
                now: attune_core::Timestamp,
            ) -> Result<
                Option<($crate::store::TeamMember, attune_core::Timestamp)>,
                $crate::store::StoreError,
            > {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT m.id, m.name, m.role, m.user_handle, m.created_at, m.last_sign_in, \
                     s.expires_at AS session_expires_at FROM team_sessions s \
                     JOIN team_members m ON m.id = s.member_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2",
                )
                .bind(token_hash)
                .bind(now.as_millis())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    let expires_at = attune_core::Timestamp(row.try_get("session_expires_at")?);
                    Ok(($crate::store::team::member_from_row(&row)?, expires_at))
                })
                .transpose()
            }

            async fn delete_team_session(
                &self,
                token_hash: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM team_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_team_audit(
                &self,
                at: attune_core::Timestamp,
                member: Option<(&str, &str)>,
                action: &str,
                detail: &str,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO team_audit (at, member_id, member_name, action, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(at.as_millis())
                .bind(member.map(|(id, _)| id))
                .bind(member.map(|(_, name)| name))
                .bind(action)
                .bind(detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn team_audit(
                &self,
                limit: u32,
            ) -> Result<Vec<attune_core::team::AuditEntry>, $crate::store::StoreError> {
                let rows = sqlx::query_as::<_, (i64, Option<String>, String, String)>(
                    "SELECT at, member_name, action, detail FROM team_audit \
                     ORDER BY id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(at, member, action, detail)| attune_core::team::AuditEntry {
                        at: attune_core::Timestamp(at),
                        member,
                        action,
                        detail,
                    })
                    .collect())
            }
        }
    };
}

pub(crate) use impl_team_store;
