//! Properties of the validator: what it accepts survives serialise -> Kafka envelope -> parse unchanged, and
//! no JSON makes it panic.

use chrono::{DateTime, Utc};
use producer::validation::{validate, Rules};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use shared_models::domain::money::round_cents;
use shared_models::domain::receipt::ReceiptEnvelope;

fn decimal(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

fn item() -> impl Strategy<Value = (String, Decimal, Decimal, String)> {
    (
        "[A-Za-z0-9_-]{1,20}",
        1i64..5_000_000,
        0u32..=3,
        0i64..10_000_000,
        "[A-Za-z][A-Za-z ]{0,15}",
    )
        .prop_map(
            |(product, quantity_units, quantity_scale, price_cents, category)| {
                (
                    product,
                    decimal(quantity_units, quantity_scale),
                    decimal(price_cents, 2),
                    category,
                )
            },
        )
}

fn receipt() -> impl Strategy<Value = Value> {
    (
        "[A-Za-z0-9ÄÖü€✓_.-][A-Za-z0-9ÄÖü€✓ _.-]{0,39}",
        prop::collection::vec(item(), 1..20),
        0u32..=100,
        0i64..100_000,
        946_684_800i64..1_700_000_000,
        any::<bool>(),
    )
        .prop_map(|(transaction_id, items, vat_percent, tips_cents, seconds, numbers_as_strings)| {
            let total: Decimal = items.iter().map(|(_, q, p, _)| round_cents(*q * *p)).sum();
            let vat = round_cents(total * Decimal::from(vat_percent) / Decimal::from(100));
            let amount = |value: Decimal| {
                if numbers_as_strings {
                    json!(value.to_string())
                } else {
                    serde_json::from_str::<Value>(&value.to_string()).expect("a JSON number")
                }
            };
            let timestamp = DateTime::<Utc>::from_timestamp(seconds, 0).expect("time").to_rfc3339();
            json!({
                "transaction_id": transaction_id,
                "timestamp": timestamp,
                "place_id": "place-1",
                "items": items.iter().map(|(product, quantity, price, category)| json!({
                    "product_id": product, "quantity": amount(*quantity), "price": amount(*price), "category": category
                })).collect::<Vec<_>>(),
                "total_amount": amount(total),
                "vat_amount": amount(vat),
                "tips_amount": amount(decimal(tips_cents, 2)),
                "payment_method": "card",
                "extra_field": { "kept": [1, "two", 3.25] }
            })
        })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?(e-?[0-9]{1,3})?"
            .prop_map(|text| serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("transaction_id".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("items".to_owned()),
                    Just("quantity".to_owned()),
                    Just("price".to_owned()),
                    Just("total_amount".to_owned()),
                    Just("vat_amount".to_owned()),
                    Just("category".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..10
            )
            .prop_map(|map| Value::Object(map.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_receipts_survive_the_kafka_round_trip_unchanged(body in receipt()) {
        let now = Utc::now();
        let valid = validate(body.as_object().expect("object"), &Rules::default(), now)
            .map_err(|errors| TestCaseError::fail(format!("{errors:?}")))?;
        let receipt = valid.into_receipt("place-1".into());
        let envelope = ReceiptEnvelope::new("merchant".into(), now, receipt);
        let parsed = ReceiptEnvelope::from_json(envelope.to_json().as_bytes())
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&parsed, &envelope);
        prop_assert_eq!(parsed.receipt.content_hash(), envelope.receipt.content_hash());
        prop_assert_eq!(&parsed.receipt.extra["extra_field"], &body["extra_field"]);
    }

    #[test]
    fn random_json_never_panics_the_validator(body in any_json()) {
        if let Value::Object(object) = &body {
            let _ = validate(object, &Rules::default(), Utc::now());
        }
        let mut wrapped = Map::new();
        wrapped.insert("items".into(), json!([body.clone()]));
        wrapped.insert("total_amount".into(), body);
        let _ = validate(&wrapped, &Rules::default(), Utc::now());
    }
}
