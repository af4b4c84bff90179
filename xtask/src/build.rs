//! Building the PWA (trunk, release, offline) and the server.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{cmd, root, run_checked, step};

/// Builds the PWA in release mode into `dist/` (wasm-opt, service worker, hashed assets).
/// Offline: trunk uses the wasm-bindgen and wasm-opt that `setup` installed.
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
    Ok(dist)
}

/// Which build of the server to use.
#[derive(Clone, Copy)]
pub enum ServerProfile {
    /// The test profile: shares its build with `cargo test`.
    Dev,
    /// Optimised, for `cargo xtask run`.
    Release,
}

/// Builds attune-server and returns the path of its binary.
pub fn build_server(profile: ServerProfile) -> Result<PathBuf> {
    let (args, dir): (&[&str], &str) = match profile {
        ServerProfile::Dev => (&[], "debug"),
        ServerProfile::Release => (&["--profile", "release-native"], "release-native"),
    };
    step("building attune-server");
    run_checked(
        "cargo build -p attune-server",
        cmd("cargo")
            .args(["build", "-p", "attune-server"])
            .args(args),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join(dir).join("attune-server");
    bin.exists()
        .then_some(bin)
        .context("attune-server binary not found after building it")
}
