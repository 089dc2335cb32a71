//! Rebuilding every tier from the receipts, set-based.

use diesel::prelude::*;

use super::{key_columns, Level, RECOMPUTE_LOCK};
use crate::domain::rollup::Grain;

/// The grain a level's bucket of `grain` is built from, within the same level, in a full rebuild.
fn finer(grain: Grain) -> Option<Grain> {
    match grain {
        Grain::Hour => None,
        Grain::Day => Some(Grain::Hour),
        Grain::Month => Some(Grain::Day),
    }
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
        // TRUNCATE holds the tables against every writer until this commits: a consumer batch whose receipts
        // the rebuild does not see adds them only after it, and one that added before is seen whole.
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
