//! The event bus: events are published after their write commits, fanned out in-process to this
//! node's sessions and fleet index, and — with Redis configured — relayed through Redis pub/sub to
//! every other node, which delivers them the same way. Each relayed message carries the publishing
//! node's id, so a node skips its own messages and nothing arrives twice.
//!
//! Delivery is at most once: a node that is disconnected from Redis misses what is published
//! meanwhile (clients re-read state over REST after reconnecting).
//!
//! A unit's status reaches clients only through `unit_status` events. Each node keeps the last one it
//! delivered for every unit (its status board) and writes it into the unit's location pings as it
//! delivers them, so a ping never repeats a status older than one the node has already announced.

pub mod event;
mod redis_bridge;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use chrono::Utc;
use onemedi_actors::{
    dispatch::{CancelDispatch, OfferSettled, OfferedElsewhere, SupplyChanged},
    events::{DomainEvent, Topic},
    fleet::{Capabilities, FleetIndex, Unit, UnitStatus},
    ids::UnitId,
    ports::{BoxFuture, BusError, EventBus},
    position::Position,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::event::{EVENT_VERSION, Event, UnitLocation};
use crate::{dispatch::DispatchLink, ws::hub::Hub};

/// The fleet index of this node, shared by the bus (which feeds it) and whoever searches it.
pub type SharedFleet = Arc<Mutex<FleetIndex>>;

/// Locks the fleet index; the critical sections are microseconds and never await.
pub fn lock_fleet(fleet: &SharedFleet) -> MutexGuard<'_, FleetIndex> {
    fleet.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a relayed message looks like in Redis.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<'a> {
    /// The publishing node; receivers skip their own.
    node: &'a str,
    topics: Vec<String>,
    event: Value,
}

/// How many locks the status board is split over: pings of different units rarely wait for each other.
const STATUS_SHARDS: usize = 64;

/// The last status delivered on this node for each unit it has heard of (from a `unit_status` event,
/// this node's or relayed, or read from the database before any was heard).
///
/// A unit's shard stays locked while one of its `unit_status` events or pings is delivered and queued
/// for the relay, so on every node, and through Redis to the others, they keep the order in which the
/// board saw them: a ping delivered after a status change carries that status or a newer one.
struct StatusBoard {
    shards: Box<[Mutex<HashMap<i64, String>>]>,
}

impl StatusBoard {
    fn new() -> Self {
        Self {
            shards: (0..STATUS_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Locks the shard of `unit`; the critical sections never await.
    fn shard(&self, unit: i64) -> MutexGuard<'_, HashMap<i64, String>> {
        let index = usize::try_from(unit.rem_euclid(STATUS_SHARDS as i64)).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The unit a status or location event is about, if it is one of those.
fn unit_of(event: &Value) -> Option<i64> {
    match event["type"].as_str() {
        Some("unit_status" | "unit_location") => event["unit_id"].as_i64(),
        _ => None,
    }
}

/// This node's receivers of events: its sessions (through the hub) and its fleet index.
pub struct Local {
    node_id: String,
    hub: Arc<Hub>,
    fleet: SharedFleet,
    statuses: StatusBoard,
    /// This node's dispatcher, told about offers settled and requests ended anywhere.
    dispatcher: OnceLock<DispatchLink>,
    /// This node's lab offer rounds, woken by answers settled anywhere.
    lab: OnceLock<Arc<crate::dispatch::lab::LabDesk>>,
    /// Sees every event this node publishes (not those relayed from other nodes), so a side effect
    /// such as an e-mail happens once per event across the cluster. Must not block.
    observer: OnceLock<Observer>,
}

/// A callback on this node's own publications.
pub type Observer = Box<dyn Fn(&Value) + Send + Sync>;

impl Local {
    /// Delivers one event (an actor's domain event, or any event relayed from another node) to this
    /// node's fleet index, dispatcher, lab desk and the sessions subscribed to `topics`. A relayed
    /// `unit_status` goes on the status board; a relayed ping takes the board's status for its unit,
    /// since the sending node may not have heard of a change announced here yet.
    fn deliver(&self, topics: &[String], event: &Value) {
        let Some(unit) = unit_of(event) else {
            return self.deliver_value(topics, event);
        };
        let mut board = self.statuses.shard(unit);
        let status = event["status"].as_str();
        if event["type"] == "unit_status" {
            if let Some(status) = status {
                board.insert(unit, status.to_owned());
            }
        } else if let Some(known) = board.get(&unit)
            && status != Some(known.as_str())
        {
            let mut restated = event.clone();
            restated["status"] = Value::from(known.as_str());
            return self.deliver_value(topics, &restated);
        }
        self.deliver_value(topics, event);
    }

    fn deliver_value(&self, topics: &[String], event: &Value) {
        feed_fleet(&self.fleet, event);
        if let Some(link) = self.dispatcher.get() {
            feed_dispatcher(link, event);
        }
        if let Some(lab) = self.lab.get() {
            lab.feed(event);
        }
        let Ok(text) = serde_json::to_string(event) else {
            return;
        };
        let kind = if event["type"] == "offer_made" {
            "offer"
        } else {
            "event"
        };
        self.fan_out(topics, kind, &text);
    }

    /// Delivers one of this server's own events, already serialised as `text`, without a round trip
    /// through a JSON tree: location pings arrive tens of thousands of times a second. None of these
    /// events concerns the dispatcher or the lab desk (they follow the actors' domain events).
    fn deliver_own(&self, topics: &[String], event: &Event, text: &str) {
        feed_fleet_event(&self.fleet, event);
        if let Event::UnitStatus { status, .. } = event
            && status == "available"
            && let Some(link) = self.dispatcher.get()
        {
            link.supply.do_send(SupplyChanged);
        }
        self.fan_out(topics, "event", text);
    }

    /// Hands one `{"type": kind, "topic": …, "event": …}` frame per topic to its subscribed sessions.
    fn fan_out(&self, topics: &[String], kind: &str, text: &str) {
        for topic in topics {
            if self.hub.subscribers(topic) == 0 {
                continue;
            }
            let topic_json = serde_json::to_string(topic).unwrap_or_else(|_| "\"\"".to_owned());
            let frame = format!(r#"{{"type":"{kind}","topic":{topic_json},"event":{text}}}"#);
            self.hub.deliver(topic, &frame);
        }
    }
}

/// Publishes events to this node and, when configured, to every other node.
#[derive(Clone)]
pub struct Bus {
    local: Arc<Local>,
    /// Present with Redis: where this node's events are relayed to the others.
    relay: Option<redis_bridge::Relay>,
}

impl Bus {
    /// An in-process bus.
    pub fn local(hub: Arc<Hub>, fleet: SharedFleet) -> Self {
        Self {
            local: Arc::new(Local {
                node_id: uuid::Uuid::new_v4().simple().to_string(),
                hub,
                fleet,
                statuses: StatusBoard::new(),
                dispatcher: OnceLock::new(),
                lab: OnceLock::new(),
                observer: OnceLock::new(),
            }),
            relay: None,
        }
    }

    /// A bus relayed through Redis on the channel `{key_prefix}:events`. Returns once this node is
    /// subscribed, so events published by other nodes from then on reach it.
    pub async fn with_redis(
        hub: Arc<Hub>,
        fleet: SharedFleet,
        client: redis::Client,
        publisher: redis::aio::ConnectionManager,
        key_prefix: &str,
    ) -> anyhow::Result<Self> {
        let mut bus = Self::local(hub, fleet);
        let channel = format!("{key_prefix}:events");
        redis_bridge::subscribe(client, channel.clone(), bus.local.clone()).await?;
        bus.relay = Some(redis_bridge::Relay::start(publisher, channel));
        Ok(bus)
    }

    /// Routes settled offers and ended requests to this node's dispatcher from now on (once).
    pub fn attach_dispatcher(&self, link: DispatchLink) {
        if self.local.dispatcher.set(link).is_err() {
            tracing::warn!("a dispatcher was already attached to this bus");
        }
    }

    /// Wakes this node's lab offer rounds from now on (once).
    pub fn attach_lab(&self, desk: Arc<crate::dispatch::lab::LabDesk>) {
        if self.local.lab.set(desk).is_err() {
            tracing::warn!("a lab desk was already attached to this bus");
        }
    }

    /// Calls `observer` with every event this node publishes from now on (once).
    pub fn observe(&self, observer: Observer) {
        if self.local.observer.set(observer).is_err() {
            tracing::warn!("an observer was already attached to this bus");
        }
    }

    /// This node's id in relayed messages.
    pub fn node_id(&self) -> &str {
        &self.local.node_id
    }

    /// Publishes `event` (versioned JSON) on `topics`. Call only after the write it describes has
    /// committed. Never fails: a relay failure is logged and the local delivery still happens.
    pub async fn publish(&self, topics: &[String], event: Value) {
        self.local.deliver(topics, &event);
        if let Some(observer) = self.local.observer.get() {
            observer(&event);
        }
        let Some(relay) = &self.relay else {
            return;
        };
        let envelope = Envelope {
            node: &self.local.node_id,
            topics: topics.to_vec(),
            event,
        };
        match serde_json::to_string(&envelope) {
            Ok(text) => relay.send(text),
            Err(error) => tracing::warn!(error = %error, "event not relayed: unserialisable"),
        }
    }

    /// Publishes one of the server's own events. It is serialised once, straight to text, for the
    /// local sessions and the relay alike. A `unit_status` goes on this node's status board; a
    /// `unit_location` goes out with the board's status for its unit when the board has one.
    pub async fn publish_event(&self, topics: &[String], event: &Event) {
        let unit = match event {
            Event::UnitStatus { unit_id, .. } => Some(*unit_id),
            Event::UnitLocation(ping) => Some(ping.unit_id),
            _ => None,
        };
        let mut board = unit.map(|unit| self.local.statuses.shard(unit));
        let restated;
        let event = match (event, board.as_deref_mut()) {
            (Event::UnitStatus { unit_id, status, .. }, Some(board)) => {
                board.insert(*unit_id, status.clone());
                event
            }
            (Event::UnitLocation(ping), Some(board)) => match board.get(&ping.unit_id) {
                Some(known) if *known != ping.status => {
                    restated = Event::UnitLocation(UnitLocation {
                        status: known.clone(),
                        ..ping.clone()
                    });
                    &restated
                }
                _ => event,
            },
            _ => event,
        };
        let text = event.to_text();
        self.local.deliver_own(topics, event, &text);
        if let Some(relay) = &self.relay {
            let node = serde_json::to_string(&self.local.node_id);
            let topics = serde_json::to_string(topics);
            match (node, topics) {
                // The same shape as `Envelope`, written around the event's text instead of re-serialising it.
                (Ok(node), Ok(topics)) => {
                    relay.send(format!(r#"{{"node":{node},"topics":{topics},"event":{text}}}"#))
                }
                _ => tracing::warn!("event not relayed: unserialisable"),
            }
        }
        drop(board);
        let ping = matches!(event, Event::UnitLocation(_) | Event::RiderLocation { .. });
        if !ping && let Some(observer) = self.local.observer.get() {
            observer(&event.to_json());
        }
    }

    /// The status this node last delivered for `unit`, if it has heard of one.
    pub fn unit_status(&self, unit: i64) -> Option<String> {
        self.local.statuses.shard(unit).get(&unit).cloned()
    }

    /// Puts `stored`, read from the database, on the status board unless a status for `unit` was
    /// delivered meanwhile (that one is newer: it was published after its commit). Returns the board's
    /// status for the unit.
    pub fn learn_unit_status(&self, unit: i64, stored: &str) -> String {
        self.local
            .statuses
            .shard(unit)
            .entry(unit)
            .or_insert_with(|| stored.to_owned())
            .clone()
    }

    /// Announces a committed order status change on `order:{id}`.
    pub async fn order_status_changed(&self, order_id: i64, from: &str, to: &str, cause: &str) {
        let event = Event::OrderStatusChanged {
            order_id,
            from: from.to_owned(),
            to: to.to_owned(),
            cause: cause.to_owned(),
            at: Utc::now(),
        };
        self.publish_event(&[format!("order:{order_id}")], &event).await;
    }
}

impl EventBus for Bus {
    fn publish(&self, topic: Topic, event: DomainEvent) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut topics = vec![topic.as_str().to_owned()];
            // Dispatcher consoles follow every request and every offer.
            if topic.as_str().starts_with("ambulance_request:") || topic.as_str().starts_with("unit:") {
                topics.push("dispatch".to_owned());
            }
            Bus::publish(self, &topics, event.to_json()).await;
            Ok(())
        })
    }
}

/// Tells the dispatcher what it must know from the bus: an offer accepted, assigned or declined on any
/// node, and a request cancelled or closed. Every node's dispatcher is told; only the one running the
/// request's cascade acts.
fn feed_dispatcher(link: &DispatchLink, event: &Value) {
    let relevant = matches!(
        event["type"].as_str(),
        Some(
            "unit_assigned"
                | "offer_made"
                | "offer_declined"
                | "offer_expired"
                | "claim_lost"
                | "state_changed"
                | "unit_status"
        )
    );
    if !relevant {
        return;
    }
    // A unit freed anywhere (back in service, on duty, released by a cancellation, or let go by a
    // declined, lapsed or lost offer) may be what a waiting call needs.
    let freed = match event["type"].as_str() {
        Some("unit_status") => event["status"] == "available",
        Some("offer_declined" | "offer_expired" | "claim_lost") => true,
        _ => false,
    };
    if freed {
        link.supply.do_send(SupplyChanged);
    }
    match DomainEvent::deserialize(event) {
        Ok(DomainEvent::OfferMade {
            request,
            unit,
            expires_at,
            ..
        }) => link.offered.do_send(OfferedElsewhere {
            job: request,
            unit,
            expires_at,
        }),
        Ok(DomainEvent::UnitAssigned { request, unit }) => link.settled.do_send(OfferSettled {
            job: request,
            unit,
            accepted: true,
        }),
        Ok(DomainEvent::OfferDeclined { request, unit } | DomainEvent::ClaimLost { request, unit }) => {
            link.settled.do_send(OfferSettled {
                job: request,
                unit,
                accepted: false,
            })
        }
        // The job is over, or (an order) has left the pharmacy: no rider offers any more.
        Ok(DomainEvent::StateChanged { entity, to, .. })
            if matches!(to.as_str(), "cancelled" | "closed" | "shipped" | "delivered") =>
        {
            link.cancel.do_send(CancelDispatch(entity));
        }
        _ => {}
    }
}

/// Applies `unit_location` and `unit_status` events to the fleet index; other events are ignored.
fn feed_fleet(fleet: &SharedFleet, event: &Value) {
    if !matches!(event["type"].as_str(), Some("unit_location" | "unit_status")) {
        return;
    }
    if let Ok(event) = Event::deserialize(event) {
        feed_fleet_event(fleet, &event);
    }
}

/// Applies a location or status event to the fleet index; other events are ignored.
fn feed_fleet_event(fleet: &SharedFleet, event: &Event) {
    match event {
        Event::UnitLocation(ping) => {
            let Ok(position) = Position::new(ping.lat, ping.lng) else {
                return;
            };
            let mut index = lock_fleet(fleet);
            let known = index.get(UnitId(ping.unit_id)).copied();
            let unit = Unit {
                id: UnitId(ping.unit_id),
                kind: ping.kind,
                position,
                heading_deg: ping.heading as f32,
                speed_mps: ping.speed as f32,
                status: known.map_or_else(|| fleet_status(&ping.status), |unit| unit.status),
                capabilities: known.map_or_else(
                    || Capabilities::from_bits(ping.capabilities),
                    |unit| unit.capabilities,
                ),
                last_seen: ping.at,
            };
            if let Err(error) = index.upsert(unit) {
                tracing::debug!(unit = ping.unit_id, error = %error, "position not indexed");
            }
        }
        Event::UnitStatus { unit_id, status, .. } => {
            lock_fleet(fleet).set_status(UnitId(*unit_id), fleet_status(status));
        }
        _ => {}
    }
}

/// The fleet index's view of a stored unit status: only `available` is ever offered work.
pub fn fleet_status(stored: &str) -> UnitStatus {
    match stored {
        "available" => UnitStatus::Available,
        "off_duty" | "unavailable" => UnitStatus::OffDuty,
        "busy" => UnitStatus::Busy,
        _ => UnitStatus::Assigned,
    }
}

/// A location event for `unit` received now.
pub fn location_event(ping: UnitLocation) -> Event {
    Event::UnitLocation(UnitLocation {
        at: Utc::now(),
        ..ping
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use onemedi_actors::fleet::UnitKind;

    fn ping(unit_id: i64) -> UnitLocation {
        UnitLocation {
            unit_id,
            kind: UnitKind::Rider,
            lat: 12.97,
            lng: 77.59,
            heading: 90.0,
            speed: 5.0,
            accuracy: Some(8.0),
            ts: None,
            status: "available".into(),
            capabilities: 0,
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_published_location_reaches_the_fleet_index_and_the_subscribed_session() {
        let hub = Arc::new(Hub::default());
        let fleet = SharedFleet::default();
        let bus = Bus::local(hub.clone(), fleet.clone());
        let (link, mut frames) = hub.open(4);
        hub.subscribe("unit:7", &link);
        bus.publish_event(&["unit:7".into(), "dispatch".into()], &location_event(ping(7)))
            .await;
        let frame = frames.try_recv().unwrap();
        let value: Value = serde_json::from_str(frame.payload()).unwrap();
        assert_eq!(value["type"], "event");
        assert_eq!(value["topic"], "unit:7");
        assert_eq!(value["event"]["type"], "unit_location");
        assert_eq!(value["event"]["v"], 1);
        let index = lock_fleet(&fleet);
        let unit = index.get(UnitId(7)).unwrap();
        assert_eq!(unit.status, UnitStatus::Available);
    }

    #[tokio::test]
    async fn a_status_event_changes_the_indexed_status() {
        let fleet = SharedFleet::default();
        let bus = Bus::local(Arc::new(Hub::default()), fleet.clone());
        bus.publish_event(&["unit:8".into()], &location_event(ping(8)))
            .await;
        let status = Event::UnitStatus {
            unit_id: 8,
            status: "busy".into(),
            at: Utc::now(),
        };
        bus.publish_event(&["unit:8".into()], &status).await;
        assert_eq!(
            lock_fleet(&fleet).get(UnitId(8)).unwrap().status,
            UnitStatus::Busy
        );
    }

    fn status(unit_id: i64, status: &str) -> Event {
        Event::UnitStatus {
            unit_id,
            status: status.into(),
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_ping_goes_out_with_the_last_announced_status_not_the_one_it_was_built_with() {
        let hub = Arc::new(Hub::default());
        let bus = Bus::local(hub.clone(), SharedFleet::default());
        let (link, mut frames) = hub.open(8);
        hub.subscribe("dispatch", &link);
        bus.publish_event(&["dispatch".into()], &status(9, "en_route"))
            .await;
        bus.publish_event(&["dispatch".into()], &location_event(ping(9)))
            .await;
        let announced: Value = serde_json::from_str(frames.try_recv().unwrap().payload()).unwrap();
        assert_eq!(announced["event"]["status"], "en_route");
        let pinged: Value = serde_json::from_str(frames.try_recv().unwrap().payload()).unwrap();
        assert_eq!(pinged["event"]["type"], "unit_location");
        assert_eq!(pinged["event"]["status"], "en_route");
        assert_eq!(bus.unit_status(9).as_deref(), Some("en_route"));
    }

    #[tokio::test]
    async fn a_relayed_ping_takes_the_status_this_node_announced_and_a_relayed_status_is_kept() {
        let hub = Arc::new(Hub::default());
        let bus = Bus::local(hub.clone(), SharedFleet::default());
        let (link, mut frames) = hub.open(8);
        hub.subscribe("dispatch", &link);
        bus.publish_event(&["dispatch".into()], &status(10, "on_scene"))
            .await;
        frames.try_recv().unwrap();
        // Another node's ping, sent before that node heard of the change announced here.
        let relayed = location_event(ping(10)).to_json();
        bus.local.deliver(&["dispatch".into()], &relayed);
        let pinged: Value = serde_json::from_str(frames.try_recv().unwrap().payload()).unwrap();
        assert_eq!(pinged["event"]["status"], "on_scene");
        bus.local
            .deliver(&["dispatch".into()], &status(10, "transporting").to_json());
        assert_eq!(bus.unit_status(10).as_deref(), Some("transporting"));
    }

    #[tokio::test]
    async fn a_status_read_from_the_database_never_replaces_one_announced_meanwhile() {
        let bus = Bus::local(Arc::new(Hub::default()), SharedFleet::default());
        assert_eq!(bus.unit_status(11), None);
        assert_eq!(bus.learn_unit_status(11, "available"), "available");
        bus.publish_event(&["unit:11".into()], &status(11, "assigned"))
            .await;
        assert_eq!(bus.learn_unit_status(11, "available"), "assigned");
        assert_eq!(bus.unit_status(11).as_deref(), Some("assigned"));
    }
}
