//! The consumer draining a backlog (`make bench`, which runs `scripts/bench.sh`): a whole stack as release
//! processes (PostgreSQL with fsync and synchronous_commit on, Redis, the broker, the producer, one consumer
//! and one worker); the consumer is stopped, a backlog of receipts is written to the topic, and the consumer is
//! started again and timed from its first stored receipt until every receipt is stored (a killed member's
//! partitions are handed on only after its session times out, so the restart's first seconds say nothing
//! about throughput). Three rounds on one stack, the median reported, with
//! the consumer's peak resident memory. Prints a table and writes it to `target/bench/drain.md`. Asserts
//! nothing about speed.
//!
//! `BENCH_DRAIN_RECEIPTS` sets the backlog (default 500,000); `BENCH_BIN_DIR` runs the services from another
//! directory of binaries, to measure another build on the same machine in the same way.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::prelude::*;
use rdkafka::producer::FutureProducer;
use rust_decimal::Decimal;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::store::schema::receipts;
use system_tests::stack::Stack;
use system_tests::{bench, topic};

const ROUNDS: usize = 3;
const TOPIC: &str = "bench-receipts";
const PLACES: usize = 1_000;

/// A receipt of the backlog: one of 1,000 places of 100 merchants, one to five lines, some weighed goods,
/// bought over 30 days.
fn envelope(round: usize, index: usize) -> ReceiptEnvelope {
    let place = (index * 7_919) % PLACES;
    let lines = 1 + index % 5;
    let items: Vec<LineItem> = (0..lines)
        .map(|line| {
            let weighed = (index + line).is_multiple_of(4);
            LineItem {
                product_id: format!("sku-{}", (index + line * 31) % 500),
                quantity: if weighed {
                    Decimal::new(1_250 + (index % 500) as i64, 3)
                } else {
                    Decimal::from(1 + (line % 3) as i64)
                },
                price: Decimal::new(99 + ((index * 13 + line) % 2_000) as i64, 2),
                category: format!("category-{}", (index + line) % 12),
                extra: Default::default(),
            }
        })
        .collect();
    let total: Decimal = items.iter().map(LineItem::amount).sum();
    let receipt = Receipt {
        transaction_id: format!("drain-{round}-{index}"),
        place_id: format!("place-{place}"),
        place_name: Some(format!("Place {place}")),
        timestamp: Utc
            .timestamp_opt(1_790_000_000 + (index as i64 * 97) % 2_592_000, 0)
            .single()
            .unwrap_or_default(),
        items,
        total_amount: total,
        vat_amount: (total / Decimal::from(11)).round_dp(2),
        tips_amount: Decimal::ZERO,
        payment_method: "card".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new(format!("merchant-{}", place % 100), Utc::now(), receipt)
}

/// Writes the round's backlog to the topic, 5,000 messages in flight at a time.
async fn write_backlog(producer: &FutureProducer, round: usize, count: usize) {
    let indexes: Vec<usize> = (0..count).collect();
    for chunk in indexes.chunks(5_000) {
        let envelopes = chunk.iter().map(|&index| envelope(round, index));
        topic::publish(producer, TOPIC, envelopes, Duration::from_secs(60)).await;
    }
}

/// The id of the latest receipt stored (0 for none): a look at one end of the key's index, however many
/// receipts there are.
fn latest_id(conn: &mut PgConnection) -> i64 {
    receipts::table
        .select(diesel::dsl::max(receipts::id))
        .get_result::<Option<i64>>(conn)
        .expect("the latest receipt")
        .unwrap_or(0)
}

/// How many receipts were stored after the one with id `after`.
fn stored_after(conn: &mut PgConnection, after: i64) -> i64 {
    receipts::table
        .filter(receipts::id.gt(after))
        .count()
        .get_result(conn)
        .expect("count the receipts")
}

fn main() {
    if !bench::requested("drain") {
        return;
    }
    let count: usize = bench::setting("BENCH_DRAIN_RECEIPTS", 500_000);
    bench::runtime().block_on(async {
        let stack = Stack::builder()
            .as_in_production()
            .binaries_from_bench_dir()
            .env("KAFKA_TOPIC", TOPIC)
            .env("KAFKA_PARTITIONS", "12")
            .env("RUST_LOG", "error")
            .start()
            .await;
        let producer: FutureProducer =
            shared_models::kafka::client_config(&format!("127.0.0.1:{}", stack.kafka_port))
                .set("linger.ms", "20")
                .create()
                .expect("a producer");
        let mut conn = PgConnection::establish(&stack.database_url).expect("PostgreSQL");
        let mut rates = Vec::new();
        for round in 0..ROUNDS {
            stack.kill("consumer-1");
            let base = latest_id(&mut conn);
            write_backlog(&producer, round, count).await;
            stack.start("consumer-1");
            let target = count as i64;
            let deadline = Instant::now() + Duration::from_secs(3_600);
            let mut first: Option<(Instant, i64)> = None;
            loop {
                // Ids are taken in order, so the latest one tells how far the drain has come without counting
                // a growing table (a `count(*)` four times a second took a tenth of a core from the consumer
                // at 400,000 receipts, more each round); the receipts are counted only at the ends.
                let latest = latest_id(&mut conn);
                if first.is_none() && latest > base {
                    first = Some((Instant::now(), stored_after(&mut conn, base)));
                }
                if latest - base >= target && stored_after(&mut conn, base) >= target {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the backlog was not drained in an hour"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let (started, counted) = first.unwrap_or((Instant::now(), 0));
            let rate = (target - counted) as f64 / started.elapsed().as_secs_f64();
            println!(
                "round {}: {count} receipts drained at {rate:.0} receipts/s",
                round + 1
            );
            rates.push(rate);
        }
        let median = bench::median(rates.clone());
        let rss = stack.peak_rss_kib("consumer-1").unwrap_or_default();
        let report = format!(
            "| backlog | rounds | drained (median) | each round | consumer peak RSS (last round) |\n\
             |---|---|---|---|---|\n\
             | {count} receipts | {ROUNDS} | {median:.0} receipts/s | {} | {:.0} MB |\n",
            rates
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            rss as f64 / 1024.0
        );
        println!("{report}");
        bench::write_report("drain.md", &report);
    });
}
