//! The node's link to Redis: every command bounded by a timeout, and a circuit breaker that stops
//! requests from waiting on a Redis that is down or hung.
//!
//! Redis carries only what may degrade (the catalog cache, shared rate limits, the cross-node bus),
//! never a lock, so while it is unreachable the node goes on without it: the first command that fails or
//! overruns `redis.command_timeout_ms` opens the circuit, every later caller is told at once that Redis is
//! down (and falls back: per-node rate limits, no shared cache), and one background task probes with
//! `PING` until Redis answers. Then the recovery hooks run (an invalidation this node could not share
//! is shared now) and the circuit closes by itself.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum RedisDown {
    /// The circuit is open: Redis failed recently and is being probed in the background.
    #[error("redis is unreachable (circuit open)")]
    CircuitOpen,
    /// Redis did not answer within the command timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error or the connection failed.
    #[error(transparent)]
    Failed(#[from] redis::RedisError),
}

/// Timeouts of the link (`redis.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct LinkTimeouts {
    /// Longest a request waits on one command before Redis is taken as down.
    pub command: Duration,
    /// Longest one connection attempt may take.
    pub connect: Duration,
    /// Pause between two probes while the circuit is open.
    pub probe_every: Duration,
}

impl Default for LinkTimeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_millis(50),
            connect: Duration::from_millis(250),
            probe_every: Duration::from_millis(500),
        }
    }
}

type Hook = Box<dyn Fn(ConnectionManager) -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>;

struct Inner {
    conn: ConnectionManager,
    timeouts: LinkTimeouts,
    open: AtomicBool,
    /// Times the circuit opened since the start (for `/metrics` and tests).
    trips: AtomicU64,
    /// Run (in order) before the circuit closes; each returns whether it succeeded.
    hooks: Mutex<Vec<Hook>>,
}

/// A cloneable handle on the node's Redis connection and its circuit breaker.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

impl RedisLink {
    /// A link to `client`, connecting lazily: a node starts even while Redis is down (with the circuit
    /// open after its first attempt) and joins in when Redis comes back.
    pub async fn connect(client: redis::Client, timeouts: LinkTimeouts) -> anyhow::Result<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.command))
            // Reconnecting is the probe's job; a command never waits on a reconnect loop.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let link = Self {
            inner: Arc::new(Inner {
                conn,
                timeouts,
                open: AtomicBool::new(false),
                trips: AtomicU64::new(0),
                hooks: Mutex::new(Vec::new()),
            }),
        };
        // The first connection, within the connect timeout; a failure opens the circuit.
        let mut conn = link.inner.conn.clone();
        let first = tokio::time::timeout(
            timeouts.connect + timeouts.command,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let cause = match first {
            Ok(Ok(_)) => return Ok(link),
            Ok(Err(error)) => RedisDown::Failed(error),
            Err(_) => RedisDown::Timeout(timeouts.connect + timeouts.command),
        };
        tracing::error!(error = %cause, "redis unreachable at start; going on without it until it answers");
        link.trip(&cause);
        Ok(link)
    }

    /// Whether commands are being sent (the circuit is closed).
    pub fn is_up(&self) -> bool {
        !self.inner.open.load(Ordering::Acquire)
    }

    /// How many times the circuit opened since the start.
    pub fn trips(&self) -> u64 {
        self.inner.trips.load(Ordering::Relaxed)
    }

    /// Runs `hook` with a connection each time Redis comes back, before the circuit closes. A hook that
    /// fails keeps the circuit open until the next probe.
    pub fn on_recovery<F, Fut>(&self, hook: F)
    where
        F: Fn(ConnectionManager) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        if let Ok(mut hooks) = self.inner.hooks.lock() {
            hooks.push(Box::new(move |conn| Box::pin(hook(conn))));
        }
    }

    /// Runs one command (or pipeline, or script) within the command timeout. Answers at once with
    /// [`RedisDown::CircuitOpen`] while Redis is known to be down; a failure or timeout opens the circuit.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisDown>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(RedisDown::CircuitOpen);
        }
        let timeout = self.inner.timeouts.command;
        let outcome = match tokio::time::timeout(timeout, command(self.inner.conn.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !is_outage(&error) => return Err(RedisDown::Failed(error)),
            Ok(Err(error)) => RedisDown::Failed(error),
            Err(_) => RedisDown::Timeout(timeout),
        };
        self.trip(&outcome);
        Err(outcome)
    }

    /// Opens the circuit and starts the probe, unless it is open already.
    fn trip(&self, cause: &RedisDown) {
        if self.inner.open.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.trips.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            error = %cause,
            "redis unreachable: circuit open; rate limits per node, catalog cache bypassed, events kept local"
        );
        let link = self.clone();
        tokio::spawn(async move { link.probe().await });
    }

    /// Probes until Redis answers and every recovery hook succeeded, then closes the circuit.
    async fn probe(self) {
        let timeouts = self.inner.timeouts;
        loop {
            tokio::time::sleep(timeouts.probe_every).await;
            let mut conn = self.inner.conn.clone();
            let ping = tokio::time::timeout(
                timeouts.connect + timeouts.command,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            if !matches!(ping, Ok(Ok(_))) {
                continue;
            }
            let hooks: Vec<_> = match self.inner.hooks.lock() {
                Ok(hooks) => hooks.iter().map(|hook| hook(self.inner.conn.clone())).collect(),
                Err(_) => Vec::new(),
            };
            let mut recovered = true;
            for hook in hooks {
                recovered &= tokio::time::timeout(timeouts.connect + timeouts.command, hook)
                    .await
                    .unwrap_or(false);
            }
            if recovered {
                self.inner.open.store(false, Ordering::Release);
                tracing::warn!(
                    "redis answers again: circuit closed; shared limits, cache and events resumed"
                );
                return;
            }
        }
    }
}

/// Whether an error means Redis (or the way to it) is unavailable, rather than a refused command.
fn is_outage(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}
