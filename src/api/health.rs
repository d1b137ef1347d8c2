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
    let redis = match &state.redis {
        None => DependencyStatus::Disabled,
        Some(conn) => {
            let mut conn = conn.clone();
            match redis::cmd("PING").query_async::<String>(&mut conn).await {
                Ok(_) => DependencyStatus::Ok,
                Err(error) => {
                    tracing::warn!(error = %error, "redis health check failed");
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

/// Ready to take traffic: migrations ran (they run before the listener binds) and dependencies answer.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "Not ready", body = Health))
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    respond(check(&state).await)
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
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
