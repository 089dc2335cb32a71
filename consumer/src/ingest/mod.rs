//! The Kafka consumer group: reads receipts in batches, stores each batch in one transaction, dead-letters
//! what cannot be parsed or stored, and enqueues recompute jobs for the hour buckets it wrote.
//!
//! Offsets: `enable.auto.offset.store` is off and a message's offset is stored only after its receipt is
//! committed in PostgreSQL (or dead-lettered). librdkafka commits the stored offsets every second, when
//! partitions are revoked in a rebalance, and at shutdown, so it never commits a message that is not stored,
//! and a rebalance or restart redelivers at most the last second's messages, which storing skips.
//!
//! Faults: the loop never moves past a batch it has not stored. While PostgreSQL is unreachable it waits and
//! retries for as long as it takes; a receipt that fails while PostgreSQL answers is dead-lettered, and a
//! dead-letter topic that cannot be reached is retried too. A broker that came back without its topics gets
//! them created again.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use shared_models::domain::receipt::ReceiptEnvelope;
use shared_models::kafka;
use shared_models::queue::AnalyticsQueue;
use shared_models::store::PgPool;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ConsumerConfig, IngestConfig};
use crate::error::ConsumerError;

mod context;
mod membership;
mod metrics;
mod pending;
mod positions;
mod storing;

pub use context::LagReporter;
use membership::Stalled;
pub use metrics::IngestMetrics;
use pending::PendingChecks;
use positions::Positions;

/// The loop was asked to stop before the batch was stored; its offsets stay unstored, so the batch is
/// delivered again after the restart.
#[derive(Debug)]
struct Stopped;

/// Waits `delay`, or less if the loop is asked to stop.
async fn pause(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> Result<(), Stopped> {
    if *shutdown.borrow() {
        return Err(Stopped);
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = shutdown.changed() => Err(Stopped),
    }
}

/// How long an idle loop waits for a message before it looks at its assignment.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// How much longer than a session a member may hold no partition, or see another member's partition stand
/// still, before it joins again.
const REJOIN_MARGIN: Duration = Duration::from_secs(15);
/// How often the loop looks at the partitions other members hold.
const GROUP_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Exponential back-off from 100 ms to 5 s.
fn next_delay(delay: Duration) -> Duration {
    (delay * 2).min(Duration::from_secs(5))
}

/// Which of `shards` transactions stores a merchant's receipts: always the same one for a merchant, so two
/// transactions of a batch never write the same merchant's or place's rows.
fn shard_of(merchant_id: &str, shards: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    merchant_id.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// Whether a batch of `len` messages that took `waited` to gather shows the consumer behind intake: it filled
/// up within a quarter of its longest wait, so its messages were already waiting. A batch gathered as
/// messages arrive fills later, or closes at its deadline before it is full.
fn is_behind(len: usize, waited: Duration, config: &IngestConfig) -> bool {
    len >= config.batch_size && waited < config.batch_wait() / 4
}

/// A new member of the consumer group, subscribed to the receipts topic.
fn join_group(
    member: &ClientConfig,
    topic: &str,
    lag: &LagReporter,
) -> Result<StreamConsumer<LagReporter>, KafkaError> {
    let consumer: StreamConsumer<LagReporter> = member.create_with_context(lag.clone())?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Everything the loop needs.
pub struct Ingest {
    consumer: StreamConsumer<LagReporter>,
    /// How a member of the group is configured, to join again as a new member when the group stalls.
    member: ClientConfig,
    topic: String,
    lag: LagReporter,
    /// The offset each partition's next message must have.
    positions: Positions,
    /// Partitions other members hold that have not moved on, and since when (see `watch_group`).
    stalled: Stalled,
    dead_letters: FutureProducer,
    dlq_topic: String,
    brokers: String,
    topics: Vec<(String, i32)>,
    pool: PgPool,
    queue: Option<AnalyticsQueue>,
    /// Buckets written whose recompute job is not queued yet (it waits for the interval, or for Redis).
    pending: PendingChecks,
    /// When the last recompute job was queued.
    last_recompute: Option<Instant>,
    redis_url: String,
    queue_name: String,
    config: IngestConfig,
    metrics: IngestMetrics,
}

impl Ingest {
    pub async fn connect(
        config: &ConsumerConfig,
        pool: PgPool,
        lag: LagReporter,
        metrics: IngestMetrics,
    ) -> Result<Self, ConsumerError> {
        let brokers = &config.kafka.kafka_brokers;
        let topics = vec![
            (config.kafka.kafka_topic.clone(), config.kafka.kafka_partitions),
            (config.kafka.kafka_dlq_topic.clone(), 1),
        ];
        // A broker that is down now is not a reason to stop: the loop creates missing topics when it finds
        // them missing.
        if let Err(error) = kafka::ensure_topics(brokers, &topics).await {
            log::warn!("cannot make sure the receipts topics exist yet: {error}");
        }
        let mut member = kafka::client_config(brokers);
        member
            .set("group.id", &config.ingest.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", config.ingest.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (config.ingest.session_timeout_ms / 10).to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "10000")
            // librdkafka prefetches up to 64 MB by default, which a backlog fills: 8 MB is still more than
            // ten batches of receipts ahead (two seconds of a drain), and keeps the process under 100 MB.
            .set("queued.max.messages.kbytes", "8192")
            .set(
                "statistics.interval.ms",
                config.ingest.lag_interval_ms.to_string(),
            );
        let topic = config.kafka.kafka_topic.clone();
        let consumer = join_group(&member, &topic, &lag)?;
        // A send that the broker cannot take fails after 10 s (librdkafka waits 5 minutes by default), so the
        // loop logs it, counts it and tries again, instead of sitting silent.
        let dead_letters: FutureProducer = kafka::client_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(Ingest {
            consumer,
            member,
            topic,
            lag,
            positions: Positions::default(),
            stalled: Stalled::default(),
            dead_letters,
            dlq_topic: config.kafka.kafka_dlq_topic.clone(),
            brokers: brokers.clone(),
            topics,
            pool,
            queue: None,
            pending: PendingChecks::default(),
            last_recompute: None,
            redis_url: config.redis.redis_url.clone(),
            queue_name: config.redis.analytics_queue.clone(),
            config: config.ingest.clone(),
            metrics,
        })
    }

    /// Consumes until `shutdown` turns true. A batch is stored (or dead-lettered) whole before its offsets
    /// are stored; a batch interrupted by the shutdown is left for redelivery.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut topics_checked = Instant::now();
        let mut unassigned_since = Some(Instant::now());
        let mut group_checked = Instant::now();
        while !*shutdown.borrow() {
            if group_checked.elapsed() >= GROUP_CHECK_INTERVAL {
                group_checked = Instant::now();
                self.watch_group();
            }
            let wait = self
                .recompute_due_in()
                .map_or(WATCH_INTERVAL, |due| due.min(WATCH_INTERVAL));
            let first = tokio::select! {
                message = tokio::time::timeout(wait, self.consumer.recv()) => message,
                _ = shutdown.changed() => break,
            };
            let mut batch = Vec::with_capacity(self.config.batch_size);
            match first {
                Ok(Ok(message)) => {
                    unassigned_since = None;
                    batch.push(message.detach());
                }
                Ok(Err(error)) => {
                    log::warn!("Kafka receive failed: {error}");
                    self.recreate_missing_topics(&error, &mut topics_checked).await;
                    if pause(Duration::from_millis(500), &mut shutdown).await.is_err() {
                        break;
                    }
                    continue;
                }
                Err(_) => {
                    if self.recompute_due_in() == Some(Duration::ZERO) {
                        self.enqueue_recompute(BTreeSet::new(), Utc::now()).await;
                    }
                    self.watch_assignment(&mut unassigned_since);
                    continue;
                }
            }
            let opened = Instant::now();
            let deadline = opened + self.config.batch_wait();
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
            let behind = is_behind(batch.len(), opened.elapsed(), &self.config);
            let batch = self.in_order(batch);
            if self.process(&batch, behind, &mut shutdown).await.is_err() {
                log::info!(
                    "stopping with a batch of {} unstored; it will be delivered again",
                    batch.len()
                );
                break;
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
        if !self.pending.is_empty() {
            self.last_recompute = None;
            self.enqueue_recompute(BTreeSet::new(), Utc::now()).await;
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Every stored offset was committed already (librdkafka commits them every few seconds).
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                log::warn!("final offset commit failed; the last messages may be redelivered: {error}");
            }
        }
        log::info!("Kafka consumer stopped");
    }

    /// Stores a batch. Returns only when every message is stored or dead-lettered, or when the loop is asked
    /// to stop. When the consumer is `behind` (a backlog), the batch is split by merchant into
    /// `CONSUMER_STORE_SHARDS` transactions stored at the same time: they share no merchant and no place, so
    /// they only meet on the totals' rollup rows, which every writer takes last and in key order. Keeping up
    /// with intake, a batch is one transaction, which leaves the other cores to intake. While PostgreSQL is
    /// unreachable it waits and tries again, for as long as it takes; a receipt that fails while PostgreSQL
    /// answers is tried on its own and, if it keeps failing, dead-lettered.
    async fn process(
        &mut self,
        batch: &[OwnedMessage],
        behind: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stopped> {
        let started = Utc::now();
        let shards = if behind {
            usize::from(self.config.store_shards)
        } else {
            1
        };
        let mut parts: Vec<(Vec<&OwnedMessage>, Vec<ReceiptEnvelope>)> =
            (0..shards).map(|_| (Vec::new(), Vec::new())).collect();
        for message in batch {
            match ReceiptEnvelope::from_json(message.payload().unwrap_or_default()) {
                Ok(envelope) => {
                    let part = &mut parts[shard_of(&envelope.merchant_id, shards)];
                    part.0.push(message);
                    part.1.push(envelope);
                }
                Err(error) => {
                    self.dead_letter(message, "unreadable", &error.to_string(), shutdown)
                        .await?
                }
            }
        }
        let parts: Vec<(Vec<&OwnedMessage>, Arc<[ReceiptEnvelope]>)> = parts
            .into_iter()
            .filter(|(messages, _)| !messages.is_empty())
            .map(|(messages, envelopes)| (messages, envelopes.into()))
            .collect();
        let this = &*self;
        let stored = futures::future::join_all(parts.iter().map(|(_, envelopes)| {
            let mut shutdown = shutdown.clone();
            async move { this.store(Arc::clone(envelopes), &mut shutdown).await }
        }))
        .await;
        let mut touched = BTreeSet::new();
        for ((messages, envelopes), result) in parts.into_iter().zip(stored) {
            match result? {
                Ok(buckets) => touched.extend(buckets),
                Err(error) => {
                    log::warn!(
                        "batch of {} receipts failed to store while PostgreSQL answers ({error}); storing one by one",
                        envelopes.len()
                    );
                    touched.extend(self.store_one_by_one(&messages, &envelopes, shutdown).await?);
                }
            }
        }
        if !touched.is_empty() || !self.pending.is_empty() {
            self.enqueue_recompute(touched, started).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{is_behind, shard_of};
    use crate::config::IngestConfig;

    #[test]
    fn only_a_batch_that_was_waiting_whole_shows_the_consumer_behind() {
        let config = IngestConfig {
            group_id: "receipts-consumer".into(),
            batch_size: 500,
            batch_ms: 100,
            store_shards: 2,
            store_attempts: 5,
            session_timeout_ms: 30000,
            lag_interval_ms: 5000,
            recompute_interval_ms: 10000,
        };
        let ms = Duration::from_millis;
        assert!(is_behind(500, ms(2), &config), "a backlog: full at once");
        assert!(!is_behind(500, ms(80), &config), "full as messages arrived");
        assert!(!is_behind(300, ms(100), &config), "closed at its deadline");
        assert!(!is_behind(3, ms(1), &config), "a few messages, gathered at once");
    }

    #[test]
    fn a_merchant_always_goes_to_the_same_shard_and_merchants_spread_over_all_shards() {
        let merchants: Vec<String> = (0..100).map(|n| format!("merchant-{n}")).collect();
        let first: Vec<usize> = merchants.iter().map(|m| shard_of(m, 3)).collect();
        let again: Vec<usize> = merchants.iter().map(|m| shard_of(m, 3)).collect();
        assert_eq!(first, again);
        for shard in 0..3 {
            let count = first.iter().filter(|&&s| s == shard).count();
            assert!(count >= 20, "shard {shard} got {count} of 100 merchants");
        }
        assert!(merchants.iter().all(|m| shard_of(m, 1) == 0));
    }
}
