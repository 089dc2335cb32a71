//! The pipeline's set-based statements stay prepared on their connection: storing batches one after the
//! other parses and analyses each statement once, where a `sql_query` is prepared anew every time; and the
//! relay's claim keeps its one good plan however the outbox has changed since it was planned.

use chrono::{TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rust_decimal::Decimal;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
use shared_models::store::outbox;
use shared_models::store::receipts::store_receipts;
use shared_models::testing::fresh_database;

#[derive(QueryableByName, Debug)]
struct Prepared {
    #[diesel(sql_type = Text)]
    statement: String,
    #[diesel(sql_type = BigInt)]
    runs: i64,
}

fn envelope(index: usize) -> ReceiptEnvelope {
    let item = LineItem {
        product_id: "sku".into(),
        quantity: Decimal::ONE,
        price: Decimal::new(250, 2),
        category: if index.is_multiple_of(2) { "food" } else { "drinks" }.into(),
        extra: Default::default(),
    };
    let receipt = Receipt {
        transaction_id: format!("t-{index}"),
        place_id: format!("place-{}", index % 3),
        place_name: None,
        timestamp: Utc::now() - TimeDelta::minutes(index as i64),
        items: vec![item],
        total_amount: Decimal::new(250, 2),
        vat_amount: Decimal::new(25, 2),
        tips_amount: Decimal::ZERO,
        payment_method: "card".into(),
        extra: Default::default(),
    };
    ReceiptEnvelope::new("merchant-1".into(), Utc::now(), receipt)
}

#[test]
fn batches_stored_one_after_the_other_reuse_each_prepared_statement() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    for batch in 0..3 {
        let envelopes: Vec<ReceiptEnvelope> = (batch * 10..batch * 10 + 10).map(envelope).collect();
        store_receipts(&mut conn, &envelopes).expect("a batch");
    }
    let prepared: Vec<Prepared> = diesel::sql_query(
        "SELECT statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements
         WHERE statement LIKE 'INSERT INTO %' ORDER BY statement",
    )
    .load(&mut conn)
    .expect("the connection's prepared statements");
    let runs = |table: &str| {
        let matching: Vec<&Prepared> = prepared
            .iter()
            .filter(|row| row.statement.starts_with(&format!("INSERT INTO {table} ")))
            .collect();
        assert_eq!(matching.len(), 1, "{table} is prepared once: {prepared:?}");
        matching[0].runs
    };
    for table in [
        "receipts",
        "receipt_lines",
        "places",
        "place_rollups",
        "merchant_category_rollups",
        "total_rollups",
    ] {
        assert_eq!(runs(table), 3, "{table}: one run a batch");
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct StatementName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The relay's claim planned while the outbox is empty (as when the relay starts) and run once it holds a
/// backlog: the plan of the prepared claim, made generic and kept, in the transaction the claim ran in.
#[test]
fn the_relays_claim_reads_the_outbox_key_in_order_whatever_it_held_when_planned() {
    let (_, pool) = fresh_database();
    let mut conn = pool.get().expect("connection");
    conn.batch_execute("ANALYZE outbox; SET plan_cache_mode = force_generic_plan")
        .expect("an empty outbox analysed");
    conn.transaction(|conn| outbox::claim(conn, 0, 200))
        .expect("a claim of the empty outbox");
    conn.batch_execute(
        "INSERT INTO outbox (merchant_id, transaction_id, message_key)
         SELECT 'merchant-1', 't-' || n, 'place-1' FROM generate_series(1, 5000) AS n",
    )
    .expect("a backlog");
    let plan = conn
        .transaction(|conn| {
            outbox::claim(conn, 0, 200)?;
            let claim: StatementName = diesel::sql_query(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'WITH claimed AS%'",
            )
            .get_result(conn)?;
            diesel::sql_query(format!("EXPLAIN EXECUTE {}(200, 0)", claim.name)).load::<PlanLine>(conn)
        })
        .expect("the claim's plan");
    let plan: Vec<String> = plan.into_iter().map(|row| row.line).collect();
    let outbox_read: Vec<&String> = plan.iter().filter(|line| line.contains(" on outbox")).collect();
    assert!(
        outbox_read.len() == 1 && outbox_read[0].contains("Index Scan using outbox_pkey on outbox"),
        "the claim reads the outbox's key in order and stops after its rows: {plan:#?}"
    );
}
