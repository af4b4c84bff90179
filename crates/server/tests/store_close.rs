//! Closing the SQLite store really closes it: the pool keeps no connection. sqlx 0.8's
//! `Pool::close` can return with a connection still checked out (launchbadge/sqlx#3217); a
//! process that keeps such a connection can read a stale snapshot of the database after other
//! processes wrote to it.

use attune_core::Timestamp;
use attune_server::Store;
use attune_server::store::{ExportLogEntry, SqliteStore};

#[tokio::test]
async fn closing_the_store_closes_every_connection_and_keeps_every_write() {
    let dir = tempfile::TempDir::new().unwrap();
    // Without the fix about one close in three left a connection open: twenty in a row
    // passing by chance is about one in three thousand.
    for round in 0..20 {
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store
            .log_export(&ExportLogEntry {
                who: "researcher".into(),
                at: Timestamp(round),
                what: format!("export {round}"),
            })
            .await
            .unwrap();
        store.close().await;
        assert_eq!(
            store.pool().size(),
            0,
            "round {round}: a connection is still open"
        );
        // Not asserted: that the WAL file is gone. sqlx 0.8's worker thread finishes closing
        // the SQLite handle after the pool lets go of it, and now and then (one round in
        // about twenty, under load) the handle that would remove the WAL is not the last to
        // close. A WAL left behind is harmless: the next open replays it (checked below).
    }
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.export_log().await.unwrap().len(), 20);
    store.close().await;
}
