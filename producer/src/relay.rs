//! The outbox relay: publishes accepted receipts to Kafka with an idempotent producer and marks each outbox
//! row published only after the broker acknowledged it. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so
//! several producer replicas can relay side by side without publishing a row twice.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use futures::executor::block_on;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use shared_models::db::PgPool;
use shared_models::kafka;
use shared_models::receipt::{SCHEMA_VERSION, SCHEMA_VERSION_HEADER};
use shared_models::schema::outbox;
use tokio::sync::watch;

use crate::config::RelayConfig;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Builds the idempotent Kafka producer the relay publishes with.
pub fn build_producer(brokers: &str, config: &RelayConfig) -> Result<FutureProducer, RelayError> {
    Ok(kafka::client_config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", config.kafka_message_timeout_ms.to_string())
        .create()?)
}

/// Counts of outbox rows, for `/metrics`.
pub fn pending_rows(pool: &PgPool) -> Result<i64, RelayError> {
    let mut conn = pool.get()?;
    Ok(outbox::table
        .filter(outbox::published_at.is_null())
        .count()
        .get_result(&mut conn)?)
}

/// Publishes one batch. Returns how many rows were published.
pub fn publish_batch(
    pool: &PgPool,
    producer: &FutureProducer,
    topic: &str,
    limit: i64,
) -> Result<usize, RelayError> {
    let mut conn = pool.get()?;
    conn.transaction(|conn| {
        let rows: Vec<(i64, String, String)> = outbox::table
            .filter(outbox::published_at.is_null())
            .order(outbox::id.asc())
            .limit(limit)
            .select((outbox::id, outbox::message_key, outbox::payload))
            .for_update()
            .skip_locked()
            .load(conn)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let headers = || {
            OwnedHeaders::new().insert(Header {
                key: SCHEMA_VERSION_HEADER,
                value: Some(SCHEMA_VERSION.to_string().as_str()),
            })
        };
        let deliveries: Vec<_> = rows
            .iter()
            .map(|(_, key, payload)| {
                producer
                    .send_result(
                        FutureRecord::to(topic)
                            .key(key)
                            .payload(payload)
                            .headers(headers()),
                    )
                    .map_err(|(error, _)| error)
            })
            .collect();
        let mut ids = Vec::with_capacity(rows.len());
        let mut failure = None;
        for ((id, _, _), delivery) in rows.iter().zip(deliveries) {
            let outcome = match delivery {
                Ok(future) => match block_on(future) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(error.to_string()),
                    Err(_) => Err("delivery cancelled".to_owned()),
                },
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(()) => ids.push(*id),
                Err(error) => failure = failure.or(Some((*id, error))),
            }
        }
        let now = Utc::now();
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set((
                outbox::published_at.eq(now),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .execute(conn)?;
        diesel::sql_query(
            "UPDATE accepted_receipts a SET published_at = $1 FROM outbox o
             WHERE o.id = ANY($2) AND a.merchant_id = o.merchant_id AND a.transaction_id = o.transaction_id",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Int8>, _>(&ids)
        .execute(conn)?;
        if let Some((id, error)) = failure {
            log::warn!("outbox row {id} not acknowledged by Kafka: {error}");
            diesel::update(outbox::table.filter(outbox::id.eq(id)))
                .set((
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::last_error.eq(error),
                ))
                .execute(conn)?;
        }
        Ok(ids.len())
    })
}

/// Runs the relay until `shutdown` turns true: drains the outbox, sleeps when it is empty, and backs off
/// exponentially (up to 30 s) while the broker or the database is unavailable.
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
    while !*shutdown.borrow() {
        let ready = match &producer {
            Some(_) => Ok(()),
            None => match kafka::ensure_topics(&brokers, &[(topic.as_str(), partitions)]).await {
                Ok(()) => build_producer(&brokers, &config).map(|built| producer = Some(built)),
                Err(error) => Err(RelayError::Kafka(error)),
            },
        };
        let Some(producer) = producer.as_mut().filter(|_| ready.is_ok()) else {
            if let Err(error) = ready {
                log::warn!("outbox relay cannot reach Kafka yet: {error}; retrying in {backoff:?}");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        };
        let (pool_, producer_, topic_) = (pool.clone(), producer.clone(), topic.clone());
        let limit = config.relay_batch_size;
        let result =
            tokio::task::spawn_blocking(move || publish_batch(&pool_, &producer_, &topic_, limit)).await;
        let pause = match result {
            Ok(Ok(count)) if count as i64 >= limit => {
                backoff = Duration::from_millis(250);
                Duration::ZERO
            }
            Ok(Ok(count)) => {
                if count > 0 {
                    log::debug!("relayed {count} receipts to Kafka");
                }
                backoff = Duration::from_millis(250);
                config.poll_interval()
            }
            Ok(Err(error)) => {
                log::warn!("outbox relay: {error}; retrying in {backoff:?}");
                if let Some(fatal) = producer.client().fatal_error() {
                    log::error!("Kafka producer failed for good ({fatal:?}); building a new one");
                    *producer = match build_producer(&brokers, &config) {
                        Ok(fresh) => fresh,
                        Err(_) => producer.clone(),
                    };
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

/// Marks for publication again every published receipt the consumer has not stored (after a broker that
/// lost its messages, such as the local stack's in-memory one). The consumer is idempotent, so a receipt
/// published twice is stored once. Returns how many rows were re-queued.
pub fn replay_unconsumed(pool: &PgPool) -> Result<usize, RelayError> {
    let mut conn = pool.get()?;
    Ok(diesel::sql_query(
        "UPDATE outbox o SET published_at = NULL
         WHERE o.published_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM receipts r
                           WHERE r.merchant_id = o.merchant_id AND r.transaction_id = o.transaction_id)",
    )
    .execute(&mut conn)?)
}
