//! Drives the producer with realistic receipts ([`receipts`]) flat out or at a fixed rate, and reports what it
//! saw ([`report`]). Flat out, each connection sends its next receipt when the last is answered. At a fixed
//! rate, arrivals are open, as from many independent tills: each receipt is sent when it is due whether or not
//! earlier ones have been answered, and its latency counts from when it was due. While it runs, a probe sends
//! one receipt a second to a place of its own and times how long `GET /api/analytics/` on the consumer takes
//! to count it (freshness).

pub mod receipts;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use shared_models::testing::ReceiptBody;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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
    /// Flat out: concurrent connections. At a fixed rate: senders sharing the rate, each with its own
    /// receipts and schedule.
    pub connections: usize,
    /// Receipts a second over all senders; none: flat out.
    pub rate: Option<f64>,
    /// At a fixed rate, the most requests unanswered at once; a receipt due beyond it waits, and its waiting
    /// counts in its latency.
    pub max_in_flight: usize,
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
/// How long a connection may wait idle in the pool before it is closed: below the producer's default
/// `HTTP_KEEP_ALIVE_SECONDS` (30), so that a request is never sent on a connection the producer is closing.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the probe waits for a receipt to be counted.
const FRESHNESS_LIMIT: Duration = Duration::from_secs(60);

/// Runs the plan to its end and reports.
pub async fn run(plan: Plan, counters: Arc<Counters>) -> Report {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
        .pool_max_idle_per_host(plan.connections.max(plan.max_in_flight) + 1)
        .build()
        .expect("an HTTP client");
    let plan = Arc::new(plan);
    let in_flight = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let checks = format!("{}/api/checks/", plan.producer);
    let started = Instant::now();
    let clients: Vec<_> = (0..plan.connections.max(1))
        .map(|index| {
            let sender = Sender {
                plan: plan.clone(),
                http: http.clone(),
                checks: checks.clone(),
                started,
                counters: counters.clone(),
            };
            match plan.rate {
                Some(rate) => tokio::spawn(sender.at_rate(rate, index, in_flight.clone())),
                None => tokio::spawn(sender.flat_out(index)),
            }
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

/// One submission's answer.
struct Answer {
    /// The second of the run it was due in.
    second: usize,
    kind: Kind,
    /// A new receipt's body, to be repeated later once accepted.
    new: Option<Vec<u8>>,
    /// 0 when no answer came.
    status: u16,
    /// From when it was due until it was answered.
    latency: Duration,
}

/// What every sender shares.
struct Sender {
    plan: Arc<Plan>,
    http: reqwest::Client,
    /// The producer's `POST /api/checks/` URL.
    checks: String,
    started: Instant,
    counters: Arc<Counters>,
}

impl Sender {
    /// Sends each receipt when the last one is answered, until the run's end.
    async fn flat_out(self, index: usize) -> Report {
        let mut factory = ReceiptFactory::new(self.plan.mix.clone(), &self.plan.run, index);
        let mut report = Report::default();
        while self.started.elapsed() < self.plan.duration {
            let (kind, body) = factory.submission();
            let answer = self.submit(kind, body, Instant::now()).await;
            self.record(&mut report, &mut factory, answer);
        }
        report
    }

    /// Sends this sender's share of `rate` receipts a second, each when it is due.
    async fn at_rate(self, rate: f64, index: usize, in_flight: Arc<Semaphore>) -> Report {
        let senders = self.plan.connections.max(1);
        let mut factory = ReceiptFactory::new(self.plan.mix.clone(), &self.plan.run, index);
        let interval = Duration::from_secs_f64(senders as f64 / rate);
        // Senders start spread over one interval, so requests do not arrive in bursts.
        let mut due = self.started + interval.mul_f64(index as f64 / senders as f64);
        let mut report = Report::default();
        let mut unanswered = JoinSet::new();
        let this = Arc::new(self);
        while due.duration_since(this.started) < this.plan.duration {
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => break,
                    Some(Ok(answer)) = unanswered.join_next() => {
                        this.record(&mut report, &mut factory, answer);
                    }
                }
            }
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (kind, body) = factory.submission();
            let sender = this.clone();
            unanswered.spawn(async move {
                let answer = sender.submit(kind, body, due).await;
                drop(permit);
                answer
            });
            due += interval;
        }
        while let Some(answer) = unanswered.join_next().await {
            if let Ok(answer) = answer {
                this.record(&mut report, &mut factory, answer);
            }
        }
        report
    }

    async fn submit(&self, kind: Kind, body: Vec<u8>, due: Instant) -> Answer {
        let new = (kind == Kind::New).then(|| body.clone());
        let answer = self
            .http
            .post(&self.checks)
            .bearer_auth(&self.plan.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        Answer {
            second: due.duration_since(self.started).as_secs() as usize,
            kind,
            new,
            status: answer.map_or(0, |response| response.status().as_u16()),
            latency: due.elapsed(),
        }
    }

    fn record(&self, report: &mut Report, factory: &mut ReceiptFactory, answer: Answer) {
        report.record(answer.second, answer.status, answer.latency);
        if let (Some(body), 202) = (answer.new, answer.status) {
            factory.accepted(body);
        }
        report.unexpected += u64::from(!expected(answer.kind, answer.status));
        self.counters.answered.fetch_add(1, Ordering::Relaxed);
        self.counters
            .accepted
            .fetch_add(u64::from(answer.status == 202), Ordering::Relaxed);
    }
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

#[cfg(test)]
mod tests;
