//! What is wrong with one field of a request body.

use serde::Serialize;

/// One failing field: a path into the body, a machine code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(paperclip::actix::Apiv2Schema))]
pub struct FieldError {
    /// Path into the body, such as `items[2].quantity`.
    pub field: String,
    /// Machine-readable rule, such as `too_many_decimals` or `total_mismatch`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}
