//! `cargo xtask bench`: performance figures with their budgets. Prints a table, writes
//! `target/bench.json`, and fails when a figure is over its budget.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::build::{build_app, build_server};
use crate::{cmd, root, setup, step};

/// A figure we track; `budget: None` is reported but not yet held to a limit.
struct Row {
    name: &'static str,
    unit: &'static str,
    budget: Option<f64>,
}

/// The budgets. Lower is better for every row.
const ROWS: &[Row] = &[
    Row {
        name: "first_load_brotli_kb",
        unit: "KB",
        budget: Some(250.0),
    },
    Row {
        name: "cold_offline_start_ms",
        unit: "ms",
        budget: None,
    },
    // Argon2id at the vault's parameters. The design asks for 0.5-1 s on a mid-range tablet;
    // this machine is faster than one, so the budget leaves room for a slower device's share.
    Row {
        name: "unlock_ms",
        unit: "ms",
        budget: Some(1000.0),
    },
    // Key press to "Saved on this tablet": sealed and committed with strict durability.
    Row {
        name: "save_latency_ms",
        unit: "ms",
        budget: Some(100.0),
    },
    // 1,000 outbox revisions from the browser to a real server on SQLite: "Sync now" until
    // every one is confirmed (sealed, signed, pushed in batches, marked synced).
    Row {
        name: "sync_1000_ms",
        unit: "ms",
        budget: None,
    },
];

pub fn bench() -> Result<ExitCode> {
    setup::setup()?;
    let dist = build_app()?;
    let server = build_server()?;
    step("measuring (headless Chromium, real server)");
    let out = cmd("node")
        .arg("bench/bench.mjs")
        .arg(&dist)
        .arg(&server)
        .current_dir(root().join("tests/e2e"))
        .output()
        .context("running tests/e2e/bench/bench.mjs")?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("the measurements failed ({})", out.status);
    }
    let figures: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the measurements")?;

    let mut over = 0;
    let mut rows = Vec::new();
    println!(
        "\n{:<26} {:>10} {:>6} {:>10}  status",
        "figure", "value", "unit", "budget"
    );
    for row in ROWS {
        let value = figures[row.name]
            .as_f64()
            .with_context(|| format!("no measurement for {}", row.name))?;
        let status = match row.budget {
            Some(b) if value > b => {
                over += 1;
                "OVER BUDGET"
            }
            Some(_) => "ok",
            None => "reported",
        };
        let budget = row
            .budget
            .map_or_else(|| "-".to_string(), |b| format!("{b:.1}"));
        println!(
            "{:<26} {:>10.1} {:>6} {:>10}  {status}",
            row.name, value, row.unit, budget
        );
        rows.push(
            json!({ "name": row.name, "value": value, "unit": row.unit, "budget": row.budget }),
        );
    }
    let path = root().join("target/bench.json");
    std::fs::create_dir_all(root().join("target")).context("creating target/")?;
    std::fs::write(&path, serde_json::to_string_pretty(&rows)?)
        .context("writing target/bench.json")?;
    println!("\nwritten to {}", path.display());
    Ok(if over == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
