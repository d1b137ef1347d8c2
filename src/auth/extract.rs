//! Extractors for the authenticated user and for per-route role policies.

use std::{future::Future, marker::PhantomData, pin::Pin};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};

use crate::{
    db::users,
    domain::{Role, UserId},
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// The caller, authenticated by a bearer token whose user still exists and is active. The role is
/// read from the database, so a role change or deactivation takes effect on the next request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
}

impl AuthUser {
    pub fn has_role(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

async fn authenticate(req: HttpRequest) -> Result<AuthUser, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
    let token =
        bearer_token(&req).ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
    let claims = state.jwt.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "token rejected");
        ApiError::unauthorized("the token is invalid or expired")
    })?;
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
    Ok(AuthUser {
        id: UserId(user.id),
        role,
    })
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let cached = req.extensions().get::<AuthUser>().cloned();
        let req = req.clone();
        Box::pin(async move {
            if let Some(user) = cached {
                return Ok(user);
            }
            let user = authenticate(req.clone()).await?;
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}

/// Which roles may use a route.
pub trait Policy {
    const ROLES: &'static [Role];
}

/// An authenticated user whose role passes policy `P`; anyone else gets 403 `forbidden`.
#[derive(Debug)]
pub struct Authorized<P: Policy> {
    pub user: AuthUser,
    policy: PhantomData<P>,
}

impl<P: Policy> std::ops::Deref for Authorized<P> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.user
    }
}

impl<P: Policy + 'static> FromRequest for Authorized<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if !user.has_role(P::ROLES) {
                return Err(ApiError::new(ErrorCode::Forbidden, "your role may not do this"));
            }
            Ok(Self {
                user,
                policy: PhantomData,
            })
        })
    }
}

/// Administrators only.
#[derive(Debug)]
pub struct AdminOnly;
impl Policy for AdminOnly {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Back-office staff (catalog, orders, reviews) and administrators.
#[derive(Debug)]
pub struct StaffOnly;
impl Policy for StaffOnly {
    const ROLES: &'static [Role] = &[Role::Staff, Role::Admin];
}
