//! A simulated crew (ambulance, delivery rider or phlebotomist): signs in, follows its unit's topic,
//! reports positions along street-like routes, answers offers after a moment's thought, and works each
//! job it is given through the same REST steps a real crew's app sends.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, anyhow};
use chrono::Utc;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    Shared,
    client::{Api, Outbox},
    geo::{Point, Route, random_near},
};

/// Ground speeds in metres per second before the simulation's speed factor: an ambulance on blue lights
/// in city traffic, a rider on a scooter, a phlebotomist on a two-wheeler, anyone idling about.
const AMBULANCE_SPEED: f64 = 12.0;
const RIDER_SPEED: f64 = 8.0;
const COLLECTOR_SPEED: f64 = 7.0;
const IDLE_SPEED: f64 = 4.0;

/// How far from home an idle unit wanders.
const IDLE_RADIUS_M: f64 = 1_500.0;

/// Seconds (before the speed factor) a crew spends with the patient, at the hospital, at a doorstep.
const ON_SCENE_SECS: u64 = 30;
const HANDOVER_SECS: u64 = 15;

/// Pause before reconnecting a dropped session.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

/// What the unit is doing on its current job.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leg {
    /// Driving to the patient.
    ToScene,
    /// With the patient until the deadline.
    OnScene(Instant),
    /// Driving to the hospital.
    ToHospital,
    /// Handing over until the deadline.
    HandingOver(Instant),
}

#[derive(Debug)]
struct Job {
    kind: String,
    id: i64,
    leg: Leg,
    route: Route,
}

/// An offer waiting for the crew's answer.
#[derive(Debug)]
struct Pending {
    request: i64,
    due: Instant,
    accept: bool,
}

struct Crew {
    api: Api,
    shared: Arc<Shared>,
    unit: i64,
    kind: String,
    home: Point,
    at: Point,
    heading: f64,
    speed: f64,
    rng: StdRng,
    job: Option<Job>,
    wander: Option<Route>,
    rest_until: Option<Instant>,
    pending: Option<Pending>,
}

/// Runs one crew until the simulation stops; a dropped session is reopened.
pub async fn run(shared: Arc<Shared>, email: String) -> anyhow::Result<()> {
    let api = Api::login(&shared.base, &email, &shared.settings.password).await?;
    let unit = api
        .get("/api/v1/emergency/my-unit")
        .await
        .context("the unit this account crews")?;
    let id = unit["id"].as_i64().ok_or_else(|| anyhow!("unit without an id"))?;
    let home = Point {
        lat: unit["home"]["lat"]
            .as_f64()
            .unwrap_or(super::geo::CITY_CENTRE.lat),
        lng: unit["home"]["lng"]
            .as_f64()
            .unwrap_or(super::geo::CITY_CENTRE.lng),
    };
    let at = match (unit["position"]["lat"].as_f64(), unit["position"]["lng"].as_f64()) {
        (Some(lat), Some(lng)) => Point { lat, lng },
        _ => home,
    };
    let mut crew = Crew {
        api,
        unit: id,
        kind: unit["kind"].as_str().unwrap_or("bls").to_owned(),
        home,
        at,
        heading: 0.0,
        speed: 0.0,
        rng: StdRng::from_os_rng(),
        job: None,
        wander: None,
        rest_until: None,
        pending: None,
        shared,
    };
    loop {
        if let Err(error) = crew.session().await {
            tracing::warn!(unit = crew.unit, error = %format!("{error:#}"), "simulated crew: session ended");
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

impl Crew {
    /// One websocket session: subscribe, go available, then ticks and frames until it drops.
    async fn session(&mut self) -> anyhow::Result<()> {
        let (mut out, mut inbox) = self.api.socket().await?;
        out.send(json!({"type": "subscribe", "topic": format!("unit:{}", self.unit)}))
            .await?;
        if self.job.is_none() {
            out.send(json!({"type": "status", "status": "available"})).await?;
        }
        let mut tick = tokio::time::interval(self.shared.settings.ping_interval());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                frame = inbox.next() => match frame {
                    Some(frame) => self.on_frame(&frame),
                    None => return Err(anyhow!("the server closed the session")),
                },
                _ = tick.tick() => self.on_tick(&mut out).await?,
            }
        }
    }

    fn on_frame(&mut self, frame: &Value) {
        let event = &frame["event"];
        match (frame["type"].as_str(), event["type"].as_str()) {
            (Some("offer"), _) => {
                let Some(request) = event["request"]["id"].as_i64() else {
                    return;
                };
                let think = Duration::from_millis(self.rng.random_range(800..4_000));
                let accept = self.rng.random_range(0..100) < self.shared.settings.accept_percent;
                self.pending = Some(Pending {
                    request,
                    due: Instant::now() + think,
                    accept,
                });
            }
            (Some("event"), Some("unit_assigned")) if event["unit"].as_i64() == Some(self.unit) => {
                let (Some(kind), Some(id)) =
                    (event["request"]["kind"].as_str(), event["request"]["id"].as_i64())
                else {
                    return;
                };
                self.pending = None;
                self.wander = None;
                self.job = Some(Job {
                    kind: kind.to_owned(),
                    id,
                    leg: Leg::ToScene,
                    route: Route::default(),
                });
                tracing::info!(unit = self.unit, kind, id, "simulated crew: assigned");
            }
            (Some("event"), Some("state_changed")) => {
                let ended = matches!(event["to"].as_str(), Some("cancelled"));
                let ours = self.job.as_ref().is_some_and(|job| {
                    event["entity"]["kind"].as_str() == Some(job.kind.as_str())
                        && event["entity"]["id"].as_i64() == Some(job.id)
                });
                if ended && ours {
                    tracing::info!(unit = self.unit, "simulated crew: job called off");
                    self.job = None;
                }
            }
            _ => {}
        }
    }

    async fn on_tick(&mut self, out: &mut Outbox) -> anyhow::Result<()> {
        if let Some(pending) = self.pending.take_if(|p| p.due <= Instant::now()) {
            let answer = if pending.accept { "accept" } else { "decline" };
            let mut frame = json!({"type": answer, "request_id": pending.request, "ref": answer});
            if !pending.accept {
                frame["reason"] = json!("crew on a break");
            }
            out.send(frame).await?;
        }
        let seconds =
            self.shared.settings.ping_interval().as_secs_f64() * self.shared.settings.speed_factor();
        if self.job.is_some() {
            self.work(seconds).await;
        } else {
            self.idle(seconds);
        }
        let speed = self.speed.clamp(0.0, 85.0);
        out.send(json!({
            "type": "location",
            "lat": self.at.lat,
            "lng": self.at.lng,
            "heading": self.heading,
            "speed": speed,
            "accuracy": self.rng.random_range(4.0..15.0),
            "ts": Utc::now().timestamp_millis(),
        }))
        .await
    }

    /// Idle: wander near home, resting now and then.
    fn idle(&mut self, seconds: f64) {
        let now = Instant::now();
        if self.rest_until.is_some_and(|until| until > now) {
            self.speed = 0.0;
            return;
        }
        let route = match &mut self.wander {
            Some(route) if !route.arrived() => route,
            _ => {
                if self.wander.take().is_some() {
                    let rest = self.rng.random_range(10..60);
                    self.rest_until = Some(now + Duration::from_secs(rest));
                    self.speed = 0.0;
                    return;
                }
                let target = random_near(&mut self.rng, self.home, IDLE_RADIUS_M);
                self.wander.insert(Route::new(&mut self.rng, self.at, target))
            }
        };
        self.speed = IDLE_SPEED * self.shared.settings.speed_factor();
        if let Some(heading) = route.advance(&mut self.at, IDLE_SPEED * seconds) {
            self.heading = heading;
        }
    }

    fn job_speed(&self) -> f64 {
        match self.kind.as_str() {
            "rider" => RIDER_SPEED,
            "phlebotomist" => COLLECTOR_SPEED,
            _ => AMBULANCE_SPEED,
        }
    }

    /// Moves the current job on; a refused step (the job was cancelled or reassigned) drops the job.
    async fn work(&mut self, seconds: f64) {
        let result = match self.job.as_ref().map(|job| job.kind.as_str()) {
            Some("ambulance_request") => self.ambulance_step(seconds).await,
            Some("order") => self.delivery_step(seconds).await,
            Some("lab_collection") => self.collection_step(seconds).await,
            Some(other) => Err(anyhow!("jobs of kind {other} are not simulated")),
            None => Ok(()),
        };
        if let Err(error) = result {
            tracing::info!(unit = self.unit, error = %format!("{error:#}"), "simulated crew: job dropped");
            self.job = None;
            self.speed = 0.0;
        }
    }

    /// Drives along the job's route; true on arrival.
    fn drive(&mut self, seconds: f64) -> bool {
        let speed = self.job_speed();
        let Some(job) = self.job.as_mut() else {
            return false;
        };
        self.speed = speed * self.shared.settings.speed_factor();
        if let Some(heading) = job.route.advance(&mut self.at, speed * seconds) {
            self.heading = heading;
        }
        if job.route.arrived() {
            self.speed = 0.0;
            return true;
        }
        false
    }

    async fn set_status(&self, status: &str, hospital: Option<i64>) -> anyhow::Result<()> {
        let mut body = json!({"status": status});
        if let Some(hospital) = hospital {
            body["hospital_id"] = json!(hospital);
        }
        self.api
            .put(&format!("/api/v1/emergency/units/{}/status", self.unit), &body)
            .await?
            .ok()
            .map(drop)
            .with_context(|| format!("moving to {status}"))
    }

    fn scaled(&self, secs: u64) -> Duration {
        Duration::from_secs_f64(secs as f64 / self.shared.settings.speed_factor())
    }

    async fn ambulance_step(&mut self, seconds: f64) -> anyhow::Result<()> {
        let Some(job) = self.job.as_ref() else {
            return Ok(());
        };
        let (id, leg, routed) = (job.id, job.leg, !job.route.arrived());
        let path = format!("/api/v1/emergency/ambulance-requests/{id}");
        match leg {
            Leg::ToScene if !routed => {
                let request = self.api.get(&path).await?;
                let scene = Point {
                    lat: request["pickup"]["lat"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("pickup"))?,
                    lng: request["pickup"]["lng"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("pickup"))?,
                };
                if request["status"] == "assigned" {
                    self.set_status("en_route", None).await?;
                }
                let route = Route::new(&mut self.rng, self.at, scene);
                if let Some(job) = self.job.as_mut() {
                    job.route = route;
                }
                // A route of zero length (already there) arrives on the next tick.
                self.drive(seconds);
            }
            Leg::ToScene => {
                if self.drive(seconds) {
                    self.set_status("on_scene", None).await?;
                    let until = Instant::now() + self.scaled(ON_SCENE_SECS);
                    self.set_leg(Leg::OnScene(until));
                }
            }
            Leg::OnScene(until) if until <= Instant::now() => {
                let request = self.api.get(&path).await?;
                let hospital = match request["recommended_destinations"][0]["hospital_id"].as_i64() {
                    Some(hospital) => hospital,
                    None => self.any_hospital().await?,
                };
                let place = self.api.get(&format!("/api/v1/hospitals/{hospital}")).await?;
                let target = Point {
                    lat: place["lat"].as_f64().ok_or_else(|| anyhow!("hospital lat"))?,
                    lng: place["lng"].as_f64().ok_or_else(|| anyhow!("hospital lng"))?,
                };
                self.set_status("transporting", Some(hospital)).await?;
                let route = Route::new(&mut self.rng, self.at, target);
                if let Some(job) = self.job.as_mut() {
                    job.route = route;
                    job.leg = Leg::ToHospital;
                }
            }
            Leg::OnScene(_) => self.speed = 0.0,
            Leg::ToHospital => {
                if self.drive(seconds) {
                    self.set_status("at_destination", None).await?;
                    self.set_status("handed_over", None).await?;
                    let until = Instant::now() + self.scaled(HANDOVER_SECS);
                    self.set_leg(Leg::HandingOver(until));
                }
            }
            Leg::HandingOver(until) if until <= Instant::now() => {
                self.set_status("back_in_service", None).await?;
                tracing::info!(unit = self.unit, request = id, "simulated crew: back in service");
                self.job = None;
            }
            Leg::HandingOver(_) => self.speed = 0.0,
        }
        Ok(())
    }

    /// Starts driving the current job to `target`.
    fn route_to(&mut self, target: Point) {
        let route = Route::new(&mut self.rng, self.at, target);
        if let Some(job) = self.job.as_mut() {
            job.route = route;
        }
    }

    /// A rider's delivery: pick up (`shipped`), set out (`out_for_delivery`), ride to the door, and
    /// hand over with the code the customer reads out (the simulated customers share theirs).
    async fn delivery_step(&mut self, seconds: f64) -> anyhow::Result<()> {
        let Some(job) = self.job.as_ref() else {
            return Ok(());
        };
        let (id, leg, routed) = (job.id, job.leg, !job.route.arrived());
        let status_path = format!("/api/v1/orders/{id}/status");
        match leg {
            Leg::ToScene if !routed => {
                let order = self.api.get(&format!("/api/v1/orders/{id}")).await?;
                let door = Point {
                    lat: order["shipping"]["lat"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("shipping lat"))?,
                    lng: order["shipping"]["lng"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("shipping lng"))?,
                };
                for status in ["shipped", "out_for_delivery"] {
                    let step = order["status"].as_str() == Some("packed")
                        || (status == "out_for_delivery"
                            && order["status"].as_str() != Some("out_for_delivery"));
                    if step {
                        self.api
                            .put(&status_path, &json!({"status": status}))
                            .await?
                            .ok()?;
                    }
                }
                self.route_to(door);
                self.drive(seconds);
            }
            Leg::ToScene => {
                if self.drive(seconds) {
                    let until = Instant::now() + self.scaled(HANDOVER_SECS);
                    self.set_leg(Leg::HandingOver(until));
                }
            }
            Leg::HandingOver(until) if until <= Instant::now() => {
                let code = self.shared.delivery_code(id);
                let Some(code) = code else {
                    return Err(anyhow!(
                        "the customer of order {id} is not simulated; nobody gives the code"
                    ));
                };
                self.api
                    .post(&format!("/api/v1/orders/{id}/deliver"), &json!({"code": code}))
                    .await?
                    .ok()
                    .context("handing over")?;
                tracing::info!(unit = self.unit, order = id, "simulated rider: delivered");
                self.job = None;
            }
            _ => self.speed = 0.0,
        }
        Ok(())
    }

    /// A phlebotomist's home collection: set out, draw the samples at the door, take them to the lab
    /// (the collector's base).
    async fn collection_step(&mut self, seconds: f64) -> anyhow::Result<()> {
        let Some(job) = self.job.as_ref() else {
            return Ok(());
        };
        let (id, leg, routed) = (job.id, job.leg, !job.route.arrived());
        let status_path = format!("/api/v1/lab-collections/{id}/status");
        match leg {
            Leg::ToScene if !routed => {
                let collection = self.api.get(&format!("/api/v1/lab-collections/{id}")).await?;
                let door = Point {
                    lat: collection["lat"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("collection lat"))?,
                    lng: collection["lng"]
                        .as_f64()
                        .ok_or_else(|| anyhow!("collection lng"))?,
                };
                if collection["status"] == "assigned" {
                    self.api
                        .put(&status_path, &json!({"status": "en_route"}))
                        .await?
                        .ok()?;
                }
                self.route_to(door);
                self.drive(seconds);
            }
            Leg::ToScene => {
                if self.drive(seconds) {
                    let until = Instant::now() + self.scaled(ON_SCENE_SECS);
                    self.set_leg(Leg::OnScene(until));
                }
            }
            Leg::OnScene(until) if until <= Instant::now() => {
                self.api
                    .put(&status_path, &json!({"status": "collected"}))
                    .await?
                    .ok()?;
                self.route_to(self.home);
                self.set_leg(Leg::ToHospital);
            }
            Leg::ToHospital => {
                if self.drive(seconds) {
                    self.api
                        .put(&status_path, &json!({"status": "at_lab"}))
                        .await?
                        .ok()?;
                    tracing::info!(
                        unit = self.unit,
                        collection = id,
                        "simulated phlebotomist: samples at the lab"
                    );
                    self.job = None;
                }
            }
            _ => self.speed = 0.0,
        }
        Ok(())
    }

    fn set_leg(&mut self, leg: Leg) {
        if let Some(job) = self.job.as_mut() {
            job.leg = leg;
        }
    }

    /// The nearest hospital when none has a free emergency bed: the patient still goes somewhere.
    async fn any_hospital(&self) -> anyhow::Result<i64> {
        let near = self
            .api
            .get(&format!("/api/v1/hospitals?near={},{}", self.at.lat, self.at.lng))
            .await?;
        near["items"][0]["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("no hospital in the city"))
    }
}
