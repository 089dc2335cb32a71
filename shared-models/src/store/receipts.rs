//! The `receipts` and `receipt_lines` tables: receipts as the consumer stores them from Kafka, idempotent on
//! (merchant_id, transaction_id), many per transaction. This module owns every write to them.

use std::collections::BTreeSet;

use crate::domain::jobs::HourBucket;
use crate::domain::receipt::ReceiptEnvelope;
use crate::store::places;
use crate::store::schema::{receipt_lines, receipts};
use diesel::prelude::*;

/// Stores the receipts in one transaction and returns the hour buckets that gained receipts. A receipt
/// stored before is skipped, so redelivery changes nothing.
pub fn store_receipts(
    conn: &mut PgConnection,
    envelopes: &[ReceiptEnvelope],
) -> QueryResult<BTreeSet<HourBucket>> {
    conn.transaction(|conn| {
        let mut touched = BTreeSet::new();
        for envelope in envelopes {
            if store_receipt(conn, envelope)? {
                touched.insert(HourBucket::containing(
                    &envelope.receipt.place_id,
                    envelope.receipt.timestamp,
                ));
            }
        }
        Ok(touched)
    })
}

/// Stores one receipt; false when it was stored before.
fn store_receipt(conn: &mut PgConnection, envelope: &ReceiptEnvelope) -> QueryResult<bool> {
    let receipt = &envelope.receipt;
    places::claim(conn, &receipt.place_id, &envelope.merchant_id)?;
    let id: Option<i64> = diesel::insert_into(receipts::table)
        .values((
            receipts::merchant_id.eq(&envelope.merchant_id),
            receipts::transaction_id.eq(&receipt.transaction_id),
            receipts::place_id.eq(&receipt.place_id),
            receipts::purchased_at.eq(receipt.timestamp),
            receipts::total_amount.eq(receipt.total_amount),
            receipts::vat_amount.eq(receipt.vat_amount),
            receipts::tips_amount.eq(receipt.tips_amount),
            receipts::payment_method.eq(&receipt.payment_method),
            receipts::received_at.eq(envelope.received_at),
            receipts::raw.eq(serde_json::to_value(receipt).unwrap_or_default()),
        ))
        .on_conflict((receipts::merchant_id, receipts::transaction_id))
        .do_nothing()
        .returning(receipts::id)
        .get_result(conn)
        .optional()?;
    let Some(id) = id else { return Ok(false) };

    let lines: Vec<_> = receipt
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            (
                receipt_lines::receipt_id.eq(id),
                receipt_lines::line_no.eq(index as i32),
                receipt_lines::product_id.eq(&item.product_id),
                receipt_lines::category.eq(item.category_key()),
                receipt_lines::quantity.eq(item.quantity),
                receipt_lines::price.eq(item.price),
                receipt_lines::amount.eq(item.amount()),
            )
        })
        .collect();
    diesel::insert_into(receipt_lines::table)
        .values(&lines)
        .execute(conn)?;

    places::record_purchase(
        conn,
        &receipt.place_id,
        receipt.timestamp,
        receipt.place_name.as_deref(),
    )?;
    Ok(true)
}
