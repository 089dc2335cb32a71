//! The receipt after validation, and the envelope it travels in over Kafka.
//!
//! Every amount is an exact decimal, serialised as a string so that no reader can turn it into binary
//! floating point on the way.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::money::round_cents;
use crate::domain::text::normalise_category;

/// Version of the envelope's JSON shape; also sent in the `schema-version` Kafka header.
pub const SCHEMA_VERSION: u32 = 1;
/// Name of the Kafka header that carries [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_HEADER: &str = "schema-version";
/// Name of the Kafka header that carries the reason a message went to the dead-letter topic.
pub const DLQ_REASON_HEADER: &str = "dlq-reason";

/// One line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub product_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// As the client sent it; [`LineItem::category_key`] is what analytics group by.
    pub category: String,
    /// Fields beyond the contract's, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl LineItem {
    /// quantity x price, rounded to cents half away from zero.
    pub fn amount(&self) -> Decimal {
        round_cents(self.quantity * self.price)
    }

    /// The category as analytics see it: trimmed and lower-cased.
    pub fn category_key(&self) -> String {
        normalise_category(&self.category)
    }
}

/// A validated receipt. Decimals are normalised (no trailing zeros) and the timestamp is in UTC, so two
/// submissions with the same meaning have the same [`Receipt::content_hash`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub transaction_id: String,
    pub place_id: String,
    pub place_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub items: Vec<LineItem>,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat_amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub tips_amount: Decimal,
    pub payment_method: String,
    /// Fields beyond the contract's, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Receipt {
    /// SHA-256 of the canonical JSON form: equal for receipts with the same content.
    pub fn content_hash(&self) -> String {
        self.document_and_hash().1
    }

    /// The canonical JSON form, as intake stores it, and its SHA-256 (the content hash), serialised once.
    pub fn document_and_hash(&self) -> (String, String) {
        let document = serde_json::to_string(self).unwrap_or_default();
        let hash = content_hash_of(&document);
        (document, hash)
    }
}

/// The content hash of a receipt's canonical JSON document: its SHA-256, in hex. Intake stores the document
/// as it hashed it, and the relay publishes it as stored, so the receipt of a published envelope hashes to
/// its content hash.
pub fn content_hash_of(document: &str) -> String {
    hex::encode(Sha256::digest(document.as_bytes()))
}

/// What the producer publishes: the receipt plus who sent it and when it was accepted. The relay fills it
/// with the receipt's document as stored at intake (`R` = [`RawValue`](serde_json::value::RawValue)), so
/// that it publishes what was accepted without reading it into a [`Receipt`], or into a tree, again; the
/// consumer reads it as a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEnvelope<R = Receipt> {
    pub schema_version: u32,
    pub merchant_id: String,
    pub received_at: DateTime<Utc>,
    pub receipt: R,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a receipt envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported schema version {0}")]
    UnsupportedVersion(u32),
}

impl<R: Serialize> ReceiptEnvelope<R> {
    pub fn new(merchant_id: String, received_at: DateTime<Utc>, receipt: R) -> Self {
        ReceiptEnvelope {
            schema_version: SCHEMA_VERSION,
            merchant_id,
            received_at,
            receipt,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ReceiptEnvelope {
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: ReceiptEnvelope = serde_json::from_slice(bytes)?;
        if envelope.schema_version != SCHEMA_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(envelope.schema_version));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn receipt() -> Receipt {
        Receipt {
            transaction_id: "t-1".into(),
            place_id: "p-1".into(),
            place_name: Some("Store ABC".into()),
            timestamp: DateTime::from_str("2024-02-07T12:34:56Z").expect("time"),
            items: vec![LineItem {
                product_id: "a".into(),
                quantity: Decimal::from_str("1.5").expect("dec"),
                price: Decimal::from_str("0.99").expect("dec"),
                category: " Groceries ".into(),
                extra: Map::new(),
            }],
            total_amount: Decimal::from_str("1.49").expect("dec"),
            vat_amount: Decimal::ZERO,
            tips_amount: Decimal::ZERO,
            payment_method: "cash".into(),
            extra: Map::new(),
        }
    }

    #[test]
    fn line_amount_is_rounded_half_away_from_zero() {
        assert_eq!(
            receipt().items[0].amount(),
            Decimal::from_str("1.49").expect("dec")
        );
        assert_eq!(receipt().items[0].category_key(), "groceries");
    }

    #[test]
    fn envelope_round_trips_exactly() {
        let envelope = ReceiptEnvelope::new("m-1".into(), Utc::now(), receipt());
        let parsed = ReceiptEnvelope::from_json(envelope.to_json().as_bytes()).expect("parse");
        assert_eq!(parsed, envelope);
        assert!(envelope.to_json().contains("\"price\":\"0.99\""));
    }

    #[test]
    fn the_relay_s_envelope_of_a_stored_document_reads_as_the_receipt_accepted() {
        let mut accepted = receipt();
        accepted.extra.insert("loyalty_card".into(), Value::from("L-77"));
        let (document, hash) = accepted.document_and_hash();
        assert_eq!(hash, accepted.content_hash());
        // A document stored as jsonb (before migration 000015) is written out with its own key order and spacing.
        let stored: Value = serde_json::from_str(&document).expect("a JSON document");
        let written_out = serde_json::value::RawValue::from_string(format!("{stored:#}")).expect("raw");
        let received_at = Utc::now();
        let published = ReceiptEnvelope::new("m-1".into(), received_at, written_out).to_json();
        let read = ReceiptEnvelope::from_json(published.as_bytes()).expect("an envelope");
        assert_eq!(read, ReceiptEnvelope::new("m-1".into(), received_at, accepted));
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let mut envelope = ReceiptEnvelope::new("m-1".into(), Utc::now(), receipt());
        envelope.schema_version = 99;
        assert!(ReceiptEnvelope::from_json(envelope.to_json().as_bytes()).is_err());
    }
}
