//! The domain: plain Rust types and rules, with no web framework, database or document generator in them.

pub mod auth;
pub mod field_error;
pub mod jobs;
pub mod money;
pub mod receipt;
pub mod rollup;
pub mod text;
pub mod time;

pub use field_error::FieldError;
