//! An optional per-token rate limit: a token bucket per API token, refilled at a steady rate up to a burst.
//! Over the limit a request answers `429` with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use crate::web::error::ApiError;

/// Requests per second and burst allowed to each token.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when the limit is off (a rate of 0).
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0).then(|| RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from the token's bucket, or says how many seconds to wait for one.
    pub fn admit(&self, token: Uuid) -> Result<(), ApiError> {
        self.admit_at(token, Instant::now())
    }

    fn admit_at(&self, token: Uuid, now: Instant) -> Result<(), ApiError> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, refilled_at) = buckets.entry(token).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*refilled_at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *refilled_at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil().max(1.0);
            Err(ApiError::RateLimited(wait as u64))
        }
    }
}

/// Adds the rate limit's answer to every operation of a service's document (a refinement for services that
/// may limit).
pub fn document_rate_limit(document: &mut serde_json::Value) {
    let error = serde_json::json!({
        "description": "`rate_limited`: this token made more requests than the configured rate allows; \
                        `Retry-After` says how many seconds to wait",
        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    });
    for operation in crate::web::openapi::operations_mut(document) {
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
        {
            responses.insert("429".into(), error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_token_gets_its_burst_then_waits_for_the_refill_and_others_are_not_affected() {
        let limiter = RateLimiter::new(2.0, 3).expect("on");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit_at(a, start).is_ok());
        }
        assert!(matches!(
            limiter.admit_at(a, start),
            Err(ApiError::RateLimited(1))
        ));
        assert!(
            limiter.admit_at(b, start).is_ok(),
            "another token has its own bucket"
        );
        assert!(limiter.admit_at(a, start + Duration::from_millis(500)).is_ok());
        assert!(RateLimiter::new(0.0, 10).is_none(), "a rate of 0 turns it off");
    }
}
