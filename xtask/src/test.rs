//! `cargo xtask test`: every check and test the project has, in order, then one summary line.

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
    record("clippy wasm32", Tally::one(app && core));

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

    step("end-to-end tests (Playwright against a real attune-server)");
    record("end-to-end tests", end_to_end()?);

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

/// Builds the app (release, once) and the server, then runs Playwright; counts come from its
/// JSON report.
fn end_to_end() -> Result<Tally> {
    let dist = match build_app() {
        Ok(dist) => dist,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(Tally::one(false));
        }
    };
    let server = build_server()?;
    let results = root().join("target/e2e-results.json");
    let _ = std::fs::remove_file(&results);
    let ok = check(
        cmd("npx")
            .args(["playwright", "test"])
            .current_dir(root().join("tests/e2e"))
            .env("ATTUNE_DIST", &dist)
            .env("ATTUNE_SERVER_BIN", &server),
    );
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
