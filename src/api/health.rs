//! `/health`, `/ready` and `/metrics`: what load balancers and monitoring read.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every configured dependency answers, else `degraded`.
    pub status: &'static str,
    pub database: DependencyStatus,
    pub redis: DependencyStatus,
    pub backend: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    Ok,
    Down,
    /// Not configured: the in-process fallback is in use.
    Disabled,
}

async fn check(state: &AppState) -> Health {
    let database = match state.db.ping().await {
        Ok(()) => DependencyStatus::Ok,
        Err(error) => {
            tracing::warn!(error = %error, "database health check failed");
            DependencyStatus::Down
        }
    };
    // Bounded by the link's command timeout; while its circuit is open, answered at once.
    let redis = match &state.redis {
        None => DependencyStatus::Disabled,
        Some(link) => {
            let ping = link
                .run(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
                .await;
            match ping {
                Ok(_) => DependencyStatus::Ok,
                Err(error) => {
                    tracing::debug!(error = %error, "redis health check failed");
                    DependencyStatus::Down
                }
            }
        }
    };
    let healthy = !matches!(database, DependencyStatus::Down) && !matches!(redis, DependencyStatus::Down);
    Health {
        status: if healthy { "ok" } else { "degraded" },
        database,
        redis,
        backend: state.db.backend().name(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "A dependency is down", body = Health))
)]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    respond(check(&state).await)
}

/// Ready to take traffic: migrations ran (they run before the listener binds) and the database answers.
/// Redis being down does not make a node unready — it serves without it (per-node limits, no shared
/// cache) — but the body says so; `/health` is the one that fails on it.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "Not ready", body = Health))
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mut report = check(&state).await;
    // Reads alone do not make a node ready: it must be able to write (not a read-only database).
    if !matches!(report.database, DependencyStatus::Down)
        && let Err(error) = state.db.check_writable().await
    {
        tracing::warn!(error = %error, "database not writable");
        report.database = DependencyStatus::Down;
        report.status = "degraded";
    }
    if matches!(report.database, DependencyStatus::Down) {
        HttpResponse::ServiceUnavailable().json(report)
    } else {
        HttpResponse::Ok().json(report)
    }
}

fn respond(report: Health) -> HttpResponse {
    if report.status == "ok" {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut body = state.metrics.render();
    if let Some(link) = &state.redis {
        body.push_str(&format!(
            "# HELP onemedi_redis_up 1 while Redis commands are sent, 0 while its circuit is open.\n\
             # TYPE onemedi_redis_up gauge\nonemedi_redis_up {}\n\
             # HELP onemedi_redis_circuit_opened_total Times Redis was found down and the circuit opened.\n\
             # TYPE onemedi_redis_circuit_opened_total counter\nonemedi_redis_circuit_opened_total {}\n",
            u8::from(link.is_up()),
            link.trips()
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
