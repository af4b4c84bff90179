//! `cargo xtask bench`: performance figures with their budgets. Prints a table, writes
//! `target/bench.json`, and fails when a figure is over its budget.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::build::{build_app, build_server};
use crate::{cmd, postgres, root, setup, step};

/// A figure we track; `budget: None` is reported but not yet held to a limit.
struct Row {
    name: &'static str,
    unit: &'static str,
    budget: Option<f64>,
    /// Whether the budget is a floor (rates) rather than a ceiling (sizes, times).
    higher_is_better: bool,
}

/// The budgets.
const ROWS: &[Row] = &[
    Row {
        name: "first_load_brotli_kb",
        unit: "KB",
        budget: Some(250.0),
        higher_is_better: false,
    },
    Row {
        name: "cold_offline_start_ms",
        unit: "ms",
        budget: None,
        higher_is_better: false,
    },
    // Argon2id at the vault's parameters. The design asks for 0.5-1 s on a mid-range tablet;
    // this machine is faster than one, so the budget leaves room for a slower device's share.
    Row {
        name: "unlock_ms",
        unit: "ms",
        budget: Some(1000.0),
        higher_is_better: false,
    },
    // Key press to "Saved on this tablet": sealed and committed with strict durability.
    Row {
        name: "save_latency_ms",
        unit: "ms",
        budget: Some(100.0),
        higher_is_better: false,
    },
    // Sealed, signed revisions the server takes in per second over HTTP, in batches of 100
    // (crates/server/tests/ingest_bench.rs, median of 5 runs of 5,000).
    Row {
        name: "ingest_sqlite_rps",
        unit: "rec/s",
        budget: Some(5000.0),
        higher_is_better: true,
    },
    Row {
        name: "ingest_postgres_rps",
        unit: "rec/s",
        budget: None,
        higher_is_better: true,
    },
    // 1,000 outbox revisions from the browser to a real server on SQLite: "Sync now" until
    // every one is confirmed (sealed, signed, pushed in batches, marked synced). Measured
    // 2.3 s here; the budget leaves room for a slower tablet.
    Row {
        name: "sync_1000_ms",
        unit: "ms",
        budget: Some(5000.0),
        higher_is_better: false,
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
    let mut figures: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the measurements")?;

    step("measuring server ingest (SQLite, then PostgreSQL with fsync on)");
    figures["ingest_sqlite_rps"] = json!(ingest_rps(None)?);
    let cluster = postgres::TempPostgres::start_durable()?;
    figures["ingest_postgres_rps"] = json!(ingest_rps(Some(&cluster.url))?);
    drop(cluster);

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
            Some(b)
                if (row.higher_is_better && value < b) || (!row.higher_is_better && value > b) =>
            {
                over += 1;
                "OVER BUDGET"
            }
            Some(_) => "ok",
            None => "reported",
        };
        let floor = if row.higher_is_better { ">=" } else { "" };
        let budget = row
            .budget
            .map_or_else(|| "-".to_string(), |b| format!("{floor}{b:.1}"));
        println!(
            "{:<26} {:>10.1} {:>6} {:>10}  {status}",
            row.name, value, row.unit, budget
        );
        rows.push(json!({
            "name": row.name,
            "value": value,
            "unit": row.unit,
            "budget": row.budget,
            "higher_is_better": row.higher_is_better,
        }));
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

/// Runs the ingest measurement (an ignored test of attune-server, in the optimised
/// `server-bench` profile) against SQLite, or the PostgreSQL at `database_url`, and reads the
/// median rate it prints.
fn ingest_rps(database_url: Option<&str>) -> Result<f64> {
    let mut command = cmd("cargo");
    command.args([
        "test",
        "--profile",
        "server-bench",
        "-p",
        "attune-server",
        "--test",
        "ingest_bench",
        "--",
        "--ignored",
        "--nocapture",
    ]);
    if let Some(url) = database_url {
        command.env("ATTUNE_BENCH_DATABASE_URL", url);
    }
    let out = command.output().context("running the ingest measurement")?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("the ingest measurement failed ({}):\n{stdout}", out.status);
    }
    parse_ingest_rps(&stdout).with_context(|| format!("no `ingest_rps` line in:\n{stdout}"))
}

/// The rate in the `ingest_rps <value>` line of the measurement's output.
fn parse_ingest_rps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("ingest_rps "))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_ingest_rps;

    #[test]
    fn the_ingest_rate_is_read_from_the_measurement_output() {
        let output = "running 1 test\ningest_rps 7301.5\ntest ingest_rate ... ok\n";
        assert_eq!(parse_ingest_rps(output), Some(7301.5));
        assert_eq!(parse_ingest_rps("test ingest_rate ... FAILED"), None);
    }
}
