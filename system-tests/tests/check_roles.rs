//! A check needs to see every session's open transaction to know which receipts are committed. Run by a role
//! from which PostgreSQL hides other roles' sessions, it must not guess: it recomputes its hours from all
//! their receipts and keeps no check, and with `pg_read_all_stats` granted it checks as usual.

use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use shared_models::store::rollups;
use shared_models::testing::fresh_database;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn count(conn: &mut PgConnection, query: &str) -> i64 {
    diesel::sql_query(query)
        .get_result::<Count>(conn)
        .expect("count")
        .count
}

fn run(conn: &mut PgConnection, statement: &str) {
    diesel::sql_query(statement)
        .execute(conn)
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// Hour rollups of places whose purchases differ from their receipts.
const DRIFTED: &str = "SELECT count(*) FROM place_rollups o
    WHERE o.grain = 'hour' AND o.purchases <> (SELECT count(*) FROM receipts r
        WHERE r.place_id = o.place_id AND r.purchased_at >= o.start AND r.purchased_at < o.start + interval '1 hour')";

#[test]
fn a_role_that_cannot_see_other_sessions_recomputes_hours_whole_and_keeps_no_check() {
    let (url, pool) = fresh_database();
    // The pool's superuser sessions stay open: the role below cannot see them.
    let mut owner = pool.get().expect("connection");
    let database = url.rsplit_once('/').expect("a database URL").1;
    let role = format!("{database}_service");
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        "INSERT INTO places (place_id, merchant_id) VALUES ('place-1', 'merchant-1'), ('place-2', 'merchant-1')"
            .to_owned(),
        "INSERT INTO receipts (merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                               tips_amount, payment_method, received_at)
         SELECT 'merchant-1', 't-' || i, 'place-' || (1 + i % 2), now() - i * interval '1 minute', 2.50, 0.25, 0,
                'card', now()
         FROM generate_series(1, 40) i"
            .to_owned(),
        "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
         SELECT id, 1, 'sku', 'food', 1, 2.50, 2.50 FROM receipts"
            .to_owned(),
    ] {
        run(&mut owner, &statement);
    }
    rollups::rebuild_all(&mut owner).expect("rebuild");
    let buckets = rollups::stored_since(&mut owner, Utc::now() - TimeDelta::hours(1)).expect("buckets");
    assert!(buckets.len() >= 2, "{buckets:?}");
    // One hour's rollup lost a receipt.
    run(
        &mut owner,
        "UPDATE place_rollups SET purchases = purchases - 1
         WHERE (place_id, grain, start) = (SELECT place_id, 'hour', date_trunc('hour', purchased_at, 'UTC')
                                           FROM receipts WHERE transaction_id = 't-1')",
    );
    assert_eq!(count(&mut owner, DRIFTED), 1);

    let as_role = url.replacen("://postgres@", &format!("://{role}@"), 1);
    let mut service = PgConnection::establish(&as_role).expect("connect as the service's role");
    let checked = rollups::check(&mut service, &buckets).expect("a check without the other sessions");
    assert_eq!(checked.buckets, buckets.len());
    assert_eq!(
        count(&mut owner, DRIFTED),
        0,
        "every hour was recomputed from its receipts"
    );
    assert_eq!(
        count(&mut owner, "SELECT count(*) FROM checked_place_hours"),
        0,
        "no watermark, so no check is kept"
    );

    run(&mut owner, &format!("GRANT pg_read_all_stats TO {role}"));
    let mut service = PgConnection::establish(&as_role).expect("connect again");
    let checked = rollups::check(&mut service, &buckets).expect("a check that sees every session");
    assert_eq!((checked.buckets, checked.corrected), (buckets.len(), 0));
    assert_eq!(
        count(&mut owner, "SELECT count(*) FROM checked_place_hours"),
        buckets.len() as i64,
        "the latest hours keep their check"
    );
}
