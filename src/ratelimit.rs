//! Fixed-window request limits per client key, shared through Redis when configured (per node while
//! Redis is unreachable).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::redis_link::{RedisDown, RedisLink};

/// The window every limit counts over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Local counters kept before stale windows are swept (bounds memory under many distinct clients).
const LOCAL_SWEEP_THRESHOLD: usize = 100_000;

/// The verdict for one request.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

/// Counts requests per key: in Redis when configured (one limit across every node), else — or while
/// Redis is unreachable — in this process.
pub struct RateLimiter {
    /// Counters in this process: the only ones without Redis, the fallback while it is down.
    local: Mutex<HashMap<String, (u64, u32)>>,
    /// Counters in Redis: one limit across every node.
    shared: Option<(RedisLink, String)>,
}

/// INCR the window's counter, set its expiry on first use, return count and remaining milliseconds.
static REDIS_HIT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REDIS_HIT_LUA));
const REDIS_HIT_LUA: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
";

impl RateLimiter {
    /// Per-node counters (one node, or no Redis).
    pub fn local() -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counters shared through Redis under `prefix`, falling back to per-node counters while Redis is
    /// unreachable.
    pub fn shared(link: RedisLink, prefix: String) -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            shared: Some((link, prefix)),
        }
    }

    /// Counts one request for `key` against `limit` per [`WINDOW`].
    pub async fn hit(&self, key: &str, limit: u32) -> anyhow::Result<Decision> {
        let window_ms = WINDOW.as_millis() as u64;
        if let Some((link, prefix)) = &self.shared {
            let counted = link
                .run(|mut conn| async move {
                    REDIS_HIT
                        .key(format!("{prefix}:rl:{key}"))
                        .arg(window_ms)
                        .invoke_async::<(u32, i64)>(&mut conn)
                        .await
                })
                .await;
            match counted {
                Ok((count, ttl_ms)) => return Ok(decide(count, limit, ttl_ms.max(0) as u64)),
                // Logged once when the circuit opens; each node limits on its own meanwhile.
                Err(RedisDown::CircuitOpen | RedisDown::Timeout(_)) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "shared rate limit failed; counted on this node")
                }
            }
        }
        self.hit_local(key, limit, window_ms)
    }

    fn hit_local(&self, key: &str, limit: u32, window_ms: u64) -> anyhow::Result<Decision> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window = now_ms / window_ms;
        let count = {
            let mut counters = self
                .local
                .lock()
                .map_err(|_| anyhow::anyhow!("rate limiter poisoned"))?;
            if counters.len() >= LOCAL_SWEEP_THRESHOLD {
                counters.retain(|_, (w, _)| *w == window);
            }
            let entry = counters.entry(key.to_owned()).or_insert((window, 0));
            if entry.0 != window {
                *entry = (window, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            entry.1
        };
        let reset_ms = window_ms - now_ms % window_ms;
        Ok(decide(count, limit, reset_ms))
    }
}

fn decide(count: u32, limit: u32, reset_ms: u64) -> Decision {
    Decision {
        allowed: count <= limit,
        limit,
        remaining: limit.saturating_sub(count),
        reset_secs: reset_ms.div_ceil(1000).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_limiter_refuses_past_the_limit_per_key() {
        let limiter = RateLimiter::local();
        for _ in 0..3 {
            assert!(limiter.hit("a", 3).await.unwrap().allowed);
        }
        let refused = limiter.hit("a", 3).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!(refused.reset_secs >= 1 && refused.reset_secs <= 60);
        assert!(limiter.hit("b", 3).await.unwrap().allowed);
    }
}
