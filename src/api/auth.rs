//! `/auth`: registration, password login, OTP login by phone, and the current user.

use actix_web::{HttpResponse, get, post, web};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::Problems;
use crate::{
    auth::{AuthUser, password},
    db::{self, users},
    domain::{Email, Password, PersonName, Phone, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub created_at: chrono::NaiveDateTime,
}

impl TryFrom<users::User> for UserView {
    type Error = ApiError;

    fn try_from(user: users::User) -> Result<Self, ApiError> {
        let role =
            Role::parse(&user.role).ok_or_else(|| ApiError::internal(anyhow::anyhow!("bad role in row")))?;
        Ok(Self {
            id: user.id,
            name: user.name,
            email: user.email,
            phone: user.phone,
            role,
            created_at: user.created_at,
        })
    }
}

/// A session: the bearer token and who it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: UserView,
}

fn session(state: &AppState, user: users::User) -> Result<Session, ApiError> {
    let view = UserView::try_from(user)?;
    let token = state.jwt.issue(view.id, view.role).map_err(ApiError::internal)?;
    Ok(Session {
        token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_secs(),
        user: view,
    })
}

/// Registration. Any `role` in the body is ignored: every new account is a customer.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub password: String,
}

#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created, signed in", body = Session),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "email_taken / phone_taken", body = ErrorBody),
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Problems::default();
    let name = problems.check("name", PersonName::parse(&body.name));
    let email = problems.check("email", Email::parse(&body.email));
    let phone = match body.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(raw) => problems.check("phone", Phone::parse(raw)).map(Some),
        None => Some(None),
    };
    let password = problems.check("password", Password::parse(&body.password));
    problems.finish()?;
    let (Some(name), Some(email), Some(phone), Some(password)) = (name, email, phone, password) else {
        return Err(ApiError::internal(anyhow::anyhow!("validated fields missing")));
    };

    let hash = password::hash(password.expose().to_owned()).await?;
    let now = db::now();
    let name = name.into_inner();
    let new = users::NewUser {
        email: Some(email.as_str()),
        phone: phone.as_ref().map(Phone::as_str),
        name: &name,
        password_hash: Some(&hash),
        role: Role::Customer.as_str(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let user = users::insert(&mut conn, &new).await.map_err(|e| {
        if db::is_unique_violation(&e, "users", "email") {
            ApiError::new(ErrorCode::EmailTaken, "an account with this email already exists")
        } else if db::is_unique_violation(&e, "users", "phone") {
            ApiError::new(ErrorCode::PhoneTaken, "an account with this phone already exists")
        } else {
            e.into()
        }
    })?;
    drop(conn);
    tracing::info!(user_id = user.id, "account registered");
    Ok(HttpResponse::Created().json(session(&state, user)?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "invalid_credentials (unknown email and wrong password alike)", body = ErrorBody),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<web::Json<Session>, ApiError> {
    let body = body.into_inner();
    let user = match Email::parse(&body.email) {
        Ok(email) => {
            let mut conn = state.db.read().await?;
            users::find_by_email(&mut conn, email.as_str()).await?
        }
        Err(_) => None,
    };
    // The hash check runs whether or not the account exists, so both failures take the same time.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let matches = password::verify(body.password, stored).await?;
    match user {
        Some(user) if matches && user.is_active => Ok(web::Json(session(&state, user)?)),
        _ => Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "email or password is wrong",
        )),
    }
}

#[utoipa::path(
    tag = "auth",
    responses((status = 200, body = UserView), (status = 401, description = "unauthorized", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/auth/me")]
pub async fn me(state: web::Data<AppState>, auth: AuthUser) -> Result<web::Json<UserView>, ApiError> {
    let mut conn = state.db.read().await?;
    let user = users::find(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(web::Json(UserView::try_from(user)?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpRequest {
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSent {
    pub phone: String,
    pub expires_in: u64,
}

/// The stored form of a code: an HMAC under the server secret, so a database leak does not reveal codes.
fn code_hash(state: &AppState, phone: &str, code: &str) -> Result<String, ApiError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.jwt.otp_key()).map_err(ApiError::internal)?;
    mac.update(phone.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

#[utoipa::path(
    tag = "auth",
    request_body = OtpRequest,
    responses(
        (status = 202, description = "A code was sent", body = OtpSent),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited: too many codes for this phone", body = ErrorBody),
    )
)]
#[post("/auth/otp/request")]
pub async fn otp_request(
    state: web::Data<AppState>,
    body: web::Json<OtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let phone = Phone::parse(&body.phone).map_err(|problem| ApiError::field("phone", problem))?;
    let settings = &state.settings.auth;
    let now = db::now();
    let window = chrono::TimeDelta::seconds(settings.otp_request_window_secs as i64);
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let expires_at = now + chrono::TimeDelta::seconds(settings.otp_ttl_secs as i64);
    let mut conn = state.db.write().await?;
    let issued = db::otp::issue(
        &mut conn,
        phone.as_str(),
        &code_hash(&state, phone.as_str(), &code)?,
        now,
        expires_at,
        window,
        i32::try_from(settings.otp_max_requests).unwrap_or(i32::MAX),
    )
    .await?;
    if let db::otp::Issue::WindowFull { since } = issued {
        let wait = (since + window - now).num_seconds().max(1) as u64;
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many codes requested for this phone; wait",
        )
        .with_retry_after(wait));
    }
    drop(conn);
    let minutes = settings.otp_ttl_secs.div_ceil(60);
    let message =
        format!("{code} is your ONE MEDI login code. It expires in {minutes} minutes. Never share it.");
    state
        .sms
        .send(phone.as_str(), &message)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Accepted().json(OtpSent {
        phone: phone.into_inner(),
        expires_in: settings.otp_ttl_secs,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpVerify {
    pub phone: String,
    pub code: String,
}

#[utoipa::path(
    tag = "auth",
    request_body = OtpVerify,
    responses(
        (status = 200, description = "Signed in; a customer account is created for a new phone", body = Session),
        (status = 401, description = "otp_invalid: wrong, expired or used code", body = ErrorBody),
        (status = 429, description = "rate_limited: too many wrong guesses; request a new code", body = ErrorBody),
    )
)]
#[post("/auth/otp/verify")]
pub async fn otp_verify(
    state: web::Data<AppState>,
    body: web::Json<OtpVerify>,
) -> Result<web::Json<Session>, ApiError> {
    let phone = Phone::parse(&body.phone).map_err(|problem| ApiError::field("phone", problem))?;
    let invalid = || {
        ApiError::new(
            ErrorCode::OtpInvalid,
            "the code is wrong, expired or already used",
        )
    };
    let now = db::now();
    let mut conn = state.db.write().await?;
    let code = db::otp::latest_unused(&mut conn, phone.as_str())
        .await?
        .ok_or_else(invalid)?;
    if code.expires_at <= now {
        return Err(invalid());
    }
    if !db::otp::record_attempt(&mut conn, code.id, state.settings.auth.otp_max_attempts).await? {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many wrong codes; request a new one",
        ));
    }
    let expected = code_hash(&state, phone.as_str(), body.code.trim())?;
    if !bool::from(expected.as_bytes().ct_eq(code.code_hash.as_bytes())) {
        return Err(invalid());
    }
    if !db::otp::consume(&mut conn, code.id, now).await? {
        return Err(invalid());
    }
    let user = match users::find_by_phone(&mut conn, phone.as_str()).await? {
        Some(user) => user,
        None => {
            let new = users::NewUser {
                email: None,
                phone: Some(phone.as_str()),
                name: "ONE MEDI customer",
                password_hash: None,
                role: Role::Customer.as_str(),
                created_at: now,
                updated_at: now,
            };
            match users::insert(&mut conn, &new).await {
                Ok(user) => user,
                // Two verifications raced to create the account: use the one that won.
                Err(e) if db::is_unique_violation(&e, "users", "phone") => {
                    users::find_by_phone(&mut conn, phone.as_str())
                        .await?
                        .ok_or_else(|| ApiError::from(e))?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !user.is_active {
        return Err(ApiError::new(ErrorCode::Forbidden, "this account is disabled"));
    }
    Ok(web::Json(session(&state, user)?))
}
