//! Unit positions buffered between writes: every ping replaces the unit's pending position, and a
//! periodic flush writes each unit's latest one to the `units` table in one statement (PostgreSQL) or
//! one transaction (SQLite). The database
//! sees one write per unit per flush interval, not one per ping.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::{Db, DbError, prepared::PreparedExt, schema::units};

/// The latest position of one unit, not yet written.
#[derive(Debug, Clone, Copy)]
pub struct PendingPosition {
    pub lat: f64,
    pub lng: f64,
    /// Degrees in [0, 360).
    pub heading: f64,
    /// Metres per second, ≥ 0.
    pub speed: f64,
    pub h3_cell: Option<i64>,
    pub seen_at: DateTime<Utc>,
}

/// Positions waiting for the next flush, keyed by unit id.
#[derive(Default)]
pub struct PositionBuffer {
    pending: Mutex<HashMap<i64, PendingPosition>>,
}

impl PositionBuffer {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, PendingPosition>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `position` as the unit's latest (an older pending one is overwritten).
    pub fn record(&self, unit: i64, position: PendingPosition) {
        self.lock().insert(unit, position);
    }

    /// Units with a position waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every pending position in one transaction; returns how many units were written. On
    /// failure the positions are put back unless a newer ping replaced them meanwhile.
    pub async fn flush(&self, db: &Db) -> Result<usize, DbError> {
        let mut batch: Vec<(i64, PendingPosition)> = self.lock().drain().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        // Rows are locked in unit order, as every other multi-unit write does.
        batch.sort_unstable_by_key(|(unit, _)| *unit);
        let written = write(db, &batch).await;
        if written.is_err() {
            let mut pending = self.lock();
            for (unit, position) in batch {
                pending.entry(unit).or_insert(position);
            }
        }
        written
    }
}

/// PostgreSQL writes a whole flush in one statement: the positions travel as arrays, one per column.
const FLUSH_PG_SQL: &str = "UPDATE units AS u SET last_lat = p.lat, last_lng = p.lng, \
     last_heading = p.heading, last_speed_mps = p.speed, last_h3_cell = p.cell, last_seen_at = p.seen \
     FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::bigint[], \
     $7::timestamp[]) AS p(id, lat, lng, heading, speed, cell, seen) WHERE u.id = p.id";

async fn write(db: &Db, batch: &[(i64, PendingPosition)]) -> Result<usize, DbError> {
    let mut conn = db.write().await?;
    let count = batch.len();
    match &mut conn {
        // One round trip however many units pinged: the rows are locked for the statement's few
        // milliseconds, not for a round trip per unit, so a claim of one of them barely waits.
        crate::db::Conn::Pg(c) => {
            use diesel::sql_types::{Array, BigInt, Double, Nullable, Timestamp};
            let column =
                |f: fn(&PendingPosition) -> f64| batch.iter().map(|(_, p)| f(p)).collect::<Vec<f64>>();
            diesel::sql_query(FLUSH_PG_SQL)
                .bind::<Array<BigInt>, _>(batch.iter().map(|(unit, _)| *unit).collect::<Vec<i64>>())
                .bind::<Array<Double>, _>(column(|p| p.lat))
                .bind::<Array<Double>, _>(column(|p| p.lng))
                .bind::<Array<Double>, _>(column(|p| p.heading))
                .bind::<Array<Double>, _>(column(|p| p.speed))
                .bind::<Array<Nullable<BigInt>>, _>(batch.iter().map(|(_, p)| p.h3_cell).collect::<Vec<_>>())
                .bind::<Array<Timestamp>, _>(
                    batch
                        .iter()
                        .map(|(_, p)| p.seen_at.naive_utc())
                        .collect::<Vec<_>>(),
                )
                .prepared()
                .execute(&mut **c)
                .await?;
        }
        // SQLite is in-process: a statement per unit costs no round trip, inside one transaction.
        crate::db::Conn::Sqlite(c) => {
            c.transaction(async move |c| {
                for (unit, p) in batch {
                    diesel::update(units::table.find(*unit))
                        .set((
                            units::last_lat.eq(p.lat),
                            units::last_lng.eq(p.lng),
                            units::last_heading.eq(p.heading),
                            units::last_speed_mps.eq(p.speed),
                            units::last_h3_cell.eq(p.h3_cell),
                            units::last_seen_at.eq(p.seen_at.naive_utc()),
                        ))
                        .prepared()
                        .execute(c)
                        .await?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .await?;
        }
    }
    Ok(count)
}
