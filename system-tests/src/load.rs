//! A steady load of receipts from several clients. Each receipt is posted until the producer takes it (202, or
//! 200 when an earlier attempt was taken but its answer lost); a 503, a timeout or a refused connection is
//! retried with the same body, as a careful client retries. Every answer is counted by status.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;
use shared_models::testing::ReceiptBody;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The merchant every load receipt belongs to.
pub const MERCHANT: &str = "m-load";
/// Places the load spreads over (so over the topic's partitions).
const PLACES: usize = 12;

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Transaction ids and totals of every receipt taken.
    pub accepted: Vec<(String, Decimal)>,
    /// Answers by status; 0 counts requests that got no answer (timeout, refused connection).
    pub statuses: BTreeMap<u16, usize>,
    /// The slowest answer.
    pub slowest: Duration,
}

impl Report {
    pub fn count(&self) -> i64 {
        self.accepted.len() as i64
    }

    pub fn total(&self) -> Decimal {
        self.accepted.iter().map(|(_, total)| *total).sum()
    }

    fn merge(&mut self, other: Report) {
        self.accepted.extend(other.accepted);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// A running load; [`Load::finish`] stops it and reports.
pub struct Load {
    stop: watch::Sender<bool>,
    clients: Vec<JoinHandle<Report>>,
}

/// One receipt of client `client`, number `sequence`: 1-3 lines, exact amounts.
fn receipt(client: usize, sequence: usize) -> (String, Value, Decimal) {
    let transaction_id = format!("load-{client}-{sequence}");
    let mut receipt = ReceiptBody::new(&transaction_id)
        .place(&format!("load-place-{}", (client + sequence) % PLACES))
        .at("2026-01-15T10:30:00Z")
        .vat("0.00");
    for line in 0..1 + (client + sequence) % 3 {
        let cents = 100 + ((client * 7919 + sequence * 104_729 + line * 31) % 4_900) as i64;
        receipt = receipt.line(
            &format!("p-{line}"),
            &(1 + line % 2).to_string(),
            &Decimal::new(cents, 2).to_string(),
            ["food", "drinks", "household"][line % 3],
        );
    }
    (transaction_id, receipt.build(), receipt.lines_total())
}

async fn client(
    producer: String,
    token: String,
    index: usize,
    interval: Duration,
    stop: watch::Receiver<bool>,
) -> Report {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client");
    let mut report = Report::default();
    let mut sequence = 0;
    while !*stop.borrow() {
        let started = Instant::now();
        let (transaction_id, body, total) = receipt(index, sequence);
        sequence += 1;
        let give_up = Instant::now() + Duration::from_secs(180);
        loop {
            let sent = Instant::now();
            let answer = http
                .post(format!("{producer}/api/checks/"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            report.slowest = report.slowest.max(sent.elapsed());
            let status = answer.as_ref().map_or(0, |response| response.status().as_u16());
            *report.statuses.entry(status).or_default() += 1;
            match status {
                200 | 202 => {
                    report.accepted.push((transaction_id, total));
                    break;
                }
                0 | 429 | 503 => {}
                other => panic!("receipt {transaction_id} answered {other}, which no retry mends"),
            }
            assert!(
                Instant::now() < give_up,
                "receipt {transaction_id} was never taken"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    report
}

impl Load {
    /// Starts `clients` clients sending `per_second` receipts a second between them, as merchant `token`.
    pub fn start(producer: &str, token: &str, clients: usize, per_second: f64) -> Load {
        let (stop, stopped) = watch::channel(false);
        let interval = Duration::from_secs_f64(clients as f64 / per_second);
        let clients = (0..clients)
            .map(|index| {
                tokio::spawn(client(
                    producer.to_owned(),
                    token.to_owned(),
                    index,
                    interval,
                    stopped.clone(),
                ))
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops sending; every receipt in flight is still retried until taken.
    pub async fn finish(self) -> Report {
        let _ = self.stop.send(true);
        let mut report = Report::default();
        for client in self.clients {
            report.merge(client.await.expect("a load client"));
        }
        report
    }
}
