//! Fixtures for the catalog, cart and order tests: a small catalog made through the admin API, and
//! customers created straight in the database (no password hashing) so races can use many of them.

use onemedi::{
    db::{self, addresses, coupons, users},
    domain::Role,
    on_conn,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A customer with a token and a default address.
pub struct Customer {
    pub token: String,
    pub id: i64,
    pub address_id: i64,
}

pub async fn category(app: &TestApp, staff: &str, name: &str) -> i64 {
    let reply = app
        .post(
            "/api/v1/admin/medicine-categories",
            &json!({"name": name}),
            Some(staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

pub async fn brand(app: &TestApp, staff: &str, name: &str) -> i64 {
    let reply = app
        .post(
            "/api/v1/admin/brands",
            &json!({"name": name, "manufacturer": "Acme Pharma"}),
            Some(staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

/// Creates a medicine; `overrides` replaces fields of a valid default.
pub async fn medicine(app: &TestApp, staff: &str, category_id: i64, overrides: Value) -> Value {
    let mut body = json!({
        "name": "Paracetamol 500",
        "salt_composition": "Paracetamol 500 mg",
        "category_id": category_id,
        "dosage_form": "tablet",
        "pack_size": "strip of 10",
        "price_paise": 3000,
        "mrp_paise": 3500,
        "stock": 100,
        "max_per_order": 10,
    });
    for (key, value) in overrides.as_object().unwrap() {
        body[key] = value.clone();
    }
    let reply = app.post("/api/v1/admin/medicines", &body, Some(staff)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

/// A staff token and one category, the start of most tests.
pub async fn shop(app: &TestApp) -> (String, i64) {
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let category_id = category(app, &staff, "Pain Relief").await;
    (staff, category_id)
}

/// A customer inserted directly with an address, and a token issued for them.
pub async fn customer(app: &TestApp) -> Customer {
    let now = db::now();
    let email = format!("c-{}@example.in", uuid::Uuid::new_v4().simple());
    let mut conn = app.app.db.write().await.unwrap();
    let user = users::insert(
        &mut conn,
        &users::NewUser {
            email: Some(&email),
            phone: None,
            name: "Asha Rao",
            password_hash: None,
            role: "customer",
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .unwrap();
    let address = addresses::insert(
        &mut conn,
        user.id,
        &addresses::AddressFields {
            label: "Home".into(),
            line1: "12 MG Road".into(),
            line2: None,
            city: "Bengaluru".into(),
            state: "Karnataka".into(),
            pincode: "560001".into(),
            lat: 12.9716,
            lng: 77.5946,
            is_default: true,
        },
    )
    .await
    .unwrap()
    .unwrap();
    drop(conn);
    Customer {
        token: app.app.jwt.issue(user.id, Role::Customer).unwrap(),
        id: user.id,
        address_id: address.id,
    }
}

pub async fn add_to_cart(app: &TestApp, customer: &Customer, medicine_id: i64, quantity: i64) {
    let reply = app
        .post(
            "/api/v1/cart/items",
            &json!({"medicine_id": medicine_id, "quantity": quantity}),
            Some(&customer.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

pub fn order_body(customer: &Customer, coupon: Option<&str>) -> Value {
    json!({"address_id": customer.address_id, "payment_method": "cod", "coupon_code": coupon})
}

/// Inserts a coupon straight into the database.
pub async fn coupon(
    app: &TestApp,
    code: &str,
    kind: &str,
    value: i64,
    global: Option<i32>,
    per_user: Option<i32>,
) {
    let now = db::now();
    let mut conn = app.app.db.write().await.unwrap();
    coupons::insert(
        &mut conn,
        &coupons::NewCoupon {
            code: code.into(),
            description: format!("{code} test coupon"),
            kind: kind.into(),
            value,
            applies_to: "medicines".into(),
            min_order_paise: 0,
            max_discount_paise: None,
            starts_at: now - chrono::TimeDelta::hours(1),
            ends_at: Some(now + chrono::TimeDelta::days(1)),
            global_limit: global,
            per_user_limit: per_user,
            first_order_only: false,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .unwrap();
}

/// The coupon's `used_count`.
pub async fn coupon_uses(app: &TestApp, code: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use onemedi::db::schema::{coupon_redemptions, coupons};
    let mut conn = app.app.db.read().await.unwrap();
    let (used, redemptions): (i32, i64) = on_conn!(&mut conn, c => {
        let (id, used) = coupons::table
            .filter(coupons::code.eq(code))
            .select((coupons::id, coupons::used_count))
            .first::<(i64, i32)>(c)
            .await
            .unwrap();
        let redemptions = coupon_redemptions::table
            .filter(coupon_redemptions::coupon_id.eq(id))
            .count()
            .get_result::<i64>(c)
            .await
            .unwrap();
        (used, redemptions)
    });
    assert_eq!(i64::from(used), redemptions, "used_count matches the redemptions");
    redemptions
}

/// Records an approved (or other status) prescription for `user_id`.
pub async fn prescription(app: &TestApp, user_id: i64, status: &str) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use onemedi::db::schema::prescriptions;
    let now = db::now();
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(prescriptions::table)
        .values((
            prescriptions::user_id.eq(user_id),
            prescriptions::file_path.eq("uploads/rx.pdf"),
            prescriptions::content_type.eq("application/pdf"),
            prescriptions::size_bytes.eq(1024_i64),
            prescriptions::sha256.eq("00"),
            prescriptions::status.eq(status),
            prescriptions::created_at.eq(now),
            prescriptions::updated_at.eq(now),
        ))
        .execute(c)
        .await
        .unwrap());
}

/// The medicine's current stock, read from the database.
pub async fn stock(app: &TestApp, medicine_id: i64) -> i32 {
    let mut conn = app.app.db.read().await.unwrap();
    db::catalog::find(&mut conn, medicine_id)
        .await
        .unwrap()
        .unwrap()
        .stock
}
