//! Exact money: rust_decimal everywhere, rounded to cents half away from zero where the contract says so.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

/// Rounds to cents, half away from zero (docs/api.md).
pub fn round_cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A money figure in a response: rounded to cents and written as a JSON number with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Money(Decimal);

impl Money {
    pub fn from_exact(value: Decimal) -> Self {
        let mut rounded = round_cents(value);
        rounded.rescale(2);
        Money(rounded)
    }

    pub fn amount(&self) -> Decimal {
        self.0
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(&self.0, serializer)
    }
}

/// In the OpenAPI documents: a JSON number (with two decimals).
#[cfg(feature = "http")]
impl paperclip::v2::schema::TypedData for Money {
    fn data_type() -> paperclip::v2::models::DataType {
        paperclip::v2::models::DataType::Number
    }
}

/// The mean of `sum` over `count`, or zero for an empty set (zeros, not nulls, as docs/api.md says).
pub fn mean(sum: Decimal, count: i64) -> Money {
    if count == 0 {
        Money::from_exact(Decimal::ZERO)
    } else {
        Money::from_exact(sum / Decimal::from(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("test decimal")
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_cents(dec("2.345")), dec("2.35"));
        assert_eq!(round_cents(dec("-2.345")), dec("-2.35"));
        assert_eq!(round_cents(dec("2.344999")), dec("2.34"));
    }

    #[test]
    fn money_serialises_as_a_json_number_with_cents() {
        let json = serde_json::to_string(&Money::from_exact(dec("0.1") + dec("0.2"))).expect("json");
        assert_eq!(json, "0.30");
        assert_eq!(serde_json::to_string(&mean(dec("10"), 3)).expect("json"), "3.33");
        assert_eq!(serde_json::to_string(&mean(dec("10"), 0)).expect("json"), "0.00");
    }
}
