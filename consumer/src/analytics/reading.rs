//! The SQL that reads a [`Plan`] from the rollup tiers: the runs of rollups of the right level, and the
//! receipts of the edges, narrowed to the scope. Analytics and the time series both read through here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, Int8, Nullable, Numeric, Text, Timestamptz};
use rust_decimal::Decimal;
use shared_models::domain::rollup::{Grain, Plan};
use shared_models::store::rollups::Level;

use super::{Figures, Period, Scope};

/// The places a query covers: `$1` a merchant (or all), `$2` one place (or all), `$3` a list of places (or
/// all). Every analytics query starts with it, so "the places in this caller's scope" is written once.
const SCOPE_SQL: &str = "scope AS (
    SELECT place_id FROM places
    WHERE ($1::text IS NULL OR merchant_id = $1)
      AND ($2::text IS NULL OR place_id = $2)
      AND ($3::text[] IS NULL OR place_id = ANY($3))
)";

/// The runs of a plan: `$4` grains, `$5` and `$6` their bounds.
const RUNS_SQL: &str =
    "runs AS (SELECT * FROM unnest($4::text[], $5::timestamptz[], $6::timestamptz[]) AS u(grain, lo, hi))";

/// The plan's two edges, `$7`-`$8` and `$9`-`$10`: each is read by a query of its own, so the planner
/// estimates each range on its own (an `OR` of the two, one of them empty, made it expect millions of rows and
/// scan every receipt line).
const EDGES: [&str; 2] = [
    "r.purchased_at >= $7 AND r.purchased_at < $8",
    "r.purchased_at >= $9 AND r.purchased_at < $10",
];

/// How a query groups its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// One set of figures for the whole scope.
    Whole,
    /// A set per place.
    PerPlace,
}

/// Which rollups a query reads, and how it groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    level: Level,
    grouping: Grouping,
}

impl Reading {
    /// The coarsest rows that answer the scope: the total for every place, a merchant's for all of its
    /// places, the places' own rows otherwise (one place, a page of places, or figures per place).
    pub(crate) fn of(scope: &Scope, grouping: Grouping) -> Reading {
        let narrowed = scope.place_id.is_some() || scope.places.is_some();
        let level = match (grouping, narrowed, &scope.merchant_id) {
            (Grouping::PerPlace, _, _) | (_, true, _) => Level::Place,
            (Grouping::Whole, false, Some(_)) => Level::Merchant,
            (Grouping::Whole, false, None) => Level::Total,
        };
        Reading { level, grouping }
    }

    /// `r.place_id` (of a rollup row or a receipt) when grouping per place, else NULL.
    fn place_key(self) -> &'static str {
        match self.grouping {
            Grouping::PerPlace => "r.place_id",
            Grouping::Whole => "NULL::text",
        }
    }

    /// The rows of `table` (of this level) in the plan's runs and the scope, as `r`: one index range scan per
    /// run (and per place at the place level), however large the table. `OFFSET 0` keeps the planner from
    /// flattening the lateral subquery into a join that scans the whole table.
    fn rows(self, table: &str) -> String {
        let (keys, key) = match self.level {
            Level::Place => ("scope s CROSS JOIN ", "x.place_id = s.place_id AND "),
            Level::Merchant => ("", "x.merchant_id = $1 AND "),
            Level::Total => ("", ""),
        };
        format!(
            "{keys}runs u CROSS JOIN LATERAL (
                SELECT * FROM {table} x WHERE {key}x.grain = u.grain AND x.start >= u.lo AND x.start < u.hi OFFSET 0
            ) r"
        )
    }

    /// Narrows the edges' receipts (`r`) to the scope; every receipt counts for the total.
    fn receipts_in_scope(self) -> &'static str {
        match self.level {
            Level::Total => "",
            Level::Place | Level::Merchant => " AND r.place_id IN (SELECT place_id FROM scope)",
        }
    }

    /// `parts(place_key, at, purchases, total_amount, vat_amount, tips_amount)`: the plan's rollup rows and
    /// edge receipts.
    pub(crate) fn totals(self) -> String {
        format!(
            "{SCOPE_SQL}, {RUNS_SQL}, parts AS (
                SELECT {key} AS place_key, r.start AS at, r.purchases, r.total_amount, r.vat_amount, r.tips_amount
                FROM {rows}
{edges}
            )",
            key = self.place_key(),
            rows = self.rows(self.level.totals_table()),
            edges = EDGES.map(|edge| format!(
                "
                UNION ALL
                SELECT {key}, r.purchased_at, 1, r.total_amount, r.vat_amount, r.tips_amount
                FROM receipts r WHERE {edge}{receipts}",
                key = self.place_key(),
                receipts = self.receipts_in_scope(),
            )).concat(),
        )
    }

    /// `parts(place_key, category, receipts, spent)`, narrowed to the category `$11` when it is set.
    fn categories(self) -> String {
        format!(
            "{SCOPE_SQL}, {RUNS_SQL}, parts AS (
                SELECT {key} AS place_key, r.category, r.receipts, r.spent
                FROM {rows}
                WHERE ($11::text IS NULL OR r.category = $11)
{edges}
            )",
            key = self.place_key(),
            rows = self.rows(self.level.categories_table()),
            edges = EDGES
                .map(|edge| format!(
                    "
                UNION ALL
                SELECT {key}, l.category, COUNT(DISTINCT r.id), SUM(l.amount)
                FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.id
                WHERE {edge}{receipts} AND ($11::text IS NULL OR l.category = $11)
                GROUP BY 1, 2",
                    key = self.place_key(),
                    receipts = self.receipts_in_scope(),
                ))
                .concat(),
        )
    }
}

/// A query over a [`Reading`]'s parts, with the scope (`$1`-`$3`) and the plan (`$4`-`$10`) bound.
pub(crate) fn bound(
    sql: String,
    scope: &Scope,
    plan: &Plan,
) -> BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
    let grains: Vec<String> = plan
        .runs
        .iter()
        .map(|run| run.grain.as_str().to_owned())
        .collect();
    let starts: Vec<DateTime<Utc>> = plan.runs.iter().map(|run| run.from).collect();
    let ends: Vec<DateTime<Utc>> = plan.runs.iter().map(|run| run.to).collect();
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<Nullable<Text>, _>(scope.merchant_id.clone())
        .bind::<Nullable<Text>, _>(scope.place_id.clone())
        .bind::<Nullable<Array<Text>>, _>(scope.places.clone())
        .bind::<Array<Text>, _>(grains)
        .bind::<Array<Timestamptz>, _>(starts)
        .bind::<Array<Timestamptz>, _>(ends)
        .bind::<Timestamptz, _>(plan.edges[0].0)
        .bind::<Timestamptz, _>(plan.edges[0].1)
        .bind::<Timestamptz, _>(plan.edges[1].0)
        .bind::<Timestamptz, _>(plan.edges[1].1)
}

#[derive(Debug, QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = Nullable<Text>)]
    place_key: Option<String>,
    #[diesel(sql_type = Int8)]
    purchases: i64,
    #[diesel(sql_type = Numeric)]
    total_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    vat_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    tips_amount: Decimal,
}

#[derive(Debug, QueryableByName)]
struct CategoryRow {
    #[diesel(sql_type = Nullable<Text>)]
    place_key: Option<String>,
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = Int8)]
    receipts: i64,
    #[diesel(sql_type = Numeric)]
    spent: Decimal,
}

/// The figures of the scope over the period, as one set (key `None`) or one per place.
pub(super) fn grouped(
    conn: &mut PgConnection,
    scope: &Scope,
    period: &Period,
    grouping: Grouping,
) -> QueryResult<BTreeMap<Option<String>, Figures>> {
    let reading = Reading::of(scope, grouping);
    let plan = period.plan(Grain::Month);
    let totals: Vec<TotalsRow> = bound(
        format!(
            "WITH {} SELECT place_key, COALESCE(SUM(purchases), 0)::int8 AS purchases,
                    COALESCE(SUM(total_amount), 0) AS total_amount, COALESCE(SUM(vat_amount), 0) AS vat_amount,
                    COALESCE(SUM(tips_amount), 0) AS tips_amount
             FROM parts GROUP BY 1",
            reading.totals()
        ),
        scope,
        &plan,
    )
    .load(conn)?;
    let categories: Vec<CategoryRow> = bound(
        format!(
            "WITH {} SELECT place_key, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
             FROM parts GROUP BY 1, 2",
            reading.categories()
        ),
        scope,
        &plan,
    )
    .bind::<Nullable<Text>, _>(scope.category.clone())
    .load(conn)?;
    let mut result: BTreeMap<Option<String>, Figures> = BTreeMap::new();
    for row in totals {
        let figures = result.entry(row.place_key).or_default();
        figures.purchases = row.purchases;
        figures.total_amount = row.total_amount;
        figures.vat_amount = row.vat_amount;
        figures.tips_amount = row.tips_amount;
    }
    for row in categories {
        result
            .entry(row.place_key)
            .or_default()
            .categories
            .insert(row.category, (row.receipts, row.spent));
    }
    Ok(result)
}

#[derive(Debug, QueryableByName)]
struct ComputedRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    computed_at: Option<DateTime<Utc>>,
}

/// The latest `computed_at` of the scope's month rows.
pub(super) fn computed_at(conn: &mut PgConnection, scope: &Scope) -> QueryResult<Option<DateTime<Utc>>> {
    let level = Reading::of(scope, Grouping::Whole).level;
    let in_scope = match level {
        Level::Place => "r.place_id IN (SELECT place_id FROM scope) AND ",
        Level::Merchant => "r.merchant_id = $1 AND ",
        Level::Total => "",
    };
    let row: ComputedRow = diesel::sql_query(format!(
        "WITH {SCOPE_SQL} SELECT max(r.computed_at) AS computed_at FROM {} r WHERE {in_scope}r.grain = 'month'",
        level.totals_table(),
    ))
    .bind::<Nullable<Text>, _>(scope.merchant_id.clone())
    .bind::<Nullable<Text>, _>(scope.place_id.clone())
    .bind::<Nullable<Array<Text>>, _>(scope.places.clone())
    .get_result(conn)?;
    Ok(row.computed_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(merchant: Option<&str>, place: Option<&str>) -> Scope {
        Scope {
            merchant_id: merchant.map(str::to_owned),
            place_id: place.map(str::to_owned),
            ..Scope::default()
        }
    }

    #[test]
    fn a_summary_reads_the_coarsest_level_that_answers_its_scope() {
        let level = |scope: &Scope, grouping| Reading::of(scope, grouping).level;
        assert_eq!(level(&scope(None, None), Grouping::Whole), Level::Total);
        assert_eq!(level(&scope(Some("m"), None), Grouping::Whole), Level::Merchant);
        assert_eq!(level(&scope(Some("m"), Some("p")), Grouping::Whole), Level::Place);
        assert_eq!(level(&scope(None, Some("p")), Grouping::Whole), Level::Place);
        assert_eq!(level(&scope(None, None), Grouping::PerPlace), Level::Place);
    }
}
