//! Attune's project tasks: `cargo xtask setup | run | test | bench | ci`.
//!
//! Everything a fresh Debian machine with Rust, Node and npm needs is installed by `setup`,
//! which every other task calls first and which is quick when everything is present.

mod bench;
mod build;
mod postgres;
mod setup;
mod test;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
Attune project tasks

Usage: cargo xtask <task>

Tasks:
  setup   install what the project needs (wasm32 target, trunk, wasm-bindgen-cli, Chromium,
          PostgreSQL, npm packages); quick when everything is already there
  run     build the app in release mode and start the server on http://127.0.0.1:8080
          (ATTUNE_ADDR=host:port to change it); Ctrl-C stops it
  test    fmt, clippy (native and wasm32), native tests, browser tests, end-to-end tests;
          ends with one line `N passed, N failed`
  test-engines
          only the browser tests in WebKit and Firefox (part of `test`)
  bench   measure bundle size, cold offline start, unlock, save latency, server ingest
          (SQLite and PostgreSQL); prints a table, writes
          target/bench.json, fails when a figure is over its budget
  ci      what CI runs (.ci/run): the same as `test`
";

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "setup" => setup::setup(),
        "run" => run(),
        "test" | "ci" => test::test(),
        "bench" => bench::bench(),
        "test-engines" => test::engines(),
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("error: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("\nerror: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask run`: the app in release mode, served by attune-server with SQLite in ./data.
fn run() -> Result<ExitCode> {
    setup::setup()?;
    build::build_app()?;
    let server = build::build_server()?;
    let addr = std::env::var("ATTUNE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    step(&format!(
        "starting attune-server on {addr} (Ctrl-C stops it)"
    ));
    let port = addr.rsplit(':').next().unwrap_or("8080");
    println!(
        "   the researcher console: http://localhost:{port}/console/ (passkeys need a name, not \
         127.0.0.1); invite the first admin with\n   \
         target/debug/attune-server team invite --role admin --url http://localhost:{port}"
    );
    // The server prints the URL it listens on; Ctrl-C reaches it too (same process group)
    // and it shuts down cleanly.
    let status = Command::new(&server)
        .arg("serve")
        .env("ATTUNE_ADDR", &addr)
        .env("ATTUNE_DIST", root().join("dist"))
        .env("ATTUNE_CONSOLE_DIST", build::console_dist())
        .env("ATTUNE_DATA_DIR", root().join("data"))
        .current_dir(root())
        .status()
        .context("starting attune-server")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Prints a progress line that stands out in long logs.
pub fn step(what: &str) {
    eprintln!("\x1b[1m==> {what}\x1b[0m");
}

/// The PATH with the tools the project installs: cargo's bin dir and the npm binaries
/// (wasm-opt from npm's binaryen).
pub fn tool_path() -> std::ffi::OsString {
    let mut dirs = vec![
        root().join("tests/e2e/node_modules/.bin"),
        home().join(".cargo/bin"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// A command with the project's tool PATH, run from the repository root.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", tool_path()).current_dir(root());
    c
}

/// Runs a command; fails with a message naming `what` when it does not succeed.
pub fn run_checked(what: &str, command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("{what}: could not start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout when it succeeds, `None` when it fails or is missing.
pub fn output_of(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
