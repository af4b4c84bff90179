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
    // The floor beside it, in the same process and interleaved with it: plain inserts of
    // rows of the same size, 100 per transaction, same engine and durability (WAL with
    // `synchronous=FULL` on SQLite), no HTTP, no checks. The ratio is ingest over raw.
    Row {
        name: "raw_sqlite_rps",
        unit: "rows/s",
        budget: None,
        higher_is_better: true,
    },
    Row {
        name: "ingest_vs_raw_sqlite",
        unit: "x",
        budget: Some(0.8),
        higher_is_better: true,
    },
    Row {
        name: "ingest_postgres_rps",
        unit: "rec/s",
        budget: None,
        higher_is_better: true,
    },
    Row {
        name: "raw_postgres_rps",
        unit: "rows/s",
        budget: None,
        higher_is_better: true,
    },
    Row {
        name: "ingest_vs_raw_postgres",
        unit: "x",
        budget: Some(0.8),
        higher_is_better: true,
    },
    // 50 devices (the core sync engine over HTTP, 1,000 records and 3 recordings of ~64 KB
    // each) syncing at once, from the first starting to the last done
    // (crates/server/tests/sync_faults/load.rs); the devices' sealing runs on the same two
    // cores as the server. The p95 is the server's time for one push, arrival to answer.
    Row {
        name: "load_50_devices_sqlite_s",
        unit: "s",
        budget: None,
        higher_is_better: false,
    },
    Row {
        name: "load_push_p95_sqlite_ms",
        unit: "ms",
        budget: None,
        higher_is_better: false,
    },
    Row {
        name: "load_50_devices_postgres_s",
        unit: "s",
        budget: None,
        higher_is_better: false,
    },
    Row {
        name: "load_push_p95_postgres_ms",
        unit: "ms",
        budget: None,
        higher_is_better: false,
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
    for backend in ["sqlite", "postgres"] {
        // The cluster only for its own measurement, stopped after it.
        let cluster = match backend {
            "postgres" => Some(postgres::TempPostgres::start_durable()?),
            _ => None,
        };
        let (ingest, raw) = ingest_rps(cluster.as_ref().map(|cluster| cluster.url.as_str()))?;
        figures[format!("ingest_{backend}_rps")] = json!(ingest);
        figures[format!("raw_{backend}_rps")] = json!(raw);
        figures[format!("ingest_vs_raw_{backend}")] = json!(ingest / raw);
    }

    step("measuring 50 devices syncing at once (SQLite, then PostgreSQL with fsync on)");
    let (seconds, p95) = load(None)?;
    figures["load_50_devices_sqlite_s"] = json!(seconds);
    figures["load_push_p95_sqlite_ms"] = json!(p95);
    let cluster = postgres::TempPostgres::start_durable()?;
    let (seconds, p95) = load(Some(&cluster.url))?;
    figures["load_50_devices_postgres_s"] = json!(seconds);
    figures["load_push_p95_postgres_ms"] = json!(p95);
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
        // Ratios with two decimals, everything else with one.
        let decimals = if row.unit == "x" { 2 } else { 1 };
        let budget = row
            .budget
            .map_or_else(|| "-".to_string(), |b| format!("{floor}{b:.decimals$}"));
        println!(
            "{:<26} {:>10.decimals$} {:>6} {:>10}  {status}",
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
/// median rates it prints: the server's ingest and the raw inserts beside it.
fn ingest_rps(database_url: Option<&str>) -> Result<(f64, f64)> {
    let stdout = server_measurement("ingest_bench", "ingest_rate", database_url)?;
    Ok((figure(&stdout, "ingest_rps")?, figure(&stdout, "raw_rps")?))
}

/// Runs the load measurement (`load_bench` in the `sync_faults` test binary) and reads the
/// seconds for all 50 devices and the p95 push time in milliseconds.
fn load(database_url: Option<&str>) -> Result<(f64, f64)> {
    let stdout = server_measurement("sync_faults", "load::load_bench", database_url)?;
    Ok((
        figure(&stdout, "load_50_devices_s")?,
        figure(&stdout, "load_push_p95_ms")?,
    ))
}

/// Runs the ignored test `name` of attune-server's test binary `binary` in the optimised
/// `server-bench` profile, against SQLite or the PostgreSQL at `database_url`; its output.
fn server_measurement(binary: &str, name: &str, database_url: Option<&str>) -> Result<String> {
    let mut command = cmd("cargo");
    command.args([
        "test",
        "--profile",
        "server-bench",
        "-p",
        "attune-server",
        "--test",
        binary,
        "--",
        "--ignored",
        "--exact",
        name,
        "--nocapture",
    ]);
    if let Some(url) = database_url {
        command.env("ATTUNE_BENCH_DATABASE_URL", url);
    }
    let out = command
        .output()
        .with_context(|| format!("running the measurement {binary}::{name}"))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("the measurement {name} failed ({}):\n{stdout}", out.status);
    }
    Ok(stdout)
}

/// The value in the `<name> <value>` line of a measurement's output.
fn figure(output: &str, name: &str) -> Result<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no `{name} <value>` line in:\n{output}"))
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn a_figure_is_read_from_the_measurement_output() {
        let output = "running 1 test\ningest_rps 7301.5\ntest ingest_rate ... ok\n";
        assert_eq!(figure(output, "ingest_rps").unwrap(), 7301.5);
        assert!(figure("test ingest_rate ... FAILED", "ingest_rps").is_err());
        let output = "load_50_devices_s 12.40\nload_push_p95_ms 85.1\n";
        assert_eq!(figure(output, "load_50_devices_s").unwrap(), 12.4);
        assert_eq!(figure(output, "load_push_p95_ms").unwrap(), 85.1);
        // A name is not read from a longer one's line.
        assert!(figure("load_push_p95_ms_max 3\n", "load_push_p95_ms").is_err());
    }
}
