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
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use shared_models::db::{self, PgPool};
use shared_models::jobs::{self, AnalyticsJob, AnalyticsWork, HourBucket};
use shared_models::kafka;
use shared_models::queue::{self, AnalyticsQueue};
use shared_models::receipt::{ReceiptEnvelope, DLQ_REASON_HEADER};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ConsumerConfig, IngestConfig};
use crate::store;

mod context;
mod positions;

pub use context::LagReporter;
use positions::{Admission, Positions};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(String),
}

/// Counters of the loop's trouble, on `/metrics`.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Attempts to store a batch that failed and were retried.
    store_retries: IntCounter,
    /// Messages sent to the dead-letter topic, by reason.
    dead_letters: IntCounterVec,
    /// Failed sends to the dead-letter topic (the loop waits and sends again; it never skips the message).
    dead_letter_failures: IntCounter,
    /// Times the loop joined the group again after holding no partition for too long.
    rejoins: IntCounter,
    /// Times a partition went on past messages it had not delivered, and was sought back.
    gaps: IntCounter,
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
            "Times the consumer joined its group again after holding no partition for longer than a session",
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
/// How much longer than a session a member may hold no partition before it joins again.
const REJOIN_MARGIN: Duration = Duration::from_secs(15);

/// Exponential back-off from 100 ms to 5 s.
fn next_delay(delay: Duration) -> Duration {
    (delay * 2).min(Duration::from_secs(5))
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
    dead_letters: FutureProducer,
    dlq_topic: String,
    brokers: String,
    topics: Vec<(String, i32)>,
    pool: PgPool,
    queue: Option<AnalyticsQueue>,
    /// Buckets written whose recompute job could not be queued yet.
    pending: BTreeSet<HourBucket>,
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
    ) -> Result<Self, IngestError> {
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
            dead_letters,
            dlq_topic: config.kafka.kafka_dlq_topic.clone(),
            brokers: brokers.clone(),
            topics,
            pool,
            queue: None,
            pending: BTreeSet::new(),
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
        while !*shutdown.borrow() {
            let first = tokio::select! {
                message = tokio::time::timeout(WATCH_INTERVAL, self.consumer.recv()) => message,
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
                    self.watch_assignment(&mut unassigned_since);
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
            let batch = self.in_order(batch);
            if self.process(&batch, &mut shutdown).await.is_err() {
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
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            log::warn!("final offset commit failed; the last messages may be redelivered: {error}");
        }
        log::info!("Kafka consumer stopped");
    }

    /// The messages of a batch that follow on from what each partition has delivered; a partition that skipped
    /// messages is sought back, and its messages after the gap wait for the re-read.
    fn in_order(&mut self, batch: Vec<OwnedMessage>) -> Vec<OwnedMessage> {
        if self.lag.take_rebalanced() {
            self.positions.reset();
        }
        let mut rewound = Vec::new();
        let mut kept = Vec::with_capacity(batch.len());
        for message in batch {
            let partition = message.partition();
            if rewound.contains(&partition) {
                continue;
            }
            if self.positions.expected(partition).is_none() {
                if let Some(start) = self.committed(message.topic(), partition) {
                    self.positions.start(partition, start);
                }
            }
            match self.positions.admit(partition, message.offset()) {
                Admission::Take => kept.push(message),
                Admission::Rewind(offset) => {
                    self.metrics.gaps.inc();
                    log::warn!(
                        "partition {partition} went on at offset {} where {:?} was expected: seeking back to {offset}",
                        message.offset(),
                        self.positions.expected(partition)
                    );
                    if let Err(error) = self.consumer.seek(
                        message.topic(),
                        partition,
                        Offset::Offset(offset),
                        Duration::from_secs(5),
                    ) {
                        log::warn!("cannot seek partition {partition} back yet: {error}");
                    }
                    rewound.push(partition);
                }
            }
        }
        kept
    }

    /// Where the group left a partition: its committed offset, or its first offset when nothing is committed
    /// (`auto.offset.reset=earliest`). `None` when the broker cannot say right now.
    fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(topic, partition);
        let committed = self
            .consumer
            .committed_offsets(wanted, Duration::from_secs(5))
            .ok()?
            .find_partition(topic, partition)?
            .offset();
        match committed {
            Offset::Offset(offset) => Some(offset),
            _ => self
                .consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))
                .ok()
                .map(|(low, _)| low),
        }
    }

    /// The watchdog of an idle loop. A member that has held no partition for longer than a session (plus a
    /// margin for the rebalance) joins the group again as a new member. tansu 0.6 can leave a group without
    /// a leader when its leader dies, and its other members then wait for ever (docs/reliability.md); a new
    /// member's join forms the group again.
    fn watch_assignment(&mut self, unassigned_since: &mut Option<Instant>) {
        let assigned = self.consumer.assignment().map(|list| list.count()).unwrap_or(0);
        if assigned > 0 {
            *unassigned_since = None;
            return;
        }
        let since = *unassigned_since.get_or_insert_with(Instant::now);
        let limit = Duration::from_millis(self.config.session_timeout_ms) + REJOIN_MARGIN;
        if since.elapsed() < limit {
            return;
        }
        log::warn!(
            "no partition assigned for {:?}; joining the consumer group again as a new member",
            since.elapsed()
        );
        match join_group(&self.member, &self.topic, &self.lag) {
            Ok(consumer) => {
                self.metrics.rejoins.inc();
                self.consumer = consumer;
                self.positions.reset();
            }
            Err(error) => log::warn!("cannot join the consumer group again yet: {error}"),
        }
        *unassigned_since = Some(Instant::now());
    }

    /// A broker that came back empty has lost its topics: create them again (at most every 10 seconds).
    async fn recreate_missing_topics(&self, error: &KafkaError, checked: &mut Instant) {
        let missing = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        );
        if missing && checked.elapsed() >= Duration::from_secs(10) {
            *checked = Instant::now();
            match kafka::ensure_topics(&self.brokers, &self.topics).await {
                Ok(()) => log::info!("the receipts topics exist again"),
                Err(error) => log::warn!("cannot create the receipts topics yet: {error}"),
            }
        }
    }

    /// Stores a batch. Returns only when every message is stored or dead-lettered, or when the loop is asked
    /// to stop. While PostgreSQL is unreachable it waits and tries again, for as long as it takes; a receipt
    /// that fails while PostgreSQL answers is tried on its own and, if it keeps failing, dead-lettered.
    async fn process(
        &mut self,
        batch: &[OwnedMessage],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stopped> {
        let mut messages = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::with_capacity(batch.len());
        for message in batch {
            match ReceiptEnvelope::from_json(message.payload().unwrap_or_default()) {
                Ok(envelope) => {
                    messages.push(message);
                    envelopes.push(envelope);
                }
                Err(error) => {
                    self.dead_letter(message, "unreadable", &error.to_string(), shutdown)
                        .await?
                }
            }
        }
        let envelopes: Arc<[ReceiptEnvelope]> = envelopes.into();
        let mut touched = BTreeSet::new();
        match self.store(envelopes.clone(), shutdown).await? {
            Ok(buckets) => touched.extend(buckets),
            Err(error) => {
                log::warn!(
                    "batch of {} receipts failed to store while PostgreSQL answers ({error}); storing one by one",
                    envelopes.len()
                );
                for (message, envelope) in messages.into_iter().zip(envelopes.iter()) {
                    match self.store(Arc::from([envelope.clone()]), shutdown).await? {
                        Ok(buckets) => touched.extend(buckets),
                        Err(error) => self.dead_letter(message, "unstorable", &error, shutdown).await?,
                    }
                }
            }
        }
        if !touched.is_empty() || !self.pending.is_empty() {
            self.enqueue_recompute(touched).await;
        }
        Ok(())
    }

    /// Stores the receipts in one transaction. While PostgreSQL is unreachable it retries with back-off
    /// without limit; a failure while PostgreSQL answers is retried `CONSUMER_STORE_ATTEMPTS` times, then
    /// returned.
    async fn store(
        &self,
        envelopes: Arc<[ReceiptEnvelope]>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<BTreeSet<HourBucket>, String>, Stopped> {
        let mut delay = Duration::from_millis(100);
        let mut failures = 0;
        loop {
            let pool = self.pool.clone();
            let batch = Arc::clone(&envelopes);
            let result = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|error| (true, error.to_string()))?;
                store::store_receipts(&mut conn, &batch).map_err(|error| (false, error.to_string()))
            })
            .await
            .unwrap_or_else(|error| Err((false, error.to_string())));
            let error = match result {
                Ok(buckets) => return Ok(Ok(buckets)),
                Err((_, error)) => error,
            };
            self.metrics.store_retries.inc();
            let pool = self.pool.clone();
            let reachable = tokio::task::spawn_blocking(move || db::ping(&pool).is_ok())
                .await
                .unwrap_or(false);
            if reachable {
                failures += 1;
                if failures >= self.config.store_attempts {
                    return Ok(Err(error));
                }
                log::warn!("storing receipts failed (attempt {failures}): {error}");
            } else {
                log::warn!("PostgreSQL is unreachable ({error}); retrying in {delay:?}");
            }
            pause(delay, shutdown).await?;
            delay = next_delay(delay);
        }
    }

    /// Sends a message to the dead-letter topic with the reason in a header. A failed send is retried with
    /// back-off until it succeeds: the message is never skipped silently.
    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        kind: &str,
        reason: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Stopped> {
        log::warn!(
            "dead-lettering message at {}/{}@{}: {reason}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let mut delay = Duration::from_millis(100);
        loop {
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
            match self.dead_letters.send(record, Duration::from_secs(10)).await {
                Ok(_) => {
                    self.metrics.dead_letters.with_label_values(&[kind]).inc();
                    return Ok(());
                }
                Err((error, _)) => {
                    self.metrics.dead_letter_failures.inc();
                    log::error!(
                        "cannot send message {}/{}@{} to the dead-letter topic ({error}); the partition waits \
                         and tries again in {delay:?}",
                        message.topic(),
                        message.partition(),
                        message.offset()
                    );
                    pause(delay, shutdown).await?;
                    delay = next_delay(delay);
                }
            }
        }
    }

    /// Queues one recompute job for the buckets just written and any left over from batches whose job could
    /// not be queued (Redis away): they go with the next job that can be.
    async fn enqueue_recompute(&mut self, buckets: BTreeSet<HourBucket>) {
        self.pending.extend(buckets);
        if self.queue.is_none() {
            match queue::connect(&self.redis_url, &self.queue_name).await {
                Ok(connected) => self.queue = Some(connected),
                Err(error) => {
                    log::warn!(
                        "cannot reach the job queue ({error}); {} buckets wait for the next batch",
                        self.pending.len()
                    );
                    return;
                }
            }
        }
        let Some(analytics_queue) = self.queue.as_mut() else {
            return;
        };
        let job = AnalyticsJob::new(AnalyticsWork::Buckets {
            buckets: self.pending.iter().cloned().collect(),
        });
        if let Err(error) = queue::enqueue(analytics_queue, job.clone()).await {
            log::warn!(
                "could not enqueue a recompute job ({error}); {} buckets wait for the next batch",
                self.pending.len()
            );
            self.queue = None;
            return;
        }
        self.pending.clear();
        let pool = self.pool.clone();
        let job_id = job.job_id;
        let recorded = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|error| error.to_string())?;
            jobs::record_queued(&mut conn, &job).map_err(|error| error.to_string())
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            log::warn!("could not record recompute job {job_id}; the worker records it when it runs");
        }
    }
}
