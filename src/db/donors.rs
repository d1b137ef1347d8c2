//! Donor profiles: a user's blood group, last donation, location (with its H3 cell for the ring search
//! of `db::blood`) and whether they want alerts.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use h3o::Resolution;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Conn, schema::donor_profiles};
use crate::{
    domain::{LatLng, blood::BloodGroup},
    on_conn,
};

/// Donor cells are indexed at this H3 resolution (edge ≈ 1.4 km).
pub const DONOR_RESOLUTION: Resolution = Resolution::Seven;

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = donor_profiles)]
pub struct DonorProfile {
    #[serde(skip)]
    pub user_id: i64,
    #[schema(value_type = String, example = "O+")]
    pub blood_group: String,
    pub last_donation_date: Option<NaiveDate>,
    pub lat: f64,
    pub lng: f64,
    pub available: bool,
    pub version: i64,
    pub updated_at: NaiveDateTime,
}

/// The H3 cell (resolution 7) of a point, as stored in `h3_cell` columns.
pub fn donor_cell(point: LatLng) -> Option<i64> {
    let cell = h3o::LatLng::new(point.lat(), point.lng())
        .ok()?
        .to_cell(DONOR_RESOLUTION);
    i64::try_from(u64::from(cell)).ok()
}

pub async fn find(conn: &mut Conn, user: i64) -> QueryResult<Option<DonorProfile>> {
    on_conn!(conn, c => donor_profiles::table
        .filter(donor_profiles::user_id.eq(user))
        .select(DonorProfile::as_select())
        .first(c)
        .await
        .optional())
}

/// A validated donor profile.
#[derive(Debug, Clone, Copy)]
pub struct ProfileInput {
    pub group: BloodGroup,
    pub last_donation_date: Option<NaiveDate>,
    pub point: LatLng,
    pub available: bool,
}

/// Creates or replaces the user's donor profile, with its H3 cell for the ring search.
pub async fn save(conn: &mut Conn, user: i64, input: ProfileInput) -> QueryResult<DonorProfile> {
    let now = super::now();
    let cell = donor_cell(input.point);
    on_conn!(conn, c => diesel::insert_into(donor_profiles::table)
        .values((
            donor_profiles::user_id.eq(user),
            donor_profiles::blood_group.eq(input.group.as_str()),
            donor_profiles::last_donation_date.eq(input.last_donation_date),
            donor_profiles::lat.eq(input.point.lat()),
            donor_profiles::lng.eq(input.point.lng()),
            donor_profiles::h3_cell.eq(cell),
            donor_profiles::available.eq(input.available),
            donor_profiles::created_at.eq(now),
            donor_profiles::updated_at.eq(now),
        ))
        .on_conflict(donor_profiles::user_id)
        .do_update()
        .set((
            donor_profiles::blood_group.eq(input.group.as_str()),
            donor_profiles::last_donation_date.eq(input.last_donation_date),
            donor_profiles::lat.eq(input.point.lat()),
            donor_profiles::lng.eq(input.point.lng()),
            donor_profiles::h3_cell.eq(cell),
            donor_profiles::available.eq(input.available),
            donor_profiles::version.eq(donor_profiles::version + 1),
            donor_profiles::updated_at.eq(now),
        ))
        .returning(DonorProfile::as_returning())
        .get_result(c)
        .await)
}

/// Fills the H3 cell of donor profiles loaded without one (the demo city's SQL leaves them NULL).
pub async fn fill_missing_cells(conn: &mut Conn) -> QueryResult<usize> {
    let rows: Vec<(i64, f64, f64)> = on_conn!(conn, c => donor_profiles::table
        .filter(donor_profiles::h3_cell.is_null())
        .select((donor_profiles::id, donor_profiles::lat, donor_profiles::lng))
        .load(c)
        .await)?;
    let mut filled = 0;
    for (id, lat, lng) in rows {
        let Some(cell) = LatLng::parse(lat, lng).ok().and_then(donor_cell) else {
            continue;
        };
        filled += on_conn!(conn, c => diesel::update(donor_profiles::table.find(id))
            .set(donor_profiles::h3_cell.eq(cell))
            .execute(c)
            .await)?;
    }
    Ok(filled)
}
