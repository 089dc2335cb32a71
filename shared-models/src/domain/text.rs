//! Rules for text that comes from clients.

use std::borrow::Cow;

/// The character PostgreSQL's `text` and `jsonb` cannot hold.
pub const NUL: char = '\0';

/// The text with every U+0000 written as the JSON escape `\u0000`, so that it can be stored and logged.
pub fn escape_nul(text: &str) -> Cow<'_, str> {
    if text.contains(NUL) {
        Cow::Owned(text.replace(NUL, "\\u0000"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A JSON value with U+0000 escaped in every string and key.
pub fn escape_nul_in_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(escape_nul(text).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(escape_nul_in_json).collect()),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (escape_nul(key).into_owned(), escape_nul_in_json(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A JSON Schema pattern for text without control characters, as [`text_problem`] requires.
pub const NO_CONTROL_CHARACTERS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// A JSON Schema pattern for text without control characters that is not blank, as [`text_problem`]
/// requires when `min` is 1.
pub const NOT_BLANK: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// What is wrong with a piece of text that must have `min` to `max` characters and no control characters
/// (U+0000 among them): a machine code and a message, or `None` when it is fine.
pub fn text_problem(value: &str, min: usize, max: usize) -> Option<(&'static str, String)> {
    let chars = value.chars().count();
    if value.chars().any(char::is_control) {
        Some((
            "invalid_characters",
            "must not contain control characters (U+0000 among them)".to_owned(),
        ))
    } else if chars < min || (min > 0 && value.trim().is_empty()) {
        Some(("too_short", format!("must have at least {min} character(s)")))
    } else if chars > max {
        Some(("too_long", format!("must have at most {max} characters")))
    } else {
        None
    }
}

/// Trims and lower-cases a category name, as analytics group by it.
pub fn normalise_category(category: &str) -> String {
    category.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_must_fit_its_length_and_hold_no_control_characters() {
        assert_eq!(text_problem("ok", 1, 5), None);
        assert_eq!(
            text_problem("a\0b", 1, 5).map(|p| p.0),
            Some("invalid_characters")
        );
        assert_eq!(text_problem("   ", 1, 5).map(|p| p.0), Some("too_short"));
        assert_eq!(text_problem("toolong", 1, 5).map(|p| p.0), Some("too_long"));
        assert_eq!(text_problem("", 0, 5), None);
    }

    #[test]
    fn nul_is_escaped_in_text_and_in_every_string_and_key_of_json() {
        assert_eq!(escape_nul("ab\0cd"), "ab\\u0000cd");
        assert!(matches!(escape_nul("plain"), Cow::Borrowed("plain")));
        let escaped = escape_nul_in_json(&json!({ "k\0": ["v\0", 1, { "n": "\0" }] }));
        assert_eq!(
            escaped,
            json!({ "k\\u0000": ["v\\u0000", 1, { "n": "\\u0000" }] })
        );
    }
}
