//! `POST /api/console/team-records` over real HTTP: who may post, the cross-site guard, the
//! signature check with the study signing key, idempotent repeats, and the record back in the
//! snapshot, still sealed.

use attune_core::review::Snapshot;
use attune_core::review::team_records::{
    NewTeamRecord, TEAM_RECORDS_PATH, TeamAction, TeamRecordBody, seal_and_sign, verify_and_open,
};
use attune_core::team::Role;
use attune_core::{RecordId, StudyKeyPair, StudySigningKey, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::{Alg, Authenticator};
use crate::console::Console;

const NOTE: &str = "Marker-R9 called the family's social worker";

/// A console whose study has its keys, as `study init` leaves it.
async fn study() -> (Console, StudyKeyPair, StudySigningKey) {
    let console = Console::start().await;
    let study = StudyKeyPair::generate();
    let signing = StudySigningKey::generate().unwrap();
    console
        .store
        .set_study_public_key(&study.public_key().to_text(), Timestamp(0))
        .await
        .unwrap();
    assert!(
        console
            .store
            .set_study_signing_key(
                &signing.public_key().to_text(),
                &signing.sign_study_key(&study.public_key()),
            )
            .await
            .unwrap()
    );
    (console, study, signing)
}

fn acknowledgement(study: &StudyKeyPair, signing: &StudySigningKey) -> NewTeamRecord {
    let body = TeamRecordBody {
        action: TeamAction::SafeguardingAcknowledgement {
            record_id: RecordId::new(Timestamp(1)),
            rev: 1,
        },
        note: NOTE.into(),
        by: "Ana Researcher".into(),
        at: attune_server::api::now(),
    };
    seal_and_sign(&body, &study.public_key(), signing).unwrap()
}

fn json_of(record: &NewTeamRecord) -> Option<Value> {
    Some(serde_json::to_value(record).unwrap())
}

#[tokio::test]
async fn only_signed_in_reviewers_from_the_consoles_page_may_post_a_team_record() {
    let (console, study, signing) = study().await;
    let record = json_of(&acknowledgement(&study, &signing));
    let signed_out = console
        .call("POST", TEAM_RECORDS_PATH, record.clone(), None)
        .await;
    assert_eq!(
        (signed_out.status, signed_out.code()),
        (StatusCode::UNAUTHORIZED, "sign_in_required")
    );
    let (coder, _) = console
        .member(Role::Coder, &mut Authenticator::new(Alg::Es256))
        .await;
    let refused = console
        .call("POST", TEAM_RECORDS_PATH, record.clone(), Some(&coder))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (researcher, _) = console
        .member(Role::Researcher, &mut Authenticator::new(Alg::EdDsa))
        .await;
    for origin in [None, Some("https://evil.example")] {
        let cross = console
            .call_as(
                "POST",
                TEAM_RECORDS_PATH,
                record.clone(),
                Some(&researcher),
                origin,
                &[],
            )
            .await;
        assert_eq!(
            (cross.status, cross.code()),
            (StatusCode::FORBIDDEN, "cross_site_refused"),
            "{origin:?}"
        );
    }
    assert!(console.store.team_records().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_team_record_is_checked_stored_once_and_handed_back_sealed_in_the_snapshot() {
    let (console, study, signing) = study().await;
    let (researcher, me) = console
        .member(Role::Researcher, &mut Authenticator::new(Alg::Es256))
        .await;
    let post = |record: Option<Value>| {
        let session = researcher.clone();
        let console = &console;
        async move {
            console
                .call("POST", TEAM_RECORDS_PATH, record, Some(&session))
                .await
        }
    };
    // Signed with another key (not this study's): refused, nothing stored.
    let forged = acknowledgement(&study, &StudySigningKey::generate().unwrap());
    let bad = post(json_of(&forged)).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "team_record_signature_invalid"),
        "{}",
        bad.body
    );
    let garbled = post(Some(json!({"id": "nope", "sealed": "", "signature": ""}))).await;
    assert_eq!(
        (garbled.status, garbled.code()),
        (StatusCode::BAD_REQUEST, "malformed")
    );
    let mut huge = acknowledgement(&study, &signing);
    huge.sealed = "A".repeat(70 * 1024);
    let too_large = post(json_of(&huge)).await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );

    // A good one is stored (201), the same again is harmless (200), other bytes under its id
    // are refused (409).
    let record = acknowledgement(&study, &signing);
    let added = post(json_of(&record)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["id"], record.id.to_string());
    let again = post(json_of(&record)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["created_at"], added.body["created_at"]);
    let mut other = acknowledgement(&study, &signing);
    other.id = record.id;
    let taken = post(json_of(&other)).await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::BAD_REQUEST, "team_record_signature_invalid"),
        "re-pointed onto another id, the signature no longer verifies"
    );
    let resigned = NewTeamRecord {
        signature: signing.sign_team_record(&record.id, &{
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(&other.sealed)
                .unwrap()
        }),
        ..other
    };
    let taken = post(json_of(&resigned)).await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "team_record_id_taken")
    );

    // The snapshot hands it back as posted, with who posted it; it opens with the study keys.
    let answer = console
        .call("GET", "/api/console/snapshot", None, Some(&researcher))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.body.to_string().contains("Marker-R9"));
    let snapshot: Snapshot = serde_json::from_value(answer.body).unwrap();
    assert_eq!(snapshot.team_records.len(), 1);
    let stored = &snapshot.team_records[0];
    assert_eq!(
        (stored.id, &stored.member_id, &stored.sealed),
        (record.id, &me.member_id, &record.sealed)
    );
    let body = verify_and_open(stored, &signing.public_key(), study.private_key()).unwrap();
    assert_eq!(body.note, NOTE);

    // Audited once, by whom, without its contents.
    let (admin, _) = console
        .member(Role::Admin, &mut Authenticator::new(Alg::Es256))
        .await;
    let actions = console.audit_actions(&admin).await;
    let added: Vec<&(String, String)> = actions
        .iter()
        .filter(|(action, _)| action == "team_record_added")
        .collect();
    assert_eq!(added.len(), 1, "{actions:?}");
    assert!(added[0].1.contains(&record.id.to_string()));
    assert!(actions.iter().all(|(_, detail)| !detail.contains("Marker")));
}
