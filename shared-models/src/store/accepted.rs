//! The `accepted_receipts` table: the idempotency record of every receipt the producer accepted, keyed on
//! (merchant, transaction id), with when Kafka acknowledged it. This module owns every write to it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::domain::receipt::Receipt;
use crate::store::schema::accepted_receipts;

/// The accepted record of one receipt.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accepted_receipts)]
pub struct AcceptedReceipt {
    pub merchant_id: String,
    pub transaction_id: String,
    pub place_id: String,
    pub received_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// Records a receipt as accepted; false when the merchant had sent this transaction id before.
pub fn accept(
    conn: &mut PgConnection,
    merchant_id: &str,
    receipt: &Receipt,
    content_hash: &str,
    received_at: DateTime<Utc>,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(accepted_receipts::table)
        .values((
            accepted_receipts::merchant_id.eq(merchant_id),
            accepted_receipts::transaction_id.eq(&receipt.transaction_id),
            accepted_receipts::place_id.eq(&receipt.place_id),
            accepted_receipts::content_hash.eq(content_hash),
            accepted_receipts::receipt.eq(serde_json::to_value(receipt).unwrap_or_default()),
            accepted_receipts::received_at.eq(received_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

/// The content hash and acceptance time of a receipt accepted before.
pub fn fingerprint(
    conn: &mut PgConnection,
    merchant_id: &str,
    transaction_id: &str,
) -> QueryResult<(String, DateTime<Utc>)> {
    accepted_receipts::table
        .find((merchant_id, transaction_id))
        .select((accepted_receipts::content_hash, accepted_receipts::received_at))
        .first(conn)
}

/// The accepted record of a transaction id, within a merchant scope (None: any merchant).
pub fn find(
    conn: &mut PgConnection,
    merchant_scope: Option<&str>,
    transaction_id: &str,
) -> QueryResult<Option<AcceptedReceipt>> {
    let mut accepted = accepted_receipts::table
        .filter(accepted_receipts::transaction_id.eq(transaction_id))
        .select(AcceptedReceipt::as_select())
        .into_boxed();
    if let Some(merchant) = merchant_scope {
        accepted = accepted.filter(accepted_receipts::merchant_id.eq(merchant));
    }
    accepted.first(conn).optional()
}
