//! The `receipts` and `receipt_lines` tables: receipts as the consumer stores them from Kafka, idempotent on
//! (merchant_id, transaction_id), a batch at a time with set-based statements. This module owns every write
//! to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;

use crate::domain::jobs::HourBucket;
use crate::domain::receipt::ReceiptEnvelope;
use crate::store::places::{self, Purchases};
use crate::store::rollups::{self, Delta};
use crate::store::schema::{receipt_lines, receipts};

/// Receipts per `INSERT` (10 parameters each, well under PostgreSQL's 65,535 per statement).
const RECEIPTS_PER_INSERT: usize = 1_000;
/// Lines per `INSERT` (7 parameters each).
const LINES_PER_INSERT: usize = 5_000;

type ReceiptRow<'a> = (
    diesel::dsl::Eq<receipts::merchant_id, &'a str>,
    diesel::dsl::Eq<receipts::transaction_id, &'a str>,
    diesel::dsl::Eq<receipts::place_id, &'a str>,
    diesel::dsl::Eq<receipts::purchased_at, DateTime<Utc>>,
    diesel::dsl::Eq<receipts::total_amount, Decimal>,
    diesel::dsl::Eq<receipts::vat_amount, Decimal>,
    diesel::dsl::Eq<receipts::tips_amount, Decimal>,
    diesel::dsl::Eq<receipts::payment_method, &'a str>,
    diesel::dsl::Eq<receipts::received_at, DateTime<Utc>>,
    diesel::dsl::Eq<receipts::raw, serde_json::Value>,
);

fn receipt_row(envelope: &ReceiptEnvelope) -> ReceiptRow<'_> {
    let receipt = &envelope.receipt;
    (
        receipts::merchant_id.eq(envelope.merchant_id.as_str()),
        receipts::transaction_id.eq(receipt.transaction_id.as_str()),
        receipts::place_id.eq(receipt.place_id.as_str()),
        receipts::purchased_at.eq(receipt.timestamp),
        receipts::total_amount.eq(receipt.total_amount),
        receipts::vat_amount.eq(receipt.vat_amount),
        receipts::tips_amount.eq(receipt.tips_amount),
        receipts::payment_method.eq(receipt.payment_method.as_str()),
        receipts::received_at.eq(envelope.received_at),
        receipts::raw.eq(serde_json::to_value(receipt).unwrap_or_default()),
    )
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

        let mut stored: HashMap<(String, String), i64> = HashMap::with_capacity(batch.len());
        for chunk in batch.chunks(RECEIPTS_PER_INSERT) {
            let rows: Vec<ReceiptRow> = chunk.iter().map(|envelope| receipt_row(envelope)).collect();
            let ids: Vec<(i64, String, String)> = diesel::insert_into(receipts::table)
                .values(rows)
                .on_conflict((receipts::merchant_id, receipts::transaction_id))
                .do_nothing()
                .returning((receipts::id, receipts::merchant_id, receipts::transaction_id))
                .get_results(conn)?;
            stored.extend(
                ids.into_iter()
                    .map(|(id, merchant, transaction)| ((merchant, transaction), id)),
            );
        }

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
        let lines: Vec<_> = new
            .iter()
            .flat_map(|(id, envelope)| {
                envelope
                    .receipt
                    .items
                    .iter()
                    .enumerate()
                    .map(move |(index, item)| {
                        (
                            receipt_lines::receipt_id.eq(*id),
                            receipt_lines::line_no.eq(index as i32),
                            receipt_lines::product_id.eq(item.product_id.as_str()),
                            receipt_lines::category.eq(item.category_key()),
                            receipt_lines::quantity.eq(item.quantity),
                            receipt_lines::price.eq(item.price),
                            receipt_lines::amount.eq(item.amount()),
                        )
                    })
            })
            .collect();
        for chunk in lines.chunks(LINES_PER_INSERT) {
            diesel::insert_into(receipt_lines::table)
                .values(chunk)
                .execute(conn)?;
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
