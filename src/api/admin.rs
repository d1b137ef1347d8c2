//! `/admin`: user administration and the audit log (administrators only).

use actix_web::{HttpRequest, get, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, audit_entry, auth::UserView};
use crate::{
    auth::{Authorized, extract::AdminOnly},
    db::{audit, users},
    domain::Role,
    error::{ApiError, ErrorBody},
    state::AppState,
};

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserFilter {
    /// Only users with this role.
    pub role: Option<Role>,
}

#[utoipa::path(
    tag = "admin",
    params(PageQuery, UserFilter),
    responses((status = 200, body = Page<UserView>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Authorized<AdminOnly>,
    page: web::Query<PageQuery>,
    filter: web::Query<UserFilter>,
) -> Result<web::Json<Page<UserView>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let role = filter.role.map(Role::as_str);
    let (rows, total) = users::list(&mut conn, role, page.limit(), page.offset()).await?;
    let items = rows
        .into_iter()
        .map(UserView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(web::Json(page.wrap(items, total)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
}

#[utoipa::path(
    tag = "admin",
    request_body = RoleChange,
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, body = UserView),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/users/{id}/role")]
pub async fn change_role(
    state: web::Data<AppState>,
    admin: Authorized<AdminOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<RoleChange>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = id.into_inner();
    if id == admin.id.0 && body.role != Role::Admin {
        return Err(ApiError::field(
            "role",
            "an administrator cannot demote themselves",
        ));
    }
    let audit = audit_entry(
        &req,
        Some(admin.id.0),
        "user.role_changed",
        ("user", Some(id.to_string())),
    );
    let mut conn = state.db.write().await?;
    let user = users::set_role_audited(&mut conn, id, body.role.as_str(), audit)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    tracing::info!(admin = admin.id.0, user = id, to = %body.role, "role changed");
    Ok(web::Json(UserView::try_from(user)?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditFilter {
    /// Only entries about this kind of record (`user`, `order`, `payment`, …).
    pub subject_type: Option<String>,
}

#[utoipa::path(
    tag = "admin",
    params(PageQuery, AuditFilter),
    responses((status = 200, body = Page<audit::AuditEntry>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    _admin: Authorized<AdminOnly>,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> Result<web::Json<Page<audit::AuditEntry>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = audit::list(
        &mut conn,
        filter.subject_type.as_deref(),
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(web::Json(page.wrap(rows, total)))
}
