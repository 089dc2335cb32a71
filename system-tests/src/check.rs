//! The end of every fault case: every receipt the producer took is stored once, and counted once in
//! `GET /api/analytics/`, within a stated time, with its lines and its place.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use rust_decimal::Decimal;
use serde_json::Value;
use shared_models::domain::auth::Role;
use shared_models::store::schema::{places, receipts};
use shared_models::testing::token;

use crate::load::{Report, MERCHANT};
use crate::stack::Stack;

/// A token for the load's merchant.
pub async fn merchant_token(stack: &Stack) -> String {
    let database_url = stack.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let pool = shared_models::store::build_pool(&database_url, 1);
        token(&pool, Role::Merchant, Some(MERCHANT)).1
    })
    .await
    .expect("the token task")
}

/// The merchant's analytics summary: purchases and their total.
async fn summary(http: &reqwest::Client, stack: &Stack, token: &str) -> Option<(i64, Decimal)> {
    let body: Value = http
        .get(format!("{}/api/analytics/?page_size=1", stack.consumer_url))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let purchases = body["summary"]["total_purchases"].as_i64()?;
    let total = body["summary"]["total_amount"].to_string().parse().ok()?;
    Some((purchases, total))
}

fn connect(stack: &Stack) -> PgConnection {
    PgConnection::establish(&stack.database_url).expect("database")
}

/// Stored receipts of the merchant, and the purchases its places count.
fn stored(conn: &mut PgConnection) -> (i64, i64) {
    let receipts: i64 = receipts::table
        .filter(receipts::merchant_id.eq(MERCHANT))
        .count()
        .get_result(conn)
        .expect("receipts");
    let counted: Option<Decimal> = places::table
        .filter(places::merchant_id.eq(MERCHANT))
        .select(diesel::dsl::sum(places::total_purchases))
        .first(conn)
        .expect("places");
    let counted = counted.and_then(|sum| sum.to_string().parse().ok()).unwrap_or(0);
    (receipts, counted)
}

/// Waits until analytics count exactly the receipts taken, then checks the tables agree; returns how long
/// it took. Fails (with the services' logs) when that does not happen `within`.
pub async fn exactly_once(stack: &Stack, token: &str, report: &Report, within: Duration) -> Duration {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let expected = (report.count(), report.total());
    let mut last = None;
    while started.elapsed() < within {
        last = summary(&http, stack, token).await;
        if last == Some(expected) {
            let mut conn = connect(stack);
            let (receipts, counted) = stored(&mut conn);
            assert_eq!(receipts, report.count(), "every receipt taken is stored, once");
            assert_eq!(counted, report.count(), "every receipt counted once on its place");
            references_hold(&mut conn);
            return started.elapsed();
        }
        if let Some((purchases, total)) = last {
            assert!(
                purchases <= expected.0 && total <= expected.1,
                "analytics count more than was taken: {purchases} / {total} against {expected:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "analytics did not reach {expected:?} within {within:?} (last {last:?}, stored {:?}):\n{}",
        stored(&mut connect(stack)),
        stack.logs()
    );
}

#[derive(QueryableByName)]
struct Unreferenced {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    lines_without_receipt: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    receipts_without_lines: i64,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    receipts_without_place: i64,
}

/// Checks that every stored line belongs to a stored receipt, every receipt has lines (every receipt has at
/// least one) and its place is registered: what the consumer's writes keep without foreign keys.
pub fn references_hold(conn: &mut PgConnection) {
    let found: Unreferenced = diesel::sql_query(
        "SELECT (SELECT count(*) FROM receipt_lines l
                 WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.id = l.receipt_id)) AS lines_without_receipt,
                (SELECT count(*) FROM receipts r
                 WHERE NOT EXISTS (SELECT 1 FROM receipt_lines l WHERE l.receipt_id = r.id)) AS receipts_without_lines,
                (SELECT count(*) FROM receipts r
                 WHERE NOT EXISTS (SELECT 1 FROM places p WHERE p.place_id = r.place_id)) AS receipts_without_place",
    )
    .get_result(conn)
    .expect("references");
    assert_eq!(
        (
            found.lines_without_receipt,
            found.receipts_without_lines,
            found.receipts_without_place
        ),
        (0, 0, 0),
        "lines without their receipt, receipts without lines, receipts without their place"
    );
}
