//! Analytics at 1,000,000 receipts over 1,000 places: the median time of what `GET /api/analytics/` runs
//! for a 30-day period with non-hour edges (rollups + exact edge scans), against a naive aggregate over the
//! raw receipts. Prints figures; asserts nothing about speed.
//!
//! `make bench` (uses the `make up` PostgreSQL) or `BENCH_DATABASE_URL=postgres://... cargo bench -p consumer`.
//! The data lives in its own database (`receipts_bench`), made once and reused.

use std::time::{Duration, Instant};

use consumer::analytics::{self, Period, Scope};
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use shared_models::store;

const RECEIPTS: i64 = 1_000_000;
const RUNS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: nothing to measure then.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("the analytics benchmark runs under `make bench` (cargo bench)");
        return;
    }
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned());
    let (base, _) = server.rsplit_once('/').expect("a database URL");
    let mut admin = PgConnection::establish(&server).expect("connect to PostgreSQL");
    let exists: i64 = diesel::sql_query("SELECT 1 AS n FROM pg_database WHERE datname = 'receipts_bench'")
        .execute(&mut admin)
        .expect("look up") as i64;
    if exists == 0 {
        diesel::sql_query("CREATE DATABASE receipts_bench")
            .execute(&mut admin)
            .expect("create");
    }
    let pool = store::build_pool(&format!("{base}/receipts_bench"), 4);
    store::run_migrations(&pool).expect("migrate");
    let mut conn = pool.get().expect("connection");

    let stored: i64 = shared_models::store::schema::receipts::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    if stored < RECEIPTS {
        let started = Instant::now();
        for statement in [
            "TRUNCATE receipt_lines, receipts, place_hour_rollups, category_hour_rollups, places CASCADE",
            "INSERT INTO places (place_id, merchant_id, place_name)
             SELECT 'place-' || p, 'merchant-' || (p % 100), 'Place ' || p FROM generate_series(0, 999) p",
            "INSERT INTO receipts (merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                                   tips_amount, payment_method, received_at, raw)
             SELECT 'merchant-' || ((i % 1000) % 100), 'bench-' || i, 'place-' || (i % 1000),
                    timestamptz '2024-01-01T00:00:00Z' + ((i * 7919) % 5184000) * interval '1 second',
                    ((i % 97) + 1) * 2.5, ((i % 97) + 1) * 0.25, (i % 5), 'card', now(), '{}'
             FROM generate_series(1::bigint, 1000000::bigint) i",
            "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
             SELECT id, line, 'sku', 'category-' || ((id + line) % 8), 1, total_amount / 2, total_amount / 2
             FROM receipts, generate_series(0, 1) line",
            "ANALYZE",
        ] {
            diesel::sql_query(statement).execute(&mut conn).expect(statement);
        }
        println!(
            "loaded {RECEIPTS} receipts (2 lines each) over 1000 places and 60 days in {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let buckets = shared_models::store::rollups::all_buckets(&mut conn, None).expect("buckets");
        for chunk in buckets.chunks(20_000) {
            shared_models::store::rollups::recompute(&mut conn, chunk).expect("recompute");
        }
        diesel::sql_query("ANALYZE").execute(&mut conn).expect("analyze");
        println!(
            "built the rollups of {} (place, hour) buckets in {:?}",
            buckets.len(),
            started.elapsed()
        );
    }

    let from: chrono::DateTime<chrono::Utc> = "2024-01-15T10:17:31Z".parse().expect("time");
    let to: chrono::DateTime<chrono::Utc> = "2024-02-14T10:17:31Z".parse().expect("time");
    let period = Period {
        from: Some(from),
        to: Some(to),
    };

    // What the endpoint runs: the summary over every place, then the figures of a page of 50 places.
    let mut with_rollups = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let summary = analytics::summary(&mut conn, &Scope::default(), &period).expect("summary");
        let page: Vec<String> = (0..50).map(|p| format!("place-{p}")).collect();
        let scope = Scope {
            places: Some(page),
            ..Scope::default()
        };
        let per_place = analytics::per_place(&mut conn, &scope, &period).expect("page");
        with_rollups.push(started.elapsed());
        assert!(summary.purchases > 0 && per_place.len() == 50);
    }

    let naive_sql = "
        WITH r AS (SELECT * FROM receipts WHERE purchased_at >= $1 AND purchased_at < $2)
        SELECT (SELECT COUNT(*) FROM (
                  SELECT place_id, COUNT(*), SUM(total_amount), SUM(vat_amount), SUM(tips_amount) FROM r GROUP BY place_id
                  UNION ALL
                  SELECT r.place_id, COUNT(DISTINCT r.id), SUM(l.amount), 0, 0
                  FROM r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY r.place_id, l.category
                  UNION ALL
                  SELECT '*', COUNT(*), SUM(total_amount), SUM(vat_amount), SUM(tips_amount) FROM r
                  UNION ALL
                  SELECT '*', COUNT(DISTINCT r.id), SUM(l.amount), 0, 0
                  FROM r JOIN receipt_lines l ON l.receipt_id = r.id GROUP BY l.category) t) AS n";
    let mut naive = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        diesel::sql_query(naive_sql)
            .bind::<Timestamptz, _>(from)
            .bind::<Timestamptz, _>(to)
            .execute(&mut conn)
            .expect("naive aggregate");
        naive.push(started.elapsed());
    }

    let (fast, slow) = (median(with_rollups), median(naive));
    println!("30-day period {from} .. {to}, {RUNS} runs each, medians:");
    println!("  rollups + exact edges (GET /api/analytics/ queries): {fast:?}");
    println!("  naive aggregate over the raw receipts:               {slow:?}");
    println!(
        "  ratio naive / rollups: {:.1}x",
        slow.as_secs_f64() / fast.as_secs_f64()
    );
}
