//! The one error type of the HTTP edge: a stable snake_case code, the status derived from it, the cause
//! kept for logs only.

use std::fmt;

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Every error code a client can see. The serialised name is the contract; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A field failed validation; `details` names each field.
    ValidationFailed,
    /// The body is not JSON, or not the JSON shape the route takes.
    MalformedJson,
    /// No (or an unusable) bearer token.
    Unauthorized,
    /// Login failed; the same answer for an unknown email and a wrong password.
    InvalidCredentials,
    /// The OTP code is wrong, expired or already used.
    OtpInvalid,
    /// A tracking share link whose signature does not verify (tampered, or not a share link).
    ShareLinkInvalid,
    /// A tracking share link past its expiry.
    ShareLinkExpired,
    /// Authenticated, but the role may not do this.
    Forbidden,
    /// No such resource, or not one this user may see.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Register with an email that already has an account.
    EmailTaken,
    /// Register or profile update with a phone that already has an account.
    PhoneTaken,
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being processed.
    IdempotencyInFlight,
    /// The record changed meanwhile (another request won the conditional write); reload and retry.
    Conflict,
    /// Not enough stock for a medicine; `details.medicine_id` names it.
    OutOfStock,
    /// The coupon code is unknown, expired, inactive or does not fit this cart.
    CouponInvalid,
    /// The coupon has no uses left, globally or for this customer.
    CouponExhausted,
    /// The order cannot move from its current status to the requested one.
    InvalidTransition,
    /// Checkout with an empty cart.
    CartEmpty,
    /// The cart holds a prescription medicine and the customer has no approved prescription.
    PrescriptionRequired,
    /// The offer being answered has lapsed; the job went on to another unit.
    OfferExpired,
    /// The offer was already answered, withdrawn, or the job was given to another unit.
    OfferTaken,
    /// The unit is not available (on another job, off duty, or claimed first by someone else).
    UnitUnavailable,
    /// A unit with this call sign exists.
    CallSignTaken,
    /// A coupon with this code exists.
    CouponCodeTaken,
    /// A crew member named is not a paramedic, or already crews another unit.
    CrewUnavailable,
    /// A donor whose blood group cannot give the requested component to this patient.
    IncompatibleDonor,
    /// A donor who may not give now: unavailable, donated within 90 days, or no donor profile.
    DonorNotEligible,
    /// This donor already pledged to this blood request.
    AlreadyPledged,
    /// The blood request no longer takes this action (covered, cancelled or expired).
    RequestClosed,
    /// A Razorpay signature (checkout or webhook) does not match; nothing was changed.
    SignatureInvalid,
    /// The order is paid already (by this or another payment).
    AlreadyPaid,
    /// The order cannot be paid online: not pending, cash on delivery, or its payment is flagged.
    PaymentNotApplicable,
    /// The order has no invoice: it is not confirmed yet (awaiting payment) or was cancelled.
    InvoiceNotAvailable,
    /// The payment provider failed or could not be reached; retry later.
    PaymentProviderFailed,
    /// The doctor slot is held by someone else, booked, blocked or past, or the caller's hold lapsed.
    SlotUnavailable,
    /// No home-care partner can take the visit in that window: `details.reason` is `no_partner_nearby`
    /// (nobody offering the service covers the address then) or `window_full` (all are booked up).
    NoPartnerAvailable,
    /// The delivery code the rider entered is wrong; `details.attempts_left` says how many tries remain.
    DeliveryCodeInvalid,
    /// Too many wrong delivery codes: the order can no longer be confirmed by code; staff must step in.
    DeliveryCodeLocked,
    /// The body exceeds the route's limit.
    PayloadTooLarge,
    /// The body did not arrive within `server.body_read_timeout_secs`.
    RequestTimeout,
    /// The body's content type is not one the route takes.
    UnsupportedMediaType,
    /// Too many requests; `Retry-After` says when to come back.
    RateLimited,
    /// A dependency (database, Redis) is down.
    ServiceUnavailable,
    /// A bug or an unexpected failure; details are in the log under the request id.
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::ValidationFailed | Self::MalformedJson | Self::SignatureInvalid => StatusCode::BAD_REQUEST,
            Self::Unauthorized
            | Self::InvalidCredentials
            | Self::OtpInvalid
            | Self::ShareLinkInvalid
            | Self::ShareLinkExpired => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::EmailTaken
            | Self::PhoneTaken
            | Self::IdempotencyInFlight
            | Self::Conflict
            | Self::OutOfStock
            | Self::CouponExhausted
            | Self::InvalidTransition
            | Self::OfferExpired
            | Self::OfferTaken
            | Self::UnitUnavailable
            | Self::CallSignTaken
            | Self::CouponCodeTaken
            | Self::AlreadyPledged
            | Self::RequestClosed
            | Self::AlreadyPaid
            | Self::InvoiceNotAvailable
            | Self::SlotUnavailable
            | Self::NoPartnerAvailable => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused
            | Self::CouponInvalid
            | Self::CartEmpty
            | Self::PrescriptionRequired
            | Self::CrewUnavailable
            | Self::IncompatibleDonor
            | Self::DonorNotEligible
            | Self::PaymentNotApplicable
            | Self::DeliveryCodeInvalid => StatusCode::UNPROCESSABLE_ENTITY,
            Self::DeliveryCodeLocked => StatusCode::LOCKED,
            Self::PaymentProviderFailed => StatusCode::BAD_GATEWAY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// All codes, for documentation and the test that every code is produced somewhere.
    pub const ALL: &'static [ErrorCode] = &[
        Self::ValidationFailed,
        Self::MalformedJson,
        Self::Unauthorized,
        Self::InvalidCredentials,
        Self::OtpInvalid,
        Self::ShareLinkInvalid,
        Self::ShareLinkExpired,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::EmailTaken,
        Self::PhoneTaken,
        Self::IdempotencyKeyReused,
        Self::IdempotencyInFlight,
        Self::Conflict,
        Self::OutOfStock,
        Self::CouponInvalid,
        Self::CouponExhausted,
        Self::InvalidTransition,
        Self::CartEmpty,
        Self::PrescriptionRequired,
        Self::OfferExpired,
        Self::OfferTaken,
        Self::UnitUnavailable,
        Self::CallSignTaken,
        Self::CouponCodeTaken,
        Self::CrewUnavailable,
        Self::IncompatibleDonor,
        Self::DonorNotEligible,
        Self::AlreadyPledged,
        Self::RequestClosed,
        Self::SignatureInvalid,
        Self::AlreadyPaid,
        Self::PaymentNotApplicable,
        Self::PaymentProviderFailed,
        Self::SlotUnavailable,
        Self::NoPartnerAvailable,
        Self::DeliveryCodeInvalid,
        Self::DeliveryCodeLocked,
        Self::PayloadTooLarge,
        Self::RequestTimeout,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::Internal,
    ];
}

/// An error answered to a client.
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
    /// The underlying cause, logged, never sent.
    pub cause: Option<anyhow::Error>,
}

/// The body shape of every error: `{"error": {...}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorPayload,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            cause: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A 400 naming one invalid field.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::new(ErrorCode::ValidationFailed, format!("{field}: {problem}"))
            .with_details(serde_json::json!({ field: problem }))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "your role may not do this")
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// An unexpected failure: the client sees a generic message, the log gets the cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            ErrorCode::Internal,
            "internal error; quote the x-request-id header",
        );
        error.cause = Some(cause.into());
        error
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            ErrorCode::ServiceUnavailable,
            "a backing service is unavailable; retry",
        );
        error.cause = Some(cause.into());
        error.with_retry_after(1)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorPayload {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            if self.code == ErrorCode::Internal {
                tracing::error!(code = ?self.code, cause = format!("{cause:#}"), "request failed");
            } else {
                tracing::warn!(code = ?self.code, cause = format!("{cause:#}"), "request failed");
            }
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.json(self.body())
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        match error {
            crate::db::DbError::Unavailable(cause) => Self::unavailable(cause),
            crate::db::DbError::Query(error) if crate::db::is_unavailable(&error) => Self::unavailable(error),
            other => Self::internal(other),
        }
    }
}

impl From<crate::auth::password::PasswordError> for ApiError {
    fn from(error: crate::auth::password::PasswordError) -> Self {
        use crate::auth::password::PasswordError;
        match error {
            PasswordError::Busy => Self::new(
                ErrorCode::ServiceUnavailable,
                "too many sign-ins at once; retry in a moment",
            )
            .with_retry_after(1),
            PasswordError::Failed(cause) => Self::internal(cause),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::not_found("resource"),
            other => Self::from(crate::db::DbError::from(other)),
        }
    }
}

/// Turns actix-web's JSON extractor failures into our codes (400 / 413 / 415), never a 500.
pub fn json_error_handler(
    error: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &error {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
        }
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send Content-Type: application/json",
        ),
        E::Deserialize(inner) if inner.is_data() => {
            ApiError::new(ErrorCode::ValidationFailed, inner.to_string())
                .with_details(serde_json::json!({ "body": inner.to_string() }))
        }
        E::Deserialize(inner) => ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {inner}")),
        E::Payload(inner) if crate::middleware::body_deadline::is_body_timeout(inner) => {
            ApiError::new(ErrorCode::RequestTimeout, inner.to_string())
        }
        other => ApiError::new(ErrorCode::MalformedJson, other.to_string()),
    };
    api.into()
}

/// Query-string failures (`?page=abc`) are validation errors.
pub fn query_error_handler(
    error: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::new(ErrorCode::ValidationFailed, error.to_string())
        .with_details(serde_json::json!({ "query": error.to_string() }))
        .into()
}

/// Path failures (`/addresses/abc`) are answered as "no such resource".
pub fn path_error_handler(
    error: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::new(ErrorCode::NotFound, format!("no such resource: {error}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_produced_somewhere() {
        let mut sources = String::new();
        let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    sources.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        for code in ErrorCode::ALL {
            let name = format!("ErrorCode::{code:?}");
            assert!(sources.contains(&name), "{name} is never used");
        }
    }

    #[test]
    fn codes_serialise_as_snake_case() {
        assert_eq!(
            serde_json::to_value(ErrorCode::IdempotencyKeyReused).unwrap(),
            "idempotency_key_reused"
        );
    }
}
