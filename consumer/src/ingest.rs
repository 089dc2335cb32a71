//! The Kafka consumer group: reads receipts in batches, stores each batch in one transaction, dead-letters
//! what cannot be parsed or stored, and enqueues recompute jobs for the hour buckets it wrote.
//!
//! Offsets: `enable.auto.offset.store` is off and a message's offset is stored only after its receipt is
//! committed in PostgreSQL (or dead-lettered). librdkafka commits the stored offsets every second, when
//! partitions are revoked in a rebalance, and at shutdown, so it never commits a message that is not stored,
//! and a rebalance or restart redelivers at most the last second's messages, which storing skips.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGaugeVec, Opts};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Statistics};
use shared_models::db::PgPool;
use shared_models::jobs::{self, AnalyticsJob, AnalyticsWork, HourBucket};
use shared_models::kafka;
use shared_models::queue::{self, AnalyticsQueue};
use shared_models::receipt::{ReceiptEnvelope, DLQ_REASON_HEADER};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ConsumerConfig, IngestConfig};
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(String),
}

/// The consumer group's lag, per partition: messages in Kafka not yet stored in PostgreSQL, refreshed from
/// librdkafka's statistics.
#[derive(Clone)]
pub struct LagReporter {
    lag: IntGaugeVec,
}

impl LagReporter {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let lag = IntGaugeVec::new(
            Opts::new(
                "lag_messages",
                "Messages of an assigned partition not yet stored (high watermark minus stored offset)",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        Ok(LagReporter { lag })
    }
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for (topic, topic_statistics) in &statistics.topics {
            for partition in topic_statistics.partitions.values() {
                if partition.partition < 0 {
                    continue;
                }
                let number = partition.partition.to_string();
                let labels = [topic.as_str(), number.as_str()];
                match partition_lag(partition) {
                    Some(lag) => self.lag.with_label_values(&labels).set(lag),
                    None => {
                        let _ = self.lag.remove_label_values(&labels);
                    }
                }
            }
        }
    }
}

/// Messages of a partition this consumer has not stored yet, counted from the stored offset, else the
/// committed one, else the low watermark (where `auto.offset.reset=earliest` starts); `None` for a partition
/// not assigned to this consumer. librdkafka writes -1 for an offset it does not know.
fn partition_lag(partition: &rdkafka::statistics::Partition) -> Option<i64> {
    if matches!(partition.fetch_state.as_str(), "none" | "stopped") || partition.hi_offset < 0 {
        return None;
    }
    let next = [
        partition.stored_offset,
        partition.committed_offset,
        partition.lo_offset,
    ]
    .into_iter()
    .find(|offset| *offset >= 0)
    .unwrap_or(0);
    Some((partition.hi_offset - next).max(0))
}

impl ConsumerContext for LagReporter {}

/// Everything the loop needs.
pub struct Ingest {
    consumer: StreamConsumer<LagReporter>,
    dead_letters: FutureProducer,
    dlq_topic: String,
    pool: PgPool,
    queue: Option<AnalyticsQueue>,
    redis_url: String,
    queue_name: String,
    config: IngestConfig,
}

impl Ingest {
    pub async fn connect(
        config: &ConsumerConfig,
        pool: PgPool,
        lag: LagReporter,
    ) -> Result<Self, IngestError> {
        let brokers = &config.kafka.kafka_brokers;
        kafka::ensure_topics(
            brokers,
            &[
                (config.kafka.kafka_topic.as_str(), config.kafka.kafka_partitions),
                (config.kafka.kafka_dlq_topic.as_str(), 1),
            ],
        )
        .await?;
        let consumer: StreamConsumer<LagReporter> = kafka::client_config(brokers)
            .set("group.id", &config.ingest.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "statistics.interval.ms",
                config.ingest.lag_interval_ms.to_string(),
            )
            .create_with_context(lag)?;
        consumer.subscribe(&[config.kafka.kafka_topic.as_str()])?;
        let dead_letters: FutureProducer = kafka::client_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        Ok(Ingest {
            consumer,
            dead_letters,
            dlq_topic: config.kafka.kafka_dlq_topic.clone(),
            pool,
            queue: None,
            redis_url: config.redis.redis_url.clone(),
            queue_name: config.redis.analytics_queue.clone(),
            config: config.ingest.clone(),
        })
    }

    /// Consumes until `shutdown` turns true. A batch in progress is finished and committed first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let first = tokio::select! {
                message = self.consumer.recv() => message,
                _ = shutdown.changed() => break,
            };
            let mut batch = Vec::with_capacity(self.config.batch_size);
            match first {
                Ok(message) => batch.push(message.detach()),
                Err(error) => {
                    log::warn!("Kafka receive failed: {error}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let deadline = Instant::now() + Duration::from_millis(self.config.batch_ms);
            while batch.len() < self.config.batch_size {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(Ok(message)) => batch.push(message.detach()),
                    Ok(Err(error)) => {
                        log::warn!("Kafka receive failed: {error}");
                        break;
                    }
                    Err(_) => break,
                }
            }
            if let Err(error) = self.process(&batch).await {
                log::error!("batch not processed, it will be redelivered: {error}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            for message in &batch {
                if let Err(error) =
                    self.consumer
                        .store_offset(message.topic(), message.partition(), message.offset())
                {
                    log::warn!(
                        "offset not stored (partition revoked?); the message may be redelivered: {error}"
                    );
                }
            }
        }
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            log::warn!("final offset commit failed; the last messages may be redelivered: {error}");
        }
        log::info!("Kafka consumer stopped");
    }

    /// Stores a batch; returns only when every message is stored or dead-lettered.
    async fn process(&mut self, batch: &[OwnedMessage]) -> Result<(), IngestError> {
        let mut messages = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::with_capacity(batch.len());
        for message in batch {
            match ReceiptEnvelope::from_json(message.payload().unwrap_or_default()) {
                Ok(envelope) => {
                    messages.push(message);
                    envelopes.push(envelope);
                }
                Err(error) => self.dead_letter(message, &error.to_string()).await?,
            }
        }
        let envelopes: Arc<[ReceiptEnvelope]> = envelopes.into();
        let mut touched = BTreeSet::new();
        match self.store_with_retries(envelopes.clone()).await {
            Ok(buckets) => touched.extend(buckets),
            Err(error) => {
                log::warn!(
                    "batch of {} receipts failed to store ({error}); storing one by one",
                    envelopes.len()
                );
                for (message, envelope) in messages.into_iter().zip(envelopes.iter()) {
                    match self.store_with_retries(Arc::from([envelope.clone()])).await {
                        Ok(buckets) => touched.extend(buckets),
                        Err(error) => self.dead_letter(message, &error).await?,
                    }
                }
            }
        }
        if !touched.is_empty() {
            self.enqueue_recompute(touched.into_iter().collect()).await;
        }
        Ok(())
    }

    /// Stores the receipts in one transaction, retrying with back-off up to `CONSUMER_STORE_ATTEMPTS` times.
    async fn store_with_retries(
        &self,
        envelopes: Arc<[ReceiptEnvelope]>,
    ) -> Result<BTreeSet<HourBucket>, String> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let pool = self.pool.clone();
            let batch = Arc::clone(&envelopes);
            let result = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|error| error.to_string())?;
                store::store_receipts(&mut conn, &batch).map_err(|error| error.to_string())
            })
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result);
            match result {
                Ok(buckets) => return Ok(buckets),
                Err(error) if attempt >= self.config.store_attempts => return Err(error),
                Err(error) => {
                    log::warn!("storing receipts failed (attempt {attempt}): {error}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
            }
        }
    }

    async fn dead_letter(&self, message: &OwnedMessage, reason: &str) -> Result<(), IngestError> {
        log::warn!(
            "dead-lettering message at {}/{}@{}: {reason}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let headers = OwnedHeaders::new().insert(Header {
            key: DLQ_REASON_HEADER,
            value: Some(reason),
        });
        let mut record = FutureRecord::to(&self.dlq_topic)
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        self.dead_letters
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(error, _)| IngestError::Kafka(error))
    }

    /// Best effort: a job that cannot be enqueued is caught up by the hourly reconcile.
    async fn enqueue_recompute(&mut self, buckets: Vec<HourBucket>) {
        let job = AnalyticsJob::new(AnalyticsWork::Buckets { buckets });
        if self.queue.is_none() {
            match queue::connect(&self.redis_url, &self.queue_name).await {
                Ok(connected) => self.queue = Some(connected),
                Err(error) => {
                    log::warn!("cannot reach the job queue ({error}); the hourly reconcile will catch up");
                    return;
                }
            }
        }
        let Some(analytics_queue) = self.queue.as_mut() else {
            return;
        };
        let pool = self.pool.clone();
        let record = job.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|error| error.to_string())?;
            jobs::record_queued(&mut conn, &record).map_err(|error| error.to_string())
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            log::warn!("could not record recompute job {}", job.job_id);
        }
        if let Err(error) = queue::enqueue(analytics_queue, job).await {
            log::warn!("could not enqueue a recompute job ({error}); the hourly reconcile will catch up");
            self.queue = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition as librdkafka's statistics describe it, with the offsets that matter here.
    fn partition(fetch_state: &str, offsets: [i64; 4]) -> rdkafka::statistics::Partition {
        let [stored, committed, lo, hi] = offsets;
        let mut fields = serde_json::json!({
            "partition": 0, "broker": 1, "leader": 1, "desired": true, "unknown": false,
            "fetch_state": fetch_state, "stored_offset": stored, "committed_offset": committed,
            "lo_offset": lo, "hi_offset": hi,
        });
        for unset in [
            "msgq_cnt",
            "msgq_bytes",
            "xmit_msgq_cnt",
            "xmit_msgq_bytes",
            "fetchq_cnt",
            "fetchq_size",
            "query_offset",
            "next_offset",
            "app_offset",
            "eof_offset",
            "ls_offset",
            "consumer_lag",
            "consumer_lag_stored",
            "txmsgs",
            "txbytes",
            "rxmsgs",
            "rxbytes",
            "msgs",
            "rx_ver_drops",
            "msgs_inflight",
            "next_ack_seq",
            "next_err_seq",
            "acked_msgid",
        ] {
            fields[unset] = serde_json::json!(0);
        }
        serde_json::from_value(fields).expect("a partition's statistics")
    }

    #[test]
    fn lag_counts_from_the_stored_offset_then_the_committed_one_then_the_low_watermark() {
        assert_eq!(partition_lag(&partition("active", [40, 30, 0, 100])), Some(60));
        assert_eq!(partition_lag(&partition("active", [-1, 30, 0, 100])), Some(70));
        assert_eq!(partition_lag(&partition("active", [-1, -1, 20, 100])), Some(80));
        assert_eq!(partition_lag(&partition("active", [-1, -1, -1, 0])), Some(0));
        assert_eq!(
            partition_lag(&partition("none", [40, 30, 0, 100])),
            None,
            "not assigned here"
        );
        assert_eq!(
            partition_lag(&partition("active", [40, 30, 0, -1])),
            None,
            "watermark unknown"
        );
    }
}
