//! The one server builder both services use: their `/api/` routes with the OpenAPI document and Swagger UI,
//! authentication, request ids, metrics and the access log, `/health`, a JSON 404 for unknown paths,
//! timeouts that keep a slow client from holding a connection, and a bound on the connections held at once.

use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpServer};

use crate::config::HttpConfig;
use crate::web::auth::AuthState;
use crate::web::connections::{turn_connections_over, OpenConnections};
use crate::web::error::ApiError;
use crate::web::observe::{access_log, observe_requests, HttpMetrics};
use crate::web::openapi::{with_documents, Refinement};
use crate::web::ops;
use crate::web::routes::ApiRoute;

/// What a service serves.
#[derive(Clone, Copy)]
pub struct ApiService {
    pub title: &'static str,
    pub description: &'static str,
    /// The `/api/` route table.
    pub routes: fn() -> Vec<ApiRoute>,
    /// What the document should say that the handlers' types cannot.
    pub refinements: &'static [Refinement],
}

/// How many HTTP worker threads a service runs: actix's own default (one per core), made explicit so that
/// the connections can be shared among them.
pub fn http_workers() -> usize {
    std::thread::available_parallelism().map_or(2, NonZeroUsize::get)
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("there is nothing at {}", req.path())))
}

/// Starts serving on `listener`. `configure` adds the service's own state and its `/ready` and `/metrics`.
pub fn serve<F>(
    listener: TcpListener,
    service: ApiService,
    http: &HttpConfig,
    auth: web::Data<AuthState>,
    metrics: web::Data<HttpMetrics>,
    configure: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let limits = web::Data::new(http.clone());
    let workers = http_workers();
    let per_worker = (http.max_connections as usize).div_ceil(workers);
    let bound = per_worker * workers;
    let connections = OpenConnections::new(metrics.open_connections.clone(), bound);
    let on_connect = connections.on_connect();
    // Past the bound, connections wait in the listener's queue: as many again may wait there (the operating
    // system may cap it lower), where the standard library's 128 would leave the rest retrying to connect.
    socket2::SockRef::from(&listener).listen(i32::try_from(bound).unwrap_or(i32::MAX))?;
    let server = HttpServer::new(move || {
        with_documents(
            App::new(),
            service.title,
            service.description,
            (service.routes)(),
            service.refinements,
        )
        .wrap(from_fn(turn_connections_over))
        .wrap(from_fn(observe_requests))
        .wrap(access_log())
        .app_data(connections.clone())
        .app_data(auth.clone())
        .app_data(metrics.clone())
        .app_data(limits.clone())
        .route("/health", web::get().to(ops::health))
        .configure(configure.clone())
        .default_service(web::to(not_found))
    })
    .client_request_timeout(Duration::from_secs(http.request_timeout_seconds))
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(Duration::from_secs(http.keep_alive_seconds))
    .workers(workers)
    .max_connections(per_worker)
    .on_connect(on_connect)
    .listen(listener)?
    .shutdown_timeout(20)
    .run();
    Ok(server)
}
