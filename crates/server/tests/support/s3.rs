//! A real S3-protocol server for the tests: `s3s-fs` (`cargo xtask setup` installs it) on a
//! free port of 127.0.0.1, storing into a temporary folder, with one bucket.
//!
//! Without the binary a test is skipped with a note, except under CI (`CI` set), where a
//! missing S3 server is a failure rather than a silent pass.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attune_server::blobs::S3Blobs;

pub const BINARY: &str = "s3s-fs";
const ACCESS_KEY: &str = "attune-test";
const SECRET_KEY: &str = "attune-test-secret";
pub const BUCKET: &str = "attune";

/// A running s3s-fs, stopped when dropped.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    /// The folder s3s-fs stores into (a directory per bucket).
    pub root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the s3s-fs binary is: on PATH or in ~/.cargo/bin.
pub fn binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo").join("bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join(BINARY))
        .find(|path| path.is_file())
}

impl S3Server {
    /// Starts s3s-fs with an empty bucket [`BUCKET`], or `None` (with a note) when the binary
    /// is missing and `CI` is not set.
    pub fn start() -> Option<Self> {
        let Some(binary) = binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{BINARY} is not installed: the S3 blob tests need a real S3 server \
                 (`cargo xtask setup` installs it), and CI must not skip them"
            );
            eprintln!(
                "note: {BINARY} is not installed, so this S3 test is skipped \
                 (`cargo xtask setup` installs it)"
            );
            return None;
        };
        let root = tempfile::TempDir::new().expect("temp dir");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket folder");
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("local addr").port()
        };
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{BINARY} did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// The settings a client of this server needs (endpoint, credentials, region).
    pub fn settings(&self) -> [(&str, &str); 4] {
        [
            ("endpoint", self.endpoint.as_str()),
            ("access_key_id", ACCESS_KEY),
            ("secret_access_key", SECRET_KEY),
            ("region", "us-east-1"),
        ]
    }

    /// A new client (as a new server process would have) on `s3://attune/<prefix>`.
    pub fn blobs(&self, prefix: &str) -> S3Blobs {
        S3Blobs::from_url_with(&format!("s3://{BUCKET}/{prefix}"), &self.settings())
            .expect("S3 blob store")
    }
}
