//! The shared store suite on SQLite: a fresh database file per test.

use std::sync::Arc;

use attune_server::store::{SqliteStore, Store};

async fn get_store() -> Option<Arc<dyn Store>> {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = SqliteStore::open(dir.path())
        .await
        .expect("open SQLite store");
    // The directory must outlive the test; it is small and under the system temp dir.
    std::mem::forget(dir);
    Some(Arc::new(store))
}

attune_server::store_conformance_tests!(get_store);

/// Rows of past windows are deleted when a key starts a new window: the table holds only
/// the keys of the current window, however many addresses tried before.
#[tokio::test]
async fn past_rate_limit_windows_are_pruned() {
    use attune_core::Timestamp;
    use attune_server::store::{RateLimit, RateLimitStore};
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = SqliteStore::open(dir.path()).await.expect("open");
    let limit = RateLimit::new("enrol_address", 10, 60_000);
    let other = RateLimit::new("team_address", 10, 60_000);
    for n in 0..50 {
        let key = format!("192.0.2.{n}");
        store
            .count_attempt(&limit, &key, Timestamp(1_000))
            .await
            .unwrap();
        store
            .count_attempt(&other, &key, Timestamp(1_000))
            .await
            .unwrap();
    }
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rate_limits")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(rows().await, 100);
    store
        .count_attempt(&limit, "192.0.2.200", Timestamp(61_000))
        .await
        .unwrap();
    // The bucket's old rows are gone; the other bucket keeps its own until it moves on.
    assert_eq!(rows().await, 51);
}
