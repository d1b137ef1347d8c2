//! Prescriptions: uploads recognised by content and bounded in size, read by their owner (and by staff,
//! audited), reviewed once by staff, and required at checkout for prescription medicines.

use onemedi::domain::Role;
use reqwest::{StatusCode, multipart};
use serde_json::json;

use crate::{
    helpers::{Reply, TestApp, into_reply, spawn_app},
    shop::{Customer, add_to_cart, customer, medicine, order_body, shop},
};

/// A small but real PDF header followed by filler.
fn pdf() -> Vec<u8> {
    pdf_bytes(2048)
}

/// A real PDF header followed by `filler` bytes of filler.
pub(crate) fn pdf_bytes(filler: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    bytes.extend(std::iter::repeat_n(b' ', filler));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> Reply {
    let form = multipart::Form::new()
        .part("file", multipart::Part::bytes(bytes).file_name(name.to_owned()))
        .text("patient_name", "Asha Rao")
        .text("doctor_name", "Dr. Menon");
    let response = app
        .client
        .post(app.url("/api/v1/users/prescriptions"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    into_reply(response).await
}

async fn own_total(app: &TestApp, who: &Customer) -> i64 {
    app.get("/api/v1/users/prescriptions", Some(&who.token))
        .await
        .body["total"]
        .as_i64()
        .unwrap()
}

#[actix_web::test]
async fn an_upload_is_checked_by_content_and_size_and_read_back_only_by_its_owner_and_staff() {
    let app = spawn_app().await;
    let asha = customer(&app).await;
    let ravi = customer(&app).await;

    let stored = upload(&app, &asha.token, "rx.pdf", pdf()).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.body);
    assert_eq!(stored.body["content_type"], "application/pdf");
    assert_eq!(stored.body["status"], "pending");
    assert_eq!(stored.body["patient_name"], "Asha Rao");
    assert!(
        stored.body.get("file_path").is_none(),
        "storage paths stay private"
    );
    let id = stored.body["id"].as_i64().unwrap();

    let disguised = upload(&app, &asha.token, "rx.pdf", b"MZ\x90\x00 not a document".to_vec()).await;
    assert_eq!(disguised.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(disguised.code(), "unsupported_media_type");
    let mut huge = pdf();
    huge.resize(onemedi::api::prescriptions::MAX_FILE_BYTES + 1, b' ');
    let oversized = upload(&app, &asha.token, "big.pdf", huge).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversized.code(), "payload_too_large");
    let json = app
        .post(
            "/api/v1/users/prescriptions",
            &json!({"file": "x"}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(own_total(&app, &asha).await, 1, "refused uploads wrote nothing");

    let path = format!("/api/v1/users/prescriptions/{id}/file");
    let own = app
        .client
        .get(app.url(&path))
        .bearer_auth(&asha.token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()["content-type"], "application/pdf");
    assert_eq!(own.bytes().await.unwrap().to_vec(), pdf());
    assert_eq!(app.get(&path, Some(&ravi.token)).await.code(), "not_found");
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let read = app
        .client
        .get(app.url(&path))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let log = app
        .get("/api/v1/admin/audit-log?subject_type=prescription", Some(&admin))
        .await;
    assert_eq!(log.body["items"][0]["action"], "prescription.file_read");
}

#[actix_web::test]
async fn staff_review_once_and_only_an_approved_prescription_unlocks_checkout() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let rx = medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Telma 40", "prescription_required": true, "stock": 5}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, rx, 1).await;
    let id = upload(&app, &asha.token, "scan.pdf", pdf()).await.body["id"]
        .as_i64()
        .unwrap();
    let blocked = app
        .post("/api/v1/orders", &order_body(&asha, None), Some(&asha.token))
        .await;
    assert_eq!(blocked.code(), "prescription_required", "pending is not enough");

    let queue = app.get("/api/v1/admin/prescriptions", Some(&staff)).await;
    assert_eq!(queue.body["items"][0]["id"], id);
    assert_eq!(
        app.get("/api/v1/admin/prescriptions", Some(&asha.token))
            .await
            .code(),
        "forbidden"
    );
    let review = format!("/api/v1/admin/prescriptions/{id}/review");
    let bad = app.put(&review, &json!({"status": "maybe"}), Some(&staff)).await;
    assert_eq!(bad.code(), "validation_failed");
    let approved = app
        .put(
            &review,
            &json!({"status": "approved", "notes": "valid, signed"}),
            Some(&staff),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    let again = app
        .put(&review, &json!({"status": "rejected"}), Some(&staff))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invalid_transition");

    let placed = app
        .post("/api/v1/orders", &order_body(&asha, None), Some(&asha.token))
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(placed.body["prescription_id"], id);
}
