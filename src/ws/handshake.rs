//! `GET /ws`: refuses foreign browser origins and bad tokens before upgrading, then hands the
//! connection's input to a session task and its output to the response body (`outbound`).

use actix_web::{HttpRequest, HttpResponse, get, http::header, web};
use serde::Deserialize;

use super::{
    outbound::Outbound,
    session::{self, Identity},
};
use crate::{
    auth::extract::bearer_token,
    db::users,
    domain::{Role, UserId},
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// `?token=` for clients that cannot set headers on a websocket request (browsers).
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// Opens a websocket session. The token comes from `Authorization: Bearer …`, `?token=`, or a first
/// `auth` frame within the auth timeout; see `docs/websocket.md`.
#[get("/ws")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    check_origin(&req, &state.settings.server.cors_origins)?;
    let token = bearer_token(&req)
        .map(str::to_owned)
        .or_else(|| query.into_inner().token.filter(|t| !t.is_empty()));
    let identity = match token {
        Some(token) => Some(identify(&state, &token).await?),
        None => None,
    };
    let (response, ws, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(state.settings.realtime.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.settings.realtime.max_frame_bytes);
    let (link, events) = state.hub.open(state.settings.realtime.outbound_queue);
    let response = Outbound::attach(response, events, link.clone());
    actix_web::rt::spawn(session::run(state.into_inner(), ws, stream, identity, link));
    Ok(response)
}

/// A browser's `Origin` must be this server's own (the pages it serves) or one of the configured
/// origins; a request without one (a native app, a server) is allowed, since the token is what
/// authenticates it.
fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let permitted = origin.to_str().is_ok_and(|origin| {
        same_origin(req, origin) || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    });
    if permitted {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "this origin may not open websocket sessions",
        ))
    }
}

/// Whether `origin` is the server the request was addressed to (`Host`), over http or https.
fn same_origin(req: &HttpRequest, origin: &str) -> bool {
    let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host))
}

/// Verifies a token and loads the active user it names.
pub(super) async fn identify(state: &AppState, token: &str) -> Result<Identity, ApiError> {
    let claims = state
        .jwt
        .verify(token)
        .map_err(|_| ApiError::unauthorized("the token is invalid or expired"))?;
    let id: i64 = claims
        .sub
        .parse()
        .map_err(|_| ApiError::unauthorized("the token is invalid or expired"))?;
    let mut conn = state.db.read().await?;
    let user = users::find(&mut conn, id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists or is disabled"))?;
    let role =
        Role::parse(&user.role).ok_or_else(|| ApiError::internal(anyhow::anyhow!("bad role in row")))?;
    Ok(Identity {
        user: UserId(user.id),
        role,
    })
}
