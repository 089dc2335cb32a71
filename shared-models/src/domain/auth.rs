//! Who calls: roles, the principal a verified token stands for, and API token secrets (opaque random
//! strings, of which only a SHA-256 digest is ever stored).

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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

/// A fresh secret: 256 random bits, hex-encoded, with a recognisable prefix.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rcpt_{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
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
