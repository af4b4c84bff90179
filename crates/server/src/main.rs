//! attune-server: the command line around the `attune_server` library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use attune_core::protocol::{Protocol, default_protocol};
use attune_core::{StudyKeyFile, Timestamp};
use attune_server::api::{normalise_code, now, sha256_hex};
use attune_server::blobs::BlobFolder;
use attune_server::store::{DeviceStatus, PublishOutcome};
use attune_server::{AppState, DatabaseConfig, Store, connect, router};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::sync::Arc;
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
    /// The study's key pair
    #[command(subcommand)]
    Study(StudyCommand),
    /// One-time enrolment codes for fieldworkers' devices
    #[command(subcommand)]
    Enrol(EnrolCommand),
    /// Enrolled devices
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Record a participant's withdrawal: devices purge their data on next sync and exports
    /// leave them out
    Withdraw {
        /// The participant's protocol code
        #[arg(long)]
        participant: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Study protocol versions for devices
    #[command(subcommand)]
    Protocol(ProtocolCommand),
    /// List the conflicts kept: revisions that arrived with the same record and number as a
    /// stored one but different content (never dropped; their content is in the export)
    Conflicts {
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the participant-code numbers reserved for each device (codes are unique across
    /// the study: each tablet gives out only the numbers reserved for it)
    Codes {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Decrypt everything received into CSV and JSON, with a manifest of hashes
    Export {
        /// The study key file made by `study init`
        #[arg(long)]
        key: PathBuf,
        /// Directory to write records.csv, records.json, manifest.json and attachments/ into
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum StudyCommand {
    /// Create the study key pair: the private key goes to a passphrase-protected file (keep
    /// it safe, the server never has it), the public key into the server database. The
    /// passphrase comes from ATTUNE_STUDY_PASSPHRASE or is asked on stdin.
    Init {
        /// Where to write the encrypted private key file
        #[arg(long)]
        key_out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum EnrolCommand {
    /// Print a one-time enrolment code for a fieldworker's device
    Create {
        /// The fieldworker who will enrol a device with this code
        #[arg(long)]
        fieldworker: String,
        /// Hours until the code expires
        #[arg(long, default_value_t = 24)]
        expires_hours: u32,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum ProtocolCommand {
    /// Publish a new version of a protocol file: it is checked, then devices receive it on
    /// their next sync and use it for visits started after that
    Publish {
        /// The protocol file (JSON, see docs/protocol.md)
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the protocol versions published
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List enrolled devices
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a device: its later pushes are refused, and it is told why
    Revoke {
        /// The device id (see `device list`)
        id: String,
        /// Why, shown to the device
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Where the data lives.
#[derive(Args, Clone)]
struct DbArgs {
    /// Directory for the SQLite database (attune.db) and the uploaded attachments (blobs/);
    /// created if missing
    #[arg(long, env = "ATTUNE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// A postgres://user:password@host/db URL: use PostgreSQL instead of SQLite
    #[arg(long, env = "ATTUNE_DATABASE_URL")]
    database_url: Option<String>,
}

impl DbArgs {
    fn config(&self) -> DatabaseConfig {
        DatabaseConfig::new(self.database_url.clone(), &self.data_dir)
    }
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
    #[command(flatten)]
    db: DbArgs,
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
        Some(command) => run_admin(command),
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
    let config = args.db.config();
    tracing::info!(database = ?config, "opening the database");
    let db = connect(&config).await?;
    // Installed before announcing the address, so a SIGTERM right after start is graceful.
    let shutdown = ShutdownSignals::install()?;

    tracing::info!(addr = %local_addr, backend = db.backend(), "listening");
    announce(&format!("Attune server listening on http://{local_addr}"));

    let app = router(AppState::new(db.clone(), args.dist).with_data_dir(&args.db.data_dir));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.wait())
    .await
    .context("the server stopped with an error")?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The administration commands: each opens the database, does one thing and prints the result.
fn run_admin(command: Command) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(async {
            match command {
                Command::Serve(_) => unreachable!("serve is handled by run_serve"),
                Command::Study(StudyCommand::Init { key_out, db }) => {
                    with_store(
                        &db,
                        |store| async move { study_init(&key_out, &store).await },
                    )
                    .await
                }
                Command::Enrol(EnrolCommand::Create {
                    fieldworker,
                    expires_hours,
                    db,
                }) => {
                    with_store(&db, |store| async move {
                        enrol_create(&fieldworker, expires_hours, &store).await
                    })
                    .await
                }
                Command::Device(DeviceCommand::List { db }) => {
                    with_store(&db, |store| async move { device_list(&store).await }).await
                }
                Command::Device(DeviceCommand::Revoke { id, reason, db }) => {
                    with_store(&db, |store| async move {
                        if !store.revoke_device(&id, &reason, now()).await? {
                            return Err(anyhow!(
                                "no device {id:?} (see `attune-server device list`)"
                            ));
                        }
                        println!("Device {id} revoked: its next sync is refused with: {reason}");
                        Ok(())
                    })
                    .await
                }
                Command::Withdraw { participant, db } => {
                    let participant = participant.trim().to_owned();
                    if participant.is_empty() {
                        return Err(anyhow!("--participant needs the participant's code"));
                    }
                    with_store(&db, |store| async move {
                        let message = store.add_withdrawal(&participant, now()).await?;
                        println!(
                            "Withdrawal of {participant} recorded (message {}): devices purge \
                             their data on next sync; exports leave them out",
                            message.id
                        );
                        Ok(())
                    })
                    .await
                }
                Command::Protocol(ProtocolCommand::Publish { file, db }) => {
                    // Checked before the database is opened: a bad file changes nothing.
                    let (protocol, json) = read_protocol(&file)?;
                    with_store(&db, |store| async move {
                        protocol_publish(&protocol, &json, &file, &store).await
                    })
                    .await
                }
                Command::Conflicts { db } => {
                    with_store(&db, |store| async move { conflicts_list(&store).await }).await
                }
                Command::Codes { db } => {
                    with_store(&db, |store| async move { codes_list(&store).await }).await
                }
                Command::Protocol(ProtocolCommand::List { db }) => {
                    with_store(&db, |store| async move { protocol_list(&store).await }).await
                }
                Command::Export { key, out, db } => {
                    let blobs = BlobFolder::new(&db.data_dir);
                    with_store(&db, |store| async move {
                        export(&key, &out, &store, &blobs).await
                    })
                    .await
                }
            }
        })
}

/// Runs one administration command on the store and closes it before the process exits, so
/// every write is on disk and the database is left clean for the next command.
async fn with_store<F, Fut>(db: &DbArgs, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let store = open(db).await?;
    let result = command(store.clone()).await;
    store.close().await;
    result
}

async fn open(db: &DbArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(connect(&db.config()).await?)
}

/// Reads and checks a protocol file with the same parser and rules as the app.
fn read_protocol(file: &Path) -> anyhow::Result<(Protocol, String)> {
    let json = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the protocol file {}", file.display()))?;
    let protocol = Protocol::parse_all(&json).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow!(
            "{} is not a valid protocol; nothing was published:\n{}",
            file.display(),
            lines.join("\n")
        )
    })?;
    Ok((protocol, json))
}

async fn protocol_publish(
    protocol: &Protocol,
    json: &str,
    file: &Path,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let built_in = default_protocol();
    if protocol.id == built_in.id && protocol.version <= built_in.version {
        return Err(anyhow!(
            "{} is version {} of {:?}, but the app has version {} built in: give the file a \
             higher \"version\"; nothing was published",
            file.display(),
            protocol.version,
            protocol.id,
            built_in.version
        ));
    }
    match store
        .publish_protocol(&protocol.id, protocol.version, json, now())
        .await?
    {
        PublishOutcome::Published(published) => {
            println!(
                "Protocol {:?} version {} published (message {}): devices use it for visits \
                 started after their next sync",
                published.protocol_id, published.version, published.message_id
            );
            Ok(())
        }
        PublishOutcome::NotNewer { latest } => Err(anyhow!(
            "{} is version {} of {:?}, but version {latest} was already published: give the \
             file a higher \"version\"; nothing was published",
            file.display(),
            protocol.version,
            protocol.id
        )),
    }
}

async fn protocol_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let published = store.published_protocols().await?;
    if published.is_empty() {
        println!("No protocol published: devices use the protocol built into the app.");
        return Ok(());
    }
    println!("protocol\tversion\tpublished (UTC)\tmessage");
    for entry in published {
        println!(
            "{}\t{}\t{}\t{}",
            entry.protocol_id,
            entry.version,
            utc_minute(entry.published_at),
            entry.message_id
        );
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` in UTC (days to civil date: Howard Hinnant's algorithm).
fn utc_minute(at: Timestamp) -> String {
    let secs = at.as_millis().div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// From ATTUNE_STUDY_PASSPHRASE, or one line on stdin.
fn study_passphrase() -> anyhow::Result<String> {
    if let Ok(passphrase) = std::env::var("ATTUNE_STUDY_PASSPHRASE") {
        return Ok(passphrase);
    }
    eprint!("Study key passphrase: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the passphrase from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn study_init(key_out: &Path, store: &Arc<dyn Store>) -> anyhow::Result<()> {
    if let Some(existing) = store.study_public_key().await? {
        return Err(anyhow!(
            "this server already has a study key ({existing}); it is never replaced"
        ));
    }
    if key_out.exists() {
        return Err(anyhow!(
            "{} already exists: choose another --key-out (a key file is never overwritten)",
            key_out.display()
        ));
    }
    let passphrase = study_passphrase()?;
    let (file, public) = StudyKeyFile::create(&passphrase)?;
    std::fs::write(key_out, file).with_context(|| format!("cannot write {}", key_out.display()))?;
    if !store.set_study_public_key(&public.to_text(), now()).await? {
        return Err(anyhow!("another study key was stored meanwhile"));
    }
    println!("Study key created.");
    println!(
        "Public key (given to devices at enrolment): {}",
        public.to_text()
    );
    println!(
        "Private key written to {}: keep it and its passphrase safe; exports need both.",
        key_out.display()
    );
    Ok(())
}

/// 12 characters of Crockford's base32 (no I, L, O, U): 60 bits, read aloud easily.
fn new_enrolment_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    let chars: Vec<char> = bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    chars
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

async fn enrol_create(
    fieldworker: &str,
    expires_hours: u32,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let fieldworker = fieldworker.trim();
    if fieldworker.is_empty() {
        return Err(anyhow!("--fieldworker needs a name"));
    }
    if store.study_public_key().await?.is_none() {
        return Err(anyhow!(
            "run `attune-server study init` first: devices need the study key"
        ));
    }
    let code = new_enrolment_code();
    let now = now();
    let expires = Timestamp(now.as_millis() + i64::from(expires_hours) * 3_600_000);
    store
        .create_enrolment_code(
            &sha256_hex(&normalise_code(&code)),
            fieldworker,
            expires,
            now,
        )
        .await?;
    println!("{code}");
    eprintln!("One-time enrolment code for {fieldworker}, valid for {expires_hours} hours.");
    Ok(())
}

async fn conflicts_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let conflicts = store.conflicts().await?;
    if conflicts.is_empty() {
        println!("No conflicts: every revision received is the only one with its number.");
        return Ok(());
    }
    let kept: std::collections::HashMap<_, _> = store
        .envelopes()
        .await?
        .into_iter()
        .map(|stored| {
            let e = stored.envelope;
            ((e.record_id, e.rev), e.hash)
        })
        .collect();
    println!("record\trev\tkind\tparticipant\tdevice\treceived (UTC)\tits hash\tstored hash");
    for conflict in conflicts {
        let e = &conflict.envelope;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.record_id,
            e.rev,
            e.kind.as_str(),
            e.participant_code.as_deref().unwrap_or("-"),
            conflict.device_id,
            utc_minute(conflict.received_at),
            e.hash,
            kept.get(&(e.record_id, e.rev))
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        );
    }
    Ok(())
}

/// `attune-server codes`: the reserved blocks, with the device and fieldworker they went to.
async fn codes_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let blocks = store.code_blocks().await?;
    if blocks.is_empty() {
        println!(
            "No participant codes reserved yet: tablets reserve them when they sync \
             (participants made before that have provisional labels such as C-new-1)."
        );
        return Ok(());
    }
    let devices: std::collections::HashMap<String, attune_server::store::Device> = store
        .list_devices()
        .await?
        .into_iter()
        .map(|device| (device.id.clone(), device))
        .collect();
    println!("codes\tdevice\tfieldworker\treserved (UTC)");
    for reserved in blocks {
        let block = &reserved.block;
        let prefix = block.prefix.chars().next().unwrap_or('?');
        let last = block.first.saturating_add(block.count.saturating_sub(1));
        let device = devices.get(&reserved.device_id);
        println!(
            "{}-{}\t{}\t{}\t{}",
            attune_core::codes::format_code(prefix, block.first),
            attune_core::codes::format_code(prefix, last),
            device.map_or(reserved.device_id.as_str(), |d| d.name.as_str()),
            device.map_or("-", |d| d.fieldworker.as_str()),
            utc_minute(reserved.reserved_at),
        );
    }
    Ok(())
}

async fn device_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let devices = store.list_devices().await?;
    if devices.is_empty() {
        println!("No devices enrolled.");
    }
    for device in devices {
        let status = match device.status {
            DeviceStatus::Active => "active".to_owned(),
            DeviceStatus::Revoked => format!(
                "revoked: {}",
                device.revoked_reason.as_deref().unwrap_or("")
            ),
        };
        println!(
            "{}\t{}\t{}\t{}",
            device.id, device.fieldworker, device.name, status
        );
    }
    Ok(())
}

async fn export(
    key: &Path,
    out: &Path,
    store: &Arc<dyn Store>,
    blobs: &BlobFolder,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let passphrase = study_passphrase()?;
    let private = StudyKeyFile::open(&bytes, &passphrase)?;
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let summary =
        attune_server::export::export(store.as_ref(), blobs, &private, out, &who, now()).await?;
    println!(
        "Exported {} records ({} revisions, {} conflicts, {} attachments) to {}; {} envelopes \
         of withdrawn participants left out.",
        summary.records,
        summary.revisions,
        summary.conflicts,
        summary.attachments,
        out.display(),
        summary.withdrawn_envelopes_excluded
    );
    if summary.attachment_problems > 0 {
        eprintln!(
            "warning: {} attachments could not be exported: see attachment_problems in {}",
            summary.attachment_problems,
            out.join("manifest.json").display()
        );
    }
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
