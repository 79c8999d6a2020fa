//! PostgreSQL backend, for several slotline instances sharing one database.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::PgPool;
use uuid::Uuid;

use super::sql::shared_store;
use super::{
    map_unique, parse_kind, parse_scope, parse_uuid, AgentDeletion, AgentRecord, ApiTokenRecord, Backend,
    BookingRecord, BusyRange, CalendarConfig, CallRecord, NumberPrefixRecord, PhoneNumberRecord, RecordFilter,
    SealedSecret, Store, StoreError, TranscriptLine,
};

/// [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// A transaction that holds the write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

shared_store!(PostgresStore, PgRow, {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/postgres").run(&self.pool).await?;
        Ok(())
    }
});
