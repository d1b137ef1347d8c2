//! `/insurance`: the plan catalog, purchases (pending until paid through `/payments` with
//! `insurance_purchase_id`), and the customer's policies, issued once when the payment is captured.
//! Purchases and policies are their owner's only: anyone else gets 404.

use actix_web::{HttpResponse, get, post, web};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems};
use crate::{
    auth::AuthUser,
    db::{
        insurance::{self, NewPurchase, PLAN_TYPES, Plan, Purchase, Terms},
        schema::users,
    },
    error::{ApiError, ErrorBody},
    on_conn,
    state::AppState,
};

/// The relations a member may have to the proposer.
const RELATIONS: [&str; 6] = ["self", "spouse", "child", "parent", "parent_in_law", "sibling"];
/// Oldest age a dependent child may be insured at under a family plan.
const MAX_CHILD_AGE: i32 = 25;
/// Most members one purchase may name, whatever the plan.
const MAX_MEMBERS: usize = 10;

#[derive(Debug, Deserialize, IntoParams)]
pub struct PlanQuery {
    /// One of `individual`, `family_floater`, `senior_citizen`, `critical_illness`, `top_up`.
    pub plan_type: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// A plan as customers compare them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub insurer: String,
    pub plan_type: String,
    pub description: Option<String>,
    /// Sum insured.
    pub cover_paise: i64,
    /// The premium for the whole term.
    pub premium_paise: i64,
    /// The policy term.
    pub tenure_months: i32,
    /// Days from the start before illness claims are covered (accidents are covered at once).
    pub initial_waiting_days: i32,
    /// Days from the start before pre-existing diseases are covered.
    pub pre_existing_waiting_days: i32,
    pub min_entry_age: i32,
    pub max_entry_age: i32,
    pub max_members: i32,
    pub features: Vec<String>,
}

impl From<Plan> for PlanView {
    fn from(plan: Plan) -> Self {
        Self {
            features: serde_json::from_str(&plan.features).unwrap_or_default(),
            id: plan.id,
            name: plan.name,
            slug: plan.slug,
            insurer: plan.insurer,
            plan_type: plan.plan_type,
            description: plan.description,
            cover_paise: plan.cover_paise,
            premium_paise: plan.premium_paise,
            tenure_months: plan.tenure_months,
            initial_waiting_days: plan.initial_waiting_days,
            pre_existing_waiting_days: plan.pre_existing_waiting_days,
            min_entry_age: plan.min_entry_age,
            max_entry_age: plan.max_entry_age,
            max_members: plan.max_members,
        }
    }
}

/// Active plans in catalog order.
#[utoipa::path(
    tag = "insurance",
    params(PlanQuery),
    responses((status = 200, body = Page<PlanView>), (status = 400, description = "validation_failed", body = ErrorBody))
)]
#[get("/insurance/plans")]
pub async fn list_plans(
    state: web::Data<AppState>,
    query: web::Query<PlanQuery>,
) -> Result<web::Json<Page<PlanView>>, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let plan_type = query.plan_type.as_deref().map(str::trim);
    if let Some(plan_type) = plan_type
        && !PLAN_TYPES.contains(&plan_type)
    {
        return Err(ApiError::field(
            "plan_type",
            format!("must be one of {}", PLAN_TYPES.join(", ")),
        ));
    }
    let mut conn = state.db.read().await?;
    let (rows, total) = insurance::list_plans(&mut conn, plan_type, page.limit(), page.offset()).await?;
    Ok(web::Json(
        page.wrap(rows.into_iter().map(PlanView::from).collect(), total),
    ))
}

/// One plan.
#[utoipa::path(
    tag = "insurance",
    params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = PlanView), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/insurance/plans/{id}")]
pub async fn get_plan(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<PlanView>, ApiError> {
    let mut conn = state.db.read().await?;
    let plan = insurance::find_plan(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("insurance plan"))?;
    Ok(web::Json(plan.into()))
}

/// A person to insure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    pub name: String,
    /// `self`, `spouse`, `child`, `parent`, `parent_in_law` or `sibling`.
    pub relation: String,
    /// Age in completed years.
    pub age: i32,
    /// `female`, `male` or `other`.
    pub gender: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    pub plan_id: i64,
    /// Who buys the policy; defaults to the account's name.
    pub proposer_name: Option<String>,
    /// The insured members: at least one, at most the plan's `max_members`.
    pub members: Vec<MemberBody>,
}

/// A purchase; once paid it is a policy (`status` `active`, with its number and dates).
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseView {
    pub id: i64,
    pub plan_id: i64,
    pub plan_name: String,
    pub insurer: String,
    /// `pending_payment` until the premium is paid, then `active`.
    pub status: String,
    pub policy_number: Option<String>,
    pub proposer_name: String,
    pub members: Vec<MemberBody>,
    pub cover_paise: i64,
    /// What to pay (create a payment with `insurance_purchase_id`).
    pub premium_paise: i64,
    pub tenure_months: i32,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    /// First day illness claims are covered (after the initial waiting period).
    pub illness_covered_from: Option<NaiveDate>,
    /// First day pre-existing diseases are covered.
    pub pre_existing_covered_from: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl PurchaseView {
    fn new(row: Purchase, terms: Terms) -> Self {
        let (illness, pre_existing) = match row.starts_on {
            Some(starts) => insurance::covered_from(starts, &terms),
            None => (None, None),
        };
        Self {
            id: row.id,
            plan_id: row.plan_id,
            plan_name: terms.plan_name,
            insurer: terms.insurer,
            status: row.status,
            policy_number: row.policy_number,
            proposer_name: row.proposer_name,
            members: serde_json::from_str(&row.insured_members).unwrap_or_default(),
            cover_paise: row.cover_paise,
            premium_paise: row.premium_paise,
            tenure_months: terms.tenure_months,
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            illness_covered_from: illness,
            pre_existing_covered_from: pre_existing,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Checks the members against the plan; returns them trimmed.
fn check_members(p: &mut Problems, plan: &Plan, members: &[MemberBody]) -> Vec<MemberBody> {
    let max = usize::try_from(plan.max_members).unwrap_or(1).min(MAX_MEMBERS);
    if members.is_empty() || members.len() > max {
        p.add("members", format!("between 1 and {max} members for this plan"));
        return Vec::new();
    }
    let family = plan.plan_type == "family_floater";
    let mut checked = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let field = |name: &str| format!("members[{i}].{name}");
        let name = p.text(&field("name"), &member.name, 100);
        let relation = member.relation.trim();
        if !RELATIONS.contains(&relation) {
            p.add(
                &field("relation"),
                format!("must be one of {}", RELATIONS.join(", ")),
            );
        }
        let child_of_family = family && relation == "child";
        let age_ok = if child_of_family {
            (0..=MAX_CHILD_AGE).contains(&member.age)
        } else {
            (plan.min_entry_age..=plan.max_entry_age).contains(&member.age)
        };
        if !age_ok {
            let range = if child_of_family {
                format!("0 to {MAX_CHILD_AGE} for a child")
            } else {
                format!("{} to {}", plan.min_entry_age, plan.max_entry_age)
            };
            p.add(&field("age"), format!("this plan insures ages {range}"));
        }
        let gender = member.gender.as_deref().map(str::trim);
        if gender.is_some_and(|g| !["female", "male", "other"].contains(&g)) {
            p.add(&field("gender"), "must be female, male or other");
        }
        if let Some(name) = name {
            checked.push(MemberBody {
                name,
                relation: relation.to_owned(),
                age: member.age,
                gender: gender.map(str::to_owned),
            });
        }
    }
    for unique in ["self", "spouse"] {
        if members.iter().filter(|m| m.relation.trim() == unique).count() > 1 {
            p.add("members", format!("at most one member may be `{unique}`"));
        }
    }
    checked
}

/// Starts buying a plan: a pending purchase with the plan's terms fixed; pay its premium through
/// `POST /payments/create-order` with `insurance_purchase_id`, and the policy is issued on payment.
#[utoipa::path(
    tag = "insurance",
    request_body = PurchaseBody,
    responses(
        (status = 201, body = PurchaseView, description = "pending_payment"),
        (status = 400, description = "validation_failed (plan, members, ages)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/insurance/purchases")]
pub async fn purchase(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<PurchaseBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.plan_id <= 0 {
        return Err(ApiError::field("plan_id", "must be a positive id"));
    }
    if body.members.len() > MAX_MEMBERS {
        return Err(ApiError::field(
            "members",
            format!("at most {MAX_MEMBERS} members"),
        ));
    }
    let mut conn = state.db.write().await?;
    let plan = insurance::find_plan(&mut conn, body.plan_id)
        .await?
        .ok_or_else(|| ApiError::field("plan_id", "no such plan"))?;
    let mut p = Problems::default();
    let members = check_members(&mut p, &plan, &body.members);
    let proposer = match body.proposer_name.as_deref() {
        Some(raw) => p.text("proposer_name", raw, 100),
        None => None,
    };
    p.finish()?;
    let proposer_name = match proposer {
        Some(name) => name,
        None => on_conn!(&mut conn, c => {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            users::table.find(auth.id.0).select(users::name).first::<String>(c).await
        })?,
    };
    let insured_members = serde_json::to_string(&members).map_err(ApiError::internal)?;
    let row = insurance::create_purchase(
        &mut conn,
        NewPurchase {
            user_id: auth.id.0,
            plan,
            proposer_name,
            insured_members,
        },
    )
    .await?;
    let terms = insurance::terms_of(&mut conn, row.id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("purchase {} has no terms", row.id)))?;
    Ok(HttpResponse::Created().json(PurchaseView::new(row, terms)))
}

/// The caller's purchase with `id` (any other caller gets 404), and its terms.
async fn own_purchase(
    state: &AppState,
    auth: &AuthUser,
    id: i64,
    what: &str,
) -> Result<PurchaseView, ApiError> {
    let mut conn = state.db.read().await?;
    let row = insurance::find_purchase(&mut conn, id)
        .await?
        .filter(|row| row.user_id == auth.id.0)
        .ok_or_else(|| ApiError::not_found(what))?;
    let terms = insurance::terms_of(&mut conn, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found(what))?;
    Ok(PurchaseView::new(row, terms))
}

/// One of the caller's purchases, paid or not.
#[utoipa::path(
    tag = "insurance",
    params(("id" = i64, Path, description = "Purchase id")),
    responses((status = 200, body = PurchaseView), (status = 404, description = "not_found (also someone else's)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/insurance/purchases/{id}")]
pub async fn get_purchase(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<PurchaseView>, ApiError> {
    Ok(web::Json(
        own_purchase(&state, &auth, *id, "insurance purchase").await?,
    ))
}

/// The caller's issued policies, newest first.
#[utoipa::path(
    tag = "insurance",
    params(PageQuery),
    responses((status = 200, body = Page<PurchaseView>), (status = 400, description = "validation_failed", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/insurance/policies")]
pub async fn list_policies(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<PurchaseView>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = insurance::list_policies(&mut conn, auth.id.0, page.limit(), page.offset()).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(terms) = insurance::terms_of(&mut conn, row.id).await? {
            views.push(PurchaseView::new(row, terms));
        }
    }
    Ok(web::Json(page.wrap(views, total)))
}

/// One of the caller's issued policies (a purchase not yet paid is not a policy: 404).
#[utoipa::path(
    tag = "insurance",
    params(("id" = i64, Path, description = "Policy id (the purchase id)")),
    responses((status = 200, body = PurchaseView), (status = 404, description = "not_found (also someone else's, or unpaid)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/insurance/policies/{id}")]
pub async fn get_policy(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<PurchaseView>, ApiError> {
    let view = own_purchase(&state, &auth, *id, "insurance policy").await?;
    if view.policy_number.is_none() {
        return Err(ApiError::not_found("insurance policy"));
    }
    Ok(web::Json(view))
}
