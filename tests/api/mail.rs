//! Customer e-mails and the PDF invoice: order mails written to the file outbox by default and sent to a
//! real SMTP server (aiosmtpd, started by the test) when configured, a dead mail server never failing a
//! request, appointment confirmations and reminders claimed once across nodes, and the invoice's owner
//! rule.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use onemedi::{config::SmtpSecurity, domain::Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{TestApp, spawn_app, spawn_app_with, spawn_second_node},
    shop::{Customer, add_to_cart, customer, medicine, order_body, shop},
    slots::{booking, doctor, first_slot, hold},
    ws_client::eventually,
};

/// The messages in a folder (`*.eml`), oldest name first.
pub(crate) fn messages(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// A header's value (first occurrence, unfolded).
fn header(message: &str, name: &str) -> Option<String> {
    let mut lines = message.lines();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if line.to_ascii_lowercase().starts_with(&prefix) {
            let mut value = line[prefix.len()..].trim().to_owned();
            for next in lines.by_ref() {
                if next.starts_with(' ') || next.starts_with('\t') {
                    value.push(' ');
                    value.push_str(next.trim());
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// Exactly `count` messages in `dir`, each written out to its closing MIME boundary (a file appears before
/// its content is written).
pub(crate) fn written(dir: &Path, count: usize) -> bool {
    let all = messages(dir);
    all.len() == count
        && all.iter().all(|m| {
            m.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim().starts_with("--") && l.trim().ends_with("--"))
        })
}

pub(crate) fn subjects(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .map(|m| header(m, "Subject").unwrap_or_default())
        .collect()
}

async fn email_of(app: &TestApp, who: &Customer) -> String {
    let mut conn = app.app.db.read().await.unwrap();
    onemedi::db::users::find(&mut conn, who.id)
        .await
        .unwrap()
        .unwrap()
        .email
        .unwrap()
}

/// A customer with one medicine in the cart; returns the customer.
async fn shopper(app: &TestApp) -> Customer {
    let (staff, pain) = shop(app).await;
    let med = medicine(
        app,
        &staff,
        pain,
        json!({"name": "Crocin Advance", "price_paise": 12_345, "mrp_paise": 13_000,
               "gst_rate_percent": 12, "stock": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let who = customer(app).await;
    add_to_cart(app, &who, med, 2).await;
    who
}

/// Places a cash-on-delivery order; returns (id, order number).
async fn place_cod(app: &TestApp, who: &Customer) -> (i64, String) {
    let reply = app
        .post("/api/v1/orders", &order_body(who, None), Some(&who.token))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (
        reply.body["id"].as_i64().unwrap(),
        reply.body["order_number"].as_str().unwrap().to_owned(),
    )
}

async fn set_status(app: &TestApp, staff: &str, order: i64, status: &str) {
    let reply = app
        .put(
            &format!("/api/v1/orders/{order}/status"),
            &json!({"status": status}),
            Some(staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// aiosmtpd on a free loopback port, saving messages into a folder; stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    folder: tempfile::TempDir,
}

impl SmtpSink {
    /// `None` (after a note) when python3 or aiosmtpd is missing outside CI; in CI that is a failure.
    fn start() -> Option<Self> {
        let folder = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let spawned = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(folder.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let unavailable = |why: String| {
            let message = format!(
                "the SMTP sink (python3 + aiosmtpd, {}) is unavailable: {why}; `pip install aiosmtpd` \
                 (scripts/services.sh does)",
                script.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
            eprintln!("skipped: {message}");
            None
        };
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => return unavailable(error.to_string()),
        };
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return unavailable(format!("it did not start (said {line:?})"));
        }
        Some(Self { child, port, folder })
    }

    fn messages(&self) -> Vec<String> {
        messages(self.folder.path())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_cash_on_delivery_order_mails_its_confirmation_into_the_outbox_by_default() {
    let app = spawn_app().await;
    assert!(!app.app.mailer.is_smtp());
    let who = shopper(&app).await;
    let (order_id, number) = place_cod(&app, &who).await;
    let outbox = app.data_dir.path().join("outbox/mail");
    eventually(async || written(&outbox, 1)).await;
    let mail = &messages(&outbox)[0];
    let to = header(mail, "To").unwrap();
    assert!(to.contains(&email_of(&app, &who).await), "{to}");
    assert_eq!(
        header(mail, "Subject").unwrap(),
        format!("Order {number} confirmed")
    );
    assert!(header(mail, "From").unwrap().contains("no-reply@onemedi.local"));
    assert!(header(mail, "Date").is_some() && header(mail, "Message-ID").is_some());
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );

    // The customer cancels: one more mail, saying so.
    let reply = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    eventually(async || written(&outbox, 2)).await;
    assert!(
        subjects(&messages(&outbox)).contains(&format!("Order {number} has been cancelled")),
        "{:?}",
        subjects(&messages(&outbox))
    );
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("onemedi_mail_messages_total{outcome=\"sent\"} 2"),
        "{text}"
    );
}

#[actix_web::test]
async fn an_online_order_is_confirmed_by_mail_once_its_payment_is_captured() {
    let app = spawn_app().await;
    let who = shopper(&app).await;
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": who.address_id, "payment_method": "razorpay"}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order_id = reply.body["id"].as_i64().unwrap();
    let number = reply.body["order_number"].as_str().unwrap().to_owned();
    let created = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"order_id": order_id}),
            Some(&who.token),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let checkout = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": created.body["razorpay_order_id"]}),
            Some(&who.token),
        )
        .await;
    assert_eq!(checkout.status, StatusCode::OK, "{}", checkout.body);
    let outbox = app.data_dir.path().join("outbox/mail");
    assert!(
        messages(&outbox).is_empty(),
        "an unpaid online order is not confirmed by mail"
    );
    let verified = app
        .post("/api/v1/payments/verify", &checkout.body, Some(&who.token))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    eventually(async || written(&outbox, 1)).await;
    assert_eq!(
        subjects(&messages(&outbox)),
        vec![format!("Order {number} confirmed")]
    );
}

#[actix_web::test]
async fn order_mails_are_delivered_to_a_real_smtp_server() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let port = sink.port;
    let app = spawn_app_with(|s| {
        s.mail.smtp_host = "127.0.0.1".to_owned();
        s.mail.smtp_port = port;
        s.mail.smtp_security = SmtpSecurity::None;
    })
    .await;
    assert!(app.app.mailer.is_smtp());
    let who = shopper(&app).await;
    let email = email_of(&app, &who).await;
    let (order_id, number) = place_cod(&app, &who).await;
    eventually(async || sink.messages().len() == 1).await;
    let first = &sink.messages()[0];
    assert_eq!(header(first, "X-Envelope-To").unwrap(), email);
    assert_eq!(
        header(first, "Subject").unwrap(),
        format!("Order {number} confirmed")
    );

    let (staff, _) = app.user_with_role(Role::Staff).await;
    for status in ["confirmed", "packed", "shipped", "out_for_delivery", "delivered"] {
        set_status(&app, &staff, order_id, status).await;
    }
    eventually(async || sink.messages().len() == 4).await;
    let mut got = subjects(&sink.messages());
    got.sort();
    let mut expected = vec![
        format!("Order {number} confirmed"),
        format!("Order {number} has been shipped"),
        format!("Order {number} is out for delivery"),
        format!("Order {number} has been delivered"),
    ];
    expected.sort();
    assert_eq!(got, expected, "confirmed (again) and packed are not mailed");
    for mail in sink.messages() {
        assert_eq!(header(&mail, "X-Envelope-To").unwrap(), email);
    }
    assert!(
        app.data_dir.path().join("outbox/mail").read_dir().is_err()
            || messages(&app.data_dir.path().join("outbox/mail")).is_empty(),
        "nothing went to the file outbox"
    );
}

#[actix_web::test]
async fn an_unreachable_mail_server_never_fails_the_order_and_is_counted() {
    // A port nothing listens on: every attempt is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|s| {
        s.mail.smtp_host = "127.0.0.1".to_owned();
        s.mail.smtp_port = port;
        s.mail.smtp_security = SmtpSecurity::None;
        s.mail.max_attempts = 2;
        s.mail.retry_backoff_ms = 10;
    })
    .await;
    let who = shopper(&app).await;
    place_cod(&app, &who).await;
    let counters = app.app.metrics.mail.clone();
    eventually(async || counters.failed.load(std::sync::atomic::Ordering::Relaxed) == 1).await;
    assert_eq!(counters.retried.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(counters.sent.load(std::sync::atomic::Ordering::Relaxed), 0);
}

/// Byte offsets of `N 0 obj` per the cross-reference table must point at those objects.
fn assert_xref_matches(pdf: &[u8]) {
    let find_last = |needle: &[u8]| pdf.windows(needle.len()).rposition(|w| w == needle);
    let after = find_last(b"startxref").unwrap() + "startxref".len();
    let start: usize = String::from_utf8_lossy(&pdf[after..])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let table = String::from_utf8_lossy(&pdf[start..]);
    assert!(table.starts_with("xref"), "startxref points at the table");
    let mut lines = table.lines().skip(1);
    let header: Vec<usize> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (first, count) = (header[0], header[1]);
    assert!(count > 5, "catalog, pages, fonts, info and a page");
    for (n, line) in lines.take(count).enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[2] == "n" {
            let offset: usize = fields[0].parse().unwrap();
            let expected = format!("{} 0 obj", first + n);
            assert!(
                pdf[offset..].starts_with(expected.as_bytes()),
                "object {} is where the table says",
                first + n
            );
        }
    }
}

#[actix_web::test]
async fn the_invoice_is_a_pdf_for_the_owner_and_staff_once_the_order_is_confirmed() {
    let app = spawn_app().await;
    let who = shopper(&app).await;
    let (order_id, number) = place_cod(&app, &who).await;
    let path = format!("/api/v1/orders/{order_id}/invoice.pdf");
    let early = app.get(&path, Some(&who.token)).await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::CONFLICT, "invoice_not_available")
    );
    let (staff, _) = app.user_with_role(Role::Staff).await;
    set_status(&app, &staff, order_id, "confirmed").await;

    let response = app
        .client
        .get(app.url(&path))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/pdf"
    );
    let pdf = response.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
    assert_xref_matches(&pdf);
    let text = String::from_utf8_lossy(&pdf);
    // 2 × 123.45 = 246.90; GST 12 % = 29.63; delivery 49.00 → 325.53.
    for expected in [
        format!("(Invoice no: INV-{number})"),
        "(Crocin Advance)".to_owned(),
        "(123.45)".to_owned(),
        "(246.90)".to_owned(),
        "(12%)".to_owned(),
        "(29.63)".to_owned(),
        "(49.00)".to_owned(),
        "(Rs. 325.53)".to_owned(),
        "(GSTIN: 29AAAAA0000A1Z5)".to_owned(),
        "(Asha Rao)".to_owned(),
    ] {
        assert!(text.contains(&expected), "the invoice shows {expected}");
    }

    let staff_copy = app.get(&path, Some(&staff)).await;
    assert_eq!(staff_copy.status, StatusCode::OK);
    let other = customer(&app).await;
    let refused = app.get(&path, Some(&other.token)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let missing = app
        .get("/api/v1/orders/999999/invoice.pdf", Some(&who.token))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = app.get(&path, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_appointment_is_confirmed_by_mail_and_reminded_once_across_two_nodes() {
    let app = spawn_app_with(|s| {
        // Every slot of the next week is due for its reminder; the sweep itself is left to the test.
        s.mail.reminder_lead_mins = 7 * 24 * 60;
        s.mail.reminder_sweep_secs = 3600;
    })
    .await;
    let other = spawn_second_node(&app).await;
    let (_, doctor_id) = doctor(&app, "General Physician").await;
    let slot = first_slot(&app, doctor_id).await;
    let who = customer(&app).await;
    let held = hold(&app, slot, &who.token).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    let booked = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&who.token))
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);

    let outbox = app.data_dir.path().join("outbox/mail");
    eventually(async || written(&outbox, 1)).await;
    let confirmation = &messages(&outbox)[0];
    assert!(
        header(confirmation, "To")
            .unwrap()
            .contains(&email_of(&app, &who).await)
    );
    assert!(
        header(confirmation, "Subject").unwrap().ends_with("is confirmed"),
        "{confirmation}"
    );

    // Both nodes sweep at once: one claim wins.
    let lead = app.app.settings.mail.reminder_lead();
    let (a, b) = tokio::join!(
        onemedi::notify::send_due_reminders(&app.app.db, &app.app.notifier, lead),
        onemedi::notify::send_due_reminders(&other.app.db, &other.app.notifier, lead),
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "exactly one node queues the reminder");
    let reminders = || {
        [&app, &other]
            .iter()
            .flat_map(|node| messages(&node.data_dir.path().join("outbox/mail")))
            .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Reminder: ")))
            .count()
    };
    eventually(async || reminders() == 1).await;
    assert_eq!(
        onemedi::notify::send_due_reminders(&app.app.db, &app.app.notifier, lead)
            .await
            .unwrap(),
        0,
        "a sent reminder is not sent again"
    );
}
