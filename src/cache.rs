//! A small bounded cache with a time-to-live for catalog read answers, invalidated on every catalog write.
//!
//! Entries are keyed by a *generation*: every write bumps it, so an entry from before the write can never
//! be served again. Without Redis the generation is a local counter (one node). With Redis it is a shared
//! counter (`{prefix}:catalog:gen`), read once per cached request, so a price change made on one node
//! invalidates every node's entries at once. The shared counter never goes backwards: when the key is
//! missing (Redis restarted empty) it starts again from the current time in microseconds, past every
//! value it held before. While Redis is unreachable the cache is bypassed and its entries dropped — a
//! miss costs a database query, a stale answer could cost a wrong price — and an invalidation this node
//! could not share is shared the moment Redis answers again, before anything is cached. Orders never
//! read prices from here.

use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;

use crate::redis_link::RedisLink;

/// How long a cached answer lives even without writes (bounds staleness if an invalidation is missed).
pub const CATALOG_TTL: Duration = Duration::from_secs(30);
/// Most answers kept; past it the oldest entries are evicted.
pub const CATALOG_MAX_ENTRIES: usize = 512;

/// Reads the shared generation, first starting it from the clock (µs) if the key is missing.
static READ_GENERATION: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(READ_GENERATION_LUA));
const READ_GENERATION_LUA: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])), 'NX')
  value = redis.call('GET', KEYS[1])
end
return value
";

/// Bumps the shared generation, first starting it from the clock (µs) if the key is missing.
static BUMP_GENERATION: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(BUMP_GENERATION_LUA));
const BUMP_GENERATION_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])), 'NX')
end
return redis.call('INCR', KEYS[1])
";

pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    /// Bumped by every catalog write on this node; part of every key.
    local_generation: AtomicU64,
    /// Shared generation when Redis is configured.
    redis: Option<(RedisLink, String)>,
    /// An invalidation that could not be shared (Redis down), shared when it answers again.
    unshared: Arc<AtomicBool>,
    /// key → (stored at, JSON body). A std mutex: held only for a map operation, never across an await.
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl ResponseCache {
    pub fn new(ttl: Duration, max_entries: usize, redis: Option<(RedisLink, String)>) -> Self {
        let unshared = Arc::new(AtomicBool::new(false));
        if let Some((link, prefix)) = &redis {
            let (unshared, key) = (unshared.clone(), Self::redis_key(prefix));
            link.on_recovery(move |mut conn| {
                let (unshared, key) = (unshared.clone(), key.clone());
                async move {
                    if !unshared.load(Ordering::Acquire) {
                        return true;
                    }
                    let bumped = BUMP_GENERATION.key(&key).invoke_async::<u64>(&mut conn).await;
                    match bumped {
                        Ok(_) => {
                            unshared.store(false, Ordering::Release);
                            tracing::info!("catalog invalidation made while redis was down now shared");
                            true
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "catalog invalidation still not shared");
                            false
                        }
                    }
                }
            });
        }
        Self {
            ttl,
            max_entries: max_entries.max(1),
            local_generation: AtomicU64::new(0),
            redis,
            unshared,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn redis_key(prefix: &str) -> String {
        format!("{prefix}:catalog:gen")
    }

    /// The current generation, or `None` when the shared counter is unreachable (then do not cache).
    pub async fn generation(&self) -> Option<String> {
        let local = self.local_generation.load(Ordering::Acquire);
        let Some((link, prefix)) = &self.redis else {
            return Some(local.to_string());
        };
        let key = Self::redis_key(prefix);
        if self.unshared.load(Ordering::Acquire) {
            // An invalidation of this node's is not shared yet: share it before trusting the counter.
            let bump_key = key.clone();
            let bumped = link
                .run(|mut conn| async move {
                    BUMP_GENERATION
                        .key(&bump_key)
                        .invoke_async::<u64>(&mut conn)
                        .await
                })
                .await;
            if bumped.is_err() {
                return None;
            }
            self.unshared.store(false, Ordering::Release);
        }
        let shared = link
            .run(|mut conn| async move { READ_GENERATION.key(&key).invoke_async::<u64>(&mut conn).await })
            .await;
        match shared {
            Ok(shared) => Some(format!("{local}.{shared}")),
            Err(error) => {
                // Writes on other nodes cannot reach this one meanwhile: nothing cached is trusted.
                self.clear();
                tracing::debug!(error = %error, "catalog cache generation unavailable; not caching");
                None
            }
        }
    }

    pub fn get(&self, generation: &str, key: &str) -> Option<Bytes> {
        let full = format!("{generation}|{key}");
        let entries = self.entries.lock().ok()?;
        entries
            .get(&full)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, body)| body.clone())
    }

    pub fn put(&self, generation: &str, key: &str, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            while entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => entries.remove(&k),
                    None => break,
                };
            }
        }
        entries.insert(format!("{generation}|{key}"), (Instant::now(), body));
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Forgets every entry, here and (with Redis) on every node. Called after each catalog write commits.
    pub async fn invalidate(&self) {
        self.local_generation.fetch_add(1, Ordering::AcqRel);
        self.clear();
        let Some((link, prefix)) = &self.redis else {
            return;
        };
        let key = Self::redis_key(prefix);
        let bumped = link
            .run(|mut conn| async move { BUMP_GENERATION.key(&key).invoke_async::<u64>(&mut conn).await })
            .await;
        if let Err(error) = bumped {
            // This node is already clean; the others learn it when Redis answers again.
            self.unshared.store(true, Ordering::Release);
            tracing::warn!(error = %error, "catalog invalidation not shared yet: redis unreachable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_invalidates_and_size_is_bounded() {
        let cache = ResponseCache::new(Duration::from_secs(60), 2, None);
        let generation = cache.generation().await.unwrap();
        cache.put(&generation, "a", Bytes::from_static(b"1"));
        assert_eq!(cache.get(&generation, "a").unwrap(), Bytes::from_static(b"1"));
        cache.invalidate().await;
        let next = cache.generation().await.unwrap();
        assert_ne!(generation, next);
        assert!(cache.get(&next, "a").is_none());
        for key in ["x", "y", "z"] {
            cache.put(&next, key, Bytes::from_static(b"v"));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = ResponseCache::new(Duration::from_millis(1), 8, None);
        let generation = cache.generation().await.unwrap();
        cache.put(&generation, "a", Bytes::from_static(b"1"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(cache.get(&generation, "a").is_none());
    }
}
