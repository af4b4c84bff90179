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
