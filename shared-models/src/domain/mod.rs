//! The domain: plain Rust types and rules, with no web framework, database or document generator in them.

pub mod field_error;
pub mod text;
pub mod time;

pub use field_error::FieldError;
