//! The study team's console API over real HTTP: sessions, roles, the CSRF guard, invitations
//! and the audit log, with passkeys registered and used by a software authenticator through
//! the real ceremonies (`team_passkeys.rs` tries to fool them).

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/console.rs"]
mod console;
#[path = "team_http/instructions.rs"]
mod instructions;
#[path = "team_http/records.rs"]
mod records;
mod support;

use attune_core::Timestamp;
use attune_core::team::{Invitation, MemberSummary, Role};
use attune_server::api::sha256_hex;
use attune_server::store::NewTeamInvitation;
use authenticator::{Alg, Authenticator, Client};
use console::Console;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn signed_out_requests_get_401_sign_in_required() {
    let console = Console::start().await;
    for (method, path) in [
        ("GET", "/api/team/me"),
        ("GET", "/api/team/members"),
        ("GET", "/api/team/audit"),
        ("POST", "/api/team/invitations"),
    ] {
        for session in [None, Some("not-a-session")] {
            let body = (method == "POST").then(|| json!({"role": "coder", "name": "X"}));
            let answer = console.call(method, path, body, session).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(answer.code(), "sign_in_required", "{}", answer.body);
        }
    }
}

#[tokio::test]
async fn a_member_registers_signs_out_and_signs_in_again_with_es256_and_eddsa() {
    let console = Console::start().await;
    for alg in [Alg::Es256, Alg::EdDsa] {
        let mut passkey = Authenticator::new(alg);
        let (session, me) = console.member(Role::Researcher, &mut passkey).await;
        assert_eq!(
            (me.name.as_str(), me.role),
            ("Ana Researcher", Role::Researcher)
        );
        let answer = console
            .call("GET", "/api/team/me", None, Some(&session))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["member_id"], me.member_id.as_str());
        assert_eq!(answer.body["role"], "researcher");

        let out = console
            .call("POST", "/api/team/logout", None, Some(&session))
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        assert_eq!(
            out.set_cookie(),
            "attune_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
        let gone = console
            .call("GET", "/api/team/me", None, Some(&session))
            .await;
        assert_eq!(gone.status, StatusCode::UNAUTHORIZED);

        let client = Client::honest(&console.origin);
        let again = console.sign_in_with(&mut passkey, &client).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.body["member_id"], me.member_id.as_str());
        let session = again.session();
        assert_ne!(session, "");
        let answer = console
            .call("GET", "/api/team/me", None, Some(&session))
            .await;
        assert_eq!(answer.body["name"], "Ana Researcher");
    }
    // Signing in and out is in the audit log, by whom, newest first.
    let (admin, _) = console
        .member(Role::Admin, &mut Authenticator::new(Alg::Es256))
        .await;
    let answer = console
        .call("GET", "/api/team/audit", None, Some(&admin))
        .await;
    let entries = answer.body.as_array().unwrap();
    let of = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(
        (of("signed_out"), of("signed_in"), of("member_registered")),
        (2, 2, 3)
    );
    let signed_out = entries
        .iter()
        .find(|e| e["action"] == "signed_out")
        .unwrap();
    assert_eq!(signed_out["member"], "Ana Researcher");
    assert_eq!(entries[0]["action"], "member_registered");
}

#[tokio::test]
async fn the_session_cookie_carries_its_flags_and_is_stored_hashed() {
    let console = Console::start().await;
    let token = console.invite(Role::Admin).await;
    let mut passkey = Authenticator::new(Alg::Es256);
    let answer = console
        .register_with(&mut passkey, &token, &Client::honest(&console.origin))
        .await;
    let session = answer.session();
    assert_eq!(session.len(), 64, "32 random bytes as hex");
    assert_eq!(
        answer.set_cookie(),
        format!("attune_session={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800")
    );
    let expires = answer.body["expires_at"].as_i64().unwrap();
    let now = attune_server::api::now().as_millis();
    assert!((expires - now - 8 * 3_600_000).abs() < 60_000, "{expires}");
    // Only the hash is a session: the token itself is not.
    let store = &console.store;
    assert!(
        store
            .team_session(&session, Timestamp(now))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .team_session(&sha256_hex(&session), Timestamp(now))
            .await
            .unwrap()
            .is_some()
    );
    // An expired session is refused.
    store
        .create_team_session(
            &sha256_hex("old"),
            answer.body["member_id"].as_str().unwrap(),
            Timestamp(now - 1),
            Timestamp(now - 10),
        )
        .await
        .unwrap();
    let old = console.call("GET", "/api/team/me", None, Some("old")).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn behind_a_public_https_url_the_cookie_is_secure_and_the_origin_is_that_url() {
    let console = Console::start_with(|state| {
        state
            .with_public_url("https://research.example.org/")
            .unwrap()
    })
    .await;
    assert_eq!(console.origin, "https://research.example.org");
    let token = console.invite(Role::Coder).await;
    let (_, options) = console.register_start(&token, "Cai").await;
    assert_eq!(options["rp"]["id"], "research.example.org");
    let mut passkey = Authenticator::new(Alg::Es256);
    let (session, _) = console.member(Role::Coder, &mut passkey).await;
    let again = console
        .sign_in_with(&mut passkey, &Client::honest(&console.origin))
        .await;
    assert!(
        again.set_cookie().ends_with("; Max-Age=28800; Secure"),
        "{}",
        again.set_cookie()
    );
    let local = format!("http://localhost:{}", console.addr.port());
    let refused = console
        .call_as(
            "POST",
            "/api/team/logout",
            None,
            Some(&session),
            Some(&local),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "cross_site_refused");
}

#[tokio::test]
async fn a_coder_may_not_invite_list_or_read_the_audit_an_admin_may() {
    let console = Console::start().await;
    let (coder, _) = console
        .member(Role::Coder, &mut Authenticator::new(Alg::Es256))
        .await;
    let (researcher, _) = console
        .member(Role::Researcher, &mut Authenticator::new(Alg::EdDsa))
        .await;
    let invite = json!({"role": "admin", "name": "Eve"});
    for session in [&coder, &researcher] {
        let answer = console
            .call(
                "POST",
                "/api/team/invitations",
                Some(invite.clone()),
                Some(session),
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
        assert_eq!(answer.code(), "forbidden");
        for path in ["/api/team/members", "/api/team/audit"] {
            let answer = console.call("GET", path, None, Some(session)).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    let (admin, _) = console
        .member(Role::Admin, &mut Authenticator::new(Alg::Es256))
        .await;
    let answer = console
        .call(
            "POST",
            "/api/team/invitations",
            Some(json!({"role": "coder", "name": " Dee "})),
            Some(&admin),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let invitation: Invitation = serde_json::from_value(answer.body).unwrap();
    assert_eq!(
        (invitation.role, invitation.name.as_str()),
        (Role::Coder, "Dee")
    );
    assert_eq!(
        invitation.link_path,
        format!("/console/#invite={}", invitation.token)
    );
    let mut dee = Authenticator::new(Alg::Es256);
    let joined = console
        .register_with(
            &mut dee,
            &invitation.token,
            &Client::honest(&console.origin),
        )
        .await;
    assert_eq!(joined.body["role"], "coder");

    let answer = console
        .call("GET", "/api/team/members", None, Some(&admin))
        .await;
    let members: Vec<MemberSummary> = serde_json::from_value(answer.body).unwrap();
    let roles: Vec<Role> = members.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::Coder, Role::Researcher, Role::Admin, Role::Coder]
    );
    assert!(
        members
            .iter()
            .all(|m| m.passkeys == 1 && m.last_sign_in.is_some())
    );
    let actions = console.audit_actions(&admin).await;
    assert_eq!(actions[0].0, "member_registered");
    assert_eq!(
        actions[1],
        (
            "invitation_created".into(),
            "Dee invited as Coder, valid 72 h".into()
        )
    );
    let bad = console
        .call(
            "POST",
            "/api/team/invitations",
            Some(json!({"role": "owner", "name": "X"})),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "malformed")
    );
}

#[tokio::test]
async fn a_state_changing_request_needs_the_consoles_origin() {
    let console = Console::start().await;
    let path = "/api/team/login/start";
    let body = Some(json!({}));
    let missing = console
        .call_as("POST", path, body.clone(), None, None, &[])
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::FORBIDDEN, "cross_site_refused")
    );
    for foreign in ["https://evil.example", "http://localhost:1", "null"] {
        let answer = console
            .call_as("POST", path, body.clone(), None, Some(foreign), &[])
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{foreign}");
        assert_eq!(answer.code(), "cross_site_refused");
    }
    let cross = console
        .call_as(
            "POST",
            path,
            body.clone(),
            None,
            None,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let same = console
        .call_as(
            "POST",
            path,
            body.clone(),
            None,
            None,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    // A foreign Origin is refused even when Sec-Fetch-Site claims otherwise.
    let lying = console
        .call_as(
            "POST",
            path,
            body.clone(),
            None,
            Some("https://evil.example"),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(lying.status, StatusCode::FORBIDDEN);
    // An empty body is fine too; a GET needs no Origin.
    let empty = console.call("POST", path, None, None).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    let me = console
        .call_as("GET", "/api/team/me", None, None, None, &[])
        .await;
    assert_eq!(me.code(), "sign_in_required");
}

#[tokio::test]
async fn an_invitation_is_single_use_and_expires() {
    let console = Console::start().await;
    let token = console.invite(Role::Researcher).await;
    // Two ceremonies started with one invitation: only the first to finish registers.
    let (first, first_options) = console.register_start(&token, "Ana").await;
    let (second, second_options) = console.register_start(&token, "Ana again").await;
    let client = Client::honest(&console.origin);
    let mut passkey = Authenticator::new(Alg::Es256);
    let credential = passkey.register(&first_options, &client);
    let done = console
        .finish("/api/team/register/finish", &first, credential)
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let mut other = Authenticator::new(Alg::Es256);
    let credential = other.register(&second_options, &client);
    let late = console
        .finish("/api/team/register/finish", &second, credential)
        .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::FORBIDDEN, "invitation_invalid")
    );
    assert!(
        late.body["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let again = console
        .call(
            "POST",
            "/api/team/register/start",
            Some(json!({"token": token, "name": "X"})),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::FORBIDDEN, "invitation_invalid")
    );

    let now = attune_server::api::now();
    console
        .store
        .create_team_invitation(
            &NewTeamInvitation {
                token_hash: sha256_hex("stale"),
                role: Role::Admin,
                name: "Old".into(),
                created_by: None,
                expires_at: Timestamp(now.as_millis() - 1),
            },
            Timestamp(now.as_millis() - 3_600_000),
        )
        .await
        .unwrap();
    for (token, words) in [("stale", "expired"), ("never-made", "Unknown")] {
        let answer = console
            .call(
                "POST",
                "/api/team/register/start",
                Some(json!({"token": token, "name": "X"})),
                None,
            )
            .await;
        assert_eq!(answer.code(), "invitation_invalid");
        assert!(
            answer.body["message"].as_str().unwrap().contains(words),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn ceremonies_are_rate_limited_per_address() {
    let console = Console::start().await;
    let mut statuses = Vec::new();
    for _ in 0..61 {
        let answer = console
            .call("POST", "/api/team/login/start", None, None)
            .await;
        statuses.push(answer.status);
    }
    assert!(statuses[..60].iter().all(|s| *s == StatusCode::OK));
    assert_eq!(statuses[60], StatusCode::TOO_MANY_REQUESTS);
}

/// `/api/console`: only admins and researchers read the sealed data, every read is audited,
/// and nothing in the answer is plaintext (the server has none).
#[tokio::test]
async fn the_console_api_serves_reviewers_only_and_audits_each_read() {
    let console = Console::start().await;
    let paths = [
        "/api/console/snapshot",
        "/api/console/blobs/01900000-0000-7000-8000-000000000000",
    ];
    for path in paths {
        let answer = console.call("GET", path, None, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.code(), "sign_in_required");
    }
    let (coder, _) = console
        .member(Role::Coder, &mut Authenticator::new(Alg::Es256))
        .await;
    for path in paths {
        let answer = console.call("GET", path, None, Some(&coder)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(answer.code(), "forbidden");
    }
    let (researcher, _) = console
        .member(Role::Researcher, &mut Authenticator::new(Alg::EdDsa))
        .await;
    let answer = console
        .call("GET", "/api/console/snapshot", None, Some(&researcher))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let snapshot: attune_core::review::Snapshot = serde_json::from_value(answer.body).unwrap();
    assert_eq!(snapshot, attune_core::review::Snapshot::default());
    // A blob that was never uploaded, and a path that is no blob id.
    for path in [paths[1], "/api/console/blobs/..%2Fstudy.db"] {
        let answer = console.call("GET", path, None, Some(&researcher)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let (admin, _) = console
        .member(Role::Admin, &mut Authenticator::new(Alg::Es256))
        .await;
    let actions = console.audit_actions(&admin).await;
    assert!(
        actions
            .iter()
            .any(|(action, detail)| action == "data_read" && detail.contains("0 sealed revisions")),
        "{actions:?}"
    );
}

/// The console is served from its own directory under `/console/`, its routes answered with
/// its `index.html`; the tablets' app is not.
#[tokio::test]
async fn the_console_is_served_under_console_from_its_own_directory() {
    let built = tempfile::TempDir::new().unwrap();
    std::fs::write(built.path().join("index.html"), "<title>console</title>").unwrap();
    std::fs::write(built.path().join("app-0123456789abcdef.js"), "//").unwrap();
    let dir = built.path().to_owned();
    let console = Console::start_with(move |state| state.with_console_dir(dir)).await;
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", console.addr);
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .send()
                .await
                .unwrap()
        }
    };
    let moved = get("/console").await;
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.headers()["location"], "/console/");
    for path in ["/console/", "/console/participants"] {
        let page = get(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.headers()["cache-control"], "no-cache");
        assert!(page.headers().contains_key("content-security-policy"));
        assert_eq!(page.text().await.unwrap(), "<title>console</title>");
    }
    let script = get("/console/app-0123456789abcdef.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        get("/console/missing.js").await.status(),
        StatusCode::NOT_FOUND
    );
}
