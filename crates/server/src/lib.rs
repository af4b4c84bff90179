//! attune-server as a library: the HTTP router, the sync API and the [`store::Store`] it
//! serves from (SQLite or PostgreSQL).
//!
//! The binary (`main.rs`) only parses the command line, opens the store, binds and serves
//! [`router`]; tests do the same on port 0.

pub mod admin;
pub mod api;
mod app_assets;
pub mod backup;
pub mod blobs;
pub mod console;
mod console_admin;
mod error;
pub mod export;
pub mod listen;
pub mod store;
pub mod team;
pub mod team_records;
pub mod uploads;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::{OriginalUri, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};
use axum::{Json, Router, middleware};
use serde::Serialize;
use tower::util::option_layer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use app_assets::{CachePolicy, cache_policy, has_content_hash};
/// Verification moved to core (the console runs it in the browser); the old path stays.
pub use attune_core::review::verify;
pub use error::AppError;
pub use store::{DATABASE_FILE, DatabaseConfig, Store, StoreError, connect, open_store};

/// The version reported by `/healthz` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sent on every response. `wasm-unsafe-eval` is what instantiating the app's WebAssembly
/// needs; nothing else is loaded from anywhere but this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
worker-src 'self'; manifest-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// The microphone is for interview recordings; camera and location are never used.
pub const PERMISSIONS_POLICY: &str = "camera=(), geolocation=(), microphone=(self)";

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The server database.
    pub store: Arc<dyn Store>,
    /// The built PWA (`dist/`), served as static files.
    pub dist_dir: PathBuf,
    /// The built researcher console (`dist-console/`), served under `/console/`.
    pub console_dir: PathBuf,
    /// The enrolment, challenge and sign-in rate limits (counted in the database, shared by
    /// every instance on it).
    pub rate_limits: api::RateLimits,
    /// Where attachment uploads are kept (`uploads/`, `blobs/` in the data directory).
    pub blobs: blobs::BlobStore,
    /// The console's origin and WebAuthn RP id (`--public-url`); `None`: only
    /// `http://localhost:PORT` (see [`team::PublicOrigin`]).
    pub public_origin: Option<team::PublicOrigin>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`); from
    /// any other peer the header is ignored.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
}

impl AppState {
    /// The default [`api::RateLimits`] (enrolment: 10 attempts a minute per address); uploads
    /// kept in `./data` (the CLI's default data directory) unless [`AppState::with_data_dir`]
    /// says otherwise.
    pub fn new(store: Arc<dyn Store>, dist_dir: impl Into<PathBuf>) -> Self {
        Self {
            store,
            console_dir: PathBuf::from("./dist-console"),
            dist_dir: dist_dir.into(),
            rate_limits: api::RateLimits::default(),
            blobs: blobs::BlobFolder::new("./data").into(),
            public_origin: None,
            trusted_proxies: Arc::from([]),
        }
    }

    /// Takes the client's address from `X-Forwarded-For` when the connection comes from one
    /// of these reverse proxies (the rate limits then count each tablet, not the proxy).
    pub fn with_trusted_proxies(mut self, proxies: &[std::net::IpAddr]) -> Self {
        self.trusted_proxies = Arc::from(proxies);
        self
    }

    /// Serves the console at this public URL (`https://research.example.org`): its origin is
    /// the one passkeys and state-changing requests must come from.
    pub fn with_public_url(mut self, url: &str) -> Result<Self, String> {
        self.public_origin = Some(team::PublicOrigin::parse(url)?);
        Ok(self)
    }

    /// Serves the researcher console from this directory (default `./dist-console`).
    pub fn with_console_dir(mut self, console_dir: impl Into<PathBuf>) -> Self {
        self.console_dir = console_dir.into();
        self
    }

    /// Keeps uploads in this data directory (also with PostgreSQL: blobs are files).
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.blobs = blobs::BlobFolder::new(data_dir).into();
        self
    }

    /// Keeps uploads in this blob store (a folder, or an S3 bucket: `--blob-url`).
    pub fn with_blobs(mut self, blobs: impl Into<blobs::BlobStore>) -> Self {
        self.blobs = blobs.into();
        self
    }
}

/// `/api/console`: the team's reads, the team's own records, and the admins' instructions
/// and enrolment codes, behind the same cross-site guard as `/api/team`.
fn console_router(state: AppState) -> Router<AppState> {
    use attune_core::review::{enrolment, instructions};
    let under = |path: &'static str| path.trim_start_matches("/api/console");
    Router::new()
        .route("/snapshot", get(console::snapshot))
        .route("/blobs/{blob_id}", get(console::blob))
        .route(
            under(instructions::NEXT_SEQ_PATH),
            get(console_admin::next_seq),
        )
        .route(
            under(instructions::INSTRUCTIONS_PATH),
            post(console_admin::record_instruction),
        )
        .route(
            under(enrolment::ENROLMENT_CODES_PATH),
            post(console_admin::create_enrolment_code),
        )
        .route("/team-records", post(team_records::add))
        .layer(middleware::from_fn_with_state(
            state,
            team::same_origin_only,
        ))
}

/// The whole HTTP surface: health check, API, and the PWA's files.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/enrol", post(api::enrol))
        .route("/enrol/challenge", post(api::enrol_challenge))
        .route("/push", post(api::push))
        .route("/pull", get(api::pull))
        .route("/codes/reserve", post(api::reserve_codes))
        .nest("/team", team::router(state.clone()))
        .nest("/console", console_router(state.clone()))
        .route("/uploads", post(uploads::create))
        .route(
            "/uploads/{sha256}",
            head(uploads::head).patch(uploads::append),
        )
        .fallback(api_not_found)
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        // No API answer is kept by a browser or a proxy, unless the handler says otherwise.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    // Served as https (the public URL says so, behind a TLS proxy): browsers must keep to it.
    let hsts = state
        .public_origin
        .as_ref()
        .is_some_and(|origin| origin.origin.starts_with("https://"));
    let x_request_id = HeaderName::from_static("x-request-id");
    // Layers run outermost-last: the request id is set first, so the trace span can name it.
    Router::new()
        .route("/healthz", get(health))
        .nest("/api", api)
        .fallback(app_assets::serve_app)
        .with_state(state)
        .layer(middleware::map_response(add_security_headers))
        .layer(option_layer(hsts.then(|| {
            SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            )
        })))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// The span logged with each request: method, path (never the query string, which could carry
/// personal data) and the request id.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

async fn add_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    database: &'static str,
}

/// `GET /healthz`: 200 only when the database answers a real query.
async fn health(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(_) => Json(Health {
            status: "ok",
            version: VERSION,
            database: "ok",
        })
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "health check: database query failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    version: VERSION,
                    database: "unavailable",
                }),
            )
                .into_response()
        }
    }
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound {
        path: uri.path().to_owned(),
    }
}
