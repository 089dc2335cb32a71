//! The `places` table: where purchases happen, whose merchant is the one whose receipt first named them, with
//! counters kept by the consumer. This module owns every write to it, and every read of places in a
//! caller's scope starts from [`in_scope`].

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Timestamptz};

use crate::store::schema::places;

/// Registers a place for a merchant unless it exists, and returns its owner (who may be another merchant).
/// The row is locked for share until the transaction ends, so ownership cannot change under the caller.
pub fn claim(conn: &mut PgConnection, place_id: &str, merchant_id: &str) -> QueryResult<String> {
    diesel::insert_into(places::table)
        .values((places::place_id.eq(place_id), places::merchant_id.eq(merchant_id)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    places::table
        .find(place_id)
        .select(places::merchant_id)
        .for_share()
        .first(conn)
}

/// The merchant's only place, when it has exactly one.
pub fn sole_place(conn: &mut PgConnection, merchant_id: &str) -> QueryResult<Option<String>> {
    let found: Vec<String> = places::table
        .filter(places::merchant_id.eq(merchant_id))
        .select(places::place_id)
        .limit(2)
        .load(conn)?;
    Ok(match found.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// Counts one stored purchase at the place: the purchase counter, the first and last purchase times, and
/// the latest non-blank name.
pub fn record_purchase(
    conn: &mut PgConnection,
    place_id: &str,
    purchased_at: DateTime<Utc>,
    name: Option<&str>,
) -> QueryResult<()> {
    let place = places::table.find(place_id);
    diesel::update(place)
        .set((
            places::total_purchases.eq(places::total_purchases + 1),
            places::first_purchase_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(
                "LEAST(first_purchase_at, ",
            )
            .bind::<Timestamptz, _>(purchased_at)
            .sql(")")),
            places::last_purchase_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(
                "GREATEST(last_purchase_at, ",
            )
            .bind::<Timestamptz, _>(purchased_at)
            .sql(")")),
        ))
        .execute(conn)?;
    if let Some(name) = name.filter(|name| !name.trim().is_empty()) {
        diesel::update(place)
            .set(places::place_name.eq(name))
            .execute(conn)?;
    }
    Ok(())
}

/// Whether the place is known.
pub fn exists(conn: &mut PgConnection, place_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(places::table.find(place_id))).get_result(conn)
}

/// A place and its purchase counters.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = places)]
pub struct PlaceRecord {
    pub place_id: String,
    pub place_name: Option<String>,
    pub merchant_id: String,
    pub total_purchases: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
}

/// The places of a merchant (every place for `None`), or the one place named, if it is one of them.
pub fn in_scope<'a>(merchant: Option<&str>, place_id: Option<&str>) -> places::BoxedQuery<'a, Pg> {
    let mut query = places::table.into_boxed();
    if let Some(merchant) = merchant {
        query = query.filter(places::merchant_id.eq(merchant.to_owned()));
    }
    if let Some(place_id) = place_id {
        query = query.filter(places::place_id.eq(place_id.to_owned()));
    }
    query
}

/// The place, if it is in the merchant's scope (any place for `None`).
pub fn visible(
    conn: &mut PgConnection,
    merchant: Option<&str>,
    place_id: &str,
) -> QueryResult<Option<PlaceRecord>> {
    in_scope(merchant, Some(place_id))
        .select(PlaceRecord::as_select())
        .first(conn)
        .optional()
}

/// Which rows of a listing: `offset` and `limit`, or every row.
#[derive(Debug, Clone, Copy)]
pub enum Rows {
    Page { offset: i64, limit: i64 },
    All,
}

/// Places in the merchant's scope (only `place_id`, when given) whose id or name holds `search` (any case),
/// ordered by id: how many there are, and the rows asked for.
pub fn list(
    conn: &mut PgConnection,
    merchant: Option<&str>,
    place_id: Option<&str>,
    search: Option<&str>,
    rows: Rows,
) -> QueryResult<(i64, Vec<PlaceRecord>)> {
    let filtered = || {
        let mut query = in_scope(merchant, place_id);
        if let Some(search) = search.map(str::trim).filter(|text| !text.is_empty()) {
            let pattern = format!(
                "%{}%",
                search
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(
                places::place_id
                    .ilike(pattern.clone())
                    .or(places::place_name.ilike(pattern)),
            );
        }
        query
    };
    let count = filtered().count().get_result(conn)?;
    let mut listed = filtered().order(places::place_id.asc());
    if let Rows::Page { offset, limit } = rows {
        listed = listed.offset(offset).limit(limit);
    }
    Ok((count, listed.select(PlaceRecord::as_select()).load(conn)?))
}
