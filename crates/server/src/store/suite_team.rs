//! The study team's part of the shared store suite (see [`super::suite`]; its functions are
//! re-exported there so `store_conformance_tests!` reaches them).

use attune_core::Timestamp;
use attune_core::team::Role;

use super::{
    Ceremony, CeremonyKind, InvitationState, NewTeamInvitation, NewTeamMember, Passkey,
    RegisterOutcome, Store, TeamMember,
};

const NOW: Timestamp = Timestamp(1_750_000_000_000);

fn at(offset: i64) -> Timestamp {
    Timestamp(NOW.0 + offset)
}

fn invitation(token_hash: &str, role: Role, expires_at: Timestamp) -> NewTeamInvitation {
    NewTeamInvitation {
        token_hash: token_hash.into(),
        role,
        name: format!("Invited {role}"),
        created_by: None,
        expires_at,
    }
}

fn passkey(credential_id: &str, member_id: &str, sign_count: u32) -> Passkey {
    Passkey {
        credential_id: credential_id.into(),
        member_id: member_id.into(),
        algorithm: -7,
        public_key: format!("key-of-{credential_id}"),
        sign_count,
    }
}

/// Registers a member with `role` through a fresh invitation and one passkey.
pub async fn team_member(store: &dyn Store, id: &str, role: Role, sign_count: u32) -> TeamMember {
    let hash = format!("invitation-of-{id}");
    store
        .create_team_invitation(&invitation(&hash, role, at(1000)), NOW)
        .await
        .unwrap();
    let member = NewTeamMember {
        id: id.into(),
        name: format!("Member {id}"),
        user_handle: format!("handle-{id}"),
    };
    let outcome = store
        .register_team_member(
            &hash,
            &member,
            &passkey(&format!("cred-{id}"), id, sign_count),
            NOW,
        )
        .await
        .unwrap();
    let RegisterOutcome::Registered(registered) = outcome else {
        panic!("registered: {outcome:?}");
    };
    registered
}

pub async fn a_team_invitation_registers_one_member_once_and_not_after_it_expires(
    store: &dyn Store,
) {
    store
        .create_team_invitation(&invitation("fresh", Role::Coder, at(1000)), NOW)
        .await
        .unwrap();
    store
        .create_team_invitation(&invitation("stale", Role::Admin, at(10)), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.team_invitation("fresh", NOW).await.unwrap(),
        InvitationState::Usable {
            role: Role::Coder,
            name: "Invited coder".into()
        }
    );
    assert_eq!(
        store.team_invitation("stale", at(10)).await.unwrap(),
        InvitationState::Expired
    );
    assert_eq!(
        store.team_invitation("nope", NOW).await.unwrap(),
        InvitationState::Unknown
    );
    let member = |id: &str| NewTeamMember {
        id: id.into(),
        name: "Cai".into(),
        user_handle: format!("handle-{id}"),
    };
    let expired = store
        .register_team_member("stale", &member("m0"), &passkey("c0", "m0", 0), at(10))
        .await
        .unwrap();
    assert_eq!(
        expired,
        RegisterOutcome::Invitation(InvitationState::Expired)
    );
    let RegisterOutcome::Registered(cai) = store
        .register_team_member("fresh", &member("m1"), &passkey("c1", "m1", 3), at(1))
        .await
        .unwrap()
    else {
        panic!("registered");
    };
    assert_eq!(
        (cai.id.as_str(), cai.role, cai.last_sign_in),
        ("m1", Role::Coder, Some(at(1)))
    );
    assert_eq!(
        store.team_invitation("fresh", at(2)).await.unwrap(),
        InvitationState::Used
    );
    let again = store
        .register_team_member("fresh", &member("m2"), &passkey("c2", "m2", 0), at(2))
        .await
        .unwrap();
    assert_eq!(again, RegisterOutcome::Invitation(InvitationState::Used));
    assert_eq!(store.team_member("m2").await.unwrap(), None);
    // A credential id already registered leaves a new invitation unspent.
    store
        .create_team_invitation(&invitation("third", Role::Researcher, at(1000)), NOW)
        .await
        .unwrap();
    let taken = store
        .register_team_member("third", &member("m3"), &passkey("c1", "m3", 0), at(3))
        .await
        .unwrap();
    assert_eq!(taken, RegisterOutcome::CredentialTaken);
    assert!(matches!(
        store.team_invitation("third", at(3)).await.unwrap(),
        InvitationState::Usable { .. }
    ));
    let members = store.team_members().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].passkeys, members[0].role), (1, Role::Coder));
    assert_eq!(
        store.passkey("c1").await.unwrap(),
        Some(passkey("c1", "m1", 3))
    );
}

pub async fn a_ceremony_is_taken_once_and_not_after_it_expires(store: &dyn Store) {
    let ceremony = |id: &str, expires_at| Ceremony {
        id: id.into(),
        kind: CeremonyKind::Register,
        challenge: format!("challenge-{id}"),
        origin: "http://localhost:8080".into(),
        rp_id: "localhost".into(),
        invitation_hash: Some("inv".into()),
        member_name: Some("Ana".into()),
        user_handle: Some("handle".into()),
        expires_at,
    };
    store
        .create_ceremony(&ceremony("a", at(100)), NOW)
        .await
        .unwrap();
    store
        .create_ceremony(&ceremony("b", at(100)), NOW)
        .await
        .unwrap();
    let login = Ceremony {
        kind: CeremonyKind::Login,
        invitation_hash: None,
        member_name: None,
        user_handle: None,
        ..ceremony("c", at(100))
    };
    store.create_ceremony(&login, NOW).await.unwrap();
    assert_eq!(
        store.take_ceremony("a", at(1)).await.unwrap(),
        Some(ceremony("a", at(100)))
    );
    assert_eq!(store.take_ceremony("a", at(1)).await.unwrap(), None);
    assert_eq!(store.take_ceremony("b", at(100)).await.unwrap(), None);
    assert_eq!(store.take_ceremony("c", at(1)).await.unwrap(), Some(login));
    assert_eq!(store.take_ceremony("never", at(1)).await.unwrap(), None);
}

pub async fn a_sign_in_moves_the_counter_forward_only(store: &dyn Store) {
    let member = team_member(store, "m1", Role::Admin, 5).await;
    assert!(!store.record_sign_in("cred-m1", 5, at(1)).await.unwrap());
    assert!(!store.record_sign_in("cred-m1", 4, at(1)).await.unwrap());
    assert!(!store.record_sign_in("cred-m1", 0, at(1)).await.unwrap());
    assert!(store.record_sign_in("cred-m1", 6, at(2)).await.unwrap());
    assert_eq!(
        store.passkey("cred-m1").await.unwrap().unwrap().sign_count,
        6
    );
    let signed_in = store.team_member(&member.id).await.unwrap().unwrap();
    assert_eq!(signed_in.last_sign_in, Some(at(2)));
    assert!(!store.record_sign_in("unknown", 9, at(2)).await.unwrap());
    // An authenticator without a counter (always 0) signs in every time.
    team_member(store, "m2", Role::Coder, 0).await;
    assert!(store.record_sign_in("cred-m2", 0, at(3)).await.unwrap());
    assert!(store.record_sign_in("cred-m2", 0, at(4)).await.unwrap());
}

pub async fn a_team_session_ends_when_it_expires_or_is_deleted(store: &dyn Store) {
    let member = team_member(store, "m1", Role::Researcher, 0).await;
    store
        .create_team_session("s1", "m1", at(100), NOW)
        .await
        .unwrap();
    store
        .create_team_session("s2", "m1", at(100), NOW)
        .await
        .unwrap();
    let (found, expires_at) = store.team_session("s1", at(99)).await.unwrap().unwrap();
    assert_eq!((found, expires_at), (member, at(100)));
    assert_eq!(store.team_session("s1", at(100)).await.unwrap(), None);
    assert_eq!(store.team_session("unknown", NOW).await.unwrap(), None);
    assert!(store.delete_team_session("s2").await.unwrap());
    assert!(!store.delete_team_session("s2").await.unwrap());
    assert_eq!(store.team_session("s2", NOW).await.unwrap(), None);
}

pub async fn the_team_audit_log_is_read_newest_first(store: &dyn Store) {
    store
        .add_team_audit(
            NOW,
            None,
            "invitation_created",
            "Ana invited as Study admin",
        )
        .await
        .unwrap();
    store
        .add_team_audit(at(1), Some(("m1", "Ana")), "signed_in", "signed in")
        .await
        .unwrap();
    store
        .add_team_audit(at(1), None, "sign_in_refused", "bad signature")
        .await
        .unwrap();
    let log = store.team_audit(10).await.unwrap();
    let actions: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|entry| (entry.action.as_str(), entry.member.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("sign_in_refused", None),
            ("signed_in", Some("Ana")),
            ("invitation_created", None)
        ]
    );
    assert_eq!(log[2].at, NOW);
    assert_eq!(store.team_audit(1).await.unwrap().len(), 1);
}

pub async fn a_team_record_is_stored_once_and_listed_in_the_order_stored(store: &dyn Store) {
    use attune_core::TeamRecordId;
    use attune_core::review::team_records::NewTeamRecord;

    use super::TeamRecordOutcome;

    team_member(store, "m1", Role::Researcher, 0).await;
    let record = |id: TeamRecordId, sealed: &str| NewTeamRecord {
        id,
        sealed: sealed.into(),
        signature: "sig".into(),
    };
    let first = record(TeamRecordId::new(NOW), "c2VhbGVk");
    let second = record(TeamRecordId::new(NOW), "b3RoZXI=");
    let TeamRecordOutcome::Added(stored) =
        store.add_team_record(&first, "m1", at(1)).await.unwrap()
    else {
        panic!("added");
    };
    assert_eq!(
        (stored.id, stored.member_id.as_str(), stored.created_at),
        (first.id, "m1", at(1))
    );
    // The same record again (its answer was lost): nothing changes, its first time stays.
    assert_eq!(
        store.add_team_record(&first, "m1", at(5)).await.unwrap(),
        TeamRecordOutcome::AlreadyStored(stored.clone())
    );
    // Other bytes under the same id are refused.
    let other = record(first.id, "b3RoZXI=");
    assert_eq!(
        store.add_team_record(&other, "m1", at(6)).await.unwrap(),
        TeamRecordOutcome::IdTaken
    );
    assert!(matches!(
        store.add_team_record(&second, "m1", at(2)).await.unwrap(),
        TeamRecordOutcome::Added(_)
    ));
    let all = store.team_records().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert_eq!(all[0], stored);
}
