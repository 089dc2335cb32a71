//! The `receipts` and `receipt_lines` tables: receipts as the consumer stores them from Kafka, idempotent on
//! (merchant_id, transaction_id), a batch at a time with set-based statements. This module owns every write
//! to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Int8, Numeric, Text, Timestamptz};

use crate::domain::jobs::HourBucket;
use crate::domain::receipt::ReceiptEnvelope;
use crate::store::places::{self, Purchases};
use crate::store::rollups::{self, Delta};
use crate::store::statement::statement;

#[derive(QueryableByName)]
struct StoredReceipt {
    #[diesel(sql_type = Int8)]
    id: i64,
    #[diesel(sql_type = Text)]
    merchant_id: String,
    #[diesel(sql_type = Text)]
    transaction_id: String,
}

/// Inserts the receipts that are not stored yet, in one statement; returns the ids of those inserted by key.
fn insert_receipts(
    conn: &mut PgConnection,
    batch: &[&ReceiptEnvelope],
) -> QueryResult<HashMap<(String, String), i64>> {
    let receipts = || batch.iter().map(|envelope| &envelope.receipt);
    let stored: Vec<StoredReceipt> = statement(
        "INSERT INTO receipts (merchant_id, transaction_id, place_id, purchased_at, total_amount, vat_amount,
                               tips_amount, payment_method, received_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], $6::numeric[],
                              $7::numeric[], $8::text[], $9::timestamptz[])
         ON CONFLICT (merchant_id, transaction_id) DO NOTHING
         RETURNING id, merchant_id, transaction_id",
    )
    .bind::<Array<Text>, _>(batch.iter().map(|envelope| envelope.merchant_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(receipts().map(|receipt| receipt.transaction_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(receipts().map(|receipt| receipt.place_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(receipts().map(|receipt| receipt.timestamp).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(receipts().map(|receipt| receipt.total_amount).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(receipts().map(|receipt| receipt.vat_amount).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(receipts().map(|receipt| receipt.tips_amount).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(receipts().map(|receipt| receipt.payment_method.as_str()).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(batch.iter().map(|envelope| envelope.received_at).collect::<Vec<_>>())
    .load(conn)?;
    Ok(stored
        .into_iter()
        .map(|row| ((row.merchant_id, row.transaction_id), row.id))
        .collect())
}

/// Inserts the lines of the receipts just stored, in one statement.
fn insert_lines(conn: &mut PgConnection, new: &[(i64, &ReceiptEnvelope)]) -> QueryResult<()> {
    let mut receipt_ids = Vec::new();
    let mut line_numbers = Vec::new();
    let mut products = Vec::new();
    let mut categories = Vec::new();
    let mut quantities = Vec::new();
    let mut prices = Vec::new();
    let mut amounts = Vec::new();
    for (id, envelope) in new {
        for (index, item) in envelope.receipt.items.iter().enumerate() {
            receipt_ids.push(*id);
            line_numbers.push(index as i32);
            products.push(item.product_id.as_str());
            categories.push(item.category_key());
            quantities.push(item.quantity);
            prices.push(item.price);
            amounts.push(item.amount());
        }
    }
    statement(
        "INSERT INTO receipt_lines (receipt_id, line_no, product_id, category, quantity, price, amount)
         SELECT * FROM unnest($1::int8[], $2::int4[], $3::text[], $4::text[], $5::numeric[], $6::numeric[],
                              $7::numeric[])",
    )
    .bind::<Array<Int8>, _>(receipt_ids)
    .bind::<Array<Int4>, _>(line_numbers)
    .bind::<Array<Text>, _>(products)
    .bind::<Array<Text>, _>(categories)
    .bind::<Array<Numeric>, _>(quantities)
    .bind::<Array<Numeric>, _>(prices)
    .bind::<Array<Numeric>, _>(amounts)
    .execute(conn)?;
    Ok(())
}

/// Stores the receipts in one transaction and returns the hour buckets that gained receipts. A receipt
/// stored before (or twice in the batch) is skipped, so redelivery changes nothing. A handful of statements
/// per batch, whatever its size: the places it names, its receipts, their lines, the places' counters, and
/// what the new receipts add to every rollup tier.
pub fn store_receipts(
    conn: &mut PgConnection,
    envelopes: &[ReceiptEnvelope],
) -> QueryResult<BTreeSet<HourBucket>> {
    let mut seen = BTreeSet::new();
    let batch: Vec<&ReceiptEnvelope> = envelopes
        .iter()
        .filter(|envelope| {
            seen.insert((
                envelope.merchant_id.as_str(),
                envelope.receipt.transaction_id.as_str(),
            ))
        })
        .collect();
    if batch.is_empty() {
        return Ok(BTreeSet::new());
    }
    conn.transaction(|conn| {
        let owners: BTreeMap<String, String> = batch
            .iter()
            .map(|envelope| (envelope.receipt.place_id.clone(), envelope.merchant_id.clone()))
            .collect();
        places::register_missing(conn, &owners)?;

        let stored = insert_receipts(conn, &batch)?;
        let new: Vec<(i64, &ReceiptEnvelope)> = batch
            .iter()
            .filter_map(|envelope| {
                let key = (
                    envelope.merchant_id.clone(),
                    envelope.receipt.transaction_id.clone(),
                );
                stored.get(&key).map(|id| (*id, *envelope))
            })
            .collect();
        if !new.is_empty() {
            insert_lines(conn, &new)?;
        }

        let mut purchases: BTreeMap<String, Purchases> = BTreeMap::new();
        let mut touched = BTreeSet::new();
        for (_, envelope) in &new {
            let receipt = &envelope.receipt;
            let purchase = Purchases::new(receipt.timestamp, receipt.place_name.as_deref());
            match purchases.get_mut(&receipt.place_id) {
                Some(place) => place.add(purchase),
                None => {
                    purchases.insert(receipt.place_id.clone(), purchase);
                }
            }
            touched.insert(HourBucket::containing(&receipt.place_id, receipt.timestamp));
        }
        if !purchases.is_empty() {
            places::record_purchases(conn, &purchases)?;
        }
        rollups::add(
            conn,
            &Delta::of_receipts(new.iter().map(|(_, envelope)| &envelope.receipt)),
        )?;
        Ok(touched)
    })
}
