//! The outbox relay: publishes accepted receipts to Kafka with an idempotent producer and deletes each outbox
//! row, recording its receipt's publication, only after the broker acknowledged it. Rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, so several producer replicas can relay side by side without publishing a row
//! twice.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures::executor::block_on;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use shared_models::domain::receipt::{SCHEMA_VERSION, SCHEMA_VERSION_HEADER};
use shared_models::kafka;
use shared_models::report::chain;
use shared_models::store::outbox::{self, Replayed};
use shared_models::store::PgPool;
use tokio::sync::watch;

use crate::config::RelayConfig;
use crate::error::ProducerError;
use crate::startup::ProducerMetrics;

/// Builds the idempotent Kafka producer the relay publishes with.
pub fn build_producer(brokers: &str, config: &RelayConfig) -> Result<FutureProducer, ProducerError> {
    Ok(kafka::client_config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", config.kafka_message_timeout_ms.to_string())
        .create()?)
}

/// Counts of outbox rows, for `/metrics`.
pub fn pending_rows(pool: &PgPool) -> Result<i64, ProducerError> {
    let mut conn = pool.get()?;
    Ok(outbox::backlog(&mut conn)?)
}

/// How often the relay claims from the oldest outbox row rather than above the last one it claimed.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Where the relay's next claim starts. Above the last row it claimed, so that a claim does not step over the
/// rows it deleted that autovacuum has not yet removed; and from the oldest row once a `SWEEP_EVERY`, for the
/// rows a claim above passed by: one committed after a claim went past its id, one another replica held and
/// gave back, one whose publication failed. After a sweep the next claim goes on from where the sweep
/// ended, even below where claims had reached: a database restored with lower ids would otherwise be left
/// to the sweeps, a batch a second.
#[derive(Debug, Default)]
struct ClaimStart {
    after: i64,
    swept_at: Option<Instant>,
}

impl ClaimStart {
    /// The id the next claim starts above.
    fn next(&mut self) -> i64 {
        if self.swept_at.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            self.swept_at = Some(Instant::now());
            return 0;
        }
        self.after
    }

    /// The last row a claim took, if it took any.
    fn claimed(&mut self, last: Option<i64>) {
        if let Some(last) = last {
            self.after = last;
        }
    }
}

/// One batch published: how many rows, and the last one claimed.
#[derive(Debug)]
pub struct Published {
    pub count: usize,
    pub last_claimed: Option<i64>,
}

/// Publishes one batch of the rows above `after`.
pub fn publish_batch(
    pool: &PgPool,
    producer: &FutureProducer,
    topic: &str,
    (after, limit): (i64, i64),
    grace: Duration,
) -> Result<Published, ProducerError> {
    let mut conn = pool.get()?;
    let mut failed = 0;
    let mut last_claimed = None;
    conn.transaction(|conn| {
        let rows = outbox::claim(conn, after, limit)?;
        last_claimed = rows.last().map(|row| row.id);
        if rows.is_empty() {
            return Ok((0, None));
        }
        let headers = || {
            OwnedHeaders::new().insert(Header {
                key: SCHEMA_VERSION_HEADER,
                value: Some(SCHEMA_VERSION.to_string().as_str()),
            })
        };
        let deliveries: Vec<_> = rows
            .iter()
            .map(|row| {
                producer
                    .send_result(
                        FutureRecord::to(topic)
                            .key(&row.key)
                            .payload(&row.payload)
                            .headers(headers()),
                    )
                    .map_err(|(error, _)| error)
            })
            .collect();
        let mut ids = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (row, delivery) in rows.iter().zip(deliveries) {
            let outcome = match delivery {
                Ok(future) => match block_on(future) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(error.to_string()),
                    Err(_) => Err("delivery cancelled".to_owned()),
                },
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(()) => ids.push(row.id),
                Err(error) => {
                    failed += 1;
                    failure = failure.or(Some((row.id, error)));
                }
            }
        }
        outbox::mark_published(conn, &ids, grace)?;
        if let Some((id, error)) = &failure {
            outbox::record_failure(conn, *id, error)?;
        }
        Ok::<_, ProducerError>((ids.len(), failure))
    })
    .and_then(|(published, failure)| match failure {
        // The acknowledged rows are published (committed above); the others wait for the next sweep.
        None => Ok(Published {
            count: published,
            last_claimed,
        }),
        Some((_, error)) => Err(ProducerError::NotAcknowledged { failed, error }),
    })
}

/// One reconcile pass, logged and counted; a failure is logged and tried again at the next pass.
async fn run_reconcile(pool: &PgPool, grace: Duration, metrics: &ProducerMetrics) {
    let pool = pool.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Replayed, ProducerError> {
        let mut conn = pool.get()?;
        Ok(outbox::reconcile(&mut conn)?)
    })
    .await;
    match result {
        Ok(Ok(Replayed(replayed))) => {
            metrics.outbox_replays.inc_by(replayed as u64);
            metrics.unconsumed_receipts.set(replayed as i64);
            if replayed > 0 {
                log::warn!(
                    "{replayed} accepted receipts had not reached the consumer {grace:?} or more after publication: queued for publication again"
                );
            }
        }
        Ok(Err(error)) => log::warn!("pipeline reconcile failed: {}; trying again later", chain(&error)),
        Err(error) => log::error!("pipeline reconcile task failed: {error}"),
    }
}

/// Reconciles the pipeline every `RECONCILE_INTERVAL_SECONDS` until `shutdown` turns true. It runs beside
/// the relay, not in its loop: a pass reads every publication that fell due since the last one (and waits
/// for another replica's pass), and receipts accepted meanwhile must still be published.
pub async fn reconcile_periodically(
    pool: PgPool,
    config: RelayConfig,
    metrics: ProducerMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(config.reconcile_interval()) => {
                run_reconcile(&pool, config.reconcile_grace(), &metrics).await;
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// Runs the relay until `shutdown` turns true: drains the outbox, sleeps when it is empty, and backs off
/// exponentially (up to 30 s) while the broker or the database is unavailable (re-creating the topic when
/// the broker comes back without it).
pub async fn run(
    pool: PgPool,
    brokers: String,
    topic: String,
    partitions: i32,
    config: RelayConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    let mut producer = None;
    let mut start = ClaimStart::default();
    while !*shutdown.borrow() {
        let ready = match &producer {
            Some(_) => Ok(()),
            None => match kafka::ensure_topics(&brokers, &[(topic.as_str(), partitions)]).await {
                Ok(()) => build_producer(&brokers, &config).map(|built| producer = Some(built)),
                Err(error) => Err(ProducerError::Kafka(error)),
            },
        };
        let Some(active) = producer.clone().filter(|_| ready.is_ok()) else {
            if let Err(error) = ready {
                log::warn!(
                    "outbox relay cannot reach Kafka yet: {}; retrying in {backoff:?}",
                    chain(&error)
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        };
        let mut stale_producer = false;
        let (pool_, topic_) = (pool.clone(), topic.clone());
        let (after, limit, grace) = (start.next(), config.relay_batch_size, config.reconcile_grace());
        let result = tokio::task::spawn_blocking(move || {
            publish_batch(&pool_, &active, &topic_, (after, limit), grace)
        })
        .await;
        if let Ok(Ok(published)) = &result {
            start.claimed(published.last_claimed);
        }
        let pause = match result {
            Ok(Ok(Published { count, .. })) if count as i64 >= limit => {
                backoff = Duration::from_millis(250);
                Duration::ZERO
            }
            Ok(Ok(Published { count, .. })) => {
                if count > 0 {
                    log::debug!("relayed {count} receipts to Kafka");
                }
                backoff = Duration::from_millis(250);
                config.poll_interval()
            }
            Ok(Err(error)) => {
                log::warn!("outbox relay: {}; retrying in {backoff:?}", chain(&error));
                if matches!(
                    error,
                    ProducerError::Kafka(_) | ProducerError::NotAcknowledged { .. }
                ) {
                    // A broker that came back empty has lost the topic: make sure of it, with a new producer.
                    stale_producer = true;
                }
                let pause = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                pause
            }
            Err(error) => {
                log::error!("outbox relay task failed: {error}");
                backoff
            }
        };
        if stale_producer {
            producer = None;
        }
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    if let Some(producer) = producer {
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }
    log::info!("outbox relay stopped");
}

/// Queues for publication again every published receipt the consumer has not stored (after a broker that
/// lost its messages, such as the local stack's in-memory one). The consumer is idempotent, so a receipt
/// published twice is stored once. Returns how many receipts were queued.
pub fn replay_unconsumed(pool: &PgPool) -> Result<usize, ProducerError> {
    let mut conn = pool.get()?;
    Ok(outbox::replay_unconsumed(&mut conn)?.0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{ClaimStart, SWEEP_EVERY};

    #[test]
    fn claims_start_above_the_last_row_claimed_and_from_the_oldest_once_a_sweep_is_due() {
        let mut start = ClaimStart::default();
        assert_eq!(start.next(), 0, "the first claim is a sweep");

        start.claimed(Some(500));
        assert_eq!(start.next(), 500);
        start.claimed(None);
        assert_eq!(start.next(), 500, "an empty claim keeps the start");

        start.swept_at = Instant::now().checked_sub(SWEEP_EVERY + Duration::from_millis(1));
        assert_eq!(start.next(), 0, "a sweep once a SWEEP_EVERY");
        start.claimed(None);
        assert_eq!(start.next(), 500, "and above the last row claimed again after it");

        start.swept_at = Instant::now().checked_sub(SWEEP_EVERY + Duration::from_millis(1));
        assert_eq!(start.next(), 0);
        start.claimed(Some(300));
        assert_eq!(
            start.next(),
            300,
            "after a sweep that ended below the start (lower ids after a restore), claims go on from there"
        );
    }
}
