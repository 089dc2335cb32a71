//! Configuration shared by the binaries. Every value comes from the environment (a `.env` file is honoured)
//! and has a default that fits the local stack started by `make up`.

use clap::Args;

/// Loads `.env` from the working directory, if there is one. Variables already set win.
pub fn load_dotenv() {
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            log::warn!("ignoring unreadable .env file: {error}");
        }
    }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://receipts@127.0.0.1:5432/receipts"
    )]
    pub database_url: String,
    /// Maximum number of pooled PostgreSQL connections.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 10)]
    pub database_pool_size: u32,
}

/// Kafka settings.
#[derive(Debug, Clone, Args)]
pub struct KafkaConfig {
    /// Comma-separated Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic that carries accepted receipts.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "receipts")]
    pub kafka_topic: String,
    /// Dead-letter topic for receipts the consumer cannot parse or store.
    #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = "receipts.dlq")]
    pub kafka_dlq_topic: String,
    /// Partitions of the receipts topic when it is created at start.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,
}

/// Redis settings (the apalis job queues).
#[derive(Debug, Clone, Args)]
pub struct RedisConfig {
    /// Redis connection URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// Name of the apalis queue that carries analytics recompute jobs.
    #[arg(long, env = "ANALYTICS_QUEUE", default_value = "receipts:analytics")]
    pub analytics_queue: String,
}

/// Authentication settings shared by both HTTP services.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// How long a verified token is trusted before it is looked up again, in seconds (at most 60, so that a
    /// revoked token stops working within a minute on every replica).
    #[arg(long, env = "TOKEN_CACHE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub token_cache_seconds: u64,
}

/// Limits of the HTTP servers.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// How long a client has to send a request's head, and then its body, in seconds (408 after it).
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECONDS", default_value_t = HttpConfig::DEFAULT_REQUEST_TIMEOUT_SECONDS)]
    pub request_timeout_seconds: u64,
    /// How long an idle keep-alive connection stays open, in seconds.
    #[arg(long, env = "HTTP_KEEP_ALIVE_SECONDS", default_value_t = 30)]
    pub keep_alive_seconds: u64,
    /// The most connections the service holds open at once, idle keep-alive ones included, shared evenly
    /// among its HTTP worker threads (at least one each). Past it, a new connection waits in the operating
    /// system's queue until another closes, so a flood of clients cannot grow the process's memory without
    /// bound.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

impl HttpConfig {
    pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 10;
}
