//! Analytics over any period, exact for arbitrary instants: whole months, days and hours come from the
//! rollup tiers, and the partial hours at the period's two edges are scanned exactly from the stored
//! receipts ([`Plan`]). A summary over every place reads the total rows and one over a merchant's places the
//! merchant's, so neither costs more as places are added; per-place figures read the places' rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use paperclip::actix::Apiv2Schema;
use rust_decimal::Decimal;
use serde::Serialize;
use shared_models::domain::money::{mean, Money};
use shared_models::domain::rollup::{Grain, Plan};

mod reading;

pub(crate) use reading::{bound, Grouping, Reading};

/// A half-open period `[from, to)`; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Apiv2Schema)]
pub struct Period {
    /// Inclusive; null for no lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive; null for no upper bound.
    pub to: Option<DateTime<Utc>>,
}

impl Period {
    /// How the period is read: months, days and hours of rollups, and two edge scans.
    pub(crate) fn plan(&self, coarsest: Grain) -> Plan {
        Plan::new(self.from, self.to, coarsest)
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

/// The figures of the whole scope over the period.
pub fn summary(conn: &mut PgConnection, scope: &Scope, period: &Period) -> QueryResult<Figures> {
    Ok(reading::grouped(conn, scope, period, Grouping::Whole)?
        .remove(&None)
        .unwrap_or_default())
}

/// The figures of each place in scope over the period (places without purchases are absent).
pub fn per_place(
    conn: &mut PgConnection,
    scope: &Scope,
    period: &Period,
) -> QueryResult<BTreeMap<String, Figures>> {
    Ok(reading::grouped(conn, scope, period, Grouping::PerPlace)?
        .into_iter()
        .filter_map(|(place, figures)| Some((place?, figures)))
        .collect())
}

/// When the rollups of the scope were last computed, if they ever were. Every recompute rewrites the month
/// rows above what it touched, so the month rows hold the latest time.
pub fn computed_at(conn: &mut PgConnection, scope: &Scope) -> QueryResult<Option<DateTime<Utc>>> {
    reading::computed_at(conn, scope)
}
