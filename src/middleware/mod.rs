//! Request pipeline pieces: metrics and request ids, rate limits, idempotency keys, client addresses.

pub mod idempotency;
pub mod metrics;
pub mod rate_limit;

use actix_web::dev::ServiceRequest;

use crate::state::AppState;

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop behind a trusted proxy.
pub fn client_ip(req: &ServiceRequest, state: &AppState) -> String {
    if state.settings.server.trust_forwarded_for
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return first.to_owned();
    }
    req.peer_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The user id in a valid bearer token (signature and claims checked, no database read).
pub fn token_subject(req: &ServiceRequest, state: &AppState) -> Option<String> {
    let token = crate::auth::extract::bearer_token(req.request())?;
    state.jwt.verify(token).ok().map(|claims| claims.sub)
}
