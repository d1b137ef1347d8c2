//! The OpenAPI document's frame (title, security scheme); paths are collected from the routes.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ONE MEDI API",
        description = "Medicines, lab tests, doctors, home care, insurance and emergency dispatch. \
            Errors are `{\"error\":{\"code\",\"message\",\"details\"}}`; mutating routes honour `Idempotency-Key`.",
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorCode)),
    tags(
        (name = "auth", description = "Registration, login, OTP"),
        (name = "users", description = "Profile and addresses"),
        (name = "admin", description = "Administration"),
        (name = "lab tests", description = "The lab test and health package catalog"),
        (name = "prescriptions", description = "Prescription uploads (checked by content) and staff review"),
        (name = "payments", description = "Razorpay checkout: provider orders, signature verification, webhooks"),
        (name = "home care", description = "Home-care services, partner profiles and bookings assigned to the nearest partner with a place"),
        (name = "insurance", description = "Health insurance plans, purchases paid through payments, issued policies"),
        (name = "hospitals", description = "Hospitals and live bed capacity"),
        (name = "doctors", description = "Doctors, weekly schedules, slot holds and appointments"),
        (name = "blood banks", description = "Blood banks and their stock"),
        (name = "emergency", description = "Ambulance units, requests, offers, the dispatcher board and response times; blood requests: reservations, donor alerts, pledges"),
        (name = "marketing", description = "Live homepage banners and offers"),
        (name = "notifications", description = "The user's notifications inbox (pushed live on user:{id})"),
        (name = "map", description = "Basemap geometry (H3 cell outlines) for the pages"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
