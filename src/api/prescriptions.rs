//! Prescriptions: a customer uploads one (multipart; PDF, JPEG or PNG recognised by content, not by
//! name; at most 5 MiB), reads their own, and staff review them. A prescription-required medicine can
//! only be ordered with an approved prescription of that customer (checked at checkout).

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, get, http::header, post, put, web};
use chrono::NaiveDate;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, audit_entry};
use crate::{
    auth::{AuthUser, Authorized, extract::StaffOnly},
    db::{
        audit,
        prescriptions::{self, NewPrescription, Prescription, Review},
    },
    domain::Role,
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Largest prescription file.
pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;
/// Largest text field of the upload form.
const MAX_TEXT_BYTES: usize = 200;
/// Most parts an upload form may have.
const MAX_PARTS: usize = 5;

/// The file's real type from its first bytes: `(content type, extension)`.
pub fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(("image/png", "png"))
    } else {
        None
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "a prescription file is at most {} MiB",
            MAX_FILE_BYTES / 1024 / 1024
        ),
    )
}

/// Reads one part into memory, refusing it past `limit` bytes.
async fn read_part(field: &mut actix_multipart::Field, limit: usize) -> Result<Vec<u8>, ApiError> {
    let name = field.name().unwrap_or("field").to_owned();
    read_part_within(field, limit, || {
        if limit == MAX_FILE_BYTES {
            too_large()
        } else {
            ApiError::field(&name, "too long")
        }
    })
    .await
}

/// Reads one part into memory; past `limit` bytes it stops reading and answers `too_large()`.
pub async fn read_part_within(
    field: &mut actix_multipart::Field,
    limit: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| ApiError::field("file", format!("unreadable upload: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the multipart form for OpenAPI; parsed by hand"
)]
pub struct UploadForm {
    /// The prescription: PDF, JPEG or PNG, at most 5 MiB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    pub patient_name: Option<String>,
    pub doctor_name: Option<String>,
}

/// Uploads a prescription for review.
#[utoipa::path(
    tag = "prescriptions",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Prescription),
        (status = 400, description = "validation_failed (no file, bad field)", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type (not multipart, or not a PDF/JPEG/PNG by content)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/users/prescriptions")]
pub async fn upload(
    state: web::Data<AppState>,
    auth: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_form {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send multipart/form-data with a `file` part",
        ));
    }
    let mut form = Multipart::new(req.headers(), payload);
    let (mut file, mut filename, mut patient, mut doctor) = (None, None, None, None);
    let mut parts = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::field("file", format!("malformed form: {e}")))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::field("form", format!("at most {MAX_PARTS} parts")));
        }
        match field.name().unwrap_or_default() {
            "file" => {
                filename = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(|n| {
                        n.chars()
                            .filter(|c| !c.is_control())
                            .take(200)
                            .collect::<String>()
                    });
                file = Some(read_part(&mut field, MAX_FILE_BYTES).await?);
            }
            "patient_name" => patient = Some(read_part(&mut field, MAX_TEXT_BYTES).await?),
            "doctor_name" => doctor = Some(read_part(&mut field, MAX_TEXT_BYTES).await?),
            other => return Err(ApiError::field(other, "unknown part")),
        }
    }
    let mut p = Problems::default();
    let mut text = |field: &str, raw: Option<Vec<u8>>| -> Option<String> {
        let raw = String::from_utf8(raw?).ok();
        match raw {
            Some(raw) => p.text(field, &raw, 100),
            None => {
                p.add(field, "must be UTF-8 text");
                None
            }
        }
    };
    let patient = text("patient_name", patient);
    let doctor = text("doctor_name", doctor);
    let file = match file {
        Some(file) if !file.is_empty() => Some(file),
        _ => {
            p.add("file", "a non-empty file part is required");
            None
        }
    };
    p.finish()?;
    let Some(file) = file else {
        return Err(ApiError::internal(anyhow::anyhow!("validated file missing")));
    };
    let (content_type, extension) = sniff(&file).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the file is not a PDF, JPEG or PNG (its content is checked, not its name)",
        )
    })?;
    let sha256 = hex::encode(Sha256::digest(&file));
    let key = format!("prescriptions/{}/{sha256}.{extension}", auth.id.0);
    state.storage.put(&key, &file).await.map_err(ApiError::internal)?;
    let now = crate::db::now();
    let mut conn = state.db.write().await?;
    let row = prescriptions::insert(
        &mut conn,
        &NewPrescription {
            user_id: auth.id.0,
            file_path: &key,
            original_filename: filename.as_deref(),
            content_type,
            size_bytes: i64::try_from(file.len()).unwrap_or(i64::MAX),
            sha256: &sha256,
            patient_name: patient.as_deref(),
            doctor_name: doctor.as_deref(),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(row))
}

/// The caller's prescriptions, newest first.
#[utoipa::path(
    tag = "prescriptions",
    params(PageQuery),
    responses((status = 200, body = Page<Prescription>)),
    security(("bearer" = []))
)]
#[get("/users/prescriptions")]
pub async fn list_own(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Prescription>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) =
        prescriptions::list(&mut conn, Some(auth.id.0), None, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// The prescription's file: its owner, or staff (each staff read is audited).
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = i64, Path, description = "Prescription id")),
    responses(
        (status = 200, description = "the file, with its sniffed content type"),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/users/prescriptions/{id}/file")]
pub async fn download(
    state: web::Data<AppState>,
    auth: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.read().await?;
    let row = prescriptions::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("prescription"))?;
    drop(conn);
    let staff = matches!(auth.role, Role::Staff | Role::Admin);
    if row.user_id != auth.id.0 && !staff {
        return Err(ApiError::not_found("prescription"));
    }
    if row.user_id != auth.id.0 {
        let entry = audit_entry(
            &req,
            Some(auth.id.0),
            "prescription.file_read",
            ("prescription", Some(row.id.to_string())),
        );
        let mut conn = state.db.write().await?;
        audit::record(&mut conn, &entry, &serde_json::json!({"owner": row.user_id})).await?;
    }
    let bytes = state
        .storage
        .get(&row.file_path)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(row.content_type)
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReviewQueue {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// `pending` (default), `approved` or `rejected`.
    pub status: Option<String>,
}

/// Prescriptions awaiting (or past) review, newest first.
#[utoipa::path(
    tag = "prescriptions",
    params(ReviewQueue),
    responses((status = 200, body = Page<Prescription>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/prescriptions")]
pub async fn review_queue(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    query: web::Query<ReviewQueue>,
) -> Result<web::Json<Page<Prescription>>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let status = query.status.as_deref().unwrap_or("pending");
    if !["pending", "approved", "rejected"].contains(&status) {
        return Err(ApiError::field("status", "pending, approved or rejected"));
    }
    let mut conn = state.db.read().await?;
    let (rows, total) =
        prescriptions::list(&mut conn, None, Some(status), page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// A staff decision on a pending prescription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approved` or `rejected`.
    pub status: String,
    pub notes: Option<String>,
    /// Last day the prescription may be used (approved only).
    pub valid_until: Option<NaiveDate>,
}

/// Approves or rejects a pending prescription (once: a decided one answers 409).
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = i64, Path, description = "Prescription id")),
    request_body = ReviewBody,
    responses(
        (status = 200, body = Prescription),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (already decided)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/prescriptions/{id}/review")]
pub async fn review(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<ReviewBody>,
) -> Result<web::Json<Prescription>, ApiError> {
    let mut p = Problems::default();
    let status = match body.status.as_str() {
        "approved" => Some("approved"),
        "rejected" => Some("rejected"),
        _ => {
            p.add("status", "approved or rejected");
            None
        }
    };
    let notes = body.notes.as_deref().and_then(|n| p.text("notes", n, 500));
    let today = crate::db::now().date();
    if body.valid_until.is_some_and(|d| d < today) {
        p.add("valid_until", "must not be in the past");
    }
    if status == Some("rejected") && body.valid_until.is_some() {
        p.add("valid_until", "only an approved prescription has a validity");
    }
    p.finish()?;
    let Some(status) = status else {
        return Err(ApiError::internal(anyhow::anyhow!("validated status missing")));
    };
    let entry = audit_entry(
        &req,
        Some(staff.id.0),
        "prescription.reviewed",
        ("prescription", Some(id.to_string())),
    );
    let mut conn = state.db.write().await?;
    let decision = Review {
        status,
        notes: notes.as_deref(),
        valid_until: body.valid_until,
        reviewer: staff.id.0,
    };
    match prescriptions::review(&mut conn, *id, &decision, entry).await? {
        Some(row) => Ok(web::Json(row)),
        None => match prescriptions::find(&mut conn, *id).await? {
            None => Err(ApiError::not_found("prescription")),
            Some(row) => Err(ApiError::new(
                ErrorCode::InvalidTransition,
                format!("the prescription was already {}", row.status),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_recognised_by_their_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Some(("application/pdf", "pdf")));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(("image/jpeg", "jpg"))
        );
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]),
            Some(("image/png", "png"))
        );
        assert_eq!(sniff(b"MZ\x90\x00 a program named rx.pdf"), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b""), None);
    }
}
