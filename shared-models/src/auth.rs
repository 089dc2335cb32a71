//! API tokens: opaque random secrets, stored only as SHA-256 digests, with roles and an owning merchant.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::schema::api_tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Merchant,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Merchant, Role::Analyst, Role::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Merchant => "merchant",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: expected merchant, analyst or admin")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "merchant" => Ok(Role::Merchant),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// Who is calling: the verified token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Uuid,
    pub role: Role,
    pub merchant_id: Option<String>,
}

impl Principal {
    /// The merchant whose data this caller is limited to; `None` for analysts and admins, who see all.
    pub fn merchant_scope(&self) -> Option<&str> {
        match self.role {
            Role::Merchant => self.merchant_id.as_deref(),
            Role::Analyst | Role::Admin => None,
        }
    }
}

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

/// A fresh secret: 256 random bits, hex-encoded, with a recognisable prefix.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rcpt_{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
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

/// Verified tokens, remembered for a short time so that authentication does not cost a database round
/// trip per request. A revoked token stops working once its entry expires.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached answer for this secret, if still fresh. `Some(None)` caches an unknown token.
    pub fn get(&self, secret: &str) -> Option<Option<Principal>> {
        let entries = self.entries.lock().ok()?;
        let (principal, checked_at) = entries.get(&hash_secret(secret))?;
        (checked_at.elapsed() < self.ttl).then(|| principal.clone())
    }

    pub fn put(&self, secret: &str, principal: Option<Principal>) {
        if let Ok(mut entries) = self.entries.lock() {
            let ttl = self.ttl;
            entries.retain(|_, (_, checked_at)| checked_at.elapsed() < ttl);
            entries.insert(hash_secret(secret), (principal, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), "rcpt_".len() + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
    }

    #[test]
    fn cache_entries_expire() {
        let cache = TokenCache::new(Duration::from_millis(0));
        cache.put("x", None);
        assert!(cache.get("x").is_none());
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.put("x", None);
        assert_eq!(cache.get("x"), Some(None));
    }

    #[test]
    fn merchants_see_only_their_scope() {
        let merchant = Principal {
            token_id: Uuid::nil(),
            role: Role::Merchant,
            merchant_id: Some("m".into()),
        };
        let analyst = Principal {
            token_id: Uuid::nil(),
            role: Role::Analyst,
            merchant_id: None,
        };
        assert_eq!(merchant.merchant_scope(), Some("m"));
        assert_eq!(analyst.merchant_scope(), None);
    }
}
