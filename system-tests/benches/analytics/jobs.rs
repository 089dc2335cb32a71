//! Writes to the tiers at scale: one recompute job as the consumer queues it (a first check, and a check of
//! the current hour after more receipts), the hourly reconcile and an admin's full rebuild, timed on a
//! seeded dataset that they leave with its figures as seeded.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use rust_decimal::Decimal;
use shared_models::domain::jobs::HourBucket;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::store::receipts::store_receipts;
use shared_models::store::rollups;
use shared_models::testing::hour_buckets_of;

use super::seed::{thousands, Dataset};
use super::{ms, percentile};

/// Times the jobs on the dataset and writes what they took to the report.
pub fn time_jobs(conn: &mut PgConnection, dataset: Dataset, report: &mut String) {
    // One recompute job as the consumer queues it after a batch of 100 receipts: a live batch (the latest
    // purchases, so a few hours of many places) and a batch of late receipts (purchases scattered over the
    // two years, so a hundred different days and months: the worst case). A job checks each hour; an hour
    // never checked is read whole, one checked before only for its receipts stored since.
    let live = first_checks(conn, "ORDER BY purchased_at DESC");
    // Receipts are numbered in time order: every thousandth of them, batch k taking those whose number over
    // the step is k modulo 10, so each batch spreads over the two years.
    let step = (dataset.receipts / 1000).max(1);
    let late = first_checks(
        conn,
        &format!(
            "WHERE id IN (SELECT g * {step} FROM generate_series(1, 1000) g) ORDER BY (id / {step}) % 10, id"
        ),
    );
    // The same, as the pipeline meets it: the consumer has just stored a batch of 100 late receipts, which
    // brought their hours' rollups and index pages into memory, and their job checks those hours. Other
    // receipts (those halfway between the above), so that their hours are read for the first time.
    let just_stored = checks_of_late_receipts_just_stored(conn, step);
    let again = checks_after_new_receipts(conn);
    // The hourly reconcile at the end of the data: every bucket of the receipts stored in the last 2 hours.
    let reconcile: Vec<(Duration, usize)> = (0..3)
        .map(|_| {
            let started = Instant::now();
            let recent = rollups::stored_since(conn, "2025-12-31T22:00:00Z".parse().expect("time"))
                .expect("stored since");
            rolled_back(conn, |conn| rollups::check(conn, &recent).expect("reconcile"));
            (started.elapsed(), recent.len())
        })
        .collect();
    let _ = writeln!(
        report,
        "- {}: one recompute job (the hours of 100 receipts), median of 10: first check of a live batch's hours {} ({} hour buckets), of 100 late receipts' hours {} ({} hour buckets), of 100 late receipts' hours just after they were stored {} ({} hour buckets); the current hour of the live batch's places checked again after 100 more receipts were stored in it {} (each check reads the 100 receipts stored since the last); hourly reconcile (2 h lookback, {} buckets): median {} of 3",
        dataset.label(),
        ms(live.0),
        live.1,
        ms(late.0),
        late.1,
        ms(just_stored.0),
        just_stored.1,
        ms(again),
        reconcile.first().map_or(0, |(_, count)| *count),
        ms(percentile(&reconcile.iter().map(|(time, _)| *time).collect::<Vec<_>>(), 0.5)),
    );
    // An admin's rebuild of every tier from the receipts (one run: it rewrites every rollup).
    let started = Instant::now();
    let hours = rollups::rebuild_all(conn).expect("rebuild");
    let _ = writeln!(
        report,
        "- {}: a full rebuild of every tier from the receipts: {:.1} s ({} place-hours)",
        dataset.label(),
        started.elapsed().as_secs_f64(),
        thousands(hours as i64)
    );
}

/// The hour buckets of 100 receipts, the `skip`-th hundred in the given order.
fn buckets_of_receipts(conn: &mut PgConnection, order: &str, skip: usize) -> Vec<HourBucket> {
    hour_buckets_of(
        conn,
        &format!(
            "SELECT place_id, purchased_at FROM receipts {order} LIMIT 100 OFFSET {}",
            skip * 100
        ),
    )
}

/// Runs `work` in a transaction that is rolled back, so the dataset stays as seeded (no check is kept).
fn rolled_back<T>(conn: &mut PgConnection, work: impl FnOnce(&mut PgConnection) -> T) -> T {
    let mut result = None;
    let outcome = conn.transaction::<(), diesel::result::Error, _>(|conn| {
        result = Some(work(conn));
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(matches!(outcome, Err(diesel::result::Error::RollbackTransaction)));
    result.expect("the work ran")
}

/// The median time of 10 jobs, each the first check of the hours of a different 100 receipts (in the given
/// order), and how many hour buckets the first job holds.
fn first_checks(conn: &mut PgConnection, order: &str) -> (Duration, usize) {
    let jobs: Vec<(Duration, usize)> = (0..10)
        .map(|skip| {
            let buckets = buckets_of_receipts(conn, order, skip);
            rolled_back(conn, |conn| {
                let started = Instant::now();
                rollups::check(conn, &buckets).expect("check");
                (started.elapsed(), buckets.len())
            })
        })
        .collect();
    let times: Vec<Duration> = jobs.iter().map(|(time, _)| *time).collect();
    (percentile(&times, 0.5), jobs[0].1)
}

/// The median time of 10 jobs, each the check of the hours of 100 late receipts (every thousandth receipt
/// but halfway between those of the late batches above, spread over the two years in the same way) right
/// after a receipt was stored in each of those hours the consumer's way, and how many hour buckets the first
/// job holds. Each job and its receipts are rolled back.
fn checks_of_late_receipts_just_stored(conn: &mut PgConnection, step: i64) -> (Duration, usize) {
    let order = format!(
        "WHERE id IN (SELECT g * {step} - {step} / 2 FROM generate_series(1, 1000) g) \
         ORDER BY (id / {step}) % 10, id"
    );
    let jobs: Vec<(Duration, usize)> = (0..10)
        .map(|round| {
            let buckets = buckets_of_receipts(conn, &order, round);
            let merchant = merchants_of(conn, &buckets);
            let envelopes: Vec<ReceiptEnvelope> = buckets
                .iter()
                .enumerate()
                .map(|(index, bucket)| new_receipt(round, index, bucket, merchant(&bucket.place_id)))
                .collect();
            rolled_back(conn, |conn| {
                (stored_then_checked(conn, &envelopes, &buckets), buckets.len())
            })
        })
        .collect();
    let times: Vec<Duration> = jobs.iter().map(|(time, _)| *time).collect();
    (percentile(&times, 0.5), jobs[0].1)
}

/// Stores the receipts the consumer's way, then checks the hour buckets: how long the check took. It finds
/// nothing to correct, since the receipts were added to the rollups as they were stored.
fn stored_then_checked(
    conn: &mut PgConnection,
    envelopes: &[ReceiptEnvelope],
    buckets: &[HourBucket],
) -> Duration {
    store_receipts(conn, envelopes).expect("store");
    let started = Instant::now();
    let checked = rollups::check(conn, buckets).expect("check");
    assert_eq!(
        checked.corrected, 0,
        "the receipts were added as they were stored"
    );
    started.elapsed()
}

/// The merchant of each of the buckets' places, looked up by place.
fn merchants_of(conn: &mut PgConnection, buckets: &[HourBucket]) -> impl Fn(&str) -> String {
    let places: Vec<&str> = buckets.iter().map(|bucket| bucket.place_id.as_str()).collect();
    let owners: Vec<PlaceOwner> =
        diesel::sql_query("SELECT place_id, merchant_id FROM places WHERE place_id = ANY($1)")
            .bind::<Array<Text>, _>(&places)
            .load(conn)
            .expect("owners");
    move |place: &str| {
        owners
            .iter()
            .find(|owner| owner.place_id == place)
            .map(|owner| owner.merchant_id.clone())
            .expect("an owner")
    }
}

/// The median time of 10 checks of the current hour of the live batch's places, each after the consumer's
/// way of storing added 100 more receipts to them: as the consumer's jobs check a busy place's hour, every
/// minute. Afterwards those receipts are removed, their hours recomputed, their places counted again and
/// the checks forgotten: every figure is as seeded.
fn checks_after_new_receipts(conn: &mut PgConnection) -> Duration {
    // The live batch's places, at the current hour: only the latest hours keep a check (the seeded data
    // ends with 2025). Its places' receipts stored since a check are what a check of them reads.
    let now = Utc::now();
    let mut buckets: Vec<HourBucket> = buckets_of_receipts(conn, "ORDER BY purchased_at DESC", 0)
        .into_iter()
        .map(|bucket| HourBucket::containing(&bucket.place_id, now))
        .collect();
    buckets.sort();
    buckets.dedup();
    let places: Vec<&str> = buckets.iter().map(|bucket| bucket.place_id.as_str()).collect();
    let owner = merchants_of(conn, &buckets);
    rollups::check(conn, &buckets).expect("the first check");
    let times: Vec<Duration> = (0..10)
        .map(|round| {
            let envelopes: Vec<ReceiptEnvelope> = (0..100)
                .map(|index| {
                    let bucket = &buckets[index % buckets.len()];
                    new_receipt(round, index, bucket, owner(&bucket.place_id))
                })
                .collect();
            stored_then_checked(conn, &envelopes, &buckets)
        })
        .collect();
    for statement in [
        "DELETE FROM receipt_lines WHERE receipt_id IN (SELECT id FROM receipts WHERE transaction_id LIKE 'bench-check-%')",
        "DELETE FROM receipts WHERE transaction_id LIKE 'bench-check-%'",
    ] {
        diesel::sql_query(statement)
            .execute(conn)
            .expect("remove the receipts");
    }
    rollups::recompute(conn, &buckets).expect("recompute their hours");
    diesel::sql_query(
        "UPDATE places p SET total_purchases = s.n, first_purchase_at = s.first, last_purchase_at = s.last
         FROM (SELECT place_id, count(*) AS n, min(purchased_at) AS first, max(purchased_at) AS last
               FROM receipts WHERE place_id = ANY($1) GROUP BY place_id) s
         WHERE s.place_id = p.place_id",
    )
    .bind::<Array<Text>, _>(&places)
    .execute(conn)
    .expect("count the places' purchases again");
    for statement in [
        "DELETE FROM checked_place_hour_categories",
        "DELETE FROM checked_place_hours",
    ] {
        diesel::sql_query(statement)
            .execute(conn)
            .expect("forget the checks");
    }
    percentile(&times, 0.5)
}

/// A receipt of two lines in the given hour of its place.
fn new_receipt(round: usize, index: usize, bucket: &HourBucket, merchant: String) -> ReceiptEnvelope {
    let items: Vec<LineItem> = (0..2)
        .map(|line| LineItem {
            product_id: format!("sku-{line}"),
            quantity: Decimal::ONE,
            price: Decimal::new(150 + (index * 7 + line) as i64 % 900, 2),
            category: format!("category-{}", (index + line) % 12),
            extra: Default::default(),
        })
        .collect();
    let total: Decimal = items.iter().map(LineItem::amount).sum();
    let receipt = Receipt {
        transaction_id: format!("bench-check-{round}-{index}"),
        place_id: bucket.place_id.clone(),
        place_name: None,
        timestamp: bucket.hour + TimeDelta::seconds((index as i64 * 37) % 3_600),
        items,
        total_amount: total,
        vat_amount: (total / Decimal::from(10)).round_dp(2),
        tips_amount: Decimal::ZERO,
        payment_method: "card".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new(merchant, Utc::now(), receipt)
}

#[derive(QueryableByName)]
struct PlaceOwner {
    #[diesel(sql_type = Text)]
    place_id: String,
    #[diesel(sql_type = Text)]
    merchant_id: String,
}
