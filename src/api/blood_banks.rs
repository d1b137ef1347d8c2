//! `/blood-banks`: public search with stock per group and component, and stock updates by the bank's
//! partner or staff (an audited upsert of the stock line).

use actix_web::{HttpRequest, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    Page, PageQuery, Problems, audit_entry,
    hospitals::{NearQuery, manages, nearest_page},
    parse_near, parse_radius,
};
use crate::{
    auth::AuthUser,
    db::blood_banks::{self, BloodBank, StockLine},
    domain::{
        LatLng,
        blood::{BloodGroup, Component},
    },
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// Largest stock count accepted for one line.
const MAX_UNITS: i32 = 100_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct BloodBankView {
    pub id: i64,
    pub name: String,
    pub hospital_id: Option<i64>,
    pub phone: Option<String>,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    pub open_24x7: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<i64>,
    /// Stock lines (only the asked group/component when filtered).
    pub stock: Vec<StockLine>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StockFilter {
    /// Only this group's stock (`A+` … `O-`), and only banks that have some available.
    pub blood_group: Option<String>,
    /// Only this component's stock (`whole_blood`, `red_cells`, `plasma`, `platelets`).
    pub component: Option<String>,
}

pub fn parse_group(p: &mut Problems, field: &str, raw: &str) -> Option<BloodGroup> {
    let group = BloodGroup::parse(raw.trim());
    if group.is_none() {
        p.add(field, "must be one of A+, A-, B+, B-, AB+, AB-, O+, O-");
    }
    group
}

pub fn parse_component(p: &mut Problems, field: &str, raw: &str) -> Option<Component> {
    let component = Component::parse(raw.trim());
    if component.is_none() {
        p.add(field, "must be one of whole_blood, red_cells, plasma, platelets");
    }
    component
}

#[utoipa::path(
    tag = "blood banks",
    params(NearQuery, StockFilter, PageQuery),
    responses((status = 200, body = Page<BloodBankView>), (status = 400, description = "validation_failed", body = ErrorBody))
)]
#[get("/blood-banks")]
pub async fn list_banks(
    state: web::Data<AppState>,
    near: web::Query<NearQuery>,
    filter: web::Query<StockFilter>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<BloodBankView>>, ApiError> {
    let mut p = Problems::default();
    let centre = parse_near(&mut p, near.near.as_deref());
    let radius_m = parse_radius(&mut p, near.radius_km);
    let group = filter
        .blood_group
        .as_deref()
        .and_then(|g| parse_group(&mut p, "blood_group", g));
    let component = filter
        .component
        .as_deref()
        .and_then(|c| parse_component(&mut p, "component", c));
    let page_req = page.validate();
    p.finish()?;
    let page = page_req?;
    let filtered = group.is_some() || component.is_some();

    let mut conn = state.db.read().await?;
    let banks = blood_banks::active(&mut conn, centre.map(|c| c.bounding_box(radius_m))).await?;
    let ids: Vec<i64> = banks.iter().map(|b| b.id).collect();
    let stock = blood_banks::stock_of(
        &mut conn,
        &ids,
        group.map(BloodGroup::as_str),
        component.map(Component::as_str),
    )
    .await?;
    drop(conn);
    let mut by_bank: std::collections::HashMap<i64, Vec<StockLine>> = std::collections::HashMap::new();
    for line in stock {
        by_bank.entry(line.blood_bank_id).or_default().push(line);
    }
    let rows: Vec<(f64, i64, (BloodBank, Vec<StockLine>))> = banks
        .into_iter()
        .filter_map(|bank| {
            let lines = by_bank.remove(&bank.id).unwrap_or_default();
            if filtered && !lines.iter().any(|l| l.units_available > 0) {
                return None;
            }
            let distance = match centre {
                Some(c) => {
                    let d = LatLng::parse(bank.lat, bank.lng).ok()?.distance_m(c);
                    if d > radius_m {
                        return None;
                    }
                    d
                }
                None => 0.0,
            };
            Some((distance, bank.id, (bank, lines)))
        })
        .collect();
    let (items, total) = nearest_page(rows, page);
    let items = items
        .into_iter()
        .map(|(d, (bank, stock))| BloodBankView {
            id: bank.id,
            name: bank.name,
            hospital_id: bank.hospital_id,
            phone: bank.phone,
            address: bank.address,
            lat: bank.lat,
            lng: bank.lng,
            open_24x7: bank.open_24x7,
            distance_m: centre.map(|_| d.round() as i64),
            stock,
        })
        .collect();
    Ok(web::Json(page.wrap(items, total)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockUpdate {
    #[schema(example = "O-")]
    pub blood_group: String,
    #[schema(example = "red_cells")]
    pub component: String,
    pub units_available: i32,
}

#[utoipa::path(
    tag = "blood banks",
    request_body = StockUpdate,
    params(("id" = i64, Path, description = "Blood bank id")),
    responses(
        (status = 200, body = StockLine),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden: not this bank's partner, staff or admin", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/blood-banks/{id}/stock")]
pub async fn set_stock(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<StockUpdate>,
) -> Result<web::Json<StockLine>, ApiError> {
    let mut p = Problems::default();
    let group = parse_group(&mut p, "blood_group", &body.blood_group);
    let component = parse_component(&mut p, "component", &body.component);
    if !(0..=MAX_UNITS).contains(&body.units_available) {
        p.add("units_available", format!("must be between 0 and {MAX_UNITS}"));
    }
    p.finish()?;
    let (Some(group), Some(component)) = (group, component) else {
        return Err(ApiError::field("body", "invalid"));
    };
    let id = id.into_inner();
    let mut conn = state.db.read().await?;
    let bank = blood_banks::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("blood bank"))?;
    drop(conn);
    if !manages(&auth, bank.partner_user_id) {
        return Err(ApiError::forbidden());
    }
    let audit = audit_entry(
        &req,
        Some(auth.id.0),
        "blood_stock.set",
        ("blood_bank", Some(id.to_string())),
    );
    let mut conn = state.db.write().await?;
    let line = blood_banks::set_stock(
        &mut conn,
        id,
        group.as_str(),
        component.as_str(),
        body.units_available,
        &audit,
    )
    .await?;
    tracing::info!(
        bank = id,
        user = auth.id.0,
        group = group.as_str(),
        "blood stock set"
    );
    Ok(web::Json(line))
}
