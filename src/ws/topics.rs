//! Topics and who may subscribe to them, decided on the server from the database rows. A topic naming
//! a row that does not exist is refused exactly like one the user may not see, so existence is not
//! revealed.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::{
    db::{Conn, schema},
    domain::{Role, UserId},
    on_conn,
};

/// A parsed topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `order:{id}`: a pharmacy order's status and rider.
    Order(i64),
    /// `ambulance_request:{id}`: one emergency request's timeline.
    AmbulanceRequest(i64),
    /// `dispatch`: every unit's movements and dispatch outcomes, for dispatcher consoles.
    Dispatch,
    /// `unit:{id}`: a unit's offers, assignments, position and status.
    Unit(i64),
    /// `collector:{id}`: a phlebotomist's collections (id of the `phlebotomists` row).
    Collector(i64),
    /// `user:{id}`: a user's notifications and profile changes.
    User(i64),
    /// `blood_request:{id}`: a blood request's reservations, pledges and status.
    BloodRequest(i64),
    /// `doctor_slot:{id}`: a doctor slot's availability (held, booked, open again).
    DoctorSlot(i64),
    /// `lab_collection:{id}`: a home lab collection's status, offers' outcomes and at-risk alert.
    LabCollection(i64),
    /// `lab_desk`: at-risk sample alerts for the lab operations staff.
    LabDesk,
}

impl Topic {
    /// Parses `kind:id` or `dispatch`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "dispatch" {
            return Some(Self::Dispatch);
        }
        if text == "lab_desk" {
            return Some(Self::LabDesk);
        }
        let (kind, id) = text.split_once(':')?;
        if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: i64 = id.parse().ok()?;
        match kind {
            "order" => Some(Self::Order(id)),
            "ambulance_request" => Some(Self::AmbulanceRequest(id)),
            "unit" => Some(Self::Unit(id)),
            "collector" => Some(Self::Collector(id)),
            "user" => Some(Self::User(id)),
            "blood_request" => Some(Self::BloodRequest(id)),
            "doctor_slot" => Some(Self::DoctorSlot(id)),
            "lab_collection" => Some(Self::LabCollection(id)),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> String {
        match self {
            Self::Order(id) => format!("order:{id}"),
            Self::AmbulanceRequest(id) => format!("ambulance_request:{id}"),
            Self::Dispatch => "dispatch".to_owned(),
            Self::Unit(id) => format!("unit:{id}"),
            Self::Collector(id) => format!("collector:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::BloodRequest(id) => format!("blood_request:{id}"),
            Self::DoctorSlot(id) => format!("doctor_slot:{id}"),
            Self::LabCollection(id) => format!("lab_collection:{id}"),
            Self::LabDesk => "lab_desk".to_owned(),
        }
    }
}

/// Whether `user` (with `role`) may receive `topic`'s events. Administrators see every topic whose row
/// exists; everyone else needs a relation to the row.
pub async fn may_subscribe(conn: &mut Conn, user: UserId, role: Role, topic: Topic) -> QueryResult<bool> {
    use schema::{ambulance_requests as ar, orders, phlebotomists as ph, units, users};
    let admin = role == Role::Admin;
    let me = user.0;
    match topic {
        Topic::Dispatch => Ok(matches!(role, Role::Dispatcher | Role::Admin)),
        Topic::User(id) => {
            if id == me {
                return Ok(true);
            }
            if !admin {
                return Ok(false);
            }
            exists(on_conn!(conn, c => users::table.find(id).select(users::id).first::<i64>(c).await))
        }
        Topic::Unit(id) => {
            if admin {
                return exists(
                    on_conn!(conn, c => units::table.find(id).select(units::id).first::<i64>(c).await),
                );
            }
            is_crew_of(conn, me, id).await
        }
        // The phlebotomist themself, and the staff who run the collections.
        Topic::Collector(id) => {
            let owner = on_conn!(conn, c => ph::table.find(id).select(ph::user_id).first::<i64>(c).await)
                .optional()?;
            Ok(owner.is_some_and(|owner| admin || role == Role::Staff || owner == me))
        }
        Topic::LabDesk => Ok(matches!(role, Role::Staff | Role::Admin)),
        // The booking customer, staff, and the phlebotomist it is assigned to.
        Topic::LabCollection(id) => {
            use schema::lab_collections as lc;
            let row = on_conn!(conn, c => lc::table
                .find(id)
                .select((lc::user_id, lc::phlebotomist_id))
                .first::<(i64, Option<i64>)>(c)
                .await)
            .optional()?;
            let Some((customer, collector)) = row else {
                return Ok(false);
            };
            if admin || role == Role::Staff || customer == me {
                return Ok(true);
            }
            let Some(collector) = collector else {
                return Ok(false);
            };
            exists(on_conn!(conn, c => ph::table
                .filter(ph::id.eq(collector).and(ph::user_id.eq(me)))
                .select(ph::id)
                .first::<i64>(c)
                .await))
        }
        Topic::Order(id) => {
            let row = on_conn!(conn, c => orders::table
                .find(id)
                .select((orders::user_id, orders::rider_unit_id))
                .first::<(i64, Option<i64>)>(c)
                .await)
            .optional()?;
            let Some((customer, rider_unit)) = row else {
                return Ok(false);
            };
            if admin || role == Role::Staff || customer == me {
                return Ok(true);
            }
            match rider_unit {
                Some(unit) => is_crew_of(conn, me, unit).await,
                None => Ok(false),
            }
        }
        Topic::AmbulanceRequest(id) => {
            let row = on_conn!(conn, c => ar::table
                .find(id)
                .select((ar::requester_user_id, ar::assigned_unit_id))
                .first::<(i64, Option<i64>)>(c)
                .await)
            .optional()?;
            let Some((requester, assigned)) = row else {
                return Ok(false);
            };
            if admin || role == Role::Dispatcher || requester == me {
                return Ok(true);
            }
            match assigned {
                Some(unit) => is_crew_of(conn, me, unit).await,
                None => Ok(false),
            }
        }
        // Availability is public on the doctor's page; the event names no one.
        Topic::DoctorSlot(id) => {
            use schema::doctor_slots as sl;
            exists(on_conn!(conn, c => sl::table.find(id).select(sl::id).first::<i64>(c).await))
        }
        Topic::BloodRequest(id) => {
            use schema::{blood_pledges as bp, blood_requests as br};
            let requester = on_conn!(conn, c => br::table
                .find(id)
                .select(br::requester_user_id)
                .first::<i64>(c)
                .await)
            .optional()?;
            let Some(requester) = requester else {
                return Ok(false);
            };
            if requester == me || matches!(role, Role::Admin | Role::Staff | Role::Dispatcher) {
                return Ok(true);
            }
            // A donor who pledged follows the request they are helping.
            exists(on_conn!(conn, c => bp::table
                .filter(bp::request_id.eq(id).and(bp::donor_user_id.eq(me)).and(bp::status.eq("pledged")))
                .select(bp::id)
                .first::<i64>(c)
                .await))
        }
    }
}

async fn is_crew_of(conn: &mut Conn, user: i64, unit: i64) -> QueryResult<bool> {
    use schema::unit_crew;
    let found = on_conn!(conn, c => unit_crew::table
        .filter(unit_crew::unit_id.eq(unit))
        .filter(unit_crew::user_id.eq(user))
        .select(unit_crew::id)
        .first::<i64>(c)
        .await)
    .optional()?;
    Ok(found.is_some())
}

fn exists(found: QueryResult<i64>) -> QueryResult<bool> {
    Ok(found.optional()?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_parse_and_print_back() {
        for name in [
            "order:1",
            "ambulance_request:22",
            "dispatch",
            "unit:3",
            "collector:4",
            "user:5",
            "blood_request:6",
            "lab_collection:7",
            "lab_desk",
        ] {
            assert_eq!(Topic::parse(name).map(Topic::name).as_deref(), Some(name));
        }
        for bad in [
            "order",
            "order:",
            "order:-1",
            "order:1x",
            "fleet:1",
            "user:99999999999999999999",
            "",
        ] {
            assert_eq!(Topic::parse(bad), None, "{bad}");
        }
    }
}
