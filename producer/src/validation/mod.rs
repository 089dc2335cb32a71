//! Parse, don't validate: a JSON body becomes a [`ValidReceipt`] or the full list of what is wrong with it.
//!
//! Text rules are declared with garde on [`TextFields`]; amounts are parsed from the literal JSON text into
//! exact decimals (the workspace enables serde_json's `arbitrary_precision`, so a JSON number never passes
//! through f64), then checked against the contract's numeric and cross-field rules.

use chrono::{DateTime, TimeDelta, Utc};
use garde::Validate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use shared_models::domain::receipt::{LineItem, Receipt};
use shared_models::domain::text::text_problem;
use shared_models::domain::time::parse_timestamp;
use shared_models::domain::FieldError;

mod document;
mod limits;
mod problems;

pub use document::refine_document;
pub(crate) use limits::*;
use problems::{unstorable_text, FieldPath, Problems};

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

/// Text fields and their rules, declared with garde. `None` means absent or of the wrong type, which is
/// reported separately; garde checks only what is present.
#[derive(Debug, Validate)]
struct TextFields<'b> {
    #[garde(custom(text(1, TRANSACTION_ID_MAX)))]
    transaction_id: Option<&'b str>,
    #[garde(custom(text(1, PLACE_ID_MAX)))]
    place_id: Option<&'b str>,
    #[garde(custom(text(0, PLACE_NAME_MAX)))]
    place_name: Option<&'b str>,
    #[garde(custom(payment_method_rule))]
    payment_method: Option<&'b str>,
    #[garde(custom(text(1, MERCHANT_ID_MAX)))]
    merchant_id: Option<&'b str>,
    #[garde(dive)]
    items: Vec<ItemTextFields<'b>>,
}

#[derive(Debug, Validate)]
struct ItemTextFields<'b> {
    #[garde(custom(text(1, PRODUCT_ID_MAX)))]
    product_id: Option<&'b str>,
    #[garde(custom(text(1, CATEGORY_MAX)))]
    category: Option<&'b str>,
}

/// garde messages carry the machine code before the first `: `.
fn rule_error(code: &str, message: &str) -> garde::Error {
    garde::Error::new(format!("{code}: {message}"))
}

fn text(min: usize, max: usize) -> impl FnOnce(&Option<&str>, &()) -> garde::Result {
    move |value, _| match value.and_then(|value| text_problem(value, min, max)) {
        Some((code, message)) => Err(rule_error(code, &message)),
        None => Ok(()),
    }
}

fn payment_method_rule(value: &Option<&str>, _: &()) -> garde::Result {
    let Some(value) = value else { return Ok(()) };
    if value.is_empty() || value.chars().count() > PAYMENT_METHOD_MAX {
        Err(rule_error(
            "invalid_length",
            &format!("must have 1 to {PAYMENT_METHOD_MAX} characters"),
        ))
    } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Err(rule_error(
            "invalid_characters",
            "must be letters, digits and underscores, such as credit_card",
        ))
    } else {
        Ok(())
    }
}

/// Validates a receipt body (already known to be a JSON object) against every rule the OpenAPI document
/// states, reporting all failures together.
pub fn validate(
    body: &Map<String, Value>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<ValidReceipt, Vec<FieldError>> {
    let mut problems = Problems(Vec::new());

    let field = FieldPath::Receipt;
    let transaction_id = problems.string(body, field("transaction_id"), true);
    let place_id = problems.string(body, field("place_id"), false);
    let place_name = problems.string(body, field("place_name"), false);
    let payment_method = problems.string(body, field("payment_method"), true);
    let merchant_id = problems.string(body, field("merchant_id"), false);

    let timestamp =
        problems
            .string(body, field("timestamp"), true)
            .and_then(|text| match parse_timestamp(text) {
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
        let field = |key| FieldPath::Item(index, key);
        let Value::Object(item) = raw else {
            problems.add(
                format_args!("items[{index}]"),
                "invalid_type",
                "must be an object",
            );
            item_texts.push(ItemTextFields {
                product_id: None,
                category: None,
            });
            continue;
        };
        let product_id = problems.string(item, field("product_id"), true);
        let category = problems.string(item, field("category"), true);
        let quantity = problems.decimal(item, field("quantity"), true);
        let price = problems.decimal(item, field("price"), true);
        if let Some(quantity) = quantity {
            problems.check_amount(field("quantity"), quantity, true, MAX_QUANTITY, QUANTITY_SCALE);
        }
        if let Some(price) = price {
            problems.check_amount(field("price"), price, false, MAX_MONEY, MONEY_SCALE);
        }
        item_texts.push(ItemTextFields { product_id, category });
        if let (Some(product_id), Some(category), Some(quantity), Some(price)) =
            (product_id, category, quantity, price)
        {
            let extra = item
                .iter()
                .filter(|(key, _)| !KNOWN_ITEM_FIELDS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            items.push(LineItem {
                product_id: product_id.to_owned(),
                quantity,
                price,
                category: category.to_owned(),
                extra,
            });
        }
    }

    let text_fields = TextFields {
        transaction_id,
        place_id,
        place_name,
        payment_method,
        merchant_id,
        items: item_texts,
    };
    if let Err(report) = text_fields.validate() {
        for (path, error) in report.iter() {
            let message = error.message().to_string();
            let (code, message) = message.split_once(": ").unwrap_or(("invalid", message.as_str()));
            problems.add(path, code, message);
        }
    }

    let total_amount = problems.decimal(body, field("total_amount"), true);
    let vat_amount = problems.decimal(body, field("vat_amount"), true);
    let tips_amount = problems
        .decimal(body, field("tips_amount"), false)
        .or(Some(Decimal::ZERO));
    for (key, value) in [
        ("total_amount", total_amount),
        ("vat_amount", vat_amount),
        ("tips_amount", tips_amount),
    ] {
        if let Some(value) = value {
            problems.check_amount(field(key), value, false, MAX_MONEY, MONEY_SCALE);
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

    unstorable_text(body, &mut problems);
    if !problems.0.is_empty() {
        let mut seen = std::collections::HashSet::new();
        problems
            .0
            .retain(|problem| seen.insert((problem.field.clone(), problem.code.clone())));
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
        merchant_id: merchant_id.map(str::to_owned),
        place_id: place_id.map(str::to_owned),
        receipt: Receipt {
            transaction_id: transaction_id.to_owned(),
            place_id: String::new(),
            place_name: place_name
                .filter(|name| !name.trim().is_empty())
                .map(str::to_owned),
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
mod tests;
