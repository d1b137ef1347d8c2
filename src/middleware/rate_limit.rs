//! Per-client request limits: by user id when authenticated, else by IP; login/register/OTP stricter.

use actix_web::{
    Error, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};

use super::{client_ip, routed_path, token_subject};
use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// Routes limited by `auth_per_minute` per IP (credential guessing and SMS cost).
fn is_auth_route(req: &ServiceRequest) -> bool {
    req.method() == Method::POST && routed_path(req).starts_with("/api/v1/auth/")
}

pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let settings = &state.settings.rate_limit;
    if !settings.enabled || !routed_path(&req).starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let (key, limit) = if is_auth_route(&req) {
        (
            format!("auth:{}", client_ip(&req, &state)),
            settings.auth_per_minute,
        )
    } else if let Some(user) = token_subject(&req, &state) {
        (format!("user:{user}"), settings.per_minute)
    } else {
        (format!("ip:{}", client_ip(&req, &state)), settings.per_minute)
    };
    let decision = match state.limiter.hit(&key, limit).await {
        Ok(decision) => decision,
        Err(error) => {
            // Availability over strictness: a Redis outage must not take the API down with it.
            tracing::error!(error = %error, "rate limiter unavailable; request let through");
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    };
    let mut res = if decision.allowed {
        next.call(req).await?.map_into_boxed_body()
    } else {
        let error = ApiError::new(
            ErrorCode::RateLimited,
            format!("more than {limit} requests a minute; slow down"),
        )
        .with_retry_after(decision.reset_secs);
        req.into_response(error.error_response())
    };
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", decision.limit.to_string()),
        ("x-ratelimit-remaining", decision.remaining.to_string()),
        ("x-ratelimit-reset", decision.reset_secs.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok(res)
}
