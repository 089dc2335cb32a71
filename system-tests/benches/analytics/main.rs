//! Analytics at scale, over HTTP (`make bench`, which runs `scripts/bench.sh`): receipts are bulk-loaded
//! with SQL (a few busy places and many quiet ones, two years of purchases), the rollup tiers are built, and
//! the release consumer answers `GET /api/analytics/` and `GET /api/places/{id}/analytics/` for a 1-hour, a
//! 30-day and a 1-year period with ragged edges, 50 requests each; the naive aggregate over the raw receipts
//! answers the same periods for comparison. Also timed: one recompute job (the first check of its hours,
//! and a check of hours checked before) and the hourly reconcile. Prints a table and writes it, with a
//! chart, to `target/bench/`. Asserts nothing about speed.
//!
//! Datasets live in databases of their own (`bench_<receipts>_<places>`), seeded once and reused.
//! `BENCH_DATASETS` chooses them (default `1000000x1000,1000000x100000,10000000x1000`).

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};
use shared_models::domain::auth::Role;
use shared_models::store::PgPool;
use system_tests::bench;
use system_tests::stack::{binary, free_port};

use seed::{prepare, Dataset};

mod chart;
mod jobs;
mod seed;

/// Requests per case.
const REQUESTS: usize = 50;
/// Runs of each naive aggregate (they are slow at 10M).
const NAIVE_RUNS: usize = 3;

/// A period of the benchmark, with ragged edges.
struct Case {
    name: &'static str,
    from: &'static str,
    to: &'static str,
}

const PERIODS: [Case; 3] = [
    Case {
        name: "1 hour",
        from: "2025-06-10T10:20:00Z",
        to: "2025-06-10T11:20:00Z",
    },
    Case {
        name: "30 days",
        from: "2025-05-03T07:13:00Z",
        to: "2025-06-02T07:13:00Z",
    },
    Case {
        name: "1 year",
        from: "2024-09-15T13:45:00Z",
        to: "2025-09-15T13:45:00Z",
    },
];

fn percentile(samples: &[Duration], fraction: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A ratio as the report writes it: whole above 10, with a decimal below, so that 0.2x does not read 0x.
fn times(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}x")
    } else {
        format!("{ratio:.1}x")
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The release consumer on the dataset, killed when dropped.
struct Consumer {
    child: Child,
    base: String,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_consumer(database_url: &str) -> Consumer {
    let port = free_port();
    let child = Command::new(binary("consumer"))
        .env("CONSUMER_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("DATABASE_POOL_SIZE", "8")
        .env("KAFKA_BROKERS", format!("127.0.0.1:{}", free_port()))
        .env("KAFKA_TOPIC", "bench-unused")
        .env("REDIS_URL", format!("redis://127.0.0.1:{}/", free_port()))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the release consumer (cargo build --release --bins)");
    Consumer {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// `REQUESTS` sequential requests, each answered in full; every answer must be a success.
async fn timed_requests(http: &reqwest::Client, url: &str, token: &str) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let response = http.get(url).bearer_auth(token).send().await.expect("request");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        samples.push(started.elapsed());
        assert!(status.is_success(), "{url}: {status} {body:?}");
    }
    samples
}

/// What `GET /api/analytics/` computes, straight from the receipts: the totals and categories of every place
/// and of all of them, for the period (`$1`-`$2`), of the places `$3` matches.
const NAIVE_OVERVIEW: &str = "
    WITH r AS (SELECT * FROM receipts WHERE purchased_at >= $1 AND purchased_at < $2 AND place_id LIKE $3)
    SELECT count(*)::int8 AS n FROM (
        SELECT place_id, count(*), sum(total_amount), sum(vat_amount), sum(tips_amount) FROM r GROUP BY place_id
        UNION ALL
        SELECT r.place_id, count(DISTINCT r.id), sum(l.amount), 0, 0
        FROM r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY r.place_id, l.category
        UNION ALL
        SELECT '*', count(*), sum(total_amount), sum(vat_amount), sum(tips_amount) FROM r
        UNION ALL
        SELECT '*', count(DISTINCT r.id), sum(l.amount), 0, 0
        FROM r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY l.category) t";

/// What `GET /api/places/{id}/analytics/` computes, straight from the receipts.
const NAIVE_PLACE: &str = "
    WITH r AS (SELECT * FROM receipts WHERE purchased_at >= $1 AND purchased_at < $2 AND place_id = $3)
    SELECT count(*)::int8 AS n FROM (
        SELECT count(*), sum(total_amount), sum(vat_amount), sum(tips_amount) FROM r
        UNION ALL
        SELECT count(DISTINCT r.id), sum(l.amount), 0, 0
        FROM r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY l.category) t";

fn naive(conn: &mut PgConnection, sql: &str, case: &Case, places: &str) -> Duration {
    let (from, to) = bounds(case);
    let samples: Vec<Duration> = (0..NAIVE_RUNS)
        .map(|_| {
            let started = Instant::now();
            diesel::sql_query(sql)
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .bind::<Text, _>(places)
                .execute(conn)
                .expect("naive aggregate");
            started.elapsed()
        })
        .collect();
    percentile(&samples, 0.5)
}

fn bounds(case: &Case) -> (DateTime<Utc>, DateTime<Utc>) {
    (case.from.parse().expect("time"), case.to.parse().expect("time"))
}

/// A request of the benchmark: what it is, its URL, its token, and the naive aggregate it is compared with
/// (the SQL and the places it covers).
type Endpoint<'a> = (&'a str, String, &'a str, Option<(&'a str, &'a str)>);

/// One measured row of the report.
struct Row {
    dataset: String,
    endpoint: String,
    period: &'static str,
    p50: Duration,
    p95: Duration,
    naive: Option<Duration>,
}

fn measure(dataset: Dataset, pool: &PgPool, url: &str, rows: &mut Vec<Row>, report: &mut String) {
    let mut conn = pool.get().expect("connection");
    let admin = shared_models::testing::token(pool, Role::Admin, None).1;
    let merchant = shared_models::testing::token(pool, Role::Merchant, Some("merchant-7")).1;
    let consumer = start_consumer(url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Connections idle while the naive aggregates run are not reused: the server may be closing them.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    let ready = Instant::now() + Duration::from_secs(60);
    while !runtime.block_on(async {
        http.get(format!("{}/health", consumer.base))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }) {
        assert!(Instant::now() < ready, "the consumer did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let last_page = (dataset.places + 49) / 50;
    let endpoints: [Endpoint; 4] = [
        (
            "GET /api/analytics/ (admin: every place)",
            format!("{}/api/analytics/?", consumer.base),
            admin.as_str(),
            Some((NAIVE_OVERVIEW, "%")),
        ),
        (
            "GET /api/analytics/ (admin: the last page of places)",
            format!("{}/api/analytics/?page={last_page}&", consumer.base),
            admin.as_str(),
            None,
        ),
        (
            "GET /api/analytics/ (a merchant's places)",
            format!("{}/api/analytics/?", consumer.base),
            merchant.as_str(),
            None,
        ),
        (
            "GET /api/places/place-0/analytics/ (the busiest place)",
            format!("{}/api/places/place-0/analytics/?", consumer.base),
            admin.as_str(),
            Some((NAIVE_PLACE, "place-0")),
        ),
    ];
    for (endpoint, base, token, naive_sql) in &endpoints {
        for case in &PERIODS {
            let url = format!("{base}from={}&to={}", case.from, case.to);
            let samples = runtime.block_on(timed_requests(&http, &url, token));
            let naive = naive_sql.map(|(sql, places)| naive(&mut conn, sql, case, places));
            rows.push(Row {
                dataset: dataset.label(),
                endpoint: endpoint.to_string(),
                period: case.name,
                p50: percentile(&samples, 0.5),
                p95: percentile(&samples, 0.95),
                naive,
            });
        }
    }

    jobs::time_jobs(&mut conn, dataset, report);
}

fn main() {
    if !bench::requested("analytics") {
        return;
    }
    let server = std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (scripts/bench.sh sets it)");
    let datasets: Vec<Dataset> = std::env::var("BENCH_DATASETS")
        .unwrap_or_else(|_| "1000000x1000,1000000x100000,10000000x1000".to_owned())
        .split(',')
        .filter_map(|spec| {
            let (receipts, places) = spec.trim().split_once('x')?;
            Some(Dataset {
                receipts: receipts.parse().ok()?,
                places: places.parse().ok()?,
            })
        })
        .collect();
    let mut report = String::new();
    let mut rows = Vec::new();
    for dataset in datasets {
        let (url, pool) = prepare(&server, dataset, &mut report);
        measure(dataset, &pool, &url, &mut rows, &mut report);
    }
    let mut table = String::from(
        "| dataset | request | period | p50 | p95 | naive aggregate (median of 3) | naive / p95 |\n|---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.dataset,
            row.endpoint,
            row.period,
            ms(row.p50),
            ms(row.p95),
            row.naive.map(ms).unwrap_or_else(|| "-".to_owned()),
            row.naive
                .map(|naive| times(naive.as_secs_f64() / row.p95.as_secs_f64()))
                .unwrap_or_else(|| "-".to_owned()),
        );
    }
    let output = format!("{table}\n{report}{}", chart::draw(&rows));
    println!("{output}");
    bench::write_report("analytics.md", &output);
    println!("written to target/bench/");
}
