//! Embedded migrations for both backends, applied at start and by `onemedi migrate`.

use anyhow::Context;
use diesel::{Connection, SqliteConnection};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Backend, DbError};

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Applies every pending migration and returns the versions applied. Runs on the blocking pool: the
/// harness is synchronous and must not block an async worker (nor actix's LocalSet).
pub async fn run_pending(url: &str) -> Result<Vec<String>, DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || apply(&url))
        .await
        .map_err(|e| DbError::Migration(e.into()))?
}

fn apply(url: &str) -> Result<Vec<String>, DbError> {
    let versions = match Backend::from_url(url) {
        Backend::Postgres => {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)
                .map_err(|e| DbError::Unavailable(e.into()))?;
            versions_of(conn.run_pending_migrations(POSTGRES_MIGRATIONS))?
        }
        Backend::Sqlite => {
            if let Some(parent) = std::path::Path::new(url)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))
                    .map_err(DbError::Unavailable)?;
            }
            let mut conn = SqliteConnection::establish(url).map_err(|e| DbError::Unavailable(e.into()))?;
            diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA foreign_keys = ON;")?;
            versions_of(conn.run_pending_migrations(SQLITE_MIGRATIONS))?
        }
    };
    Ok(versions)
}

/// Owned version names (the harness returns versions borrowing the connection).
fn versions_of(
    result: diesel::migration::Result<Vec<diesel::migration::MigrationVersion<'_>>>,
) -> Result<Vec<String>, DbError> {
    result
        .map(|v| v.into_iter().map(|v| v.to_string()).collect())
        .map_err(|e| DbError::Migration(anyhow::anyhow!(e)))
}
