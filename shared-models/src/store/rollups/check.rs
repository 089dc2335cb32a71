//! Checking hour buckets as the consumer queues them: each place hour against only the receipts stored since
//! its last check, so a busy hour checked every minute costs a minute of its receipts, not all of them.
//!
//! A check keeps, per place hour, the figures of its receipts stored before a watermark (`checked_place_hours`
//! and `checked_place_hour_categories`). The watermark is a time before which every receipt that will ever be
//! stored has already been committed: no earlier than the start of every open transaction, since a receipt's
//! `stored_at` is its storing transaction's start. The next check finds the hour's rollup equal to those
//! figures plus its receipts stored since the watermark (one statement, so one snapshot, in which the
//! consumer's receipts and its additions to the rollups are both there or both not), and moves the watermark
//! on. Only the watermark's hour and the one before keep a check: they are the hours that grow, while an
//! older hour (a late receipt's, a backlog's) holds few receipts and is read whole. An hour never checked,
//! or last checked over an hour before, is read whole too. An hour whose rollup differs is recomputed from
//! all its receipts ([`recompute`]) and read whole at its next check.
//!
//! What a check does not see: a receipt removed or altered after it was checked. The pipeline never does
//! either; an admin's recompute reads every receipt.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text, Timestamptz};

use super::recompute::{recompute, BUCKETS_SQL, IN_HOUR};
use super::{begin_recompute, places_and_hours, BucketRow};
use crate::domain::jobs::HourBucket;
use crate::domain::time::start_of_hour;

/// What a check did: how many hour buckets it checked, and how many of them it had to correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub buckets: usize,
    pub corrected: usize,
}

/// The earliest start of any open transaction (this one included), or none when PostgreSQL hides some
/// sessions of the database from this role (then every hour is recomputed from all its receipts).
const WATERMARK_SQL: &str = "SELECT CASE WHEN bool_or(query = '<insufficient privilege>') THEN NULL
        ELSE LEAST(clock_timestamp(), min(xact_start) FILTER (WHERE backend_type = 'client backend')) END AS watermark
    FROM pg_stat_activity WHERE datname = current_database()";

#[derive(QueryableByName)]
struct Watermark {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    watermark: Option<DateTime<Utc>>,
}

/// Forgets the checks of the buckets (`$1`, `$2`) made before `$3` (or at any time when `$3` is null), and any
/// categories left without their hour's check.
const FORGET_SQL: &str = "WITH u AS (
        SELECT DISTINCT place_id, date_trunc('hour', start, 'UTC') AS start
        FROM unnest($1::text[], $2::timestamptz[]) AS u (place_id, start)
    ),
    stale AS (
        SELECT u.place_id, u.start FROM u
        LEFT JOIN checked_place_hours k ON k.place_id = u.place_id AND k.start = u.start
        WHERE $3::timestamptz IS NULL OR k.checked_through IS NULL OR k.checked_through < $3
    ),
    categories AS (
        DELETE FROM checked_place_hour_categories k USING stale s WHERE k.place_id = s.place_id AND k.start = s.start
    )
    DELETE FROM checked_place_hours k USING stale s WHERE k.place_id = s.place_id AND k.start = s.start";

/// The start of the earliest hour that keeps a check: the watermark's hour and the one before, the hours
/// that still grow. An older hour (a late receipt's, a backlog's) is read whole: that costs what the hour
/// holds, where reading its place's receipts stored since a check could cost far more.
const RECENT_SQL: &str = "date_trunc('hour', $3::timestamptz, 'UTC') - interval '1 hour'";

/// Forgets the checks of hours older than the recent ones (`$1`: the earliest recent hour).
const FORGET_OLD_SQL: &str = "WITH categories AS (DELETE FROM checked_place_hour_categories WHERE start < $1)
    DELETE FROM checked_place_hours WHERE start < $1";

/// The buckets `b`, each with its last check if it is a recent hour and has one: `c`.
fn last_check_sql() -> String {
    format!(
        "c AS (
            SELECT b.place_id, b.start, k.checked_through, k.purchases AS checked_purchases,
                   k.total_amount AS checked_total, k.vat_amount AS checked_vat, k.tips_amount AS checked_tips
            FROM b LEFT JOIN LATERAL (
                SELECT * FROM checked_place_hours k
                WHERE k.place_id = b.place_id AND k.start = b.start AND b.start >= {RECENT_SQL} OFFSET 0
            ) k ON true
        )"
    )
}

/// The receipts (`r`) of the bucket `c` stored since its last check, or all of them if it has none: by the
/// place's receipts stored since then, or by the hour's receipts. Each branch runs only for its kind of
/// bucket, and the first has no range on `purchased_at`, so that the planner reads it by `stored_at`. An
/// older hour keeps no check, so when its receipts were stored does not matter: the third branch reads
/// them without `stored_at`, from the key on `(place_id, purchased_at)` alone, which carries the rest
/// (decisions.md, "Recompute jobs read receipts and lines from their keys"). That key leaves `stored_at`
/// out, or the planner would read the first branch from it, every receipt of the place.
fn receipts_unchecked() -> String {
    let in_hour = IN_HOUR.replace("b.", "c.");
    format!(
        "SELECT r.id, r.stored_at, r.total_amount, r.vat_amount, r.tips_amount FROM receipts r
         WHERE c.checked_through IS NOT NULL AND r.place_id = c.place_id AND r.stored_at >= c.checked_through
           AND date_trunc('hour', r.purchased_at, 'UTC') = c.start
         UNION ALL
         SELECT r.id, r.stored_at, r.total_amount, r.vat_amount, r.tips_amount FROM receipts r
         WHERE c.checked_through IS NULL AND c.start >= {RECENT_SQL} AND {in_hour}
         UNION ALL
         SELECT r.id, NULL::timestamptz, r.total_amount, r.vat_amount, r.tips_amount FROM receipts r
         WHERE c.checked_through IS NULL AND c.start < {RECENT_SQL} AND {in_hour}"
    )
}

/// Checks the hours' totals against their last check plus their unchecked receipts, records the new check
/// of those that agree (watermark `$3`), and returns those that do not.
fn check_totals_sql() -> String {
    let unchecked = receipts_unchecked();
    let last_check = last_check_sql();
    format!(
        "WITH {BUCKETS_SQL}, {last_check},
         fresh AS (
            SELECT c.*, s.* FROM c CROSS JOIN LATERAL (
                SELECT COUNT(*)::int8 AS purchases, COALESCE(SUM(r.total_amount), 0) AS total_amount,
                       COALESCE(SUM(r.vat_amount), 0) AS vat_amount, COALESCE(SUM(r.tips_amount), 0) AS tips_amount,
                       (COUNT(*) FILTER (WHERE r.stored_at < $3))::int8 AS purchases_before,
                       COALESCE(SUM(r.total_amount) FILTER (WHERE r.stored_at < $3), 0) AS total_before,
                       COALESCE(SUM(r.vat_amount) FILTER (WHERE r.stored_at < $3), 0) AS vat_before,
                       COALESCE(SUM(r.tips_amount) FILTER (WHERE r.stored_at < $3), 0) AS tips_before
                FROM ({unchecked}) r
            ) s
         ),
         compared AS (
            SELECT f.place_id, f.start,
                   COALESCE(f.checked_purchases, 0) + f.purchases = COALESCE(o.purchases, 0)
                   AND COALESCE(f.checked_total, 0) + f.total_amount = COALESCE(o.total_amount, 0)
                   AND COALESCE(f.checked_vat, 0) + f.vat_amount = COALESCE(o.vat_amount, 0)
                   AND COALESCE(f.checked_tips, 0) + f.tips_amount = COALESCE(o.tips_amount, 0) AS agrees,
                   COALESCE(f.checked_purchases, 0) + f.purchases_before AS purchases,
                   COALESCE(f.checked_total, 0) + f.total_before AS total_amount,
                   COALESCE(f.checked_vat, 0) + f.vat_before AS vat_amount,
                   COALESCE(f.checked_tips, 0) + f.tips_before AS tips_amount
            FROM fresh f
            LEFT JOIN LATERAL (
                SELECT * FROM place_rollups o
                WHERE o.place_id = f.place_id AND o.grain = 'hour' AND o.start = f.start OFFSET 0
            ) o ON true
         ),
         checked AS (
            INSERT INTO checked_place_hours (place_id, start, checked_through, purchases, total_amount, vat_amount,
                                             tips_amount)
            SELECT place_id, start, $3, purchases, total_amount, vat_amount, tips_amount FROM compared
            WHERE agrees AND start >= {RECENT_SQL}
            ORDER BY place_id, start
            ON CONFLICT (place_id, start) DO UPDATE SET checked_through = excluded.checked_through,
                purchases = excluded.purchases, total_amount = excluded.total_amount,
                vat_amount = excluded.vat_amount, tips_amount = excluded.tips_amount
         )
         SELECT place_id, start AS hour FROM compared WHERE NOT agrees"
    )
}

/// The same for the hours' categories: returns the hours with a category that does not agree, and records
/// the categories of the others as of `$3`. It runs before the totals' check, whose record it reads as the
/// hours' last check.
fn check_categories_sql() -> String {
    let unchecked = receipts_unchecked();
    let last_check = last_check_sql();
    format!(
        "WITH {BUCKETS_SQL}, {last_check},
         fresh AS (
            SELECT c.place_id, c.start, s.* FROM c CROSS JOIN LATERAL (
                SELECT l.category, COUNT(DISTINCT r.id)::int8 AS receipts, SUM(l.amount) AS spent,
                       (COUNT(DISTINCT r.id) FILTER (WHERE r.stored_at < $3))::int8 AS receipts_before,
                       COALESCE(SUM(l.amount) FILTER (WHERE r.stored_at < $3), 0) AS spent_before
                FROM ({unchecked}) r CROSS JOIN LATERAL (
                    SELECT l.category, l.amount FROM receipt_lines l WHERE l.receipt_id = r.id OFFSET 0
                ) l
                GROUP BY l.category
            ) s
         ),
         last AS (
            SELECT k.* FROM c CROSS JOIN LATERAL (
                SELECT * FROM checked_place_hour_categories k
                WHERE k.place_id = c.place_id AND k.start = c.start AND c.checked_through IS NOT NULL OFFSET 0
            ) k
         ),
         expected AS (
            SELECT COALESCE(f.place_id, k.place_id) AS place_id, COALESCE(f.start, k.start) AS start,
                   COALESCE(f.category, k.category) AS category,
                   COALESCE(k.receipts, 0) + COALESCE(f.receipts, 0) AS receipts,
                   COALESCE(k.spent, 0) + COALESCE(f.spent, 0) AS spent,
                   COALESCE(k.receipts, 0) + COALESCE(f.receipts_before, 0) AS receipts_before,
                   COALESCE(k.spent, 0) + COALESCE(f.spent_before, 0) AS spent_before
            FROM fresh f FULL JOIN last k ON k.place_id = f.place_id AND k.start = f.start AND k.category = f.category
         ),
         old AS (
            SELECT o.place_id, o.start, o.category, o.receipts, o.spent FROM c CROSS JOIN LATERAL (
                SELECT * FROM place_category_rollups o
                WHERE o.place_id = c.place_id AND o.grain = 'hour' AND o.start = c.start OFFSET 0
            ) o
         ),
         compared AS (
            SELECT COALESCE(e.place_id, o.place_id) AS place_id, COALESCE(e.start, o.start) AS start,
                   e.category, e.receipts_before, e.spent_before,
                   COALESCE(e.receipts, 0) = COALESCE(o.receipts, 0) AND COALESCE(e.spent, 0) = COALESCE(o.spent, 0)
                       AS agrees
            FROM expected e FULL JOIN old o ON o.place_id = e.place_id AND o.start = e.start AND o.category = e.category
         ),
         disagreeing AS (SELECT DISTINCT place_id, start FROM compared WHERE NOT agrees),
         checked AS (
            INSERT INTO checked_place_hour_categories (place_id, start, category, receipts, spent)
            SELECT e.place_id, e.start, e.category, e.receipts_before, e.spent_before FROM compared e
            WHERE e.category IS NOT NULL AND e.start >= {RECENT_SQL}
              AND NOT EXISTS (SELECT 1 FROM disagreeing d WHERE d.place_id = e.place_id AND d.start = e.start)
            ORDER BY e.place_id, e.start, e.category
            ON CONFLICT (place_id, start, category) DO UPDATE SET receipts = excluded.receipts,
                spent = excluded.spent
         )
         SELECT place_id, start AS hour FROM disagreeing"
    )
}

/// Forgets the buckets' checks made before `made_before`, or all of them for `None` ([`FORGET_SQL`]).
fn forget(
    conn: &mut PgConnection,
    buckets: &[HourBucket],
    made_before: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    let (places, hours) = places_and_hours(buckets);
    diesel::sql_query(FORGET_SQL)
        .bind::<Array<Text>, _>(&places)
        .bind::<Array<Timestamptz>, _>(&hours)
        .bind::<Nullable<Timestamptz>, _>(made_before)
        .execute(conn)?;
    Ok(())
}

/// Runs one of the two checking statements over the buckets with the watermark: the hours that differ.
fn hours_differing(
    conn: &mut PgConnection,
    statement: &str,
    buckets: &[HourBucket],
    watermark: DateTime<Utc>,
) -> QueryResult<Vec<HourBucket>> {
    let (places, hours) = places_and_hours(buckets);
    let rows: Vec<BucketRow> = diesel::sql_query(statement)
        .bind::<Array<Text>, _>(&places)
        .bind::<Array<Timestamptz>, _>(&hours)
        .bind::<Timestamptz, _>(watermark)
        .load(conn)?;
    Ok(rows.into_iter().map(HourBucket::from).collect())
}

/// Checks the given hour buckets of places against their receipts, reading only the receipts stored since
/// each hour's last check, and recomputes those that differ. Holds the recompute lock, so checks and
/// recomputes run one at a time; the consumer's batches add alongside. A correction means the rollups had
/// drifted from the receipts, which the pipeline never does by itself: it is logged as a warning.
pub fn check(conn: &mut PgConnection, buckets: &[HourBucket]) -> QueryResult<Checked> {
    if buckets.is_empty() {
        return Ok(Checked {
            buckets: 0,
            corrected: 0,
        });
    }
    conn.transaction(|conn| {
        begin_recompute(conn)?;
        let watermark = diesel::sql_query(WATERMARK_SQL)
            .get_result::<Watermark>(conn)?
            .watermark;
        let Some(watermark) = watermark else {
            log::warn!(
                "PostgreSQL hides other roles' sessions from this role, so a check cannot know which receipts \
                 are committed: {} hour buckets are recomputed from all their receipts instead (grant the role \
                 pg_read_all_stats; docs/deployment.md)",
                buckets.len()
            );
            forget(conn, buckets, None)?;
            recompute(conn, buckets)?;
            return Ok(Checked {
                buckets: buckets.len(),
                corrected: 0,
            });
        };
        diesel::sql_query(FORGET_OLD_SQL)
            .bind::<Timestamptz, _>(start_of_hour(watermark) - TimeDelta::hours(1))
            .execute(conn)?;
        // A check over an hour old would read more of a busy place's receipts than its hour holds.
        forget(conn, buckets, Some(watermark - TimeDelta::hours(1)))?;
        // The categories first: both read the hours' last check, which the totals' check then moves on.
        let mut differing = hours_differing(conn, &check_categories_sql(), buckets, watermark)?;
        differing.extend(hours_differing(conn, &check_totals_sql(), buckets, watermark)?);
        differing.sort();
        differing.dedup();
        if !differing.is_empty() {
            log::warn!(
                "{} of {} hour buckets checked differed from their receipts and were recomputed: {:?}",
                differing.len(),
                buckets.len(),
                differing.iter().take(5).collect::<Vec<_>>()
            );
            recompute(conn, &differing)?;
            forget(conn, &differing, None)?;
        }
        Ok(Checked {
            buckets: buckets.len(),
            corrected: differing.len(),
        })
    })
}
