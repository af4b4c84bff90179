//! Passkey ceremonies that must be refused, over real HTTP: a software authenticator makes
//! real attestation objects and assertions, and each test lies about one thing a real
//! browser or authenticator would report (WebAuthn §7.1 and §7.2).

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/console.rs"]
mod console;

use attune_core::team::Role;
use authenticator::{Alg, Authenticator, Client, UP, UV};
use console::Console;
use reqwest::StatusCode;
use serde_json::json;

/// Each way of lying in a registration, and a word of the refusal.
fn registration_lies(console: &Console) -> Vec<(Client, &'static str)> {
    let honest = Client::honest(&console.origin);
    vec![
        (
            Client {
                origin: "https://evil.example".into(),
                ..honest.clone()
            },
            "origin",
        ),
        (
            Client {
                origin: format!("http://127.0.0.1:{}", console.addr.port()),
                ..honest.clone()
            },
            "origin",
        ),
        (
            Client {
                challenge: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
                ..honest.clone()
            },
            "challenge",
        ),
        (
            Client {
                kind: Some("webauthn.get".into()),
                ..honest.clone()
            },
            "type",
        ),
        (
            Client {
                rp_id: Some("evil.example".into()),
                ..honest.clone()
            },
            "not for localhost",
        ),
        (
            Client {
                flags: UV,
                ..honest.clone()
            },
            "present",
        ),
    ]
}

#[tokio::test]
async fn a_registration_that_lies_is_refused_and_leaves_the_invitation_usable() {
    let console = Console::start().await;
    let token = console.invite(Role::Admin).await;
    for (client, words) in registration_lies(&console) {
        for alg in [Alg::Es256, Alg::EdDsa] {
            let mut passkey = Authenticator::new(alg);
            let answer = console.register_with(&mut passkey, &token, &client).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{client:?}");
            assert_eq!(answer.code(), "passkey_refused", "{}", answer.body);
            let message = answer.body["message"].as_str().unwrap();
            assert!(message.contains(words), "{words}: {message}");
        }
    }
    // A credential made for one ceremony cannot finish it twice, nor another one.
    let (first, options) = console.register_start(&token, "Ana").await;
    let mut passkey = Authenticator::new(Alg::Es256);
    let credential = passkey.register(&options, &Client::honest(&console.origin));
    let (second, _) = console.register_start(&token, "Ana").await;
    let swapped = console
        .finish("/api/team/register/finish", &second, credential.clone())
        .await;
    assert!(
        swapped.body["message"]
            .as_str()
            .unwrap()
            .contains("challenge")
    );
    let done = console
        .finish("/api/team/register/finish", &first, credential.clone())
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let reused = console
        .finish("/api/team/register/finish", &first, credential)
        .await;
    assert_eq!(reused.code(), "passkey_refused");
    assert!(reused.body["message"].as_str().unwrap().contains("used"));
    let admin = done.session();
    let refusals = console
        .audit_actions(&admin)
        .await
        .into_iter()
        .filter(|(action, _)| action == "registration_refused")
        .count();
    assert_eq!(refusals, 14);
}

#[tokio::test]
async fn malformed_credentials_are_refused_with_a_clear_error() {
    let console = Console::start().await;
    let token = console.invite(Role::Admin).await;
    let client = Client::honest(&console.origin);
    let mut passkey = Authenticator::new(Alg::Es256);
    let breakages: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/response/attestationObject",
            json!("oWNmbXQ"),
            "attestation object",
        ),
        ("/response/attestationObject", json!("!!"), "base64url"),
        ("/response/clientDataJSON", json!("e30"), "clientDataJSON"),
        ("/type", json!("password"), "public-key"),
        ("/rawId", json!("AAAA"), "rawId"),
        ("/response", json!(null), "toJSON"),
    ];
    for (pointer, value, words) in breakages {
        let (id, options) = console.register_start(&token, "Ana").await;
        let mut credential = passkey.register(&options, &client);
        *credential.pointer_mut(pointer).unwrap() = value;
        let answer = console
            .finish("/api/team/register/finish", &id, credential)
            .await;
        assert_eq!(answer.code(), "passkey_refused", "{pointer}");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(words), "{pointer}: {message}");
    }
}

/// A registered member's passkey, and an admin session to read the audit log.
async fn registered(console: &Console, alg: Alg) -> (Authenticator, String) {
    let mut passkey = Authenticator::new(alg);
    let (session, _) = console.member(Role::Admin, &mut passkey).await;
    (passkey, session)
}

#[tokio::test]
async fn a_sign_in_that_lies_is_refused_and_audited() {
    for alg in [Alg::Es256, Alg::EdDsa] {
        let console = Console::start().await;
        let (mut passkey, admin) = registered(&console, alg).await;
        let honest = Client::honest(&console.origin);
        let lies = [
            (
                Client {
                    origin: "https://evil.example".into(),
                    ..honest.clone()
                },
                "origin",
            ),
            (
                Client {
                    challenge: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
                    ..honest.clone()
                },
                "challenge",
            ),
            (
                Client {
                    kind: Some("webauthn.create".into()),
                    ..honest.clone()
                },
                "type",
            ),
            (
                Client {
                    rp_id: Some("example.org".into()),
                    ..honest.clone()
                },
                "not for localhost",
            ),
            (
                Client {
                    flags: UV,
                    ..honest.clone()
                },
                "present",
            ),
            (
                Client {
                    break_signature: true,
                    ..honest.clone()
                },
                "signature",
            ),
        ];
        for (client, words) in &lies {
            let answer = console.sign_in_with(&mut passkey, client).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{alg:?} {client:?}");
            assert_eq!(answer.code(), "passkey_refused");
            let message = answer.body["message"].as_str().unwrap();
            assert!(message.contains(words), "{words}: {message}");
            assert!(answer.headers.get("set-cookie").is_none());
        }
        let refused: Vec<String> = console
            .audit_actions(&admin)
            .await
            .into_iter()
            .filter(|(action, _)| action == "sign_in_refused")
            .map(|(_, detail)| detail)
            .collect();
        assert_eq!(refused.len(), lies.len(), "{refused:?}");
        assert!(
            refused[0].contains("signature"),
            "newest first: {refused:?}"
        );
        // The honest one still works.
        let answer = console.sign_in_with(&mut passkey, &honest).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}

#[tokio::test]
async fn a_replayed_assertion_an_unknown_passkey_and_a_foreign_user_handle_are_refused() {
    let console = Console::start().await;
    let (mut passkey, _) = registered(&console, Alg::Es256).await;
    let honest = Client::honest(&console.origin);
    let (id, options) = console.login_start().await;
    let assertion = passkey.sign_in(&options, &honest);
    let first = console
        .finish("/api/team/login/finish", &id, assertion.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let replayed = console
        .finish("/api/team/login/finish", &id, assertion.clone())
        .await;
    assert_eq!(replayed.code(), "passkey_refused");
    // The same assertion against a new ceremony: its challenge is not that one's.
    let (fresh, _) = console.login_start().await;
    let moved = console
        .finish("/api/team/login/finish", &fresh, assertion)
        .await;
    assert!(
        moved.body["message"]
            .as_str()
            .unwrap()
            .contains("challenge")
    );

    let mut stranger = Authenticator::new(Alg::Es256);
    stranger.user_handle = passkey.user_handle.clone();
    let unknown = console.sign_in_with(&mut stranger, &honest).await;
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );

    let (mut other, _) = registered(&console, Alg::EdDsa).await;
    other.user_handle = passkey.user_handle.clone();
    let swapped = console.sign_in_with(&mut other, &honest).await;
    assert!(
        swapped.body["message"]
            .as_str()
            .unwrap()
            .contains("user handle")
    );
    other.user_handle = None;
    let missing = console.sign_in_with(&mut other, &honest).await;
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("user handle")
    );
}

#[tokio::test]
async fn a_signature_counter_that_goes_back_is_refused_and_zero_counters_are_accepted() {
    let console = Console::start().await;
    let (mut passkey, _) = registered(&console, Alg::Es256).await;
    let honest = Client::honest(&console.origin);
    for counter in [5, 9] {
        let client = Client {
            counter: Some(counter),
            ..honest.clone()
        };
        let answer = console.sign_in_with(&mut passkey, &client).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    for counter in [9, 4, 0] {
        let client = Client {
            counter: Some(counter),
            ..honest.clone()
        };
        let answer = console.sign_in_with(&mut passkey, &client).await;
        assert_eq!(answer.code(), "passkey_refused", "{counter}");
        assert!(answer.body["message"].as_str().unwrap().contains("counter"));
    }
    // An authenticator that keeps no counter (always 0) signs in every time.
    let mut counterless = Authenticator::new(Alg::EdDsa);
    let token = console.invite(Role::Coder).await;
    let zero = Client {
        counter: Some(0),
        ..honest.clone()
    };
    let answer = console.register_with(&mut counterless, &token, &zero).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for _ in 0..2 {
        let zero = Client {
            counter: Some(0),
            ..honest.clone()
        };
        let answer = console.sign_in_with(&mut counterless, &zero).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    // User presence is required, user verification only preferred.
    let unverified = Client {
        flags: UP,
        counter: Some(10),
        ..honest.clone()
    };
    let answer = console.sign_in_with(&mut passkey, &unverified).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}
