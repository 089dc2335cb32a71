//! The load generator's arrivals against a stand-in producer that answers every receipt 202 after a delay.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::receipts::Mix;
use super::{run, Plan};

/// Starts a stand-in producer that answers each request 202 `delay` after reading it, and returns its URL.
async fn slow_producer(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("the listener's address");
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut connection = BufReader::new(connection);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if connection.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if connection.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                    if connection.get_mut().write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

fn plan(producer: String, rate: f64, max_in_flight: usize) -> Plan {
    Plan {
        producer,
        consumer: None,
        token: "token".to_owned(),
        connections: 2,
        rate: Some(rate),
        max_in_flight,
        duration: Duration::from_secs(1),
        mix: Mix {
            merchants: 2,
            places: 4,
            repeats: 0.0,
            invalid: 0.0,
        },
        run: "arrivals".to_owned(),
    }
}

#[tokio::test]
async fn at_a_fixed_rate_each_receipt_goes_out_when_due_while_earlier_ones_are_unanswered() {
    let producer = slow_producer(Duration::from_millis(200)).await;

    // Two senders at 100 receipts a second: one every 20 ms each, each answered after 200 ms.
    let report = run(plan(producer, 100.0, 1024), Arc::default()).await;

    assert_eq!(report.accepted(), 100, "{:?}", report.statuses);
    assert_eq!(report.unexpected, 0);
    let slowest = report.latency_ms(1.0);
    assert!(
        (200.0..400.0).contains(&slowest),
        "every receipt took the producer's 200 ms and none waited for an earlier answer: slowest {slowest} ms"
    );
}

#[tokio::test]
async fn a_receipt_due_beyond_the_most_in_flight_waits_and_its_wait_counts() {
    let producer = slow_producer(Duration::from_millis(200)).await;

    // At most 5 unanswered of 200 ms each: 25 receipts a second against the 100 due.
    let report = run(plan(producer, 100.0, 5), Arc::default()).await;

    assert_eq!(report.accepted(), 100, "{:?}", report.statuses);
    let slowest = report.latency_ms(1.0);
    assert!(
        slowest > 2_000.0,
        "the last receipt was due before 1 s and answered after about 4 s: slowest {slowest} ms"
    );
}
