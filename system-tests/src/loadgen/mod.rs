//! Drives the producer with realistic receipts ([`receipts`]) from many connections, at a fixed rate or flat
//! out, and reports what it saw ([`report`]). While it runs, a probe sends one receipt a second to a place of
//! its own and times how long `GET /api/analytics/` on the consumer takes to count it (freshness).

pub mod receipts;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use shared_models::testing::ReceiptBody;

use receipts::{Kind, Mix, ReceiptFactory};
pub use report::Report;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The producer's base URL.
    pub producer: String,
    /// The consumer's base URL, for freshness; none: not sampled.
    pub consumer: Option<String>,
    /// An admin token (receipts name their merchants).
    pub token: String,
    pub connections: usize,
    /// Receipts a second over all connections; none: flat out.
    pub rate: Option<f64>,
    pub duration: Duration,
    pub mix: Mix,
    /// Prefix of this run's transaction ids, so runs never collide.
    pub run: String,
}

/// Running totals, for a progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub answered: AtomicU64,
    pub accepted: AtomicU64,
}

/// How long a request may take before it counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the probe waits for a receipt to be counted.
const FRESHNESS_LIMIT: Duration = Duration::from_secs(60);

/// Runs the plan to its end and reports.
pub async fn run(plan: Plan, counters: Arc<Counters>) -> Report {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(plan.connections + 1)
        .build()
        .expect("an HTTP client");
    let plan = Arc::new(plan);
    let started = Instant::now();
    let clients: Vec<_> = (0..plan.connections.max(1))
        .map(|index| {
            tokio::spawn(client(
                plan.clone(),
                http.clone(),
                index,
                started,
                counters.clone(),
            ))
        })
        .collect();
    let probe = plan
        .consumer
        .clone()
        .map(|consumer| tokio::spawn(probe(plan.clone(), http.clone(), consumer, started)));
    let mut report = Report::default();
    for client in clients {
        report.merge(client.await.expect("a load client"));
    }
    report.elapsed = started.elapsed().min(plan.duration);
    if let Some(probe) = probe {
        report.freshness = probe.await.expect("the freshness probe");
    }
    report
}

fn expected(kind: Kind, status: u16) -> bool {
    matches!(
        (kind, status),
        (Kind::New, 202) | (Kind::Repeat, 200) | (Kind::Invalid, 422)
    )
}

async fn client(
    plan: Arc<Plan>,
    http: reqwest::Client,
    index: usize,
    started: Instant,
    counters: Arc<Counters>,
) -> Report {
    let mut factory = ReceiptFactory::new(plan.mix.clone(), &plan.run, index);
    let interval = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.connections.max(1) as f64 / rate));
    // Clients at a fixed rate start spread over one interval, so requests do not arrive in bursts.
    let mut due = started
        + interval
            .unwrap_or_default()
            .mul_f64(index as f64 / plan.connections.max(1) as f64);
    let mut report = Report::default();
    let url = format!("{}/api/checks/", plan.producer);
    while due.duration_since(started) < plan.duration {
        match interval {
            Some(_) => tokio::time::sleep_until(due.into()).await,
            None => due = Instant::now(),
        }
        let (kind, body) = factory.submission();
        let answer = http
            .post(&url)
            .bearer_auth(&plan.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let status = answer.map_or(0, |response| response.status().as_u16());
        report.record(
            due.duration_since(started).as_secs() as usize,
            status,
            due.elapsed(),
        );
        report.unexpected += u64::from(!expected(kind, status));
        counters.answered.fetch_add(1, Ordering::Relaxed);
        counters
            .accepted
            .fetch_add(u64::from(status == 202), Ordering::Relaxed);
        if let Some(interval) = interval {
            due += interval;
        }
    }
    report
}

/// Sends one receipt a second to a place of the run's own and measures, for each, the time from its 202
/// until the consumer's `GET /api/analytics/` counts it.
async fn probe(plan: Arc<Plan>, http: reqwest::Client, consumer: String, started: Instant) -> Vec<u64> {
    let place = format!("probe-{}", plan.run);
    let mut freshness = Vec::new();
    let mut sent = 0;
    while started.elapsed() < plan.duration {
        let next = Instant::now() + Duration::from_secs(1);
        let body = ReceiptBody::new(&format!("{place}-{sent}"))
            .place(&place)
            .merchant("merchant-probe")
            .at(&Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))
            .line("probe", "1", "1.00", "probe")
            .vat("0.00")
            .build();
        let answer = http
            .post(format!("{}/api/checks/", plan.producer))
            .bearer_auth(&plan.token)
            .json(&body)
            .send()
            .await;
        if answer.is_ok_and(|answer| answer.status().as_u16() == 202) {
            let accepted = Instant::now();
            sent += 1;
            while accepted.elapsed() < FRESHNESS_LIMIT
                && counted(&http, &plan.token, &consumer, &place).await < sent
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            freshness.push(accepted.elapsed().as_millis() as u64);
        }
        tokio::time::sleep_until(next.into()).await;
    }
    freshness
}

/// How many receipts `GET /api/analytics/` counts at a place (0 when it cannot be asked).
async fn counted(http: &reqwest::Client, token: &str, consumer: &str, place: &str) -> u64 {
    let answer = http
        .get(format!("{consumer}/api/analytics/"))
        .query(&[("place_id", place)])
        .bearer_auth(token)
        .send()
        .await;
    let Ok(answer) = answer else { return 0 };
    let body: Value = answer.json().await.unwrap_or(json!(null));
    body["summary"]["total_purchases"].as_u64().unwrap_or(0)
}
