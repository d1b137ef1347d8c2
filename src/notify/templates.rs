//! The text of customer e-mails: a plain-text body and an HTML alternative for each kind, with every
//! stored value HTML-escaped.

use std::fmt::Write;

use chrono::{FixedOffset, NaiveDateTime, TimeZone};

use crate::{
    db::{
        mail::AppointmentNotice,
        orders::{Order, OrderItem},
    },
    domain::order::rupees,
};

/// Subject and both bodies of one message.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Order statuses a customer is told about by e-mail (besides the confirmation).
pub const CUSTOMER_VISIBLE: [&str; 5] = [
    "shipped",
    "out_for_delivery",
    "delivered",
    "cancelled",
    "refunded",
];

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:Arial,sans-serif;color:#222\">{body}\
         <p style=\"color:#777;font-size:12px\">ONE MEDI — this message was sent automatically; please do not reply.</p>\
         </body></html>",
        escape(title)
    )
}

/// The order's money and lines, as text and as an HTML table.
fn order_summary(order: &Order, items: &[OrderItem]) -> (String, String) {
    let mut text = String::new();
    let mut html = String::from(
        "<table style=\"border-collapse:collapse\"><tr><th align=\"left\">Item</th><th>Qty</th><th align=\"right\">Amount (₹)</th></tr>",
    );
    for item in items {
        let _ = writeln!(
            text,
            "  {} × {}  ₹{}",
            item.medicine_name,
            item.quantity,
            rupees(item.line_total_paise)
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td align=\"center\">{}</td><td align=\"right\">{}</td></tr>",
            escape(&item.medicine_name),
            item.quantity,
            rupees(item.line_total_paise)
        );
    }
    let mut money = vec![("Subtotal", order.subtotal_paise)];
    if order.discount_paise > 0 {
        money.push(("Discount", -order.discount_paise));
    }
    money.push(("GST", order.tax_paise));
    money.push(("Delivery", order.delivery_paise));
    money.push(("Total", order.total_paise));
    for (label, paise) in money {
        let _ = writeln!(text, "  {label}: ₹{}", rupees(paise));
        let _ = write!(
            html,
            "<tr><td colspan=\"2\"><b>{label}</b></td><td align=\"right\">{}</td></tr>",
            rupees(paise)
        );
    }
    html.push_str("</table>");
    (text, html)
}

fn shipping(order: &Order) -> String {
    format!(
        "{}, {}, {} {}",
        order.ship_name, order.ship_address, order.ship_city, order.ship_pincode
    )
}

/// "Your order is confirmed": sent once the order is paid, or at once for cash on delivery.
pub fn order_confirmation(customer: &str, order: &Order, items: &[OrderItem]) -> Rendered {
    let subject = format!("Order {} confirmed", order.order_number);
    let payment = if order.payment_method == "cod" {
        "Cash on delivery: please keep the amount ready."
    } else {
        "Paid online. Thank you."
    };
    let (lines, table) = order_summary(order, items);
    let text = format!(
        "Hello {customer},\n\nYour ONE MEDI order {} is confirmed.\n\n{lines}\n{payment}\nDelivery to: {}\n\n\
         The invoice is at /api/v1/orders/{}/invoice.pdf in your account.\n",
        order.order_number,
        shipping(order),
        order.id
    );
    let html = page(
        &subject,
        &format!(
            "<p>Hello {},</p><p>Your ONE MEDI order <b>{}</b> is confirmed.</p>{table}<p>{payment}</p>\
             <p>Delivery to: {}</p>",
            escape(customer),
            escape(&order.order_number),
            escape(&shipping(order))
        ),
    );
    Rendered { subject, text, html }
}

/// A status change the customer should hear about; `None` for the others.
pub fn order_status(customer: &str, order: &Order, status: &str) -> Option<Rendered> {
    let (headline, detail) = match status {
        "shipped" => ("has been shipped", "It is on its way to you."),
        "out_for_delivery" => (
            "is out for delivery",
            "Our rider will reach you soon; keep your delivery code at hand.",
        ),
        "delivered" => ("has been delivered", "Thank you for ordering with ONE MEDI."),
        "cancelled" => (
            "has been cancelled",
            "If you paid online, the amount will be refunded to the original payment method.",
        ),
        "refunded" => (
            "has been refunded",
            "The refund has been issued to the original payment method.",
        ),
        _ => return None,
    };
    let subject = format!("Order {} {headline}", order.order_number);
    let reason = match (&order.cancel_reason, status) {
        (Some(reason), "cancelled") => format!("Reason: {reason}\n"),
        _ => String::new(),
    };
    let text = format!(
        "Hello {customer},\n\nYour ONE MEDI order {} {headline}. {detail}\n{reason}\nOrder total: ₹{}\n",
        order.order_number,
        rupees(order.total_paise)
    );
    let html = page(
        &subject,
        &format!(
            "<p>Hello {},</p><p>Your ONE MEDI order <b>{}</b> {headline}. {detail}</p>{}<p>Order total: ₹{}</p>",
            escape(customer),
            escape(&order.order_number),
            if reason.is_empty() {
                String::new()
            } else {
                format!("<p>{}</p>", escape(reason.trim_end()))
            },
            rupees(order.total_paise)
        ),
    );
    Some(Rendered { subject, text, html })
}

/// India Standard Time (UTC+05:30), how slots are shown to customers.
fn ist(at: NaiveDateTime) -> String {
    match FixedOffset::east_opt(IST_OFFSET_SECS) {
        Some(offset) => offset
            .from_utc_datetime(&at)
            .format("%a %d %b %Y, %H:%M IST")
            .to_string(),
        None => at.format("%a %d %b %Y, %H:%M UTC").to_string(),
    }
}

const IST_OFFSET_SECS: i32 = 5 * 3600 + 30 * 60;

fn appointment_details(a: &AppointmentNotice) -> (String, String) {
    let mode = if a.mode == "video" {
        "Video consultation"
    } else {
        "In person"
    };
    let place = a.hospital.as_deref().unwrap_or("");
    let text = format!(
        "  Doctor: Dr. {} ({})\n  When: {}\n  Mode: {mode}{}\n  Patient: {}\n  Fee: ₹{}\n",
        a.doctor_name,
        a.specialty,
        ist(a.slot_start),
        if place.is_empty() {
            String::new()
        } else {
            format!(" at {place}")
        },
        a.patient_name,
        rupees(a.fee_paise)
    );
    let html = format!(
        "<ul><li>Doctor: Dr. {} ({})</li><li>When: {}</li><li>Mode: {mode}{}</li><li>Patient: {}</li><li>Fee: ₹{}</li></ul>",
        escape(&a.doctor_name),
        escape(&a.specialty),
        ist(a.slot_start),
        if place.is_empty() {
            String::new()
        } else {
            format!(" at {}", escape(place))
        },
        escape(&a.patient_name),
        rupees(a.fee_paise)
    );
    (text, html)
}

/// Sent when an appointment is booked: confirmed (pay at the clinic) or awaiting online payment.
pub fn appointment_booked(customer: &str, a: &AppointmentNotice) -> Rendered {
    let state = if a.status == "confirmed" {
        "is confirmed"
    } else {
        "is booked and awaits payment"
    };
    let subject = format!("Appointment with Dr. {} {state}", a.doctor_name);
    let (details, list) = appointment_details(a);
    let text = format!(
        "Hello {customer},\n\nYour appointment {state}.\n\n{details}\nAppointment #{}\n",
        a.id
    );
    let html = page(
        &subject,
        &format!(
            "<p>Hello {},</p><p>Your appointment {state}.</p>{list}<p>Appointment #{}</p>",
            escape(customer),
            a.id
        ),
    );
    Rendered { subject, text, html }
}

/// Sent once, `mail.reminder_lead_mins` before the slot.
pub fn appointment_reminder(customer: &str, a: &AppointmentNotice) -> Rendered {
    let subject = format!(
        "Reminder: appointment with Dr. {} on {}",
        a.doctor_name,
        ist(a.slot_start)
    );
    let (details, list) = appointment_details(a);
    let text = format!(
        "Hello {customer},\n\nThis is a reminder of your upcoming appointment.\n\n{details}\n\
         If you cannot make it, please cancel it in the app so someone else can take the slot.\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>Hello {},</p><p>This is a reminder of your upcoming appointment.</p>{list}\
             <p>If you cannot make it, please cancel it in the app so someone else can take the slot.</p>",
            escape(customer)
        ),
    );
    Rendered { subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_escaped_in_html() {
        assert_eq!(
            escape("<b>\"A&B\"</b>'"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;&#39;"
        );
    }

    #[test]
    fn slots_are_shown_in_india_time() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(4, 30, 0)
            .unwrap();
        assert_eq!(ist(at), "Wed 25 Nov 2026, 10:00 IST");
    }
}
