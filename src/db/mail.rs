//! What the e-mails and the invoice read, and the appointment reminder claim (one conditional write, so
//! several nodes sweeping at once send each reminder once).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Conn,
    schema::{appointments, doctor_slots, doctors, hospitals, medicines, order_items, users},
};
use crate::on_conn;

/// One invoice line: what was sold, at what price and GST rate.
#[derive(Debug, Clone, Queryable)]
pub struct InvoiceLine {
    pub medicine_name: String,
    pub quantity: i32,
    pub unit_price_paise: i64,
    pub line_total_paise: i64,
    /// The rate stored with the line; lines sold before rates were stored take the medicine's rate.
    pub gst_rate_percent: Option<i32>,
    pub current_gst_rate_percent: i32,
}

impl InvoiceLine {
    pub fn gst_rate(&self) -> i32 {
        self.gst_rate_percent.unwrap_or(self.current_gst_rate_percent)
    }
}

pub async fn invoice_lines(conn: &mut Conn, order_id: i64) -> QueryResult<Vec<InvoiceLine>> {
    on_conn!(conn, c => order_items::table
        .inner_join(medicines::table)
        .filter(order_items::order_id.eq(order_id))
        .order(order_items::medicine_id.asc())
        .select((
            order_items::medicine_name,
            order_items::quantity,
            order_items::unit_price_paise,
            order_items::line_total_paise,
            order_items::gst_rate_percent,
            medicines::gst_rate_percent,
        ))
        .load(c)
        .await)
}

/// An appointment as its e-mails describe it.
#[derive(Debug, Clone)]
pub struct AppointmentNotice {
    pub id: i64,
    pub user_id: i64,
    pub patient_name: String,
    pub mode: String,
    pub status: String,
    pub fee_paise: i64,
    pub slot_start: NaiveDateTime,
    pub slot_end: NaiveDateTime,
    pub doctor_name: String,
    pub specialty: String,
    pub hospital: Option<String>,
}

type NoticeRow = (
    (i64, i64, String, String, String, i64),
    (NaiveDateTime, NaiveDateTime),
    (String, String),
    Option<i64>,
);

pub async fn appointment_notice(conn: &mut Conn, id: i64) -> QueryResult<Option<AppointmentNotice>> {
    let row: Option<NoticeRow> = on_conn!(conn, c => appointments::table
        .inner_join(doctor_slots::table)
        .inner_join(doctors::table.inner_join(users::table))
        .filter(appointments::id.eq(id))
        .select((
            (
                appointments::id,
                appointments::user_id,
                appointments::patient_name,
                appointments::mode,
                appointments::status,
                appointments::fee_paise,
            ),
            (doctor_slots::slot_start, doctor_slots::slot_end),
            (users::name, doctors::specialty),
            doctors::hospital_id,
        ))
        .first(c)
        .await
        .optional())?;
    let Some((
        (id, user_id, patient_name, mode, status, fee_paise),
        (slot_start, slot_end),
        (doctor_name, specialty),
        hospital_id,
    )) = row
    else {
        return Ok(None);
    };
    let hospital = match hospital_id {
        Some(hospital_id) => on_conn!(conn, c => hospitals::table
            .find(hospital_id)
            .select(hospitals::name)
            .first::<String>(c)
            .await
            .optional())?,
        None => None,
    };
    Ok(Some(AppointmentNotice {
        id,
        user_id,
        patient_name,
        mode,
        status,
        fee_paise,
        slot_start,
        slot_end,
        doctor_name,
        specialty,
        hospital,
    }))
}

/// Confirmed appointments starting in `(now, until]` whose reminder is not yet claimed, soonest first.
pub async fn due_reminders(
    conn: &mut Conn,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    on_conn!(conn, c => appointments::table
        .inner_join(doctor_slots::table)
        .filter(
            appointments::status
                .eq("confirmed")
                .and(appointments::reminder_sent_at.is_null())
                .and(doctor_slots::slot_start.gt(now))
                .and(doctor_slots::slot_start.le(until)),
        )
        .order(doctor_slots::slot_start.asc())
        .select(appointments::id)
        .limit(limit)
        .load(c)
        .await)
}

/// Claims the reminder of one appointment; `true` for the one caller whose write changed the row.
pub async fn claim_reminder(conn: &mut Conn, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let changed = on_conn!(conn, c => diesel::update(appointments::table.filter(
        appointments::id
            .eq(id)
            .and(appointments::status.eq("confirmed"))
            .and(appointments::reminder_sent_at.is_null()),
    ))
    .set(appointments::reminder_sent_at.eq(now))
    .execute(c)
    .await)?;
    Ok(changed == 1)
}
