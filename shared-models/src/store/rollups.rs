//! The rollup tables: exact sums per UTC hour, day and month ([`Grain`]) at three levels ([`Level`]): a
//! place, a merchant's places, and every place; each with its figures per category beside it. This module
//! owns every write to them.
//!
//! Every row equals the sum of the receipts below it. A recompute sums a place's hour afresh from its
//! receipts and adds the difference from the hour's previous figures to the nine buckets above it (the
//! place's day and month, its merchant's hour, day and month, and the totals'), so its cost does not grow
//! with the data, a late receipt for last year fixes its hour, day and month, and a second run finds no
//! difference. Recomputes take one lock, so no difference is ever taken against a half-written hour. A full
//! rebuild sums everything from the receipts, set-based.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text, Timestamptz};

use crate::domain::jobs::HourBucket;
use crate::domain::rollup::Grain;

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

/// The grain a level's bucket of `grain` is built from, within the same level, in a full rebuild.
fn finer(grain: Grain) -> Option<Grain> {
    match grain {
        Grain::Hour => None,
        Grain::Day => Some(Grain::Hour),
        Grain::Month => Some(Grain::Day),
    }
}

/// `place_id, ` (the level's key column and a comma) when it has one.
fn key_columns(level: Level) -> String {
    level
        .key_column()
        .map(|column| format!("{column}, "))
        .unwrap_or_default()
}

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

/// The figures a rollup table sums, and the column (if any) beside its key, grain and start in its primary
/// key.
struct Measures {
    columns: &'static [&'static str],
    by: Option<&'static str>,
}

const TOTALS: Measures = Measures {
    columns: &["purchases", "total_amount", "vat_amount", "tips_amount"],
    by: None,
};

const CATEGORIES: Measures = Measures {
    columns: &["receipts", "spent"],
    by: Some("category"),
};

/// A CTE named `name` that adds the `delta` rows (summed into buckets of `level` and `grain`) to `table`,
/// creating the rows that do not exist yet.
fn add_delta(name: &str, level: Level, grain: Grain, table: &str, measures: &Measures) -> String {
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
        let table = if measures.by.is_some() {
            level.categories_table()
        } else {
            level.totals_table()
        };
        ctes.push(add_delta(
            &format!("above_{index}"),
            level,
            grain,
            table,
            measures,
        ));
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

/// The statements that build every rollup of `level` and `grain` from scratch (after the tables were
/// emptied): set-based, for a full rebuild.
pub fn rebuild_statements(level: Level, grain: Grain) -> [String; 2] {
    let key_columns = key_columns(level);
    let grain_name = grain.as_str();
    let (totals_from, categories_from) = match (level, finer(grain)) {
        (Level::Place, None) => (
            "SELECT place_id AS key, date_trunc('hour', purchased_at, 'UTC') AS start, COUNT(*)::int8 AS purchases,
                    SUM(total_amount) AS total_amount, SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
             FROM receipts GROUP BY 1, 2"
                .to_owned(),
            "SELECT r.place_id AS key, date_trunc('hour', r.purchased_at, 'UTC') AS start, l.category,
                    COUNT(DISTINCT r.id)::int8 AS receipts, SUM(l.amount) AS spent
             FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY 1, 2, 3"
                .to_owned(),
        ),
        (Level::Merchant, None) => (
            "SELECT p.merchant_id AS key, r.start, SUM(r.purchases)::int8 AS purchases,
                    SUM(r.total_amount) AS total_amount, SUM(r.vat_amount) AS vat_amount, SUM(r.tips_amount) AS tips_amount
             FROM place_rollups r JOIN places p ON p.place_id = r.place_id WHERE r.grain = 'hour' GROUP BY 1, 2"
                .to_owned(),
            "SELECT p.merchant_id AS key, r.start, r.category, SUM(r.receipts)::int8 AS receipts, SUM(r.spent) AS spent
             FROM place_category_rollups r JOIN places p ON p.place_id = r.place_id WHERE r.grain = 'hour'
             GROUP BY 1, 2, 3"
                .to_owned(),
        ),
        (Level::Total, None) => (
            "SELECT start, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                    SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
             FROM place_rollups WHERE grain = 'hour' GROUP BY 1"
                .to_owned(),
            "SELECT start, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
             FROM place_category_rollups WHERE grain = 'hour' GROUP BY 1, 2"
                .to_owned(),
        ),
        (_, Some(finer)) => {
            let key = level
                .key_column()
                .map(|column| format!("{column} AS key, "))
                .unwrap_or_default();
            let group = if level.key_column().is_some() { "1, 2" } else { "1" };
            let truncated = format!("date_trunc('{grain_name}', start, 'UTC') AS start");
            (
                format!(
                    "SELECT {key}{truncated}, SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                            SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
                     FROM {} WHERE grain = '{}' GROUP BY {group}",
                    level.totals_table(),
                    finer.as_str()
                ),
                format!(
                    "SELECT {key}{truncated}, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
                     FROM {} WHERE grain = '{}' GROUP BY {group}, category",
                    level.categories_table(),
                    finer.as_str()
                ),
            )
        }
    };
    let key = if level.key_column().is_some() {
        "s.key, "
    } else {
        ""
    };
    [
        format!(
            "INSERT INTO {} ({key_columns}grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
             SELECT {key}'{grain_name}', s.start, s.purchases, s.total_amount, s.vat_amount, s.tips_amount, now()
             FROM ({totals_from}) s",
            level.totals_table()
        ),
        format!(
            "INSERT INTO {} ({key_columns}grain, start, category, receipts, spent, computed_at)
             SELECT {key}'{grain_name}', s.start, s.category, s.receipts, s.spent, now()
             FROM ({categories_from}) s",
            level.categories_table()
        ),
    ]
}

#[derive(Debug, QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    count: i64,
}

/// Builds every rollup again from the receipts, set-based (an admin's rebuild of everything, a bulk load);
/// returns how many hour buckets of places it built.
pub fn rebuild_all(conn: &mut PgConnection) -> QueryResult<usize> {
    conn.transaction(|conn| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({RECOMPUTE_LOCK})")).execute(conn)?;
        let tables: Vec<&str> = Level::ALL
            .iter()
            .flat_map(|level| [level.totals_table(), level.categories_table()])
            .collect();
        diesel::sql_query(format!("TRUNCATE {}", tables.join(", "))).execute(conn)?;
        for level in Level::ALL {
            for grain in Grain::ALL {
                for statement in rebuild_statements(level, grain) {
                    diesel::sql_query(statement).execute(conn)?;
                }
            }
        }
        let hours: Count =
            diesel::sql_query("SELECT count(*) AS count FROM place_rollups WHERE grain = 'hour'")
                .get_result(conn)?;
        Ok(usize::try_from(hours.count).unwrap_or_default())
    })
}

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
