//! Request pipeline pieces: metrics and request ids, rate limits, idempotency keys, body deadlines,
//! client addresses.

pub mod body_deadline;
pub mod idempotency;
pub mod metrics;
pub mod rate_limit;

use actix_web::dev::ServiceRequest;

use crate::state::AppState;

/// The client's address: the TCP peer, or behind a trusted proxy the right-most `X-Forwarded-For` entry
/// that is not one of `server.trusted_proxies`. A proxy (nginx's `$proxy_add_x_forwarded_for`) appends
/// the address it saw, so entries to the left of it are whatever the client chose to send.
pub fn client_ip(req: &ServiceRequest, state: &AppState) -> String {
    let server = &state.settings.server;
    if server.trust_forwarded_for
        && let Some(hop) = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|hop| !server.trusted_proxies.iter().any(|proxy| proxy == hop))
    {
        return hop.to_owned();
    }
    req.peer_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The path the router matches `req` on: percent-encoded unreserved characters decoded, as the router
/// decodes them (`/%61pi/v1/auth/login` is `/api/v1/auth/login`).
pub fn routed_path(req: &ServiceRequest) -> &str {
    req.match_info().as_str()
}

/// The user id in a valid bearer token (signature and claims checked, no database read).
pub fn token_subject(req: &ServiceRequest, state: &AppState) -> Option<String> {
    let token = crate::auth::extract::bearer_token(req.request())?;
    state.jwt.verify(token).ok().map(|claims| claims.sub)
}
