//! `cargo xtask test`: every check and test the project has, in order, then one summary line.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::build::{build_app, build_server};
use crate::{cmd, postgres, root, setup, step};

/// Passed and failed counts, per step and in total.
#[derive(Default, Clone, Copy)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
    fn one(ok: bool) -> Tally {
        Tally {
            passed: usize::from(ok),
            failed: usize::from(!ok),
        }
    }
}

pub fn test() -> Result<ExitCode> {
    setup::setup()?;
    let mut total = Tally::default();
    let mut report = Vec::new();
    let mut record = |name: &str, tally: Tally| {
        report.push(format!(
            "  {name:<28} {:>4} passed {:>4} failed",
            tally.passed, tally.failed
        ));
        total.add(tally);
    };

    step("cargo fmt --check");
    record(
        "fmt",
        Tally::one(check(cmd("cargo").args(["fmt", "--all", "--check"]))),
    );

    step("cargo clippy (native)");
    record(
        "clippy native",
        Tally::one(check(cmd("cargo").args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))),
    );

    step("cargo clippy (wasm32)");
    // The app with its browser tests; core as the app uses it (core's own tests are native:
    // proptest does not build for wasm32).
    let wasm_clippy = |scope: &[&str]| {
        check(cmd("cargo").arg("clippy").args(scope).args([
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]))
    };
    let app = wasm_clippy(&["-p", "attune", "--all-targets"]);
    let core = wasm_clippy(&["-p", "attune-core", "--lib", "--all-features"]);
    let console = wasm_clippy(&["-p", "attune-console"]);
    record("clippy wasm32", Tally::one(app && core && console));

    step("start PostgreSQL for the store tests");
    // Kept alive until the end of this function; dropping it stops and deletes the cluster,
    // also when a later step fails.
    let postgres = match postgres::TempPostgres::start() {
        Ok(cluster) => {
            eprintln!("PostgreSQL at {}", cluster.url);
            record("postgres", Tally::one(true));
            Some(cluster)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            record("postgres", Tally::one(false));
            None
        }
    };

    step("native tests (the server store suite on SQLite and PostgreSQL)");
    let mut native = cmd("cargo");
    native.args(["test", "--workspace", "--no-fail-fast"]);
    match &postgres {
        Some(cluster) => native.env("ATTUNE_TEST_POSTGRES_URL", &cluster.url),
        // Without a cluster the PostgreSQL suite must fail, not skip.
        None => native.env("CI", "1"),
    };
    // The export tests read the files with the Python tools `setup` installed.
    native.env("ATTUNE_PYTHON", crate::setup::python());
    record("native tests", cargo_tests(&mut native)?);
    drop(postgres);

    step("browser tests (wasm-bindgen-test in headless Chromium)");
    record(
        "browser tests",
        cargo_tests(
            cmd("cargo")
                .args([
                    "test",
                    "-p",
                    "attune",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--no-fail-fast",
                ])
                .env("CHROMEDRIVER", "/usr/bin/chromedriver")
                .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        )?,
    );

    other_engines(&mut record)?;

    step("end-to-end tests (Playwright against a real attune-server)");
    end_to_end(&mut record)?;

    eprintln!("\nSummary");
    for line in &report {
        eprintln!("{line}");
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 && total.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask test-engines`: only the browser tests in WebKit and Firefox.
pub fn engines() -> Result<ExitCode> {
    setup::setup()?;
    let mut total = Tally::default();
    other_engines(&mut |name: &str, tally: Tally| {
        eprintln!(
            "  {name:<28} {:>4} passed {:>4} failed",
            tally.passed, tally.failed
        );
        total.add(tally);
    })?;
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 && total.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The IndexedDB store's conformance suite, the store's own tests and the shell on the other
/// engines tablets run: WebKit (iPad's engine) and Firefox.
fn other_engines(record: &mut dyn FnMut(&str, Tally)) -> Result<()> {
    const TESTS: &[&str] = &["--lib", "--test", "idb_store", "--test", "browser_shell"];
    step("browser tests in WebKit (WebKitGTK's MiniBrowser over WebKitWebDriver, in Xvfb)");
    record("browser tests WebKit", webkit_tests(TESTS)?);

    step("browser tests in Firefox ESR (geckodriver, headless)");
    record(
        "browser tests Firefox",
        cargo_tests(
            cmd("cargo")
                .args(["test", "-p", "attune", "--target", "wasm32-unknown-unknown"])
                .arg("--no-fail-fast")
                .args(TESTS)
                .env("GECKODRIVER", "geckodriver")
                .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        )?,
    );
    Ok(())
}

/// The browser tests in WebKit: WebKitWebDriver in a virtual display, behind the proxy
/// that asks MiniBrowser for WebKit's mock microphone (`tests/e2e/webkit/driver-proxy.mjs`),
/// both stopped when the tests end.
fn webkit_tests(tests: &[&str]) -> Result<Tally> {
    let driver_port = free_port()?;
    let proxy_port = free_port()?;
    let driver = Background::spawn(
        Command::new("xvfb-run")
            .args(["-a", "/usr/bin/WebKitWebDriver"])
            .arg(format!("--port={driver_port}")),
    )?;
    let proxy = Background::spawn(
        cmd("node")
            .arg("tests/e2e/webkit/driver-proxy.mjs")
            .arg(proxy_port.to_string())
            .arg(driver_port.to_string()),
    )?;
    if !wait_for_status(proxy_port) {
        eprintln!("error: WebKitWebDriver did not answer on port {driver_port}");
        return Ok(Tally::one(false));
    }
    let tally = cargo_tests(
        cmd("cargo")
            .args(["test", "-p", "attune", "--target", "wasm32-unknown-unknown"])
            .arg("--no-fail-fast")
            .args(tests)
            .env(
                "SAFARIDRIVER_REMOTE",
                format!("http://127.0.0.1:{proxy_port}"),
            )
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    );
    drop((proxy, driver));
    tally
}

/// A free TCP port on 127.0.0.1 (free when asked: the program given it binds it soon after).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits up to 30 s for a WebDriver's `/status` on `port` to answer.
fn wait_for_status(port: u16) -> bool {
    use std::io::{Read, Write};
    for _ in 0..60 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            // With the port: geckodriver refuses a Host header without it (500).
            let request = format!("GET /status HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let _ = stream.write_all(request.as_bytes());
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    false
}

/// A program running for the length of a step, in its own process group, which is stopped
/// (all of it: xvfb-run starts Xvfb and the driver, the driver a browser) when dropped.
struct Background(std::process::Child);

impl Background {
    fn spawn(command: &mut Command) -> Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let child = command
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Self(child))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn check(command: &mut Command) -> bool {
    command.status().is_ok_and(|s| s.success())
}

/// Runs `cargo test`, showing its output, and counts the `test result:` lines. A build failure
/// (no result lines, non-zero exit) counts as one failure.
fn cargo_tests(command: &mut Command) -> Result<Tally> {
    let output = tee(command)?;
    let mut tally = Tally::default();
    for line in output.text.lines() {
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            tally.add(parse_result_line(rest));
        }
    }
    if !output.success && tally.failed == 0 {
        tally.failed += 1;
    }
    Ok(tally)
}

/// `ok. 3 passed; 0 failed; 0 ignored; ...` -> (3, 0)
fn parse_result_line(rest: &str) -> Tally {
    let mut tally = Tally::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let n = |i: usize| {
            words
                .get(i)
                .and_then(|w| w.parse::<usize>().ok())
                .unwrap_or(0)
        };
        match words.as_slice() {
            [.., _, "passed"] => tally.passed += n(words.len() - 2),
            [.., _, "failed"] => tally.failed += n(words.len() - 2),
            _ => {}
        }
    }
    tally
}

struct Teed {
    text: String,
    success: bool,
}

/// Runs a command, passing its output through, and keeps its stdout for parsing.
fn tee(command: &mut Command) -> Result<Teed> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("starting tests")?;
    let mut text = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{line}");
            text.push_str(&line);
            text.push('\n');
        }
    }
    let success = child.wait().is_ok_and(|s| s.success());
    Ok(Teed { text, success })
}

/// Builds the app (release, once) and the server, then runs Playwright in Chromium, and the
/// end-to-end smoke in WebKit and Firefox over WebDriver (`tests/e2e/engines`); counts come
/// from Playwright's JSON reports.
fn end_to_end(record: &mut dyn FnMut(&str, Tally)) -> Result<()> {
    let dist = match build_app() {
        Ok(dist) => dist,
        Err(e) => {
            eprintln!("error: {e:#}");
            record("end-to-end tests", Tally::one(false));
            return Ok(());
        }
    };
    let server = build_server()?;
    record(
        "end-to-end tests",
        playwright(&dist, &server, None, "e2e-results.json", &[])?,
    );

    step("end-to-end smoke in WebKit (WebKitWebDriver in Xvfb) and Firefox ESR (geckodriver)");
    for engine in ["webkit", "firefox"] {
        let port = free_port()?;
        let mut driver = if engine == "webkit" {
            let mut c = Command::new("xvfb-run");
            c.args(["-a", "/usr/bin/WebKitWebDriver"])
                .arg(format!("--port={port}"));
            c
        } else {
            let mut c = cmd("geckodriver");
            c.arg(format!("--port={port}"));
            c
        };
        let driver = Background::spawn(&mut driver)?;
        let tally = if wait_for_status(port) {
            let url = format!("http://127.0.0.1:{port}");
            playwright(
                &dist,
                &server,
                Some("playwright.engines.config.ts"),
                &format!("e2e-{engine}-results.json"),
                &[("ATTUNE_ENGINE", engine), ("ATTUNE_WEBDRIVER_URL", &url)],
            )?
        } else {
            eprintln!("error: the {engine} WebDriver did not answer on port {port}");
            Tally::one(false)
        };
        drop(driver);
        record(&format!("end-to-end smoke {engine}"), tally);
    }
    Ok(())
}

/// One Playwright run (`config`, or the default one) whose JSON report is
/// `target/<results>`.
fn playwright(
    dist: &Path,
    server: &Path,
    config: Option<&str>,
    results: &str,
    env: &[(&str, &str)],
) -> Result<Tally> {
    let results = root().join("target").join(results);
    let _ = std::fs::remove_file(&results);
    let mut command = cmd("npx");
    command.args(["playwright", "test"]);
    if let Some(config) = config {
        command.args(["-c", config]);
    }
    command
        .current_dir(root().join("tests/e2e"))
        .env("ATTUNE_DIST", dist)
        .env("ATTUNE_CONSOLE_DIST", crate::build::console_dist())
        .env("ATTUNE_SERVER_BIN", server);
    for (key, value) in env {
        command.env(key, value);
    }
    let ok = check(&mut command);
    let json: serde_json::Value = match std::fs::read_to_string(&results) {
        Ok(text) => serde_json::from_str(&text).context("reading Playwright's JSON report")?,
        Err(_) => return Ok(Tally::one(false)),
    };
    let stat = |k: &str| json["stats"][k].as_u64().unwrap_or(0) as usize;
    let mut tally = Tally {
        passed: stat("expected"),
        failed: stat("unexpected") + stat("flaky"),
    };
    if !ok && tally.failed == 0 {
        tally.failed = 1;
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn cargo_result_lines_are_counted() {
        let t = parse_result_line(
            "ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        );
        assert_eq!((t.passed, t.failed), (12, 0));
        let t =
            parse_result_line("FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out");
        assert_eq!((t.passed, t.failed), (3, 2));
    }
}
