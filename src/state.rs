//! The state every handler shares: settings, database, Redis, keys and the small services.

use std::{path::PathBuf, sync::Arc};

use tokio::sync::watch;

use crate::{
    auth::JwtKeys,
    bus::{Bus, SharedFleet},
    cache::ResponseCache,
    config::Settings,
    db::Db,
    dispatch::Emergency,
    integrations::{mail::Mailer, razorpay::Payments, sms::SmsSender},
    metrics::Metrics,
    notify::Notifier,
    ratelimit::RateLimiter,
    redis_link::RedisLink,
    ws::{Hub, positions::PositionBuffer},
};

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    /// Present when REDIS_URL is configured: bounded commands behind a circuit breaker.
    pub redis: Option<RedisLink>,
    pub jwt: JwtKeys,
    pub limiter: RateLimiter,
    pub sms: Arc<dyn SmsSender>,
    /// Outgoing e-mail (file outbox by default, SMTP when configured); queued, never awaited.
    pub mailer: Mailer,
    /// Turns order events, bookings and due reminders into e-mails, off the request path.
    pub notifier: Notifier,
    /// Razorpay keys and gateway (offline mode issues ids locally).
    pub payments: Payments,
    pub metrics: Metrics,
    /// This node's websocket sessions by topic.
    pub hub: Arc<Hub>,
    /// Where events are published (after their write commits); relayed through Redis when configured.
    pub bus: Bus,
    /// This node's fleet index, fed by every node's `unit_location`/`unit_status` events.
    pub fleet: SharedFleet,
    /// Unit positions waiting for the next batched write.
    pub positions: PositionBuffer,
    /// Set to `true` once, by graceful shutdown; every session holds a receiver and closes with 1001.
    pub shutdown: watch::Sender<bool>,
    /// Uploaded files (prescriptions, reports).
    pub storage: crate::storage::LocalStorage,
    /// This node's entity registry and dispatcher.
    pub emergency: Emergency,
    /// This node's lab collection offer rounds.
    pub lab: Arc<crate::dispatch::lab::LabDesk>,
    /// Catalog read answers; invalidated after every catalog write.
    pub catalog_cache: ResponseCache,
}

impl AppState {
    pub fn data_dir(&self) -> &PathBuf {
        &self.settings.server.data_dir
    }

    /// Where mail and SMS are written when no real provider is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir().join("outbox")
    }
}
