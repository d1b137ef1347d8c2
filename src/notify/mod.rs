//! Customer e-mails. Order confirmations and status mails come from the order events this node
//! publishes on the bus (so every path that changes an order and announces it is covered, and each
//! event is mailed by the one node that published it); appointment confirmations are asked for by the
//! booking handler; reminders come from a periodic sweep that claims each one with a conditional write.
//! All of it runs after commit on bounded queues: a slow or failing mail server never touches a request.

pub mod templates;

use lettre::message::Mailbox;
use serde_json::Value;
use tokio::sync::mpsc;

use self::templates::{CUSTOMER_VISIBLE, Rendered};
use crate::{
    bus::{Bus, Observer},
    db::{self, Db, DbError},
    integrations::mail::{Mailer, Outgoing},
};

/// Appointments reminded per sweep at most; the rest wait for the next sweep.
const REMINDER_BATCH: i64 = 100;

/// Work for the notifier task.
#[derive(Debug)]
enum Job {
    /// An `order_placed`, `order_status_changed` or `order_refunded` event published by this node.
    OrderEvent(Value),
    AppointmentBooked(i64),
    AppointmentReminder(i64),
}

/// Hands work to the notifier task; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    /// Filled by the bus observer, the booking handler and the reminder sweep (never waiting: a full
    /// queue drops the job with a warning); drained by the task started in [`Notifier::start`].
    jobs: mpsc::Sender<Job>,
}

impl Notifier {
    /// Starts the task that turns jobs into messages for `mailer`.
    pub fn start(db: Db, mailer: Mailer, bus: Bus, capacity: usize) -> Self {
        let (jobs, mut rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if let Err(error) = handle(&db, &mailer, &bus, &job).await {
                    tracing::warn!(error = %error, job = ?job, "notification not prepared");
                }
            }
        });
        Self { jobs }
    }

    /// The bus observer that forwards order events to this notifier.
    pub fn order_observer(&self) -> Observer {
        let notifier = self.clone();
        Box::new(move |event: &Value| {
            if matches!(
                event["type"].as_str(),
                Some("order_placed" | "order_status_changed" | "order_refunded")
            ) {
                notifier.enqueue(Job::OrderEvent(event.clone()));
            }
        })
    }

    /// Asks for the confirmation e-mail of a booked appointment (call after commit).
    pub fn appointment_booked(&self, appointment_id: i64) {
        self.enqueue(Job::AppointmentBooked(appointment_id));
    }

    fn enqueue(&self, job: Job) {
        if let Err(error) = self.jobs.try_send(job) {
            tracing::warn!(error = %error, "notification queue full or closed; notification dropped");
        }
    }
}

/// The customer's mailbox, or `None` for an account without an e-mail address (phone sign-up).
async fn recipient(db: &Db, user_id: i64) -> Result<Option<(Mailbox, String)>, DbError> {
    let mut conn = db.read().await?;
    let Some(user) = db::users::find(&mut conn, user_id).await? else {
        return Ok(None);
    };
    let Some(email) = user.email.as_deref() else {
        return Ok(None);
    };
    match email.parse() {
        Ok(address) => Ok(Some((Mailbox::new(Some(user.name.clone()), address), user.name))),
        Err(error) => {
            tracing::warn!(user = user_id, error = %error, "stored e-mail address not usable");
            Ok(None)
        }
    }
}

/// Renders a message for the recipient's name, once the rows it needs are read.
type Render = Box<dyn FnOnce(&str) -> Option<Rendered> + Send>;

async fn handle(db: &Db, mailer: &Mailer, bus: &Bus, job: &Job) -> Result<(), DbError> {
    let (user_id, render): (i64, Render) = match job {
        Job::OrderEvent(event) => {
            let Some(order_id) = event["order_id"].as_i64() else {
                return Ok(());
            };
            let mut conn = db.read().await?;
            let Some(order) = db::orders::find(&mut conn, order_id).await? else {
                return Ok(());
            };
            let cod = order.payment_method == "cod";
            let kind = match (event["type"].as_str(), event["to"].as_str()) {
                // Cash on delivery is confirmed by placing it; an online order by its payment.
                (Some("order_placed"), _) if cod => "confirmation",
                (Some("order_status_changed"), Some("confirmed")) if !cod => "confirmation",
                (Some("order_status_changed"), Some(to)) if CUSTOMER_VISIBLE.contains(&to) => to,
                (Some("order_refunded"), _) => "refunded",
                _ => return Ok(()),
            };
            let items = if kind == "confirmation" {
                db::orders::items(&mut conn, order_id).await?
            } else {
                Vec::new()
            };
            drop(conn);
            inbox_order_update(db, bus, &order, kind).await?;
            let kind = kind.to_owned();
            (
                order.user_id,
                Box::new(move |name: &str| {
                    if kind == "confirmation" {
                        Some(templates::order_confirmation(name, &order, &items))
                    } else {
                        templates::order_status(name, &order, &kind)
                    }
                }),
            )
        }
        Job::AppointmentBooked(id) | Job::AppointmentReminder(id) => {
            let mut conn = db.read().await?;
            let Some(notice) = db::mail::appointment_notice(&mut conn, *id).await? else {
                return Ok(());
            };
            drop(conn);
            let reminder = matches!(job, Job::AppointmentReminder(_));
            (
                notice.user_id,
                Box::new(move |name: &str| {
                    Some(if reminder {
                        templates::appointment_reminder(name, &notice)
                    } else {
                        templates::appointment_booked(name, &notice)
                    })
                }),
            )
        }
    };
    let Some((to, name)) = recipient(db, user_id).await? else {
        tracing::debug!(user = user_id, "no e-mail address; notification skipped");
        return Ok(());
    };
    if let Some(Rendered { subject, text, html }) = render(&name) {
        mailer.send(Outgoing {
            to,
            subject,
            text,
            html,
        });
    }
    Ok(())
}

/// Writes an order update into its customer's notifications inbox and pushes it on `user:{id}`.
async fn inbox_order_update(
    db: &Db,
    bus: &Bus,
    order: &db::orders::Order,
    kind: &str,
) -> Result<(), DbError> {
    let title = match kind {
        "confirmation" => format!("Order {} is confirmed", order.order_number),
        "out_for_delivery" => format!("Order {} is out for delivery", order.order_number),
        other => format!("Order {} is {}", order.order_number, other.replace('_', " ")),
    };
    let body = match kind {
        "confirmation" => "We are preparing your medicines.",
        "shipped" => "Your order has left the pharmacy.",
        "out_for_delivery" => "Our rider will reach you soon; keep your delivery code at hand.",
        "delivered" => "Thank you for ordering with ONE MEDI.",
        "cancelled" => "If you paid online, the amount will be refunded to the original payment method.",
        "refunded" => "The refund has been issued to the original payment method.",
        _ => "",
    };
    let data = serde_json::json!({"order_id": order.id, "status": kind}).to_string();
    let mut conn = db.write().await?;
    let written = db::marketing::notify(
        &mut conn,
        order.user_id,
        &db::marketing::NewNotification {
            kind: "order",
            title: &title,
            body,
            data: &data,
            campaign_id: None,
        },
    )
    .await?;
    drop(conn);
    let event = crate::bus::Event::Notification {
        notification_id: written.id,
        kind: written.kind,
        title: written.title,
        body: written.body,
        data: serde_json::from_str(&written.data).unwrap_or_default(),
        at: chrono::Utc::now(),
    };
    bus.publish_event(&[format!("user:{}", order.user_id)], &event)
        .await;
    Ok(())
}

/// Claims and queues the reminders of confirmed appointments starting within `mail.reminder_lead_mins`.
/// Run periodically on every node: each claim is one conditional write, so a reminder is queued by
/// exactly one node. Returns how many this node queued.
pub async fn send_due_reminders(
    db: &Db,
    notifier: &Notifier,
    lead: chrono::TimeDelta,
) -> Result<usize, DbError> {
    let now = db::now();
    let due = {
        let mut conn = db.read().await?;
        db::mail::due_reminders(&mut conn, now, now + lead, REMINDER_BATCH).await?
    };
    let mut queued = 0;
    for id in due {
        let mut conn = db.write().await?;
        let won = db::mail::claim_reminder(&mut conn, id, now).await?;
        drop(conn);
        if won {
            notifier.enqueue(Job::AppointmentReminder(id));
            queued += 1;
        }
    }
    Ok(queued)
}
