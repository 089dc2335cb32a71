//! The datasets: bulk-loaded with SQL, once per database, with every rollup tier built.

use std::fmt::Write as _;
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::Text;
use shared_models::store::{self, rollups, PgPool};

/// What the data looks like; a new value seeds the datasets again.
const SEED_VERSION: &str = "3";

/// A dataset: how many receipts over how many places.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub receipts: i64,
    pub places: i64,
}

impl Dataset {
    fn database(self) -> String {
        format!("bench_{}_{}", self.receipts, self.places)
    }

    pub fn label(self) -> String {
        format!(
            "{} receipts, {} places",
            thousands(self.receipts),
            thousands(self.places)
        )
    }
}

pub fn thousands(value: i64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The seeding statements: places with 100 merchants; receipts whose place is skewed (the cube of a uniform
/// draw: place-0 is the busiest, most places are quiet) and whose time is uniform over 2024 and 2025; one to
/// three lines in 12 categories, summing to the total. Receipts are numbered and written in the order of
/// their time, as a pipeline that has run for two years stores them, so an hour's receipts and lines lie
/// together on disk.
fn seed_statements(dataset: Dataset) -> Vec<String> {
    let Dataset { receipts, places } = dataset;
    vec![
        "TRUNCATE receipt_lines, receipts, places CASCADE".to_owned(),
        "CREATE TABLE IF NOT EXISTS bench_meta (version TEXT NOT NULL)".to_owned(),
        "TRUNCATE bench_meta".to_owned(),
        format!(
            "INSERT INTO places (place_id, merchant_id, place_name)
             SELECT 'place-' || p, 'merchant-' || (p % 100), 'Place ' || p FROM generate_series(0, {places} - 1) p"
        ),
        "SELECT setseed(0.2026)".to_owned(),
        format!(
            "INSERT INTO receipts (id, merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                                   tips_amount, payment_method, received_at, stored_at)
             SELECT i, 'merchant-' || (p % 100), 'bench-' || i, 'place-' || p, t,
                    (1 + i % 3) * round((1 + i % 997) * 0.37, 2), round((1 + i % 3) * round((1 + i % 997) * 0.37, 2) * 0.1, 2),
                    (i % 5), 'card', t, t + interval '1 minute'
             FROM (SELECT row_number() OVER (ORDER BY t) AS i, p, t
                   FROM (SELECT floor({places} * power(random(), 3))::int AS p,
                                timestamptz '2024-01-01T00:00:00Z' + random() * interval '731 days' AS t
                         FROM generate_series(1::bigint, {receipts}::bigint)) drawn) s
             ORDER BY i"
        ),
        format!("SELECT setval('receipts_id_seq', {receipts})"),
        "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
         SELECT r.id, n, 'sku-' || ((r.id + n) % 500), 'category-' || ((r.id * 7 + n) % 12), 1,
                round((1 + r.id % 997) * 0.37, 2), round((1 + r.id % 997) * 0.37, 2)
         FROM receipts r, generate_series(1, 1 + (r.id % 3)::int) n"
            .to_owned(),
        "UPDATE places p SET total_purchases = s.n, first_purchase_at = s.first, last_purchase_at = s.last
         FROM (SELECT place_id, count(*) AS n, min(purchased_at) AS first, max(purchased_at) AS last
               FROM receipts GROUP BY place_id) s WHERE s.place_id = p.place_id"
            .to_owned(),
    ]
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The dataset's database, seeded (once) and with its rollups built.
pub fn prepare(server: &str, dataset: Dataset, report: &mut String) -> (String, PgPool) {
    let (base, _) = server.rsplit_once('/').expect("a database URL");
    let mut admin = PgConnection::establish(server).expect("connect to PostgreSQL");
    let name = dataset.database();
    let exists = diesel::sql_query(format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))
        .execute(&mut admin)
        .expect("look up the database")
        > 0;
    if !exists {
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create the database");
    }
    let url = format!("{base}/{name}");
    let pool = store::build_pool(&url, 4);
    store::run_migrations(&pool).expect("migrate");
    let mut conn = pool.get().expect("connection");
    let seeded = diesel::sql_query("SELECT version FROM bench_meta")
        .load::<Version>(&mut conn)
        .is_ok_and(|rows| rows.iter().any(|row| row.version == SEED_VERSION));
    if !seeded {
        let started = Instant::now();
        for statement in seed_statements(dataset) {
            diesel::sql_query(&statement)
                .execute(&mut conn)
                .unwrap_or_else(|error| panic!("{error}: {statement}"));
        }
        diesel::sql_query("ANALYZE").execute(&mut conn).expect("analyze");
        let loaded = started.elapsed();
        let started = Instant::now();
        let hours = rollups::rebuild_all(&mut conn).expect("build the rollups");
        diesel::sql_query("ANALYZE").execute(&mut conn).expect("analyze");
        diesel::sql_query(format!("INSERT INTO bench_meta VALUES ('{SEED_VERSION}')"))
            .execute(&mut conn)
            .expect("mark seeded");
        let _ = writeln!(
            report,
            "- {}: loaded with SQL in {:.0} s; rollup tiers built in {:.0} s ({} place-hours)",
            dataset.label(),
            loaded.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            thousands(hours as i64)
        );
    }
    // What autovacuum does on a live database: the visibility map lets reads of old buckets be index-only.
    diesel::sql_query("VACUUM (ANALYZE)")
        .execute(&mut conn)
        .expect("vacuum");
    (url, pool)
}
