//! What the producer, the consumer and the worker share: the database schema and its migrations, the
//! receipt as it travels over Kafka, analytics job payloads, API tokens, and (behind features) the HTTP,
//! Kafka and queue plumbing that more than one service needs.

pub mod config;
pub mod domain;
pub mod report;
pub mod store;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "http")]
pub mod web;
