//! The REST API under `/api/v1`: one module per area, plus the conventions every route shares.

pub mod admin;
pub mod analytics;
pub mod auth;
pub mod blood;
pub mod blood_banks;
pub mod body;
pub mod cart;
pub mod catalog_admin;
pub mod coupons_admin;
pub mod delivery;
pub mod docs;
pub mod doctors;
pub mod donors;
pub mod emergency;
pub mod field;
pub mod health;
pub mod hospitals;
pub mod insurance;
pub mod invoice;
pub mod lab_admin;
pub mod lab_bookings;
pub mod lab_tests;
pub mod map;
pub mod marketing;
pub mod medicines;
pub mod orders;
pub mod orders_admin;
pub mod payments;
pub mod prescriptions;
pub mod services;
pub mod users;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::{scope, service_config::ServiceConfig};

use crate::error::{ApiError, ErrorCode};

/// Largest page a client may ask for.
pub const MAX_PER_PAGE: u32 = 100;
const DEFAULT_PER_PAGE: u32 = 20;

/// `?page=&per_page=` (1-based; `per_page` at most 100).
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageQuery {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let mut problems = Problems::default();
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 {
            problems.add("page", "must be 1 or more");
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            problems.add("per_page", format!("must be between 1 and {MAX_PER_PAGE}"));
        }
        problems.finish()?;
        Ok(PageRequest { page, per_page })
    }
}

impl PageRequest {
    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    pub fn wrap<T>(self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            page: self.page,
            per_page: self.per_page,
            total,
        }
    }
}

/// An optional free-text reason (cancellations, declines).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

/// Collects per-field validation problems so a client learns about all of them at once.
#[derive(Debug, Default)]
pub struct Problems(Map<String, Value>);

impl Problems {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| Value::String(problem.into()));
    }

    /// Records the error of a parse and returns the value when it succeeded.
    pub fn check<T, E: ToString>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(problem) => {
                self.add(field, problem.to_string());
                None
            }
        }
    }

    /// Checks an optional free-text field's length after trimming; returns the trimmed text.
    pub fn text(&mut self, field: &str, raw: &str, max_chars: usize) -> Option<String> {
        let text = raw.trim();
        if text.is_empty() {
            self.add(field, "must not be empty");
            None
        } else if text.chars().count() > max_chars {
            self.add(field, format!("must be at most {max_chars} characters"));
            None
        } else if text.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// 400 `validation_failed` with every problem in `details`, or Ok when there were none.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = self.0.keys().map(String::as_str).collect();
        let message = format!("invalid fields: {}", fields.join(", "));
        Err(ApiError::new(ErrorCode::ValidationFailed, message).with_details(Value::Object(self.0)))
    }
}

/// Default and largest search radius of `?near=` lists, kilometres.
pub const DEFAULT_RADIUS_KM: u32 = 10;
pub const MAX_RADIUS_KM: u32 = 100;

/// Parses `?near=lat,lng`; `None` when absent or invalid (the problem is recorded).
pub fn parse_near(problems: &mut Problems, raw: Option<&str>) -> Option<crate::domain::LatLng> {
    let raw = raw?;
    let parsed = (raw.len() <= 64)
        .then(|| raw.split_once(','))
        .flatten()
        .and_then(|(lat, lng)| Some((lat.trim().parse::<f64>().ok()?, lng.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((lat, lng)) => problems.check("near", crate::domain::LatLng::parse(lat, lng)),
        None => {
            problems.add("near", "must be lat,lng in degrees, e.g. 12.97,77.59");
            None
        }
    }
}

/// Checks `?radius_km=` (1..=100, default 10); returns metres.
pub fn parse_radius(problems: &mut Problems, radius_km: Option<u32>) -> f64 {
    let km = radius_km.unwrap_or(DEFAULT_RADIUS_KM);
    if !(1..=MAX_RADIUS_KM).contains(&km) {
        problems.add("radius_km", format!("must be between 1 and {MAX_RADIUS_KM}"));
    }
    f64::from(km.clamp(1, MAX_RADIUS_KM)) * 1000.0
}

/// Every `/api/v1` route.
pub fn configure(config: &mut ServiceConfig) {
    config.service(
        scope::scope("/api/v1")
            .service(auth::register)
            .service(auth::login)
            .service(auth::me)
            .service(auth::otp_request)
            .service(auth::otp_verify)
            .service(users::get_profile)
            .service(users::update_profile)
            .service(users::list_addresses)
            .service(users::create_address)
            .service(users::update_address)
            .service(users::delete_address)
            .service(admin::list_users)
            .service(admin::change_role)
            .service(admin::audit_log)
            .service(analytics::overview)
            .service(orders_admin::list_orders)
            // The fixed /medicines/* paths go before /medicines/{id}.
            .service(medicines::search)
            .service(medicines::featured)
            .service(medicines::categories)
            .service(medicines::brands)
            .service(medicines::get_medicine)
            .service(catalog_admin::create_medicine)
            .service(catalog_admin::update_medicine)
            .service(catalog_admin::deactivate_medicine)
            .service(catalog_admin::create_category)
            .service(catalog_admin::update_category)
            .service(catalog_admin::create_brand)
            .service(catalog_admin::update_brand)
            // The fixed /lab-tests/* paths go before /lab-tests/{id}.
            .service(lab_admin::list_tests)
            .service(lab_admin::create_test)
            .service(lab_admin::update_test)
            .service(lab_admin::withdraw_test)
            .service(lab_admin::create_category)
            .service(lab_admin::update_category)
            .service(lab_tests::search_tests)
            .service(lab_tests::categories)
            .service(lab_tests::packages)
            .service(lab_tests::get_test)
            .service(lab_bookings::book)
            .service(lab_bookings::list_own)
            .service(lab_bookings::route)
            .service(lab_bookings::get_collection)
            .service(lab_bookings::cancel)
            .service(lab_bookings::set_status)
            .service(lab_bookings::upload_report)
            .service(lab_bookings::download_report)
            .service(coupons_admin::create_coupon)
            .service(coupons_admin::list_coupons)
            .service(coupons_admin::update_coupon)
            .service(cart::get_cart)
            .service(cart::add_item)
            .service(cart::update_item)
            .service(cart::delete_item)
            .service(cart::preview_coupon)
            .service(prescriptions::upload)
            .service(prescriptions::list_own)
            .service(prescriptions::download)
            .service(prescriptions::review_queue)
            .service(prescriptions::review)
            .service(orders::place_order)
            .service(orders::list_orders)
            .service(orders::get_order)
            .service(orders::cancel_order)
            .service(orders::update_status)
            .service(invoice::invoice_pdf)
            .service(delivery::deliver)
            .service(delivery::share)
            .service(delivery::track)
            .service(payments::create_order)
            .service(payments::verify)
            .service(payments::webhook)
            .service(payments::simulate)
            .service(emergency::create_unit)
            .service(emergency::list_units)
            .service(emergency::my_unit)
            .service(emergency::get_unit)
            .service(emergency::set_unit_status)
            .service(emergency::override_unit_status)
            .service(emergency::create_request)
            .service(emergency::list_requests)
            .service(emergency::get_request)
            .service(emergency::cancel_request)
            .service(emergency::assign_request)
            .service(emergency::add_note)
            .service(emergency::recommended_units)
            .service(emergency::accept_offer)
            .service(emergency::decline_offer)
            .service(emergency::board)
            .service(emergency::stats)
            // The fixed /doctors/* paths go before /doctors/{id}.
            .service(doctors::list_doctors)
            .service(doctors::put_schedule)
            .service(doctors::my_day)
            .service(doctors::hold_slot)
            .service(doctors::book)
            .service(doctors::list_appointments)
            .service(doctors::get_appointment)
            .service(doctors::cancel_appointment)
            .service(doctors::get_doctor)
            .service(hospitals::list_hospitals)
            .service(hospitals::get_hospital)
            .service(hospitals::update_beds)
            .service(blood_banks::list_banks)
            .service(blood_banks::set_stock)
            .service(donors::get_donor_profile)
            .service(donors::save_donor_profile)
            .service(blood::create_request)
            .service(blood::list_requests)
            .service(blood::get_request)
            .service(blood::pledge)
            .service(blood::cancel_request)
            .service(marketing::live_banners)
            .service(marketing::list_banners)
            .service(marketing::create_banner)
            .service(marketing::update_banner)
            .service(marketing::live_offers)
            .service(marketing::list_offers)
            .service(marketing::create_offer)
            .service(marketing::update_offer)
            .service(marketing::create_campaign)
            .service(marketing::list_campaigns)
            .service(marketing::send_campaign)
            .service(marketing::inbox)
            .service(marketing::mark_all_read)
            .service(marketing::mark_read)
            .service(map::cells)
            .service(map::config)
            // The fixed /services/* paths go before /services/{id}.
            .service(services::list_services)
            .service(services::get_partner_profile)
            .service(services::save_partner_profile)
            .service(services::book)
            .service(services::list_bookings)
            .service(services::get_booking)
            .service(services::cancel_booking)
            .service(services::set_status)
            .service(services::get_service)
            .service(insurance::list_plans)
            .service(insurance::get_plan)
            .service(insurance::purchase)
            .service(insurance::get_purchase)
            .service(insurance::list_policies)
            .service(insurance::get_policy),
    );
    config
        .service(health::health)
        .service(health::ready)
        .service(health::metrics);
}

/// An audit record for a sensitive action by `actor`, stamped with the request id and client address.
pub fn audit_entry<'a>(
    req: &actix_web::HttpRequest,
    actor: Option<i64>,
    action: &'a str,
    subject: (&'a str, Option<String>),
) -> crate::db::audit::NewAuditEntry<'a> {
    use actix_web::HttpMessage;
    crate::db::audit::NewAuditEntry {
        actor_user_id: actor,
        action,
        subject_type: subject.0,
        subject_id: subject.1,
        ip: req.peer_addr().map(|addr| addr.ip().to_string()),
        request_id: req
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string()),
        created_at: crate::db::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_offsets_follow() {
        let ok = PageQuery {
            page: Some(3),
            per_page: Some(10),
        }
        .validate()
        .unwrap();
        assert_eq!((ok.limit(), ok.offset()), (10, 20));
        assert!(
            PageQuery {
                page: Some(0),
                per_page: None
            }
            .validate()
            .is_err()
        );
        assert!(
            PageQuery {
                page: None,
                per_page: Some(101)
            }
            .validate()
            .is_err()
        );
        assert!(
            PageQuery {
                page: None,
                per_page: Some(0)
            }
            .validate()
            .is_err()
        );
    }
}
