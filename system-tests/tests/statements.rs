//! The consumer's set-based statements stay prepared on their connection: storing batches one after the
//! other parses and analyses each statement once, where a `sql_query` is prepared anew every time.

use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rust_decimal::Decimal;
use shared_models::domain::receipt::{LineItem, Receipt, ReceiptEnvelope};
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
