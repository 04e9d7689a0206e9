//! The databases storage-relevant tests run on: the embedded SQLite always, and PostgreSQL
//! when `FIELDSYNC_TEST_POSTGRES` names a server (`.ci/run` starts one and sets it; on CI its
//! absence fails the tests instead of skipping PostgreSQL). Each test gets a database of its
//! own.

use std::path::Path;

use fieldsync_server::storage::Database;

/// One kind of database a test runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    /// A PostgreSQL server (the URL of a database the role may create databases from).
    Postgres(String),
}

impl TestDb {
    pub fn name(&self) -> &'static str {
        match self {
            TestDb::Sqlite => "sqlite",
            TestDb::Postgres(_) => "postgres",
        }
    }

    /// A fresh, empty database of this kind (SQLite inside `dir`).
    pub async fn fresh(&self, dir: &Path) -> Database {
        match self {
            TestDb::Sqlite => Database::Sqlite(dir.join("fieldsync.sqlite")),
            TestDb::Postgres(base) => Database::Postgres(fresh_postgres(base).await),
        }
    }
}

/// The PostgreSQL server tests may use, if any.
pub fn postgres() -> Option<String> {
    match std::env::var("FIELDSYNC_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "FIELDSYNC_TEST_POSTGRES is not set: on CI the storage tests must run on PostgreSQL too (.ci/run starts one)"
            );
            None
        }
    }
}

/// Every kind of database this run covers.
pub fn test_databases() -> Vec<TestDb> {
    let mut all = vec![TestDb::Sqlite];
    if let Some(url) = postgres() {
        all.push(TestDb::Postgres(url));
    }
    all
}

/// Create an empty database on the server at `base` and return its URL.
pub async fn fresh_postgres(base: &str) -> String {
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
    let task = tokio::spawn(connection);
    let name = format!("fieldsync_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    drop(client);
    let _ = task.await;
    let cut = base.rfind('/').expect("a database URL has a path");
    format!("{}/{name}", &base[..cut])
}
