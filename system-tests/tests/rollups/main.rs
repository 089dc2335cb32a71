//! The rollup tiers hold exactly what a rebuild from the receipts holds: kept up to date by recompute jobs
//! (receipts arriving in rounds, late ones among them, across day, month and year boundaries, recomputed in
//! chunks as the consumer queues them, some recomputed again, some receipts removed), and by consumers adding
//! their batches while recomputes and checks run. A check reads only what was stored since a recent hour's
//! last check and an older hour whole, and recomputes an hour whose rollup drifted from its receipts
//! ([`checks`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use rust_decimal::Decimal;
use shared_models::domain::jobs::HourBucket;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::store::receipts::store_receipts;
use shared_models::store::rollups::{self, Level};
use shared_models::store::PgPool;
use shared_models::testing::{fresh_database, hour_buckets_of};

mod checks;

#[derive(QueryableByName, Debug, PartialEq)]
pub(crate) struct Dump {
    #[diesel(sql_type = Text)]
    pub(crate) row: String,
}

/// Receipts `first..=last` at random instants from December 2023 to March 2024, at 6 places of 2 merchants,
/// with one to three lines in 4 categories.
fn insert_receipts(conn: &mut PgConnection, first: i64, last: i64) {
    for statement in [
        format!(
            "INSERT INTO receipts (id, merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                                   tips_amount, payment_method, received_at, stored_at)
             SELECT i, 'merchant-' || (p % 2), 't-' || i, 'place-' || p, t, (1 + i % 3) * 2.35, 0.47 * (1 + i % 3),
                    (i % 4) * 0.25, 'card', t, now()
             FROM (SELECT i, floor(6 * random())::int AS p,
                          timestamptz '2023-12-30T20:00:00Z' + random() * interval '65 days' AS t
                   FROM generate_series({first}::bigint, {last}::bigint) i) s"
        ),
        format!(
            "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
             SELECT r.id, n, 'sku-' || n, 'category-' || ((r.id * 7 + n) % 4), 1, 2.35, 2.35
             FROM receipts r, generate_series(1, 1 + (r.id % 3)::int) n WHERE r.id BETWEEN {first} AND {last}"
        ),
    ] {
        diesel::sql_query(statement).execute(conn).expect("insert receipts");
    }
}

pub(crate) fn buckets_of(conn: &mut PgConnection, condition: &str) -> Vec<HourBucket> {
    hour_buckets_of(conn, &format!("SELECT * FROM receipts WHERE {condition}"))
}

/// Recomputes the buckets in jobs of `chunk` buckets, as the consumer queues them batch by batch.
fn recompute_in_jobs(conn: &mut PgConnection, buckets: &[HourBucket], chunk: usize) {
    for job in buckets.chunks(chunk) {
        rollups::recompute(conn, job).expect("recompute");
    }
}

/// Every non-empty row of the six rollup tables, in a canonical text form (without `computed_at`).
pub(crate) fn dump(conn: &mut PgConnection) -> Vec<String> {
    let mut rows = Vec::new();
    for level in Level::ALL {
        let key = level.key_column().unwrap_or("''");
        let totals = format!(
            "SELECT format('{table} %s %s %s %s %s %s %s', {key}, grain, start, purchases, trim_scale(total_amount),
                           trim_scale(vat_amount), trim_scale(tips_amount)) AS row
             FROM {table} WHERE purchases <> 0 OR total_amount <> 0 OR vat_amount <> 0 OR tips_amount <> 0",
            table = level.totals_table()
        );
        let categories = format!(
            "SELECT format('{table} %s %s %s %s %s %s', {key}, grain, start, category, receipts, trim_scale(spent)) AS row
             FROM {table}",
            table = level.categories_table()
        );
        for sql in [totals, categories] {
            rows.extend(
                diesel::sql_query(sql)
                    .load::<Dump>(conn)
                    .expect("dump the rollups")
                    .into_iter()
                    .map(|dump| dump.row),
            );
        }
    }
    rows.sort();
    rows
}

#[test]
fn recomputed_tiers_hold_exactly_what_a_rebuild_from_the_receipts_holds() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    diesel::sql_query(
        "INSERT INTO places (place_id, merchant_id) SELECT 'place-' || p, 'merchant-' || (p % 2) FROM generate_series(0, 5) p",
    )
    .execute(&mut conn)
    .expect("places");
    diesel::sql_query("SELECT setseed(0.25)")
        .execute(&mut conn)
        .expect("seed");

    // Three rounds of receipts, each recomputed in jobs as it arrives; the second round's jobs run twice.
    for (round, chunk) in [(0_i64, 5_usize), (1, 17), (2, 3)] {
        let (first, last) = (round * 700 + 1, round * 700 + 700);
        insert_receipts(&mut conn, first, last);
        let buckets = buckets_of(&mut conn, &format!("id BETWEEN {first} AND {last}"));
        recompute_in_jobs(&mut conn, &buckets, chunk);
        if round == 1 {
            recompute_in_jobs(&mut conn, &buckets, chunk);
        }
    }
    // Some receipts go away (every category of some hours with them): their buckets are recomputed.
    let removed = "id % 37 = 0 OR place_id = 'place-5' AND purchased_at < '2024-01-10'";
    let gone = buckets_of(&mut conn, removed);
    diesel::sql_query(format!(
        "DELETE FROM receipt_lines WHERE receipt_id IN (SELECT id FROM receipts WHERE {removed})"
    ))
    .execute(&mut conn)
    .expect("remove lines");
    diesel::sql_query(format!("DELETE FROM receipts WHERE {removed}"))
        .execute(&mut conn)
        .expect("remove receipts");
    recompute_in_jobs(&mut conn, &gone, 11);

    let incremental = dump(&mut conn);
    let months = incremental
        .iter()
        .filter(|row| row.starts_with("total_rollups") && row.contains(" month "))
        .count();
    assert_eq!(months, 4, "the receipts span December to March");
    let rebuilt = assert_same_as_rebuilt(&mut conn, &incremental);
    assert!(rebuilt > 1000, "{rebuilt} rollup rows");
}

/// Rebuilds every tier from the receipts and asserts it holds exactly the rows `kept` (a dump taken before);
/// returns how many rows the rebuild made.
pub(crate) fn assert_same_as_rebuilt(conn: &mut PgConnection, kept: &[String]) -> usize {
    rollups::rebuild_all(conn).expect("rebuild");
    let rebuilt = dump(conn);
    let differences: Vec<_> = kept
        .iter()
        .filter(|row| !rebuilt.contains(row))
        .chain(rebuilt.iter().filter(|row| !kept.contains(row)))
        .take(10)
        .collect();
    assert!(differences.is_empty(), "rows that differ: {differences:#?}");
    rebuilt.len()
}

/// Receipt `index` of a consumer's share: one of 6 places of 2 merchants, within 6 hours that cross midnight
/// at the end of a month, one to three lines in 4 categories (some lines repeat a category).
pub(crate) fn envelope(consumer: usize, index: usize) -> ReceiptEnvelope {
    let start = Utc
        .with_ymd_and_hms(2024, 1, 31, 21, 0, 0)
        .single()
        .expect("instant");
    envelope_at(consumer, index, start, 21_600)
}

/// The same receipt within the last 90 minutes: in the hours that still grow, which checks read only for
/// what was stored since their last check (and, at the start of an hour, in one before them too).
pub(crate) fn recent_envelope(consumer: usize, index: usize) -> ReceiptEnvelope {
    envelope_at(consumer, index, Utc::now() - TimeDelta::seconds(5_400), 5_400)
}

/// Receipt `index` of a consumer's share, at an instant within `spread` seconds from `start`.
fn envelope_at(consumer: usize, index: usize, start: DateTime<Utc>, spread: i64) -> ReceiptEnvelope {
    let place = (index * 5 + consumer) % 6;
    let items: Vec<LineItem> = (0..1 + index % 3)
        .map(|line| LineItem {
            product_id: format!("sku-{line}"),
            quantity: Decimal::new(1_000 + (index % 7) as i64 * 125, 3),
            price: Decimal::new(199 + (index * 31 + line * 7) as i64 % 800, 2),
            category: format!("category-{}", (index + line / 2) % 4),
            extra: Default::default(),
        })
        .collect();
    let total: Decimal = items.iter().map(LineItem::amount).sum();
    let receipt = Receipt {
        transaction_id: format!("c{consumer}-{index}"),
        place_id: format!("place-{place}"),
        place_name: None,
        timestamp: start + TimeDelta::seconds((index as i64 * 7_919) % spread),
        items,
        total_amount: total,
        vat_amount: (total / Decimal::from(10)).round_dp(2),
        tips_amount: Decimal::new((index % 3) as i64 * 50, 2),
        payment_method: "card".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new(format!("merchant-{}", place % 2), Utc::now(), receipt)
}

/// Two consumers store batches of receipts made by `receipt` (of the same places and hours, the second
/// redelivering part of the first's share) while a worker runs `job` over every hour, in jobs of 4 hours,
/// over and over. Returns how many times the worker went over every hour, and the sum of what its jobs
/// returned.
pub(crate) fn alongside_two_consumers(
    pool: &PgPool,
    receipt: fn(usize, usize) -> ReceiptEnvelope,
    job: fn(&mut PgConnection, &[HourBucket]) -> usize,
) -> (usize, usize) {
    let storing = Arc::new(AtomicBool::new(true));
    let consumers: Vec<_> = (0..2)
        .map(|consumer| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("connection");
                for batch in 0..30 {
                    let mut envelopes: Vec<ReceiptEnvelope> = (batch * 40..batch * 40 + 40)
                        .map(|index| receipt(consumer, index))
                        .collect();
                    if consumer == 1 && batch % 3 == 0 {
                        envelopes.extend((batch * 40..batch * 40 + 10).map(|index| receipt(0, index)));
                    }
                    store_receipts(&mut conn, &envelopes).expect("a batch is stored without deadlock");
                }
            })
        })
        .collect();
    let worker = {
        let (pool, storing) = (pool.clone(), storing.clone());
        std::thread::spawn(move || {
            let mut conn = pool.get().expect("connection");
            let (mut runs, mut total) = (0, 0);
            while storing.load(Ordering::Relaxed) || runs == 0 {
                let buckets = buckets_of(&mut conn, "true");
                for chunk in buckets.chunks(4) {
                    total += job(&mut conn, chunk);
                }
                runs += 1;
            }
            (runs, total)
        })
    };
    for consumer in consumers {
        consumer.join().expect("a consumer");
    }
    storing.store(false, Ordering::Relaxed);
    worker.join().expect("the worker")
}

#[test]
fn consumers_adding_batches_while_recomputes_run_leave_the_tiers_equal_to_a_rebuild() {
    let (_, pool) = fresh_database();
    let (runs, _) = alongside_two_consumers(&pool, envelope, |conn, job| {
        rollups::recompute(conn, job).expect("recompute")
    });
    assert!(runs > 1, "the recomputes ran alongside the consumers");
    let mut conn = pool.get().expect("connection");
    let added = dump(&mut conn);
    assert!(
        added
            .iter()
            .any(|row| row.starts_with("total_rollups") && row.contains(" month ")),
        "the consumers' batches reached every tier"
    );
    assert_same_as_rebuilt(&mut conn, &added);
}
