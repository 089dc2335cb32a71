//! Recomputing hour buckets: each place's hour summed afresh from its receipts, and its difference added to
//! every bucket above it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Timestamptz};

use super::{key_columns, Level, RECOMPUTE_LOCK};
use crate::domain::jobs::HourBucket;
use crate::domain::rollup::Grain;

/// The hour buckets bound as `$1` (places) and `$2` (hours), once each, with the place's merchant: `b`.
const BUCKETS_SQL: &str = "b AS (
    SELECT DISTINCT u.place_id, p.merchant_id, date_trunc('hour', u.start, 'UTC') AS start
    FROM unnest($1::text[], $2::timestamptz[]) AS u(place_id, start) JOIN places p ON p.place_id = u.place_id
)";

/// The receipts (`r`) of the hour bucket `b`. Each bucket's receipts are summed in a lateral subquery: an
/// index range scan per bucket, where a join of all buckets to `receipts` was planned as a scan of every
/// receipt.
const IN_HOUR: &str =
    "r.place_id = b.place_id AND r.purchased_at >= b.start AND r.purchased_at < b.start + interval '1 hour'";

/// Every (level, grain) above a place's hour: the rows a change of the hour changes.
fn above_hour() -> impl Iterator<Item = (Level, Grain)> {
    Level::ALL
        .into_iter()
        .flat_map(|level| Grain::ALL.into_iter().map(move |grain| (level, grain)))
        .filter(|&pair| pair != (Level::Place, Grain::Hour))
}

/// The figures a kind of rollup table sums (the first counts receipts), the column (if any) beside its key,
/// grain and start in its primary key, and its table at each level.
struct Measures {
    columns: &'static [&'static str],
    by: Option<&'static str>,
    table: fn(Level) -> &'static str,
}

const TOTALS: Measures = Measures {
    columns: &["purchases", "total_amount", "vat_amount", "tips_amount"],
    by: None,
    table: Level::totals_table,
};

const CATEGORIES: Measures = Measures {
    columns: &["receipts", "spent"],
    by: Some("category"),
    table: Level::categories_table,
};

/// A CTE named `name` that adds the `delta` rows (summed into buckets of `level` and `grain`) to the level's
/// table of `measures`, creating the rows that do not exist yet.
fn add_delta(name: &str, level: Level, grain: Grain, measures: &Measures) -> String {
    let table = (measures.table)(level);
    let (key, group) = match level {
        Level::Place => ("d.place_id, ", "1, 3"),
        Level::Merchant => ("d.merchant_id, ", "1, 3"),
        Level::Total => ("", "2"),
    };
    let grain = grain.as_str();
    let (by_column, by_value) = measures
        .by
        .map(|by| (format!(", {by}"), format!(", d.{by}")))
        .unwrap_or_default();
    let columns = measures.columns.join(", ");
    let sums: Vec<String> = measures
        .columns
        .iter()
        .map(|column| format!("SUM(d.{column})"))
        .collect();
    let updates: Vec<String> = measures
        .columns
        .iter()
        .map(|column| format!("{column} = {table}.{column} + excluded.{column}"))
        .collect();
    format!(
        "{name} AS (
            INSERT INTO {table} ({keys}grain, start{by_column}, {columns}, computed_at)
            SELECT {key}'{grain}', date_trunc('{grain}', d.start, 'UTC'){by_value}, {sums}, now()
            FROM delta d GROUP BY {group}{by_value}
            ON CONFLICT ({keys}grain, start{by_column}) DO UPDATE SET {updates}, computed_at = excluded.computed_at
        )",
        keys = key_columns(level),
        sums = sums.join(", "),
        updates = updates.join(", "),
    )
}

/// One statement: `ctes` (which define `delta`, the differences of the hours), then the additions of
/// `delta` to every table of `measures` above the hours; it answers how many differences were negative
/// (`shrunk`: receipts went away, so rows above may have emptied).
fn with_additions(mut ctes: Vec<String>, measures: &Measures) -> String {
    for (index, (level, grain)) in above_hour().enumerate() {
        ctes.push(add_delta(&format!("above_{index}"), level, grain, measures));
    }
    let shrunk = measures.columns[0];
    format!(
        "WITH {} SELECT count(*) AS shrunk FROM delta WHERE {shrunk} < 0",
        ctes.join(",\n")
    )
}

/// Recomputes the totals of the hours `b` from their receipts and adds each hour's difference above it.
fn recompute_totals_sql() -> String {
    with_additions(
        vec![
            BUCKETS_SQL.to_owned(),
            format!(
                "fresh AS (
                    SELECT b.place_id, b.merchant_id, b.start, s.* FROM b CROSS JOIN LATERAL (
                        SELECT COUNT(*)::int8 AS purchases, COALESCE(SUM(r.total_amount), 0) AS total_amount,
                               COALESCE(SUM(r.vat_amount), 0) AS vat_amount, COALESCE(SUM(r.tips_amount), 0) AS tips_amount
                        FROM receipts r WHERE {IN_HOUR}
                    ) s
                )"
            ),
            "delta AS (
                SELECT f.place_id, f.merchant_id, f.start,
                       f.purchases - COALESCE(o.purchases, 0) AS purchases,
                       f.total_amount - COALESCE(o.total_amount, 0) AS total_amount,
                       f.vat_amount - COALESCE(o.vat_amount, 0) AS vat_amount,
                       f.tips_amount - COALESCE(o.tips_amount, 0) AS tips_amount
                FROM fresh f
                LEFT JOIN place_rollups o ON o.place_id = f.place_id AND o.grain = 'hour' AND o.start = f.start
            )"
            .to_owned(),
            "hours AS (
                INSERT INTO place_rollups
                    (place_id, grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
                SELECT place_id, 'hour', start, purchases, total_amount, vat_amount, tips_amount, now() FROM fresh
                ON CONFLICT (place_id, grain, start) DO UPDATE SET purchases = excluded.purchases,
                   total_amount = excluded.total_amount, vat_amount = excluded.vat_amount,
                   tips_amount = excluded.tips_amount, computed_at = excluded.computed_at
            )"
            .to_owned(),
        ],
        &TOTALS,
    )
}

/// Recomputes the categories of the hours `b` from their receipts and adds each hour's differences above it.
fn recompute_categories_sql() -> String {
    with_additions(
        vec![
            BUCKETS_SQL.to_owned(),
            format!(
                "fresh AS (
                    SELECT b.place_id, b.merchant_id, b.start, s.* FROM b CROSS JOIN LATERAL (
                        SELECT l.category, COUNT(DISTINCT r.id)::int8 AS receipts, SUM(l.amount) AS spent
                        FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.id
                        WHERE {IN_HOUR}
                        GROUP BY l.category
                    ) s
                )"
            ),
            "old AS (
                SELECT o.place_id, b.merchant_id, o.start, o.category, o.receipts, o.spent
                FROM b JOIN place_category_rollups o
                  ON o.place_id = b.place_id AND o.grain = 'hour' AND o.start = b.start
            )"
            .to_owned(),
            "delta AS (
                SELECT COALESCE(f.place_id, o.place_id) AS place_id,
                       COALESCE(f.merchant_id, o.merchant_id) AS merchant_id, COALESCE(f.start, o.start) AS start,
                       COALESCE(f.category, o.category) AS category,
                       COALESCE(f.receipts, 0) - COALESCE(o.receipts, 0) AS receipts,
                       COALESCE(f.spent, 0) - COALESCE(o.spent, 0) AS spent
                FROM fresh f FULL JOIN old o ON o.place_id = f.place_id AND o.start = f.start AND o.category = f.category
                WHERE f.receipts IS DISTINCT FROM o.receipts OR f.spent IS DISTINCT FROM o.spent
            )"
            .to_owned(),
            "hours AS (
                INSERT INTO place_category_rollups (place_id, grain, start, category, receipts, spent, computed_at)
                SELECT place_id, 'hour', start, category, receipts, spent, now() FROM fresh
                ON CONFLICT (place_id, grain, start, category) DO UPDATE SET receipts = excluded.receipts,
                   spent = excluded.spent, computed_at = excluded.computed_at
            )"
            .to_owned(),
            "emptied AS (
                DELETE FROM place_category_rollups c USING old o
                WHERE c.place_id = o.place_id AND c.grain = 'hour' AND c.start = o.start AND c.category = o.category
                  AND NOT EXISTS (SELECT 1 FROM fresh f
                                  WHERE f.place_id = o.place_id AND f.start = o.start AND f.category = o.category)
            )"
            .to_owned(),
        ],
        &CATEGORIES,
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

#[derive(Debug, QueryableByName)]
struct Shrunk {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    shrunk: i64,
}

/// Recomputes the given hour buckets of places from their receipts and adds each bucket's difference to
/// every rollup above it (its day and month, its merchant's hour, day and month, and the totals'); returns
/// how many hour buckets were recomputed. A second run finds no difference and changes no figure.
pub fn recompute(conn: &mut PgConnection, buckets: &[HourBucket]) -> QueryResult<usize> {
    if buckets.is_empty() {
        return Ok(0);
    }
    let places: Vec<String> = buckets.iter().map(|bucket| bucket.place_id.clone()).collect();
    let hours: Vec<DateTime<Utc>> = buckets.iter().map(|bucket| bucket.hour).collect();
    conn.transaction(|conn| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({RECOMPUTE_LOCK})")).execute(conn)?;
        let run = |conn: &mut PgConnection, statement: String| {
            diesel::sql_query(statement)
                .bind::<Array<Text>, _>(&places)
                .bind::<Array<Timestamptz>, _>(&hours)
                .get_result::<Shrunk>(conn)
        };
        run(conn, recompute_totals_sql())?;
        if run(conn, recompute_categories_sql())?.shrunk > 0 {
            diesel::sql_query(prune_categories_sql())
                .bind::<Array<Text>, _>(&places)
                .bind::<Array<Timestamptz>, _>(&hours)
                .execute(conn)?;
        }
        Ok(buckets.len())
    })
}
