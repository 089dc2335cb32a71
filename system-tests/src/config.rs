//! Configuration of the services a test starts in its own process, on the throwaway PostgreSQL, Redis and
//! broker of `make test`, with a unique topic, consumer group and queue per test.

use consumer::config::{ConsumerConfig, IngestConfig};
use producer::config::{IntakeConfig, ProducerConfig, RelayConfig};
use shared_models::config::{AuthConfig, DatabaseConfig, KafkaConfig, RedisConfig};
use shared_models::testing::{defaults, service_url, unique_name};
use worker::config::WorkerConfig;

pub fn database(database_url: String) -> DatabaseConfig {
    DatabaseConfig {
        database_url,
        database_pool_size: 8,
    }
}

pub fn kafka(partitions: i32) -> KafkaConfig {
    let topic = unique_name("receipts");
    KafkaConfig {
        kafka_brokers: service_url("TEST_KAFKA_BROKERS"),
        kafka_dlq_topic: format!("{topic}.dlq"),
        kafka_topic: topic,
        kafka_partitions: partitions,
    }
}

pub fn redis() -> RedisConfig {
    RedisConfig {
        redis_url: service_url("TEST_REDIS_URL"),
        analytics_queue: unique_name("analytics"),
    }
}

/// Tokens are re-checked every second, so revocation shows quickly.
pub fn auth() -> AuthConfig {
    AuthConfig {
        token_cache_seconds: 1,
    }
}

pub fn producer(database: DatabaseConfig, kafka: KafkaConfig, admin_token: &str) -> ProducerConfig {
    ProducerConfig {
        addr: "127.0.0.1:0".into(),
        database,
        kafka,
        http: defaults(),
        auth: auth(),
        rate_limit: defaults(),
        bootstrap_admin_token: Some(admin_token.to_owned()),
        intake: IntakeConfig {
            max_body_bytes: 1024 * 1024,
            total_tolerance: "0.01".parse().expect("decimal"),
            max_future_skew_seconds: 600,
            earliest_timestamp: "2000-01-01T00:00:00Z".parse().expect("time"),
            rejected_body_log_bytes: 4096,
            group_max_receipts: 500,
            group_writers: 4,
            queue_receipts: 4096,
        },
        relay: RelayConfig {
            relay_batch_size: 100,
            relay_poll_ms: 50,
            kafka_message_timeout_ms: 15000,
            reconcile_interval_seconds: 30,
            reconcile_grace_seconds: 120,
        },
    }
}

pub fn consumer(database: DatabaseConfig, kafka: KafkaConfig, redis: RedisConfig) -> ConsumerConfig {
    ConsumerConfig {
        addr: "127.0.0.1:0".into(),
        database,
        kafka,
        redis,
        http: defaults(),
        auth: auth(),
        ingest: IngestConfig {
            group_id: unique_name("group"),
            batch_size: 100,
            batch_ms: 50,
            store_shards: 2,
            store_attempts: 3,
            session_timeout_ms: 30000,
            lag_interval_ms: 500,
            recompute_interval_ms: 500,
        },
    }
}

/// A worker that polls often and never reaches its hourly slot within a test.
pub fn worker(database: DatabaseConfig, redis: RedisConfig) -> WorkerConfig {
    WorkerConfig {
        database,
        redis,
        hourly_schedule: "0 0 * * * *".into(),
        reconcile_lookback_hours: 2,
        job_retries: 2,
        job_history_days: 7,
        poll_ms: 100,
        check_duty_percent: 25,
        concurrency: 2,
        metrics_addr: None,
        worker_name: Some(unique_name("worker")),
    }
}
