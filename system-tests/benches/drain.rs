//! The consumer draining a backlog (`make bench`, which runs `scripts/bench.sh`): a whole stack as release
//! processes (PostgreSQL with fsync and synchronous_commit on, Redis, the broker, the producer, one consumer
//! and one worker); the consumer is stopped, a backlog of receipts is written to the topic, and the consumer is
//! started again and timed from its first stored receipt until every receipt is stored (a killed member's
//! partitions are handed on only after its session times out, so the restart's first seconds say nothing
//! about throughput). Two backlogs, three rounds each on one stack, the median reported with the consumer's
//! peak resident memory:
//! - the backlog intake builds: the intake benchmark's receipts (the load generator's mix, bought now), as
//!   the topic holds them after the consumer falls behind a saturated intake;
//! - a sparse backlog, purchases spread over 30 days at 1,000 places, so nearly every receipt is alone in its
//!   place's hour: the most rollup rows per receipt.
//!
//! Prints a table and writes it to `target/bench/drain.md`. Asserts nothing about speed.
//!
//! `BENCH_DRAIN_RECEIPTS` sets the backlog (default 500,000); `BENCH_BIN_DIR` runs the services from another
//! directory of binaries, to measure another build on the same machine in the same way.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::prelude::*;
use producer::validation::{validate, Rules};
use rdkafka::producer::FutureProducer;
use rust_decimal::Decimal;
use serde_json::Value;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::store::schema::receipts;
use system_tests::loadgen::receipts::{Mix, ReceiptFactory};
use system_tests::stack::Stack;
use system_tests::{bench, topic};

const ROUNDS: usize = 3;
const TOPIC: &str = "bench-receipts";
const PLACES: usize = 1_000;

/// The backlogs drained.
#[derive(Clone, Copy)]
enum Backlog {
    /// What a saturated intake leaves behind: the intake benchmark's receipts, bought now.
    Intake,
    /// Purchases spread over 30 days at 1,000 places.
    Sparse,
}

impl Backlog {
    fn describe(self) -> &'static str {
        match self {
            Backlog::Intake => "as intake builds it (100 places of 20 merchants, 1 to 10 lines, bought now)",
            Backlog::Sparse => "sparse (1,000 places of 100 merchants, 1 to 5 lines, bought over 30 days)",
        }
    }

    /// The round's receipts, in the order they are written to the topic, made as they are written.
    fn envelopes(self, round: usize, count: usize) -> Box<dyn Iterator<Item = ReceiptEnvelope>> {
        match self {
            Backlog::Intake => {
                let mix = Mix {
                    merchants: 20,
                    places: 100,
                    repeats: 0.0,
                    invalid: 0.0,
                };
                let mut factory = ReceiptFactory::new(mix, &format!("drain-intake-{round}"), 0);
                Box::new((0..count).map(move |_| accepted(factory.submission().1)))
            }
            Backlog::Sparse => Box::new((0..count).map(move |index| sparse(round, index))),
        }
    }
}

/// The envelope the producer publishes for a receipt as submitted (read by the producer's own rules, at the
/// contract's defaults): the merchant it names, accepted now.
fn accepted(body: Vec<u8>) -> ReceiptEnvelope {
    let body: Value = serde_json::from_slice(&body).expect("a generated receipt is JSON");
    let fields = body.as_object().expect("a generated receipt is an object");
    let mut valid = validate(fields, &Rules::default(), Utc::now()).expect("a generated receipt is valid");
    let merchant_id = valid
        .merchant_id
        .take()
        .expect("a generated receipt names its merchant");
    let place_id = valid
        .place_id
        .take()
        .expect("a generated receipt names its place");
    ReceiptEnvelope::new(merchant_id, Utc::now(), valid.into_receipt(place_id))
}

/// A receipt of the sparse backlog: one of 1,000 places of 100 merchants, one to five lines, some weighed
/// goods, bought over 30 days.
fn sparse(round: usize, index: usize) -> ReceiptEnvelope {
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
async fn write_backlog(producer: &FutureProducer, mut envelopes: impl Iterator<Item = ReceiptEnvelope>) {
    loop {
        let chunk: Vec<ReceiptEnvelope> = envelopes.by_ref().take(5_000).collect();
        if chunk.is_empty() {
            return;
        }
        topic::publish(producer, TOPIC, chunk, Duration::from_secs(60)).await;
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

/// One round: the consumer stopped, the backlog written, the consumer started again and timed from its first
/// stored receipt until every receipt is stored. Returns receipts stored a second.
async fn drain_round(
    stack: &Stack,
    producer: &FutureProducer,
    conn: &mut PgConnection,
    backlog: Backlog,
    round: usize,
    count: usize,
) -> f64 {
    stack.kill("consumer-1");
    let base = latest_id(conn);
    write_backlog(producer, backlog.envelopes(round, count)).await;
    stack.start("consumer-1");
    let target = count as i64;
    let deadline = Instant::now() + Duration::from_secs(3_600);
    let mut first: Option<(Instant, i64)> = None;
    loop {
        // Ids are taken in order, so the latest one tells how far the drain has come without counting a
        // growing table (a `count(*)` four times a second took a tenth of a core from the consumer at 400,000
        // receipts, more each round); the receipts are counted only at the ends.
        let latest = latest_id(conn);
        if first.is_none() && latest > base {
            first = Some((Instant::now(), stored_after(conn, base)));
        }
        if latest - base >= target && stored_after(conn, base) >= target {
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
    rate
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
        let mut report = String::from(
            "| backlog | receipts | rounds | drained (median) | each round | consumer peak RSS (last round) |\n\
             |---|---|---|---|---|---|\n",
        );
        for backlog in [Backlog::Intake, Backlog::Sparse] {
            println!("backlog {}", backlog.describe());
            let mut rates = Vec::new();
            for round in 0..ROUNDS {
                rates.push(drain_round(&stack, &producer, &mut conn, backlog, round, count).await);
            }
            let rss = stack.peak_rss_kib("consumer-1").unwrap_or_default();
            report.push_str(&format!(
                "| {} | {count} | {ROUNDS} | {:.0} receipts/s | {} | {:.0} MB |\n",
                backlog.describe(),
                bench::median(rates.clone()),
                rates
                    .iter()
                    .map(|rate| format!("{rate:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rss as f64 / 1024.0
            ));
        }
        println!("{report}");
        bench::write_report("drain.md", &report);
    });
}
