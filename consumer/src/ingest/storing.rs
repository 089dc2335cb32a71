//! Storing a batch: waiting out PostgreSQL, dead-lettering what cannot be stored (and waiting out a
//! dead-letter topic that cannot be reached), and queuing the recompute of what was written.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use shared_models::domain::jobs::{AnalyticsJob, HourBucket};
use shared_models::domain::receipt::{ReceiptEnvelope, DLQ_REASON_HEADER};
use shared_models::queue;
use shared_models::report::chain;
use shared_models::store::{self, jobs, DbError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{next_delay, pause, Ingest, Stopped};

impl Ingest {
    /// Stores the receipts in one transaction. While PostgreSQL is unreachable it retries with back-off
    /// without limit; a failure while PostgreSQL answers is retried `CONSUMER_STORE_ATTEMPTS` times, then
    /// returned.
    pub(super) async fn store(
        &self,
        envelopes: Arc<[ReceiptEnvelope]>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Result<BTreeSet<HourBucket>, String>, Stopped> {
        let mut delay = Duration::from_millis(100);
        let mut failures = 0;
        loop {
            let pool = self.pool.clone();
            let batch = Arc::clone(&envelopes);
            let result = tokio::task::spawn_blocking(move || -> Result<_, DbError> {
                let mut conn = pool.get()?;
                Ok(store::receipts::store_receipts(&mut conn, &batch)?)
            })
            .await;
            let error = match result {
                Ok(Ok(buckets)) => return Ok(Ok(buckets)),
                Ok(Err(error)) => chain(&error),
                Err(error) => chain(&error),
            };
            self.metrics.store_retries.inc();
            let pool = self.pool.clone();
            let reachable = tokio::task::spawn_blocking(move || store::ping(&pool).is_ok())
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

    /// Stores each receipt in a transaction of its own, dead-lettering those that keep failing while
    /// PostgreSQL answers; returns the hour buckets that gained receipts.
    pub(super) async fn store_one_by_one(
        &self,
        messages: &[&OwnedMessage],
        envelopes: &[ReceiptEnvelope],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<BTreeSet<HourBucket>, Stopped> {
        let mut touched = BTreeSet::new();
        for (message, envelope) in messages.iter().zip(envelopes) {
            match self.store(Arc::from([envelope.clone()]), shutdown).await? {
                Ok(buckets) => touched.extend(buckets),
                Err(error) => self.dead_letter(message, "unstorable", &error, shutdown).await?,
            }
        }
        Ok(touched)
    }

    /// Sends a message to the dead-letter topic with the reason in a header. A failed send is retried with
    /// back-off until it succeeds: the message is never skipped silently.
    pub(super) async fn dead_letter(
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

    /// How long until the buckets waiting for a recompute job may be queued (none: nothing waits). A job is
    /// due at once when many wait, however recent the last one.
    pub(super) fn recompute_due_in(&self) -> Option<Duration> {
        if self.pending.is_empty() {
            return None;
        }
        if self.pending.due_now() {
            return Some(Duration::ZERO);
        }
        let interval = Duration::from_millis(self.config.recompute_interval_ms);
        Some(
            self.last_recompute
                .map_or(Duration::ZERO, |last| interval.saturating_sub(last.elapsed())),
        )
    }

    /// Queues one recompute job for the buckets just written (by a batch that began storing at `started`)
    /// and those waiting: at most one job per `CONSUMER_RECOMPUTE_INTERVAL_MS`, so buckets written meanwhile
    /// (or while Redis was away) wait and go together with the next job that can be queued.
    pub(super) async fn enqueue_recompute(&mut self, buckets: BTreeSet<HourBucket>, started: DateTime<Utc>) {
        self.pending.add(buckets, started);
        if self.recompute_due_in() != Some(Duration::ZERO) {
            return;
        }
        if self.queue.is_none() {
            match queue::connect(&self.redis_url, &self.queue_name).await {
                Ok(connected) => self.queue = Some(connected),
                Err(error) => {
                    log::warn!(
                        "cannot reach the job queue ({}); {} wait for the next batch",
                        chain(&error),
                        self.pending.describe()
                    );
                    return;
                }
            }
        }
        let Some(analytics_queue) = self.queue.as_mut() else {
            return;
        };
        let job = AnalyticsJob::new(self.pending.work());
        if let Err(error) = queue::enqueue(analytics_queue, job.clone()).await {
            log::warn!(
                "could not enqueue a recompute job ({}); {} wait for the next batch",
                chain(&error),
                self.pending.describe()
            );
            self.queue = None;
            return;
        }
        self.pending.clear();
        self.last_recompute = Some(Instant::now());
        let pool = self.pool.clone();
        let job_id = job.job_id;
        let recorded = tokio::task::spawn_blocking(move || -> Result<(), DbError> {
            let mut conn = pool.get()?;
            Ok(jobs::record_queued(&mut conn, &job)?)
        })
        .await;
        let failure = match recorded {
            Ok(Ok(())) => return,
            Ok(Err(error)) => chain(&error),
            Err(error) => chain(&error),
        };
        log::warn!("could not record recompute job {job_id} ({failure}); the worker records it when it runs");
    }
}
