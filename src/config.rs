//! Layered, typed configuration: embedded defaults → `config/{env}.toml` → environment variables.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults compiled into the binary, so it runs from any directory.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Everything the server reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub idempotency: IdempotencySettings,
    /// Websocket sessions and the event bus; every key has a default, so the section is optional.
    #[serde(default)]
    pub realtime: RealtimeSettings,
    /// Razorpay keys; empty keys select offline mode.
    pub payments: PaymentsSettings,
    /// Doctor slots and appointments; every key has a default, so the section is optional.
    #[serde(default)]
    pub care: CareSettings,
    /// Outgoing e-mail; every key has a default (the file outbox), so the section is optional.
    #[serde(default)]
    pub mail: MailSettings,
    /// The seller printed on invoices; every key has a default, so the section is optional.
    #[serde(default)]
    pub invoice: InvoiceSettings,
    /// Home lab collections; every key has a default, so the section is optional.
    #[serde(default)]
    pub lab: LabSettings,
    /// The demo city simulator; every key has a default, so the section is optional.
    #[serde(default)]
    pub simulate: SimulateSettings,
    /// Medicine deliveries by riders; every key has a default, so the section is optional.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// The dispatch engine; every key has a default, so the section is optional.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// The pages' map; every key has a default (no tile server), so the section is optional.
    #[serde(default)]
    pub maps: MapsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP listener binds; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Where the SQLite file, generated secrets, outbox and uploads live.
    pub data_dir: PathBuf,
    /// Largest accepted request body for JSON routes, in bytes.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS and for websocket handshakes.
    pub cors_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Further proxies in front of the one that connects to us (their addresses as they appear in
    /// `X-Forwarded-For`), skipped when reading the client address from its right end.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Seconds given to in-flight requests and sessions at shutdown.
    pub shutdown_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body; slower is 408 `request_timeout`.
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Empty selects the embedded SQLite file; `postgres://…` selects PostgreSQL.
    pub url: SecretString,
    /// Pool size (PostgreSQL) or reader pool size (SQLite, which has one writer).
    pub max_connections: usize,
    /// Connections opened at startup, before the first request (at most `max_connections`).
    pub warm_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Empty keeps cache, rate limits and the event bus in-process.
    pub url: SecretString,
    /// Prefix of every key and channel, so several deployments (or tests) share one Redis.
    pub key_prefix: String,
    /// Longest a request waits on one Redis command before Redis is taken as down (circuit open), ms.
    #[serde(default = "RedisSettings::default_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// Longest one connection attempt to Redis may take, ms.
    #[serde(default = "RedisSettings::default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

impl RedisSettings {
    fn default_command_timeout_ms() -> u64 {
        50
    }

    fn default_connect_timeout_ms() -> u64 {
        250
    }

    /// The link's timeouts, bounded to sane values.
    pub fn timeouts(&self) -> crate::redis_link::LinkTimeouts {
        use std::time::Duration;
        crate::redis_link::LinkTimeouts {
            command: Duration::from_millis(self.command_timeout_ms.clamp(5, 10_000)),
            connect: Duration::from_millis(self.connect_timeout_ms.clamp(10, 30_000)),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing secret; empty generates one into `{data_dir}/jwt_secret` on first run.
    pub jwt_secret: SecretString,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Access token lifetime (`exp - iat`).
    pub token_ttl_secs: u64,
    /// How long an OTP code stays valid.
    pub otp_ttl_secs: u64,
    /// Wrong guesses allowed for one OTP code before it is dead.
    pub otp_max_attempts: i32,
    /// OTP codes one phone may request per window.
    pub otp_max_requests: i64,
    /// Length of that window.
    pub otp_request_window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per minute per client (user id when authenticated, else IP).
    pub per_minute: u32,
    /// Requests per minute per IP on login, register and OTP routes.
    pub auth_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a stored response is replayed for the same `Idempotency-Key`.
    pub ttl_secs: u64,
    /// How long a running request holds its key without renewing it (it renews every third of this
    /// while it runs). A retry after a node died runs afresh once the lease has lapsed.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_body_read_timeout_secs() -> u64 {
    30
}

fn default_lease_secs() -> u64 {
    10
}

/// Razorpay. With `key_id` and `key_secret` empty the server runs offline: it issues order ids itself
/// and signs checkouts with a key secret generated into the data dir (see README, "Payments").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsSettings {
    /// Razorpay key id (`rzp_live_…` / `rzp_test_…`), shown to the checkout.
    pub key_id: String,
    /// Razorpay key secret: basic-auth password of the API and the checkout signature key.
    pub key_secret: SecretString,
    /// Secret of the webhook endpoint (`X-Razorpay-Signature`); required with real keys, generated into
    /// the data dir offline when empty.
    pub webhook_secret: SecretString,
    /// Base URL of Razorpay's API (tests point it at a loopback fake).
    pub api_base_url: String,
    /// Timeout of one call to Razorpay, seconds.
    pub request_timeout_secs: u64,
    /// How often each node looks for refunds to send (owed by cancellations, or left by a failed or
    /// interrupted attempt), seconds. A cancellation also starts its refund at once.
    pub refund_sweep_secs: u64,
    /// Wait after a refund's first failed attempt, seconds; doubled per further attempt, at most 1 h.
    pub refund_retry_secs: u64,
    /// Attempts before a refund is marked `failed` for staff to follow up.
    pub refund_max_attempts: i32,
}

impl PaymentsSettings {
    pub fn refund_sweep(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.refund_sweep_secs.clamp(1, 3600))
    }

    /// How long one claimed attempt may take before another node may try the refund again.
    pub fn refund_lease(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(
            i64::try_from(self.request_timeout_secs.clamp(1, 600)).unwrap_or(600) * 2 + 5,
        )
    }

    /// The wait before attempt `attempts + 1` of a refund.
    pub fn refund_backoff(&self, attempts: i32) -> chrono::TimeDelta {
        let base = i64::try_from(self.refund_retry_secs.clamp(1, 3600)).unwrap_or(3600);
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 12)).unwrap_or(12);
        chrono::TimeDelta::seconds(base.saturating_mul(1_i64 << doublings).min(3600))
    }
}

/// Websocket session limits and timings. The defaults are the documented constants in [`crate::ws`];
/// tests shorten the timings here instead of sleeping for long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSettings {
    /// How often the server pings each session, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// A session that sends nothing (not even a pong) for this long is dropped, in milliseconds.
    pub client_timeout_ms: u64,
    /// How long a session without a handshake token has to send its `auth` message, in milliseconds.
    pub auth_timeout_ms: u64,
    /// Frames a session may have waiting for its client; a full queue disconnects the session (1013).
    pub outbound_queue: usize,
    /// Largest accepted client frame in bytes; bigger frames close the session (1009).
    pub max_frame_bytes: usize,
    /// How often buffered unit positions are written to the `units` table, in milliseconds.
    pub position_flush_ms: u64,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        use crate::ws;
        Self {
            heartbeat_interval_ms: millis(ws::HEARTBEAT_INTERVAL),
            client_timeout_ms: millis(ws::CLIENT_TIMEOUT),
            auth_timeout_ms: millis(ws::AUTH_TIMEOUT),
            outbound_queue: ws::OUTBOUND_QUEUE,
            max_frame_bytes: ws::MAX_FRAME_BYTES,
            position_flush_ms: millis(ws::POSITION_FLUSH_INTERVAL),
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RealtimeSettings {
    pub fn heartbeat_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    pub fn client_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.client_timeout_ms.max(1))
    }

    pub fn auth_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.auth_timeout_ms.max(1))
    }

    pub fn position_flush(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.position_flush_ms.max(1))
    }
}

/// Doctor slot holds and generation. Tests shorten the hold and the sweep instead of sleeping for long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CareSettings {
    /// How long a customer's hold on a slot lasts before anyone may take it, in seconds.
    pub slot_hold_secs: u64,
    /// How often lapsed holds are set back to open, in milliseconds.
    pub hold_sweep_ms: u64,
    /// How many days ahead slots are generated from the weekly schedules.
    pub slot_horizon_days: u32,
    /// How long an appointment booked for online payment keeps its slot unpaid, in seconds; the hold
    /// sweep then cancels it and opens the slot.
    pub payment_window_secs: u64,
}

impl Default for CareSettings {
    fn default() -> Self {
        Self {
            slot_hold_secs: 300,
            hold_sweep_ms: 5000,
            slot_horizon_days: 14,
            payment_window_secs: 900,
        }
    }
}

impl CareSettings {
    pub fn slot_hold(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.slot_hold_secs.clamp(1, 86_400)).unwrap_or(300))
    }

    pub fn hold_sweep(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.hold_sweep_ms.max(100))
    }

    /// Between 1 second and a day.
    pub fn payment_window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.payment_window_secs.clamp(1, 86_400)).unwrap_or(900))
    }

    /// Between 1 and 60 days.
    pub fn horizon_days(&self) -> u32 {
        self.slot_horizon_days.clamp(1, 60)
    }
}

/// Outgoing e-mail. With `smtp_host` empty, every message is written as an `.eml` file into
/// `{data_dir}/outbox/mail/`; otherwise it is sent through that SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// The `From:` mailbox, e.g. `ONE MEDI <orders@onemedi.in>`.
    pub from: String,
    /// SMTP server host name; empty selects the file outbox.
    pub smtp_host: String,
    /// SMTP server port (25, 587 for STARTTLS, 465 for implicit TLS).
    pub smtp_port: u16,
    /// `none` (plain text, for a relay on this machine), `starttls` or `tls` (implicit TLS).
    pub smtp_security: SmtpSecurity,
    /// SMTP user name; empty sends without authentication.
    pub smtp_username: String,
    /// SMTP password (used only with a user name).
    pub smtp_password: SecretString,
    /// Timeout of one SMTP exchange, seconds.
    pub timeout_secs: u64,
    /// Messages waiting to be sent; when the queue is full a new message is dropped (logged, counted).
    pub queue_capacity: usize,
    /// Attempts per message before it is given up (logged, counted).
    pub max_attempts: u32,
    /// Pause before the first retry, milliseconds; doubled for each further retry.
    pub retry_backoff_ms: u64,
    /// How long before an appointment its reminder is sent, minutes.
    pub reminder_lead_mins: u64,
    /// How often due appointment reminders are looked for, seconds.
    pub reminder_sweep_secs: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "ONE MEDI <no-reply@onemedi.local>".to_owned(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: SecretString::from(String::new()),
            timeout_secs: 10,
            queue_capacity: 1000,
            max_attempts: 3,
            retry_backoff_ms: 2000,
            reminder_lead_mins: 24 * 60,
            reminder_sweep_secs: 60,
        }
    }
}

impl MailSettings {
    /// Between 1 minute and 7 days.
    pub fn reminder_lead(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(
            i64::try_from(self.reminder_lead_mins.clamp(1, 7 * 24 * 60)).unwrap_or(1440),
        )
    }

    pub fn reminder_sweep(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.reminder_sweep_secs.max(1))
    }

    pub fn retry_backoff(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retry_backoff_ms.clamp(1, 600_000))
    }
}

/// The seller named on tax invoices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvoiceSettings {
    /// Legal name of the seller.
    pub seller_name: String,
    /// Registered address of the seller, one line.
    pub seller_address: String,
    /// The seller's GSTIN (15 characters); the default is a placeholder.
    pub gstin: String,
    /// Drug licence number printed on pharmacy invoices.
    pub drug_licence: String,
}

impl Default for InvoiceSettings {
    fn default() -> Self {
        Self {
            seller_name: "ONE MEDI Pharmacy".to_owned(),
            seller_address: "Bengaluru, Karnataka, India".to_owned(),
            gstin: "29AAAAA0000A1Z5".to_owned(),
            drug_licence: "KA-B-000000".to_owned(),
        }
    }
}

/// Home lab collections: booking horizon, offers to phlebotomists, the retry and at-risk sweep. Tests
/// shorten the timings instead of sleeping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabSettings {
    /// How many days ahead (India time) a collection may be booked.
    pub booking_horizon_days: u32,
    /// How long a phlebotomist has to answer an offer, in seconds.
    pub offer_timeout_secs: u64,
    /// How often stranded bookings are retried and collected samples checked, in milliseconds.
    pub sweep_ms: u64,
    /// A booking nobody took is offered again once untouched for this many seconds.
    pub retry_after_secs: u64,
    /// A collected sample not at the lab this many minutes before its stability deadline raises an alert.
    pub at_risk_margin_minutes: u32,
}

impl Default for LabSettings {
    fn default() -> Self {
        Self {
            booking_horizon_days: 14,
            offer_timeout_secs: 60,
            sweep_ms: 10_000,
            retry_after_secs: 120,
            at_risk_margin_minutes: 45,
        }
    }
}

impl LabSettings {
    /// Between 1 and 60 days.
    pub fn horizon_days(&self) -> i64 {
        i64::from(self.booking_horizon_days.clamp(1, 60))
    }

    /// Between 1 second and 10 minutes.
    pub fn offer_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.offer_timeout_secs.clamp(1, 600))
    }

    pub fn sweep(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.sweep_ms.max(100))
    }

    pub fn retry_after(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.retry_after_secs.clamp(1, 86_400)).unwrap_or(120))
    }

    /// At most a day.
    pub fn at_risk_margin(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(i64::from(self.at_risk_margin_minutes.min(1440)))
    }
}

/// The demo city simulator (`onemedi simulate`; demo mode runs it unless `in_demo_mode` is false).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulateSettings {
    /// Run the simulator in the no-argument demo mode.
    pub in_demo_mode: bool,
    /// The demo accounts' password.
    pub password: String,
    /// How often each simulated unit reports its position, in milliseconds.
    pub ping_interval_ms: u64,
    /// Time compression of movement and dwell times (3 = vehicles cover three times the real distance
    /// per second), so a demo shows whole jobs within minutes.
    pub speed_factor: f64,
    /// Emergency calls logged per hour.
    pub ambulance_requests_per_hour: f64,
    /// Medicine orders placed per hour.
    pub orders_per_hour: f64,
    /// Home lab collections booked per hour.
    pub lab_bookings_per_hour: f64,
    /// Share of offers the simulated crews accept, in percent.
    pub accept_percent: u32,
}

impl Default for SimulateSettings {
    fn default() -> Self {
        Self {
            in_demo_mode: true,
            password: "onemedi-demo".to_owned(),
            ping_interval_ms: 2000,
            speed_factor: 3.0,
            ambulance_requests_per_hour: 30.0,
            orders_per_hour: 20.0,
            lab_bookings_per_hour: 10.0,
            accept_percent: 85,
        }
    }
}

impl SimulateSettings {
    /// Between 200 ms and a minute.
    pub fn ping_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ping_interval_ms.clamp(200, 60_000))
    }

    /// Between 0.1 and 20.
    pub fn speed_factor(&self) -> f64 {
        if self.speed_factor.is_finite() {
            self.speed_factor.clamp(0.1, 20.0)
        } else {
            1.0
        }
    }
}

/// The map the pages draw (console, tracking).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MapsSettings {
    /// A raster tile URL template with `{z}`, `{x}` and `{y}` (and optionally `{s}` for subdomains),
    /// e.g. an OpenStreetMap-compatible server. Empty (the offline default): the pages draw the H3
    /// cell grid as the map's base instead of tiles.
    pub tile_url: String,
    /// Credit shown in the map's corner for the tiles (plain text), e.g. `© OpenStreetMap contributors`.
    pub tile_attribution: String,
}

/// Rider delivery of packed orders. Tests shorten the retry instead of sleeping for long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// A packed order with no rider, no open offer and no change for this long is offered again (a
    /// rider may have come on duty, or the node running its cascade died), in seconds.
    pub retry_after_secs: u64,
    /// How often each node looks for such orders, in milliseconds.
    pub retry_sweep_ms: u64,
}

/// How the dispatch engine treats a call nobody can take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchPolicy {
    /// The call waits in the priority queue and is re-dispatched on every change of supply.
    Queue,
    /// The earlier engine, kept for comparison runs (P9): one cascade, then `no_unit_available` and a
    /// human; never re-dispatched.
    OneShot,
}

/// Which calls may take a unit from a less urgent one (categories 3–4, before it reaches its patient).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreemptionPolicy {
    /// Never.
    Off,
    /// Category 1 calls.
    C1,
    /// Category 1 and 2 calls.
    C1C2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// `queue` (default) or `one_shot`.
    pub policy: DispatchPolicy,
    /// `off`, `c1` (default) or `c1_c2`.
    pub preemption: PreemptionPolicy,
    /// Preemption is considered only when the best free unit is farther away than this, in seconds.
    pub preempt_after_secs: u64,
    /// How long triggers (units freed, calls arriving) are gathered before the queue is re-solved, in
    /// milliseconds: triggers arriving together are solved as one batch.
    pub resolve_delay_ms: u64,
    /// While calls wait, the queue is also re-solved this often (units driving into range), in
    /// milliseconds.
    pub queue_recheck_ms: u64,
    /// Time budget of one batch assignment, in milliseconds; past it cheaper methods are used.
    pub batch_deadline_ms: u64,
    /// Units a category 2 call leaves free for category 1 calls: it waits queued while no more than
    /// this many are free within its reach (0, the default: no reserve).
    pub reserve_c1: u32,
    /// Units a category 3 or 4 call leaves free for category 1 and 2 calls, likewise (0: no reserve).
    pub reserve_c1_c2: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            policy: DispatchPolicy::Queue,
            preemption: PreemptionPolicy::C1,
            preempt_after_secs: 300,
            resolve_delay_ms: 25,
            queue_recheck_ms: 5000,
            batch_deadline_ms: 20,
            reserve_c1: 0,
            reserve_c1_c2: 0,
        }
    }
}

impl DispatchConfig {
    /// The actors' dispatcher settings.
    pub fn dispatcher(&self) -> onemedi_actors::dispatch::DispatchSettings {
        use std::time::Duration;
        onemedi_actors::dispatch::DispatchSettings {
            queue: self.policy == DispatchPolicy::Queue,
            resolve_delay: Duration::from_millis(self.resolve_delay_ms.min(10_000)),
            queue_recheck: Duration::from_millis(self.queue_recheck_ms.clamp(100, 600_000)),
            batch_deadline: Duration::from_millis(self.batch_deadline_ms.clamp(1, 1_000)),
            preempt_up_to: match self.preemption {
                PreemptionPolicy::Off => None,
                PreemptionPolicy::C1 => Some(onemedi_actors::dispatch::Priority::Category1),
                PreemptionPolicy::C1C2 => Some(onemedi_actors::dispatch::Priority::Category2),
            },
            preempt_after: Duration::from_secs(self.preempt_after_secs.min(3_600)),
            reserve_c1: self.reserve_c1.min(1_000) as usize,
            reserve_c1_c2: self.reserve_c1_c2.min(1_000) as usize,
            ..Default::default()
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_after_secs: 30,
            retry_sweep_ms: 5000,
        }
    }
}

impl DeliverySettings {
    pub fn retry_after(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.retry_after_secs.min(86_400)).unwrap_or(30))
    }

    pub fn retry_sweep(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retry_sweep_ms.max(100))
    }
}

impl Settings {
    /// Loads the layers for `ONEMEDI_ENV` (default `local`) from `ONEMEDI_CONFIG_DIR` (default `config`).
    pub fn load() -> anyhow::Result<Self> {
        let env = std::env::var("ONEMEDI_ENV").unwrap_or_else(|_| "local".to_owned());
        Self::load_env(&env)
    }

    /// Loads the layers for a named environment.
    pub fn load_env(env: &str) -> anyhow::Result<Self> {
        let dir = std::env::var("ONEMEDI_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml))
            .add_source(config::File::from(PathBuf::from(&dir).join(env)).required(false))
            .add_source(
                config::Environment::with_prefix("ONEMEDI")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("server.cors_origins")
                    .try_parsing(true),
            );
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            builder = builder.set_override("redis.url", url)?;
        }
        builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("configuration has a missing, unknown or mistyped key")
    }
}

impl DatabaseSettings {
    /// The connection URL: the configured one, or the SQLite file inside `data_dir`.
    pub fn effective_url(&self, data_dir: &std::path::Path) -> String {
        let url = self.url.expose_secret().trim();
        if url.is_empty() {
            data_dir.join("onemedi.sqlite").to_string_lossy().into_owned()
        } else {
            url.to_owned()
        }
    }
}

impl RedisSettings {
    /// The Redis URL, if one is configured.
    pub fn url(&self) -> Option<&str> {
        let url = self.url.expose_secret().trim();
        (!url.is_empty()).then_some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_parse_into_settings() {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(settings.server.bind.port(), 8080);
        assert!(settings.redis.url().is_none());
        assert!(
            settings
                .database
                .effective_url(std::path::Path::new("d"))
                .ends_with("onemedi.sqlite")
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let text = format!("{DEFAULT_TOML}\n[mystery]\nx = 1\n");
        let parsed: Result<Settings, _> = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize();
        assert!(parsed.is_err());
    }
}
