//! The receipt intake service: validates receipts, logs every attempt and hands accepted receipts to Kafka
//! through a transactional outbox.

pub mod config;
pub mod error;
pub mod intake;
pub mod relay;
pub mod routes;
pub mod startup;
pub mod validation;
