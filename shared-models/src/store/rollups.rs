//! The rollup tables (`place_hour_rollups`, `category_hour_rollups`): exact sums per place and hour, and per
//! place, hour and category, recomputed from the stored receipts. This module owns every write to them.
//! Each bucket's rows are replaced by sums computed from scratch, so running a job twice gives the same
//! figures.

use crate::domain::jobs::HourBucket;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text, Timestamptz};

#[derive(Debug, QueryableByName)]
struct BucketRow {
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

const BUCKETS: &str = "buckets AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS b(place_id, hour))";

/// Replaces the rollups of the given buckets; returns how many buckets were recomputed.
pub fn recompute(conn: &mut PgConnection, buckets: &[HourBucket]) -> QueryResult<usize> {
    if buckets.is_empty() {
        return Ok(0);
    }
    let places: Vec<String> = buckets.iter().map(|bucket| bucket.place_id.clone()).collect();
    let hours: Vec<DateTime<Utc>> = buckets.iter().map(|bucket| bucket.hour).collect();
    let statements = [
        format!(
            "WITH {BUCKETS}
             INSERT INTO place_hour_rollups (place_id, hour, purchases, total_amount, vat_amount, tips_amount, computed_at)
             SELECT b.place_id, b.hour, COUNT(r.id), COALESCE(SUM(r.total_amount), 0),
                    COALESCE(SUM(r.vat_amount), 0), COALESCE(SUM(r.tips_amount), 0), now()
             FROM buckets b LEFT JOIN receipts r
               ON r.place_id = b.place_id AND r.purchased_at >= b.hour AND r.purchased_at < b.hour + interval '1 hour'
             GROUP BY b.place_id, b.hour
             ON CONFLICT (place_id, hour) DO UPDATE SET purchases = excluded.purchases,
                total_amount = excluded.total_amount, vat_amount = excluded.vat_amount,
                tips_amount = excluded.tips_amount, computed_at = excluded.computed_at"
        ),
        format!(
            "WITH {BUCKETS}
             DELETE FROM category_hour_rollups c USING buckets b
             WHERE c.place_id = b.place_id AND c.hour = b.hour"
        ),
        format!(
            "WITH {BUCKETS}
             INSERT INTO category_hour_rollups (place_id, hour, category, receipts, spent, computed_at)
             SELECT b.place_id, b.hour, l.category, COUNT(DISTINCT r.id), SUM(l.amount), now()
             FROM buckets b
             JOIN receipts r
               ON r.place_id = b.place_id AND r.purchased_at >= b.hour AND r.purchased_at < b.hour + interval '1 hour'
             JOIN receipt_lines l ON l.receipt_id = r.id
             GROUP BY b.place_id, b.hour, l.category"
        ),
    ];
    conn.transaction(|conn| {
        // Serialise recomputes of the same places, so that two jobs cannot interleave a bucket's rows.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext(p)) FROM (SELECT DISTINCT unnest($1::text[]) AS p ORDER BY 1) s")
            .bind::<Array<Text>, _>(&places)
            .execute(conn)?;
        for statement in &statements {
            diesel::sql_query(statement)
                .bind::<Array<Text>, _>(&places)
                .bind::<Array<Timestamptz>, _>(&hours)
                .execute(conn)?;
        }
        Ok(buckets.len())
    })
}

/// Buckets that received receipts stored since `since`.
pub fn stored_since(conn: &mut PgConnection, since: DateTime<Utc>) -> QueryResult<Vec<HourBucket>> {
    let rows: Vec<BucketRow> = diesel::sql_query(
        "SELECT DISTINCT place_id, date_trunc('hour', purchased_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour FROM receipts WHERE stored_at >= $1",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)?;
    Ok(rows.into_iter().map(HourBucket::from).collect())
}

/// Every bucket with receipts or rollups, of one place or of all.
pub fn all_buckets(conn: &mut PgConnection, place_id: Option<&str>) -> QueryResult<Vec<HourBucket>> {
    let rows: Vec<BucketRow> = diesel::sql_query(
        "SELECT DISTINCT place_id, date_trunc('hour', purchased_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour FROM receipts
         WHERE $1::text IS NULL OR place_id = $1
         UNION
         SELECT place_id, hour FROM place_hour_rollups WHERE $1::text IS NULL OR place_id = $1",
    )
    .bind::<Nullable<Text>, _>(place_id)
    .load(conn)?;
    Ok(rows.into_iter().map(HourBucket::from).collect())
}
