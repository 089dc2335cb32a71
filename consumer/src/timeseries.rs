//! Purchases over time: per hour or per day, exact for any period. Whole days and hours come from the rollup
//! tiers of the scope, the partial hours at the period's edges from the receipts (as for the other
//! analytics), and every bucket of the period is answered, empty ones as zeros.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int8, Numeric, Text, Timestamptz};
use paperclip::actix::Apiv2Schema;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared_models::domain::money::{mean, Money};
use shared_models::domain::rollup::{Grain, Plan};
use shared_models::domain::time::earliest_period_start;

use crate::analytics::{bound, Grouping, Period, Reading, Scope};

/// The length of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Apiv2Schema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub const ALL: [&'static str; 2] = ["hour", "day"];

    fn length(self) -> TimeDelta {
        match self {
            Bucket::Hour => TimeDelta::hours(1),
            Bucket::Day => TimeDelta::days(1),
        }
    }

    /// The rollups a series of these buckets may read: none coarser than the bucket.
    fn grain(self) -> Grain {
        match self {
            Bucket::Hour => Grain::Hour,
            Bucket::Day => Grain::Day,
        }
    }

    /// Its name, which is also PostgreSQL's `date_trunc` unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    /// The start of the bucket holding `instant` (UTC).
    pub fn start(self, instant: DateTime<Utc>) -> DateTime<Utc> {
        instant.duration_trunc(self.length()).unwrap_or(instant)
    }

    /// The period a series covers when `from` or `to` is left out: up to now, and back 48 hours (hours) or
    /// 30 days (days).
    pub fn default_period(self, period: Period, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let span = match self {
            Bucket::Hour => TimeDelta::hours(48),
            Bucket::Day => TimeDelta::days(30),
        };
        match (period.from, period.to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from.max(now)),
            (None, Some(to)) => ((to - span).max(earliest_period_start()), to),
            (None, None) => (now - span, now),
        }
    }

    /// How many buckets `[from, to)` touches.
    pub fn count(self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let first = self.start(from);
        let last = self.start(to - TimeDelta::microseconds(1));
        (last - first).num_seconds() / self.length().num_seconds() + 1
    }
}

/// One bucket's figures.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
pub struct BucketFigures {
    /// Start of the bucket (UTC); the first and last buckets count only the part inside the period.
    pub start: DateTime<Utc>,
    pub total_purchases: i64,
    pub total_amount: Money,
    pub total_vat: Money,
    pub total_tips: Money,
    /// `total_amount` over `total_purchases`; 0 for an empty bucket.
    pub average_receipt: Money,
}

#[derive(Debug, QueryableByName)]
struct BucketRow {
    #[diesel(sql_type = Timestamptz)]
    start: DateTime<Utc>,
    #[diesel(sql_type = Int8)]
    purchases: i64,
    #[diesel(sql_type = Numeric)]
    total_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    vat_amount: Decimal,
    #[diesel(sql_type = Numeric)]
    tips_amount: Decimal,
}

/// The series of `[from, to)` in `bucket`s, for the places of a merchant (or all) or one place.
pub fn series(
    conn: &mut PgConnection,
    merchant_id: Option<&str>,
    place_id: Option<&str>,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<BucketFigures>> {
    let scope = Scope {
        merchant_id: merchant_id.map(str::to_owned),
        place_id: place_id.map(str::to_owned),
        ..Scope::default()
    };
    let plan = Plan::new(Some(from), Some(to), bucket.grain());
    let rows: Vec<BucketRow> = bound(
        format!(
            "WITH {} SELECT date_trunc($11, at, 'UTC') AS start,
                    SUM(purchases)::int8 AS purchases, SUM(total_amount) AS total_amount,
                    SUM(vat_amount) AS vat_amount, SUM(tips_amount) AS tips_amount
             FROM parts GROUP BY 1 ORDER BY 1",
            Reading::of(&scope, Grouping::Whole).totals()
        ),
        &scope,
        &plan,
    )
    .bind::<Text, _>(bucket.as_str())
    .load(conn)?;
    let filled: BTreeMap<DateTime<Utc>, BucketRow> = rows.into_iter().map(|row| (row.start, row)).collect();
    let count = bucket.count(from, to);
    let first = bucket.start(from);
    Ok((0..count)
        .map(|index| {
            let start = first + bucket.length() * index as i32;
            let row = filled.get(&start);
            let purchases = row.map_or(0, |row| row.purchases);
            let total = row.map_or(Decimal::ZERO, |row| row.total_amount);
            BucketFigures {
                start,
                total_purchases: purchases,
                total_amount: Money::from_exact(total),
                total_vat: Money::from_exact(row.map_or(Decimal::ZERO, |row| row.vat_amount)),
                total_tips: Money::from_exact(row.map_or(Decimal::ZERO, |row| row.tips_amount)),
                average_receipt: mean(total, purchases),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::from_str(text).expect("time")
    }

    #[test]
    fn a_default_period_never_starts_before_the_year_0001() {
        let to = at("0001-01-05T00:00:00Z");
        let period = Period {
            from: None,
            to: Some(to),
        };
        assert_eq!(
            Bucket::Day.default_period(period, Utc::now()),
            (at("0001-01-01T00:00:00Z"), to)
        );
    }

    #[test]
    fn buckets_count_every_hour_or_day_the_period_touches() {
        assert_eq!(
            Bucket::Hour.count(at("2024-01-01T10:15:00Z"), at("2024-01-01T13:30:00Z")),
            4
        );
        assert_eq!(
            Bucket::Hour.count(at("2024-01-01T10:00:00Z"), at("2024-01-01T13:00:00Z")),
            3
        );
        assert_eq!(
            Bucket::Day.count(at("2024-02-28T00:00:00Z"), at("2024-03-01T00:00:00Z")),
            2
        );
        assert_eq!(
            Bucket::Day.count(at("2024-03-01T00:00:00Z"), at("2024-02-01T00:00:00Z")),
            0
        );
    }

    #[test]
    fn an_open_period_runs_up_to_now() {
        let now = at("2024-05-10T12:00:00Z");
        let open = Period { from: None, to: None };
        assert_eq!(
            Bucket::Hour.default_period(open, now),
            (at("2024-05-08T12:00:00Z"), now)
        );
        assert_eq!(
            Bucket::Day.default_period(open, now).0,
            at("2024-04-10T12:00:00Z")
        );
    }
}
