//! The rollup tables: exact sums per UTC hour, day and month ([`Grain`]) at three levels ([`Level`]): a
//! place, a merchant's places, and every place; each with its figures per category beside it. This module
//! owns every write to them.
//!
//! Every row equals the sum of the receipts below it. The consumer adds each batch's receipts to their place
//! hours and to the nine buckets above each (the place's day and month, its merchant's hour, day and month,
//! and the totals'), in the transaction that stores them ([`add`]), so analytics count a receipt as soon as
//! it is stored. A recompute sums a place's hour afresh from its receipts and adds whatever the hour lacks
//! (or has too much of) the same way, so its cost does not grow with the data, a late receipt for last year
//! fixes its hour, day and month, and a second run finds no difference. The jobs the consumer queues
//! [`check`] their hours instead: each hour against its receipts stored since its last check, recomputing
//! only an hour that differs. Additions commute, so batches and recomputes never wait for one another
//! beyond the rows they share; recomputes take one lock, so no difference is corrected twice. A full
//! rebuild sums everything from the receipts, set-based, with the tables locked against every writer.

mod check;
mod delta;
mod rebuild;
mod recompute;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};

use crate::domain::jobs::HourBucket;

pub use check::{check, Checked};
pub use delta::{add, CategoryFigures, Delta, HourFigures};
pub use rebuild::{rebuild_all, rebuild_statements};
pub use recompute::recompute;

/// Who a row of rollups sums up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One place (`place_rollups`, keyed by `place_id`).
    Place,
    /// Every place of a merchant (`merchant_rollups`, keyed by `merchant_id`).
    Merchant,
    /// Every place (`total_rollups`).
    Total,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Place, Level::Merchant, Level::Total];

    /// The table of its totals: purchases, amounts, VAT and tips.
    pub fn totals_table(self) -> &'static str {
        match self {
            Level::Place => "place_rollups",
            Level::Merchant => "merchant_rollups",
            Level::Total => "total_rollups",
        }
    }

    /// The table of its figures per category: receipts holding the category, and their spend on it.
    pub fn categories_table(self) -> &'static str {
        match self {
            Level::Place => "place_category_rollups",
            Level::Merchant => "merchant_category_rollups",
            Level::Total => "total_category_rollups",
        }
    }

    /// The column that says whose rows they are (none for the total).
    pub fn key_column(self) -> Option<&'static str> {
        match self {
            Level::Place => Some("place_id"),
            Level::Merchant => Some("merchant_id"),
            Level::Total => None,
        }
    }
}

/// Key of the advisory lock every recompute holds until it commits.
pub const RECOMPUTE_LOCK: i64 = 0x0072_6f6c_6c75_7073;

/// Begins a check or a recompute in the current transaction: takes the recompute lock, and turns off JIT
/// compilation until the transaction ends. The planner estimates each bucket's lookups from generic
/// statistics, so a job of 77 buckets at 10 million receipts was costed above `jit_above_cost`, and
/// compiling it took 375 of its 400 ms; both statements of that job ran in 12 ms without.
fn begin_recompute(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({RECOMPUTE_LOCK})")).execute(conn)?;
    diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
    Ok(())
}

/// The buckets' places and hours, as the arrays that recomputes and checks bind as `$1` and `$2`.
fn places_and_hours(buckets: &[HourBucket]) -> (Vec<&str>, Vec<DateTime<Utc>>) {
    buckets
        .iter()
        .map(|bucket| (bucket.place_id.as_str(), bucket.hour))
        .unzip()
}

/// `place_id, ` (the level's key column and a comma) when it has one.
fn key_columns(level: Level) -> String {
    level
        .key_column()
        .map(|column| format!("{column}, "))
        .unwrap_or_default()
}

#[derive(Debug, QueryableByName)]
pub(crate) struct BucketRow {
    #[diesel(sql_type = Text)]
    place_id: String,
    #[diesel(sql_type = Timestamptz)]
    hour: DateTime<Utc>,
}

impl From<BucketRow> for HourBucket {
    fn from(row: BucketRow) -> Self {
        HourBucket {
            place_id: row.place_id,
            hour: row.hour,
        }
    }
}

/// Hour buckets that received receipts stored since `since`.
pub fn stored_since(conn: &mut PgConnection, since: DateTime<Utc>) -> QueryResult<Vec<HourBucket>> {
    let rows: Vec<BucketRow> = diesel::sql_query(
        "SELECT DISTINCT place_id, date_trunc('hour', purchased_at, 'UTC') AS hour FROM receipts WHERE stored_at >= $1",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)?;
    Ok(rows.into_iter().map(HourBucket::from).collect())
}

/// Every hour bucket with receipts or rollups, of one place or of all.
pub fn all_buckets(conn: &mut PgConnection, place_id: Option<&str>) -> QueryResult<Vec<HourBucket>> {
    let rows: Vec<BucketRow> = diesel::sql_query(
        "SELECT DISTINCT place_id, date_trunc('hour', purchased_at, 'UTC') AS hour FROM receipts
         WHERE $1::text IS NULL OR place_id = $1
         UNION
         SELECT place_id, start FROM place_rollups WHERE grain = 'hour' AND ($1::text IS NULL OR place_id = $1)",
    )
    .bind::<Nullable<Text>, _>(place_id)
    .load(conn)?;
    Ok(rows.into_iter().map(HourBucket::from).collect())
}
