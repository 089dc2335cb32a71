//! The store: the PostgreSQL pool, the embedded migrations, the Diesel schema, and one module per table
//! that owns every write to it (reads stay beside their use).

pub mod accepted;
pub mod jobs;
pub mod outbox;
pub mod places;
pub mod receipt_log;
pub mod receipts;
pub mod rollups;
pub mod schema;
pub mod statement;
pub mod tokens;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Key of the advisory lock that serialises migrations when several processes start at once.
const MIGRATION_LOCK: i64 = 0x7265_6365_6970_7473;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database")]
    Query(#[from] diesel::result::Error),
    #[error("migrations")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Builds a pool without connecting: services start while PostgreSQL is down and report it on `/ready`.
pub fn build_pool(database_url: &str, max_size: u32) -> PgPool {
    Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        .build_unchecked(ConnectionManager::new(database_url))
}

/// Applies pending migrations, one process at a time.
pub fn run_migrations(pool: &PgPool) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.len());
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(&mut conn)?;
    let applied = applied.map_err(DbError::Migration)?;
    if applied > 0 {
        log::info!("applied {applied} database migrations");
    }
    Ok(())
}

/// Checks that PostgreSQL answers.
pub fn ping(pool: &PgPool) -> Result<(), DbError> {
    let mut conn = pool.get_timeout(Duration::from_secs(2))?;
    diesel::sql_query("SELECT 1").execute(&mut conn)?;
    Ok(())
}

/// Applies migrations, waiting up to `attempts` seconds for PostgreSQL to accept connections (services
/// start beside the database in compose). Blocking: call it off the async executor.
pub fn run_migrations_when_ready(pool: &PgPool, attempts: u32) -> Result<(), DbError> {
    let mut attempt = 1;
    loop {
        match run_migrations(pool) {
            Ok(()) => return Ok(()),
            Err(error) if attempt < attempts => {
                log::warn!("database not ready ({}); retrying", crate::report::chain(&error));
                std::thread::sleep(Duration::from_secs(1));
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
