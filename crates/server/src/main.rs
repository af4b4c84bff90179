//! attune-server: the command line around the `attune_server` library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use attune_server::{AppState, open_store, router};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const LONG_ABOUT: &str = "Attune's research server.\n\n\
Fieldworkers carry the Attune app (an offline Progressive Web App) into home visits; when a \
tablet has a network it syncs its encrypted records here. The server keeps what arrives in a \
SQLite database in the data directory, serves the app itself from the dist directory (so \
tablets can install it from this address), and gives the study team the commands to enrol \
devices and export data. Run it without a subcommand to serve.";

#[derive(Parser)]
#[command(
    name = "attune-server",
    version,
    about = "Attune's research server: receives encrypted data from devices and serves the app",
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    // `attune-server` alone means `attune-server serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app and the sync API (the default when no subcommand is given)
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on
    #[arg(
        long,
        env = "ATTUNE_ADDR",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    addr: String,
    /// Directory for the database (attune.db); created if missing
    #[arg(long, env = "ATTUNE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Directory of the built app (index.html, sw.js, assets)
    #[arg(long, env = "ATTUNE_DIST", default_value = "./dist")]
    dist: PathBuf,
    /// How log lines on stderr are written
    #[arg(long, env = "ATTUNE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Some(Command::Serve(args)) => {
            let serve_matches = matches.subcommand_matches("serve").unwrap_or(&matches);
            run_serve(args, addr_origin(serve_matches))
        }
        None => run_serve(cli.serve, addr_origin(&matches)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Names where the listen address came from, so an error points at what to fix.
fn addr_origin(matches: &ArgMatches) -> &'static str {
    match matches.value_source("addr") {
        Some(ValueSource::CommandLine) => "--addr",
        _ => "ATTUNE_ADDR",
    }
}

fn run_serve(args: ServeArgs, addr_origin: &'static str) -> anyhow::Result<()> {
    check_listen_address(&args.addr, addr_origin)?;
    init_logging(args.log_format);
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(serve(args, addr_origin))
}

/// Rejects anything that is not `host:port` before touching the network or the disk.
fn check_listen_address(addr: &str, origin: &str) -> anyhow::Result<()> {
    let well_formed = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if well_formed {
        Ok(())
    } else {
        Err(anyhow!(
            "{origin} {addr:?} is not a host:port address (example: 127.0.0.1:8080)"
        ))
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

async fn serve(args: ServeArgs, addr_origin: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.addr)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AddrInUse => anyhow!(
                "cannot listen on {}: the address is already in use (is another attune-server \
                 running? choose another port with --addr or ATTUNE_ADDR)",
                args.addr
            ),
            _ => anyhow!("cannot listen on {addr_origin} {:?}: {error}", args.addr),
        })?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the bound address")?;

    warn_if_app_missing(&args.dist);
    let db = open_store(&args.data_dir).await?;
    // Installed before announcing the address, so a SIGTERM right after start is graceful.
    let shutdown = ShutdownSignals::install()?;

    tracing::info!(addr = %local_addr, data_dir = %args.data_dir.display(), "listening");
    announce(&format!("Attune server listening on http://{local_addr}"));

    let app = router(AppState::new(db.clone(), args.dist));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .context("the server stopped with an error")?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The one line on stdout: scripts and tests read the real address (port 0 picks one) from it.
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the server; the address is also in the log.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

fn warn_if_app_missing(dist: &Path) {
    if !dist.join("index.html").is_file() {
        tracing::warn!(
            dist = %dist.display(),
            "the app is not built (no index.html in the dist directory): run `cargo xtask run`; \
             serving the API only"
        );
    }
}

/// Ctrl-C and SIGTERM (what service managers and `docker stop` send) both stop gracefully.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let Self {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:8080", "0.0.0.0:0", "localhost:80", "[::1]:8080"] {
            assert!(check_listen_address(good, "ATTUNE_ADDR").is_ok(), "{good}");
        }
        for bad in ["nonsense", "host:notaport", ":8080", "127.0.0.1:99999", ""] {
            let error = check_listen_address(bad, "ATTUNE_ADDR").unwrap_err();
            assert!(error.to_string().contains("host:port"), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
