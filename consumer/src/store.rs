//! Storing receipts from Kafka: idempotent on (merchant_id, transaction_id), places kept current, many
//! receipts per transaction.

use std::collections::BTreeSet;

use diesel::prelude::*;
use shared_models::jobs::HourBucket;
use shared_models::receipt::ReceiptEnvelope;
use shared_models::schema::{places, receipt_lines, receipts};

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
    diesel::insert_into(places::table)
        .values((
            places::place_id.eq(&receipt.place_id),
            places::merchant_id.eq(&envelope.merchant_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
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

    let place = places::table.find(&receipt.place_id);
    diesel::update(place)
        .set((
            places::total_purchases.eq(places::total_purchases + 1),
            places::first_purchase_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("LEAST(first_purchase_at, ")
            .bind::<diesel::sql_types::Timestamptz, _>(receipt.timestamp)
            .sql(")")),
            places::last_purchase_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("GREATEST(last_purchase_at, ")
            .bind::<diesel::sql_types::Timestamptz, _>(receipt.timestamp)
            .sql(")")),
        ))
        .execute(conn)?;
    if let Some(name) = receipt
        .place_name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
    {
        diesel::update(place)
            .set(places::place_name.eq(name))
            .execute(conn)?;
    }
    Ok(true)
}
