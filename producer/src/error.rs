//! The producer's one error type for everything outside a request (requests answer with the shared
//! `ApiError`): starting up, the outbox relay and the command line. Causes are kept as sources and told with
//! `shared_models::report::chain`.

use shared_models::domain::auth::UnknownRole;
use shared_models::store::tokens::TokenError;
use shared_models::store::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("cannot listen on {0}")]
    Bind(String, #[source] std::io::Error),
    #[error("database")]
    Database(#[from] diesel::result::Error),
    #[error("database pool")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database setup")]
    Setup(#[from] DbError),
    #[error("token")]
    Token(#[from] TokenError),
    #[error("role")]
    Role(#[from] UnknownRole),
    #[error("no token {0}")]
    NoSuchToken(uuid::Uuid),
    #[error("metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("blocking task")]
    Task(#[from] tokio::task::JoinError),
    #[error("kafka")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{failed} receipts not acknowledged by Kafka (the others were published): {error}")]
    NotAcknowledged { failed: usize, error: String },
    #[error("serving")]
    Serve(#[source] std::io::Error),
}
