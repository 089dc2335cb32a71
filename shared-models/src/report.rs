//! How errors are told: an error with every cause behind it, for the log and for a process's last words.

use std::error::Error;

/// `outer: inner: root`, following [`Error::source`] to the end.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_told_in_order() {
        let error = Outer(std::io::Error::other("port 8000 in use"));
        assert_eq!(chain(&error), "cannot start: port 8000 in use");
    }
}
