//! `Idempotency-Key` on mutating routes: the first request with a key runs and its response is stored;
//! a retry with the same key and body gets the stored response, a different body gets 422, and a retry
//! while the first is still running gets 409 with `Retry-After`.
//!
//! A running request holds its key by a short lease (`idempotency.lease_secs`, renewed every third of
//! it), not for the stored response's lifetime: when its node dies the lease lapses and a retry runs
//! afresh. The request runs in a task of its own, so a client that hangs up does not cancel it: it
//! runs to completion and stores its response for the retry to replay.

use actix_web::{
    Error, HttpMessage, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        Method, StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{client_ip, token_subject};
use crate::{
    db::{
        self,
        idempotency::{Claim, IdempotencyRecord, Lease},
    },
    error::{ApiError, ErrorCode},
    state::AppState,
};

pub const HEADER: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");
/// Longest accepted key (a UUID is 36).
const MAX_KEY_LEN: usize = 255;
/// The largest `multipart/form-data` body buffered for hashing: the largest upload (a lab report) and
/// room for the form's headers. JSON bodies keep `server.body_limit_bytes`.
const MAX_FORM_BYTES: usize = crate::api::lab_bookings::MAX_REPORT_BYTES + 64 * 1024;
/// How often, and for how long, a finished request tries to store its response while the database
/// does not answer: its lease must not lapse (and a retry run the request again) for lack of a write.
const STORE_RETRY_EVERY: Duration = Duration::from_millis(500);
const STORE_RETRY_FOR: Duration = Duration::from_secs(60);

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The body limit for `req`: uploads are forms and may be larger than JSON bodies.
fn body_limit(req: &ServiceRequest, state: &AppState) -> usize {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let json = state.settings.server.body_limit_bytes;
    if is_form { json.max(MAX_FORM_BYTES) } else { json }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {limit} bytes"),
    )
}

/// Buffers the request body (to hash it and to hand it on), refusing more than `limit` bytes.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if super::body_deadline::is_body_timeout(&e) {
                ApiError::new(ErrorCode::RequestTimeout, e.to_string())
            } else {
                ApiError::field("body", format!("could not be read: {e}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub async fn handle(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = req.headers().get(HEADER).map(|v| v.to_str().map(str::to_owned));
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(key), Some(state), true) = (key, state, is_mutating(req.method())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match key {
        Ok(key)
            if !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            key
        }
        _ => {
            let error = ApiError::field(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            );
            return Ok(req.into_response(error.error_response()));
        }
    };
    let mut req = req;
    let limit = body_limit(&req, &state);
    let body = match read_body(&mut req, limit).await {
        Ok(body) => body,
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    req.set_payload(Payload::from(body.clone()));

    let scope = match token_subject(&req, &state) {
        Some(user) => format!("user:{user}"),
        None => format!("ip:{}", client_ip(&req, &state)),
    };
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.uri().to_string());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());

    let settings = &state.settings.idempotency;
    let lease_for = Duration::from_secs(settings.lease_secs.max(1));
    let ttl = chrono::TimeDelta::seconds(i64::try_from(settings.ttl_secs).unwrap_or(i64::MAX / 2));
    let token = uuid::Uuid::new_v4().simple().to_string();
    let lease = Lease {
        scope: &scope,
        key: &key,
        token: &token,
    };
    let now = db::now();
    let claim = async {
        let mut conn = state.db.write().await?;
        Ok::<_, ApiError>(
            db::idempotency::claim(&mut conn, lease, &request_hash, now, now + lease_for, now - ttl).await?,
        )
    }
    .await;
    match claim {
        Ok(Claim::Acquired) => {}
        Ok(Claim::Existing(record)) => {
            return Ok(req.into_response(answer_existing(record, &request_hash, now)));
        }
        Err(error) => return Ok(req.into_response(error.error_response())),
    }

    // The request runs in its own task: if the client hangs up, this future is dropped but the task
    // is not, so the request still finishes and stores its answer.
    let owned = OwnedLease { scope, key, token };
    let run = actix_web::rt::spawn(run_holding_lease(req, next, state, owned, lease_for));
    match run.await {
        Ok(outcome) => outcome,
        Err(e) => Err(ApiError::internal(anyhow::anyhow!("idempotent request task failed: {e}")).into()),
    }
}

/// The answer to a request whose key was used before.
fn answer_existing(
    record: IdempotencyRecord,
    request_hash: &str,
    now: chrono::NaiveDateTime,
) -> HttpResponse {
    if record.request_hash != request_hash {
        return ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        )
        .error_response();
    }
    if record.state != "complete" {
        let left = record
            .lease_until
            .map_or(1, |until| (until - now).num_seconds() + 1)
            .max(1);
        return ApiError::new(
            ErrorCode::IdempotencyInFlight,
            "a request with this Idempotency-Key is still running",
        )
        .with_retry_after(u64::try_from(left).unwrap_or(1))
        .error_response();
    }
    let status = record
        .response_status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut replay = HttpResponse::build(status);
    if let Some(content_type) = record.response_content_type {
        replay.insert_header((header::CONTENT_TYPE, content_type));
    }
    replay.insert_header((REPLAYED, HeaderValue::from_static("true")));
    replay.body(record.response_body.unwrap_or_default())
}

/// A lease the request's own task holds (the claim borrowed its parts).
struct OwnedLease {
    scope: String,
    key: String,
    token: String,
}

impl OwnedLease {
    fn lease(&self) -> Lease<'_> {
        Lease {
            scope: &self.scope,
            key: &self.key,
            token: &self.token,
        }
    }
}

/// Runs the request, renewing its lease until it answers; then stores the answer (or, for a 5xx, lets
/// the key go so that a retry runs again) and hands the answer back.
async fn run_holding_lease<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    state: web::Data<AppState>,
    lease: OwnedLease,
    lease_for: Duration,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let work = next.call(req);
    let mut work = std::pin::pin!(work);
    let mut renewals = tokio::time::interval(lease_for / 3);
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renewals.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = renewals.tick() => renew(&state, &lease, lease_for).await,
        }
    };
    let res = match outcome {
        Ok(res) => res,
        Err(error) => {
            forget(&state, &lease).await;
            return Err(error);
        }
    };
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (http_req, response) = res.into_parts();
    let (mut response, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            forget(&state, &lease).await;
            let error = ApiError::internal(anyhow::anyhow!("response body could not be buffered"));
            return Ok(ServiceResponse::new(http_req, error.error_response()));
        }
    };
    if status.is_server_error() {
        // A failure on our side is not an answer: let the client's retry run again.
        forget(&state, &lease).await;
    } else {
        store(&state, &lease, lease_for, status, content_type.as_deref(), &bytes).await;
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Ok(ServiceResponse::new(
        http_req,
        response.set_body(BoxBody::new(bytes)),
    ))
}

async fn renew(state: &AppState, lease: &OwnedLease, lease_for: Duration) {
    let renewed = async {
        let mut conn = state.db.write().await?;
        Ok::<_, ApiError>(db::idempotency::renew(&mut conn, lease.lease(), db::now() + lease_for).await?)
    };
    match renewed.await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(key = %lease.key, "idempotency lease lost while the request ran"),
        Err(error) => tracing::warn!(error = ?error, key = %lease.key, "idempotency lease not renewed"),
    }
}

/// Stores the answer. While the database does not answer it keeps trying (renewing the lease with
/// the same write), so that a retry replays this answer rather than running the request again.
async fn store(
    state: &AppState,
    lease: &OwnedLease,
    lease_for: Duration,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) {
    let give_up = tokio::time::Instant::now() + STORE_RETRY_FOR;
    loop {
        let stored = async {
            let mut conn = state.db.write().await?;
            Ok::<_, ApiError>(
                db::idempotency::complete(&mut conn, lease.lease(), status.as_u16(), content_type, body)
                    .await?,
            )
        };
        match stored.await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(key = %lease.key, "idempotent response not stored: the lease was taken over");
                return;
            }
            Err(error) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(error = ?error, key = %lease.key, "idempotent response not stored yet; retrying");
                tokio::time::sleep(STORE_RETRY_EVERY.min(lease_for / 3)).await;
            }
            Err(error) => {
                tracing::error!(error = ?error, key = %lease.key, "idempotent response not stored");
                return;
            }
        }
    }
}

async fn forget(state: &AppState, lease: &OwnedLease) {
    let released = async {
        let mut conn = state.db.write().await?;
        db::idempotency::release(&mut conn, lease.lease()).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(error) = released.await {
        // The lease lapses by itself within `lease_secs`.
        tracing::warn!(error = ?error, key = %lease.key, "idempotency claim not released");
    }
}
