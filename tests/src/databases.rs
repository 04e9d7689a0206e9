//! Which database the real server runs on in a test: the embedded SQLite (its data directory)
//! always, and PostgreSQL when `FIELDSYNC_TEST_POSTGRES` names a server (`.ci/run` starts one
//! and sets it; on CI its absence fails the tests instead of skipping PostgreSQL). Each test
//! gets a database of its own.

/// The database one server runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the server's data directory (no flag).
    Sqlite,
    /// This PostgreSQL database (`--database URL`).
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The flags that put a server (or an `admin` command) on this database.
    pub fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite => Vec::new(),
            Backend::Postgres(url) => vec!["--database".to_owned(), url.clone()],
        }
    }
}

/// Every backend this run covers, each a fresh database.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Some(base) = postgres_server() {
        all.push(Backend::Postgres(fresh_postgres(&base)));
    }
    all
}

/// The PostgreSQL server of this run (a role that may create databases), if it has one.
pub fn postgres_server() -> Option<String> {
    match std::env::var("FIELDSYNC_TEST_POSTGRES") {
        Ok(base) if !base.trim().is_empty() => Some(base),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "FIELDSYNC_TEST_POSTGRES is not set: on CI the storage tests must run on PostgreSQL too (.ci/run starts one)"
            );
            None
        }
    }
}

/// Create an empty database on the server at `base` and return its URL.
pub fn fresh_postgres(base: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let name = format!("fieldsync_e2e_{}", uuid::Uuid::new_v4().simple());
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        drop(client);
        let _ = task.await;
    });
    let cut = base.rfind('/').expect("a database URL has a path");
    format!("{}/{name}", &base[..cut])
}
