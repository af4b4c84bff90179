//! The shared store conformance suite, run on the in-memory store.

use attune_core::MemoryStore;

async fn get_store() -> MemoryStore {
    MemoryStore::new()
}

attune_core::record_store_conformance_tests!(#[test], block_on = futures_executor::block_on, get_store);
