//! The `api_tokens` table: tokens with their role and merchant, stored only as digests. This module owns
//! every write to it.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::auth::{generate_secret, hash_secret, Principal, Role};
use crate::store::schema::api_tokens;

/// A token's stored metadata (never its secret).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[cfg_attr(feature = "http", derive(paperclip::actix::Apiv2Schema))]
#[diesel(table_name = api_tokens)]
pub struct TokenRecord {
    pub id: Uuid,
    #[serde(skip)]
    pub token_hash: String,
    pub role: String,
    pub merchant_id: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a merchant token needs a merchant_id, and only a merchant token may have one")]
    MerchantMismatch,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Creates a token and returns its record with the secret, which is shown this once.
pub fn create_token(
    conn: &mut PgConnection,
    role: Role,
    merchant_id: Option<&str>,
    name: Option<&str>,
) -> Result<(TokenRecord, String), TokenError> {
    let secret = generate_secret();
    let record = insert_token(conn, &secret, role, merchant_id, name)?;
    Ok((record, secret))
}

fn insert_token(
    conn: &mut PgConnection,
    secret: &str,
    role: Role,
    merchant_id: Option<&str>,
    name: Option<&str>,
) -> Result<TokenRecord, TokenError> {
    if (role == Role::Merchant) != merchant_id.is_some() {
        return Err(TokenError::MerchantMismatch);
    }
    Ok(diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::new_v4()),
            api_tokens::token_hash.eq(hash_secret(secret)),
            api_tokens::role.eq(role.as_str()),
            api_tokens::merchant_id.eq(merchant_id),
            api_tokens::name.eq(name),
        ))
        .returning(TokenRecord::as_returning())
        .get_result(conn)?)
}

/// Stores the bootstrap admin token's digest unless it is there already (revoked or not: a revoked
/// bootstrap token stays revoked across restarts).
pub fn ensure_bootstrap_admin(conn: &mut PgConnection, secret: &str) -> Result<(), TokenError> {
    let exists = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_secret(secret)))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        insert_token(conn, secret, Role::Admin, None, Some("bootstrap"))?;
    }
    Ok(())
}

pub fn list_tokens(conn: &mut PgConnection) -> QueryResult<Vec<TokenRecord>> {
    api_tokens::table
        .order(api_tokens::created_at.asc())
        .select(TokenRecord::as_select())
        .load(conn)
}

/// Revokes a token (a second revocation keeps the first time); returns false when there is no such token.
pub fn revoke_token(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(Utc::now())))
    .execute(conn)?;
    Ok(api_tokens::table.find(id).count().get_result::<i64>(conn)? > 0)
}

/// Looks up an unrevoked token by its secret.
pub fn find_active(conn: &mut PgConnection, secret: &str) -> QueryResult<Option<Principal>> {
    let record = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_secret(secret)))
        .filter(api_tokens::revoked_at.is_null())
        .select(TokenRecord::as_select())
        .first(conn)
        .optional()?;
    Ok(record.and_then(|record| {
        let role = Role::from_str(&record.role).ok()?;
        Some(Principal {
            token_id: record.id,
            role,
            merchant_id: record.merchant_id,
        })
    }))
}
