//! A fresh, empty database per test in the PostgreSQL named by `ATTUNE_TEST_POSTGRES_URL`
//! (`cargo xtask test` starts one and sets it).
//!
//! Without the variable a test is skipped with a note, except under CI (`CI` set), where a
//! missing database is a failure rather than a silent pass.

use sqlx::Connection as _;

pub const URL_VAR: &str = "ATTUNE_TEST_POSTGRES_URL";

/// The URL of a new, empty database, or `None` when no PostgreSQL is configured.
pub async fn fresh_database() -> Option<String> {
    let Some(base) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{URL_VAR} is not set: the PostgreSQL tests need a real PostgreSQL \
             (`cargo xtask test` starts one), and CI must not skip them"
        );
        eprintln!(
            "note: {URL_VAR} is not set, so this PostgreSQL test is skipped \
             (`cargo xtask test` starts a PostgreSQL and runs it)"
        );
        return None;
    };
    let name = format!(
        "attune_t_{}",
        attune_core::RecordId::new(attune_core::Timestamp(0))
            .to_string()
            .replace('-', "")
    );
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {URL_VAR}: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    match base.rsplit_once('/') {
        Some((server, _database)) => Some(format!("{server}/{name}")),
        None => panic!("{URL_VAR} must end with /DATABASE"),
    }
}
