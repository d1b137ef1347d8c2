//! A small bounded cache with a time-to-live for catalog read answers, invalidated on every catalog write.
//!
//! Entries are keyed by a *generation*: every write bumps it, so an entry from before the write can never
//! be served again. Without Redis the generation is a local counter (one node). With Redis it is a shared
//! counter (`{prefix}:catalog:gen`), read once per cached request, so a price change made on one node
//! invalidates every node's entries at once. If Redis cannot be reached the cache is bypassed — a miss
//! costs a database query, a stale answer could cost a wrong price. Orders never read prices from here.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::{AsyncCommands, aio::ConnectionManager};

/// How long a cached answer lives even without writes (bounds staleness if an invalidation is missed).
pub const CATALOG_TTL: Duration = Duration::from_secs(30);
/// Most answers kept; past it the oldest entries are evicted.
pub const CATALOG_MAX_ENTRIES: usize = 512;

pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    /// Bumped by every catalog write on this node; part of every key.
    local_generation: AtomicU64,
    /// Shared generation when Redis is configured.
    redis: Option<(ConnectionManager, String)>,
    /// key → (stored at, JSON body). A std mutex: held only for a map operation, never across an await.
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl ResponseCache {
    pub fn new(ttl: Duration, max_entries: usize, redis: Option<(ConnectionManager, String)>) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            local_generation: AtomicU64::new(0),
            redis,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn redis_key(prefix: &str) -> String {
        format!("{prefix}:catalog:gen")
    }

    /// The current generation, or `None` when the shared counter is unreachable (then do not cache).
    pub async fn generation(&self) -> Option<String> {
        let local = self.local_generation.load(Ordering::Acquire);
        match &self.redis {
            None => Some(local.to_string()),
            Some((conn, prefix)) => {
                let mut conn = conn.clone();
                match conn.get::<_, Option<u64>>(Self::redis_key(prefix)).await {
                    Ok(shared) => Some(format!("{local}.{}", shared.unwrap_or(0))),
                    Err(error) => {
                        tracing::warn!(error = %error, "catalog cache generation unavailable; not caching");
                        None
                    }
                }
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

    /// Forgets every entry, here and (with Redis) on every node. Called after each catalog write commits.
    pub async fn invalidate(&self) {
        self.local_generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
        if let Some((conn, prefix)) = &self.redis {
            let mut conn = conn.clone();
            if let Err(error) = conn.incr::<_, _, u64>(Self::redis_key(prefix), 1).await {
                // Other nodes keep their entries until the TTL; this node is already clean.
                tracing::error!(error = %error, "catalog invalidation not shared through Redis");
            }
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
