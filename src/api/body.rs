//! Request bodies that may be left out: absent (or blank) is `None`, but a body that is present must be
//! well-formed JSON of the right shape, or the request is refused with 400 and changes nothing.

use actix_web::{
    FromRequest, HttpRequest,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// An optional JSON body (`Option<web::Json<T>>` would read a malformed body as no body at all).
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> Option<T> {
        self.0
    }

    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|error| {
                if error
                    .as_error::<actix_web::error::PayloadError>()
                    .is_some_and(crate::middleware::body_deadline::is_body_timeout)
                {
                    ApiError::new(ErrorCode::RequestTimeout, error.to_string())
                } else if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
                } else {
                    ApiError::new(
                        ErrorCode::MalformedJson,
                        format!("the body could not be read: {error}"),
                    )
                }
            })?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self(None));
            }
            if is_json == Some(false) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send Content-Type: application/json",
                ));
            }
            serde_json::from_slice(&bytes)
                .map(|value| Self(Some(value)))
                .map_err(|error| {
                    if error.is_data() {
                        ApiError::new(ErrorCode::ValidationFailed, error.to_string())
                            .with_details(serde_json::json!({ "body": error.to_string() }))
                    } else {
                        ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {error}"))
                    }
                })
        })
    }
}
