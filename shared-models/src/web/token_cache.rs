//! The per-replica cache of verified tokens. A token is looked up in PostgreSQL when its entry is missing or
//! has expired, and the requests that miss it at the same time share that one lookup: when a busy token's
//! entry expires, every request in flight with it would otherwise take a pooled connection and a blocking
//! thread of its own for the same row, and wait its turn for a connection with intake's writer and the relay.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::domain::auth::{hash_secret, Principal};
use crate::web::error::ApiError;

/// What a lookup found: the token's principal, `None` for a token that is unknown or revoked.
type Found = Option<Principal>;

/// A lookup's answer as every request waiting for it receives it.
type Answer = Result<Found, Arc<ApiError>>;

/// Verified tokens, remembered for `ttl` so that authentication does not cost a database round trip per
/// request. A revoked token stops working once its entry expires.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Found, Instant)>>,
    /// Each request that misses a token whose lookup is under way waits for that lookup's answer.
    lookups: UnderWayLookups,
}

/// The lookups under way, by the token's digest, each with where its answer will be.
type UnderWayLookups = Mutex<HashMap<String, watch::Receiver<Option<Answer>>>>;

/// What the log says of a request answered with the failure of a lookup it shared.
const LOOKUP_FAILED: &str = "looking up the token failed";

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            lookups: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of this secret: cached, or found by `look_up`, which runs once for all the requests
    /// that miss the same token at the same time. A failed lookup is not cached: each request waiting for
    /// it is answered with its error, and the next request looks the token up again.
    pub async fn get_or_look_up<F, L>(&self, secret: &str, look_up: L) -> Result<Found, ApiError>
    where
        L: Fn() -> F,
        F: Future<Output = Result<Found, ApiError>>,
    {
        let digest = hash_secret(secret);
        loop {
            if let Some(found) = self.fresh(&digest) {
                return Ok(found);
            }
            let waiting = {
                let mut lookups = lock(&self.lookups);
                match lookups.get(&digest) {
                    Some(under_way) => Err(under_way.clone()),
                    None => {
                        let (answer, answered) = watch::channel(None);
                        lookups.insert(digest.clone(), answered);
                        Ok(answer)
                    }
                }
            };
            match waiting {
                Ok(answer) => {
                    let _under_way = UnderWay {
                        lookups: &self.lookups,
                        digest: &digest,
                    };
                    let found = look_up().await;
                    if let Ok(found) = &found {
                        self.remember(digest.clone(), found.clone());
                    }
                    let found = found.map_err(Arc::new);
                    answer.send_replace(Some(found.clone()));
                    return found.map_err(|failure| ApiError::shared(LOOKUP_FAILED, &failure));
                }
                Err(mut answered) => {
                    if let Ok(answer) = answered.wait_for(Option::is_some).await {
                        if let Some(answer) = answer.as_ref() {
                            return answer
                                .clone()
                                .map_err(|failure| ApiError::shared(LOOKUP_FAILED, &failure));
                        }
                    }
                    // The request looking it up went away before an answer (its client left): look again.
                }
            }
        }
    }

    /// The cached answer for this digest, if still fresh. `Some(None)` caches an unknown token.
    fn fresh(&self, digest: &str) -> Option<Found> {
        let entries = lock(&self.entries);
        let (principal, checked_at) = entries.get(digest)?;
        (checked_at.elapsed() < self.ttl).then(|| principal.clone())
    }

    fn remember(&self, digest: String, principal: Found) {
        let ttl = self.ttl;
        let mut entries = lock(&self.entries);
        entries.retain(|_, (_, checked_at)| checked_at.elapsed() < ttl);
        entries.insert(digest, (principal, Instant::now()));
    }
}

/// Ends a lookup's turn however it ends, answered or dropped with its request: the next miss looks again.
struct UnderWay<'a> {
    lookups: &'a UnderWayLookups,
    digest: &'a str,
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        lock(self.lookups).remove(self.digest);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::auth::Role;

    fn merchant() -> Principal {
        Principal {
            token_id: uuid::Uuid::nil(),
            role: Role::Merchant,
            merchant_id: Some("m-1".into()),
        }
    }

    /// A lookup that answers after 50 ms, counted in `lookups`.
    async fn after_a_while(
        lookups: &AtomicUsize,
        answer: Result<Found, ApiError>,
    ) -> Result<Found, ApiError> {
        lookups.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer
    }

    #[tokio::test]
    async fn a_token_is_looked_up_again_once_its_entry_expires() {
        for (ttl, expected_lookups) in [(Duration::ZERO, 2), (Duration::from_secs(60), 1)] {
            let cache = TokenCache::new(ttl);
            let lookups = AtomicUsize::new(0);
            for _ in 0..2 {
                let found = cache
                    .get_or_look_up("x", || after_a_while(&lookups, Ok(None)))
                    .await;
                assert_eq!(found.ok(), Some(None), "an unknown token is answered as unknown");
            }
            assert_eq!(lookups.load(Ordering::SeqCst), expected_lookups, "{ttl:?}");
        }
    }

    #[tokio::test]
    async fn requests_missing_a_token_together_share_one_lookup() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let lookups = AtomicUsize::new(0);
        let look_up = || after_a_while(&lookups, Ok(Some(merchant())));
        let requests = (0..100).map(|_| cache.get_or_look_up("secret", look_up));
        let answers = futures::future::join_all(requests).await;
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
        assert!(answers
            .iter()
            .all(|answer| answer.as_ref().ok() == Some(&Some(merchant()))));
        let cached = cache.get_or_look_up("secret", look_up).await;
        assert_eq!(cached.ok(), Some(Some(merchant())));
        assert_eq!(lookups.load(Ordering::SeqCst), 1, "the answer is cached");
    }

    #[tokio::test]
    async fn a_failed_lookup_answers_its_waiters_with_its_status_and_is_not_cached() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let lookups = AtomicUsize::new(0);
        let failing = || {
            let refused = ApiError::Unavailable("database", "connection refused".into());
            after_a_while(&lookups, Err(refused))
        };
        let answers = futures::future::join_all((0..10).map(|_| cache.get_or_look_up("s", failing))).await;
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
        assert!(answers
            .iter()
            .all(|answer| matches!(answer, Err(ApiError::Unavailable("database", _)))));
        let found = cache
            .get_or_look_up("s", || after_a_while(&lookups, Ok(None)))
            .await;
        assert_eq!(found.ok(), Some(None));
        assert_eq!(lookups.load(Ordering::SeqCst), 2, "the failure was not cached");
    }

    #[tokio::test]
    async fn when_the_request_looking_up_goes_away_a_waiting_one_looks_up_itself() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let lookups = AtomicUsize::new(0);
        let look_up = || after_a_while(&lookups, Ok(Some(merchant())));
        let leaving = cache.get_or_look_up("secret", look_up);
        let staying = cache.get_or_look_up("secret", look_up);
        let (left, stayed) = tokio::join!(tokio::time::timeout(Duration::from_millis(10), leaving), staying);
        assert!(left.is_err(), "the first request gave up before its lookup ended");
        assert_eq!(stayed.ok(), Some(Some(merchant())));
        assert_eq!(lookups.load(Ordering::SeqCst), 2);
    }
}
