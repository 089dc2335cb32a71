//! Building the producer: a server bound to its listener (port 0 in tests) plus the outbox relay.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use chrono::TimeDelta;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use shared_models::store::tokens;
use shared_models::store::{self, PgPool};
use shared_models::web::auth::AuthState;
use shared_models::web::observe::HttpMetrics;
use shared_models::web::rate_limit::RateLimiter;
use shared_models::web::service::{self, ApiService};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{IntakeConfig, ProducerConfig};
use crate::error::ProducerError;
use crate::intake::{GroupCommit, GroupMetrics};
use crate::relay;
use crate::routes::{self, ops};
use crate::validation::Rules;

/// Producer-specific metrics, registered in the shared registry.
#[derive(Clone)]
pub struct ProducerMetrics {
    pub receipts: IntCounterVec,
    pub outbox_backlog: IntGauge,
    /// Published receipts the consumer had not stored after the grace period, at the last reconcile.
    pub unconsumed_receipts: IntGauge,
    /// Receipts published again by the reconcile.
    pub outbox_replays: IntCounter,
    /// Receipts per group commit.
    pub group_sizes: Histogram,
    /// Receipts answered 503 because intake already held `INTAKE_QUEUE_RECEIPTS`.
    pub turned_away: IntCounter,
}

impl ProducerMetrics {
    fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let receipts = IntCounterVec::new(
            Opts::new(
                "receipts_total",
                "Receipt submissions by outcome and rejection reason",
            ),
            &["outcome", "reason"],
        )?;
        let outbox_backlog = IntGauge::new(
            "outbox_backlog",
            "Accepted receipts not yet acknowledged by Kafka",
        )?;
        let unconsumed_receipts = IntGauge::new(
            "unconsumed_receipts",
            "Published receipts the consumer had not stored after the grace period, at the last reconcile",
        )?;
        let outbox_replays = IntCounter::new(
            "outbox_replays_total",
            "Receipts published again because the consumer had not stored them after the grace period",
        )?;
        registry.register(Box::new(receipts.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(unconsumed_receipts.clone()))?;
        let group_sizes = Histogram::with_opts(
            HistogramOpts::new(
                "intake_group_receipts",
                "Receipts written per intake transaction (group commit)",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
        )?;
        let turned_away = IntCounter::new(
            "intake_turned_away_receipts_total",
            "Receipts answered 503 because intake already held INTAKE_QUEUE_RECEIPTS receipts",
        )?;
        registry.register(Box::new(outbox_replays.clone()))?;
        registry.register(Box::new(group_sizes.clone()))?;
        registry.register(Box::new(turned_away.clone()))?;
        Ok(ProducerMetrics {
            receipts,
            outbox_backlog,
            unconsumed_receipts,
            outbox_replays,
            group_sizes,
            turned_away,
        })
    }
}

const API: ApiService = ApiService {
    title: "Receipts producer",
    description: API_DESCRIPTION,
    routes: routes::api_routes,
    refinements: &[
        crate::validation::refine_document,
        routes::tokens::NewToken::refine_document,
        shared_models::web::rate_limit::document_rate_limit,
    ],
};

const API_DESCRIPTION: &str =
    "Receipt intake: merchants submit purchase receipts, which are validated, logged and \
handed to Kafka through a transactional outbox, and read back their status and the log of every attempt. \
Admins manage API tokens here. Every endpoint needs `Authorization: Bearer <token>`; errors carry \
`{\"error\", \"message\"}` and, for validation, `details` listing every failing field.";

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub rules: Rules,
    pub intake: IntakeConfig,
    pub kafka_brokers: String,
    pub metrics: ProducerMetrics,
    pub group_commit: GroupCommit,
}

/// Applies migrations (retrying while PostgreSQL starts) and stores the bootstrap admin token.
pub async fn prepare_database(pool: &PgPool, bootstrap_token: Option<String>) -> Result<(), ProducerError> {
    let pool_ = pool.clone();
    tokio::task::spawn_blocking(move || store::run_migrations_when_ready(&pool_, 30)).await??;
    if let Some(secret) = bootstrap_token.filter(|secret| !secret.is_empty()) {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ProducerError> {
            let mut conn = pool.get()?;
            Ok(tokens::ensure_bootstrap_admin(&mut conn, &secret)?)
        })
        .await??;
    }
    Ok(())
}

pub struct Application {
    server: Server,
    port: u16,
    relay: JoinHandle<()>,
    reconcile: JoinHandle<()>,
    /// Stops the relay and the reconcile.
    stop_relay: watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: ProducerConfig) -> Result<Self, ProducerError> {
        let pool = store::build_pool(&config.database.database_url, config.database.database_pool_size);
        prepare_database(&pool, config.bootstrap_admin_token.clone()).await?;

        let listener = TcpListener::bind(&config.addr)
            .map_err(|error| ProducerError::Bind(config.addr.clone(), error))?;
        let port = listener
            .local_addr()
            .map_err(|error| ProducerError::Bind(config.addr.clone(), error))?
            .port();

        let http_metrics = HttpMetrics::new("producer")?;
        let metrics = ProducerMetrics::register(&http_metrics.registry)?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            rules: Rules {
                total_tolerance: config.intake.total_tolerance,
                earliest: config.intake.earliest_timestamp,
                max_future_skew: TimeDelta::seconds(config.intake.max_future_skew_seconds as i64),
            },
            intake: config.intake.clone(),
            group_commit: GroupCommit::start(
                pool.clone(),
                &config.intake,
                GroupMetrics {
                    group_sizes: metrics.group_sizes.clone(),
                    turned_away: metrics.turned_away.clone(),
                },
            ),
            kafka_brokers: config.kafka.kafka_brokers.clone(),
            metrics: metrics.clone(),
        });
        let auth_state = web::Data::new(AuthState::new(
            pool.clone(),
            Duration::from_secs(config.auth.token_cache_seconds),
        ));
        let http_metrics = web::Data::new(http_metrics);
        let rate_limiter =
            RateLimiter::new(config.rate_limit.per_second, config.rate_limit.burst).map(web::Data::new);

        let server = service::serve(
            listener,
            API,
            &config.http,
            auth_state,
            http_metrics,
            move |app| {
                app.app_data(state.clone())
                    .route("/ready", web::get().to(ops::ready))
                    .route("/metrics", web::get().to(ops::metrics));
                if let Some(limiter) = &rate_limiter {
                    app.app_data(limiter.clone());
                }
            },
        )
        .map_err(|error| ProducerError::Bind(config.addr.clone(), error))?;

        let (stop_relay, relay_stopped) = watch::channel(false);
        let relay = tokio::spawn(relay::run(
            pool.clone(),
            config.kafka.kafka_brokers.clone(),
            config.kafka.kafka_topic.clone(),
            config.kafka.kafka_partitions,
            config.relay.clone(),
            relay_stopped.clone(),
        ));
        let reconcile = tokio::spawn(relay::reconcile_periodically(
            pool,
            config.relay.clone(),
            metrics,
            relay_stopped,
        ));
        Ok(Application {
            server,
            port,
            relay,
            reconcile,
            stop_relay,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT (actix handles both gracefully), then stops the relay and the reconcile.
    pub async fn run_until_stopped(self) -> Result<(), ProducerError> {
        let result = self.server.await;
        let _ = self.stop_relay.send(true);
        let _ = self.relay.await;
        let _ = self.reconcile.await;
        result.map_err(ProducerError::Serve)
    }
}
