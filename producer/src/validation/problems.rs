//! Collecting every problem of a body: typed reads of its fields and the characters PostgreSQL cannot store.
//! A valid receipt is read without building any message or path: those are written only for a problem.

use std::fmt;

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use shared_models::domain::text::{escape_nul, NUL};
use shared_models::domain::FieldError;

/// Where a contract field is in the body: `total_amount`, or `items[2].quantity`.
#[derive(Debug, Clone, Copy)]
pub(super) enum FieldPath<'k> {
    Receipt(&'k str),
    Item(usize, &'k str),
}

impl<'k> FieldPath<'k> {
    /// The field's key in its object.
    fn key(self) -> &'k str {
        match self {
            FieldPath::Receipt(key) | FieldPath::Item(_, key) => key,
        }
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Receipt(key) => formatter.write_str(key),
            FieldPath::Item(index, key) => write!(formatter, "items[{index}].{key}"),
        }
    }
}

/// Collects the problems of one body.
pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: impl fmt::Display, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field.to_string(), code, message));
    }

    /// A string field: absent is `None` (reported if required), another type is reported.
    pub(super) fn string<'b>(
        &mut self,
        object: &'b Map<String, Value>,
        at: FieldPath<'_>,
        required: bool,
    ) -> Option<&'b str> {
        match object.get(at.key()) {
            None | Some(Value::Null) => {
                if required {
                    self.add(at, "required", "this field is required");
                }
                None
            }
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                self.add(at, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// An exact decimal from a JSON number or a numeric string.
    pub(super) fn decimal(
        &mut self,
        object: &Map<String, Value>,
        at: FieldPath<'_>,
        required: bool,
    ) -> Option<Decimal> {
        let literal = match object.get(at.key()) {
            None | Some(Value::Null) => {
                if required {
                    self.add(at, "required", "this field is required");
                }
                return None;
            }
            Some(Value::Number(number)) => number.as_str(),
            Some(Value::String(text)) => text.trim(),
            Some(_) => {
                self.add(at, "invalid_type", "must be a number or a numeric string");
                return None;
            }
        };
        let parsed = if literal.contains(['e', 'E']) {
            Decimal::from_scientific(literal).ok()
        } else if literal.is_empty() || literal.starts_with('+') {
            None
        } else {
            Decimal::from_str_exact(literal).ok()
        };
        match parsed {
            Some(value) => Some(value.normalize()),
            None => {
                self.add(at, "invalid_number", "must be a decimal number such as 10.99");
                None
            }
        }
    }

    /// Range and precision of an amount: at least `min_exclusive`/`min`, at most `max` and `scale` places.
    pub(super) fn check_amount(
        &mut self,
        at: FieldPath<'_>,
        value: Decimal,
        positive: bool,
        max: Decimal,
        scale: u32,
    ) {
        if positive && value <= Decimal::ZERO {
            self.add(at, "not_positive", "must be greater than 0");
        } else if value < Decimal::ZERO {
            self.add(at, "negative", "must not be negative");
        } else if value > max {
            self.add(at, "too_large", format!("must not exceed {max}"));
        } else if value.scale() > scale {
            self.add(
                at,
                "too_many_decimals",
                format!("must have at most {scale} decimal places"),
            );
        }
    }
}

/// Reports every string and key of the body that holds U+0000 (which PostgreSQL's `text` and `jsonb` cannot
/// store), at its path in the body, extra fields included.
pub(super) fn unstorable_text(body: &Map<String, Value>, problems: &mut Problems) {
    if body
        .iter()
        .any(|(key, value)| key.contains(NUL) || holds_nul(value))
    {
        unstorable_fields(body, "", problems);
    }
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(NUL),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(object) => object
            .iter()
            .any(|(key, item)| key.contains(NUL) || holds_nul(item)),
        _ => false,
    }
}

fn unstorable_value(value: &Value, path: &str, problems: &mut Problems) {
    match value {
        Value::String(text) if text.contains(NUL) => problems.add(path, "invalid_characters", NUL_MESSAGE),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                unstorable_value(item, &format!("{path}[{index}]"), problems);
            }
        }
        Value::Object(object) => unstorable_fields(object, path, problems),
        _ => {}
    }
}

fn unstorable_fields(object: &Map<String, Value>, path: &str, problems: &mut Problems) {
    for (key, item) in object {
        let name = escape_nul(key);
        let inner = if path.is_empty() {
            name.into_owned()
        } else {
            format!("{path}.{name}")
        };
        if key.contains(NUL) {
            problems.add(&inner, "invalid_characters", NUL_MESSAGE);
        }
        unstorable_value(item, &inner, problems);
    }
}

const NUL_MESSAGE: &str = "must not contain the character U+0000";
