//! `/ready` of the consumer (`/health` and `/metrics` are shared).

use actix_web::{web, HttpResponse};
use shared_models::web::ops::Readiness;
use shared_models::{kafka, queue, store};

use crate::startup::AppState;

/// `GET /ready`: PostgreSQL, Kafka and Redis answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let brokers = state.kafka_brokers.clone();
    let checks = web::block(move || (store::ping(&pool), kafka::ping(&brokers))).await;
    let redis = queue::ping(&state.redis_url).await;
    match checks {
        Ok((postgres, kafka)) => Readiness::new()
            .check("postgres", postgres)
            .check("kafka", kafka)
            .check("redis", redis)
            .into_response(),
        Err(error) => Readiness::new().check("postgres", Err(error)).into_response(),
    }
}
