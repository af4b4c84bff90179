//! Serving the built PWA from the dist directory: cache rules, MIME types and SPA routing.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;

/// How long a browser may reuse a file before asking the server again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePolicy {
    /// Always revalidate: the entry points that name every other file (index.html, the service
    /// worker, the manifest). A stale copy would pin the tablet to an old app version.
    Revalidate,
    /// Content-hashed file names: a new build gets a new name, so the old one never changes.
    Immutable,
    /// Everything else (icons, pictograms): changes rarely, an hour of staleness is harmless.
    ShortLived,
}

impl CachePolicy {
    /// The `Cache-Control` header value for this policy.
    pub fn header_value(self) -> &'static str {
        match self {
            CachePolicy::Revalidate => "no-cache",
            CachePolicy::Immutable => "public, max-age=31536000, immutable",
            CachePolicy::ShortLived => "public, max-age=3600",
        }
    }
}

/// Picks the cache policy for a request path under the dist directory.
///
/// Paths whose last segment has no extension are app routes answered with `index.html`.
pub fn cache_policy(path: &str) -> CachePolicy {
    match file_name(path) {
        "" | "index.html" | "sw.js" | "manifest.webmanifest" => CachePolicy::Revalidate,
        name if !name.contains('.') => CachePolicy::Revalidate,
        name if has_content_hash(name) => CachePolicy::Immutable,
        _ => CachePolicy::ShortLived,
    }
}

/// True for names like `attune-0123456789abcdef.js` or `attune-0123456789abcdef_bg.wasm`:
/// a `-` followed by at least 16 hex digits, then the extension or a `_suffix`.
pub fn has_content_hash(file_name: &str) -> bool {
    let Some((stem, _extension)) = file_name.rsplit_once('.') else {
        return false;
    };
    stem.match_indices('-').any(|(dash, _)| {
        let after = &stem.as_bytes()[dash + 1..];
        let hex_digits = after.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        hex_digits >= 16 && matches!(after.get(hex_digits), None | Some(b'_' | b'.'))
    })
}

/// The MIME types browsers insist on (streaming wasm compilation, manifests, module scripts),
/// pinned here rather than left to the guessing table of a dependency.
fn pinned_content_type(path: &str) -> Option<&'static str> {
    match file_name(path).rsplit_once('.')?.1 {
        "wasm" => Some("application/wasm"),
        "webmanifest" => Some("application/manifest+json"),
        "js" | "mjs" => Some("text/javascript"),
        _ => None,
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

fn is_app_route(path: &str) -> bool {
    !file_name(path).contains('.')
}

/// Fallback handler for everything that is not the API: the console under `/console/`
/// ([`serve_console`]), otherwise files from the dist directory, and `index.html` for app
/// routes such as `/visits/123` so that deep links and reloads work.
pub(crate) async fn serve_app(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path == "/console" {
        return Redirect::permanent("/console/").into_response();
    }
    if path.starts_with("/console/") {
        return serve_console(&state, request).await;
    }
    serve_from(&state.dist_dir, request, APP_NOT_BUILT).await
}

const APP_NOT_BUILT: &str =
    "The Attune app is not built: run `cargo xtask run` (or build it into the dist directory).\n";
const CONSOLE_NOT_BUILT: &str = "The researcher console is not built: run `cargo xtask run` \
(or build console/ into the console directory).\n";

/// The researcher console: files from its own directory (`--console-dir`), `/console/` taken
/// off the path, and its `index.html` for its routes.
async fn serve_console(state: &AppState, mut request: Request) -> Response {
    let inner = request.uri().path()["/console".len()..].to_owned();
    let Ok(uri) = inner.parse() else {
        return (StatusCode::BAD_REQUEST, "Bad path\n").into_response();
    };
    *request.uri_mut() = uri;
    serve_from(&state.console_dir, request, CONSOLE_NOT_BUILT).await
}

async fn serve_from(dir: &std::path::Path, request: Request, not_built: &'static str) -> Response {
    let path = request.uri().path().to_owned();
    // ServeDir consumes the request; keep what the index.html fallback needs
    // (method for HEAD, headers for conditional requests).
    let mut fallback_request = Request::new(Body::empty());
    *fallback_request.method_mut() = request.method().clone();
    *fallback_request.headers_mut() = request.headers().clone();

    // The build writes `.br` and `.gz` beside each text and wasm file (xtask/pwa/
    // postbuild.mjs): a browser that accepts them gets a third of the bytes.
    let mut files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let served = match files.try_call(request).await {
        Ok(response) => response.map(Body::new),
        Err(error) => return file_error(error),
    };
    if served.status() != StatusCode::NOT_FOUND {
        return with_cache_rules(served, &path);
    }
    if !is_app_route(&path) {
        return (StatusCode::NOT_FOUND, "Not found\n").into_response();
    }
    let mut index = ServeFile::new(dir.join("index.html"))
        .precompressed_br()
        .precompressed_gzip();
    match index.try_call(fallback_request).await {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => not_yet_built(not_built),
        Ok(response) => with_cache_rules(response.map(Body::new), "/index.html"),
        Err(error) => file_error(error),
    }
}

fn with_cache_rules(mut response: Response, path: &str) -> Response {
    let status = response.status();
    if !(status.is_success() || status == StatusCode::NOT_MODIFIED) {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(cache_policy(path).header_value()),
    );
    if let Some(content_type) = pinned_content_type(path) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    // Which encoding is sent depends on Accept-Encoding: caches must keep them apart.
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}

fn not_yet_built(message: &'static str) -> Response {
    tracing::warn!("{}", message.trim_end());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(CACHE_CONTROL, "no-store")],
        message,
    )
        .into_response()
}

fn file_error(error: std::io::Error) -> Response {
    tracing::error!(%error, "cannot read from the dist directory");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_always_revalidate() {
        for path in [
            "/",
            "/index.html",
            "/sw.js",
            "/manifest.webmanifest",
            "/visits/123",
            "/icons/",
        ] {
            assert_eq!(cache_policy(path), CachePolicy::Revalidate, "{path}");
        }
    }

    #[test]
    fn hashed_build_outputs_are_immutable() {
        for path in [
            "/attune-0123456789abcdef.js",
            "/attune-0123456789abcdef_bg.wasm",
            "/style-0123456789ABCDEF.css",
            "/snippets/x/inline0-a1b2c3d4e5f60718293a.js",
        ] {
            assert_eq!(cache_policy(path), CachePolicy::Immutable, "{path}");
        }
    }

    #[test]
    fn other_files_are_cached_for_an_hour() {
        for path in [
            "/icons/icon-192.png",
            "/attune.js",
            "/attune-0123456789abcde.js", // 15 hex digits: not a content hash
            "/attune-0123456789abcdefg.js", // hex run continues into a non-hex letter
            "/pictograms/stop-sign.svg",
        ] {
            assert_eq!(cache_policy(path), CachePolicy::ShortLived, "{path}");
        }
    }

    #[test]
    fn content_hash_needs_an_extension() {
        assert!(!has_content_hash("attune-0123456789abcdef"));
        assert!(has_content_hash("attune-0123456789abcdef.js"));
    }

    #[test]
    fn browser_critical_types_are_pinned() {
        assert_eq!(
            pinned_content_type("/a-0123456789abcdef_bg.wasm"),
            Some("application/wasm")
        );
        assert_eq!(
            pinned_content_type("/manifest.webmanifest"),
            Some("application/manifest+json")
        );
        assert_eq!(pinned_content_type("/sw.js"), Some("text/javascript"));
        assert_eq!(pinned_content_type("/icons/icon-192.png"), None);
    }
}
