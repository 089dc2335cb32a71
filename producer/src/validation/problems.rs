//! Collecting every problem of a body: typed reads of its fields and the characters PostgreSQL cannot store.

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use shared_models::domain::text::{escape_nul, NUL};
use shared_models::domain::FieldError;

/// Collects the problems of one body.
pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// A string field: absent is `None` (reported if required), another type is reported.
    pub(super) fn string(
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
    pub(super) fn decimal(
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
    pub(super) fn check_amount(
        &mut self,
        path: &str,
        value: Decimal,
        positive: bool,
        max: Decimal,
        scale: u32,
    ) {
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

/// Reports every string and key that holds U+0000 (which PostgreSQL's `text` and `jsonb` cannot store), at
/// its path in the body, extra fields included.
pub(super) fn unstorable_text(value: &Value, path: &str, problems: &mut Problems) {
    match value {
        Value::String(text) if text.contains(NUL) => problems.add(path, "invalid_characters", NUL_MESSAGE),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                unstorable_text(item, &format!("{path}[{index}]"), problems);
            }
        }
        Value::Object(object) => unstorable_fields(object, path, problems),
        _ => {}
    }
}

pub(super) fn unstorable_fields(object: &Map<String, Value>, path: &str, problems: &mut Problems) {
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
        unstorable_text(item, &inner, problems);
    }
}

const NUL_MESSAGE: &str = "must not contain the character U+0000";
