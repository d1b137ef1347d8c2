//! `/users`: the caller's profile and addresses. Another user's address id answers 404, never 403.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageQuery, Problems, auth::UserView};
use crate::{
    auth::AuthUser,
    bus::Event,
    db::{
        self,
        addresses::{self, AddressFields},
        users,
    },
    domain::{LatLng, PersonName, Phone},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

#[utoipa::path(tag = "users", responses((status = 200, body = UserView)), security(("bearer" = [])))]
#[get("/users/profile")]
pub async fn get_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<UserView>, ApiError> {
    let mut conn = state.db.read().await?;
    let user = users::find(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(web::Json(UserView::try_from(user)?))
}

/// Fields a user may change on their own profile. Email and role are not among them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdateRequest {
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[utoipa::path(
    tag = "users",
    request_body = ProfileUpdateRequest,
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "validation_failed (including unknown fields such as role)", body = ErrorBody),
        (status = 409, description = "phone_taken", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/users/profile")]
pub async fn update_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<ProfileUpdateRequest>,
) -> Result<web::Json<UserView>, ApiError> {
    let mut problems = Problems::default();
    let name = body
        .name
        .as_deref()
        .and_then(|n| problems.check("name", PersonName::parse(n)));
    let phone = body
        .phone
        .as_deref()
        .and_then(|p| problems.check("phone", Phone::parse(p)));
    problems.finish()?;
    let update = users::ProfileUpdate {
        name: name.map(PersonName::into_inner),
        phone: phone.map(Phone::into_inner),
        updated_at: Some(db::now()),
    };
    let mut conn = state.db.write().await?;
    let user = users::update_profile(&mut conn, auth.id.0, &update)
        .await
        .map_err(|e| {
            if db::is_unique_violation(&e, "users", "phone") {
                ApiError::new(ErrorCode::PhoneTaken, "another account uses this phone")
            } else {
                e.into()
            }
        })?;
    drop(conn);
    let event = Event::ProfileUpdated {
        user_id: user.id,
        name: user.name.clone(),
        phone: user.phone.clone(),
        at: chrono::Utc::now(),
    };
    state
        .bus
        .publish_event(&[format!("user:{}", user.id)], &event)
        .await;
    Ok(web::Json(UserView::try_from(user)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    pub id: i64,
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub pincode: String,
    pub lat: f64,
    pub lng: f64,
    pub is_default: bool,
}

impl From<addresses::Address> for AddressView {
    fn from(a: addresses::Address) -> Self {
        Self {
            id: a.id,
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            pincode: a.pincode,
            lat: a.lat,
            lng: a.lng,
            is_default: a.is_default,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub pincode: String,
    pub lat: f64,
    pub lng: f64,
    #[serde(default)]
    pub is_default: bool,
}

impl AddressRequest {
    fn validate(&self) -> Result<AddressFields, ApiError> {
        let mut p = Problems::default();
        let label = p.text("label", &self.label, 40);
        let line1 = p.text("line1", &self.line1, 200);
        let line2 = match self.line2.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            Some(line) => p.text("line2", line, 200).map(Some),
            None => Some(None),
        };
        let city = p.text("city", &self.city, 80);
        let region = p.text("state", &self.state, 80);
        let pincode = self.pincode.trim();
        if !(pincode.len() == 6 && pincode.bytes().all(|b| b.is_ascii_digit()) && !pincode.starts_with('0')) {
            p.add("pincode", "must be a 6-digit PIN code");
        }
        let point = match LatLng::parse(self.lat, self.lng) {
            Ok(point) => Some(point),
            Err(problem) => {
                p.add(
                    if problem.starts_with("latitude") {
                        "lat"
                    } else {
                        "lng"
                    },
                    problem,
                );
                None
            }
        };
        p.finish()?;
        match (label, line1, line2, city, region, point) {
            (Some(label), Some(line1), Some(line2), Some(city), Some(state), Some(point)) => {
                Ok(AddressFields {
                    label,
                    line1,
                    line2,
                    city,
                    state,
                    pincode: pincode.to_owned(),
                    lat: point.lat(),
                    lng: point.lng(),
                    is_default: self.is_default,
                })
            }
            _ => Err(ApiError::internal(anyhow::anyhow!(
                "validated address fields missing"
            ))),
        }
    }
}

#[utoipa::path(
    tag = "users",
    params(PageQuery),
    responses((status = 200, body = Page<AddressView>)),
    security(("bearer" = []))
)]
#[get("/users/addresses")]
pub async fn list_addresses(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<AddressView>>, ApiError> {
    let page = query.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = addresses::list(&mut conn, auth.id.0, page.limit(), page.offset()).await?;
    Ok(web::Json(
        page.wrap(rows.into_iter().map(AddressView::from).collect(), total),
    ))
}

#[utoipa::path(
    tag = "users",
    request_body = AddressRequest,
    responses(
        (status = 201, body = AddressView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "validation_failed: address limit reached", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/users/addresses")]
pub async fn create_address(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<AddressRequest>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.validate()?;
    let mut conn = state.db.write().await?;
    match addresses::insert(&mut conn, auth.id.0, &fields).await? {
        Some(address) => Ok(HttpResponse::Created().json(AddressView::from(address))),
        None => Err(ApiError::field(
            "addresses",
            format!(
                "at most {} addresses; delete one first",
                addresses::MAX_ADDRESSES_PER_USER
            ),
        )),
    }
}

#[utoipa::path(
    tag = "users",
    request_body = AddressRequest,
    params(("id" = i64, Path, description = "Address id")),
    responses((status = 200, body = AddressView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/users/addresses/{id}")]
pub async fn update_address(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<AddressRequest>,
) -> Result<web::Json<AddressView>, ApiError> {
    let fields = body.validate()?;
    let mut conn = state.db.write().await?;
    let address = addresses::update_owned(&mut conn, auth.id.0, *id, &fields)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    Ok(web::Json(address.into()))
}

#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "Address id")),
    responses((status = 204), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/users/addresses/{id}")]
pub async fn delete_address(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.write().await?;
    if addresses::delete_owned(&mut conn, auth.id.0, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("address"))
    }
}
