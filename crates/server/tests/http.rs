//! The server over real HTTP: a router bound to port 0, a real SQLite file in a temp dir, and
//! the real binary for the command-line behaviour.

mod support;

use attune_core::sync::ErrorCode;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use attune_server::store::SqliteStore;
use attune_server::{AppState, CONTENT_SECURITY_POLICY, Store, open_store, router};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INDEX_HTML: &str = "<!doctype html><title>Attune</title>";

/// A server on 127.0.0.1:0 with a fake dist directory and its own database.
struct TestServer {
    addr: SocketAddr,
    db: Arc<dyn Store>,
    _dir: TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let dist = dir.path().join("dist");
        write_fake_dist(&dist);
        Self::start_in(dir, dist).await
    }

    async fn start_without_a_built_app() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let dist = dir.path().join("dist-that-was-never-built");
        Self::start_in(dir, dist).await
    }

    async fn start_in(dir: TempDir, dist: PathBuf) -> Self {
        let db = open_store(&dir.path().join("data"))
            .await
            .expect("open store");
        let app = router(AppState::new(db.clone(), dist));
        let addr = support::serve(app).await;
        Self {
            addr,
            db,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[]).await
    }
}

fn write_fake_dist(dist: &Path) {
    let files: &[(&str, &[u8])] = &[
        ("index.html", INDEX_HTML.as_bytes()),
        ("sw.js", b"self.addEventListener('install', () => {});"),
        ("manifest.webmanifest", br#"{"name":"Attune"}"#),
        (
            "attune-0123456789abcdef.js",
            b"export default function init() {}",
        ),
        ("attune-0123456789abcdef_bg.wasm", b"\0asm\x01\0\0\0"),
        // What the build writes beside it (stand-ins: the server only picks the file).
        ("attune-0123456789abcdef_bg.wasm.br", b"brotli bytes"),
        ("attune-0123456789abcdef_bg.wasm.gz", b"gzip bytes"),
        ("index.html.br", b"brotli index"),
        ("style-0123456789abcdef.css", b"body { margin: 0 }"),
        ("icons/icon-192.png", b"\x89PNG\r\n\x1a\n"),
    ];
    for (name, contents) in files {
        let path = dist.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// One request over a fresh connection (`Connection: close`), read to the end.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" && method != "HEAD" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .expect("read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size");
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

#[tokio::test]
async fn health_reports_ok_with_a_real_database() {
    let server = TestServer::start().await;
    let reply = server.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "database": "ok",
        })
    );
}

#[tokio::test]
async fn health_reports_unavailable_when_the_database_is_gone() {
    let server = TestServer::start().await;
    server.db.close().await;
    let reply = server.get("/healthz").await;
    assert_eq!(reply.status, 503);
    let body = reply.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "unavailable");
}

#[tokio::test]
async fn index_and_service_worker_are_never_cached_stale() {
    let server = TestServer::start().await;
    for path in ["/", "/index.html", "/sw.js", "/manifest.webmanifest"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
    }
    assert_eq!(server.get("/").await.text(), INDEX_HTML);
}

#[tokio::test]
async fn hashed_assets_are_cached_immutably() {
    let server = TestServer::start().await;
    for path in [
        "/attune-0123456789abcdef.js",
        "/attune-0123456789abcdef_bg.wasm",
        "/style-0123456789abcdef.css",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn icons_are_cached_for_an_hour() {
    let server = TestServer::start().await;
    let reply = server.get("/icons/icon-192.png").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=3600"));
}

#[tokio::test]
async fn every_response_carries_the_content_security_policy() {
    let server = TestServer::start().await;
    for path in [
        "/",
        "/attune-0123456789abcdef.js",
        "/healthz",
        "/api/nothing-here",
        "/visits/123",
        "/missing.png",
    ] {
        let reply = server.get(path).await;
        assert_eq!(
            reply.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(
            reply.header("permissions-policy"),
            Some("camera=(), geolocation=(), microphone=(self)")
        );
        assert_eq!(
            reply.header("cross-origin-opener-policy"),
            Some("same-origin")
        );
    }
    let policy = CONTENT_SECURITY_POLICY;
    assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"));
    assert!(policy.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn api_answers_are_never_cached_and_https_servers_send_hsts() {
    let server = TestServer::start().await;
    for path in ["/api/nothing-here", "/api/pull", "/api/team/me"] {
        let reply = server.get(path).await;
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(reply.header("strict-transport-security"), None, "{path}");
    }
    // The app's own files keep their cache rules.
    let reply = server.get("/icons/icon-192.png").await;
    assert_eq!(reply.header("cache-control"), Some("public, max-age=3600"));

    // Behind a TLS proxy (the public URL is https): every answer says to keep to https.
    let dir = TempDir::new().expect("temp dir");
    let db = open_store(&dir.path().join("data"))
        .await
        .expect("open store");
    let state = AppState::new(db, dir.path().join("dist"))
        .with_public_url("https://research.example.org")
        .unwrap();
    let addr = support::serve(router(state)).await;
    for path in ["/", "/api/pull", "/healthz"] {
        let reply = http(addr, "GET", path, &[]).await;
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn unknown_api_paths_get_a_json_error() {
    let server = TestServer::start().await;
    for (method, path) in [
        ("GET", "/api/nothing-here"),
        ("POST", "/api/v1/envelopes/x"),
        ("GET", "/api"),
        ("GET", "/api/visits.json"),
    ] {
        let reply = http(server.addr, method, path, &[]).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            reply.json(),
            serde_json::json!({
                "error": ErrorCode::NotFound.as_str(),
                "message": format!("No API endpoint at {path}"),
            })
        );
    }
}

#[tokio::test]
async fn app_routes_fall_back_to_index_html() {
    let server = TestServer::start().await;
    for path in [
        "/visits/123",
        "/settings",
        "/visits/0190d3c1-2b4a-7c3e/consent",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.text(), INDEX_HTML, "{path}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|v| v.starts_with("text/html"))
        );
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
    }
}

#[tokio::test]
async fn missing_static_files_are_404() {
    let server = TestServer::start().await;
    for path in [
        "/attune-ffffffffffffffff.js",
        "/icons/icon-512.png",
        "/favicon.ico",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_ne!(reply.text(), INDEX_HTML, "{path}");
        assert_eq!(reply.header("cache-control"), None, "{path}");
    }
}

#[tokio::test]
async fn wasm_is_served_with_its_mime_type() {
    let server = TestServer::start().await;
    let reply = server.get("/attune-0123456789abcdef_bg.wasm").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/wasm"));
    assert_eq!(reply.body, b"\0asm\x01\0\0\0");
}

#[tokio::test]
async fn a_browser_that_accepts_brotli_or_gzip_gets_the_precompressed_file() {
    let server = TestServer::start().await;
    let wasm = "/attune-0123456789abcdef_bg.wasm";
    for (accept, encoding, body) in [
        ("gzip, deflate, br, zstd", Some("br"), &b"brotli bytes"[..]),
        ("gzip", Some("gzip"), b"gzip bytes"),
        ("identity", None, b"\0asm\x01\0\0\0"),
    ] {
        let reply = http(server.addr, "GET", wasm, &[("Accept-Encoding", accept)]).await;
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), encoding, "{accept}");
        assert_eq!(reply.body, body, "{accept}");
        // Still the wasm type and the immutable caching of a hashed file.
        assert_eq!(reply.header("content-type"), Some("application/wasm"));
        assert!(reply.header("cache-control").unwrap().contains("immutable"));
        assert_eq!(reply.header("vary"), Some("accept-encoding"));
    }
    // An app route gets index.html, compressed too.
    let reply = http(
        server.addr,
        "GET",
        "/visits/1",
        &[("Accept-Encoding", "br")],
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(reply.body, b"brotli index");
    // A file built without a compressed copy is sent as it is.
    let reply = http(server.addr, "GET", "/sw.js", &[("Accept-Encoding", "br")]).await;
    assert_eq!(reply.header("content-encoding"), None);
}

#[tokio::test]
async fn scripts_styles_and_manifest_have_their_mime_types() {
    let server = TestServer::start().await;
    for (path, mime) in [
        ("/attune-0123456789abcdef.js", "text/javascript"),
        ("/sw.js", "text/javascript"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/style-0123456789abcdef.css", "text/css"),
        ("/index.html", "text/html"),
    ] {
        let reply = server.get(path).await;
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with(mime), "{path}: {content_type}");
    }
}

#[tokio::test]
async fn an_unbuilt_app_says_how_to_build_it() {
    let server = TestServer::start_without_a_built_app().await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, 503);
    assert!(reply.text().contains("cargo xtask run"), "{}", reply.text());
    assert_eq!(server.get("/visits/1").await.status, 503);
    assert_eq!(server.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let server = TestServer::start().await;
    let generated = server.get("/healthz").await;
    let id = generated.header("x-request-id").expect("generated id");
    assert!(!id.is_empty());
    let given = http(
        server.addr,
        "GET",
        "/healthz",
        &[("x-request-id", "tablet-7-sync-42")],
    )
    .await;
    assert_eq!(given.header("x-request-id"), Some("tablet-7-sync-42"));
}

#[tokio::test]
async fn migrations_run_at_start() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("nested/data");
    let db = SqliteStore::open(&data).await.expect("first open");
    let created: String =
        sqlx::query_scalar("SELECT value FROM server_meta WHERE key = 'schema_created_at'")
            .fetch_one(db.pool())
            .await
            .expect("server_meta row");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .expect("journal mode");
    assert_eq!(journal, "wal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(db.pool())
        .await
        .expect("synchronous");
    assert_eq!(synchronous, 2, "synchronous=FULL");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .expect("foreign keys");
    assert_eq!(foreign_keys, 1);
    db.pool().close().await;
    assert!(data.join(attune_server::DATABASE_FILE).is_file());

    let again = SqliteStore::open(&data).await.expect("second open");
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT value FROM server_meta WHERE key = 'schema_created_at'")
            .fetch_all(again.pool())
            .await
            .expect("server_meta rows");
    assert_eq!(rows, vec![created], "reopening must not migrate twice");
    again.pool().close().await;
}

// The real binary.

/// Kills the child if a test fails before it exits on its own.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn server_command(dir: &Path, addr: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_attune-server"));
    command
        .current_dir(dir)
        .env("ATTUNE_ADDR", addr)
        .env("ATTUNE_DATA_DIR", dir.join("data"))
        .env("ATTUNE_DIST", dir.join("dist"))
        .env_remove("ATTUNE_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

fn run_to_completion(command: &mut Command) -> (std::process::ExitStatus, String) {
    let output = command.output().expect("run attune-server");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_listen_address_is_refused_with_a_clear_error() {
    for bad in ["nonsense", "host:notaport"] {
        let dir = TempDir::new().expect("temp dir");
        let (status, stderr) = run_to_completion(&mut server_command(dir.path(), bad));
        assert!(!status.success(), "{bad}: {status}");
        assert!(stderr.contains("ATTUNE_ADDR"), "{bad}: {stderr}");
        assert!(stderr.contains("host:port"), "{bad}: {stderr}");
        assert!(stderr.contains(bad), "{bad}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "nothing is written before the address is checked"
        );
    }
}

#[test]
fn a_bad_public_url_is_refused_before_anything_is_written() {
    let dir = TempDir::new().expect("temp dir");
    let mut command = server_command(dir.path(), "127.0.0.1:0");
    command
        .env_remove("ATTUNE_PUBLIC_URL")
        .args(["--public-url", "research.example.org"]);
    let (status, stderr) = run_to_completion(&mut command);
    assert!(!status.success());
    assert!(stderr.contains("--public-url"), "{stderr}");
    assert!(stderr.contains("https://"), "{stderr}");
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_port_already_in_use_is_reported_clearly() {
    let dir = TempDir::new().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (status, stderr) = run_to_completion(&mut server_command(dir.path(), &addr));
    assert!(!status.success());
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn the_binary_announces_its_address_serves_and_stops_on_sigterm() {
    let dir = TempDir::new().expect("temp dir");
    write_fake_dist(&dir.path().join("dist"));
    let child = server_command(dir.path(), "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start attune-server");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut stderr = child.0.stderr.take().expect("stderr");

    // Read stdout on a thread so a hung server fails the test instead of hanging it.
    let (first_line_tx, first_line_rx) = std::sync::mpsc::channel();
    let stdout_reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = first_line_tx.send(line);
        }
        lines.map_while(Result::ok).collect::<Vec<_>>()
    });
    let line = first_line_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server prints its address");
    let url = line
        .strip_prefix("Attune server listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: SocketAddr = url.parse().expect("a socket address");
    assert_ne!(addr.port(), 0, "the real port is printed");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let reply = runtime.block_on(http(addr, "GET", "/healthz", &[]));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["database"], "ok");
    assert_eq!(
        runtime.block_on(http(addr, "GET", "/", &[])).text(),
        INDEX_HTML
    );

    let terminated = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .expect("run kill");
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let rest_of_stdout = stdout_reader.join().expect("stdout reader");
    assert!(
        rest_of_stdout.is_empty(),
        "one line only: {rest_of_stdout:?}"
    );
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).expect("stderr");
    assert!(logs.contains("stopped"), "{logs}");
    assert!(dir.path().join("data").join("attune.db").is_file());
}
