//! Checks: what a check reads of an hour (since its last check for a recent hour, the whole hour for an
//! older one), that checks alongside storing consumers find nothing to correct, and that an hour whose rollup
//! drifted from its receipts is recomputed.

use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};
use shared_models::domain::jobs::HourBucket;
use shared_models::domain::receipt::ReceiptEnvelope;
use shared_models::store::receipts::store_receipts;
use shared_models::store::rollups;
use shared_models::store::schema::checked_place_hours;
use shared_models::testing::fresh_database;

use super::{
    alongside_two_consumers, assert_same_as_rebuilt, buckets_of, dump, envelope, recent_envelope, Dump,
};

#[test]
fn checks_alongside_consumers_storing_the_latest_hours_find_nothing_to_correct() {
    let (_, pool) = fresh_database();
    let (runs, corrected) = alongside_two_consumers(&pool, recent_envelope, |conn, job| {
        rollups::check(conn, job).expect("check").corrected
    });
    assert!(runs > 1, "the checks ran alongside the consumers");
    assert_eq!(
        corrected, 0,
        "checks alongside the consumers found the rollups equal to the receipts every time"
    );
    let mut conn = pool.get().expect("connection");
    let kept: i64 = checked_place_hours::table
        .count()
        .get_result(&mut conn)
        .expect("count the checks");
    assert!(kept > 0, "the latest hours keep their checks");
    let everything = buckets_of(&mut conn, "true");
    let last = rollups::check(&mut conn, &everything).expect("a last check");
    assert_eq!((last.buckets, last.corrected), (everything.len(), 0));
    let added = dump(&mut conn);
    assert_same_as_rebuilt(&mut conn, &added);
}

/// The rollup and last check of one place hour, as text: `purchases total | purchases total`.
fn hour_and_check(conn: &mut PgConnection, bucket: &HourBucket) -> String {
    diesel::sql_query(
        "SELECT format('%s %s | %s %s', o.purchases, trim_scale(o.total_amount), k.purchases, trim_scale(k.total_amount)) AS row
         FROM place_rollups o JOIN checked_place_hours k ON k.place_id = o.place_id AND k.start = o.start
         WHERE o.place_id = $1 AND o.grain = 'hour' AND o.start = $2",
    )
    .bind::<Text, _>(&bucket.place_id)
    .bind::<Timestamptz, _>(bucket.hour)
    .get_result::<Dump>(conn)
    .expect("the hour and its check")
    .row
}

#[test]
fn a_check_reads_what_was_stored_since_the_last_one_and_recomputes_an_hour_that_drifted() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    let store = |conn: &mut PgConnection, range: std::ops::Range<usize>| {
        let envelopes: Vec<ReceiptEnvelope> = range.map(|index| recent_envelope(0, index)).collect();
        store_receipts(conn, &envelopes).expect("a batch");
    };
    store(&mut conn, 0..120);
    let buckets = buckets_of(&mut conn, "true");
    let first = rollups::check(&mut conn, &buckets).expect("check");
    assert_eq!((first.buckets, first.corrected), (buckets.len(), 0));
    // An hour that the second batch below adds to.
    let busy = buckets_of(&mut conn, "transaction_id = 'c0-1'").remove(0);
    let checked = hour_and_check(&mut conn, &busy);
    let (rollup, check) = checked.split_once(" | ").expect("two halves");
    assert_eq!(rollup, check, "the check holds the hour's figures");
    let before = checked.clone();

    // More receipts for the same hours: the next check finds them added.
    store(&mut conn, 120..240);
    let second = rollups::check(&mut conn, &buckets).expect("check");
    assert_eq!(second.corrected, 0);
    let checked = hour_and_check(&mut conn, &busy);
    let (rollup, check) = checked.split_once(" | ").expect("two halves");
    assert_eq!(rollup, check, "the check moved on to the new receipts");
    assert_ne!(checked, before, "the hour grew");

    // Rollups that drifted from their receipts, as if an addition had been lost: a receipt stored without
    // it (the hour's totals and categories lack it), and a line added to a receipt stored since the last
    // check (only a category lacks it). Both hours are recomputed.
    diesel::sql_query(
        "WITH lost AS (
            INSERT INTO receipts (merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                                  tips_amount, payment_method, received_at)
            SELECT merchant_id, 'lost', place_id, $2 + interval '10 minutes', 5, 0.5, 0, 'card', now()
            FROM places WHERE place_id = $1 RETURNING id
         )
         INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
         SELECT id, 1, 'sku-lost', 'category-0', 1, 5, 5 FROM lost",
    )
    .bind::<Text, _>(&busy.place_id)
    .bind::<Timestamptz, _>(busy.hour)
    .execute(&mut conn)
    .expect("a receipt without its addition");
    store(&mut conn, 250..251);
    let drifted = buckets_of(&mut conn, "transaction_id = 'c0-250'").remove(0);
    assert_ne!(drifted, busy);
    diesel::sql_query(
        "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
         SELECT id, 99, 'sku-extra', 'category-9', 1, 1, 1 FROM receipts WHERE transaction_id = 'c0-250'",
    )
    .execute(&mut conn)
    .expect("a line without its addition");
    let mut hours = buckets.clone();
    hours.push(drifted);
    let third = rollups::check(&mut conn, &hours).expect("check");
    assert_eq!(third.corrected, 2, "both drifted hours are recomputed");
    let kept = dump(&mut conn);
    assert_same_as_rebuilt(&mut conn, &kept);

    // A receipt altered after its hour was checked is not read again by a check (the pipeline never alters
    // a stored receipt) but is by a recompute, and by a check whose last one is over an hour old.
    store(&mut conn, 240..250);
    assert_eq!(rollups::check(&mut conn, &buckets).expect("check").corrected, 0);
    let altered = "UPDATE receipts SET tips_amount = tips_amount + 1 WHERE transaction_id = 'c0-1'";
    diesel::sql_query(altered)
        .execute(&mut conn)
        .expect("alter a receipt");
    assert_eq!(rollups::check(&mut conn, &buckets).expect("check").corrected, 0);
    diesel::sql_query(
        "UPDATE checked_place_hours SET checked_through = checked_through - interval '61 minutes'",
    )
    .execute(&mut conn)
    .expect("age the checks");
    let aged = rollups::check(&mut conn, &buckets).expect("check");
    assert_eq!(
        aged.corrected, 1,
        "the hour of the altered receipt is read whole and recomputed"
    );
    let kept = dump(&mut conn);
    assert_same_as_rebuilt(&mut conn, &kept);
}

/// Receipts of an hour older than the recent ones (a late receipt's, a backlog's) are read whole at every
/// check, from the keys that carry their figures, and no check of them is kept; a receipt or line altered
/// since is seen, and its hour recomputed.
#[test]
fn a_check_reads_an_older_hour_whole_and_recomputes_it_once_it_drifted() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    let late: Vec<ReceiptEnvelope> = (0..60).map(|index| envelope(0, index)).collect();
    store_receipts(&mut conn, &late).expect("late receipts");
    let buckets = buckets_of(&mut conn, "true");
    for _ in 0..2 {
        let checked = rollups::check(&mut conn, &buckets).expect("check");
        assert_eq!(
            (checked.buckets, checked.corrected),
            (buckets.len(), 0),
            "the older hours agree with their receipts"
        );
    }
    let kept: i64 = checked_place_hours::table
        .count()
        .get_result(&mut conn)
        .expect("count the checks");
    assert_eq!(kept, 0, "an older hour keeps no check");

    // One receipt's lines and another receipt's tips altered, in two hours: the first drifts in its
    // categories only, the second in its totals only.
    for altered in [
        "UPDATE receipt_lines SET amount = amount + 1 WHERE receipt_id = (SELECT id FROM receipts WHERE transaction_id = 'c0-7')",
        "UPDATE receipts SET tips_amount = tips_amount + 1 WHERE transaction_id = 'c0-11'",
    ] {
        diesel::sql_query(altered)
            .execute(&mut conn)
            .expect("alter a receipt");
    }
    let checked = rollups::check(&mut conn, &buckets).expect("check");
    assert_eq!(checked.corrected, 2, "both altered hours are recomputed");
    let kept = dump(&mut conn);
    assert_same_as_rebuilt(&mut conn, &kept);
}
