//! The state every handler shares: settings, database, Redis, keys and the small services.

use std::{path::PathBuf, sync::Arc};

use redis::aio::ConnectionManager;

use crate::{
    auth::JwtKeys, cache::ResponseCache, config::Settings, db::Db, integrations::sms::SmsSender,
    metrics::Metrics, ratelimit::RateLimiter,
};

pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    /// Present when REDIS_URL is configured; reconnects by itself.
    pub redis: Option<ConnectionManager>,
    pub jwt: JwtKeys,
    pub limiter: RateLimiter,
    pub sms: Arc<dyn SmsSender>,
    pub metrics: Metrics,
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
