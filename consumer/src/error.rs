//! The consumer's one error type for everything outside a request (requests answer with the shared
//! `ApiError`): starting up and joining the Kafka group. Causes are kept as sources and told with
//! `shared_models::report::chain`.

use shared_models::store::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot listen on {0}")]
    Bind(String, #[source] std::io::Error),
    #[error("database setup")]
    Setup(#[from] DbError),
    #[error("metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("blocking task")]
    Task(#[from] tokio::task::JoinError),
    #[error("kafka")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("serving")]
    Serve(#[source] std::io::Error),
}
