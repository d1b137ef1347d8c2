//! Persistence: connection pools for the two backends, migrations, and the macro that runs one Diesel
//! body on either backend.
//!
//! PostgreSQL gets one pool. SQLite gets one *writer* connection and a pool of readers: SQLite allows one
//! writer at a time, and funnelling writes through one connection turns lock contention (`SQLITE_BUSY`)
//! into an orderly queue while readers proceed in parallel under WAL.

pub mod addresses;
pub mod analytics;
pub mod audit;
pub mod blood;
pub mod blood_banks;
pub mod cart;
pub mod catalog;
pub mod console;
pub mod coupons;
pub mod demo;
pub mod doctors;
pub mod donors;
pub mod emergency;
pub mod entity_store;
pub mod field;
pub mod homecare;
pub mod hospitals;
pub mod idempotency;
pub mod insurance;
pub mod lab_admin;
pub mod lab_collections;
pub mod lab_tests;
pub mod mail;
pub mod marketing;
pub mod migrate;
pub mod orders;
pub mod otp;
pub mod payments;
pub mod prepared;
pub mod prescriptions;
pub mod refunds;
pub mod schema;
pub mod users;

use std::time::Duration;

use diesel::{ConnectionError, SqliteConnection};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, SimpleAsyncConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Object, Pool},
    },
    sync_connection_wrapper::SyncConnectionWrapper,
};
use futures_util::FutureExt;

/// Checks out `count` connections at once (so each is a new one) and returns them to the pool.
async fn warm<C>(pool: &Pool<C>, count: usize) -> usize
where
    C: diesel_async::AsyncConnection + 'static,
    diesel_async::pooled_connection::AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    let count = count.min(pool.status().max_size);
    let held = futures_util::future::join_all((0..count).map(|_| pool.get())).await;
    drop(held);
    pool.status().size
}

/// The SQLite connection type used through diesel-async (each query runs on the blocking pool).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, SqliteBlocking>;

/// Runs SQLite work on tokio's blocking pool. diesel-async's default, when a query's future is dropped
/// early (a client disconnect cancels its handler), waits for the query inside `Drop` through
/// `block_in_place`, which panics on actix's current-thread workers. Waiting is still required — the
/// wrapper needs exclusive use of the connection again before its next transaction — so this strategy
/// waits without `block_in_place`: the query runs on a blocking-pool thread, not on this runtime, so the
/// dropping thread can park until it finishes (at most one SQLite statement, and only on cancellation).
pub struct SqliteBlocking(tokio::runtime::Handle);

/// A blocking task that cannot outlive its future.
struct Finished<R> {
    task: tokio::task::JoinHandle<R>,
}

/// How often a dropped, unfinished SQLite query is checked for completion.
const CANCELLED_QUERY_POLL: Duration = Duration::from_micros(200);

impl<R> std::future::Future for Finished<R> {
    type Output = Result<R, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task).poll(cx)
    }
}

impl<R> Drop for Finished<R> {
    fn drop(&mut self) {
        while !self.task.is_finished() {
            std::thread::sleep(CANCELLED_QUERY_POLL);
        }
    }
}

impl diesel_async::sync_connection_wrapper::SpawnBlocking for SqliteBlocking {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        let task = Finished {
            task: self.0.spawn_blocking(task),
        };
        Box::pin(async move {
            task.await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }

    fn get_runtime() -> Self {
        static FALLBACK: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            return Self(handle);
        }
        // Only reached when a connection is opened outside any runtime (not done by this crate).
        let runtime = FALLBACK.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .ok()
        });
        match runtime {
            Some(runtime) => Self(runtime.handle().clone()),
            None => {
                tracing::error!("no tokio runtime for SQLite work");
                std::process::abort()
            }
        }
    }
}

/// How long a request waits for a free connection before answering 503.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits on a lock held by another process before failing a statement.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Which database the URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// `postgres://` or `postgresql://` selects PostgreSQL; anything else is an SQLite path.
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

/// Failures below the HTTP edge.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(anyhow::Error),
}

/// A cloneable handle on the database.
#[derive(Clone)]
pub enum Db {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite {
        /// The only connection that writes; size 1.
        writer: Pool<SqliteConn>,
        /// Read-only work runs here in parallel.
        readers: Pool<SqliteConn>,
    },
}

/// A checked-out connection of either backend. Use [`on_conn!`](crate::on_conn) to run a query on it.
#[expect(
    clippy::large_enum_variant,
    reason = "held briefly on the stack per request; boxing would add an allocation to every checkout"
)]
pub enum Conn {
    Pg(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

/// Runs the same Diesel body on whichever backend `$conn` holds; `$c` is a `&mut` connection of the
/// concrete type inside each arm, so the body type-checks once per backend with no trait bounds.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg(pooled) => {
                let $c: &mut ::diesel_async::AsyncPgConnection = &mut *pooled;
                $body
            }
            $crate::db::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut *pooled;
                $body
            }
        }
    };
}

impl Db {
    /// Opens the pools for `url` (creating the SQLite file's folder) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, DbError> {
        migrate::run_pending(url).await?;
        Self::open(url, max_connections)
    }

    /// Opens the pools without migrating.
    pub fn open(url: &str, max_connections: usize) -> Result<Self, DbError> {
        let unavailable = |e: deadpool::managed::BuildError| DbError::Unavailable(e.into());
        match Backend::from_url(url) {
            // Pooled connections are handed out without a test query (`Fast`): the default ran
            // `SELECT 1` on every checkout, a round trip per request. A connection whose socket the
            // server closed is still noticed (`is_broken` sees the client closed) and replaced.
            Backend::Postgres => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                let pool = Pool::builder(manager)
                    .max_size(max_connections.max(1))
                    .wait_timeout(Some(POOL_WAIT_TIMEOUT))
                    .create_timeout(Some(POOL_WAIT_TIMEOUT))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(unavailable)?;
                Ok(Self::Postgres(pool))
            }
            Backend::Sqlite => {
                let build = |size: usize| {
                    let mut config = ManagerConfig::<SqliteConn>::default();
                    config.custom_setup = Box::new(|url| establish_sqlite(url.to_owned()).boxed());
                    config.recycling_method = RecyclingMethod::Fast;
                    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                    Pool::builder(manager)
                        .max_size(size)
                        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
                        .runtime(deadpool::Runtime::Tokio1)
                        .build()
                        .map_err(unavailable)
                };
                Ok(Self::Sqlite {
                    writer: build(1)?,
                    readers: build(max_connections.clamp(1, 8))?,
                })
            }
        }
    }

    /// Opens up to `count` pooled connections (never more than the pool's size) before the first
    /// request, so that the first burst of traffic does not wait for connection setup: the pool
    /// otherwise grows on demand, and a new PostgreSQL connection costs a server process and an
    /// authentication round trip while its request waits. Best effort: a connection that cannot be
    /// opened now is opened on demand later. Returns how many the pool holds.
    pub async fn warm_up(&self, count: usize) -> usize {
        match self {
            Self::Postgres(pool) => warm(pool, count).await,
            Self::Sqlite { readers, .. } => warm(readers, count).await,
        }
    }

    /// Connections the pools hold open now, idle or in use.
    pub fn open_connections(&self) -> usize {
        match self {
            Self::Postgres(pool) => pool.status().size,
            Self::Sqlite { writer, readers } => writer.status().size + readers.status().size,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// A connection for work that may write (and for any transaction).
    pub async fn write(&self) -> Result<Conn, DbError> {
        match self {
            Self::Postgres(pool) => Ok(Conn::Pg(pool.get().await.map_err(pool_error)?)),
            Self::Sqlite { writer, .. } => Ok(Conn::Sqlite(writer.get().await.map_err(pool_error)?)),
        }
    }

    /// A connection for read-only work.
    pub async fn read(&self) -> Result<Conn, DbError> {
        match self {
            Self::Postgres(pool) => Ok(Conn::Pg(pool.get().await.map_err(pool_error)?)),
            Self::Sqlite { readers, .. } => Ok(Conn::Sqlite(readers.get().await.map_err(pool_error)?)),
        }
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.read().await?;
        on_conn!(&mut conn, c => c.batch_execute("SELECT 1").await)?;
        Ok(())
    }

    /// Whether the database would take a write now: a PostgreSQL primary not set read-only, an SQLite
    /// file this process may write (the write lock taken and given back). For readiness.
    pub async fn check_writable(&self) -> Result<(), DbError> {
        let mut conn = self.write().await?;
        match &mut conn {
            Conn::Pg(c) => {
                c.batch_execute(
                    "DO $$ BEGIN \
                       IF pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' THEN \
                         RAISE EXCEPTION 'the database is read-only'; \
                       END IF; \
                     END $$",
                )
                .await?
            }
            Conn::Sqlite(c) => c.batch_execute("BEGIN IMMEDIATE; ROLLBACK;").await?,
        }
        Ok(())
    }
}

/// Whether `error` means the database cannot serve right now — the connection was lost, the server is
/// shutting down or starting up, or it is read-only — rather than a bug: answered 503 with
/// `Retry-After`, never 500.
pub fn is_unavailable(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match error {
        Error::DatabaseError(
            Kind::ClosedConnection | Kind::UnableToSendCommand | Kind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            // PostgreSQL 57P01-57P03 (admin or crash shutdown, cannot connect now), 25006 (read-only,
            // also raised by `check_writable`); SQLite read-only, busy past its timeout, I/O failure.
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
                || message.contains("read-only")
                || message.contains("readonly database")
                || message.contains("database is locked")
                || message.contains("disk I/O error")
        }
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

fn pool_error(error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> DbError {
    DbError::Unavailable(anyhow::anyhow!("{error}"))
}

/// Opens an SQLite connection with the settings every connection needs: WAL for concurrent readers,
/// a busy timeout, enforced foreign keys.
async fn establish_sqlite(url: String) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&url).await?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    ))
    .await
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// True when `error` is a unique-constraint violation on `table.column` (SQLite names the column in
/// its message, PostgreSQL names the constraint `table_column_key`).
pub fn is_unique_violation(error: &diesel::result::Error, table: &str, column: &str) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let dotted = format!("{table}.{column}");
            let constraint = format!("{table}_{column}_key");
            info.message().contains(&dotted) || info.constraint_name().is_some_and(|name| name == constraint)
        }
        _ => false,
    }
}

/// The current time as stored in TIMESTAMP columns (UTC, microsecond precision on both backends).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

/// A raw SQL text written for PostgreSQL with `$n` parameters, as the connection's backend reads it:
/// SQLite takes `$n` for a *named* parameter numbered by first appearance, so it gets `?n`, its
/// explicitly numbered form. The text must use `$` for nothing else.
pub fn sql_text(conn: &Conn, postgres: &'static str) -> std::borrow::Cow<'static, str> {
    match conn {
        Conn::Pg(_) => std::borrow::Cow::Borrowed(postgres),
        Conn::Sqlite(_) => std::borrow::Cow::Owned(postgres.replace('$', "?")),
    }
}

/// How often a transaction is re-run after a PostgreSQL serialization failure or deadlock.
const MAX_ATTEMPTS: u32 = 4;
/// Pause before a re-run, multiplied by the attempt number.
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(15);

/// An error that may wrap a database error; [`with_retries`] re-runs transactions that failed with a
/// retryable one.
pub trait Retryable {
    /// The database error inside, if any.
    fn db_error(&self) -> Option<&diesel::result::Error>;

    /// True for PostgreSQL's SQLSTATE 40001 (serialization failure) and 40P01 (deadlock detected), and
    /// SQLite's busy lock upgrade: the transaction did nothing and may be run again.
    fn is_retryable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self.db_error() {
            Some(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => true,
            // diesel has no kind for 40P01; PostgreSQL's message for it is stable. SQLite answers
            // "database is locked" at once (without waiting) when two connections' read transactions
            // both try to write: the loser's transaction is rolled back and may run again.
            Some(Error::DatabaseError(_, info)) => {
                info.message().contains("deadlock detected") || info.message().contains("database is locked")
            }
            _ => false,
        }
    }
}

impl Retryable for diesel::result::Error {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        Some(self)
    }
}

/// Runs `attempt` up to [`MAX_ATTEMPTS`] times while it fails with a retryable database error.
pub async fn with_retries<T, E, F>(conn: &mut Conn, mut attempt: F) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: AsyncFnMut(&mut Conn) -> Result<T, E>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(conn).await {
            Err(error) if tries < MAX_ATTEMPTS && error.is_retryable() => {
                tracing::warn!(error = %error, tries, "transaction re-run after a serialization failure");
                tokio::time::sleep(RETRY_BACKOFF * tries).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::is_unavailable;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn lost_connections_shutdowns_and_read_only_databases_are_unavailability_not_bugs() {
        for error in [
            database_error(DatabaseErrorKind::ClosedConnection, "connection closed"),
            database_error(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            database_error(
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            database_error(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            database_error(DatabaseErrorKind::Unknown, "the database system is shutting down"),
            database_error(DatabaseErrorKind::Unknown, "attempt to write a readonly database"),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
        ] {
            assert!(is_unavailable(&error), "{error}");
        }
        for error in [
            Error::NotFound,
            database_error(DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            database_error(DatabaseErrorKind::Unknown, "syntax error at or near \"SELEC\""),
        ] {
            assert!(!is_unavailable(&error), "{error}");
        }
    }
}
