//! The loop's trouble, counted on `/metrics`.

use prometheus::{IntCounter, IntCounterVec, Opts};

/// Counters of the loop's trouble, on `/metrics`.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Attempts to store a batch that failed and were retried.
    pub(super) store_retries: IntCounter,
    /// Messages sent to the dead-letter topic, by reason.
    pub(super) dead_letters: IntCounterVec,
    /// Failed sends to the dead-letter topic (the loop waits and sends again; it never skips the message).
    pub(super) dead_letter_failures: IntCounter,
    /// Times the loop joined the group again after holding no partition, or seeing another member's partition
    /// stand still, for too long.
    pub(super) rejoins: IntCounter,
    /// Times a partition went on past messages it had not delivered, and was sought back.
    pub(super) gaps: IntCounter,
}

impl IngestMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let store_retries = IntCounter::new(
            "store_retries_total",
            "Attempts to store a batch of receipts that failed and were retried",
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "dead_letters_total",
                "Messages sent to the dead-letter topic, by reason",
            ),
            &["reason"],
        )?;
        let dead_letter_failures = IntCounter::new(
            "dead_letter_failures_total",
            "Sends to the dead-letter topic that failed and were retried",
        )?;
        let rejoins = IntCounter::new(
            "group_rejoins_total",
            "Times the consumer joined its group again after holding no partition, or seeing another member's partition stand still, for longer than a session",
        )?;
        let gaps = IntCounter::new(
            "offset_gaps_total",
            "Times a partition went on past messages it had not delivered and was sought back",
        )?;
        registry.register(Box::new(rejoins.clone()))?;
        registry.register(Box::new(gaps.clone()))?;
        registry.register(Box::new(store_retries.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(dead_letter_failures.clone()))?;
        Ok(IngestMetrics {
            store_retries,
            dead_letters,
            dead_letter_failures,
            rejoins,
            gaps,
        })
    }
}
