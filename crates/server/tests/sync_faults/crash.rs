//! Crash safety: the real `attune-server` binary is killed with SIGKILL at random moments
//! while four devices push and upload, 20 times, and started again on the same data each
//! time. The devices carry on (their engine retries; a run cut short starts again) until
//! everything is synced. Afterwards the server holds every revision exactly once and every
//! recording whole, on SQLite and on PostgreSQL: nothing a device was told is stored was lost
//! (a device marks a revision synced only on the server's answer, so a lost one would be
//! missing here), and nothing is stored twice.
//!
//! The kill moments are seeded like the fault proxy's choices: the seed is printed and
//! `ATTUNE_FAULT_SEED=<seed>` replays them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use attune_core::sync::{BatchLimits, PullPosition, Syncer};
use attune_core::{BlobId, RecordStore};
use attune_server::Store;
use attune_server::blobs::BlobFolder;
use attune_server::store::{PostgresStore, SqliteStore};

use super::support::{HttpTransport, TestServer, postgres::fresh_database};
use super::{Device, Rng, assert_server_holds, now, seed};

const DEVICES: usize = 4;
const NOTES: usize = 1000;
const RECORDINGS: usize = 2;
const KILLS: usize = 20;

/// `attune-server serve` on `addr`, on the data in `data_dir` (and PostgreSQL at `database`).
pub(super) struct Process {
    pub(super) addr: SocketAddr,
    pub(super) data_dir: PathBuf,
    pub(super) database: Option<String>,
    /// More arguments (`--blob-url ...`) and environment (`AWS_*`).
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

impl Process {
    /// Starts the server and waits until it accepts connections.
    pub(super) async fn start(&self) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_attune-server"));
        command
            .arg("serve")
            .arg("--addr")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--dist")
            .arg(self.data_dir.join("no-app"))
            .env_remove("ATTUNE_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = &self.database {
            command.arg("--database-url").arg(url);
        }
        command.args(&self.args).envs(self.env.iter().cloned());
        for _ in 0..200 {
            let mut child = command.spawn().expect("start attune-server");
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                    return child;
                }
                if let Some(status) = child.try_wait().expect("server status") {
                    // The port may still be held by the killed process for a moment.
                    eprintln!("attune-server exited at start ({status}); starting again");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("attune-server did not start on {}", self.addr);
    }
}

/// A free port on 127.0.0.1 (the server is started on the same one every time).
pub(super) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

/// One device syncing until its outbox is empty, whatever the runs in between end with.
async fn sync_until_done(
    device: Rc<Device>,
    transport: HttpTransport,
    keys: (attune_core::StudyPublicKey, attune_core::StudyVerifyingKey),
) -> usize {
    let clock = now;
    let syncer = Syncer::new(
        &device.store,
        &transport,
        device.identity(&keys.0, &keys.1),
        &clock,
    )
    .with_limits(BatchLimits {
        max_revisions: 25,
        // Several pieces per recording, so uploads are cut and resumed too.
        upload_piece: 2048,
        ..BatchLimits::default()
    });
    let mut cursor = PullPosition::default();
    let mut stopped = 0;
    loop {
        match syncer.run(cursor, |_| {}).await {
            Ok(report) => {
                cursor = report.position;
                assert!(report.held.is_empty(), "{:?}", report.held);
            }
            Err(failure) => {
                assert!(failure.error.is_retryable(), "{failure}");
                cursor = failure.report.position;
                stopped += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        if device.store.count_unsynced().await.expect("outbox") == 0 {
            return stopped;
        }
    }
}

async fn killed_at_random_moments(store: Arc<dyn Store>, dir: &Path, database: Option<String>) {
    let seed = seed();
    eprintln!("crash seed {seed}: rerun with ATTUNE_FAULT_SEED={seed}");
    let data_dir = dir.join("data");
    // The study and the devices' enrolment through a server in this process; the binary
    // then serves the same database and blob folder.
    let setup = TestServer::start(store.clone(), data_dir.clone()).await;
    let keys = (setup.study.public_key(), setup.signing.public_key());
    let mut devices = Vec::new();
    let mut recordings: BTreeMap<BlobId, Vec<u8>> = BTreeMap::new();
    for d in 0..DEVICES {
        let device = Device::new();
        let token = setup.enrol(&device.key, device.id).await;
        let participant = device.participant(&format!("C{d:02}")).await;
        for n in 0..NOTES {
            device
                .note(participant, format!("device {d}, note {n}: what was said"))
                .await;
        }
        for n in 0..RECORDINGS {
            let (blob, content) = device.attachment(participant, 24 * 1024 + n * 999).await;
            recordings.insert(blob, content);
        }
        devices.push((Rc::new(device), token));
    }
    let mut expected = BTreeMap::new();
    for (device, _) in &devices {
        expected.extend(device.revisions().await);
    }

    let process = Process {
        addr: free_addr(),
        data_dir: data_dir.clone(),
        database,
        args: Vec::new(),
        env: Vec::new(),
    };
    let local = tokio::task::LocalSet::new();
    let mut syncing = Vec::new();
    for (d, (device, token)) in devices.iter().enumerate() {
        let mut transport = HttpTransport::new(process.addr, token);
        // Half the devices retry a failed request (the retries often span the restart); the
        // others stop the run at the first failure and start another.
        transport.attempts = if d % 2 == 0 { 1 } else { 3 };
        syncing.push(local.spawn_local(sync_until_done(device.clone(), transport, keys.clone())));
    }
    let outboxes = devices.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
    let killer = local.spawn_local(async move {
        let mut rng = Rng(seed);
        // How much was still to sync at each kill: the kills must land during the ingest.
        let mut waiting_at_kill = Vec::new();
        for _ in 0..KILLS {
            let mut child = process.start().await;
            tokio::time::sleep(Duration::from_millis(30 + rng.below(150))).await;
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            let mut waiting = 0;
            for device in &outboxes {
                waiting += device.store.count_unsynced().await.expect("outbox");
            }
            waiting_at_kill.push(waiting);
        }
        // The last start: left running until every device is done.
        let child = process.start().await;
        (child, waiting_at_kill)
    });
    let (mut child, waiting_at_kill, stopped) = local
        .run_until(async move {
            let (child, waiting) = killer.await.expect("killer");
            let mut stopped = Vec::new();
            for task in syncing {
                stopped.push(
                    tokio::time::timeout(Duration::from_secs(240), task)
                        .await
                        .expect("the devices finish once the server stays up")
                        .expect("device task"),
                );
            }
            (child, waiting, stopped)
        })
        .await;
    child.kill().expect("stop the server");
    child.wait().expect("reaped");
    eprintln!("unsynced at each kill: {waiting_at_kill:?}; runs cut short per device: {stopped:?}");
    // A kill lands mid-ingest when something was still to sync and the devices had made
    // progress since the one before.
    let mut before = usize::MAX;
    let mut mid_ingest = 0;
    for &waiting in &waiting_at_kill {
        if waiting > 0 && waiting < before {
            mid_ingest += 1;
        }
        before = waiting;
    }
    assert!(
        mid_ingest >= KILLS / 2,
        "most kills must land while devices are pushing: {waiting_at_kill:?}"
    );

    assert_server_holds(
        store.as_ref(),
        &expected,
        &recordings,
        &BlobFolder::new(&data_dir).into(),
        &setup.study,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_20_times_during_ingest_loses_nothing_and_stores_nothing_twice() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("data"))
            .await
            .expect("store"),
    );
    killed_at_random_moments(store, dir.path(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_20_times_during_ingest_loses_nothing_and_stores_nothing_twice() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
    killed_at_random_moments(store, dir.path(), Some(url)).await;
}
