//! The study team: members of the researcher console, their roles, and the JSON bodies of
//! `/api/team` (shared by the server and the console).
//!
//! Members sign in with passkeys (WebAuthn). The ceremony bodies carry WebAuthn's own JSON:
//! [`CeremonyOptions::public_key`] is what `PublicKeyCredential.parseCreationOptionsFromJSON`
//! (registration) or `parseRequestOptionsFromJSON` (sign-in) takes, with base64url strings for
//! the challenge, `user.id` and credential ids; [`CeremonyFinish::credential`] is what
//! `PublicKeyCredential.toJSON()` returns.
//!
//! - `POST /api/team/register/start` [`RegisterStart`] -> [`CeremonyOptions`]
//! - `POST /api/team/register/finish` [`CeremonyFinish`] -> [`Me`] and the session cookie
//! - `POST /api/team/login/start` `{}` -> [`CeremonyOptions`]
//! - `POST /api/team/login/finish` [`CeremonyFinish`] -> [`Me`] and the session cookie
//! - `POST /api/team/logout` -> 204; `GET /api/team/me` -> [`Me`]
//! - `POST /api/team/invitations` (admin) [`NewInvitation`] -> [`Invitation`]
//! - `GET /api/team/members` (admin) -> `[`[`MemberSummary`]`]`
//! - `GET /api/team/audit` (admin) -> `[`[`AuditEntry`]`]`, newest first

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What a study team member may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Devices, enrolment, withdrawals, the protocol and the team.
    Admin,
    /// Review, safeguarding, conflicts and export.
    Researcher,
    /// The recordings assigned to them, only.
    Coder,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Researcher, Role::Coder];

    /// The role on the wire and in the database: `admin`, `researcher`, `coder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Researcher => "researcher",
            Role::Coder => "coder",
        }
    }

    /// The role named `text` (as [`Role::as_str`] writes it, any case, trimmed).
    pub fn parse(text: &str) -> Option<Role> {
        let text = text.trim();
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text))
    }

    /// The role as people read it.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Study admin",
            Role::Researcher => "Researcher",
            Role::Coder => "Coder",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed-in member (`GET /api/team/me`, and the answer of both ceremonies' finish).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The member's id (UUIDv7).
    pub member_id: String,
    /// The name they were invited under.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// When this session ends (they sign in again after).
    pub expires_at: Timestamp,
}

/// `POST /api/team/register/start`: the invitation token (from the link's fragment) and the
/// name the new member gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterStart {
    /// The invitation token.
    pub token: String,
    /// The member's name, as the team will see it (1 to 100 characters).
    pub name: String,
}

/// The start of a WebAuthn ceremony: its id, sent back with the result, and the options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CeremonyOptions {
    /// Names this ceremony in the finish request (single use, 5 minutes).
    pub ceremony_id: String,
    /// `PublicKeyCredentialCreationOptionsJSON` (registration) or
    /// `PublicKeyCredentialRequestOptionsJSON` (sign-in).
    pub public_key: serde_json::Value,
}

/// The end of a WebAuthn ceremony: the ceremony's id and `PublicKeyCredential.toJSON()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CeremonyFinish {
    /// [`CeremonyOptions::ceremony_id`].
    pub ceremony_id: String,
    /// `RegistrationResponseJSON` or `AuthenticationResponseJSON`.
    pub credential: serde_json::Value,
}

/// `POST /api/team/invitations` (admin): who to invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    /// The role the new member will have.
    pub role: Role,
    /// Who the invitation is for (the member may give another name when registering).
    pub name: String,
}

/// An invitation: the token is shown once, only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The secret token (single use).
    pub token: String,
    /// [`invitation_link_path`] of the token: the token is in the fragment, so it never
    /// reaches a server log.
    pub link_path: String,
    /// The role it gives.
    pub role: Role,
    /// Who it is for.
    pub name: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A member as admins see them (`GET /api/team/members`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSummary {
    /// The member's id.
    pub member_id: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// When they registered.
    pub created_at: Timestamp,
    /// When they last signed in, if ever (registering signs in).
    pub last_sign_in: Option<Timestamp>,
    /// How many passkeys they have.
    pub passkeys: u32,
}

/// One line of the team's audit log (`GET /api/team/audit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: Timestamp,
    /// The name of the member who did it; `None` for the CLI or someone not signed in.
    pub member: Option<String>,
    /// What happened, e.g. `invitation_created`, `member_registered`, `signed_in`,
    /// `signed_out`, `sign_in_refused`.
    pub action: String,
    /// Details for people (never a secret).
    pub detail: String,
}

/// Where an invitation link points, relative to the server: `/console/#invite=TOKEN`.
pub fn invitation_link_path(token: &str) -> String {
    format!("/console/#invite={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_keep_their_names_on_the_wire() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        assert_eq!(Role::parse(" Admin "), Some(Role::Admin));
        assert_eq!(Role::parse("owner"), None);
        assert_eq!(Role::Admin.label(), "Study admin");
        assert_eq!(Role::Coder.label(), "Coder");
        let me: Me = serde_json::from_str(
            r#"{"member_id":"m","name":"Ana","role":"researcher","expires_at":5}"#,
        )
        .unwrap();
        assert_eq!(me.role, Role::Researcher);
        assert_eq!(invitation_link_path("abc"), "/console/#invite=abc");
    }
}
