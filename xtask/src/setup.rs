//! `cargo xtask setup`: installs what the project needs, skipping what is already there.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::{cmd, output_of, root, run_checked, step};

/// The trunk release that installs with `--locked` here (0.22 does not).
const TRUNK_VERSION: &str = "0.21.14";

/// Debian packages: the browsers for the tests (Chromium; WebKitGTK, the engine of Safari,
/// with its WebDriver and a virtual display; Firefox ESR), and PostgreSQL for the server's
/// store tests.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    ("chromium-driver", "/usr/bin/chromedriver"),
    ("postgresql", "/usr/lib/postgresql"),
    ("webkit2gtk-driver", "/usr/bin/WebKitWebDriver"),
    ("xvfb", "/usr/bin/xvfb-run"),
    ("xauth", "/usr/bin/xauth"),
    ("firefox-esr", "/usr/bin/firefox-esr"),
    // WebKitGTK's MediaRecorder encodes AAC in MP4 (as Safari records) with voaacenc from here.
    (
        "gstreamer1.0-plugins-bad",
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvoaacenc.so",
    ),
    // The exports' R script and SPSS syntax are run by the tests.
    ("r-base-core", "/usr/bin/Rscript"),
    ("pspp", "/usr/bin/pspp"),
    // Debian's Python with venv, for the Python test tools below.
    ("python3-venv", "/usr/share/doc/python3-venv"),
];

/// The geckodriver release (Firefox's WebDriver), from crates.io.
const GECKODRIVER_VERSION: &str = "0.37.1";

/// The s3s-fs release (an S3-protocol server on a folder, for the server's S3 blob tests);
/// later releases need a newer Rust than the project's.
const S3S_FS_VERSION: &str = "0.14.1";

/// Installs everything; each step says what it does and fails naming itself.
pub fn setup() -> Result<ExitCode> {
    wasm_target().context("setup step `wasm32 target`")?;
    trunk().context("setup step `trunk`")?;
    wasm_bindgen_cli().context("setup step `wasm-bindgen-cli`")?;
    debian_packages().context("setup step `Debian packages (browsers, drivers, postgresql)`")?;
    geckodriver().context("setup step `geckodriver`")?;
    s3s_fs().context("setup step `s3s-fs`")?;
    npm_packages().context("setup step `npm packages of tests/e2e`")?;
    python_tools().context("setup step `Python test tools (tests/tools/requirements.txt)`")?;
    Ok(ExitCode::SUCCESS)
}

fn wasm_target() -> Result<()> {
    let installed = output_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    step("installing the wasm32-unknown-unknown target");
    run_checked(
        "rustup target add",
        Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]),
    )
}

fn trunk() -> Result<()> {
    let version = output_of(cmd("trunk").arg("--version")).unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(TRUNK_VERSION) {
        return Ok(());
    }
    step(&format!(
        "installing trunk {TRUNK_VERSION} (about 6 minutes the first time)"
    ));
    run_checked(
        "cargo install trunk",
        cmd("cargo").args(["install", "--locked", &format!("trunk@{TRUNK_VERSION}")]),
    )
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
pub fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

fn wasm_bindgen_cli() -> Result<()> {
    let want = locked_wasm_bindgen_version()?;
    let have = output_of(cmd("wasm-bindgen").arg("--version")).unwrap_or_default();
    let runner = output_of(cmd("wasm-bindgen-test-runner").arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(want.as_str()) && runner.contains(&want) {
        return Ok(());
    }
    step(&format!(
        "installing wasm-bindgen-cli {want} (matches Cargo.lock)"
    ));
    let spec = format!("wasm-bindgen-cli@{want}");
    if run_checked(
        "cargo install --locked wasm-bindgen-cli",
        cmd("cargo").args(["install", "--locked", "--force", &spec]),
    )
    .is_ok()
    {
        return Ok(());
    }
    // Some releases only build with fresh dependency versions.
    step("retrying wasm-bindgen-cli without --locked");
    run_checked(
        "cargo install wasm-bindgen-cli",
        cmd("cargo").args(["install", "--force", &spec]),
    )
}

fn geckodriver() -> Result<()> {
    let version = output_of(cmd("geckodriver").arg("--version")).unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(GECKODRIVER_VERSION) {
        return Ok(());
    }
    step(&format!(
        "installing geckodriver {GECKODRIVER_VERSION} (a few minutes the first time)"
    ));
    run_checked(
        "cargo install geckodriver",
        cmd("cargo").args([
            "install",
            "--locked",
            &format!("geckodriver@{GECKODRIVER_VERSION}"),
        ]),
    )
}

/// The S3 server the server's blob tests start (`crates/server/tests/support/s3.rs`).
fn s3s_fs() -> Result<()> {
    let version = output_of(cmd("s3s-fs").arg("--version")).unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(S3S_FS_VERSION) {
        return Ok(());
    }
    step(&format!(
        "installing s3s-fs {S3S_FS_VERSION} (about 7 minutes the first time)"
    ));
    run_checked(
        "cargo install s3s-fs",
        cmd("cargo").args([
            "install",
            "--locked",
            "--features",
            "binary",
            &format!("s3s-fs@{S3S_FS_VERSION}"),
        ]),
    )
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, path)| !Path::new(path).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    let as_root = output_of(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    let apt = |args: &[&str]| {
        let mut c = if as_root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run_checked("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    run_checked("apt-get install", &mut install)
}

fn npm_packages() -> Result<()> {
    let dir = root().join("tests/e2e");
    let lock = std::fs::read(dir.join("package-lock.json"))
        .context("reading tests/e2e/package-lock.json")?;
    // npm ci writes node_modules/.package-lock.json; when it equals our lockfile's packages the
    // install is current. Comparing a stamp of the lockfile is simpler and as safe.
    let stamp_path = dir.join("node_modules/.attune-lock-stamp");
    let stamp = format!("{:x}", fnv1a(&lock));
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    step("installing the npm packages of tests/e2e (npm ci)");
    run_checked(
        "npm ci",
        cmd("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir),
    )?;
    std::fs::write(&stamp_path, stamp).context("writing the npm stamp")?;
    Ok(())
}

/// Where the Python test tools live: a virtual environment under `target/`.
pub fn python_tools_dir() -> std::path::PathBuf {
    root().join("target/test-tools/python")
}

/// The Python of the test tools' environment.
pub fn python() -> std::path::PathBuf {
    python_tools_dir().join("bin/python")
}

/// The Python packages the tests read exports with (pinned in tests/tools/requirements.txt),
/// in a virtual environment, reinstalled only when that file changes.
fn python_tools() -> Result<()> {
    let requirements_path = root().join("tests/tools/requirements.txt");
    let requirements =
        std::fs::read(&requirements_path).context("reading tests/tools/requirements.txt")?;
    let dir = python_tools_dir();
    let stamp_path = dir.join(".attune-requirements-stamp");
    let stamp = format!("{:x}", fnv1a(&requirements));
    if python().exists() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    step("installing the Python test tools (xmlschema, python-docx, pympi-ling)");
    // Debian's Python (installed with python3-venv above), not whichever is first on PATH.
    let system = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    run_checked(
        "python3 -m venv",
        Command::new(system)
            .args(["-m", "venv", "--clear"])
            .arg(&dir),
    )?;
    run_checked(
        "pip install",
        Command::new(python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements_path),
    )?;
    std::fs::write(&stamp_path, stamp).context("writing the Python tools stamp")?;
    Ok(())
}

/// A small, stable fingerprint (FNV-1a) of the lockfile.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
