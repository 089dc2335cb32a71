//! Recomputing hour buckets: each place's hour summed afresh from its receipts, its difference from the
//! hour's rollup found in the same snapshot, and that difference added to the hour and every bucket above it.

use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz};

use super::delta::{add, CategoryFigures, Delta, HourFigures};
use super::{begin_recompute, places_and_hours};
use crate::domain::jobs::HourBucket;

/// The hour buckets bound as `$1` (places) and `$2` (hours), once each, of places that exist: `b`.
pub(super) const BUCKETS_SQL: &str = "b AS (
    SELECT DISTINCT u.place_id, p.merchant_id, date_trunc('hour', u.start, 'UTC') AS start
    FROM unnest($1::text[], $2::timestamptz[]) AS u(place_id, start) JOIN places p ON p.place_id = u.place_id
)";

/// The receipts (`r`) of the hour bucket `b`. Each bucket's receipts are summed in a lateral subquery: an
/// index range scan per bucket, where a join of all buckets to `receipts` was planned as a scan of every
/// receipt. Every lookup below is a lateral subquery with `OFFSET 0`, which the planner cannot merge into a
/// join: it estimates `b` (an array) at ten rows whatever its length, and for a job of 11,500 buckets chose
/// scans of whole tables that ran for minutes.
pub(super) const IN_HOUR: &str =
    "r.place_id = b.place_id AND r.purchased_at >= b.start AND r.purchased_at < b.start + interval '1 hour'";

/// How far each hour's totals are from the sum of its receipts (one statement, so one snapshot).
fn hours_missing_sql() -> String {
    format!(
        "WITH {BUCKETS_SQL},
         fresh AS (
            SELECT b.place_id, b.start, s.* FROM b CROSS JOIN LATERAL (
                SELECT COUNT(*)::int8 AS purchases, COALESCE(SUM(r.total_amount), 0) AS total_amount,
                       COALESCE(SUM(r.vat_amount), 0) AS vat_amount, COALESCE(SUM(r.tips_amount), 0) AS tips_amount
                FROM receipts r WHERE {IN_HOUR}
            ) s
         )
         SELECT f.place_id, f.start AS hour,
                f.purchases - COALESCE(o.purchases, 0) AS purchases,
                f.total_amount - COALESCE(o.total_amount, 0) AS total_amount,
                f.vat_amount - COALESCE(o.vat_amount, 0) AS vat_amount,
                f.tips_amount - COALESCE(o.tips_amount, 0) AS tips_amount
         FROM fresh f
         LEFT JOIN LATERAL (
            SELECT * FROM place_rollups o WHERE o.place_id = f.place_id AND o.grain = 'hour' AND o.start = f.start
            OFFSET 0
         ) o ON true
         WHERE f.purchases <> COALESCE(o.purchases, 0) OR f.total_amount <> COALESCE(o.total_amount, 0)
            OR f.vat_amount <> COALESCE(o.vat_amount, 0) OR f.tips_amount <> COALESCE(o.tips_amount, 0)"
    )
}

/// How far each hour's categories are from the sums of its receipts' lines (one statement, one snapshot).
fn categories_missing_sql() -> String {
    format!(
        "WITH {BUCKETS_SQL},
         fresh AS (
            SELECT b.place_id, b.start, s.* FROM b CROSS JOIN LATERAL (
                SELECT l.category, COUNT(DISTINCT r.id)::int8 AS receipts, SUM(l.amount) AS spent
                FROM receipts r CROSS JOIN LATERAL (
                    SELECT l.category, l.amount FROM receipt_lines l WHERE l.receipt_id = r.id OFFSET 0
                ) l
                WHERE {IN_HOUR}
                GROUP BY l.category
            ) s
         ),
         old AS (
            SELECT o.place_id, o.start, o.category, o.receipts, o.spent FROM b CROSS JOIN LATERAL (
                SELECT * FROM place_category_rollups o
                WHERE o.place_id = b.place_id AND o.grain = 'hour' AND o.start = b.start OFFSET 0
            ) o
         )
         SELECT COALESCE(f.place_id, o.place_id) AS place_id, COALESCE(f.start, o.start) AS hour,
                COALESCE(f.category, o.category) AS category,
                COALESCE(f.receipts, 0) - COALESCE(o.receipts, 0) AS receipts,
                COALESCE(f.spent, 0) - COALESCE(o.spent, 0) AS spent
         FROM fresh f FULL JOIN old o ON o.place_id = f.place_id AND o.start = f.start AND o.category = f.category
         WHERE f.receipts IS DISTINCT FROM o.receipts OR f.spent IS DISTINCT FROM o.spent"
    )
}

/// Removes the category rows above the hours `b` that no receipt holds any more. Receipts are never
/// removed by the pipeline, so this runs only when a recompute found fewer receipts than before.
fn prune_categories_sql() -> String {
    format!(
        "WITH {BUCKETS_SQL},
         k AS (
            SELECT DISTINCT b.place_id, b.merchant_id, g.grain, date_trunc(g.grain, b.start, 'UTC') AS start
            FROM b CROSS JOIN unnest(ARRAY['hour', 'day', 'month']) AS g(grain)
         ),
         places AS (
            DELETE FROM place_category_rollups c USING k
            WHERE c.place_id = k.place_id AND c.grain = k.grain AND c.start = k.start AND c.receipts = 0
         ),
         merchants AS (
            DELETE FROM merchant_category_rollups c USING (SELECT DISTINCT merchant_id, grain, start FROM k) k
            WHERE c.merchant_id = k.merchant_id AND c.grain = k.grain AND c.start = k.start AND c.receipts = 0
         )
         DELETE FROM total_category_rollups c USING (SELECT DISTINCT grain, start FROM k) k
         WHERE c.grain = k.grain AND c.start = k.start AND c.receipts = 0"
    )
}

/// Recomputes the given hour buckets of places from their receipts: what each hour's rollup lacks (or has too
/// much of) is found against its receipts in one snapshot, then added to the hour and every rollup above it.
/// The consumer adds its batches at the same time, and since additions commute both land; recomputes take
/// one lock, so two never correct the same difference twice. Returns how many hour buckets were recomputed;
/// a second run finds no difference and changes no figure.
pub fn recompute(conn: &mut PgConnection, buckets: &[HourBucket]) -> QueryResult<usize> {
    if buckets.is_empty() {
        return Ok(0);
    }
    let (places, hours) = places_and_hours(buckets);
    conn.transaction(|conn| {
        begin_recompute(conn)?;
        let hours_missing: Vec<HourFigures> = diesel::sql_query(hours_missing_sql())
            .bind::<Array<Text>, _>(&places)
            .bind::<Array<Timestamptz>, _>(&hours)
            .load(conn)?;
        let categories_missing: Vec<CategoryFigures> = diesel::sql_query(categories_missing_sql())
            .bind::<Array<Text>, _>(&places)
            .bind::<Array<Timestamptz>, _>(&hours)
            .load(conn)?;
        let shrunk = categories_missing.iter().any(|row| row.receipts < 0);
        add(
            conn,
            &Delta {
                hours: hours_missing,
                categories: categories_missing,
            },
        )?;
        if shrunk {
            diesel::sql_query(prune_categories_sql())
                .bind::<Array<Text>, _>(&places)
                .bind::<Array<Timestamptz>, _>(&hours)
                .execute(conn)?;
        }
        Ok(buckets.len())
    })
}
