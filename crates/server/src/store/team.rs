//! The study team's tables (`0008_team.sql`) behind [`TeamStore`], a supertrait of
//! [`super::Store`] (as [`super::UploadStore`]), so every backend has it and `Arc<dyn Store>`
//! reaches it. The SQL is shared by both backends through `impl_team_store!` (`team_sql.rs`).

use async_trait::async_trait;
use attune_core::Timestamp;
use attune_core::team::{AuditEntry, MemberSummary, Role};

use super::StoreError;

/// A registered study team member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamMember {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The WebAuthn user handle (base64url), returned by a discoverable passkey.
    pub user_handle: String,
    pub created_at: Timestamp,
    pub last_sign_in: Option<Timestamp>,
}

/// An invitation to record (only the token's SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTeamInvitation {
    pub token_hash: String,
    pub role: Role,
    pub name: String,
    /// The admin who made it; `None` from the CLI.
    pub created_by: Option<String>,
    pub expires_at: Timestamp,
}

/// What an invitation token is worth now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvitationState {
    /// Unused and unexpired: its role and name.
    Usable {
        role: Role,
        name: String,
    },
    Unknown,
    Used,
    Expired,
}

/// Whether a ceremony registers a passkey or signs in with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    Login,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Login => "login",
        }
    }
}

/// A WebAuthn ceremony between its start and its finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceremony {
    pub id: String,
    pub kind: CeremonyKind,
    /// The challenge as sent (base64url).
    pub challenge: String,
    /// The origin and RP id the ceremony was started for.
    pub origin: String,
    pub rp_id: String,
    /// Registration only: the invitation, the member's name and the user handle offered.
    pub invitation_hash: Option<String>,
    pub member_name: Option<String>,
    pub user_handle: Option<String>,
    pub expires_at: Timestamp,
}

/// A member's passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passkey {
    /// base64url of the credential id.
    pub credential_id: String,
    pub member_id: String,
    /// COSE algorithm: -7 (ES256) or -8 (EdDSA).
    pub algorithm: i64,
    /// base64url: the SEC1 point (ES256) or the 32-byte key (EdDSA).
    pub public_key: String,
    pub sign_count: u32,
}

/// A new member, registered with their first passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTeamMember {
    pub id: String,
    pub name: String,
    pub user_handle: String,
}

/// What [`TeamStore::register_team_member`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    Registered(TeamMember),
    /// The invitation was spent meanwhile (or never existed / expired): nothing was stored.
    Invitation(InvitationState),
    /// Another member already has this credential id: nothing was stored.
    CredentialTaken,
}

/// The study team's tables.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// Records an invitation.
    async fn create_team_invitation(
        &self,
        invitation: &NewTeamInvitation,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// What the invitation with this token hash is worth at `now` (nothing is spent).
    async fn team_invitation(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<InvitationState, StoreError>;
    /// Spends the invitation and stores the member (with its role) and passkey, in one
    /// transaction: of two registrations with one invitation only one wins.
    async fn register_team_member(
        &self,
        invitation_hash: &str,
        member: &NewTeamMember,
        passkey: &Passkey,
        now: Timestamp,
    ) -> Result<RegisterOutcome, StoreError>;
    /// The member with this id.
    async fn team_member(&self, id: &str) -> Result<Option<TeamMember>, StoreError>;
    /// Every member with their passkey count, oldest first.
    async fn team_members(&self) -> Result<Vec<MemberSummary>, StoreError>;
    /// Records a ceremony (and forgets expired ones).
    async fn create_ceremony(&self, ceremony: &Ceremony, now: Timestamp) -> Result<(), StoreError>;
    /// Deletes the ceremony and returns it if it had not expired: a ceremony is good once.
    async fn take_ceremony(&self, id: &str, now: Timestamp)
    -> Result<Option<Ceremony>, StoreError>;
    /// The passkey with this credential id.
    async fn passkey(&self, credential_id: &str) -> Result<Option<Passkey>, StoreError>;
    /// Records a sign-in with the passkey: its counter becomes `sign_count`, refused (false,
    /// nothing changed) when that does not move forward (equal non-zero or lower counters
    /// suggest a cloned authenticator; both zero means the authenticator keeps no counter).
    async fn record_sign_in(
        &self,
        credential_id: &str,
        sign_count: u32,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Records a session (and forgets expired ones).
    async fn create_team_session(
        &self,
        token_hash: &str,
        member_id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The member of an unexpired session, with its expiry.
    async fn team_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(TeamMember, Timestamp)>, StoreError>;
    /// Ends a session; false if there was none.
    async fn delete_team_session(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Appends to the audit log; `member` is `(id, name)` of who did it.
    async fn add_team_audit(
        &self,
        at: Timestamp,
        member: Option<(&str, &str)>,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    /// The latest `limit` audit entries, newest first.
    async fn team_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}

pub(crate) fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("team role {text:?}")))
}

pub(crate) fn count_of(count: i64) -> Result<u32, StoreError> {
    u32::try_from(count).map_err(|_| StoreError::Corrupt(format!("count {count}")))
}

pub(crate) fn member_from_row<'r, R>(row: &'r R) -> Result<TeamMember, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TeamMember {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role_of(&row.try_get::<String, _>("role")?)?,
        user_handle: row.try_get("user_handle")?,
        created_at: Timestamp(row.try_get("created_at")?),
        last_sign_in: row
            .try_get::<Option<i64>, _>("last_sign_in")?
            .map(Timestamp),
    })
}

pub(crate) fn ceremony_from_row<'r, R>(row: &'r R) -> Result<Ceremony, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok(Ceremony {
        id: row.try_get("id")?,
        kind: match kind.as_str() {
            "register" => CeremonyKind::Register,
            "login" => CeremonyKind::Login,
            other => return Err(StoreError::Corrupt(format!("ceremony kind {other:?}"))),
        },
        challenge: row.try_get("challenge")?,
        origin: row.try_get("origin")?,
        rp_id: row.try_get("rp_id")?,
        invitation_hash: row.try_get("invitation_hash")?,
        member_name: row.try_get("member_name")?,
        user_handle: row.try_get("user_handle")?,
        expires_at: Timestamp(row.try_get("expires_at")?),
    })
}

pub(crate) fn passkey_from_row<'r, R>(row: &'r R) -> Result<Passkey, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Passkey {
        credential_id: row.try_get("credential_id")?,
        member_id: row.try_get("member_id")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        sign_count: count_of(row.try_get("sign_count")?)?,
    })
}

pub(crate) fn invitation_state(
    row: Option<(String, String, i64, Option<i64>)>,
    now: Timestamp,
) -> Result<InvitationState, StoreError> {
    Ok(match row {
        None => InvitationState::Unknown,
        Some((_, _, _, Some(_))) => InvitationState::Used,
        Some((_, _, expires_at, None)) if expires_at <= now.as_millis() => InvitationState::Expired,
        Some((role, name, _, None)) => InvitationState::Usable {
            role: role_of(&role)?,
            name,
        },
    })
}

pub(crate) const MEMBER_COLUMNS: &str = "id, name, role, user_handle, created_at, last_sign_in";
pub(crate) const CEREMONY_COLUMNS: &str = "id, kind, challenge, origin, rp_id, invitation_hash, \
     member_name, user_handle, expires_at";
pub(crate) const PASSKEY_COLUMNS: &str =
    "credential_id, member_id, algorithm, public_key, sign_count";
