//! What every request leaves behind: an id (returned in `X-Request-Id`), counts and latencies by route and
//! status, one access-log line, and, for a server-side failure, one error line with its cause.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::web::error::ApiError;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Request counts and latencies by route and status, in one registry that services add their own
/// metrics to.
#[derive(Clone)]
pub struct HttpMetrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Connections open now.
    pub open_connections: IntGauge,
}

impl HttpMetrics {
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some(service.replace('-', "_")), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route"),
            &["route", "method"],
        )?;
        let open_connections = IntGauge::new("http_open_connections", "HTTP connections open now")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        Ok(HttpMetrics {
            registry,
            requests,
            latency,
            open_connections,
        })
    }
}

/// The id given to a request by [`observe_requests`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: gives every request an id (kept from `X-Request-Id` when the client sent one), returns it
/// in the response, records the request's metrics, and logs a server-side failure once with its cause.
pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let mut response = next.call(req).await?;
    if let Some(error) = response.response().error() {
        if error.as_response_error().status_code().is_server_error() {
            let cause = error
                .as_error::<ApiError>()
                .map(ApiError::chain)
                .unwrap_or_else(|| error.to_string());
            log::error!("{request_id} {method} {route}: {cause}");
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(metrics) = metrics {
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[&route, &method, &status])
            .inc();
        metrics
            .latency
            .with_label_values(&[&route, &method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// The access log: one line per request with its id, method and path, matched route, status and latency;
/// never headers or bodies. Wrap it outside [`observe_requests`] so the response carries the id it logs.
pub fn access_log() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{x-request-id}o \"%r\" route=%{route}xi %s %Dms")
        .custom_request_replace("route", |req| {
            req.match_pattern().unwrap_or_else(|| "unmatched".to_owned())
        })
}
