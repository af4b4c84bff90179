//! A server for the console tests over real HTTP (SQLite in a temp dir), reached as
//! `http://localhost:PORT` (the `Host` header says `localhost`, so the RP id is `localhost`),
//! with the helpers to invite, register and sign in through the real ceremonies.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use attune_core::team::{Me, Role};
use attune_server::store::SqliteStore;
use attune_server::{AppState, Store, router};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::authenticator::{Authenticator, Client};

/// Serves `app` on 127.0.0.1, port 0, with client addresses (for the rate limits).
async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

pub struct Console {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub origin: String,
    http: reqwest::Client,
    _dir: TempDir,
}

/// An answer: status, headers and JSON body (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// The session token the answer's `Set-Cookie` sets.
    pub fn session(&self) -> String {
        let cookie = self.set_cookie();
        let value = cookie
            .strip_prefix("attune_session=")
            .and_then(|rest| rest.split(';').next())
            .expect("an attune_session cookie");
        value.to_owned()
    }

    pub fn set_cookie(&self) -> String {
        self.headers
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
            .expect("Set-Cookie")
            .to_owned()
    }
}

impl Console {
    pub async fn start() -> Self {
        Self::start_with(|state| state).await
    }

    /// A server whose state `configure` adjusts (e.g. `with_public_url`).
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path()).await.expect("open store"));
        Self::serve(dir, store, configure).await
    }

    /// Serves `store` (kept in `dir`).
    pub async fn serve(
        dir: TempDir,
        store: Arc<dyn Store>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let state = configure(AppState::new(store.clone(), dir.path().join("dist")));
        let public = state.public_origin.clone();
        let addr = serve(router(state)).await;
        Console {
            addr,
            store,
            origin: public
                .map_or_else(|| format!("http://localhost:{}", addr.port()), |p| p.origin),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A request as the console page makes it: `Host: localhost:PORT`, `Origin` (unless
    /// `origin` is `None`) and the session cookie.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        session: Option<&str>,
        origin: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr))
            .header("host", format!("localhost:{}", self.addr.port()));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(session) = session {
            request = request.header("cookie", format!("other=1; attune_session={session}"));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request from the console's own origin.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        session: Option<&str>,
    ) -> Answer {
        self.call_as(method, path, body, session, Some(&self.origin.clone()), &[])
            .await
    }

    /// An invitation token made as the CLI makes it.
    pub async fn invite(&self, role: Role) -> String {
        let printed = attune_server::team::cli::invite(
            self.store.as_ref(),
            role,
            Some(format!("New {role}")),
            &self.origin,
            72,
        )
        .await
        .expect("invite");
        printed.invitation.token
    }

    /// `register/start` for `token`: the ceremony id and creation options.
    pub async fn register_start(&self, token: &str, name: &str) -> (String, Value) {
        let answer = self
            .call(
                "POST",
                "/api/team/register/start",
                Some(json!({"token": token, "name": name})),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        (
            answer.body["ceremony_id"].as_str().expect("id").to_owned(),
            answer.body["public_key"].clone(),
        )
    }

    pub async fn finish(&self, path: &str, ceremony_id: &str, credential: Value) -> Answer {
        self.call(
            "POST",
            path,
            Some(json!({"ceremony_id": ceremony_id, "credential": credential})),
            None,
        )
        .await
    }

    /// Registers `authenticator` with the invitation `token`, as a browser would.
    pub async fn register_with(
        &self,
        authenticator: &mut Authenticator,
        token: &str,
        client: &Client,
    ) -> Answer {
        let (id, options) = self.register_start(token, "Ana Researcher").await;
        let credential = authenticator.register(&options, client);
        self.finish("/api/team/register/finish", &id, credential)
            .await
    }

    /// Invites a member with `role` and registers them: their session token and [`Me`].
    pub async fn member(&self, role: Role, authenticator: &mut Authenticator) -> (String, Me) {
        let token = self.invite(role).await;
        let client = Client::honest(&self.origin);
        let answer = self.register_with(authenticator, &token, &client).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let me: Me = serde_json::from_value(answer.body.clone()).expect("Me");
        (answer.session(), me)
    }

    /// `login/start`: the ceremony id and request options.
    pub async fn login_start(&self) -> (String, Value) {
        let answer = self
            .call("POST", "/api/team/login/start", Some(json!({})), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        (
            answer.body["ceremony_id"].as_str().expect("id").to_owned(),
            answer.body["public_key"].clone(),
        )
    }

    /// Signs in with `authenticator` as `client` reports it.
    pub async fn sign_in_with(&self, authenticator: &mut Authenticator, client: &Client) -> Answer {
        let (id, options) = self.login_start().await;
        let credential = authenticator.sign_in(&options, client);
        self.finish("/api/team/login/finish", &id, credential).await
    }

    /// The audit log's actions, newest first, read by an admin session.
    pub async fn audit_actions(&self, admin: &str) -> Vec<(String, String)> {
        let answer = self.call("GET", "/api/team/audit", None, Some(admin)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer
            .body
            .as_array()
            .expect("entries")
            .iter()
            .map(|entry| {
                (
                    entry["action"].as_str().unwrap_or("").to_owned(),
                    entry["detail"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}
