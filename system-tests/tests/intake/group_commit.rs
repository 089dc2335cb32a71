//! Group commit: concurrent submissions share transactions, and each still gets its own answer.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures::future::join_all;
use serde_json::{json, Value};
use shared_models::store::schema::{outbox, places, receipt_log};
use shared_models::testing::service_url;

use super::{queued_receipts, receipt, spawn_producer, spawn_producer_with};

#[derive(QueryableByName)]
struct Commits {
    #[diesel(sql_type = BigInt)]
    transactions: i64,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
}

#[derive(QueryableByName)]
struct Logged {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_submissions_share_commits_and_each_gets_its_own_answer() {
    // Two writers: requests that arrive while both are busy must share the next transaction.
    let producer = spawn_producer_with(&service_url("TEST_KAFKA_BROKERS"), |config| {
        config.intake.group_writers = 2;
    })
    .await;
    let shop_owner = producer.merchant("m-a").await;
    let other = producer.merchant("m-b").await;
    for earlier in ["earlier", "disputed"] {
        let body = serde_json::to_vec(&receipt(earlier)).expect("json");
        assert_eq!(producer.post_raw(&shop_owner, body).await.0, 202);
    }
    let (_, earlier) = producer
        .post_raw(
            &shop_owner,
            serde_json::to_vec(&receipt("earlier")).expect("json"),
        )
        .await;

    // What each submission is, the token it is sent with, and the answer it must get.
    let mut cases: Vec<(&str, &String, Value)> = Vec::new();
    for n in 0..24 {
        cases.push(("new", &shop_owner, receipt(&format!("new-{n}"))));
    }
    for _ in 0..8 {
        cases.push(("repeat of an earlier receipt", &shop_owner, receipt("earlier")));
        cases.push(("twin sent together", &shop_owner, receipt("twin")));
    }
    for n in 0..8 {
        let mut changed = receipt("disputed");
        changed["vat_amount"] = json!(format!("0.{:02}", n + 1));
        cases.push(("conflict", &shop_owner, changed));
        let mut invalid = receipt(&format!("invalid-{n}"));
        invalid["total_amount"] = json!("99.99");
        cases.push(("invalid", &shop_owner, invalid));
    }
    for n in 0..4 {
        cases.push((
            "another merchant's place",
            &other,
            receipt(&format!("foreign-{n}")),
        ));
        let mut own = receipt(&format!("own-{n}"));
        own["place_id"] = json!("shop-b");
        cases.push(("new at the other merchant's place", &other, own));
    }
    assert_eq!(cases.len(), 64);

    let log_before = logged_attempts(&producer.pool);
    let posts = cases
        .iter()
        .map(|(_, token, body)| producer.post_raw(token, serde_json::to_vec(body).expect("json")));
    let answers = join_all(posts).await;

    let mut statuses: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for ((case, _, _), (status, _)) in cases.iter().zip(&answers) {
        statuses.entry(case).or_default().push(*status);
    }
    let all = |status: u16, count: usize| vec![status; count];
    assert_eq!(statuses["new"], all(202, 24));
    assert_eq!(statuses["new at the other merchant's place"], all(202, 4));
    assert_eq!(statuses["repeat of an earlier receipt"], all(200, 8));
    assert_eq!(statuses["conflict"], all(409, 8));
    assert_eq!(statuses["invalid"], all(422, 8));
    assert_eq!(statuses["another merchant's place"], all(403, 4));
    let mut twins = statuses["twin sent together"].clone();
    twins.sort_unstable();
    assert_eq!(twins, [200, 200, 200, 200, 200, 200, 200, 202]);

    for ((case, _, _), (_, body)) in cases.iter().zip(&answers) {
        match *case {
            "repeat of an earlier receipt" => assert_eq!(body["received_at"], earlier["received_at"]),
            "invalid" => assert_eq!(body["details"][0]["code"], "total_mismatch", "{body}"),
            "conflict" => assert_eq!(body["error"], "transaction_conflict"),
            _ => {}
        }
    }
    let twin_instants: Vec<&Value> = cases
        .iter()
        .zip(&answers)
        .filter(|((case, _, _), _)| *case == "twin sent together")
        .map(|(_, (_, body))| &body["received_at"])
        .collect();
    assert!(twin_instants
        .iter()
        .all(|at| at.is_string() && *at == twin_instants[0]));

    let pool = producer.pool.clone();
    let (commits, logged, queued) = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        let commits: Commits = diesel::sql_query(
            "SELECT count(DISTINCT xmin::text) AS transactions, count(*) AS attempts
             FROM receipt_log WHERE id > $1",
        )
        .bind::<BigInt, _>(log_before)
        .get_result(&mut conn)
        .expect("commits");
        let logged: Vec<Logged> = diesel::sql_query(
            "SELECT outcome, count(*) AS attempts FROM receipt_log WHERE id > $1 GROUP BY outcome ORDER BY outcome",
        )
        .bind::<BigInt, _>(log_before)
        .load(&mut conn)
        .expect("log");
        (commits, logged, queued_receipts(&mut conn))
    })
    .await
    .expect("the database task");

    let logged: Vec<(&str, i64)> = logged
        .iter()
        .map(|row| (row.outcome.as_str(), row.attempts))
        .collect();
    assert_eq!(
        logged,
        [
            ("accepted", 29),
            ("conflict", 8),
            ("duplicate", 15),
            ("rejected", 12)
        ],
        "every attempt is logged once, with its outcome"
    );
    assert_eq!(queued, 2 + 29, "each accepted receipt is handed to Kafka once");
    assert_eq!(commits.attempts, 64);
    assert!(
        commits.transactions <= 32,
        "64 concurrent submissions were written in {} transactions",
        commits.transactions
    );
}

/// The id of the receipt log's last row.
fn logged_attempts(pool: &shared_models::store::PgPool) -> i64 {
    let mut conn = pool.get().expect("connection");
    receipt_log::table
        .select(diesel::dsl::max(receipt_log::id))
        .get_result::<Option<i64>>(&mut conn)
        .expect("log")
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_queued_for_kafka_in_the_order_it_was_sent() {
    // No broker at this address: the outbox keeps every row the batch queued.
    let brokers = format!("127.0.0.1:{}", system_tests::stack::free_port());
    let producer = spawn_producer(&brokers).await;
    let token = producer.merchant("m-1").await;
    let batch = json!([receipt("c-3"), receipt("a-1"), receipt("c-3"), receipt("b-2")]);
    assert_eq!(producer.post_batch(&token, &batch).await.0, 200);

    let mut conn = producer.pool.get().expect("connection");
    let queued: Vec<String> = outbox::table
        .order(outbox::id.asc())
        .select(outbox::transaction_id)
        .load(&mut conn)
        .expect("the outbox");
    assert_eq!(
        queued,
        ["c-3", "a-1", "b-2"],
        "one row per receipt, in the batch's order"
    );
}

/// A place belongs to the merchant whose receipt first named it, whether intake reads its owner or
/// remembers it from an earlier group; and once the database has lost the place (restored from a backup
/// taken before it, which breaks every connection), the next merchant to name it claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_stays_its_first_merchants_and_one_the_database_lost_is_claimed_anew() {
    let producer = spawn_producer(&service_url("TEST_KAFKA_BROKERS")).await;
    let first = producer.merchant("m-first").await;
    let second = producer.merchant("m-second").await;
    let post = |token: &str, transaction_id: &str| {
        let body = serde_json::to_vec(&receipt(transaction_id)).expect("json");
        let token = token.to_owned();
        let producer = &producer;
        async move { producer.post_raw(&token, body).await.0 }
    };
    assert_eq!(post(&first, "f-1").await, 202);
    for n in 0..3 {
        assert_eq!(
            post(&second, &format!("s-{n}")).await,
            403,
            "another merchant's place"
        );
    }
    assert_eq!(post(&first, "f-2").await, 202);

    let pool = producer.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        conn.batch_execute(
            "DELETE FROM outbox; DELETE FROM receipt_publications; DELETE FROM accepted_receipts;
             DELETE FROM places;",
        )
        .expect("the places and everything at them deleted");
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut conn)
        .expect("connections broken");
    })
    .await
    .expect("the database task");

    // A group on a connection the restore broke fails as a whole (503, to be sent again).
    let mut statuses = Vec::new();
    while statuses.last() != Some(&202) && statuses.len() < 3 {
        statuses.push(post(&second, "s-after").await);
    }
    assert!(
        statuses == [202] || statuses == [503, 202],
        "the lost place is claimed by the next merchant to name it: {statuses:?}"
    );
    let mut conn = producer.pool.get().expect("connection");
    let owner: String = places::table
        .find("store-1")
        .select(places::merchant_id)
        .get_result(&mut conn)
        .expect("the place");
    assert_eq!(owner, "m-second");
}
