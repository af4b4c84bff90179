//! Study instructions signed in the console and enrolment codes made there, over real HTTP:
//! admins only, signatures checked with the study's signing key, the CLI's rules, and what
//! the tablets then see.

use attune_core::review::enrolment::ENROLMENT_CODES_PATH;
use attune_core::review::instructions::{INSTRUCTIONS_PATH, NEXT_SEQ_PATH, SignedInstruction};
use attune_core::sync::ControlKind;
use attune_core::sync::enrol::{EnrolDetails, enrol};
use attune_core::team::Role;
use attune_core::{
    Authorship, DeviceId, DeviceKey, Kind, Links, ParticipantId, ProfileId, RecordId, Revision,
    StudyKeyPair, StudySigningKey, Timestamp, seal_envelope,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::{Alg, Authenticator};
use crate::console::{Answer, Console};
use crate::support::{EnrolHttp, init_study};

/// A console server with a study, an admin and a researcher signed in.
struct Study {
    console: Console,
    study: StudyKeyPair,
    signing: StudySigningKey,
    admin: String,
    researcher: String,
}

impl Study {
    async fn start() -> Self {
        let console = Console::start().await;
        let study = StudyKeyPair::generate();
        let signing = StudySigningKey::generate().expect("signing key");
        init_study(console.store.as_ref(), &study, &signing).await;
        let (admin, _) = console
            .member(Role::Admin, &mut Authenticator::new(Alg::Es256))
            .await;
        let (researcher, _) = console
            .member(Role::Researcher, &mut Authenticator::new(Alg::Es256))
            .await;
        Self {
            console,
            study,
            signing,
            admin,
            researcher,
        }
    }

    /// An enrolment code made by the admin in the console.
    async fn code(&self, fieldworker: &str) -> String {
        let answer = self
            .console
            .call(
                "POST",
                ENROLMENT_CODES_PATH,
                Some(json!({"fieldworker": fieldworker, "valid_hours": 24})),
                Some(&self.admin),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["code"].as_str().expect("code").to_owned()
    }

    /// Enrols a tablet with `code` as the app does: its id, key and token, or the refusal.
    async fn enrol(&self, code: &str) -> Result<(DeviceId, DeviceKey, String), String> {
        let key = DeviceKey::generate().expect("device key");
        let id = DeviceId::new(Timestamp(5));
        enrol(
            &EnrolHttp::new(self.console.addr),
            EnrolDetails {
                code,
                fingerprint: &self.signing.public_key().fingerprint(),
                device_key: &key,
                device_id: Some(id),
                device_name: "Tablet 1",
            },
        )
        .await
        .map(|enrolled| (id, key, enrolled.response.device_token))
        .map_err(|error| error.to_string())
    }

    /// The next instruction number, as an admin reads it.
    async fn next_seq(&self) -> u64 {
        let answer = self
            .console
            .call("GET", NEXT_SEQ_PATH, None, Some(&self.admin))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["seq"].as_u64().expect("seq")
    }

    /// Signs `kind` with `key` as instruction `seq`, made now, and posts it as the admin.
    async fn instruct(&self, key: &StudySigningKey, seq: u64, kind: ControlKind) -> Answer {
        let signed =
            SignedInstruction::sign(key, seq, kind, attune_server::api::now()).expect("signed");
        self.post(&signed).await
    }

    async fn post(&self, signed: &SignedInstruction) -> Answer {
        let body = serde_json::to_value(signed).expect("json");
        self.console
            .call("POST", INSTRUCTIONS_PATH, Some(body), Some(&self.admin))
            .await
    }

    /// Pushes a participant record with `code` from the tablet; its id.
    async fn push_participant(&self, device: (DeviceId, &DeviceKey, &str), code: &str) -> Answer {
        let (id, key, token) = device;
        let participant = ParticipantId::new(Timestamp(7));
        let revision = Revision::first(
            RecordId::from_uuid(*participant.as_uuid()),
            Kind::Participant,
            Links {
                participant: Some(participant),
                ..Links::default()
            },
            json!({"code": code, "group": "carers", "links": [], "status": "active"})
                .to_string()
                .into_bytes(),
            Authorship {
                device: id,
                author: ProfileId::new(Timestamp(7)),
                time: Timestamp(1_750_000_000_000),
            },
        );
        let envelope = seal_envelope(&revision, Some(code.into()), &self.study.public_key(), key)
            .expect("sealed");
        let response = reqwest::Client::new()
            .post(format!("http://{}/api/push", self.console.addr))
            .bearer_auth(token)
            .json(&json!({ "envelopes": [envelope] }))
            .send()
            .await
            .expect("push");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body,
        }
    }
}

fn revocation(device_id: DeviceId, reason: &str) -> ControlKind {
    ControlKind::Revocation {
        device_id,
        reason: reason.into(),
    }
}

#[tokio::test]
async fn only_signed_in_admins_reach_instructions_and_enrolment_codes() {
    let s = Study::start().await;
    let signed = SignedInstruction::sign(
        &s.signing,
        1,
        revocation(DeviceId::new(Timestamp(1)), "lost"),
        attune_server::api::now(),
    )
    .expect("signed");
    let calls = [
        ("GET", NEXT_SEQ_PATH, None),
        (
            "POST",
            INSTRUCTIONS_PATH,
            Some(serde_json::to_value(&signed).expect("json")),
        ),
        (
            "POST",
            ENROLMENT_CODES_PATH,
            Some(json!({"fieldworker": "Ana", "valid_hours": 24})),
        ),
    ];
    for (method, path, body) in calls {
        let answer = s
            .console
            .call(method, path, body.clone(), Some(&s.researcher))
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(answer.code(), "forbidden", "{}", answer.body);
        let answer = s.console.call(method, path, body.clone(), None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(answer.code(), "sign_in_required");
    }
    // The same-origin guard holds for the admin too.
    let foreign = s
        .console
        .call_as(
            "POST",
            ENROLMENT_CODES_PATH,
            Some(json!({"fieldworker": "Ana", "valid_hours": 24})),
            Some(&s.admin),
            Some("https://evil.example"),
            &[],
        )
        .await;
    assert_eq!(foreign.code(), "cross_site_refused");
    assert!(s.console.store.list_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_enrolment_code_from_the_console_enrols_once_and_stays_out_of_the_audit_log() {
    let s = Study::start().await;
    for bad in [
        json!({"fieldworker": "  ", "valid_hours": 24}),
        json!({"fieldworker": "Ana", "valid_hours": 0}),
        json!({"fieldworker": "Ana", "valid_hours": 169}),
        json!({"fieldworker": "a".repeat(101), "valid_hours": 1}),
    ] {
        let answer = s
            .console
            .call(
                "POST",
                ENROLMENT_CODES_PATH,
                Some(bad.clone()),
                Some(&s.admin),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let code = s.code("  Bea Fieldworker ").await;
    assert_eq!(code.len(), 14, "{code}");
    let (id, _, _) = s.enrol(&code).await.expect("enrolled");
    let devices = s.console.store.list_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(
        (devices[0].id.as_str(), devices[0].fieldworker.as_str()),
        (id.to_string().as_str(), "Bea Fieldworker")
    );
    let again = s.enrol(&code).await;
    assert!(again.is_err(), "a code works once");
    let audit = s.console.audit_actions(&s.admin).await;
    let made: Vec<_> = audit
        .iter()
        .filter(|(action, _)| action == "enrolment_code_created")
        .collect();
    assert_eq!(made.len(), 1, "{audit:?}");
    assert!(made[0].1.contains("Bea Fieldworker"), "{}", made[0].1);
    let bare = code.replace('-', "");
    for (_, detail) in &audit {
        assert!(
            !detail.contains(&code) && !detail.contains(&bare),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn a_revocation_signed_in_the_console_revokes_the_device_and_its_next_push_is_refused() {
    let s = Study::start().await;
    let code = s.code("Ana").await;
    let (id, key, token) = s.enrol(&code).await.expect("enrolled");

    // Signed by another key: refused, nothing revoked.
    let forger = StudySigningKey::generate().expect("key");
    let seq = s.next_seq().await;
    let forged = s.instruct(&forger, seq, revocation(id, "lost")).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    assert_eq!(forged.code(), "instruction_signature_invalid");
    // Altered after signing: refused too.
    let mut altered = SignedInstruction::sign(
        &s.signing,
        seq,
        revocation(id, "lost"),
        attune_server::api::now(),
    )
    .expect("signed");
    altered.kind = revocation(id, "stolen");
    assert_eq!(
        s.post(&altered).await.code(),
        "instruction_signature_invalid"
    );
    // Signed an hour ago: refused, saying why.
    let old = Timestamp(attune_server::api::now().as_millis() - 3_600_000);
    let stale = SignedInstruction::sign(&s.signing, seq, revocation(id, "lost"), old).unwrap();
    let answer = s.post(&stale).await;
    assert_eq!(answer.code(), "instruction_signature_invalid");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("10 minutes"),
        "{}",
        answer.body
    );
    // No reason, or an unknown device: 422 with words.
    let answer = s.instruct(&s.signing, seq, revocation(id, "  ")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body["message"].as_str().unwrap().contains("reason"));
    let stranger = DeviceId::new(Timestamp(9));
    let answer = s
        .instruct(&s.signing, seq, revocation(stranger, "lost"))
        .await;
    assert_eq!(answer.code(), "instruction_refused", "{}", answer.body);
    assert_eq!(s.next_seq().await, seq, "nothing was recorded");
    assert!(
        s.push_participant((id, &key, &token), "VIG-001")
            .await
            .status
            .is_success()
    );

    let answer = s
        .instruct(&s.signing, seq, revocation(id, "lost on the bus"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["seq"], seq);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("lost on the bus")
    );
    let devices = s.console.store.list_devices().await.unwrap();
    assert_eq!(
        devices[0].revoked_reason.as_deref(),
        Some("lost on the bus")
    );
    let refused = s.push_participant((id, &key, &token), "VIG-002").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"], "device_revoked");
    assert_eq!(refused.body["reason"], "lost on the bus");
    // Again: already revoked, nothing recorded.
    let again = s
        .instruct(&s.signing, seq + 1, revocation(id, "lost"))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already revoked")
    );
    let audit = s.console.audit_actions(&s.admin).await;
    assert!(
        audit
            .iter()
            .any(|(action, detail)| action == "instruction_recorded"
                && detail.contains("lost on the bus")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_withdrawal_signed_in_the_console_is_listed_and_a_stale_number_is_409() {
    let s = Study::start().await;
    let code = s.code("Ana").await;
    let (id, key, token) = s.enrol(&code).await.expect("enrolled");
    let participant = ParticipantId::new(Timestamp(7));
    let withdrawal = |code: &str| ControlKind::Withdrawal {
        participant_id: participant,
        participant_code: code.into(),
    };
    // Nobody with this code reached the server yet.
    let seq = s.next_seq().await;
    let answer = s.instruct(&s.signing, seq, withdrawal("VIG-001")).await;
    assert_eq!(answer.code(), "instruction_refused", "{}", answer.body);
    assert!(
        s.push_participant((id, &key, &token), "VIG-001")
            .await
            .status
            .is_success()
    );

    let answer = s.instruct(&s.signing, seq, withdrawal("VIG-001")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let snapshot = s
        .console
        .call("GET", "/api/console/snapshot", None, Some(&s.researcher))
        .await;
    let withdrawals = snapshot.body["withdrawals"].as_array().unwrap();
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(withdrawals[0]["participant_code"], "VIG-001");
    assert_eq!(withdrawals[0]["participant_id"], participant.to_string());
    assert_eq!(withdrawals[0]["seq"], seq);

    // Another instruction signed with the number just taken: 409, sign again.
    let other = s.instruct(&s.signing, seq, revocation(id, "lost")).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.code(), "instruction_seq_taken");
    assert_eq!(s.next_seq().await, seq + 1);
    // The same withdrawal again: already so.
    let again = s.instruct(&s.signing, seq + 1, withdrawal("VIG-001")).await;
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already withdrawn")
    );
}

#[tokio::test]
async fn protocol_updates_follow_the_clis_rules() {
    let s = Study::start().await;
    let built_in: Value =
        serde_json::from_str(include_str!("../../../core/protocols/vig-evaluation.json"))
            .expect("protocol");
    let version = built_in["version"].as_u64().expect("version");
    let with_version = |v: u64| {
        let mut protocol = built_in.clone();
        protocol["version"] = json!(v);
        ControlKind::ProtocolUpdate {
            protocol: protocol.to_string(),
        }
    };
    let seq = s.next_seq().await;
    let older = s.instruct(&s.signing, seq, with_version(version)).await;
    assert_eq!(
        older.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        older.body
    );
    assert_eq!(older.code(), "instruction_refused");
    let message = older.body["message"].as_str().unwrap();
    assert!(
        message.contains("built in") && message.contains("higher"),
        "{message}"
    );
    let broken = ControlKind::ProtocolUpdate {
        protocol: "{\"id\": 3}".into(),
    };
    let answer = s.instruct(&s.signing, seq, broken).await;
    assert_eq!(answer.code(), "instruction_refused");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );

    let newer = s.instruct(&s.signing, seq, with_version(version + 1)).await;
    assert_eq!(newer.status, StatusCode::OK, "{}", newer.body);
    assert!(
        newer.body["message"]
            .as_str()
            .unwrap()
            .contains("published")
    );
    let same = s
        .instruct(&s.signing, seq + 1, with_version(version + 1))
        .await;
    assert_eq!(same.code(), "instruction_refused");
    assert!(
        same.body["message"]
            .as_str()
            .unwrap()
            .contains("already published")
    );
}
