//! Single-use, expiring request tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::TryRngCore;

/// A source of the current time, injectable for tests.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Number of random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Pending requests keyed by their token; each can be taken once, before it expires.
pub(crate) struct TokenCache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    ttl: Duration,
    max: usize,
    clock: Arc<dyn Clock>,
}

/// Why a token could not be issued.
#[derive(Debug)]
pub(crate) enum IssueError {
    /// `max` requests are already pending.
    Full(usize),
    /// The OS RNG failed.
    Rng(String),
}

impl<T> TokenCache<T> {
    pub(crate) fn new(ttl: Duration, max: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, T)>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `value` and returns a fresh token (hex of 256 bits from the OS RNG).
    pub(crate) fn insert(&self, value: T) -> Result<String, IssueError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| IssueError::Rng(e.to_string()))?;
        let token = hex::encode(bytes);
        let now = self.clock.now();
        let mut entries = self.lock();
        entries.retain(|_, (expires, _)| *expires > now);
        if entries.len() >= self.max {
            return Err(IssueError::Full(self.max));
        }
        entries.insert(token.clone(), (now + self.ttl, value));
        Ok(token)
    }

    /// Whether `token` is pending and not expired, and `accept` says yes to its value.
    pub(crate) fn peek(&self, token: &str, accept: impl FnOnce(&T) -> bool) -> bool {
        let now = self.clock.now();
        let entries = self.lock();
        match entries.get(token) {
            Some((expires, value)) => *expires > now && accept(value),
            None => false,
        }
    }

    /// Takes the value of `token` if it is pending and not expired; the token is then gone.
    pub(crate) fn take(&self, token: &str) -> Option<T> {
        let now = self.clock.now();
        let (expires, value) = self.lock().remove(token)?;
        (expires > now).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that only moves when told to.
    struct ManualClock {
        base: Instant,
        offset: Mutex<Duration>,
    }

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.offset.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.base + *self.offset.lock().unwrap()
        }
    }

    fn cache() -> (Arc<ManualClock>, TokenCache<u32>) {
        let clock = Arc::new(ManualClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        });
        let cache = TokenCache::new(Duration::from_secs(60), 3, clock.clone());
        (clock, cache)
    }

    #[test]
    fn token_is_single_use() {
        let (_clock, cache) = cache();
        let token = cache.insert(7).unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert!(cache.peek(&token, |v| *v == 7));
        assert!(!cache.peek(&token, |v| *v == 8));
        assert_eq!(cache.take(&token), Some(7));
        assert_eq!(cache.take(&token), None);
        assert!(!cache.peek(&token, |_| true));
    }

    #[test]
    fn token_expires_after_ttl() {
        let (clock, cache) = cache();
        let token = cache.insert(1).unwrap();
        clock.advance(Duration::from_secs(59));
        assert!(cache.peek(&token, |_| true));
        clock.advance(Duration::from_secs(1));
        assert!(!cache.peek(&token, |_| true));
        assert_eq!(cache.take(&token), None);
    }

    #[test]
    fn tokens_are_distinct_and_unknown_ones_fail() {
        let (_clock, cache) = cache();
        let a = cache.insert(1).unwrap();
        let b = cache.insert(2).unwrap();
        assert_ne!(a, b);
        assert_eq!(cache.take("00"), None);
        assert_eq!(cache.take(&b), Some(2));
        assert_eq!(cache.take(&a), Some(1));
    }

    #[test]
    fn pending_limit_counts_only_live_tokens() {
        let (clock, cache) = cache();
        for i in 0..3 {
            cache.insert(i).unwrap();
        }
        assert!(matches!(cache.insert(9), Err(IssueError::Full(3))));
        clock.advance(Duration::from_secs(61));
        assert!(cache.insert(9).is_ok());
    }
}
