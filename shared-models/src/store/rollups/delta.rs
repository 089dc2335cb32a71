//! Adding to the rollups: what some receipts add to their place hours (or what a recompute found missing or
//! extra), carried up to every tier. Additions commute, so the consumer's batches and the worker's
//! recomputes can add to the same rows at the same time and every row still ends up equal to the sum of the
//! receipts below it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Numeric, Text, Timestamptz};
use rust_decimal::Decimal;

use super::{key_columns, Level};
use crate::domain::jobs::HourBucket;
use crate::domain::receipt::Receipt;
use crate::store::statement::statement;

/// What is added to one place's hour: receipts and their amounts.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct HourFigures {
    #[diesel(sql_type = Text)]
    pub place_id: String,
    #[diesel(sql_type = Timestamptz)]
    pub hour: DateTime<Utc>,
    #[diesel(sql_type = Int8)]
    pub purchases: i64,
    #[diesel(sql_type = Numeric)]
    pub total_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    pub vat_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    pub tips_amount: Decimal,
}

/// What is added to one category of one place's hour: receipts holding it, and their spend on it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct CategoryFigures {
    #[diesel(sql_type = Text)]
    pub place_id: String,
    #[diesel(sql_type = Timestamptz)]
    pub hour: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = Int8)]
    pub receipts: i64,
    #[diesel(sql_type = Numeric)]
    pub spent: Decimal,
}

/// Additions to place hours, to be carried up to every tier by [`add`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub hours: Vec<HourFigures>,
    pub categories: Vec<CategoryFigures>,
}

impl Delta {
    /// What these receipts (each counted once) add to their place hours.
    pub fn of_receipts<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> Delta {
        let mut hours: BTreeMap<HourBucket, HourFigures> = BTreeMap::new();
        let mut categories: BTreeMap<(HourBucket, String), CategoryFigures> = BTreeMap::new();
        for receipt in receipts {
            let bucket = HourBucket::containing(&receipt.place_id, receipt.timestamp);
            let hour = hours.entry(bucket.clone()).or_insert_with(|| HourFigures {
                place_id: bucket.place_id.clone(),
                hour: bucket.hour,
                purchases: 0,
                total_amount: Decimal::ZERO,
                vat_amount: Decimal::ZERO,
                tips_amount: Decimal::ZERO,
            });
            hour.purchases += 1;
            hour.total_amount += receipt.total_amount;
            hour.vat_amount += receipt.vat_amount;
            hour.tips_amount += receipt.tips_amount;
            let mut held = BTreeSet::new();
            for item in &receipt.items {
                let category = item.category_key();
                let figures = categories
                    .entry((bucket.clone(), category.clone()))
                    .or_insert_with(|| CategoryFigures {
                        place_id: bucket.place_id.clone(),
                        hour: bucket.hour,
                        category: category.clone(),
                        receipts: 0,
                        spent: Decimal::ZERO,
                    });
                figures.spent += item.amount();
                if held.insert(category) {
                    figures.receipts += 1;
                }
            }
        }
        Delta {
            hours: hours.into_values().collect(),
            categories: categories.into_values().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty() && self.categories.is_empty()
    }
}

/// The rows of the delta joined to their place's merchant, once per grain: `d` and `g`.
const PER_GRAIN: &str = "JOIN places p ON p.place_id = d.place_id
    CROSS JOIN (VALUES ('hour'), ('day'), ('month')) AS g (grain)";

/// `d.place_id, ` / `p.merchant_id, ` / nothing: the key of a level's rows, from the delta.
fn key_of(level: Level) -> &'static str {
    match level {
        Level::Place => "d.place_id, ",
        Level::Merchant => "p.merchant_id, ",
        Level::Total => "",
    }
}

/// Positions of the grouping (and ordering) columns: the key if any, the grain, the start, then `more`.
fn positions(level: Level, more: usize) -> String {
    let count = usize::from(level.key_column().is_some()) + 2 + more;
    (1..=count).map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

fn add_totals_sql(level: Level) -> String {
    let table = level.totals_table();
    let keys = key_columns(level);
    let order = positions(level, 0);
    format!(
        "INSERT INTO {table} ({keys}grain, start, purchases, total_amount, vat_amount, tips_amount, computed_at)
         SELECT {key}g.grain, date_trunc(g.grain, d.start, 'UTC'), SUM(d.purchases)::int8, SUM(d.total_amount),
                SUM(d.vat_amount), SUM(d.tips_amount), now()
         FROM unnest($1::text[], $2::timestamptz[], $3::int8[], $4::numeric[], $5::numeric[], $6::numeric[])
             AS d (place_id, start, purchases, total_amount, vat_amount, tips_amount)
         {PER_GRAIN}
         GROUP BY {order} ORDER BY {order}
         ON CONFLICT ({keys}grain, start) DO UPDATE SET purchases = {table}.purchases + excluded.purchases,
             total_amount = {table}.total_amount + excluded.total_amount,
             vat_amount = {table}.vat_amount + excluded.vat_amount,
             tips_amount = {table}.tips_amount + excluded.tips_amount, computed_at = excluded.computed_at",
        key = key_of(level),
    )
}

fn add_categories_sql(level: Level) -> String {
    let table = level.categories_table();
    let keys = key_columns(level);
    let order = positions(level, 1);
    format!(
        "INSERT INTO {table} ({keys}grain, start, category, receipts, spent, computed_at)
         SELECT {key}g.grain, date_trunc(g.grain, d.start, 'UTC'), d.category, SUM(d.receipts)::int8, SUM(d.spent),
                now()
         FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::int8[], $5::numeric[])
             AS d (place_id, start, category, receipts, spent)
         {PER_GRAIN}
         GROUP BY {order} ORDER BY {order}
         ON CONFLICT ({keys}grain, start, category) DO UPDATE SET receipts = {table}.receipts + excluded.receipts,
             spent = {table}.spent + excluded.spent, computed_at = excluded.computed_at",
        key = key_of(level),
    )
}

/// Each level's two statements, in the order of [`Level::ALL`]; built once, so that each connection keeps
/// them prepared.
static ADD_SQL: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    Level::ALL
        .iter()
        .map(|level| (add_totals_sql(*level), add_categories_sql(*level)))
        .collect()
});

/// Adds the delta to the place hours and to every bucket above them: the places' days and months, their
/// merchants' hours, days and months, and the totals'. One statement per table, always in the same order
/// (places, merchants, total; each level's totals before its categories) and each in key order, so writers
/// that add at the same time wait for each other's rows instead of deadlocking. The rows many writers share
/// (merchants' and the totals') come last, so a writer holds them only for the end of its transaction.
pub fn add(conn: &mut PgConnection, delta: &Delta) -> QueryResult<()> {
    let hours = &delta.hours;
    let places: Vec<&str> = hours.iter().map(|row| row.place_id.as_str()).collect();
    let starts: Vec<DateTime<Utc>> = hours.iter().map(|row| row.hour).collect();
    let purchases: Vec<i64> = hours.iter().map(|row| row.purchases).collect();
    let totals: Vec<Decimal> = hours.iter().map(|row| row.total_amount).collect();
    let vat: Vec<Decimal> = hours.iter().map(|row| row.vat_amount).collect();
    let tips: Vec<Decimal> = hours.iter().map(|row| row.tips_amount).collect();
    let categories = &delta.categories;
    let category_places: Vec<&str> = categories.iter().map(|row| row.place_id.as_str()).collect();
    let category_starts: Vec<DateTime<Utc>> = categories.iter().map(|row| row.hour).collect();
    let names: Vec<&str> = categories.iter().map(|row| row.category.as_str()).collect();
    let receipts: Vec<i64> = categories.iter().map(|row| row.receipts).collect();
    let spent: Vec<Decimal> = categories.iter().map(|row| row.spent).collect();
    for (add_totals, add_categories) in ADD_SQL.iter() {
        if !hours.is_empty() {
            statement(add_totals)
                .bind::<Array<Text>, _>(&places)
                .bind::<Array<Timestamptz>, _>(&starts)
                .bind::<Array<Int8>, _>(&purchases)
                .bind::<Array<Numeric>, _>(&totals)
                .bind::<Array<Numeric>, _>(&vat)
                .bind::<Array<Numeric>, _>(&tips)
                .execute(conn)?;
        }
        if !categories.is_empty() {
            statement(add_categories)
                .bind::<Array<Text>, _>(&category_places)
                .bind::<Array<Timestamptz>, _>(&category_starts)
                .bind::<Array<Text>, _>(&names)
                .bind::<Array<Int8>, _>(&receipts)
                .bind::<Array<Numeric>, _>(&spent)
                .execute(conn)?;
        }
    }
    Ok(())
}
