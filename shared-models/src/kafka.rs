//! Kafka plumbing shared by the producer and the consumer.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

/// Base client configuration for the given bootstrap servers.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.timeout.ms", "10000");
    config
}

/// Creates the topics if they are missing. An existing topic is left as it is.
pub async fn ensure_topics<S: AsRef<str>>(
    brokers: &str,
    topics: &[(S, i32)],
) -> Result<(), rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name.as_ref(), *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => log::info!("created Kafka topic {topic}"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(rdkafka::error::KafkaError::AdminOp(code)).inspect_err(|_| {
                    log::error!("could not create Kafka topic {topic}: {code}");
                })
            }
        }
    }
    Ok(())
}

/// Checks that the cluster answers a metadata request.
pub fn ping(brokers: &str) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let probe: BaseConsumer = client_config(brokers).create()?;
    probe.fetch_metadata(None, Duration::from_secs(3)).map(|_| ())
}
