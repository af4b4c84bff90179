//! Building the PWA (trunk, release, offline) and the server.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{cmd, root, run_checked, step};

/// Builds the PWA in release mode into `dist/` (wasm-opt, service worker, hashed assets),
/// then the researcher console into `dist-console/` ([`build_console`]). Offline: trunk uses
/// the wasm-bindgen and wasm-opt that `setup` installed.
pub fn build_app() -> Result<PathBuf> {
    step("building the app (trunk build --release)");
    run_checked(
        "trunk build",
        cmd("trunk").args(["build", "--release", "--offline=true", "index.html"]),
    )?;
    let dist = root().join("dist");
    if !dist.join("sw.js").exists() {
        anyhow::bail!("trunk build left no dist/sw.js: the post-build step did not run");
    }
    build_console()?;
    Ok(dist)
}

/// Where the console is built: served by attune-server at /console/ (`ATTUNE_CONSOLE_DIST`).
pub fn console_dist() -> PathBuf {
    root().join("dist-console")
}

/// Builds the researcher console (`console/`, its own Trunk.toml) into `dist-console/`.
fn build_console() -> Result<()> {
    step("building the researcher console (trunk build --release)");
    run_checked(
        "trunk build (console)",
        cmd("trunk")
            .args(["build", "--release", "--offline=true", "index.html"])
            .current_dir(root().join("console")),
    )?;
    if !console_dist().join("index.html").exists() {
        anyhow::bail!("trunk build left no dist-console/index.html");
    }
    Ok(())
}

/// Builds attune-server (the dev profile, shared with `cargo test`, so `run`, `test` and
/// `bench` compile it once) and returns the path of its binary.
pub fn build_server() -> Result<PathBuf> {
    step("building attune-server");
    run_checked(
        "cargo build -p attune-server",
        cmd("cargo").args(["build", "-p", "attune-server"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("debug").join("attune-server");
    bin.exists()
        .then_some(bin)
        .context("attune-server binary not found after building it")
}
