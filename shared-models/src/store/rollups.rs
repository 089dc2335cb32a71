//! The rollup tables: exact sums per UTC hour, day and month ([`Grain`]) at three levels ([`Level`]): a
//! place, a merchant's places, and every place; each with its figures per category beside it. This module
//! owns every write to them.
//!
//! A place's hours are summed from its receipts; its days from its hours and its months from its days; a
//! merchant's and the total hours from the places' hours, and their days and months likewise. A recompute
//! replaces the rows of the buckets it is given, and of every day, month, merchant and total bucket above
//! them, with sums computed afresh, so running it twice gives the same figures. Recomputes take one lock, so
//! two of them never sum each other's half-written rows.

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

/// The end of the bucket of `grain` starting at `start` (an SQL expression, in UTC).
fn bucket_end(grain: Grain, start: &str) -> String {
    match grain {
        Grain::Hour => format!("{start} + interval '1 hour'"),
        Grain::Day => format!("{start} + interval '24 hours'"),
        Grain::Month => format!("(({start} AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'"),
    }
}

/// The grain a level's bucket of `grain` is summed from, within the same level.
fn finer(grain: Grain) -> Option<Grain> {
    match grain {
        Grain::Hour => None,
        Grain::Day => Some(Grain::Hour),
        Grain::Month => Some(Grain::Day),
    }
}

/// `t.key, ` when the level has a key.
fn key_select(level: Level) -> &'static str {
    if level.key_column().is_some() {
        "t.key, "
    } else {
        ""
    }
}

/// `place_id, ` (the level's key column and a comma) when it has one.
fn key_columns(level: Level) -> String {
    level
        .key_column()
        .map(|column| format!("{column}, "))
        .unwrap_or_default()
}

/// The buckets of `level` and `grain` above the given hour buckets (`b`), as `t(key, start)` or `t(start)`.
fn touched(level: Level, grain: Grain) -> String {
    let start = format!("date_trunc('{}', b.start, 'UTC') AS start", grain.as_str());
    match level {
        Level::Place => format!("SELECT DISTINCT b.place_id AS key, {start} FROM b"),
        Level::Merchant => format!(
            "SELECT DISTINCT p.merchant_id AS key, {start} FROM b JOIN places p ON p.place_id = b.place_id"
        ),
        Level::Total => format!("SELECT DISTINCT {start} FROM b"),
    }
}

/// Where the rows of `t` are summed from, as joins onto `t` bringing `r` (and `l` for receipt lines).
fn source(level: Level, grain: Grain, categories: bool) -> String {
    let table = if categories {
        level.categories_table()
    } else {
        level.totals_table()
    };
    let place_table = if categories {
        "place_category_rollups"
    } else {
        "place_rollups"
    };
    let join = if categories { "JOIN" } else { "LEFT JOIN" };
    match (level, finer(grain)) {
        (Level::Place, None) => {
            let lines = if categories {
                " JOIN receipt_lines l ON l.receipt_id = r.id"
            } else {
                ""
            };
            format!(
                "t {join} receipts r ON r.place_id = t.key AND r.purchased_at >= t.start AND r.purchased_at < {}{lines}",
                bucket_end(Grain::Hour, "t.start")
            )
        }
        (Level::Merchant, None) => format!(
            "t {join} ({place_table} r JOIN places p ON p.place_id = r.place_id)
               ON p.merchant_id = t.key AND r.grain = 'hour' AND r.start = t.start"
        ),
        (Level::Total, None) => {
            format!("t {join} {place_table} r ON r.grain = 'hour' AND r.start = t.start")
        }
        (_, Some(finer)) => {
            let key = level
                .key_column()
                .map(|column| format!("r.{column} = t.key AND "))
                .unwrap_or_default();
            format!(
                "t {join} {table} r ON {key}r.grain = '{}' AND r.start >= t.start AND r.start < {}",
                finer.as_str(),
                bucket_end(grain, "t.start")
            )
        }
    }
}

/// The statements that replace the rows of `level` and `grain` above the hour buckets bound as `$1`
/// (places) and `$2` (hours).
fn recompute_statements(level: Level, grain: Grain) -> [String; 3] {
    let with = format!(
        "WITH b AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS b(place_id, start)), t AS ({})",
        touched(level, grain)
    );
    let from_receipts = level == Level::Place && grain == Grain::Hour;
    let totals = if from_receipts {
        "COUNT(r.id), COALESCE(SUM(r.total_amount), 0), COALESCE(SUM(r.vat_amount), 0), COALESCE(SUM(r.tips_amount), 0)"
    } else {
        "COALESCE(SUM(r.purchases), 0)::int8, COALESCE(SUM(r.total_amount), 0), COALESCE(SUM(r.vat_amount), 0), COALESCE(SUM(r.tips_amount), 0)"
    };
    let categories = if from_receipts {
        "l.category, COUNT(DISTINCT r.id), SUM(l.amount)"
    } else {
        "r.category, SUM(r.receipts)::int8, SUM(r.spent)"
    };
    let category = if from_receipts { "l.category" } else { "r.category" };
    let (key_columns, key_select) = (key_columns(level), key_select(level));
    let key_match = level
        .key_column()
        .map(|column| format!("c.{column} = t.key AND "))
        .unwrap_or_default();
    let grain_name = grain.as_str();
    [
        format!(
            "{with}
             INSERT INTO {table} ({key_columns}grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
             SELECT {key_select}'{grain_name}', t.start, {totals}, now()
             FROM {source}
             GROUP BY {key_select}t.start
             ON CONFLICT ({key_columns}grain, start) DO UPDATE SET purchases = excluded.purchases,
                total_amount = excluded.total_amount, vat_amount = excluded.vat_amount,
                tips_amount = excluded.tips_amount, computed_at = excluded.computed_at",
            table = level.totals_table(),
            source = source(level, grain, false),
        ),
        format!(
            "{with}
             DELETE FROM {table} c USING t WHERE {key_match}c.grain = '{grain_name}' AND c.start = t.start",
            table = level.categories_table(),
        ),
        format!(
            "{with}
             INSERT INTO {table} ({key_columns}grain, start, category, receipts, spent, computed_at)
             SELECT {key_select}'{grain_name}', t.start, {categories}, now()
             FROM {source}
             GROUP BY {key_select}t.start, {category}",
            table = level.categories_table(),
            source = source(level, grain, true),
        ),
    ]
}

/// Replaces the rollups of the given hour buckets and of every bucket above them (their days and months,
/// their merchants' and the totals); returns how many hour buckets were recomputed.
pub fn recompute(conn: &mut PgConnection, buckets: &[HourBucket]) -> QueryResult<usize> {
    if buckets.is_empty() {
        return Ok(0);
    }
    let places: Vec<String> = buckets.iter().map(|bucket| bucket.place_id.clone()).collect();
    let hours: Vec<DateTime<Utc>> = buckets.iter().map(|bucket| bucket.hour).collect();
    conn.transaction(|conn| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({RECOMPUTE_LOCK})")).execute(conn)?;
        for level in Level::ALL {
            for grain in Grain::ALL {
                for statement in recompute_statements(level, grain) {
                    diesel::sql_query(statement)
                        .bind::<Array<Text>, _>(&places)
                        .bind::<Array<Timestamptz>, _>(&hours)
                        .execute(conn)?;
                }
            }
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
