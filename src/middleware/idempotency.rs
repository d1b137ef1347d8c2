//! `Idempotency-Key` on mutating routes: the first request with a key runs and its response is stored;
//! a retry with the same key and body gets the stored response, a different body gets 422, and a retry
//! while the first is still running gets 409.

use actix_web::{
    Error, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        Method, StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};
use sha2::{Digest, Sha256};

use super::{client_ip, token_subject};
use crate::{
    db::{self, idempotency::Claim},
    error::{ApiError, ErrorCode},
    state::AppState,
};

pub const HEADER: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");
/// Longest accepted key (a UUID is 36).
const MAX_KEY_LEN: usize = 255;

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
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
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) => body,
        Err(error) => return Ok(req.into_response(error.error_response()).map_into_boxed_body()),
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

    let now = db::now();
    let ttl = chrono::TimeDelta::seconds(
        i64::try_from(state.settings.idempotency.ttl_secs).unwrap_or(i64::MAX / 2),
    );
    let claim = async {
        let mut conn = state.db.write().await?;
        Ok::<_, ApiError>(
            db::idempotency::claim(&mut conn, &scope, &key, &request_hash, now, now - ttl).await?,
        )
    }
    .await;
    let existing = match claim {
        Ok(Claim::Acquired) => None,
        Ok(Claim::Existing(record)) => Some(record),
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    if let Some(record) = existing {
        let response = if record.request_hash != request_hash {
            ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request",
            )
            .error_response()
        } else if record.state != "complete" {
            ApiError::new(
                ErrorCode::IdempotencyInFlight,
                "a request with this Idempotency-Key is still running",
            )
            .error_response()
        } else {
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
        };
        return Ok(req.into_response(response));
    }

    let res = match next.call(req).await {
        Ok(res) => res,
        Err(error) => {
            forget(&state, &scope, &key).await;
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
            forget(&state, &scope, &key).await;
            let error = ApiError::internal(anyhow::anyhow!("response body could not be buffered"));
            return Ok(ServiceResponse::new(http_req, error.error_response()));
        }
    };
    if status.is_server_error() {
        // A failure on our side is not an answer: let the client's retry run again.
        forget(&state, &scope, &key).await;
    } else {
        let stored = async {
            let mut conn = state.db.write().await?;
            db::idempotency::complete(
                &mut conn,
                &scope,
                &key,
                status.as_u16(),
                content_type.as_deref(),
                &bytes,
            )
            .await?;
            Ok::<_, ApiError>(())
        };
        if let Err(error) = stored.await {
            tracing::error!(error = ?error, "idempotent response not stored");
            forget(&state, &scope, &key).await;
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Ok(ServiceResponse::new(
        http_req,
        response.set_body(BoxBody::new(bytes)),
    ))
}

async fn forget(state: &AppState, scope: &str, key: &str) {
    let released = async {
        let mut conn = state.db.write().await?;
        db::idempotency::release(&mut conn, scope, key).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(error) = released.await {
        tracing::error!(error = ?error, "idempotency claim not released");
    }
}
