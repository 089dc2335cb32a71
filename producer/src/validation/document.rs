//! What the OpenAPI document says of a receipt: the limits the rules in this module enforce, written from the
//! same constants. paperclip 0.9 derives the shape of `ReceiptSubmission` from its Rust type but cannot say
//! lengths, patterns, item counts or that an amount may be a number or a numeric string; this adds them. The
//! rules JSON Schema cannot state (the total against the line amounts, VAT against the total, the clock
//! window of `timestamp`) are in the descriptions.

use serde_json::{json, Map, Value};
use shared_models::domain::text::{NOT_BLANK, NO_CONTROL_CHARACTERS};

use super::{
    CATEGORY_MAX, MAX_ITEMS, MAX_MONEY, MAX_QUANTITY, MERCHANT_ID_MAX, MONEY_SCALE, PAYMENT_METHOD_MAX,
    PLACE_ID_MAX, PLACE_NAME_MAX, PRODUCT_ID_MAX, QUANTITY_SCALE, TRANSACTION_ID_MAX,
};

/// A calendar date and a time with optional fraction and offset (UTC without one).
const TIMESTAMP_PATTERN: &str = shared_models::web::extract::TIMESTAMP_PATTERN;

/// The name of the schema of values a receipt's extra fields may hold.
const EXTRA_VALUE: &str = "ExtraValue";

fn text(min: usize, max: usize) -> Value {
    let pattern = if min > 0 { NOT_BLANK } else { NO_CONTROL_CHARACTERS };
    json!({ "type": "string", "minLength": min, "maxLength": max, "pattern": pattern })
}

/// An amount as a JSON number or a numeric string, with at most `scale` decimals (trailing zeros aside).
fn amount(description: &str, exclusive_minimum: bool, maximum: rust_decimal::Decimal, scale: u32) -> Value {
    let integer_digits = maximum.trunc().to_string().len();
    let largest: f64 = maximum.to_string().parse().unwrap_or(f64::MAX);
    let step = 10f64.powi(-(scale as i32));
    json!({
        "description": description,
        "anyOf": [
            {
                "type": "number", "minimum": 0, "exclusiveMinimum": exclusive_minimum, "maximum": largest,
                "multipleOf": step
            },
            { "type": "string", "pattern": numeric_pattern(integer_digits, scale, exclusive_minimum) }
        ]
    })
}

/// A numeric string with at most `digits` digits before the point (leading zeros aside) and `scale` after it
/// (trailing zeros aside), above 0 when `positive`.
fn numeric_pattern(digits: usize, scale: u32, positive: bool) -> String {
    let fraction = format!(r"(?:\.[0-9]{{1,{scale}}}0*)?");
    if !positive {
        return format!(r"^[0-9]{{1,{digits}}}{fraction}$");
    }
    // A non-zero digit before the point, or only zeros before it and a non-zero digit within `scale` after.
    let small: Vec<String> = (0..scale as usize)
        .map(|zeros| {
            format!(
                r"{}[1-9][0-9]{{0,{}}}",
                "0".repeat(zeros),
                scale as usize - zeros - 1
            )
        })
        .collect();
    format!(
        r"^(?:0*[1-9][0-9]{{0,{}}}{fraction}|0+\.(?:{})0*)$",
        digits - 1,
        small.join("|")
    )
}

/// Values of fields beyond the contract's: any JSON, but no text holding U+0000, at any depth and in keys
/// too (which JSON Schema can state only for text at the top).
fn extra_value() -> Value {
    json!({
        "description": "Any JSON value without the character U+0000 in its text or its keys, at any depth.",
        "nullable": true,
        "anyOf": [
            { "type": "string", "pattern": "^[^\\u0000]*$" },
            { "type": "number" },
            { "type": "boolean" },
            { "type": "array" },
            { "type": "object" }
        ]
    })
}

/// States every limit of a receipt in the `ReceiptSubmission` and `ReceiptLine` schemas, and makes a batch a
/// list of 1-1000 objects (each judged on its own, so any object is a valid batch entry).
pub fn refine_document(document: &mut Value) {
    let Some(schemas) = document["components"]["schemas"].as_object_mut() else {
        return;
    };
    schemas.insert(EXTRA_VALUE.into(), extra_value());
    let extra = json!({ "$ref": format!("#/components/schemas/{EXTRA_VALUE}") });
    let money = |description: &str| amount(description, false, MAX_MONEY, MONEY_SCALE);
    let line = json!({
        "type": "object",
        "description": "One line of a receipt. Fields beyond these are kept with the line.",
        "required": ["product_id", "quantity", "price", "category"],
        "properties": {
            "product_id": text(1, PRODUCT_ID_MAX),
            "quantity": amount("More than 0, at most 3 decimals (weighed goods).", true, MAX_QUANTITY, QUANTITY_SCALE),
            "price": money("At least 0, at most 2 decimals."),
            "category": described(text(1, CATEGORY_MAX), "Trimmed and lower-cased for analytics."),
        },
        "additionalProperties": extra,
    });
    schemas.insert("ReceiptLine".into(), line);
    if let Some(receipt) = schemas
        .get_mut("ReceiptSubmission")
        .and_then(Value::as_object_mut)
    {
        let mut properties = Map::new();
        properties.insert("transaction_id".into(), text(1, TRANSACTION_ID_MAX));
        properties.insert(
            "timestamp".into(),
            json!({
                "type": "string",
                "pattern": TIMESTAMP_PATTERN,
                "description": "RFC 3339 / ISO 8601 (UTC when it has no offset); from 2000-01-01 to 10 \
                                minutes ahead of the service's clock (both configurable)."
            }),
        );
        properties.insert(
            "items".into(),
            json!({
                "type": "array", "minItems": 1, "maxItems": MAX_ITEMS,
                "items": { "$ref": "#/components/schemas/ReceiptLine" }
            }),
        );
        properties.insert(
            "total_amount".into(),
            money(
                "At least 0, at most 2 decimals, equal to the sum of the line amounts (quantity x price rounded \
                 to cents, half away from zero) within the configured tolerance (0.01).",
            ),
        );
        properties.insert(
            "vat_amount".into(),
            money("At least 0, at most 2 decimals, not more than total_amount."),
        );
        properties.insert(
            "tips_amount".into(),
            money("At least 0, at most 2 decimals; 0 when absent."),
        );
        properties.insert(
            "payment_method".into(),
            json!({
                "type": "string",
                "pattern": format!("^[A-Za-z0-9_]{{1,{PAYMENT_METHOD_MAX}}}$"),
                "description": "Letters, digits and underscores, lower-cased: cash, credit_card, debit_card, ..."
            }),
        );
        properties.insert(
            "place_id".into(),
            described(
                text(1, PLACE_ID_MAX),
                "The place of purchase. A merchant with exactly one place may leave it out: that place is used.",
            ),
        );
        properties.insert(
            "place_name".into(),
            nullable(described(
                text(0, PLACE_NAME_MAX),
                "The latest non-blank name given is the place's name.",
            )),
        );
        properties.insert(
            "merchant_id".into(),
            nullable(described(
                text(1, MERCHANT_ID_MAX),
                "Required when an admin submits (a back-office import), naming the merchant; a merchant's token \
                 may only name its own merchant (403 otherwise).",
            )),
        );
        receipt.insert("properties".into(), Value::Object(properties));
        receipt.insert(
            "required".into(),
            json!([
                "transaction_id",
                "timestamp",
                "items",
                "total_amount",
                "vat_amount",
                "payment_method",
                "place_id"
            ]),
        );
        receipt.insert("additionalProperties".into(), extra);
    }
    let receipts = json!({
        "type": "array", "minItems": 1, "maxItems": MAX_ITEMS,
        "description": "Receipts as `POST /api/checks/` takes them (see ReceiptSubmission); each is judged on \
                        its own and answered in `results`, so an invalid one does not fail the batch.",
        "items": {}
    });
    schemas.insert(
        "ReceiptBatch".into(),
        json!({
            "description": "Up to 1000 receipts: `{\"receipts\": [...]}`, or the list itself.",
            "anyOf": [
                { "type": "object", "required": ["receipts"], "properties": { "receipts": receipts } },
                receipts
            ]
        }),
    );
}

/// A schema that also takes null (which the service reads as absent).
fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = Value::Bool(true);
    schema
}

/// A schema with a description.
fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = Value::String(description.to_owned());
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_bounded_by_the_rules_maxima() {
        let money = amount("", false, MAX_MONEY, MONEY_SCALE);
        assert_eq!(money["anyOf"][1]["pattern"], numeric_pattern(13, 2, false));
        assert_eq!(money["anyOf"][0]["maximum"], json!(9_999_999_999_999.99));
        let quantity = amount("", true, MAX_QUANTITY, QUANTITY_SCALE);
        assert_eq!(quantity["anyOf"][1]["pattern"], numeric_pattern(9, 3, true));
    }

    #[test]
    fn numeric_patterns_take_what_the_rules_take() {
        let money = regex::Regex::new(&numeric_pattern(13, 2, false)).expect("pattern");
        for good in ["0", "10.99", "9999999999999.99", "1.500", "007.5"] {
            assert!(money.is_match(good), "{good}");
        }
        for bad in ["1.999", "-1", "1e3", "", "10000000000000", "1."] {
            assert!(!money.is_match(bad), "{bad}");
        }
        let quantity = regex::Regex::new(&numeric_pattern(9, 3, true)).expect("pattern");
        for good in ["1", "0.001", "0.25", "1.255", "999999999.999", "0.100"] {
            assert!(quantity.is_match(good), "{good}");
        }
        for bad in ["0", "0.000", "0.0001", "1000000000", "00"] {
            assert!(!quantity.is_match(bad), "{bad}");
        }
    }
}
