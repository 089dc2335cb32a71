//! The operator's endpoints every service has: `/health`, `/ready` (built from the service's own checks)
//! and `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Display;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;

use crate::web::error::{error_response, ErrorBody};
use crate::web::observe::HttpMetrics;

/// `GET /health`: the process is alive.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(metrics: web::Data<HttpMetrics>) -> HttpResponse {
    let mut buffer = Vec::new();
    match TextEncoder::new().encode(&metrics.registry.gather(), &mut buffer) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buffer),
        Err(error) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::new("internal", &error.to_string()),
        ),
    }
}

/// Dependency checks for `/ready`.
#[derive(Debug, Default)]
pub struct Readiness {
    checks: Vec<(String, Result<(), String>)>,
}

impl Readiness {
    pub fn new() -> Self {
        Readiness::default()
    }

    pub fn check<E: Display>(mut self, dependency: &str, result: Result<(), E>) -> Self {
        self.checks
            .push((dependency.to_owned(), result.map_err(|error| error.to_string())));
        self
    }

    /// 200 when every dependency answered; otherwise 503 naming the failing ones.
    pub fn into_response(self) -> HttpResponse {
        let failing: Vec<String> = self
            .checks
            .iter()
            .filter(|(_, result)| result.is_err())
            .map(|(name, _)| name.clone())
            .collect();
        let checks: BTreeMap<String, String> = self
            .checks
            .into_iter()
            .map(|(name, result)| (name, result.err().unwrap_or_else(|| "ok".into())))
            .collect();
        if failing.is_empty() {
            HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
        } else {
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody {
                    failing: Some(failing.clone()),
                    checks: Some(checks),
                    ..ErrorBody::new("not_ready", &format!("unreachable: {}", failing.join(", ")))
                },
            )
        }
    }
}
