//! Writes a dispatcher makes from the console beside the dispatch engine's own: a note on a call's
//! timeline, and a unit's availability set by hand with a reason, audited in the same transaction.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    audit::NewAuditEntry,
    emergency::{ENTITY, NewTransition, TimelineEntry, UnitRow},
    schema::{ambulance_requests as ar, audit_log, entity_transitions, units},
};
use crate::on_conn;

/// The timeline event of a dispatcher's note.
pub const NOTE_EVENT: &str = "note";

/// Unit statuses a dispatcher may set by hand: availability only. A unit on a job follows its job.
pub const OVERRIDE_STATUSES: [&str; 3] = ["available", "busy", "off_duty"];

/// Statuses a unit may be moved out of by hand (not on a job).
const IDLE_STATUSES: [&str; 4] = ["available", "busy", "off_duty", "unavailable"];

/// Adds `text` by `user` to the timeline of ambulance request `request`, at its current status (the
/// status does not change). `Ok(None)` when there is no such request.
pub async fn add_note(
    conn: &mut Conn,
    request: i64,
    user: i64,
    text: &str,
) -> QueryResult<Option<TimelineEntry>> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let Some(status) = ar::table
            .find(request)
            .select(ar::status)
            .first::<String>(c)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        let row = diesel::insert_into(entity_transitions::table)
            .values(NewTransition {
                entity_type: ENTITY,
                entity_id: request,
                event: NOTE_EVENT,
                from_status: Some(&status),
                to_status: &status,
                actor_user_id: Some(user),
                actor_unit_id: None,
                reason: Some(text),
                command_id: None,
                details: None,
                at: now,
            })
            .returning(TimelineEntry::as_returning())
            .get_result(c)
            .await?;
        Ok(Some(row))
    }).await)
}

/// What a hand-set status did.
#[derive(Debug)]
pub enum Override {
    /// Written and audited: the status before, and the unit as written.
    Done { from: String, unit: Box<UnitRow> },
    /// No such unit.
    NotFound,
    /// The unit is on a job (its status follows the job); nothing written.
    OnJob(String),
}

/// Sets `unit`'s availability to `status` (one of [`OVERRIDE_STATUSES`]) unless it is on a job, by one
/// conditional write, and records `audit` with `{from, to, reason}` in the same transaction.
pub async fn override_unit_status(
    conn: &mut Conn,
    unit: i64,
    status: &str,
    reason: &str,
    audit: &NewAuditEntry<'_>,
) -> QueryResult<Override> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let Some(before) = units::table
            .find(unit)
            .select(units::status)
            .first::<String>(c)
            .await
            .optional()?
        else {
            return Ok(Override::NotFound);
        };
        let written = diesel::update(units::table.find(unit).filter(units::status.eq_any(IDLE_STATUSES)))
            .set((units::status.eq(status), units::version.eq(units::version + 1), units::updated_at.eq(now)))
            .returning(UnitRow::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(row) = written else {
            return Ok(Override::OnJob(before));
        };
        let details = serde_json::json!({ "from": before, "to": status, "reason": reason }).to_string();
        diesel::insert_into(audit_log::table)
            .values((audit, audit_log::details.eq(details)))
            .execute(c)
            .await?;
        Ok(Override::Done {
            from: before,
            unit: Box::new(row),
        })
    }).await)
}
