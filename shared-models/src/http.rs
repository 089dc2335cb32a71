//! HTTP plumbing both services share: the contract's JSON error body, token authentication, request
//! metrics and ids, and the `/health`, `/ready` and `/metrics` endpoints.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, Header, HeaderName, HeaderValue, TryIntoHeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use actix_web_httpauth::headers::authorization::{Authorization, ParseError, Scheme};
use actix_web_httpauth::headers::www_authenticate::bearer::Bearer;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::{self, Principal, Role, TokenCache};
use crate::db::PgPool;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The contract's error body: a machine `error` code and a human `message`, plus optional extras.
pub fn error_response(status: StatusCode, code: &str, message: &str, extra: Option<Value>) -> HttpResponse {
    let mut body = json!({ "error": code, "message": message });
    if let (Some(Value::Object(extra)), Value::Object(body)) = (extra, &mut body) {
        body.extend(extra);
    }
    HttpResponse::build(status).json(body)
}

/// The credential in `Authorization: Bearer <token>` or `Authorization: Token <token>` (DRF's scheme).
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

impl std::fmt::Display for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer <redacted>")
    }
}

impl TryIntoHeaderValue for ApiToken {
    type Error = header::InvalidHeaderValue;

    fn try_into_value(self) -> Result<HeaderValue, Self::Error> {
        HeaderValue::from_str(&format!("Bearer {}", self.0))
    }
}

impl Scheme for ApiToken {
    fn parse(header: &HeaderValue) -> Result<Self, ParseError> {
        let text = header.to_str().map_err(|_| ParseError::Invalid)?;
        let (scheme, credential) = text.trim().split_once(' ').ok_or(ParseError::MissingScheme)?;
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
            return Err(ParseError::MissingScheme);
        }
        let credential = credential.trim();
        if credential.is_empty() || credential.contains(char::is_whitespace) {
            return Err(ParseError::Invalid);
        }
        Ok(ApiToken(credential.to_owned()))
    }
}

/// What authentication needs: the token table and the per-replica cache of verified tokens.
#[derive(Debug)]
pub struct AuthState {
    pool: PgPool,
    cache: TokenCache,
}

impl AuthState {
    pub fn new(pool: PgPool, cache_ttl: Duration) -> Self {
        AuthState {
            pool,
            cache: TokenCache::new(cache_ttl),
        }
    }

    async fn verify(self: Arc<Self>, token: ApiToken) -> Result<Option<Principal>, AuthError> {
        if let Some(cached) = self.cache.get(token.secret()) {
            return Ok(cached);
        }
        let state = self.clone();
        let secret = token.secret().to_owned();
        let found = web::block(move || {
            let mut conn = state.pool.get().map_err(|error| error.to_string())?;
            auth::find_active(&mut conn, &secret).map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| AuthError::Unavailable(error.to_string()))?
        .map_err(AuthError::Unavailable)?;
        self.cache.put(token.secret(), found.clone());
        Ok(found)
    }
}

/// Why a request was not authenticated or not authorised.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>` or `Token <token>`")]
    Malformed,
    #[error("the token is unknown or revoked")]
    Rejected,
    #[error("this needs the {0} role")]
    Forbidden(String),
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Malformed | AuthError::Rejected => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AuthError::Missing | AuthError::Malformed | AuthError::Rejected => {
                let mut response =
                    error_response(self.status_code(), "unauthorized", &self.to_string(), None);
                let challenge = Bearer::build().realm("receipts").finish();
                if let Ok(value) = challenge.try_into_value() {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            AuthError::Forbidden(permission) => error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                &self.to_string(),
                Some(json!({ "missing_permission": permission })),
            ),
            AuthError::Unavailable(cause) => {
                log::error!("token lookup failed: {cause}");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "authentication is unavailable; retry later",
                    None,
                )
            }
        }
    }
}

/// An authenticated caller. Use it as a handler argument on every `/api/` endpoint.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// Allows the call only for the roles of the endpoint's access rule (the one its route table states).
    pub fn require(&self, access: Access) -> Result<&Principal, AuthError> {
        let roles = access.roles;
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            Err(AuthError::Forbidden(names.join(" or ")))
        }
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req
            .app_data::<web::Data<AuthState>>()
            .map(|data| data.clone().into_inner());
        let header_present = req.headers().contains_key(header::AUTHORIZATION);
        let token = Authorization::<ApiToken>::parse(req).map(Authorization::into_scheme);
        Box::pin(async move {
            let state = state.ok_or_else(|| AuthError::Unavailable("no auth state configured".into()))?;
            let token = match token {
                Ok(token) => token,
                Err(_) if !header_present => return Err(AuthError::Missing),
                Err(_) => return Err(AuthError::Malformed),
            };
            state
                .verify(token)
                .await?
                .map(Authenticated)
                .ok_or(AuthError::Rejected)
        })
    }
}

/// Request counts and latencies by route and status, in one registry that services add their own
/// metrics to.
#[derive(Clone)]
pub struct HttpMetrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(HttpMetrics {
            registry,
            requests,
            latency,
        })
    }
}

/// Middleware: gives every request an id (kept from `X-Request-Id` when the client sent one), returns it
/// in the response, and records the request's metrics.
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

/// The id given to a request by [`observe_requests`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The access-log format: request id, method and path, status, latency. Never headers or bodies.
pub const ACCESS_LOG_FORMAT: &str = "%{x-request-id}o \"%r\" %s %Dms";

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
            "internal",
            &error.to_string(),
            None,
        ),
    }
}

/// Dependency checks for `/ready`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    checks: Vec<(String, Result<(), String>)>,
}

impl Readiness {
    pub fn new() -> Self {
        Readiness { checks: Vec::new() }
    }

    pub fn check(mut self, dependency: &str, result: Result<(), String>) -> Self {
        self.checks.push((dependency.to_owned(), result));
        self
    }

    /// 200 when every dependency answered; otherwise 503 naming the failing ones.
    pub fn into_response(self) -> HttpResponse {
        let failing: Vec<&str> = self
            .checks
            .iter()
            .filter(|(_, result)| result.is_err())
            .map(|(name, _)| name.as_str())
            .collect();
        let detail: serde_json::Map<String, Value> = self
            .checks
            .iter()
            .map(|(name, result)| {
                let state = match result {
                    Ok(()) => json!("ok"),
                    Err(error) => json!(error),
                };
                (name.clone(), state)
            })
            .collect();
        if failing.is_empty() {
            HttpResponse::Ok().json(json!({ "status": "ready", "checks": detail }))
        } else {
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                &format!("unreachable: {}", failing.join(", ")),
                Some(json!({ "failing": failing, "checks": detail })),
            )
        }
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads `page` and `page_size` as Django REST framework does: page from 1, size default 50, at most 500.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub page_size: i64,
}

impl PageRequest {
    pub const DEFAULT_SIZE: i64 = 50;
    pub const MAX_SIZE: i64 = 500;

    pub fn new(page: Option<i64>, page_size: Option<i64>) -> Result<Self, String> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(Self::DEFAULT_SIZE);
        if page < 1 {
            return Err("page must be 1 or more".into());
        }
        if !(1..=Self::MAX_SIZE).contains(&page_size) {
            return Err(format!("page_size must be between 1 and {}", Self::MAX_SIZE));
        }
        Ok(PageRequest { page, page_size })
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.page_size
    }

    /// `next` and `previous` links for a DRF-style page, built from the request's own URL.
    pub fn links(&self, req: &HttpRequest, count: i64) -> (Option<String>, Option<String>) {
        let link = |page: i64| {
            let info = req.connection_info();
            let mut pairs: Vec<(String, String)> =
                web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                    .map(|query| query.into_inner())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(key, _)| key != "page")
                    .collect();
            pairs.push(("page".into(), page.to_string()));
            let query: Vec<String> = pairs
                .iter()
                .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
                .collect();
            format!(
                "{}://{}{}?{}",
                info.scheme(),
                info.host(),
                req.path(),
                query.join("&")
            )
        };
        let next = (self.offset() + self.page_size < count).then(|| link(self.page + 1));
        let previous = (self.page > 1).then(|| link(self.page - 1));
        (next, previous)
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bearer_and_token_schemes_are_accepted() {
        for header in ["Bearer abc", "Token abc", "bearer abc"] {
            let parsed = ApiToken::parse(&HeaderValue::from_static(header)).expect(header);
            assert_eq!(parsed.secret(), "abc");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "abc", "Bearer a b"] {
            assert!(
                ApiToken::parse(&HeaderValue::from_static(header)).is_err(),
                "{header}"
            );
        }
    }

    #[test]
    fn page_requests_follow_drf_bounds() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(None, Some(501)).is_err());
        let page = PageRequest::new(Some(3), Some(10)).expect("page");
        assert_eq!(page.offset(), 20);
    }
}

/// Who may call an `/api/` endpoint. Handlers enforce it; the table of [`ApiRoute`]s states it, and the
/// access-matrix tests check that the two agree for every endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Roles allowed (others get 403).
    pub roles: &'static [Role],
    /// Whether a merchant is limited to its own data here (another merchant's gets 404, or 403 on submit).
    pub merchant_scoped: bool,
}

impl Access {
    /// Administration: admins only.
    pub const ADMINS: Access = Access {
        roles: &[Role::Admin],
        merchant_scoped: false,
    };
}

/// One `/api/` endpoint: its method, path, access rule and handler.
pub struct ApiRoute {
    pub method: actix_web::http::Method,
    pub path: &'static str,
    pub access: Access,
    route: actix_web::Route,
}

impl ApiRoute {
    pub fn new<F, Args>(
        method: actix_web::http::Method,
        path: &'static str,
        access: Access,
        handler: F,
    ) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let route = web::route().method(method.clone()).to(handler);
        ApiRoute {
            method,
            path,
            access,
            route,
        }
    }
}

/// Registers every route of the table under `/api`.
pub fn api_scope(routes: Vec<ApiRoute>) -> actix_web::Scope {
    routes.into_iter().fold(web::scope("/api"), |scope, api_route| {
        scope.route(api_route.path, api_route.route)
    })
}

/// Runs blocking diesel work on actix's blocking pool, off the async executor.
pub async fn with_db<T, E, F>(pool: &PgPool, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<diesel::r2d2::PoolError> + From<actix_web::error::BlockingError> + Send + 'static,
    F: FnOnce(&mut diesel::PgConnection) -> Result<T, E> + Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

/// An optional instant from a query parameter (`from`, `to`), with the message a 400 should carry.
pub fn query_instant(
    field: &str,
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    text.map(|text| {
        crate::receipt::parse_timestamp(text)
            .ok_or_else(|| format!("{field} must be an ISO 8601 / RFC 3339 timestamp"))
    })
    .transpose()
}
