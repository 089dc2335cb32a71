//! Token authentication and who may call what: the `Authorization` header, the per-replica cache of verified
//! tokens, and the [`Caller`] extractor whose access rule every `/api/` handler declares in its signature.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{self, Header, HeaderValue, TryIntoHeaderValue};
use actix_web::{web, FromRequest, HttpRequest};
use actix_web_httpauth::headers::authorization::{Authorization, ParseError, Scheme};
use paperclip::actix::OperationModifier;
use paperclip::v2::models::{DefaultOperationRaw, DefaultSchemaRaw, SecurityScheme};

use crate::domain::auth::{Principal, Role};
use crate::store::tokens;
use crate::store::PgPool;
use crate::web::error::{ApiError, AuthFailure, ErrorBody};
use crate::web::openapi::{define, document_errors};
use crate::web::rate_limit::RateLimiter;
use crate::web::token_cache::TokenCache;

/// The credential in `Authorization: Bearer <token>` or `Authorization: Token <token>` (DRF's scheme).
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

impl std::fmt::Display for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer <redacted>")
    }
}

impl TryIntoHeaderValue for ApiToken {
    type Error = header::InvalidHeaderValue;

    fn try_into_value(self) -> Result<HeaderValue, Self::Error> {
        HeaderValue::from_str(&format!("Bearer {}", self.0))
    }
}

impl Scheme for ApiToken {
    fn parse(header: &HeaderValue) -> Result<Self, ParseError> {
        let text = header.to_str().map_err(|_| ParseError::Invalid)?;
        let (scheme, credential) = text.trim().split_once(' ').ok_or(ParseError::MissingScheme)?;
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
            return Err(ParseError::MissingScheme);
        }
        let credential = credential.trim();
        if credential.is_empty() || credential.contains(char::is_whitespace) {
            return Err(ParseError::Invalid);
        }
        Ok(ApiToken(credential.to_owned()))
    }
}

/// What authentication needs: the token table and the per-replica cache of verified tokens.
#[derive(Debug)]
pub struct AuthState {
    pool: PgPool,
    cache: TokenCache,
}

impl AuthState {
    pub fn new(pool: PgPool, cache_ttl: Duration) -> Self {
        AuthState {
            pool,
            cache: TokenCache::new(cache_ttl),
        }
    }

    async fn verify(self: Arc<Self>, token: ApiToken) -> Result<Option<Principal>, ApiError> {
        let look_up = || {
            let secret = token.secret().to_owned();
            crate::web::with_db(&self.pool, move |conn| Ok(tokens::find_active(conn, &secret)?))
        };
        self.cache.get_or_look_up(token.secret(), look_up).await
    }
}

/// Who may call an `/api/` endpoint. The handler's [`Caller`] enforces it, the route table reads it from
/// the handler's signature, the OpenAPI document states it, and the access-matrix tests check it.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Roles allowed (others get 403).
    pub roles: &'static [Role],
    /// Whether a merchant is limited to its own data here (another merchant's gets 404, or 403 on submit).
    pub merchant_scoped: bool,
}

/// Who may call an endpoint, as a type: the [`Caller`] extractor enforces it and the OpenAPI document
/// states it.
pub trait AccessRule {
    const ACCESS: Access;
}

/// Administration: admins only.
#[derive(Debug)]
pub struct Admins;

impl AccessRule for Admins {
    const ACCESS: Access = Access {
        roles: &[Role::Admin],
        merchant_scoped: false,
    };
}

/// Receipt submission and the receipt log: merchants (their own receipts) and admins.
#[derive(Debug)]
pub struct Submitters;

impl AccessRule for Submitters {
    const ACCESS: Access = Access {
        roles: &[Role::Merchant, Role::Admin],
        merchant_scoped: true,
    };
}

/// Places and analytics: every role; a merchant sees its own places only.
#[derive(Debug)]
pub struct Readers;

impl AccessRule for Readers {
    const ACCESS: Access = Access {
        roles: &Role::ALL,
        merchant_scoped: true,
    };
}

/// Every role, about the token itself (no merchant's data).
#[derive(Debug)]
pub struct AnyRole;

impl AccessRule for AnyRole {
    const ACCESS: Access = Access {
        roles: &Role::ALL,
        merchant_scoped: false,
    };
}

/// An authenticated caller whose role the rule `A` allows. Every `/api/` handler takes one.
#[derive(Debug)]
pub struct Caller<A> {
    principal: Principal,
    rule: PhantomData<A>,
}

impl<A> Caller<A> {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn into_principal(self) -> Principal {
        self.principal
    }
}

impl<A: AccessRule> FromRequest for Caller<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req
            .app_data::<web::Data<AuthState>>()
            .map(|data| data.clone().into_inner());
        let limiter = req
            .app_data::<web::Data<RateLimiter>>()
            .map(|data| data.clone().into_inner());
        let header_present = req.headers().contains_key(header::AUTHORIZATION);
        let token = Authorization::<ApiToken>::parse(req).map(Authorization::into_scheme);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("no authentication state configured"))?;
            let token = match token {
                Ok(token) => token,
                Err(_) if !header_present => return Err(ApiError::Unauthorized(AuthFailure::Missing)),
                Err(_) => return Err(ApiError::Unauthorized(AuthFailure::Malformed)),
            };
            let principal = state
                .verify(token)
                .await?
                .ok_or(ApiError::Unauthorized(AuthFailure::Rejected))?;
            let roles = A::ACCESS.roles;
            if !roles.contains(&principal.role) {
                let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
                return Err(ApiError::Forbidden(format!("the {} role", names.join(" or "))));
            }
            if let Some(limiter) = limiter {
                limiter.admit(principal.token_id)?;
            }
            Ok(Caller {
                principal,
                rule: PhantomData,
            })
        })
    }
}

/// Name of the token's security scheme in the OpenAPI documents.
const TOKEN_SCHEME: &str = "token";

impl<A: AccessRule> paperclip::v2::schema::Apiv2Schema for Caller<A> {
    fn name() -> Option<String> {
        Some(TOKEN_SCHEME.into())
    }

    fn security_scheme() -> Option<SecurityScheme> {
        Some(SecurityScheme {
            type_: "apiKey".into(),
            name: Some("Authorization".into()),
            in_: Some("header".into()),
            description: Some(
                "An API token in the `Authorization` header, written `Bearer <token>` (`Token <token>` \
                 is accepted too). Admins create tokens with `POST /api/tokens/` on the producer."
                    .into(),
            ),
            ..SecurityScheme::default()
        })
    }
}

impl<A: AccessRule> OperationModifier for Caller<A> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        let access = A::ACCESS;
        let who: Vec<String> = access
            .roles
            .iter()
            .map(|role| match role {
                Role::Merchant if access.merchant_scoped => "merchant (its own data only)".to_owned(),
                other => other.as_str().to_owned(),
            })
            .collect();
        let rule = format!("Roles: {}.", who.join(", "));
        op.description = Some(match op.description.take() {
            Some(text) => format!("{text}\n\n{rule}"),
            None => rule,
        });
        document_errors(
            op,
            &[(
                401,
                "`unauthorized`: no token, a malformed `Authorization` header, or an unknown or revoked \
                 token; the answer carries `WWW-Authenticate: Bearer realm=\"receipts\"`",
            )],
        );
        // An endpoint open to every role never answers 403 for the role.
        if access.roles.len() < Role::ALL.len() {
            document_errors(
                op,
                &[(403, "`forbidden`: the token's role may not call this endpoint")],
            );
        }
    }

    fn update_definitions(definitions: &mut BTreeMap<String, DefaultSchemaRaw>) {
        define::<ErrorBody>(definitions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bearer_and_token_schemes_are_accepted() {
        for header in ["Bearer abc", "Token abc", "bearer abc"] {
            let parsed = ApiToken::parse(&HeaderValue::from_static(header)).expect(header);
            assert_eq!(parsed.secret(), "abc");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "abc", "Bearer a b"] {
            assert!(
                ApiToken::parse(&HeaderValue::from_static(header)).is_err(),
                "{header}"
            );
        }
    }
}
