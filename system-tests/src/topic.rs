//! Writing receipts straight to the topic, keyed by place as the producer's relay writes them (the ingest
//! tests, the drain benchmark).

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use shared_models::domain::receipt::ReceiptEnvelope;

/// Publishes the envelopes, all in flight at once, and waits until the broker acknowledged every one (each
/// within `timeout`).
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    envelopes: impl IntoIterator<Item = ReceiptEnvelope>,
    timeout: Duration,
) {
    let sends = envelopes.into_iter().map(|envelope| async move {
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&envelope.receipt.place_id)
                    .payload(&envelope.to_json()),
                timeout,
            )
            .await
            .map_err(|(error, _)| error)
            .expect("the broker acknowledges the receipt");
    });
    futures::future::join_all(sends).await;
}
