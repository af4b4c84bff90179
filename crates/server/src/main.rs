//! attune-server: the command line around the `attune_server` library.

use attune_core::export::Format;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use attune_core::protocol::Protocol;
use attune_core::sync::ControlKind;
use attune_core::team::Role;
use attune_core::{
    DeviceId, ParticipantId, StudyKeyFile, StudyPrivateKeys, StudySigningKey, StudyVerifyingKey,
    Timestamp,
};
use attune_server::admin::enrolment;
use attune_server::admin::instructions::{self, InstructionError, Recorded, Refusal};
use attune_server::api::now;
use attune_server::blobs::BlobStore;
use attune_server::listen::Limits;
use attune_server::store::{DeviceStatus, NewControlMessage};
use attune_server::{AppState, DatabaseConfig, Store, connect, router};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
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
    /// The study team of the researcher console (members sign in with passkeys)
    #[command(subcommand)]
    Team(TeamCommand),
    /// Record a participant's withdrawal, signed with the study signing key: devices purge
    /// that participant's data on next sync and exports leave them out. The code is resolved
    /// to one participant (by opening their records with the study key); an unknown or shared
    /// code is refused, listing the candidates
    Withdraw {
        /// The study key file made by `study init` (its passphrase from
        /// ATTUNE_STUDY_PASSPHRASE or stdin)
        #[arg(long)]
        key: PathBuf,
        /// The participant's protocol code (may be left out with --participant-id)
        #[arg(long, required_unless_present = "participant_id")]
        participant: Option<String>,
        /// Which participant, when several share the code (the ids are listed), or as listed by
        /// `withdrawals`
        #[arg(long)]
        participant_id: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the withdrawal requests made on tablets ("Stop and withdraw their data"), without
    /// the study key: participant id and code, device, fieldworker, when, and whether the study
    /// team has confirmed it with `withdraw` (pending until then). Requests that do not verify
    /// (not signed by the enrolled device, or not the participant's fieldworker's) are listed
    /// apart and never count
    Withdrawals {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Study protocol versions for devices
    #[command(subcommand)]
    Protocol(ProtocolCommand),
    /// List the conflicts kept, with why: revisions that arrived with the same record and
    /// number as a stored one but different content, or that failed a check (a gap, a parent
    /// that does not match, another fieldworker's record, a participant code already taken).
    /// Never dropped; their content is in the export
    Conflicts {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check what the server holds, without the study key: participant codes held by more
    /// than one participant record, revisions that do not verify (signature, gaps, parents
    /// that do not match) and records continued on a second device. Exits non-zero if
    /// anything is wrong; nothing is changed
    Check {
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the participant-code numbers reserved for each device (codes are unique across
    /// the study: each tablet gives out only the numbers reserved for it)
    Codes {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Decrypt everything received into CSV and JSON, with a manifest of hashes; revisions
    /// that do not verify are listed in the manifest and left out
    Export {
        /// The study key file made by `study init`
        #[arg(long)]
        key: PathBuf,
        /// Directory to write the export into: the analysis files, records.csv,
        /// records.json, manifest.json, attachments/ and drawings/
        #[arg(long)]
        out: PathBuf,
        /// Only these analysis files, comma separated: csv (tidy CSVs, codebook, R and SPSS
        /// loaders), qdpx (REFI-QDA project), docx (a document per interview), eaf (ELAN);
        /// all of them if left out. The records, manifest and media are always written
        #[arg(long, value_delimiter = ',', value_parser = parse_format)]
        only: Vec<Format>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write one backup file: a consistent copy of the SQLite database and every complete
    /// attachment, made while the server keeps serving (on PostgreSQL use pg_dump, see
    /// docs/admin.md)
    Backup {
        /// The new backup file (never overwritten), e.g. attune-2026-12-03.tar
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Restore a backup file into a new, empty data directory (checked whole before anything
    /// is moved into place)
    Restore {
        /// The backup file made by `backup`
        #[arg(long)]
        from: PathBuf,
        /// The new data directory to restore into (must not hold a study)
        #[arg(long, env = "ATTUNE_DATA_DIR")]
        data_dir: PathBuf,
    },
}

/// An export format's name (`--only`).
fn parse_format(name: &str) -> Result<Format, String> {
    Format::parse(name)
        .ok_or_else(|| format!("{name:?} is not an export format: use csv, qdpx, docx or eaf"))
}

#[derive(Subcommand)]
enum StudyCommand {
    /// Create the study key pair and the study signing key: the private keys go to a
    /// passphrase-protected file (keep it safe, the server never has it), the public keys
    /// into the server database. The passphrase comes from ATTUNE_STUDY_PASSPHRASE or is
    /// asked on stdin.
    Init {
        /// Where to write the encrypted private key file
        #[arg(long)]
        key_out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// For a study made before study instructions were signed: write a new key file with the
    /// same study key and a new study signing key (same passphrase), and register the
    /// signing key on the server. Tablets enrolled before must enrol again
    UpgradeKey {
        /// The version 1 study key file
        #[arg(long)]
        key: PathBuf,
        /// Where to write the new (version 2) key file
        #[arg(long)]
        key_out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the study fingerprint from the key file (no passphrase needed)
    Fingerprint {
        /// The study key file
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum EnrolCommand {
    /// Print a one-time enrolment code for a fieldworker's device, and the study fingerprint
    /// the tablet checks the server against (read from the key file: no passphrase needed)
    Create {
        /// The study key file made by `study init`
        #[arg(long)]
        key: PathBuf,
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
    /// Publish a new version of a protocol file, signed with the study signing key: it is
    /// checked, then devices receive it on their next sync and use it for visits started
    /// after that
    Publish {
        /// The protocol file (JSON, see docs/protocol.md)
        file: PathBuf,
        /// The study key file made by `study init` (its passphrase from
        /// ATTUNE_STUDY_PASSPHRASE or stdin)
        #[arg(long)]
        key: PathBuf,
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
enum TeamCommand {
    /// Print a single-use invitation link to the console for a new member with a role
    /// (admin, researcher or coder), and when it expires
    Invite {
        /// admin (devices, enrolment, withdrawals, protocol, team), researcher (review,
        /// safeguarding, conflicts, export) or coder (assigned recordings only)
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who the invitation is for (they give their own name when registering)
        #[arg(long)]
        name: Option<String>,
        /// The server's public address, as the member's browser reaches it
        #[arg(
            long,
            env = "ATTUNE_PUBLIC_URL",
            default_value = "http://localhost:8080"
        )]
        url: String,
        /// Hours until the invitation expires
        #[arg(long, default_value_t = attune_server::team::http::INVITATION_HOURS)]
        valid_hours: u32,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the study team's members
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: admin, researcher or coder"))
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List enrolled devices
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a device with a statement signed by the study signing key: its later pushes
    /// are refused, and it is told why
    Revoke {
        /// The device id (see `device list`)
        id: String,
        /// Why, shown to the device
        #[arg(long)]
        reason: String,
        /// The study key file made by `study init` (its passphrase from
        /// ATTUNE_STUDY_PASSPHRASE or stdin)
        #[arg(long)]
        key: PathBuf,
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
    /// An s3://bucket/prefix URL: keep the attachments in this S3-compatible bucket instead
    /// of DATA_DIR/blobs (credentials, endpoint and region from the AWS_* variables)
    #[arg(long, env = "ATTUNE_BLOB_URL", value_name = "URL")]
    blob_url: Option<String>,
}

impl DbArgs {
    fn config(&self) -> DatabaseConfig {
        DatabaseConfig::new(self.database_url.clone(), &self.data_dir)
    }

    /// The attachments' store: the S3 bucket of `--blob-url`, or the folder in the data dir.
    fn blobs(&self) -> anyhow::Result<BlobStore> {
        BlobStore::open(self.blob_url.as_deref(), &self.data_dir)
            .map_err(|problem| anyhow!("--blob-url (ATTUNE_BLOB_URL): {problem}"))
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
    /// The built researcher console (`cargo xtask run` builds it), served at /console/.
    #[arg(long, env = "ATTUNE_CONSOLE_DIST", default_value = "./dist-console")]
    console_dist: PathBuf,
    /// The address the study team's browsers use (https://research.example.org): the origin
    /// passkeys and console requests must come from. Without it only a console at
    /// http://localhost:PORT works
    #[arg(long, env = "ATTUNE_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// A reverse proxy (nginx, Caddy) in front of this server, by IP address: requests from
    /// it are counted by the client address in its X-Forwarded-For (the rate limits on
    /// enrolment and sign-in). Repeat for several; from any other address the header is ignored
    #[arg(
        long = "trusted-proxy",
        env = "ATTUNE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "IP"
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
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
    if let Some(url) = &args.public_url {
        attune_server::team::PublicOrigin::parse(url)
            .map_err(|problem| anyhow!("--public-url (ATTUNE_PUBLIC_URL): {problem}"))?;
    }
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
    let blobs = args.db.blobs()?;
    tracing::info!(database = ?config, blobs = %blobs.describe(), "opening the database");
    let db = connect(&config).await?;
    // Installed before announcing the address, so a SIGTERM right after start is graceful.
    let shutdown = ShutdownSignals::install()?;

    tracing::info!(addr = %local_addr, backend = db.backend(), "listening");
    announce(&format!("Attune server listening on http://{local_addr}"));

    let mut state = AppState::new(db.clone(), args.dist)
        .with_console_dir(args.console_dist)
        .with_trusted_proxies(&args.trusted_proxies)
        .with_blobs(blobs);
    if let Some(url) = &args.public_url {
        state = state
            .with_public_url(url)
            .map_err(|problem| anyhow!("--public-url (ATTUNE_PUBLIC_URL): {problem}"))?;
    }
    let app = router(state);
    attune_server::listen::serve(listener, app, Limits::default(), shutdown.wait())
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
                Command::Study(StudyCommand::UpgradeKey { key, key_out, db }) => {
                    with_store(&db, |store| async move {
                        study_upgrade_key(&key, &key_out, &store).await
                    })
                    .await
                }
                Command::Study(StudyCommand::Fingerprint { key }) => {
                    let signing = key_file_signing_key(&key)?;
                    println!("{}", signing.fingerprint());
                    Ok(())
                }
                Command::Team(command) => team_command(command).await,
                Command::Enrol(EnrolCommand::Create {
                    key,
                    fieldworker,
                    expires_hours,
                    db,
                }) => {
                    with_store(&db, |store| async move {
                        enrol_create(&key, &fieldworker, expires_hours, &store).await
                    })
                    .await
                }
                Command::Device(DeviceCommand::List { db }) => {
                    with_store(&db, |store| async move { device_list(&store).await }).await
                }
                Command::Device(DeviceCommand::Revoke {
                    id,
                    reason,
                    key,
                    db,
                }) => {
                    with_store(&db, |store| async move {
                        device_revoke(&key, &id, &reason, &store).await
                    })
                    .await
                }
                Command::Withdraw {
                    key,
                    participant,
                    participant_id,
                    db,
                } => {
                    let participant = participant.map(|code| code.trim().to_owned());
                    if participant.as_deref().is_some_and(str::is_empty) {
                        return Err(anyhow!("--participant needs the participant's code"));
                    }
                    with_store(&db, |store| async move {
                        let code = match participant {
                            Some(code) => code,
                            None => code_of(&store, participant_id.as_deref()).await?,
                        };
                        withdraw(&key, &code, participant_id.as_deref(), &store).await
                    })
                    .await
                }
                Command::Protocol(ProtocolCommand::Publish { file, key, db }) => {
                    // Checked before the database is opened: a bad file changes nothing.
                    let (protocol, json) = read_protocol(&file)?;
                    with_store(&db, |store| async move {
                        protocol_publish(&protocol, &json, &file, &key, &store).await
                    })
                    .await
                }
                Command::Withdrawals { db } => {
                    with_store(&db, |store| async move { withdrawals_list(&store).await }).await
                }
                Command::Conflicts { db } => {
                    with_store(&db, |store| async move { conflicts_list(&store).await }).await
                }
                Command::Check { db } => {
                    with_store(&db, |store| async move { check(&store).await }).await
                }
                Command::Codes { db } => {
                    with_store(&db, |store| async move { codes_list(&store).await }).await
                }
                Command::Protocol(ProtocolCommand::List { db }) => {
                    with_store(&db, |store| async move { protocol_list(&store).await }).await
                }
                Command::Backup { out, db } => backup_command(&db, &out).await,
                Command::Restore { from, data_dir } => {
                    let manifest = attune_server::backup::restore(&from, &data_dir).await?;
                    println!(
                        "Restored {} into {}: the database as of {} and {} attachments. Start \
                         the server with --data-dir {}.",
                        from.display(),
                        data_dir.display(),
                        manifest.created_at,
                        manifest.attachments,
                        data_dir.display()
                    );
                    Ok(())
                }
                Command::Export { key, out, only, db } => {
                    let blobs = db.blobs()?;
                    let formats = if only.is_empty() {
                        Format::ALL.to_vec()
                    } else {
                        only
                    };
                    with_store(&db, |store| async move {
                        export(&key, &out, &store, &blobs, &formats).await
                    })
                    .await
                }
            }
        })
}

/// `attune-server backup`: SQLite only; PostgreSQL has its own tools.
async fn backup_command(db: &DbArgs, out: &Path) -> anyhow::Result<()> {
    if let Some(url) = db.blob_url.as_deref().filter(|url| !url.trim().is_empty()) {
        return Err(anyhow!(
            "the attachments are in {url} (--blob-url): back up that bucket with your object \
             storage's own versioning or replication, and the database on its own (see \
             docs/admin.md); nothing was written"
        ));
    }
    if db.database_url.is_some() {
        return Err(anyhow!(
            "this server uses PostgreSQL: back up the database with `pg_dump --format=custom` \
             and the attachments in {}/blobs with your file backups (see docs/admin.md); \
             nothing was written",
            db.data_dir.display()
        ));
    }
    let manifest = attune_server::backup::backup(&db.data_dir, out).await?;
    println!(
        "Backup written to {}: the database ({} bytes, SHA-256 {}) and {} attachments ({} \
         bytes). It holds what the server holds, still sealed: keep it with the server's backups, never beside the study key.",
        out.display(),
        manifest.database_bytes,
        manifest.database_sha256,
        manifest.attachments,
        manifest.attachment_bytes
    );
    Ok(())
}

/// Runs one administration command on the store and closes it before the process exits, so
/// every write is on disk and the database is left clean for the next command.
async fn team_command(command: TeamCommand) -> anyhow::Result<()> {
    use attune_server::team::cli;
    match command {
        TeamCommand::Invite {
            role,
            name,
            url,
            valid_hours,
            db,
        } => {
            with_store(&db, |store| async move {
                let printed = cli::invite(store.as_ref(), role, name, &url, valid_hours).await?;
                println!("{printed}");
                Ok(())
            })
            .await
        }
        TeamCommand::List { db } => {
            with_store(&db, |store| async move {
                let members = cli::list(store.as_ref()).await?;
                if members.is_empty() {
                    println!(
                        "No study team members yet: `attune-server team invite --role admin`."
                    );
                }
                for member in &members {
                    println!("{}", cli::member_line(member));
                }
                Ok(())
            })
            .await
        }
    }
}

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
    key: &Path,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let kind = ControlKind::ProtocolUpdate {
        protocol: json.to_owned(),
    };
    let refused = |error: InstructionError| protocol_refused(error, protocol, file);
    instructions::check(store, &kind).await.map_err(refused)?;
    let keys = open_signing_keys(key, store).await?;
    for _ in 0..SEQ_ATTEMPTS {
        let message = sign(store, &keys, kind.clone()).await?;
        match instructions::record(store, &message)
            .await
            .map_err(refused)?
        {
            Recorded::Done {
                seq, message_id, ..
            } => {
                println!(
                    "Protocol {:?} version {} published (study instruction {seq}, message \
                     {message_id}): devices use it for visits started after their next sync",
                    protocol.id, protocol.version
                );
                return Ok(());
            }
            Recorded::AlreadyDone(sentence) => {
                println!("{sentence}");
                return Ok(());
            }
            Recorded::SeqTaken => continue,
        }
    }
    Err(seq_contention())
}

/// A protocol update refused, in the command line's words (naming the file).
fn protocol_refused(error: InstructionError, protocol: &Protocol, file: &Path) -> anyhow::Error {
    let refusal = match error {
        InstructionError::Store(error) => return error.into(),
        InstructionError::Refused(refusal) => refusal,
    };
    let file = file.display();
    match refusal {
        Refusal::NotNewerThanBuiltIn { built_in, .. } => anyhow!(
            "{file} is version {} of {:?}, but the app has version {built_in} built in: give \
             the file a higher \"version\"; nothing was published",
            protocol.version,
            protocol.id,
        ),
        Refusal::NotNewerThanPublished { latest, .. } => anyhow!(
            "{file} is version {} of {:?}, but version {latest} was already published: give \
             the file a higher \"version\"; nothing was published",
            protocol.version,
            protocol.id
        ),
        other => anyhow!("{file}: {other}; nothing was published"),
    }
}

/// How many times a command signs again when another instruction took its number meanwhile
/// (the console's number).
const SEQ_ATTEMPTS: usize = attune_core::review::instructions::SEQ_ATTEMPTS;

fn seq_contention() -> anyhow::Error {
    anyhow!(
        "other study instructions were being recorded at the same time: nothing was recorded, \
         run the command again"
    )
}

/// Signs `kind` as the next study instruction.
async fn sign(
    store: &Arc<dyn Store>,
    keys: &StudyPrivateKeys,
    kind: ControlKind,
) -> anyhow::Result<NewControlMessage> {
    let signing = keys.signing_key()?;
    let seq = store.next_control_seq().await?;
    let created_at = now();
    let signature = signing.sign_control(seq, &kind, created_at)?;
    Ok(NewControlMessage {
        seq,
        kind,
        created_at,
        signature,
    })
}

/// The signing key's public half from a key file's clear part (no passphrase).
fn key_file_signing_key(key: &Path) -> anyhow::Result<StudyVerifyingKey> {
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let file = StudyKeyFile::read(&bytes)?;
    file.study_signing_key()?.ok_or_else(|| {
        anyhow!(
            "{} is a version 1 study key file, made before study instructions were signed: \
             it has no signing key (make a new file with `attune-server study upgrade-key`)",
            key.display()
        )
    })
}

/// The study's signing key on this server, checked against the key file's: the fingerprint
/// comes from the key file (the team's), never from the database alone.
async fn checked_signing_key(
    key: &Path,
    store: &Arc<dyn Store>,
) -> anyhow::Result<StudyVerifyingKey> {
    let from_file = key_file_signing_key(key)?;
    let study = store
        .study_keys()
        .await?
        .ok_or_else(|| anyhow!("run `attune-server study init` first: this server has no study"))?;
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    if StudyKeyFile::read(&bytes)?.public_key != study.public_key {
        return Err(anyhow!(
            "{} is not this server's study key file (its study key is another)",
            key.display()
        ));
    }
    match study.signing_public_key {
        None => Err(anyhow!(
            "this server has no study signing key yet: run `attune-server study upgrade-key`"
        )),
        Some(on_server) if on_server != from_file.to_text() => Err(anyhow!(
            "the study signing key in this server's database is not the one in {}: the \
             database was altered or belongs to another study; nothing was done",
            key.display()
        )),
        Some(_) => Ok(from_file),
    }
}

/// Opens the key file for a signing command, after checking it is this server's study.
async fn open_signing_keys(key: &Path, store: &Arc<dyn Store>) -> anyhow::Result<StudyPrivateKeys> {
    checked_signing_key(key, store).await?;
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let passphrase = study_passphrase()?;
    let keys = StudyKeyFile::open_keys(&bytes, &passphrase)?;
    keys.signing_key()?;
    Ok(keys)
}

async fn device_revoke(
    key: &Path,
    id: &str,
    reason: &str,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let device_id: DeviceId = id
        .trim()
        .parse()
        .map_err(|_| anyhow!("{id:?} is not a device id (see `attune-server device list`)"))?;
    let reason = reason.trim();
    let kind = ControlKind::Revocation {
        device_id,
        reason: reason.to_owned(),
    };
    let refused = |error: InstructionError| match error {
        InstructionError::Refused(Refusal::NoReason) => {
            anyhow!("--reason needs the reason, shown on the tablet")
        }
        InstructionError::Refused(Refusal::UnknownDevice { .. }) => {
            anyhow!("no device {id:?} (see `attune-server device list`)")
        }
        other => anyhow!(other),
    };
    if let Some(already) = instructions::check(store, &kind).await.map_err(refused)? {
        println!("{already}");
        return Ok(());
    }
    let keys = open_signing_keys(key, store).await?;
    for _ in 0..SEQ_ATTEMPTS {
        let message = sign(store, &keys, kind.clone()).await?;
        match instructions::record(store, &message)
            .await
            .map_err(refused)?
        {
            Recorded::Done { sentence, .. } | Recorded::AlreadyDone(sentence) => {
                println!("{sentence}");
                return Ok(());
            }
            Recorded::SeqTaken => continue,
        }
    }
    Err(seq_contention())
}

/// A participant a code may mean, as found in what the server holds.
struct Candidate {
    id: ParticipantId,
    device: String,
    fieldworker: String,
    first_seen: Timestamp,
    revisions: usize,
}

/// Every participant whose records carry `code` (case does not matter), opened with the study
/// key: the id is inside the sealed revisions.
async fn candidates(
    store: &Arc<dyn Store>,
    keys: &StudyPrivateKeys,
    code: &str,
) -> anyhow::Result<Vec<Candidate>> {
    let fieldworkers: std::collections::HashMap<String, String> = store
        .list_devices()
        .await?
        .into_iter()
        .map(|d| (d.id, d.fieldworker))
        .collect();
    let mut found: Vec<Candidate> = Vec::new();
    let mut unreadable = 0;
    let mut stored = store.envelopes().await?;
    stored.extend(store.conflicts().await?);
    for item in stored {
        if !item
            .envelope
            .participant_code
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case(code))
        {
            continue;
        }
        let Ok(revision) = item.envelope.open(&keys.private) else {
            unreadable += 1;
            continue;
        };
        let Some(id) = revision.participant else {
            continue;
        };
        match found.iter_mut().find(|c| c.id == id) {
            Some(candidate) => {
                candidate.revisions += 1;
                if item.received_at < candidate.first_seen {
                    candidate.first_seen = item.received_at;
                    candidate.device.clone_from(&item.device_id);
                }
            }
            None => found.push(Candidate {
                id,
                fieldworker: fieldworkers
                    .get(&item.device_id)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                device: item.device_id,
                first_seen: item.received_at,
                revisions: 1,
            }),
        }
    }
    if unreadable > 0 {
        eprintln!(
            "warning: {unreadable} revisions with the code {code} do not open with the study key \
             and were not considered"
        );
    }
    found.sort_by_key(|c| c.first_seen);
    Ok(found)
}

fn candidate_table(candidates: &[Candidate]) -> String {
    let mut lines =
        vec!["  participant id\tdevice\tfieldworker\tfirst seen (UTC)\trevisions".to_owned()];
    for c in candidates {
        lines.push(format!(
            "  {}\t{}\t{}\t{}\t{}",
            c.id,
            c.device,
            c.fieldworker,
            utc_minute(c.first_seen),
            c.revisions
        ));
    }
    lines.join("\n")
}

/// The code of the participant record with this id (a participant record's id is the
/// participant id; its code is in the clear metadata), for `withdraw --participant-id` alone.
async fn code_of(store: &Arc<dyn Store>, participant_id: Option<&str>) -> anyhow::Result<String> {
    let id = participant_id.unwrap_or_default().trim();
    let wanted: ParticipantId = id
        .parse()
        .map_err(|_| anyhow!("--participant-id {id:?} is not a participant id"))?;
    let mut stored = store.envelopes().await?;
    stored.extend(store.conflicts().await?);
    stored
        .into_iter()
        .filter(|item| item.envelope.kind == attune_core::Kind::Participant)
        .find(|item| item.envelope.record_id.as_bytes() == wanted.as_bytes())
        .and_then(|item| item.envelope.participant_code)
        .ok_or_else(|| {
            anyhow!(
                "no participant record with the id {wanted} has reached this server: check the \
                 id (see `attune-server withdrawals`), or give --participant CODE; nothing was \
                 recorded"
            )
        })
}

async fn withdraw(
    key: &Path,
    code: &str,
    participant_id: Option<&str>,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let chosen: Option<ParticipantId> = participant_id
        .map(|id| {
            id.trim()
                .parse()
                .map_err(|_| anyhow!("--participant-id {id:?} is not a participant id"))
        })
        .transpose()?;
    let keys = open_signing_keys(key, store).await?;
    let candidates = candidates(store, &keys, code).await?;
    let candidate = match (chosen, candidates.as_slice()) {
        (_, []) => {
            return Err(anyhow!(
                "no participant with the code {code} has reached this server: check the code, \
                 or sync the tablet that made them first; nothing was recorded"
            ));
        }
        (None, [one]) => one,
        (None, several) => {
            return Err(anyhow!(
                "{} participants have the code {code} (made on different tablets); nothing was \
                 recorded. Choose one with --participant-id:\n{}",
                several.len(),
                candidate_table(several)
            ));
        }
        (Some(id), all) => all.iter().find(|c| c.id == id).ok_or_else(|| {
            anyhow!(
                "no participant with the code {code} has the id {id}; nothing was recorded. \
                 The participants with this code:\n{}",
                candidate_table(all)
            )
        })?,
    };
    let kind = ControlKind::Withdrawal {
        participant_id: candidate.id,
        participant_code: code.to_owned(),
    };
    for _ in 0..SEQ_ATTEMPTS {
        if let Some(already) = instructions::check(store, &kind)
            .await
            .map_err(withdraw_refused)?
        {
            println!("{already}");
            return Ok(());
        }
        let message = sign(store, &keys, kind.clone()).await?;
        match instructions::record(store, &message)
            .await
            .map_err(withdraw_refused)?
        {
            Recorded::Done {
                seq, message_id, ..
            } => {
                println!(
                    "Withdrawal of {code} (participant {}, first seen from {} of {}) recorded \
                     (study instruction {seq}, message {message_id}): devices purge their data \
                     on next sync; exports leave them out",
                    candidate.id, candidate.device, candidate.fieldworker
                );
                return Ok(());
            }
            Recorded::AlreadyDone(sentence) => {
                println!("{sentence}");
                return Ok(());
            }
            Recorded::SeqTaken => continue,
        }
    }
    Err(seq_contention())
}

/// A withdrawal refused, saying nothing was recorded.
fn withdraw_refused(error: InstructionError) -> anyhow::Error {
    match error {
        InstructionError::Refused(refusal) => anyhow!("{refusal}; nothing was recorded"),
        InstructionError::Store(error) => error.into(),
    }
}

async fn protocol_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let published = store.published_protocols().await?;
    if published.is_empty() {
        println!("No protocol published: devices use the protocol built into the app.");
        return Ok(());
    }
    println!("protocol\tversion\tpublished (UTC)\tmessage\tinstruction");
    for entry in published {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            entry.protocol_id,
            entry.version,
            utc_minute(entry.published_at),
            entry.message_id,
            entry.seq.map_or_else(
                || "unsigned: not sent to tablets (publish it again)".to_owned(),
                |seq| seq.to_string()
            )
        );
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn utc_minute(at: Timestamp) -> String {
    let iso = at.to_rfc3339();
    format!("{} {}", &iso[..10], &iso[11..16])
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
    let (file, keys) = StudyKeyFile::create(&passphrase)?;
    let signing = keys.signing_key()?;
    let public = keys.private.public_key();
    std::fs::write(key_out, file).with_context(|| format!("cannot write {}", key_out.display()))?;
    if !store.set_study_public_key(&public.to_text(), now()).await? {
        return Err(anyhow!("another study key was stored meanwhile"));
    }
    register_signing_key(signing, &public, store).await?;
    println!("Study key and study signing key created.");
    println!(
        "Public key (given to devices at enrolment): {}",
        public.to_text()
    );
    println!(
        "Study fingerprint (given to fieldworkers with their enrolment codes): {}",
        signing.public_key().fingerprint()
    );
    println!(
        "Private keys written to {}: keep it and its passphrase safe, and a backup of both \
         apart from the server; exports and every study instruction (withdrawal, protocol, \
         revocation) need them.",
        key_out.display()
    );
    Ok(())
}

async fn register_signing_key(
    signing: &StudySigningKey,
    public: &attune_core::StudyPublicKey,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    if !store
        .set_study_signing_key(
            &signing.public_key().to_text(),
            &signing.sign_study_key(public),
        )
        .await?
    {
        return Err(anyhow!(
            "this server already has a study signing key; it is never replaced"
        ));
    }
    Ok(())
}

async fn study_upgrade_key(
    key: &Path,
    key_out: &Path,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let study = store
        .study_keys()
        .await?
        .ok_or_else(|| anyhow!("this server has no study: run `attune-server study init`"))?;
    if study.signing_public_key.is_some() {
        return Err(anyhow!(
            "this server already has a study signing key; it is never replaced"
        ));
    }
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let file = StudyKeyFile::read(&bytes)?;
    if file.public_key != study.public_key {
        return Err(anyhow!(
            "{} is not this server's study key file (its study key is another)",
            key.display()
        ));
    }
    let passphrase = study_passphrase()?;
    let keys = if file.signing_public_key.is_some() {
        // A version 2 file whose signing key never reached the server (an interrupted init).
        StudyKeyFile::open_keys(&bytes, &passphrase)?
    } else {
        if key_out.exists() {
            return Err(anyhow!(
                "{} already exists: choose another --key-out (a key file is never overwritten)",
                key_out.display()
            ));
        }
        let (upgraded, keys) = StudyKeyFile::add_signing_key(&bytes, &passphrase, &passphrase)?;
        std::fs::write(key_out, upgraded)
            .with_context(|| format!("cannot write {}", key_out.display()))?;
        keys
    };
    let signing = keys.signing_key()?;
    register_signing_key(signing, &keys.private.public_key(), store).await?;
    println!(
        "Study signing key registered. Study fingerprint: {}",
        signing.public_key().fingerprint()
    );
    if file.signing_public_key.is_none() {
        println!(
            "New key file written to {} (same study key, same passphrase): use it from now on \
             and keep a backup; the old file still opens exports.",
            key_out.display()
        );
    }
    println!(
        "Tablets enrolled before must enrol again (a new code with this fingerprint); \
         withdrawals and protocol versions recorded before were not signed: record them again."
    );
    Ok(())
}

async fn enrol_create(
    key: &Path,
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
    let signing = checked_signing_key(key, store).await?;
    let (code, _) = enrolment::create(store, fieldworker, expires_hours, now()).await?;
    println!("Enrolment code:    {code}");
    println!("Study fingerprint: {}", signing.fingerprint());
    eprintln!(
        "One-time enrolment code for {fieldworker}, valid for {expires_hours} hours. The tablet \
         asks for both: the fingerprint is the same for every tablet of the study."
    );
    Ok(())
}

/// `attune-server withdrawals`: the requests from tablets, pending first.
async fn withdrawals_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    use attune_server::verify::{Devices, withdrawal_requests};
    let stored = store.envelopes().await?;
    let mut participants = stored.clone();
    participants.extend(store.conflicts().await?);
    let devices = Devices::new(&store.list_devices().await?);
    let requests = withdrawal_requests(
        &stored,
        &participants,
        &devices,
        &store.withdrawals().await?,
    );
    let (refused, mut counted): (Vec<_>, Vec<_>) =
        requests.into_iter().partition(|r| r.problem.is_some());
    counted.sort_by_key(|r| !r.is_pending());
    let pending = counted.iter().filter(|r| r.is_pending()).count();
    if counted.is_empty() {
        println!("No withdrawal requests from tablets.");
    } else {
        println!(
            "participant id\tcode\tdevice\tfieldworker\trequested (UTC)\treceived (UTC)\tstatus"
        );
        for r in &counted {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.participant_id,
                r.participant_code,
                r.device_id,
                r.fieldworker,
                utc_minute(r.requested_at),
                utc_minute(r.received_at),
                r.confirmed_by.map_or_else(
                    || "pending".to_owned(),
                    |message| format!("confirmed (message {message})")
                ),
            );
        }
    }
    if pending > 0 {
        println!(
            "{pending} pending: confirm each with `attune-server withdraw --key study.key \
             --participant-id ID` (exports list pending requests in the manifest and leave the \
             participant out only once confirmed)."
        );
    }
    if !refused.is_empty() {
        eprintln!(
            "warning: {} withdrawal requests do not verify and do not count:",
            refused.len()
        );
        for r in &refused {
            eprintln!(
                "  {}\t{}\t{}\t{}",
                r.participant_id,
                r.participant_code,
                r.device_id,
                r.problem.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn conflicts_list(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let conflicts = store.kept_conflicts().await?;
    let stored = store.envelopes().await?;
    if conflicts.is_empty() {
        println!("No conflicts: every revision received is the only one with its number.");
    } else {
        let kept: std::collections::HashMap<_, _> = stored
            .iter()
            .map(|stored| {
                let e = &stored.envelope;
                ((e.record_id, e.rev), e.hash)
            })
            .collect();
        println!(
            "record\trev\tkind\tparticipant\tdevice\treceived (UTC)\treason\tdetail\tits hash\t\
             stored hash"
        );
        for conflict in conflicts {
            let e = &conflict.stored.envelope;
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                e.record_id,
                e.rev,
                e.kind.as_str(),
                e.participant_code.as_deref().unwrap_or("-"),
                conflict.stored.device_id,
                utc_minute(conflict.stored.received_at),
                conflict.reason.as_str(),
                conflict
                    .detail
                    .as_deref()
                    .unwrap_or(conflict.reason.describe()),
                e.hash,
                kept.get(&(e.record_id, e.rev))
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            );
        }
    }
    let duplicates = attune_server::verify::duplicate_codes(&stored);
    if !duplicates.is_empty() {
        eprintln!(
            "warning: {} participant codes are held by more than one participant record \
             (stored before the server checked codes): see `attune-server check`",
            duplicates.len()
        );
    }
    Ok(())
}

/// `attune-server check`: prints what it finds; an error (non-zero exit) if anything.
async fn check(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    use attune_server::verify::{self, Devices};
    let stored = store.envelopes().await?;
    let devices = Devices::new(&store.list_devices().await?);
    let fieldworker = |device: &str| devices.fieldworker(device).unwrap_or("?").to_owned();
    let mut problems = 0;

    let duplicates = verify::duplicate_codes(&stored);
    if duplicates.is_empty() {
        println!("Participant codes: each is held by one participant record.");
    } else {
        println!(
            "Participant codes held by more than one participant record (nothing was changed):"
        );
        println!("code\trecord\tdevice\tfieldworker");
        for duplicate in &duplicates {
            for (record, device) in &duplicate.records {
                println!(
                    "{}\t{record}\t{device}\t{}",
                    duplicate.code,
                    fieldworker(device)
                );
            }
        }
        problems += duplicates.len();
    }

    let verdicts = verify::chains(&stored, &devices, &|_| None);
    let failures: Vec<_> = stored
        .iter()
        .zip(&verdicts)
        .filter_map(|(item, verdict)| verdict.as_ref().err().map(|problem| (item, problem)))
        .collect();
    if failures.is_empty() {
        println!("Revisions: every one verifies (signature, chain of parents, owner).");
    } else {
        println!("Revisions that do not verify (left out of exports):");
        println!("record\trev\tkind\tdevice\tproblem\treason");
        for (item, problem) in &failures {
            let e = &item.envelope;
            println!(
                "{}\t{}\t{}\t{}\t{}\t{problem}",
                e.record_id,
                e.rev,
                e.kind.as_str(),
                item.device_id,
                problem.code()
            );
        }
        problems += failures.len();
    }

    let second = verify::second_devices(&stored, &devices);
    if second.is_empty() {
        println!("Devices: every record was continued only on the device that created it.");
    } else {
        println!("Records continued on a second device:");
        println!("record\tfrom rev\tcreated on\tcontinued on\tsame fieldworker");
        for found in &second {
            println!(
                "{}\t{}\t{} ({})\t{} ({})\t{}",
                found.record_id,
                found.rev,
                found.owner,
                fieldworker(&found.owner),
                found.device,
                fieldworker(&found.device),
                if found.same_fieldworker {
                    "yes (a re-enrolled tablet: allowed)"
                } else {
                    "no"
                }
            );
        }
        problems += second
            .iter()
            .filter(|found| !found.same_fieldworker)
            .count();
    }

    let conflicts = store.kept_conflicts().await?;
    if !conflicts.is_empty() {
        println!(
            "{} conflicts are kept (see `attune-server conflicts`).",
            conflicts.len()
        );
    }
    if problems > 0 {
        return Err(anyhow!(
            "check found {problems} problems (listed above); nothing was changed"
        ));
    }
    println!("No problems found.");
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
    blobs: &BlobStore,
    formats: &[Format],
) -> anyhow::Result<()> {
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let passphrase = study_passphrase()?;
    let private = StudyKeyFile::open(&bytes, &passphrase)?;
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let summary =
        attune_server::export::export(store.as_ref(), blobs, &private, out, &who, now(), formats)
            .await?;
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
    let written: Vec<String> = formats
        .iter()
        .map(|format| match format {
            Format::Tables => {
                "tidy CSVs with codebook.csv, README.txt, load_attune.R and load_attune.sps".into()
            }
            Format::Qdpx => "attune.qdpx (NVivo, ATLAS.ti, MAXQDA)".into(),
            Format::Documents => format!(
                "{} interview documents in interviews/",
                summary.interview_documents
            ),
            Format::Elan => format!("{} ELAN files in elan/", summary.elan_files),
        })
        .collect();
    if !written.is_empty() {
        println!("For analysis: {}.", written.join("; "));
    }
    if summary.pending_withdrawal_requests > 0 {
        eprintln!(
            "warning: {} withdrawal requests from tablets are pending (not yet confirmed with \
             `attune-server withdraw`): their participants are still in this export, listed \
             under withdrawal_requests in the manifest; see `attune-server withdrawals`",
            summary.pending_withdrawal_requests
        );
    }
    if summary.problems > 0 {
        eprintln!(
            "warning: {} revisions or conflicts failed verification and were left out: see \
             problems in {}",
            summary.problems,
            out.join("manifest.json").display()
        );
    }
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
