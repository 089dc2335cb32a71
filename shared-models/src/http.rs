//! HTTP plumbing both services share: the contract's JSON error body, token authentication, request
//! metrics and ids, and the `/health`, `/ready` and `/metrics` endpoints.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
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
use paperclip::actix::{Apiv2Schema, OperationModifier};
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw, SecurityScheme};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use serde::Serialize;
use serde_json::json;

use crate::auth::{self, Principal, Role, TokenCache};
use crate::db::PgPool;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The contract's error body: a machine `error` code and a human `message`, plus what some errors add.
#[derive(Debug, Clone, Serialize, Apiv2Schema)]
#[openapi(
    example = r#"{"error": "validation_failed", "message": "the receipt is not valid: 1 problem(s), see details", "details": [{"field": "items[0].price", "code": "too_many_decimals", "message": "must have at most 2 decimal places"}]}"#
)]
pub struct ErrorBody {
    /// Machine-readable code: `malformed_json`, `validation_failed`, `transaction_conflict`, `unauthorized`,
    /// `forbidden`, `not_found`, `bad_request`, `payload_too_large`, `unavailable`, `not_ready`, `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// `validation_failed`: every failing field, not only the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
    /// `forbidden`: what the token lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
    /// `not_ready`: the dependencies that did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<Vec<String>>,
    /// `not_ready`: each dependency's state, `ok` or its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, String>>,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str) -> Self {
        ErrorBody {
            error: code.to_owned(),
            message: message.to_owned(),
            details: None,
            missing_permission: None,
            failing: None,
            checks: None,
        }
    }
}

/// One failing field: a path into the body, a machine code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Apiv2Schema)]
pub struct FieldError {
    /// Path into the body, such as `items[2].quantity`.
    pub field: String,
    /// Machine-readable rule, such as `too_many_decimals` or `total_mismatch`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// An error answer in the contract's shape.
pub fn error_response(status: StatusCode, body: ErrorBody) -> HttpResponse {
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
                let mut response = error_response(
                    self.status_code(),
                    ErrorBody::new("unauthorized", &self.to_string()),
                );
                let challenge = Bearer::build().realm("receipts").finish();
                if let Ok(value) = challenge.try_into_value() {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            AuthError::Forbidden(permission) => error_response(
                StatusCode::FORBIDDEN,
                ErrorBody {
                    missing_permission: Some(permission.clone()),
                    ..ErrorBody::new("forbidden", &self.to_string())
                },
            ),
            AuthError::Unavailable(cause) => {
                log::error!("token lookup failed: {cause}");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorBody::new("unavailable", "authentication is unavailable; retry later"),
                )
            }
        }
    }
}

/// Who may call an endpoint, as a type: the [`Caller`] extractor enforces it and the OpenAPI document
/// states it.
pub trait AccessRule {
    const ACCESS: Access;
}

/// Administration: admins only.
#[derive(Debug)]
pub struct Admins;

impl AccessRule for Admins {
    const ACCESS: Access = Access {
        roles: &[Role::Admin],
        merchant_scoped: false,
    };
}

/// An authenticated caller whose role the rule `A` allows. Every `/api/` handler takes one.
#[derive(Debug)]
pub struct Caller<A> {
    principal: Principal,
    rule: PhantomData<A>,
}

impl<A> Caller<A> {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn into_principal(self) -> Principal {
        self.principal
    }
}

impl<A: AccessRule> FromRequest for Caller<A> {
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
            let principal = state.verify(token).await?.ok_or(AuthError::Rejected)?;
            let roles = A::ACCESS.roles;
            if !roles.contains(&principal.role) {
                let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
                return Err(AuthError::Forbidden(names.join(" or ")));
            }
            Ok(Caller {
                principal,
                rule: PhantomData,
            })
        })
    }
}

/// Name of the token's security scheme in the OpenAPI documents.
const TOKEN_SCHEME: &str = "token";

impl<A: AccessRule> paperclip::v2::schema::Apiv2Schema for Caller<A> {
    fn name() -> Option<String> {
        Some(TOKEN_SCHEME.into())
    }

    fn security_scheme() -> Option<SecurityScheme> {
        Some(SecurityScheme {
            type_: "apiKey".into(),
            name: Some("Authorization".into()),
            in_: Some("header".into()),
            description: Some(
                "An API token in the `Authorization` header, written `Bearer <token>` (`Token <token>` \
                 is accepted too). Admins create tokens with `POST /api/tokens/` on the producer."
                    .into(),
            ),
            ..SecurityScheme::default()
        })
    }
}

impl<A: AccessRule> OperationModifier for Caller<A> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        let access = A::ACCESS;
        let who: Vec<String> = access
            .roles
            .iter()
            .map(|role| match role {
                Role::Merchant if access.merchant_scoped => "merchant (its own data only)".to_owned(),
                other => other.as_str().to_owned(),
            })
            .collect();
        let rule = format!("Roles: {}.", who.join(", "));
        op.description = Some(match op.description.take() {
            Some(text) => format!("{text}\n\n{rule}"),
            None => rule,
        });
        crate::openapi::document_errors(
            op,
            &[(
                401,
                "`unauthorized`: no token, a malformed `Authorization` header, or an unknown or revoked \
                 token; the answer carries `WWW-Authenticate: Bearer realm=\"receipts\"`",
            )],
        );
        // An endpoint open to every role never answers 403 for the role.
        if access.roles.len() < Role::ALL.len() {
            crate::openapi::document_errors(
                op,
                &[(403, "`forbidden`: the token's role may not call this endpoint")],
            );
        }
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        crate::openapi::define::<ErrorBody>(definitions);
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

/// The access log: one line per request with its id, method and path, matched route, status and latency;
/// never headers or bodies. Wrap it outside [`observe_requests`] so the response carries the id it logs.
pub fn access_log() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{x-request-id}o \"%r\" route=%{route}xi %s %Dms")
        .custom_request_replace("route", |req| {
            req.match_pattern().unwrap_or_else(|| "unmatched".to_owned())
        })
}

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

/// Who may call an `/api/` endpoint. The handler's [`Caller`] enforces it, the route table reads it from
/// the handler's signature, the OpenAPI document states it, and the access-matrix tests check it.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Roles allowed (others get 403).
    pub roles: &'static [Role],
    /// Whether a merchant is limited to its own data here (another merchant's gets 404, or 403 on submit).
    pub merchant_scoped: bool,
}

/// The arguments of an `/api/` handler: a [`Caller`] first, whose rule is the endpoint's access rule.
/// A handler without one does not compile into the route table.
pub trait GuardedArgs {
    const ACCESS: Access;
}

macro_rules! guarded_args {
    ($($rest:ident),*) => {
        impl<A: AccessRule, $($rest),*> GuardedArgs for (Caller<A>, $($rest,)*) {
            const ACCESS: Access = A::ACCESS;
        }
    };
}

guarded_args!();
guarded_args!(B);
guarded_args!(B, C);
guarded_args!(B, C, D);
guarded_args!(B, C, D, E);

/// One `/api/` endpoint: its method, path, handler (documented by paperclip) and the access rule the
/// handler's [`Caller`] enforces.
pub struct ApiRoute {
    pub method: actix_web::http::Method,
    pub path: &'static str,
    pub access: Access,
    route: paperclip::actix::web::Route,
}

impl ApiRoute {
    pub fn new<F, Args>(method: actix_web::http::Method, path: &'static str, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: FromRequest + GuardedArgs + 'static,
        F::Output: actix_web::Responder + 'static,
        F::Future: paperclip::v2::schema::Apiv2Operation,
    {
        let route = paperclip::actix::web::method(method.clone()).to(handler);
        ApiRoute {
            method,
            path,
            access: Args::ACCESS,
            route,
        }
    }
}

/// Registers every route of the table under `/api`, each in the OpenAPI document.
pub fn api_scope(routes: Vec<ApiRoute>) -> paperclip::actix::web::Scope {
    routes
        .into_iter()
        .fold(paperclip::actix::web::scope("/api"), |scope, api_route| {
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
