//! A throwaway PostgreSQL cluster for the server's store tests: Debian's `postgresql`
//! binaries (installed by `cargo xtask setup`), a fresh `initdb` in a temp directory, trust
//! authentication on 127.0.0.1 only, a free port, and `fsync=off` (the data is thrown away;
//! `cargo xtask bench` keeps fsync on to measure ingest).
//! Dropping [`TempPostgres`] stops the cluster and deletes its directory, also when a test
//! step failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

use crate::output_of;

const STEP: &str = "step `start PostgreSQL for the store tests`";

/// A running cluster; `url` names its `attune_test` database.
pub struct TempPostgres {
    bin: PathBuf,
    dir: PathBuf,
    as_root: bool,
    /// `postgres://postgres@127.0.0.1:PORT/attune_test`
    pub url: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn postgres_bin() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|error| {
            anyhow!("{STEP}: no /usr/lib/postgresql ({error}); run `cargo xtask setup`")
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| anyhow!("{STEP}: no initdb under /usr/lib/postgresql/*/bin"))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .with_context(|| format!("{STEP}: cannot find a free port"))?;
    Ok(listener.local_addr()?.port())
}

impl TempPostgres {
    /// Creates and starts the cluster and its `attune_test` database, without fsync (for
    /// tests: the data is thrown away).
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// [`TempPostgres::start`] with fsync on, so a measurement pays for durability as the
    /// SQLite store does (`synchronous=FULL`).
    pub fn start_durable() -> Result<Self> {
        Self::start_with(true)
    }

    fn start_with(fsync: bool) -> Result<Self> {
        let bin = postgres_bin()?;
        // PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
        let as_root = output_of(Command::new("id").arg("-u")).is_some_and(|id| id.trim() == "0");
        let dir = std::env::temp_dir().join(format!("attune-xtask-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{STEP}: cannot create {}", dir.display()))?;
        let port = free_port()?;
        let cluster = Self {
            bin,
            dir,
            as_root,
            url: format!("postgres://postgres@127.0.0.1:{port}/attune_test"),
        };
        if as_root {
            cluster.run(
                "chown",
                Command::new("chown").arg("postgres:").arg(&cluster.dir),
            )?;
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            cluster.pg("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
        )?;
        let fsync = if fsync { "on" } else { "off" };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync}",
            cluster.dir.display()
        );
        cluster.run(
            "pg_ctl start",
            cluster
                .pg("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(cluster.dir.join("server.log"))
                .args(["-w", "start"]),
        )?;
        cluster.run(
            "createdb",
            cluster.pg("createdb").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "attune_test",
            ]),
        )?;
        Ok(cluster)
    }

    /// A PostgreSQL program, run as `postgres` when we are root.
    fn pg(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<()> {
        let output = command
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{STEP}: cannot run {what}"))?;
        if !output.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            bail!(
                "{STEP}: {what} failed ({}):\n{}{}\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let mut stopped = self.pg("pg_ctl");
            stopped
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
            if let Err(error) = self.run("pg_ctl stop", &mut stopped) {
                eprintln!("warning: {error:#}");
            }
        }
        if let Err(error) = std::fs::remove_dir_all(self.dir()) {
            eprintln!(
                "warning: cannot delete the temporary PostgreSQL cluster {}: {error}",
                self.dir().display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TempPostgres;

    /// Needs Debian's postgresql: `cargo test -p xtask -- --ignored`.
    #[test]
    #[ignore = "starts a real PostgreSQL"]
    fn a_temporary_cluster_starts_answers_and_is_removed() {
        let cluster = TempPostgres::start().expect("start");
        let dir = cluster.dir().to_path_buf();
        let port = cluster
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let mut psql = cluster.pg("psql");
        psql.args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            "attune_test",
        ])
        .args(["-tAc", "SELECT 1"]);
        let output = psql.output().expect("psql");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
        drop(cluster);
        assert!(!dir.exists(), "the cluster directory is deleted");
    }
}
