//! `/ready` of the consumer (`/health` and `/metrics` are shared).

use actix_web::{web, HttpResponse};
use shared_models::http::Readiness;
use shared_models::{db, kafka};

use crate::startup::AppState;

/// `GET /ready`: PostgreSQL, Kafka and Redis answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let brokers = state.kafka_brokers.clone();
    let checks = web::block(move || {
        (
            db::ping(&pool).map_err(|error| error.to_string()),
            kafka::ping(&brokers).map_err(|error| error.to_string()),
        )
    })
    .await;
    let redis = ping_redis(&state.redis_url).await;
    match checks {
        Ok((postgres, kafka)) => Readiness::new()
            .check("postgres", postgres)
            .check("kafka", kafka)
            .check("redis", redis)
            .into_response(),
        Err(error) => Readiness::new()
            .check("postgres", Err(error.to_string()))
            .into_response(),
    }
}

async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|error| error.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".into()),
    }
}
