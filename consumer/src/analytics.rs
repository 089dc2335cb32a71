//! Analytics over any period, exact for arbitrary instants: whole hours come from the hourly rollups, and
//! the partial hours at the period's two edges are scanned exactly from the stored receipts. The cost
//! depends on the number of hours and places, not on the number of receipts.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Nullable, Numeric, Text, Timestamptz};
use paperclip::actix::Apiv2Schema;
use rust_decimal::Decimal;
use serde::Serialize;
use shared_models::domain::money::{mean, Money};
use shared_models::domain::time::start_of_hour;

/// A half-open period `[from, to)`; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Apiv2Schema)]
pub struct Period {
    /// Inclusive; null for no lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive; null for no upper bound.
    pub to: Option<DateTime<Utc>>,
}

/// How a period is answered: whole hours from rollups, two exact edge ranges from receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) whole: (DateTime<Utc>, DateTime<Utc>),
    pub(crate) edges: [(DateTime<Utc>, DateTime<Utc>); 2],
}

fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn ceil_hour(instant: DateTime<Utc>) -> DateTime<Utc> {
    let floor = start_of_hour(instant);
    if floor == instant {
        floor
    } else {
        floor + TimeDelta::hours(1)
    }
}

impl Period {
    pub(crate) fn plan(&self) -> Plan {
        let low = self.from.unwrap_or_else(earliest);
        let high = self.to.unwrap_or_else(latest);
        let (first_whole, end_whole) = (ceil_hour(low), start_of_hour(high));
        if first_whole >= end_whole {
            Plan {
                whole: (low, low),
                edges: [(low, high), (high, high)],
            }
        } else {
            Plan {
                whole: (first_whole, end_whole),
                edges: [(low, first_whole), (end_whole, high)],
            }
        }
    }
}

/// Which places and categories a query covers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub merchant_id: Option<String>,
    pub place_id: Option<String>,
    pub category: Option<String>,
    /// Limit to these places (a page of results); `None` for every place in scope.
    pub places: Option<Vec<String>>,
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

/// The places a query covers: `$1` a merchant (or all), `$2` one place (or all), `$3` a list of places (or
/// all). Every analytics query starts with it, so "the places in this caller's scope" is written once.
pub(crate) const SCOPE_SQL: &str = "scope AS (
    SELECT place_id FROM places
    WHERE ($1::text IS NULL OR merchant_id = $1)
      AND ($2::text IS NULL OR place_id = $2)
      AND ($3::text[] IS NULL OR place_id = ANY($3))
)";

/// Receipts, totals, VAT and tips: whole hours ($4-$5) from the rollups, the edges ($6-$9) from the receipts.
/// `{key}` is `place_id` (per place) or NULL (the whole scope).
const TOTALS_SQL: &str = "parts AS (
    SELECT place_id, purchases, total_amount, vat_amount, tips_amount FROM place_hour_rollups
    WHERE hour >= $4 AND hour < $5 AND place_id IN (SELECT place_id FROM scope)
    UNION ALL
    SELECT place_id, 1, total_amount, vat_amount, tips_amount FROM receipts
    WHERE ((purchased_at >= $6 AND purchased_at < $7) OR (purchased_at >= $8 AND purchased_at < $9))
      AND place_id IN (SELECT place_id FROM scope)
)
SELECT {key} AS place_key,
       COALESCE(SUM(purchases), 0)::int8 AS purchases,
       COALESCE(SUM(total_amount), 0) AS total_amount,
       COALESCE(SUM(vat_amount), 0) AS vat_amount,
       COALESCE(SUM(tips_amount), 0) AS tips_amount
FROM parts GROUP BY 1";

/// Per category: the receipts holding it and their spend, with the same parts, narrowed to one category by
/// $10 when it is set.
const CATEGORIES_SQL: &str = "parts AS (
    SELECT place_id, category, receipts, spent FROM category_hour_rollups
    WHERE hour >= $4 AND hour < $5 AND place_id IN (SELECT place_id FROM scope)
      AND ($10::text IS NULL OR category = $10)
    UNION ALL
    SELECT r.place_id, l.category, COUNT(DISTINCT r.id), SUM(l.amount)
    FROM receipts r JOIN receipt_lines l ON l.receipt_id = r.id
    WHERE ((r.purchased_at >= $6 AND r.purchased_at < $7) OR (r.purchased_at >= $8 AND r.purchased_at < $9))
      AND r.place_id IN (SELECT place_id FROM scope)
      AND ($10::text IS NULL OR l.category = $10)
    GROUP BY r.place_id, l.category
)
SELECT {key} AS place_key, category, SUM(receipts)::int8 AS receipts, SUM(spent) AS spent
FROM parts GROUP BY 1, 2";

/// Exact sums of one place (or of everything in scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub purchases: i64,
    pub total_amount: Decimal,
    pub vat_amount: Decimal,
    pub tips_amount: Decimal,
    /// category -> (receipts with the category, sum of its line amounts)
    pub categories: BTreeMap<String, (i64, Decimal)>,
}

/// Sums of the receipts' `vat_amount` and `tips_amount`.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct Taxes {
    pub total_vat: Money,
    pub total_tips: Money,
}

/// One category's figures.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct CategoryFigures {
    /// Sum of the period's line amounts in the category.
    pub total_spent: Money,
    /// `total_spent` over the receipts with at least one line in the category.
    pub average_receipt: Money,
}

/// The analytics of a set of receipts (docs/api.md), without the place fields (they are added for per-place objects).
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct AnalyticsBody {
    /// Receipts in the period (by purchase time).
    pub total_purchases: i64,
    /// Sum of `total_amount`; money is a JSON number rounded to cents, half away from zero.
    pub total_amount: Money,
    /// `total_amount` over `total_purchases`; 0 for an empty period.
    pub average_receipt: Money,
    pub taxes_amount: Taxes,
    /// By category, trimmed and lower-cased.
    pub category_analytics: BTreeMap<String, CategoryFigures>,
}

impl Figures {
    pub fn to_body(&self) -> AnalyticsBody {
        AnalyticsBody {
            total_purchases: self.purchases,
            total_amount: Money::from_exact(self.total_amount),
            average_receipt: mean(self.total_amount, self.purchases),
            taxes_amount: Taxes {
                total_vat: Money::from_exact(self.vat_amount),
                total_tips: Money::from_exact(self.tips_amount),
            },
            category_analytics: self
                .categories
                .iter()
                .map(|(name, (receipts, spent))| {
                    (
                        name.clone(),
                        CategoryFigures {
                            total_spent: Money::from_exact(*spent),
                            average_receipt: mean(*spent, *receipts),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// How a query groups its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// One set of figures for the whole scope.
    Whole,
    /// A set per place.
    PerPlace,
}

impl Grouping {
    fn key(self) -> &'static str {
        match self {
            Grouping::Whole => "NULL::text",
            Grouping::PerPlace => "place_id",
        }
    }
}

/// The figures of the whole scope over the period.
pub fn summary(conn: &mut PgConnection, scope: &Scope, period: &Period) -> QueryResult<Figures> {
    Ok(grouped(conn, scope, period, Grouping::Whole)?
        .remove(&None)
        .unwrap_or_default())
}

/// The figures of each place in scope over the period (places without purchases are absent).
pub fn per_place(
    conn: &mut PgConnection,
    scope: &Scope,
    period: &Period,
) -> QueryResult<BTreeMap<String, Figures>> {
    Ok(grouped(conn, scope, period, Grouping::PerPlace)?
        .into_iter()
        .filter_map(|(place, figures)| Some((place?, figures)))
        .collect())
}

fn grouped(
    conn: &mut PgConnection,
    scope: &Scope,
    period: &Period,
    grouping: Grouping,
) -> QueryResult<BTreeMap<Option<String>, Figures>> {
    let plan = period.plan();
    macro_rules! bound {
        ($sql:expr) => {
            diesel::sql_query(format!(
                "WITH {SCOPE_SQL}, {}",
                $sql.replace("{key}", grouping.key())
            ))
            .bind::<Nullable<Text>, _>(scope.merchant_id.clone())
            .bind::<Nullable<Text>, _>(scope.place_id.clone())
            .bind::<Nullable<Array<Text>>, _>(scope.places.clone())
            .bind::<Timestamptz, _>(plan.whole.0)
            .bind::<Timestamptz, _>(plan.whole.1)
            .bind::<Timestamptz, _>(plan.edges[0].0)
            .bind::<Timestamptz, _>(plan.edges[0].1)
            .bind::<Timestamptz, _>(plan.edges[1].0)
            .bind::<Timestamptz, _>(plan.edges[1].1)
        };
    }
    let totals: Vec<TotalsRow> = bound!(TOTALS_SQL).load(conn)?;
    let categories: Vec<CategoryRow> = bound!(CATEGORIES_SQL)
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

/// When the rollups in scope were last computed, if any were.
pub fn computed_at(conn: &mut PgConnection, scope: &Scope) -> QueryResult<Option<DateTime<Utc>>> {
    use shared_models::store::schema::{place_hour_rollups, places};
    let mut query = place_hour_rollups::table
        .inner_join(places::table.on(places::place_id.eq(place_hour_rollups::place_id)))
        .select(diesel::dsl::max(place_hour_rollups::computed_at))
        .into_boxed();
    if let Some(merchant) = &scope.merchant_id {
        query = query.filter(places::merchant_id.eq(merchant.clone()));
    }
    if let Some(place) = &scope.place_id {
        query = query.filter(places::place_id.eq(place.clone()));
    }
    query.first(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::from_str(text).expect("time")
    }

    #[test]
    fn a_period_with_ragged_edges_uses_whole_hours_between_them() {
        let plan = Period {
            from: Some(at("2024-01-01T10:15:00Z")),
            to: Some(at("2024-01-01T13:30:00Z")),
        }
        .plan();
        assert_eq!(
            plan.whole,
            (at("2024-01-01T11:00:00Z"), at("2024-01-01T13:00:00Z"))
        );
        assert_eq!(
            plan.edges[0],
            (at("2024-01-01T10:15:00Z"), at("2024-01-01T11:00:00Z"))
        );
        assert_eq!(
            plan.edges[1],
            (at("2024-01-01T13:00:00Z"), at("2024-01-01T13:30:00Z"))
        );
    }

    #[test]
    fn a_period_inside_one_hour_is_scanned_exactly() {
        let plan = Period {
            from: Some(at("2024-01-01T10:15:00Z")),
            to: Some(at("2024-01-01T10:45:00Z")),
        }
        .plan();
        assert_eq!(plan.whole.0, plan.whole.1);
        assert_eq!(
            plan.edges[0],
            (at("2024-01-01T10:15:00Z"), at("2024-01-01T10:45:00Z"))
        );
    }

    #[test]
    fn all_time_needs_no_scan() {
        let plan = Period { from: None, to: None }.plan();
        assert_eq!(plan.edges[0].0, plan.edges[0].1);
        assert_eq!(plan.edges[1].0, plan.edges[1].1);
    }
}
