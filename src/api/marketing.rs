//! Marketing: homepage banners and offers (public reads of what is live now, staff CRUD), campaigns sent
//! to a segment of users (staff; bounded and rate-limited), and each user's notifications inbox, whose
//! new entries are pushed live on `user:{id}`.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, audit_entry};
use crate::{
    auth::{AuthUser, Authorized, extract::StaffOnly},
    bus::Event,
    db::{
        audit,
        marketing::{self, Banner, BannerChange, Campaign, Notification, Offer, OfferChange},
    },
    domain::Role,
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

const PLACEMENTS: [&str; 7] = [
    "home_hero",
    "home_strip",
    "medicines",
    "lab_tests",
    "doctors",
    "services",
    "insurance",
];
const APPLIES_TO: [&str; 6] = [
    "all",
    "medicines",
    "lab_tests",
    "appointments",
    "services",
    "insurance",
];
/// Live banners or offers answered at most.
const MAX_LIVE: i64 = 50;
/// Users one campaign reaches at most (the lowest ids of the segment).
pub const MAX_CAMPAIGN_AUDIENCE: i64 = 5_000;
/// Campaign sends per staff member per minute.
pub const CAMPAIGN_SENDS_PER_MINUTE: u32 = 3;
const MAX_URL: usize = 500;

/// An image or link: a path on this site (`/…`) or an `https://` address.
fn check_url(p: &mut Problems, field: &str, raw: &str) -> Option<String> {
    let url = raw.trim();
    let ok = url.len() <= MAX_URL
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
        && ((url.starts_with('/') && !url.starts_with("//")) || url.starts_with("https://"));
    if ok {
        Some(url.to_owned())
    } else {
        p.add(
            field,
            format!("a path starting with / or an https:// address, at most {MAX_URL} characters"),
        );
        None
    }
}

fn optional_text(p: &mut Problems, field: &str, raw: Option<&str>, max: usize) -> Option<String> {
    raw.map(str::trim)
        .filter(|t| !t.is_empty())
        .and_then(|t| p.text(field, t, max))
}

fn check_window(p: &mut Problems, starts_at: Option<NaiveDateTime>, ends_at: Option<NaiveDateTime>) {
    if let (Some(start), Some(end)) = (starts_at, ends_at)
        && end <= start
    {
        p.add("ends_at", "must be after starts_at");
    }
}

// -------------------------------------------------------------------------------------------- banners

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerBody {
    pub title: String,
    pub subtitle: Option<String>,
    pub image_url: String,
    pub link_url: Option<String>,
    /// `home_hero` (default), `home_strip`, `medicines`, `lab_tests`, `doctors`, `services`, `insurance`.
    pub placement: Option<String>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    #[serde(default)]
    pub sort_order: i32,
    pub is_active: Option<bool>,
}

fn banner_change(body: &BannerBody) -> Result<BannerChange, ApiError> {
    let mut p = Problems::default();
    let title = p.text("title", &body.title, 120);
    let subtitle = optional_text(&mut p, "subtitle", body.subtitle.as_deref(), 200);
    let image_url = check_url(&mut p, "image_url", &body.image_url);
    let link_url = body
        .link_url
        .as_deref()
        .and_then(|l| check_url(&mut p, "link_url", l));
    let placement = body.placement.clone().unwrap_or_else(|| "home_hero".to_owned());
    if !PLACEMENTS.contains(&placement.as_str()) {
        p.add("placement", PLACEMENTS.join(", "));
    }
    if !(-1000..=1000).contains(&body.sort_order) {
        p.add("sort_order", "between -1000 and 1000");
    }
    check_window(&mut p, body.starts_at, body.ends_at);
    p.finish()?;
    Ok(BannerChange {
        title: title.unwrap_or_default(),
        subtitle,
        image_url: image_url.unwrap_or_default(),
        link_url,
        placement,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        sort_order: body.sort_order,
        is_active: body.is_active.unwrap_or(true),
        updated_at: crate::db::now(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BannerQuery {
    /// Only this placement.
    pub placement: Option<String>,
}

/// The banners live now (active, inside their window), in display order.
#[utoipa::path(
    tag = "marketing",
    params(BannerQuery),
    responses((status = 200, body = Vec<Banner>), (status = 400, description = "validation_failed", body = ErrorBody)),
)]
#[get("/banners")]
pub async fn live_banners(
    state: web::Data<AppState>,
    query: web::Query<BannerQuery>,
) -> Result<web::Json<Vec<Banner>>, ApiError> {
    if let Some(placement) = &query.placement
        && !PLACEMENTS.contains(&placement.as_str())
    {
        return Err(ApiError::field("placement", PLACEMENTS.join(", ")));
    }
    let mut conn = state.db.read().await?;
    let rows =
        marketing::live_banners(&mut conn, query.placement.as_deref(), crate::db::now(), MAX_LIVE).await?;
    Ok(web::Json(rows))
}

/// Every banner, newest first.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<Banner>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/banners")]
pub async fn list_banners(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Banner>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = marketing::all_banners(&mut conn, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

#[utoipa::path(
    tag = "admin",
    request_body = BannerBody,
    responses(
        (status = 201, body = Banner),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/banners")]
pub async fn create_banner(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    body: web::Json<BannerBody>,
) -> Result<HttpResponse, ApiError> {
    let change = banner_change(&body)?;
    let mut conn = state.db.write().await?;
    let banner = marketing::insert_banner(&mut conn, &change).await?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "banner.created",
        ("banner", Some(banner.id.to_string())),
    );
    audit::record(
        &mut conn,
        &entry,
        &serde_json::json!({"title": banner.title, "placement": banner.placement}),
    )
    .await?;
    Ok(HttpResponse::Created().json(banner))
}

#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Banner id")),
    request_body = BannerBody,
    responses(
        (status = 200, body = Banner),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/banners/{id}")]
pub async fn update_banner(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<BannerBody>,
) -> Result<web::Json<Banner>, ApiError> {
    let change = banner_change(&body)?;
    let mut conn = state.db.write().await?;
    let banner = marketing::update_banner(&mut conn, *id, &change)
        .await?
        .ok_or_else(|| ApiError::not_found("banner"))?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "banner.updated",
        ("banner", Some(banner.id.to_string())),
    );
    audit::record(
        &mut conn,
        &entry,
        &serde_json::json!({"is_active": banner.is_active}),
    )
    .await?;
    Ok(web::Json(banner))
}

// --------------------------------------------------------------------------------------------- offers

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    pub title: String,
    pub description: String,
    pub image_url: Option<String>,
    pub badge: Option<String>,
    /// `all` (default), `medicines`, `lab_tests`, `appointments`, `services`, `insurance`.
    pub applies_to: Option<String>,
    /// A coupon the offer advertises.
    pub coupon_id: Option<i64>,
    pub terms: Option<String>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    #[serde(default)]
    pub sort_order: i32,
    pub is_active: Option<bool>,
}

async fn offer_change(state: &AppState, body: &OfferBody) -> Result<OfferChange, ApiError> {
    let mut p = Problems::default();
    let title = p.text("title", &body.title, 120);
    let description = p.text("description", &body.description, 1000);
    let image_url = body
        .image_url
        .as_deref()
        .and_then(|u| check_url(&mut p, "image_url", u));
    let badge = optional_text(&mut p, "badge", body.badge.as_deref(), 24);
    let terms = optional_text(&mut p, "terms", body.terms.as_deref(), 2000);
    let applies_to = body.applies_to.clone().unwrap_or_else(|| "all".to_owned());
    if !APPLIES_TO.contains(&applies_to.as_str()) {
        p.add("applies_to", APPLIES_TO.join(", "));
    }
    if !(-1000..=1000).contains(&body.sort_order) {
        p.add("sort_order", "between -1000 and 1000");
    }
    check_window(&mut p, body.starts_at, body.ends_at);
    if let Some(coupon_id) = body.coupon_id {
        let mut conn = state.db.read().await?;
        if crate::db::coupons::find(&mut conn, coupon_id).await?.is_none() {
            p.add("coupon_id", "no such coupon");
        }
    }
    p.finish()?;
    Ok(OfferChange {
        title: title.unwrap_or_default(),
        description: description.unwrap_or_default(),
        image_url,
        badge,
        applies_to,
        coupon_id: body.coupon_id,
        terms,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        sort_order: body.sort_order,
        is_active: body.is_active.unwrap_or(true),
        updated_at: crate::db::now(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OfferQuery {
    /// Offers for this service (and those for `all`).
    pub applies_to: Option<String>,
}

/// The offers live now (active, inside their window), in display order.
#[utoipa::path(
    tag = "marketing",
    params(OfferQuery),
    responses((status = 200, body = Vec<Offer>), (status = 400, description = "validation_failed", body = ErrorBody)),
)]
#[get("/offers")]
pub async fn live_offers(
    state: web::Data<AppState>,
    query: web::Query<OfferQuery>,
) -> Result<web::Json<Vec<Offer>>, ApiError> {
    if let Some(applies_to) = &query.applies_to
        && !APPLIES_TO.contains(&applies_to.as_str())
    {
        return Err(ApiError::field("applies_to", APPLIES_TO.join(", ")));
    }
    let mut conn = state.db.read().await?;
    let rows =
        marketing::live_offers(&mut conn, query.applies_to.as_deref(), crate::db::now(), MAX_LIVE).await?;
    Ok(web::Json(rows))
}

/// Every offer, newest first.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<Offer>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/offers")]
pub async fn list_offers(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Offer>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = marketing::all_offers(&mut conn, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

#[utoipa::path(
    tag = "admin",
    request_body = OfferBody,
    responses(
        (status = 201, body = Offer),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/offers")]
pub async fn create_offer(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    body: web::Json<OfferBody>,
) -> Result<HttpResponse, ApiError> {
    let change = offer_change(&state, &body).await?;
    let mut conn = state.db.write().await?;
    let offer = marketing::insert_offer(&mut conn, &change).await?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "offer.created",
        ("offer", Some(offer.id.to_string())),
    );
    audit::record(&mut conn, &entry, &serde_json::json!({"title": offer.title})).await?;
    Ok(HttpResponse::Created().json(offer))
}

#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Offer id")),
    request_body = OfferBody,
    responses(
        (status = 200, body = Offer),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/offers/{id}")]
pub async fn update_offer(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<OfferBody>,
) -> Result<web::Json<Offer>, ApiError> {
    let change = offer_change(&state, &body).await?;
    let mut conn = state.db.write().await?;
    let offer = marketing::update_offer(&mut conn, *id, &change)
        .await?
        .ok_or_else(|| ApiError::not_found("offer"))?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "offer.updated",
        ("offer", Some(offer.id.to_string())),
    );
    audit::record(
        &mut conn,
        &entry,
        &serde_json::json!({"is_active": offer.is_active}),
    )
    .await?;
    Ok(web::Json(offer))
}

// ------------------------------------------------------------------------------------------ campaigns

/// Who a campaign reaches; empty lists mean everyone.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Roles (`customer`, `doctor`, …), at most 9.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Cities of the users' saved addresses, at most 20.
    #[serde(default)]
    pub cities: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    pub name: String,
    /// `in_app` (the default and the only channel today: the notifications inbox, pushed live).
    pub channel: Option<String>,
    #[serde(default)]
    pub audience: Audience,
    pub title: String,
    pub body: String,
}

/// Creates a draft campaign (sent later with `…/send`).
#[utoipa::path(
    tag = "admin",
    request_body = CampaignBody,
    responses(
        (status = 201, body = Campaign),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/campaigns")]
pub async fn create_campaign(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    body: web::Json<CampaignBody>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let name = p.text("name", &body.name, 120);
    let title = p.text("title", &body.title, 120);
    let text = p.text("body", &body.body, 1000);
    if body.channel.as_deref().is_some_and(|c| c != "in_app") {
        p.add("channel", "in_app");
    }
    if body.audience.roles.len() > Role::ALL.len()
        || body.audience.roles.iter().any(|r| Role::parse(r).is_none())
    {
        p.add("audience.roles", "known roles, at most 9");
    }
    if body.audience.cities.len() > 20
        || body
            .audience
            .cities
            .iter()
            .any(|c| c.trim().is_empty() || c.chars().count() > 60)
    {
        p.add("audience.cities", "at most 20 city names of 1 to 60 characters");
    }
    p.finish()?;
    let audience =
        serde_json::to_string(&body.audience).map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
    let mut conn = state.db.write().await?;
    let campaign = marketing::insert_campaign(
        &mut conn,
        &name.unwrap_or_default(),
        &audience,
        &title.unwrap_or_default(),
        &text.unwrap_or_default(),
        staff.id.0,
    )
    .await?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "campaign.created",
        ("campaign", Some(campaign.id.to_string())),
    );
    audit::record(
        &mut conn,
        &entry,
        &serde_json::json!({"name": campaign.name, "audience": body.audience}),
    )
    .await?;
    Ok(HttpResponse::Created().json(campaign))
}

/// Every campaign, newest first.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<Campaign>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/campaigns")]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Campaign>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = marketing::list_campaigns(&mut conn, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// Sends a draft campaign to its audience (at most 5000 users) once, in one transaction, then pushes
/// each notification live. At most 3 sends per staff member per minute.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, body = Campaign),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (sent already)", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/campaigns/{id}/send")]
pub async fn send_campaign(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<web::Json<Campaign>, ApiError> {
    let decision = state
        .limiter
        .hit(
            &format!("campaign-send:{}", staff.id.0),
            CAMPAIGN_SENDS_PER_MINUTE,
        )
        .await
        .map_err(ApiError::internal)?;
    if !decision.allowed {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "at most {CAMPAIGN_SENDS_PER_MINUTE} campaign sends a minute; retry in {} s",
                decision.reset_secs
            ),
        )
        .with_retry_after(decision.reset_secs));
    }
    let mut conn = state.db.write().await?;
    let draft = marketing::find_campaign(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let audience: Audience = serde_json::from_str(&draft.audience).unwrap_or_default();
    let (campaign, written) = marketing::send_campaign(
        &mut conn,
        draft.id,
        &audience.roles,
        &audience.cities,
        MAX_CAMPAIGN_AUDIENCE,
    )
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::InvalidTransition, "this campaign was sent already"))?;
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "campaign.sent",
        ("campaign", Some(campaign.id.to_string())),
    );
    audit::record(
        &mut conn,
        &entry,
        &serde_json::json!({"sent_count": campaign.sent_count}),
    )
    .await?;
    drop(conn);
    tracing::info!(
        campaign = campaign.id,
        sent = campaign.sent_count,
        "campaign sent"
    );
    for notification in &written {
        push(&state, notification).await;
    }
    Ok(web::Json(campaign))
}

// -------------------------------------------------------------------------------------------- inbox

/// Publishes a new notification on its user's topic, after commit.
pub async fn push(state: &AppState, notification: &Notification) {
    let event = Event::Notification {
        notification_id: notification.id,
        kind: notification.kind.clone(),
        title: notification.title.clone(),
        body: notification.body.clone(),
        data: serde_json::from_str(&notification.data).unwrap_or_default(),
        at: Utc::now(),
    };
    state
        .bus
        .publish_event(&[format!("user:{}", notification.user_id)], &event)
        .await;
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InboxQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// Only unread notifications.
    #[serde(default)]
    pub unread_only: bool,
}

/// One page of the caller's notifications with the unread count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    pub items: Vec<Notification>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
    pub unread: i64,
}

/// The caller's notifications, newest first.
#[utoipa::path(
    tag = "notifications",
    params(InboxQuery),
    responses((status = 200, body = Inbox), (status = 400, description = "validation_failed", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/notifications")]
pub async fn inbox(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<InboxQuery>,
) -> Result<web::Json<Inbox>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let mut conn = state.db.read().await?;
    let (items, total, unread) = marketing::inbox(
        &mut conn,
        auth.id.0,
        query.unread_only,
        page.limit(),
        page.offset(),
    )
    .await?;
    let page = page.wrap(items, total);
    Ok(web::Json(Inbox {
        items: page.items,
        page: page.page,
        per_page: page.per_page,
        total,
        unread,
    }))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 404, description = "not_found (not yours)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/notifications/{id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<Notification>, ApiError> {
    let mut conn = state.db.write().await?;
    let notification = marketing::mark_read(&mut conn, auth.id.0, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    Ok(web::Json(notification))
}

/// How many notifications `read-all` marked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    pub marked: usize,
}

/// Marks every unread notification of the caller read.
#[utoipa::path(
    tag = "notifications",
    responses((status = 200, body = MarkedRead)),
    security(("bearer" = []))
)]
#[post("/notifications/read-all")]
pub async fn mark_all_read(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<MarkedRead>, ApiError> {
    let mut conn = state.db.write().await?;
    let marked = marketing::mark_all_read(&mut conn, auth.id.0).await?;
    Ok(web::Json(MarkedRead { marked }))
}
