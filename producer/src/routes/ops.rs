//! `/ready` and `/metrics` of the producer (`/health` is shared).

use actix_web::{web, HttpResponse};
use shared_models::web::observe::HttpMetrics;
use shared_models::web::ops::{self as common, Readiness};
use shared_models::{kafka, store};

use crate::relay;
use crate::startup::AppState;

/// `GET /ready`: PostgreSQL and Kafka answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let brokers = state.kafka_brokers.clone();
    let checks = web::block(move || (store::ping(&pool), kafka::ping(&brokers))).await;
    match checks {
        Ok((postgres, kafka)) => Readiness::new()
            .check("postgres", postgres)
            .check("kafka", kafka)
            .into_response(),
        Err(error) => Readiness::new().check("postgres", Err(error)).into_response(),
    }
}

/// `GET /metrics`: HTTP metrics, receipts by outcome and the outbox backlog.
pub async fn metrics(state: web::Data<AppState>, registry: web::Data<HttpMetrics>) -> HttpResponse {
    let pool = state.pool.clone();
    if let Ok(Ok(pending)) = web::block(move || relay::pending_rows(&pool)).await {
        state.metrics.outbox_backlog.set(pending);
    }
    common::metrics(registry).await
}
