//! Parse, don't validate: a JSON body becomes a [`ValidReceipt`] or the full list of what is wrong with it.
//!
//! Text rules are declared with garde on [`TextFields`]; amounts are parsed from the literal JSON text into
//! exact decimals (the workspace enables serde_json's `arbitrary_precision`, so a JSON number never passes
//! through f64), then checked against the contract's numeric and cross-field rules.

use chrono::{DateTime, TimeDelta, Utc};
use garde::Validate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use shared_models::http::FieldError;
use shared_models::receipt::{parse_timestamp, LineItem, Receipt};

/// The configurable parts of the rules.
#[derive(Debug, Clone)]
pub struct Rules {
    pub total_tolerance: Decimal,
    pub earliest: DateTime<Utc>,
    pub max_future_skew: TimeDelta,
}

/// A receipt that passed every rule. Its place may still have to be resolved from the merchant's places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidReceipt {
    /// The `merchant_id` field, which admins must give and merchants may repeat.
    pub merchant_id: Option<String>,
    pub place_id: Option<String>,
    receipt: Receipt,
}

impl ValidReceipt {
    pub fn transaction_id(&self) -> &str {
        &self.receipt.transaction_id
    }

    /// The finished receipt, at the place it was resolved to.
    pub fn into_receipt(self, place_id: String) -> Receipt {
        Receipt {
            place_id,
            ..self.receipt
        }
    }
}

const KNOWN_FIELDS: [&str; 10] = [
    "transaction_id",
    "timestamp",
    "items",
    "total_amount",
    "vat_amount",
    "tips_amount",
    "payment_method",
    "place_id",
    "place_name",
    "merchant_id",
];
const KNOWN_ITEM_FIELDS: [&str; 4] = ["product_id", "quantity", "price", "category"];
const MAX_ITEMS: usize = 1000;
/// Upper bounds that keep every product and sum far inside rust_decimal's range.
const MAX_MONEY: Decimal = Decimal::from_parts(2764472319, 232830, 0, false, 2); // 9,999,999,999,999.99
const MAX_QUANTITY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Text fields and their rules, declared with garde. `None` means absent or of the wrong type, which is
/// reported separately; garde checks only what is present.
#[derive(Debug, Validate)]
struct TextFields {
    #[garde(custom(text(1, 128)))]
    transaction_id: Option<String>,
    #[garde(custom(text(1, 64)))]
    place_id: Option<String>,
    #[garde(custom(text(0, 200)))]
    place_name: Option<String>,
    #[garde(custom(payment_method_rule))]
    payment_method: Option<String>,
    #[garde(custom(text(1, 64)))]
    merchant_id: Option<String>,
    #[garde(dive)]
    items: Vec<ItemTextFields>,
}

#[derive(Debug, Validate)]
struct ItemTextFields {
    #[garde(custom(text(1, 128)))]
    product_id: Option<String>,
    #[garde(custom(category_rule))]
    category: Option<String>,
}

/// garde messages carry the machine code before the first `: `.
fn rule_error(code: &str, message: &str) -> garde::Error {
    garde::Error::new(format!("{code}: {message}"))
}

fn text(min: usize, max: usize) -> impl FnOnce(&Option<String>, &()) -> garde::Result {
    move |value, _| {
        let Some(value) = value else { return Ok(()) };
        let chars = value.chars().count();
        if value.chars().any(char::is_control) {
            Err(rule_error(
                "invalid_characters",
                "must not contain control characters",
            ))
        } else if chars < min || (min > 0 && value.trim().is_empty()) {
            Err(rule_error(
                "too_short",
                &format!("must have at least {min} character(s)"),
            ))
        } else if chars > max {
            Err(rule_error(
                "too_long",
                &format!("must have at most {max} characters"),
            ))
        } else {
            Ok(())
        }
    }
}

fn payment_method_rule(value: &Option<String>, _: &()) -> garde::Result {
    let Some(value) = value else { return Ok(()) };
    let lowered = value.to_lowercase();
    if lowered.is_empty() || lowered.chars().count() > 32 {
        Err(rule_error("invalid_length", "must have 1 to 32 characters"))
    } else if !lowered
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Err(rule_error(
            "invalid_characters",
            "must be letters, digits and underscores, such as credit_card",
        ))
    } else {
        Ok(())
    }
}

fn category_rule(value: &Option<String>, ctx: &()) -> garde::Result {
    text(1, 64)(&value.as_ref().map(|v| v.trim().to_owned()), ctx)
}

/// Collects the problems of one body.
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// A string field: absent is `None` (reported if required), another type is reported.
    fn string(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<String> {
        match object.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.add(path, "required", "this field is required");
                }
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.add(path, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// An exact decimal from a JSON number or a numeric string.
    fn decimal(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<Decimal> {
        let literal = match object.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.add(path, "required", "this field is required");
                }
                return None;
            }
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(_) => {
                self.add(path, "invalid_type", "must be a number or a numeric string");
                return None;
            }
        };
        let parsed = if literal.contains(['e', 'E']) {
            Decimal::from_scientific(&literal).ok()
        } else if literal.is_empty() || literal.starts_with('+') {
            None
        } else {
            Decimal::from_str_exact(&literal).ok()
        };
        match parsed {
            Some(value) => Some(value.normalize()),
            None => {
                self.add(path, "invalid_number", "must be a decimal number such as 10.99");
                None
            }
        }
    }

    /// Range and precision of an amount: at least `min_exclusive`/`min`, at most `max` and `scale` places.
    fn check_amount(&mut self, path: &str, value: Decimal, positive: bool, max: Decimal, scale: u32) {
        if positive && value <= Decimal::ZERO {
            self.add(path, "not_positive", "must be greater than 0");
        } else if value < Decimal::ZERO {
            self.add(path, "negative", "must not be negative");
        } else if value > max {
            self.add(path, "too_large", format!("must not exceed {max}"));
        } else if value.scale() > scale {
            self.add(
                path,
                "too_many_decimals",
                format!("must have at most {scale} decimal places"),
            );
        }
    }
}

/// Validates a receipt body (already known to be a JSON object) against every rule of CONTRACT 3,
/// reporting all failures together.
pub fn validate(
    body: &Map<String, Value>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<ValidReceipt, Vec<FieldError>> {
    let mut problems = Problems(Vec::new());

    let transaction_id = problems.string(body, "transaction_id", "transaction_id", true);
    let place_id = problems.string(body, "place_id", "place_id", false);
    let place_name = problems.string(body, "place_name", "place_name", false);
    let payment_method = problems.string(body, "payment_method", "payment_method", true);
    let merchant_id = problems.string(body, "merchant_id", "merchant_id", false);

    let timestamp = problems
        .string(body, "timestamp", "timestamp", true)
        .and_then(|text| match parse_timestamp(&text) {
            None => {
                problems.add(
                    "timestamp",
                    "invalid_timestamp",
                    "must be an ISO 8601 / RFC 3339 timestamp",
                );
                None
            }
            Some(time) if time < rules.earliest => {
                problems.add(
                    "timestamp",
                    "too_early",
                    format!("must not be earlier than {}", rules.earliest),
                );
                None
            }
            Some(time) if time > now + rules.max_future_skew => {
                problems.add("timestamp", "in_future", "must not be in the future");
                None
            }
            Some(time) => Some(time),
        });

    let raw_items: &[Value] = match body.get("items") {
        None | Some(Value::Null) => {
            problems.add("items", "required", "this field is required");
            &[]
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                problems.add("items", "too_few", "must have at least 1 item");
            } else if items.len() > MAX_ITEMS {
                problems.add(
                    "items",
                    "too_many",
                    format!("must have at most {MAX_ITEMS} items"),
                );
            }
            items
        }
        Some(_) => {
            problems.add("items", "invalid_type", "must be a list of items");
            &[]
        }
    };

    let mut item_texts = Vec::with_capacity(raw_items.len());
    let mut items = Vec::with_capacity(raw_items.len());
    for (index, raw) in raw_items.iter().enumerate() {
        let path = |field: &str| format!("items[{index}].{field}");
        let Value::Object(item) = raw else {
            problems.add(&format!("items[{index}]"), "invalid_type", "must be an object");
            item_texts.push(ItemTextFields {
                product_id: None,
                category: None,
            });
            continue;
        };
        let product_id = problems.string(item, "product_id", &path("product_id"), true);
        let category = problems.string(item, "category", &path("category"), true);
        let quantity = problems.decimal(item, "quantity", &path("quantity"), true);
        let price = problems.decimal(item, "price", &path("price"), true);
        if let Some(quantity) = quantity {
            problems.check_amount(&path("quantity"), quantity, true, MAX_QUANTITY, 3);
        }
        if let Some(price) = price {
            problems.check_amount(&path("price"), price, false, MAX_MONEY, 2);
        }
        item_texts.push(ItemTextFields {
            product_id: product_id.clone(),
            category: category.clone(),
        });
        if let (Some(product_id), Some(category), Some(quantity), Some(price)) =
            (product_id, category, quantity, price)
        {
            let extra = item
                .iter()
                .filter(|(key, _)| !KNOWN_ITEM_FIELDS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            items.push(LineItem {
                product_id,
                quantity,
                price,
                category,
                extra,
            });
        }
    }

    let text_fields = TextFields {
        transaction_id: transaction_id.clone(),
        place_id: place_id.clone(),
        place_name: place_name.clone(),
        payment_method: payment_method.clone(),
        merchant_id: merchant_id.clone(),
        items: item_texts,
    };
    if let Err(report) = text_fields.validate() {
        for (path, error) in report.iter() {
            let message = error.message().to_string();
            let (code, message) = message.split_once(": ").unwrap_or(("invalid", message.as_str()));
            problems.add(&path.to_string(), code, message);
        }
    }

    let total_amount = problems.decimal(body, "total_amount", "total_amount", true);
    let vat_amount = problems.decimal(body, "vat_amount", "vat_amount", true);
    let tips_amount = problems
        .decimal(body, "tips_amount", "tips_amount", false)
        .or(Some(Decimal::ZERO));
    for (path, value) in [
        ("total_amount", total_amount),
        ("vat_amount", vat_amount),
        ("tips_amount", tips_amount),
    ] {
        if let Some(value) = value {
            problems.check_amount(path, value, false, MAX_MONEY, 2);
        }
    }
    if let (Some(total), Some(vat)) = (total_amount, vat_amount) {
        if vat > total {
            problems.add(
                "vat_amount",
                "exceeds_total",
                "must not be more than total_amount",
            );
        }
    }
    if let Some(total) = total_amount {
        if !raw_items.is_empty() && items.len() == raw_items.len() {
            let lines: Decimal = items.iter().map(LineItem::amount).sum();
            if (total - lines).abs() > rules.total_tolerance {
                problems.add(
                    "total_amount",
                    "total_mismatch",
                    format!(
                        "must equal the sum of the line amounts ({lines}) within {}",
                        rules.total_tolerance
                    ),
                );
            }
        }
    }

    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    let (
        Some(transaction_id),
        Some(timestamp),
        Some(total_amount),
        Some(vat_amount),
        Some(tips_amount),
        Some(payment_method),
    ) = (
        transaction_id,
        timestamp,
        total_amount,
        vat_amount,
        tips_amount,
        payment_method,
    )
    else {
        return Err(vec![FieldError::new("", "invalid", "the receipt is incomplete")]);
    };
    let extra = body
        .iter()
        .filter(|(key, _)| !KNOWN_FIELDS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Ok(ValidReceipt {
        merchant_id,
        place_id,
        receipt: Receipt {
            transaction_id,
            place_id: String::new(),
            place_name: place_name.filter(|name| !name.trim().is_empty()),
            timestamp,
            items,
            total_amount,
            vat_amount,
            tips_amount,
            payment_method: payment_method.to_lowercase(),
            extra,
        },
    })
}

impl Default for Rules {
    /// The contract's defaults: a tolerance of 0.01, nothing before 2000-01-01, at most 10 minutes ahead.
    fn default() -> Self {
        Rules {
            total_tolerance: Decimal::new(1, 2),
            earliest: DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default(),
            max_future_skew: TimeDelta::minutes(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn valid() -> Value {
        json!({
            "transaction_id": "t-1",
            "timestamp": "2024-02-07T12:34:56",
            "items": [
                { "product_id": "p1", "quantity": 2, "price": 10.99, "category": "groceries" },
                { "product_id": "p2", "quantity": 1, "price": 5.49, "category": "electronics" }
            ],
            "total_amount": 27.47,
            "vat_amount": 2.47,
            "tips_amount": 3.0,
            "payment_method": "credit_card"
        })
    }

    fn check(body: &Value) -> Result<ValidReceipt, Vec<FieldError>> {
        let object = body.as_object().expect("an object");
        validate(object, &Rules::default(), now())
    }

    /// How a case changes the valid receipt.
    type Change = Box<dyn Fn(&mut Value)>;

    /// (what is changed, the field path reported, the code reported)
    #[test]
    fn each_invalid_receipt_reports_its_field_and_code() {
        let cases: Vec<(&str, Change, &str, &str)> = vec![
            (
                "no transaction_id",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("transaction_id"));
                }),
                "transaction_id",
                "required",
            ),
            (
                "empty transaction_id",
                Box::new(|b| b["transaction_id"] = json!("")),
                "transaction_id",
                "too_short",
            ),
            (
                "long transaction_id",
                Box::new(|b| b["transaction_id"] = json!("x".repeat(129))),
                "transaction_id",
                "too_long",
            ),
            (
                "control character",
                Box::new(|b| b["transaction_id"] = json!("a\u{7}b")),
                "transaction_id",
                "invalid_characters",
            ),
            (
                "numeric transaction_id",
                Box::new(|b| b["transaction_id"] = json!(5)),
                "transaction_id",
                "invalid_type",
            ),
            (
                "no timestamp",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("timestamp"));
                }),
                "timestamp",
                "required",
            ),
            (
                "bad timestamp",
                Box::new(|b| b["timestamp"] = json!("yesterday")),
                "timestamp",
                "invalid_timestamp",
            ),
            (
                "before 2000",
                Box::new(|b| b["timestamp"] = json!("1999-12-31T23:59:59Z")),
                "timestamp",
                "too_early",
            ),
            (
                "future",
                Box::new(|b| b["timestamp"] = json!("2026-01-01T00:11:00Z")),
                "timestamp",
                "in_future",
            ),
            (
                "no items",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("items"));
                }),
                "items",
                "required",
            ),
            (
                "empty items",
                Box::new(|b| b["items"] = json!([])),
                "items",
                "too_few",
            ),
            (
                "items not a list",
                Box::new(|b| b["items"] = json!({})),
                "items",
                "invalid_type",
            ),
            (
                "item not an object",
                Box::new(|b| b["items"][1] = json!(3)),
                "items[1]",
                "invalid_type",
            ),
            (
                "no product_id",
                Box::new(|b| {
                    b["items"][1].as_object_mut().map(|o| o.remove("product_id"));
                }),
                "items[1].product_id",
                "required",
            ),
            (
                "zero quantity",
                Box::new(|b| b["items"][0]["quantity"] = json!(0)),
                "items[0].quantity",
                "not_positive",
            ),
            (
                "quantity with 4 decimals",
                Box::new(|b| b["items"][0]["quantity"] = json!("1.0001")),
                "items[0].quantity",
                "too_many_decimals",
            ),
            (
                "negative price",
                Box::new(|b| b["items"][1]["price"] = json!(-1)),
                "items[1].price",
                "negative",
            ),
            (
                "price with 3 decimals",
                Box::new(|b| b["items"][1]["price"] = json!("5.491")),
                "items[1].price",
                "too_many_decimals",
            ),
            (
                "price not a number",
                Box::new(|b| b["items"][1]["price"] = json!("five")),
                "items[1].price",
                "invalid_number",
            ),
            (
                "price a boolean",
                Box::new(|b| b["items"][1]["price"] = json!(true)),
                "items[1].price",
                "invalid_type",
            ),
            (
                "blank category",
                Box::new(|b| b["items"][1]["category"] = json!("   ")),
                "items[1].category",
                "too_short",
            ),
            (
                "long category",
                Box::new(|b| b["items"][1]["category"] = json!("c".repeat(65))),
                "items[1].category",
                "too_long",
            ),
            (
                "total off by more than a cent",
                Box::new(|b| b["total_amount"] = json!(27.49)),
                "total_amount",
                "total_mismatch",
            ),
            (
                "negative total",
                Box::new(|b| b["total_amount"] = json!(-27.47)),
                "total_amount",
                "negative",
            ),
            (
                "no vat",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("vat_amount"));
                }),
                "vat_amount",
                "required",
            ),
            (
                "vat above total",
                Box::new(|b| b["vat_amount"] = json!(30)),
                "vat_amount",
                "exceeds_total",
            ),
            (
                "negative tips",
                Box::new(|b| b["tips_amount"] = json!(-1)),
                "tips_amount",
                "negative",
            ),
            (
                "bad payment method",
                Box::new(|b| b["payment_method"] = json!("credit card")),
                "payment_method",
                "invalid_characters",
            ),
            (
                "long place_id",
                Box::new(|b| b["place_id"] = json!("p".repeat(65))),
                "place_id",
                "too_long",
            ),
            (
                "long place_name",
                Box::new(|b| b["place_name"] = json!("n".repeat(201))),
                "place_name",
                "too_long",
            ),
            (
                "empty place_id",
                Box::new(|b| b["place_id"] = json!("")),
                "place_id",
                "too_short",
            ),
            (
                "numeric place_id",
                Box::new(|b| b["place_id"] = json!(12)),
                "place_id",
                "invalid_type",
            ),
            (
                "timestamp a number",
                Box::new(|b| b["timestamp"] = json!(1707309296)),
                "timestamp",
                "invalid_type",
            ),
            (
                "impossible date",
                Box::new(|b| b["timestamp"] = json!("2024-02-30T10:00:00Z")),
                "timestamp",
                "invalid_timestamp",
            ),
            (
                "too many items",
                Box::new(|b| {
                    b["items"] = json!(vec![
                        json!({"product_id": "p", "quantity": 1, "price": 0, "category": "c"});
                        1001
                    ])
                }),
                "items",
                "too_many",
            ),
            (
                "long product_id",
                Box::new(|b| b["items"][0]["product_id"] = json!("p".repeat(129))),
                "items[0].product_id",
                "too_long",
            ),
            (
                "no quantity",
                Box::new(|b| {
                    b["items"][0].as_object_mut().map(|o| o.remove("quantity"));
                }),
                "items[0].quantity",
                "required",
            ),
            (
                "negative quantity",
                Box::new(|b| b["items"][0]["quantity"] = json!(-2)),
                "items[0].quantity",
                "not_positive",
            ),
            (
                "quantity NaN text",
                Box::new(|b| b["items"][0]["quantity"] = json!("NaN")),
                "items[0].quantity",
                "invalid_number",
            ),
            (
                "no price",
                Box::new(|b| {
                    b["items"][1].as_object_mut().map(|o| o.remove("price"));
                }),
                "items[1].price",
                "required",
            ),
            (
                "no category",
                Box::new(|b| {
                    b["items"][0].as_object_mut().map(|o| o.remove("category"));
                }),
                "items[0].category",
                "required",
            ),
            (
                "huge price",
                Box::new(|b| b["items"][0]["price"] = json!("1e20")),
                "items[0].price",
                "too_large",
            ),
            (
                "total with 3 decimals",
                Box::new(|b| b["total_amount"] = json!("27.470001")),
                "total_amount",
                "too_many_decimals",
            ),
            (
                "no total",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("total_amount"));
                }),
                "total_amount",
                "required",
            ),
            (
                "vat as a list",
                Box::new(|b| b["vat_amount"] = json!([1])),
                "vat_amount",
                "invalid_type",
            ),
            (
                "tips with 3 decimals",
                Box::new(|b| b["tips_amount"] = json!(0.001)),
                "tips_amount",
                "too_many_decimals",
            ),
            (
                "no payment method",
                Box::new(|b| {
                    b.as_object_mut().map(|o| o.remove("payment_method"));
                }),
                "payment_method",
                "required",
            ),
            (
                "long payment method",
                Box::new(|b| b["payment_method"] = json!("p".repeat(33))),
                "payment_method",
                "invalid_length",
            ),
            (
                "empty merchant_id",
                Box::new(|b| b["merchant_id"] = json!("")),
                "merchant_id",
                "too_short",
            ),
        ];
        assert!(cases.len() >= 45, "{} cases", cases.len());
        for (what, change, field, code) in cases {
            let mut body = valid();
            change(&mut body);
            let errors = check(&body).expect_err(what);
            assert!(
                errors
                    .iter()
                    .any(|error| error.field == field && error.code == code),
                "{what}: expected {field}/{code}, got {errors:?}"
            );
        }
    }

    #[test]
    fn all_failures_are_reported_together() {
        let mut body = valid();
        body["items"][0]["price"] = json!(-1);
        body["items"][1]["category"] = json!("");
        body["payment_method"] = json!("?");
        let fields: Vec<String> = check(&body)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect();
        for field in ["items[0].price", "items[1].category", "payment_method"] {
            assert!(
                fields.contains(&field.to_owned()),
                "{field} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn valid_edge_cases_are_accepted_exactly() {
        let weighed = json!({
            "transaction_id": "Ünïcode-✓", "timestamp": "2024-02-07T12:34:56.5+05:30",
            "items": [{ "product_id": "apples", "quantity": "1.255", "price": "0.99", "category": "Fruit" }],
            "total_amount": "1.24", "vat_amount": "0", "payment_method": "CASH", "note": "kept"
        });
        let receipt = check(&weighed).expect("valid").into_receipt("p".into());
        assert_eq!(receipt.items[0].quantity.to_string(), "1.255");
        assert_eq!(receipt.tips_amount, Decimal::ZERO);
        assert_eq!(receipt.payment_method, "cash");
        assert_eq!(receipt.timestamp.to_rfc3339(), "2024-02-07T07:04:56.500+00:00");
        assert_eq!(receipt.extra["note"], json!("kept"));

        let zero = json!({
            "transaction_id": "z", "timestamp": "2024-02-07T12:34:56Z",
            "items": [{ "product_id": "gift", "quantity": 1, "price": 0, "category": "promo" }],
            "total_amount": 0, "vat_amount": 0, "payment_method": "voucher"
        });
        assert!(check(&zero).is_ok());
    }

    #[test]
    fn numbers_are_exact_and_equal_content_hashes_equal() {
        let mut a = valid();
        a["items"][0]["price"] = json!("10.990");
        let b = valid();
        let a = check(&a).expect("valid").into_receipt("p".into());
        let b = check(&b).expect("valid").into_receipt("p".into());
        assert_eq!(a.content_hash(), b.content_hash());
        assert_eq!(a.items[0].price.to_string(), "10.99");
    }
}
