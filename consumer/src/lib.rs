//! The receipts consumer: reads receipts from Kafka, stores them idempotently, ties them to places and
//! merchants, and serves places and analytics.

pub mod analytics;
pub mod config;
pub mod console;
pub mod error;
pub mod fleet;
pub mod ingest;
pub mod routes;
pub mod startup;
pub mod timeseries;
