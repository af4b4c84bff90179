//! `attune-server team invite` and `team list`, and the invitation both the CLI and
//! `POST /api/team/invitations` make.

use attune_core::Timestamp;
use attune_core::team::{Invitation, MemberSummary, NewInvitation, Role, invitation_link_path};

use super::Member;
use crate::api::{now, random_hex, sha256_hex};
use crate::error::AppError;
use crate::store::{NewTeamInvitation, Store};

/// The longest name a member may have.
pub const MAX_NAME_CHARS: usize = 100;

/// A name trimmed, or a clear error when empty or too long.
pub fn clean_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::Malformed(format!(
            "name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

/// Makes an invitation valid for `valid_hours`, stores its hash and audits it.
pub async fn new_invitation(
    store: &dyn Store,
    by: Option<&Member>,
    request: NewInvitation,
    valid_hours: u32,
) -> Result<Invitation, AppError> {
    let name = clean_name(&request.name)?;
    let now = now();
    // 256 bits from the OS; only the SHA-256 is stored.
    let token = random_hex(32);
    let expires_at = Timestamp(now.as_millis() + i64::from(valid_hours) * 3_600_000);
    store
        .create_team_invitation(
            &NewTeamInvitation {
                token_hash: sha256_hex(&token),
                role: request.role,
                name: name.clone(),
                created_by: by.map(|member| member.id.clone()),
                expires_at,
            },
            now,
        )
        .await?;
    let detail = format!(
        "{name} invited as {}, valid {valid_hours} h",
        request.role.label()
    );
    let who = by.map(|member| (member.id.as_str(), member.name.as_str()));
    store
        .add_team_audit(now, who, "invitation_created", &detail)
        .await?;
    Ok(Invitation {
        link_path: invitation_link_path(&token),
        token,
        role: request.role,
        name,
        expires_at,
    })
}

/// What `team invite` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintedInvitation {
    /// `{url}/console/#invite=TOKEN`.
    pub link: String,
    pub invitation: Invitation,
}

/// `attune-server team invite --role ROLE [--name NAME] [--url URL] [--valid-hours H]`.
pub async fn invite(
    store: &dyn Store,
    role: Role,
    name: Option<String>,
    url: &str,
    valid_hours: u32,
) -> Result<PrintedInvitation, AppError> {
    if valid_hours == 0 {
        return Err(AppError::Malformed(
            "--valid-hours must be at least 1".into(),
        ));
    }
    let name = name.unwrap_or_else(|| role.label().to_owned());
    let invitation = new_invitation(store, None, NewInvitation { role, name }, valid_hours).await?;
    Ok(PrintedInvitation {
        link: format!(
            "{}{}",
            url.trim().trim_end_matches('/'),
            invitation.link_path
        ),
        invitation,
    })
}

impl std::fmt::Display for PrintedInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let invitation = &self.invitation;
        writeln!(f, "Invitation link:   {}", self.link)?;
        writeln!(
            f,
            "For:               {} ({})",
            invitation.name,
            invitation.role.label()
        )?;
        writeln!(
            f,
            "Expires:           {}",
            invitation.expires_at.to_rfc3339()
        )?;
        write!(
            f,
            "Single use: send it to them privately. They open it in a browser and register a \
             passkey."
        )
    }
}

/// One line of `team list`.
pub fn member_line(member: &MemberSummary) -> String {
    format!(
        "{}  {:<11} {:<30} passkeys: {}  last sign-in: {}",
        member.member_id,
        member.role.as_str(),
        member.name,
        member.passkeys,
        member
            .last_sign_in
            .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
    )
}

/// `attune-server team list`.
pub async fn list(store: &dyn Store) -> Result<Vec<MemberSummary>, AppError> {
    Ok(store.team_members().await?)
}
