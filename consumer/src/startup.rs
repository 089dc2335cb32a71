//! Building the consumer: the HTTP server bound to its listener (port 0 in tests) plus the Kafka ingest loop.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use shared_models::store::{self, PgPool};
use shared_models::web::auth::AuthState;
use shared_models::web::observe::HttpMetrics;
use shared_models::web::ops as common;
use shared_models::web::service::{self, ApiService};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ConsumerConfig;
use crate::error::ConsumerError;
use crate::ingest::{Ingest, IngestMetrics, LagReporter};
use crate::routes::{self, ops};

const API: ApiService = ApiService {
    title: "Receipts consumer",
    description: API_DESCRIPTION,
    routes: routes::api_routes,
    refinements: &[
        routes::analytics::RecomputeRequest::refine_document,
        shared_models::web::tabular::document_csv_as_text,
    ],
};

const API_DESCRIPTION: &str =
    "Places and analytics: the receipts read from Kafka, tied to places and merchants, \
and analytics (purchases, amounts, taxes, tips and categories) per place or over every place, for any period (from inclusive, to exclusive, exact for \
any instants). Admins trigger recomputes and follow the worker fleet's jobs. Every endpoint needs \
`Authorization: Bearer <token>`; errors carry `{\"error\", \"message\"}`.";

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub kafka_brokers: String,
    pub redis_url: String,
    pub queue_name: String,
    /// This replica's consumer lag, for the fleet page.
    pub lag: LagReporter,
}

pub struct Application {
    server: Server,
    port: u16,
    ingest: JoinHandle<()>,
    stop_ingest: watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: ConsumerConfig) -> Result<Self, ConsumerError> {
        let pool = store::build_pool(&config.database.database_url, config.database.database_pool_size);
        let pool_ = pool.clone();
        tokio::task::spawn_blocking(move || store::run_migrations_when_ready(&pool_, 30)).await??;
        let http_metrics = HttpMetrics::new("consumer")?;
        let lag = LagReporter::register(&http_metrics.registry)?;
        let ingest_metrics = IngestMetrics::register(&http_metrics.registry)?;
        let ingest = Ingest::connect(&config, pool.clone(), lag.clone(), ingest_metrics).await?;

        let listener = TcpListener::bind(&config.addr)
            .map_err(|error| ConsumerError::Bind(config.addr.clone(), error))?;
        let port = listener
            .local_addr()
            .map_err(|error| ConsumerError::Bind(config.addr.clone(), error))?
            .port();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            kafka_brokers: config.kafka.kafka_brokers.clone(),
            redis_url: config.redis.redis_url.clone(),
            queue_name: config.redis.analytics_queue.clone(),
            lag,
        });
        let auth_state = web::Data::new(AuthState::new(
            pool,
            Duration::from_secs(config.auth.token_cache_seconds),
        ));
        let http_metrics = web::Data::new(http_metrics);

        let server = service::serve(
            listener,
            API,
            &config.http,
            auth_state,
            http_metrics,
            move |app| {
                app.app_data(state.clone())
                    .route("/ready", web::get().to(ops::ready))
                    .route("/metrics", web::get().to(common::metrics))
                    .configure(crate::console::configure);
            },
        )
        .map_err(|error| ConsumerError::Bind(config.addr.clone(), error))?;

        let (stop_ingest, ingest_stopped) = watch::channel(false);
        let ingest = tokio::spawn(ingest.run(ingest_stopped));
        Ok(Application {
            server,
            port,
            ingest,
            stop_ingest,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then lets the ingest loop finish its batch and commit.
    pub async fn run_until_stopped(self) -> Result<(), ConsumerError> {
        let result = self.server.await;
        let _ = self.stop_ingest.send(true);
        let _ = self.ingest.await;
        result.map_err(ConsumerError::Serve)
    }
}
