//! ONE MEDI server library: configuration, persistence, HTTP API and real-time sessions.

pub mod api;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod integrations;
pub mod invoice;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod pages;
pub mod ratelimit;
pub mod redis_link;
pub mod refunds;
pub mod simulate;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod ws;

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_cors::Cors;
use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    dev::{Server, ServerHandle},
    http::{Method, header},
    middleware::from_fn,
    web,
};
use anyhow::Context;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth::JwtKeys,
    bus::Bus,
    cache::ResponseCache,
    config::Settings,
    db::Db,
    error::{ApiError, ErrorCode},
    integrations::sms::OutboxSms,
    ratelimit::RateLimiter,
    state::AppState,
};

/// How often stale idempotency records are deleted.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often blood requests past their deadline, and lapsed stock holds, are expired.
const BLOOD_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How often slots are generated ahead from the weekly schedules (the first run is at start).
const SLOT_GENERATION_INTERVAL: Duration = Duration::from_secs(3600);

/// A built server: the listener is bound (so the port is known) but not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects the database (migrating it) and Redis, binds the listener and assembles the routes.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = web::Data::new(build_state(settings).await?);
        let listener = TcpListener::bind(state.settings.server.bind)
            .with_context(|| format!("binding {}", state.settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, state.clone())?;
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or [`ServerHandle::stop`], then drains in-flight requests. A signal
    /// first closes every websocket session with 1001 ([`begin_shutdown`]); buffered unit positions are
    /// written before this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let purge = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
            loop {
                tick.tick().await;
                purge_idempotency(&state).await;
            }
        });
        let state = self.state.clone();
        let flush = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.realtime.position_flush());
            loop {
                tick.tick().await;
                flush_positions(&state).await;
            }
        });
        let state = self.state.clone();
        let clocks = actix_web::rt::spawn(dispatch::breach::monitor(
            state.db.clone(),
            state.fleet.clone(),
            state.bus.clone(),
        ));
        let state = self.state.clone();
        let orphans = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(dispatch::lease::LEASE_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                dispatch::lease::tick(&state).await;
            }
        });
        let state = self.state.clone();
        let deliveries = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.delivery.retry_sweep());
            loop {
                tick.tick().await;
                dispatch::retry_deliveries(&state).await;
            }
        });
        let state = self.state.clone();
        let blood = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(BLOOD_SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                match api::blood::sweep_expired(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(changed = n, "blood requests and holds expired"),
                    Err(error) => tracing::warn!(error = ?error, "blood expiry sweep failed"),
                }
            }
        });
        let state = self.state.clone();
        let slots = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(SLOT_GENERATION_INTERVAL);
            loop {
                tick.tick().await;
                match api::doctors::generate_all_slots(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(added = n, "doctor slots generated"),
                    Err(error) => tracing::warn!(error = ?error, "doctor slot generation failed"),
                }
            }
        });
        let state = self.state.clone();
        let holds = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.care.hold_sweep());
            loop {
                tick.tick().await;
                match api::doctors::sweep_expired_holds(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(released = n, "lapsed slot holds released"),
                    Err(error) => tracing::warn!(error = ?error, "slot hold sweep failed"),
                }
            }
        });
        let state = self.state.clone();
        let lab = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.lab.sweep());
            loop {
                tick.tick().await;
                if let Err(error) = dispatch::lab::sweep(&state).await {
                    tracing::warn!(error = ?error, "lab sweep failed");
                }
            }
        });
        let state = self.state.clone();
        let reminders = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.mail.reminder_sweep());
            loop {
                tick.tick().await;
                let lead = state.settings.mail.reminder_lead();
                match notify::send_due_reminders(&state.db, &state.notifier, lead).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(queued = n, "appointment reminders queued"),
                    Err(error) => tracing::warn!(error = %error, "appointment reminder sweep failed"),
                }
            }
        });
        let state = self.state.clone();
        let refund_sweep = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.payments.refund_sweep());
            loop {
                tick.tick().await;
                match refunds::process_due(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sent = n, "refunds sent"),
                    Err(error) => tracing::warn!(error = %error, "refund sweep failed"),
                }
            }
        });
        let state = self.state.clone();
        // actix-web stops on the same signals by itself; this only tells the sessions first.
        let signals = actix_web::rt::spawn(async move {
            shutdown_signal().await;
            begin_shutdown(&state);
        });
        let result = self.server.await;
        purge.abort();
        flush.abort();
        clocks.abort();
        orphans.abort();
        deliveries.abort();
        blood.abort();
        slots.abort();
        holds.abort();
        lab.abort();
        reminders.abort();
        refund_sweep.abort();
        signals.abort();
        begin_shutdown(&self.state);
        flush_positions(&self.state).await;
        result
    }
}

/// Starts a graceful shutdown of the real-time layer: every websocket session closes with 1001 and new
/// ones are refused the same way. The HTTP server itself is stopped by its handle or a signal.
pub fn begin_shutdown(state: &AppState) {
    state.shutdown.send_replace(true);
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the units with a recent stored position into this node's fleet index, so a restarted node
/// can dispatch before the next round of location pings arrives.
async fn seed_fleet(db: &Db, fleet: &bus::SharedFleet) {
    match db::emergency::recent_positions(db).await {
        Ok(units) => {
            let mut index = bus::lock_fleet(fleet);
            for unit in units {
                if let Err(error) = index.upsert(unit) {
                    tracing::debug!(error = %error, "stored position not indexed");
                }
            }
        }
        Err(error) => tracing::warn!(error = %error, "fleet index not seeded from the database"),
    }
}

async fn flush_positions(state: &AppState) {
    match state.positions.flush(&state.db).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(units = n, "unit positions written"),
        Err(error) => tracing::warn!(error = %error, "unit positions not written; kept for the next flush"),
    }
}

/// Connects everything the handlers share.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let data_dir = settings.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let url = settings.database.effective_url(&data_dir);
    let db = Db::connect(&url, settings.database.max_connections)
        .await
        .context("opening the database")?;
    let warm = db.warm_up(settings.database.warm_connections).await;
    tracing::debug!(connections = warm, "database pool warmed up");
    let redis = match settings.redis.url() {
        Some(url) => {
            let client = redis::Client::open(url).context("parsing REDIS_URL")?;
            let link = redis_link::RedisLink::connect(client.clone(), settings.redis.timeouts()).await?;
            // The bus relay has its own connection: it publishes from a background task, in batches
            // that may take longer than a request's budget, and must not open the requests' circuit.
            let relay = redis::aio::ConnectionManager::new_lazy_with_config(
                client.clone(),
                redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(0),
            )
            .context("configuring the Redis relay connection")?;
            Some((client, link, relay))
        }
        None => None,
    };
    let hub = Arc::new(ws::Hub::default());
    let fleet = Arc::new(Mutex::new(onemedi_actors::fleet::FleetIndex::default()));
    let bus = match &redis {
        Some((client, _, relay)) => Bus::with_redis(
            hub.clone(),
            fleet.clone(),
            client.clone(),
            relay.clone(),
            &settings.redis.key_prefix,
        )
        .await
        .context("subscribing to the event channel")?,
        None => Bus::local(hub.clone(), fleet.clone()),
    };
    let redis = redis.map(|(_, link, _)| link);
    seed_fleet(&db, &fleet).await;
    let emergency =
        dispatch::Emergency::start(db.clone(), &bus, fleet.clone(), settings.dispatch.dispatcher());
    let lab = Arc::new(dispatch::lab::LabDesk::default());
    bus.attach_lab(lab.clone());
    let limiter = match &redis {
        Some(link) => RateLimiter::shared(link.clone(), settings.redis.key_prefix.clone()),
        None => RateLimiter::local(),
    };
    let jwt = JwtKeys::from_settings(&settings.auth, &data_dir)?;
    let sms = Arc::new(OutboxSms::new(data_dir.join("outbox")));
    let metrics = metrics::Metrics::default();
    let mailer =
        integrations::mail::Mailer::start(&settings.mail, data_dir.join("outbox"), metrics.mail.clone())?;
    let notifier = notify::Notifier::start(
        db.clone(),
        mailer.clone(),
        bus.clone(),
        settings.mail.queue_capacity,
    );
    bus.observe(notifier.order_observer());
    let payments = integrations::razorpay::Payments::from_settings(&settings.payments, &data_dir)?;
    tracing::info!(
        backend = db.backend().name(),
        redis = redis.is_some(),
        payments_offline = payments.is_offline(),
        mail_smtp = mailer.is_smtp(),
        "dependencies connected"
    );
    Ok(AppState {
        db,
        jwt,
        limiter,
        sms,
        mailer,
        notifier,
        payments,
        metrics,
        hub,
        bus,
        fleet,
        positions: Default::default(),
        shutdown: tokio::sync::watch::Sender::new(false),
        emergency,
        lab,
        storage: storage::LocalStorage::new(data_dir.join("files")),
        catalog_cache: ResponseCache::new(
            cache::CATALOG_TTL,
            cache::CATALOG_MAX_ENTRIES,
            redis
                .clone()
                .map(|link| (link, settings.redis.key_prefix.clone())),
        ),
        redis,
        settings,
    })
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let shutdown_secs = state.settings.server.shutdown_timeout_secs;
    let policy = pages::Policy::new(&state.settings.maps).context("maps.tile_url")?;
    let server = HttpServer::new(move || {
        let settings = &state.settings.server;
        let (app, openapi) = App::new()
            .into_utoipa_app()
            .openapi(api::docs::ApiDoc::openapi())
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(settings.body_limit_bytes)
                    .error_handler(error::json_error_handler),
            )
            .app_data(web::PayloadConfig::new(settings.body_limit_bytes))
            .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
            .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
            .configure(api::configure)
            .split_for_parts();
        app.service(ws::connect)
            .configure(|config| pages::configure(config, policy.clone()))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi))
            .route("/docs", web::get().to(|| async { redirect("/docs/") }))
            .default_service(web::to(fallback))
            .wrap(from_fn(middleware::idempotency::handle))
            .wrap(from_fn(middleware::body_deadline::limit))
            .wrap(from_fn(middleware::rate_limit::limit))
            .wrap(from_fn(middleware::metrics::record))
            // Every answer: never sniffed into another type, never framed (pages and /docs alike).
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY")),
            )
            .wrap(cors(&settings.cors_origins))
            .wrap(TracingLogger::<telemetry::RedactingRootSpan>::new())
    })
    .listen(listener)?
    .shutdown_timeout(shutdown_secs)
    .run();
    Ok(server)
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("idempotency-key")
        .expose_headers([
            "x-request-id",
            "retry-after",
            "x-ratelimit-remaining",
            "idempotency-replayed",
        ])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// No route matched: 405 when the path exists with other methods, else 404 — both as JSON errors.
async fn fallback(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.resource_map().has_resource(req.path()) {
        Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed here", req.method()),
        ))
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no route {}", req.path()),
        ))
    }
}

async fn purge_idempotency(state: &AppState) {
    let ttl = chrono::TimeDelta::seconds(state.settings.idempotency.ttl_secs as i64);
    let purged = async {
        let mut conn = state.db.write().await?;
        Ok::<_, db::DbError>(db::idempotency::purge(&mut conn, db::now() - ttl).await?)
    };
    match purged.await {
        Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency records deleted"),
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error, "idempotency purge failed"),
    }
}
