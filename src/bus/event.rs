//! The events this server publishes itself, as versioned JSON `{"type": …, "v": 1, …}`. The actors'
//! domain events (`offer_made`, `unit_assigned`, …) travel the same bus in the same form.

use chrono::{DateTime, Utc};
use onemedi_actors::fleet::UnitKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema version every event carries as `"v"`; bump it when a payload changes incompatibly.
pub const EVENT_VERSION: u32 = 1;

/// Events raised by the server's own writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A user changed their name or phone (on `user:{id}`).
    ProfileUpdated {
        user_id: i64,
        name: String,
        phone: Option<String>,
        at: DateTime<Utc>,
    },
    /// A unit reported its position (on `unit:{id}` and `dispatch`); feeds every node's fleet index.
    UnitLocation(UnitLocation),
    /// A unit's stored status changed (on `unit:{id}` and `dispatch`), whoever changed it: its crew, a
    /// job's step, an assignment, a cancellation, a delivery. The one way clients learn a new status.
    UnitStatus {
        unit_id: i64,
        /// Availability (`available`, `busy`, `off_duty`) or a job's stage (`assigned`, `en_route`,
        /// `on_scene`, `transporting`, `at_destination`).
        status: String,
        at: DateTime<Utc>,
    },
    /// A request's response clock predicts a breach of its ARP target (on `ambulance_request:{id}` and
    /// `dispatch`), announced once per request.
    BreachPredicted {
        request_id: i64,
        category: i32,
        elapsed_s: f64,
        eta_s: Option<f64>,
        predicted_s: Option<f64>,
        target_s: u64,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A hospital's available beds changed (on `dispatch`, for routing patients).
    HospitalBeds {
        hospital_id: i64,
        general_available: i32,
        icu_available: i32,
        emergency_available: i32,
        version: i64,
        at: DateTime<Utc>,
    },
    /// A customer placed a pharmacy order (on `order:{id}` and `user:{id}`); it starts `pending`.
    OrderPlaced {
        order_id: i64,
        user_id: i64,
        order_number: String,
        /// `razorpay` or `cod`.
        payment_method: String,
        total_paise: i64,
        at: DateTime<Utc>,
    },
    /// A pharmacy order changed status (on `order:{id}`), e.g. confirmed by its captured payment.
    OrderStatusChanged {
        order_id: i64,
        from: String,
        to: String,
        /// What moved it: `payment_captured`, `staff`, `rider`, `customer`, `delivery_code`.
        cause: String,
        at: DateTime<Utc>,
    },
    /// Money paid for an order went back to the customer (on `order:{id}`): the refund owed by its
    /// cancellation was processed by the payment provider.
    OrderRefunded {
        order_id: i64,
        refund_id: i64,
        amount_paise: i64,
        at: DateTime<Utc>,
    },
    /// A new entry in a user's notifications inbox (on `user:{id}`): a campaign or an order update.
    Notification {
        notification_id: i64,
        /// `campaign` or `order`.
        kind: String,
        title: String,
        body: String,
        /// What it is about, e.g. `{"order_id": 7}` or `{"campaign_id": 3}`.
        data: serde_json::Value,
        at: DateTime<Utc>,
    },
    /// A rider accepted an order's delivery (on `order:{id}`).
    RiderAssigned {
        order_id: i64,
        unit_id: i64,
        call_sign: String,
        at: DateTime<Utc>,
    },
    /// The rider carrying an order reported its position (on `order:{id}`, while the order is theirs).
    RiderLocation {
        order_id: i64,
        unit_id: i64,
        lat: f64,
        lng: f64,
        heading: f64,
        /// Metres per second.
        speed: f64,
        /// Estimated seconds to the delivery address (same speed profile as ambulance ETAs).
        eta_s: f64,
        at: DateTime<Utc>,
    },
    /// A blood request was created, pledged to or cancelled (on `blood_request:{id}`).
    BloodRequestProgress {
        request_id: i64,
        /// `created`, `pledged`, `cancelled`, `expired` or `hold_expired` (a bank's hold lapsed and its
        /// units went back to stock).
        change: String,
        status: String,
        units_needed: i32,
        units_reserved: i32,
        units_pledged: i32,
        at: DateTime<Utc>,
    },
    /// A compatible, eligible donor near a blood request is asked to help (on the donor's `user:{id}`).
    BloodRequestNearby {
        request_id: i64,
        blood_group: String,
        component: String,
        units_needed: i32,
        urgency: String,
        hospital_id: Option<i64>,
        /// Straight-line distance from the donor's saved location, metres.
        distance_m: i64,
        at: DateTime<Utc>,
    },
}

/// One location ping as it travels the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitLocation {
    pub unit_id: i64,
    pub kind: UnitKind,
    pub lat: f64,
    pub lng: f64,
    /// Degrees clockwise from north.
    pub heading: f64,
    /// Metres per second.
    pub speed: f64,
    /// Horizontal accuracy in metres, when the device gave one.
    pub accuracy: Option<f64>,
    /// Device time of the fix (Unix milliseconds), when given.
    pub ts: Option<i64>,
    /// The unit's status as last announced to the delivering node (read from the database if it has
    /// announced none yet): what a node that has not heard of the unit indexes it with. It only repeats
    /// `unit_status` events and never changes a status a client already knows; the fleet index, too,
    /// keeps the status it has.
    pub status: String,
    /// Capability bits of the unit.
    pub capabilities: u32,
    /// When the server received the ping.
    pub at: DateTime<Utc>,
}

impl Event {
    /// The versioned wire form.
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Default::default()));
        if let Some(object) = value.as_object_mut() {
            object.insert("v".to_owned(), EVENT_VERSION.into());
        }
        value
    }

    /// The event as JSON text with its `"v"`, serialised directly (the same content as [`Self::to_json`]).
    pub fn to_text(&self) -> String {
        let Ok(mut text) = serde_json::to_string(self) else {
            return self.to_json().to_string();
        };
        // A tagged enum always serialises as a non-empty object: the version goes in as its last member.
        if text.len() > 2 && text.ends_with('}') {
            text.pop();
            text.push_str(&format!(",\"v\":{EVENT_VERSION}}}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_text_is_the_same_event_as_the_json_tree() {
        let events = [
            Event::UnitLocation(UnitLocation {
                unit_id: 4,
                kind: UnitKind::AmbulanceAls,
                lat: 12.97,
                lng: 77.59,
                heading: 90.5,
                speed: 11.0,
                accuracy: None,
                ts: Some(1_795_000_000_000),
                status: "available".into(),
                capabilities: 3,
                at: Utc::now(),
            }),
            Event::Notification {
                notification_id: 9,
                kind: "campaign".into(),
                title: "Monsoon \"care\" week".into(),
                body: "{not json}".into(),
                data: serde_json::json!({"campaign_id": 3, "v": 0}),
                at: Utc::now(),
            },
        ];
        for event in events {
            let parsed: Value = serde_json::from_str(&event.to_text()).unwrap();
            assert_eq!(parsed, event.to_json());
            assert_eq!(parsed["v"], EVENT_VERSION);
        }
    }

    #[test]
    fn events_carry_their_type_and_version() {
        let json = Event::UnitStatus {
            unit_id: 3,
            status: "busy".into(),
            at: Utc::now(),
        }
        .to_json();
        assert_eq!(json["type"], "unit_status");
        assert_eq!(json["v"], 1);
        assert_eq!(json["unit_id"], 3);
    }
}
