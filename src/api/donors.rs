//! `/users/donor-profile`: a user registers as a blood donor (group, last donation, location,
//! availability); blood requests alert eligible compatible donors near them.

use actix_web::{get, put, web};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Problems, blood_banks::parse_group};
use crate::{
    auth::AuthUser,
    db::donors::{self, DonorProfile, ProfileInput},
    domain::LatLng,
    error::{ApiError, ErrorBody},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonorProfileBody {
    #[schema(example = "O+")]
    pub blood_group: String,
    pub last_donation_date: Option<NaiveDate>,
    pub lat: f64,
    pub lng: f64,
    pub available: bool,
}

#[utoipa::path(
    tag = "users",
    responses((status = 200, body = DonorProfile), (status = 404, description = "not_found: no donor profile", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/users/donor-profile")]
pub async fn get_donor_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<DonorProfile>, ApiError> {
    let mut conn = state.db.read().await?;
    let profile = donors::find(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("donor profile"))?;
    Ok(web::Json(profile))
}

#[utoipa::path(
    tag = "users",
    request_body = DonorProfileBody,
    responses((status = 200, body = DonorProfile), (status = 400, description = "validation_failed", body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/users/donor-profile")]
pub async fn save_donor_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<DonorProfileBody>,
) -> Result<web::Json<DonorProfile>, ApiError> {
    let mut p = Problems::default();
    let group = parse_group(&mut p, "blood_group", &body.blood_group);
    let point = p.check("location", LatLng::parse(body.lat, body.lng));
    let today = crate::db::now().date();
    if let Some(day) = body.last_donation_date {
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
        if day > today || day < earliest {
            p.add("last_donation_date", "must be a past date");
        }
    }
    p.finish()?;
    let (Some(group), Some(point)) = (group, point) else {
        return Err(ApiError::field("body", "invalid"));
    };
    let input = ProfileInput {
        group,
        last_donation_date: body.last_donation_date,
        point,
        available: body.available,
    };
    let mut conn = state.db.write().await?;
    let profile = donors::save(&mut conn, auth.id.0, input).await?;
    Ok(web::Json(profile))
}
