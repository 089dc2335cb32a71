//! Intake and the whole pipeline (`make bench`, which runs `scripts/bench.sh`), on a stack of release
//! processes with PostgreSQL's fsync and synchronous_commit on:
//! 1. the ceiling: pgbench, one transaction per receipt (`ceiling.sql`), 32 clients;
//! 2. intake flat out: `loadgen` from 32 connections, with the whole pipeline running, then alone (the
//!    consumer stopped, the relay still publishing every receipt to the broker), as pgbench runs alone;
//! 3. the saturation rate: intake flat out for `BENCH_SATURATION_SECONDS` with the whole pipeline behind it,
//!    the receipts accepted a second after its first minute (what it sustains, where a short round runs on a
//!    young database and ahead of the consumer's and autovacuum's work);
//! 4. the whole pipeline at 80% of the saturation rate for `BENCH_PIPELINE_SECONDS`, arrivals open (each
//!    receipt sent when due, answered or not, up to 1,024 unanswered), with the outbox backlog and the
//!    consumer's lag sampled every second and freshness probed (a receipt's 202 until `GET /api/analytics/`
//!    counts it);
//! 5. the peak resident memory of each process (the consumer's since it started again after step 2);
//! 6. the seconds of step 4 whose p99 was over 250 ms, beside what PostgreSQL logged meanwhile.
//!
//! Steps 1 and 2 take the median of three rounds of `BENCH_INTAKE_SECONDS`, one after the other on the same
//! stack; each round of intake, and steps 3 and 4, start once the pipeline has delivered everything accepted
//! before (the outbox is empty, and the consumer, when it runs, has stored it all). Steps 3 and 4 start with
//! a checkpoint, so that they write into the WAL files of the steps before them, recycled, as a server past
//! its first checkpoint does: a new cluster creates each of its first files while commits wait
//! (docs/performance.md, "A new cluster's first WAL files"). Prints the report and writes it, with two
//! charts, to `target/bench/`. Asserts nothing about speed.

mod charts;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use shared_models::store::outbox;
use system_tests::loadgen::receipts::Mix;
use system_tests::loadgen::{self, Counters, Plan, Report};
use system_tests::stack::Stack;
use system_tests::{bench, episodes};

const ROUNDS: usize = 3;
const CONNECTIONS: usize = 32;
/// The consumer's process, stopped while intake runs alone.
const CONSUMER: &str = "consumer-1";
/// At a fixed rate, the most requests the load generator keeps unanswered at once.
const MAX_IN_FLIGHT: usize = 1024;

fn seconds(variable: &str, default: u64) -> Duration {
    Duration::from_secs(bench::setting(variable, default))
}

/// Transactions a second pgbench reached with `ceiling.sql`.
fn pgbench_round(stack: &Stack, duration: Duration) -> f64 {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/intake/ceiling.sql");
    let output = Command::new(std::env::var("PGBENCH").unwrap_or_else(|_| "pgbench".into()))
        .args(["-n", "-c", &CONNECTIONS.to_string(), "-j", "2", "-T"])
        .arg(duration.as_secs().to_string())
        .arg("-f")
        .arg(script)
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(stack.pg_port.to_string())
        .arg("postgres")
        .output()
        .expect("pgbench runs (PGBENCH names it)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench reported no tps: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

fn prepare_ceiling(conn: &mut PgConnection) {
    conn.batch_execute(
        "DROP TABLE IF EXISTS ceiling_receipts, ceiling_outbox;
         CREATE TABLE ceiling_receipts (merchant_id TEXT NOT NULL, transaction_id TEXT NOT NULL, body JSONB NOT NULL,
             received_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (merchant_id, transaction_id));
         CREATE TABLE ceiling_outbox (id BIGSERIAL PRIMARY KEY, merchant_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
             payload TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ);",
    )
    .expect("the ceiling's tables");
}

fn plan(stack: &Stack, run: &str, rate: Option<f64>, duration: Duration, freshness: bool) -> Plan {
    Plan {
        producer: stack.producer_url.clone(),
        consumer: freshness.then(|| stack.consumer_url.clone()),
        token: stack.admin_token.clone(),
        connections: CONNECTIONS,
        rate,
        max_in_flight: MAX_IN_FLIGHT,
        duration,
        mix: Mix {
            merchants: 20,
            places: 100,
            repeats: 0.0,
            invalid: 0.0,
        },
        run: run.to_owned(),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Accepted receipts not yet acknowledged by Kafka.
fn outbox_backlog(conn: &mut PgConnection) -> i64 {
    outbox::backlog(conn).unwrap_or(-1)
}

/// Ends the checkpoint cycle that the steps so far wrote their WAL in, so that its files are recycled.
fn checkpoint(conn: &mut PgConnection) {
    conn.batch_execute("CHECKPOINT").expect("a checkpoint");
}

/// Waits until every receipt accepted so far is stored by the consumer, so that one round's backlog does not
/// slow the next round down.
async fn wait_for_pipeline(conn: &mut PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    loop {
        let behind = diesel::sql_query(
            "SELECT (SELECT count(*) FROM accepted_receipts) - (SELECT count(*) FROM receipts) AS count",
        )
        .get_result::<Count>(conn)
        .map_or(1, |row| row.count);
        if behind <= 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{behind} receipts were never stored");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until the relay has published every receipt accepted so far.
async fn wait_for_relay(conn: &mut PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    loop {
        let backlog = outbox_backlog(conn);
        if backlog == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{backlog} receipts were never published"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Messages on the topic the consumer has not stored, from its `/metrics`.
async fn consumer_lag(http: &reqwest::Client, consumer: &str) -> f64 {
    let Ok(answer) = http.get(format!("{consumer}/metrics")).send().await else {
        return -1.0;
    };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("consumer_lag_messages{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One sample a second: (second, outbox backlog, consumer lag).
type Sample = (f64, f64, f64);

async fn sample_until(stack: &Stack, duration: Duration) -> Vec<Sample> {
    let http = reqwest::Client::new();
    let mut conn = PgConnection::establish(&stack.database_url).expect("PostgreSQL");
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        let next = Instant::now() + Duration::from_secs(1);
        let backlog = outbox_backlog(&mut conn) as f64;
        let lag = consumer_lag(&http, &stack.consumer_url).await;
        samples.push((started.elapsed().as_secs_f64(), backlog, lag));
        tokio::time::sleep_until(next.into()).await;
    }
    samples
}

/// Mean of backlog plus lag over the first and the last minute (after a 30 s warm-up): an upward trend shows
/// as a last minute well above the first.
fn trend(samples: &[Sample]) -> (f64, f64) {
    let queued = |window: &[&Sample]| {
        window.iter().map(|(_, backlog, lag)| backlog + lag).sum::<f64>() / window.len().max(1) as f64
    };
    let last = samples.last().map_or(0.0, |(second, _, _)| *second);
    let first: Vec<&Sample> = samples
        .iter()
        .filter(|(s, _, _)| (30.0..90.0).contains(s))
        .collect();
    let end: Vec<&Sample> = samples.iter().filter(|(s, _, _)| *s >= last - 60.0).collect();
    (queued(&first), queued(&end))
}

/// Receipts accepted a second after a flat-out run's first minute (after its first half, if it is shorter).
fn settled_rate(report: &Report) -> f64 {
    let settled = &report.seconds[(report.seconds.len() / 2).min(60)..];
    settled.iter().map(|second| second.accepted).sum::<u64>() as f64 / settled.len().max(1) as f64
}

fn ms(report: &Report, share: f64) -> String {
    format!("{:.1} ms", report.latency_ms(share))
}

/// The report's cell for rounds of intake flat out: the median round's rate against the ceiling and its
/// latency, then every round's rate, slowest first.
fn flat_out_cell(rounds: &mut [Report], ceiling: f64) -> String {
    rounds.sort_by(|a, b| a.accepted_per_second().total_cmp(&b.accepted_per_second()));
    let median = &rounds[rounds.len() / 2];
    let rate = median.accepted_per_second();
    let each: Vec<String> = rounds
        .iter()
        .map(|round| format!("{:.0}", round.accepted_per_second()))
        .collect();
    format!(
        "{rate:.0} receipts/s = {ratio:.2}x the ceiling; p50 {}, p95 {}, p99 {}, max {} (rounds: {})",
        ms(median, 0.50),
        ms(median, 0.95),
        ms(median, 0.99),
        ms(median, 1.0),
        each.join(", "),
        ratio = rate / ceiling,
    )
}

fn main() {
    if !bench::requested("intake") {
        return;
    }
    let round_length = seconds("BENCH_INTAKE_SECONDS", 20);
    let pipeline_length = seconds("BENCH_PIPELINE_SECONDS", 300);
    let saturation_length = seconds("BENCH_SATURATION_SECONDS", 300);
    bench::runtime().block_on(async {
        let stack = Stack::builder()
            .as_in_production()
            .binaries_from_bench_dir()
            .env("RUST_LOG", "error")
            .env("CONSUMER_LAG_INTERVAL_MS", "1000")
            .start()
            .await;
        let mut conn = PgConnection::establish(&stack.database_url).expect("PostgreSQL");
        prepare_ceiling(&mut conn);

        let mut ceilings = Vec::new();
        let mut intakes = Vec::new();
        for round in 0..ROUNDS {
            let ceiling = pgbench_round(&stack, round_length);
            println!("round {}: pgbench ceiling {ceiling:.0} tx/s", round + 1);
            ceilings.push(ceiling);
            let run = format!("flat-{round}-{}", std::process::id());
            let report = loadgen::run(plan(&stack, &run, None, round_length, false), Arc::default()).await;
            println!("round {}: intake flat out\n{report}", round + 1);
            intakes.push(report);
            wait_for_pipeline(&mut conn).await;
        }
        let ceiling = bench::median(ceilings.clone());
        let flat_out = flat_out_cell(&mut intakes, ceiling);

        stack.kill(CONSUMER);
        let mut alone = Vec::new();
        for round in 0..ROUNDS {
            wait_for_relay(&mut conn).await;
            let run = format!("alone-{round}-{}", std::process::id());
            let report = loadgen::run(plan(&stack, &run, None, round_length, false), Arc::default()).await;
            println!("round {}: intake flat out alone, the consumer stopped\n{report}", round + 1);
            alone.push(report);
        }
        stack.start(CONSUMER);
        wait_for_pipeline(&mut conn).await;
        let alone_flat_out = flat_out_cell(&mut alone, ceiling);

        checkpoint(&mut conn);
        println!("intake flat out for {} s with the whole pipeline", saturation_length.as_secs());
        let run = format!("saturation-{}", std::process::id());
        let sustained = loadgen::run(plan(&stack, &run, None, saturation_length, false), Arc::default()).await;
        println!("{sustained}");
        let saturation = settled_rate(&sustained);
        wait_for_pipeline(&mut conn).await;

        let rate = 0.8 * saturation;
        checkpoint(&mut conn);
        println!("the whole pipeline at {rate:.0} receipts/s for {} s", pipeline_length.as_secs());
        let run = format!("pipeline-{}", std::process::id());
        let counters = Arc::new(Counters::default());
        let pipeline_started = Utc::now();
        let (pipeline, samples) = tokio::join!(
            loadgen::run(plan(&stack, &run, Some(rate), pipeline_length, true), counters),
            sample_until(&stack, pipeline_length)
        );
        println!("{pipeline}");
        let (first_minute, last_minute) = trend(&samples);
        let rss = |name: &str| stack.peak_rss_kib(name).unwrap_or_default() as f64 / 1024.0;

        let per_second_p99: Vec<f64> = pipeline.seconds.iter().map(|second| second.latency_ms(0.99)).collect();
        let report = format!(
            "| what | measured |\n|---|---|\n\
             | pgbench ceiling, one transaction per receipt, {CONNECTIONS} clients (median of {ROUNDS} rounds of {round} s) | {ceiling:.0} tx/s (rounds: {ceilings}) |\n\
             | intake flat out, {CONNECTIONS} connections, unique receipts (median round) | {flat_out} |\n\
             | intake flat out alone: the consumer stopped, the relay publishing (median round) | {alone_flat_out} |\n\
             | saturation: intake flat out for {saturation_s} s, the whole pipeline behind it | {saturation:.0} receipts/s a second after the first minute = {saturation_ratio:.2}x the ceiling ({sustained_all:.0} over the whole run); p50 {s50}, p99 {s99}, max {smax} |\n\
             | whole pipeline at 80% ({rate:.0} receipts/s, each sent when due) for {pipeline_s} s | {accepted:.0} receipts/s accepted; p50 {pp50}, p99 {pp99}, max {pmax}; answers {statuses:?} |\n\
             | freshness (202 until counted by `GET /api/analytics/`), {samples} samples | p50 {f50} ms, p95 {f95} ms, max {fmax} ms |\n\
             | outbox backlog + consumer lag, mean over the first and the last minute | {first_minute:.0} then {last_minute:.0} messages (max backlog {max_backlog:.0}, max lag {max_lag:.0}) |\n\
             | peak RSS (the consumer's since it started again, after intake alone) | producer {producer_rss:.0} MB, consumer {consumer_rss:.0} MB, worker {worker_rss:.0} MB |\n",
            round = round_length.as_secs(),
            ceilings = ceilings.iter().map(|tps| format!("{tps:.0}")).collect::<Vec<_>>().join(", "),
            saturation_s = saturation_length.as_secs(),
            saturation_ratio = saturation / ceiling,
            sustained_all = sustained.accepted_per_second(),
            s50 = ms(&sustained, 0.50),
            s99 = ms(&sustained, 0.99),
            smax = ms(&sustained, 1.0),
            pipeline_s = pipeline_length.as_secs(),
            accepted = pipeline.accepted_per_second(),
            pp50 = ms(&pipeline, 0.50),
            pp99 = ms(&pipeline, 0.99),
            pmax = ms(&pipeline, 1.0),
            statuses = pipeline.statuses,
            samples = pipeline.freshness.len(),
            f50 = pipeline.freshness_ms(0.50),
            f95 = pipeline.freshness_ms(0.95),
            fmax = pipeline.freshness_ms(1.0),
            max_backlog = samples.iter().map(|s| s.1).fold(0.0, f64::max),
            max_lag = samples.iter().map(|s| s.2).fold(0.0, f64::max),
            producer_rss = rss("producer"),
            consumer_rss = rss(CONSUMER),
            worker_rss = rss("worker-1"),
        );
        let listed = |lines: Vec<String>| {
            if lines.is_empty() {
                "- none".to_owned()
            } else {
                lines.join("\n")
            }
        };
        let mut report = format!(
            "{report}\nSeconds of the whole pipeline at 80% whose p99 was over {slow:.0} ms, in runs (UTC; a run goes on \
             across gaps of up to 2 s):\n\n{runs}\n\nWhat PostgreSQL logged meanwhile (UTC, when each ended): \
             autovacuum's passes, checkpoints, statements over a second:\n\n{events}\n",
            slow = episodes::SLOW_MS,
            runs = listed(episodes::slow_runs(&pipeline.seconds, pipeline_started)),
            events = listed(episodes::postgres_events(
                &stack.postgres_log(),
                pipeline_started,
                Utc::now(),
            )),
        );
        report.push_str(&charts::draw(&pipeline, &per_second_p99, &samples));
        println!("{report}");
        bench::write_report("intake.md", &report);
    });
}
