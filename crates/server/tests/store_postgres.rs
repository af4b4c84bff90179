//! The shared store suite on a real PostgreSQL: a fresh database per test in the server named
//! by `ATTUNE_TEST_POSTGRES_URL` (`cargo xtask test` starts one and sets it).
//!
//! Without the variable the tests are skipped with a note, except under CI (`CI` set), where a
//! missing database is a failure rather than a silent pass.

use std::sync::Arc;

use attune_server::store::{PostgresStore, Store};
use sqlx::Connection as _;

const URL_VAR: &str = "ATTUNE_TEST_POSTGRES_URL";

async fn get_store() -> Option<Arc<dyn Store>> {
    let Some(base) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{URL_VAR} is not set: the PostgreSQL store tests need a real PostgreSQL \
             (`cargo xtask test` starts one), and CI must not skip them"
        );
        eprintln!(
            "note: {URL_VAR} is not set, so this PostgreSQL test is skipped \
             (`cargo xtask test` starts a PostgreSQL and runs it)"
        );
        return None;
    };
    let name = format!("attune_t_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {URL_VAR}: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let url = match base.rsplit_once('/') {
        Some((server, _database)) => format!("{server}/{name}"),
        None => panic!("{URL_VAR} must end with /DATABASE"),
    };
    Some(Arc::new(
        PostgresStore::connect(&url)
            .await
            .expect("connect to the test database"),
    ))
}

fn uuid_like() -> String {
    attune_core::RecordId::new(attune_core::Timestamp(0))
        .to_string()
        .replace('-', "")
}

attune_server::store_conformance_tests!(get_store);
