//! The phlebotomist's day plan: the order of collection stops and lab drops so that no sample outlives
//! its stability window before it reaches the lab. A pure function over the day's collections.
//!
//! Stops are visited window by window. Inside a window the longest-lived samples are drawn first and the
//! shortest-lived last (the latest deadline goes first, so the earliest deadline is collected closest to
//! the drop). Before each next stop the planner checks every sample in the box: if going on to that stop
//! and then to the lab would reach the lab after any sample's deadline, it drops at the lab first. A
//! collection is at risk when even this plan brings its sample to the lab later than its deadline minus
//! the margin, or reaches the customer after the window closes.

use chrono::{NaiveDateTime, TimeDelta};
use onemedi_actors::{
    fleet::{UnitKind, eta_for},
    position::Position,
};
use serde::Serialize;
use utoipa::ToSchema;

/// Time at the door to draw, label and pack the samples.
pub const SERVICE_TIME: TimeDelta = TimeDelta::minutes(15);
/// Time to hand the box over at the lab.
pub const DROP_TIME: TimeDelta = TimeDelta::minutes(10);

/// One collection as the planner sees it.
#[derive(Debug, Clone)]
pub struct PlannedCollection {
    pub id: i64,
    pub at: Position,
    /// The booked window, UTC.
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    /// The shortest stability window among its samples.
    pub stability: TimeDelta,
    /// Set when the sample is already drawn and in the box.
    pub collected_at: Option<NaiveDateTime>,
}

/// A stop of the plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouteStop {
    /// `collect` or `lab_drop`.
    pub kind: &'static str,
    /// The collection drawn here (`collect`), or those handed over (`lab_drop`).
    pub collection_ids: Vec<i64>,
    pub lat: f64,
    pub lng: f64,
    /// Planned arrival, UTC.
    pub arrive_at: NaiveDateTime,
    /// For `collect`: when this sample expires if collected at `arrive_at`.
    pub sample_deadline: Option<NaiveDateTime>,
}

/// The day's plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plan {
    pub stops: Vec<RouteStop>,
    /// Collections whose sample would reach the lab too close to (or past) its deadline, or whose
    /// window would be missed.
    pub at_risk: Vec<i64>,
}

fn travel(from: Position, to: Position) -> TimeDelta {
    TimeDelta::from_std(eta_for(UnitKind::Phlebotomist, from.distance_m(to))).unwrap_or(TimeDelta::zero())
}

/// Plans the day starting at `start` from `origin`, dropping samples at `lab`.
pub fn plan(
    origin: Position,
    lab: Position,
    start: NaiveDateTime,
    margin: TimeDelta,
    collections: &[PlannedCollection],
) -> Plan {
    let mut stops = Vec::new();
    let mut at_risk = Vec::new();
    let mut carried: Vec<(i64, NaiveDateTime)> = collections
        .iter()
        .filter_map(|c| Some((c.id, c.collected_at? + c.stability)))
        .collect();
    let mut pending: Vec<&PlannedCollection> =
        collections.iter().filter(|c| c.collected_at.is_none()).collect();
    pending.sort_by(|a, b| {
        a.window_start
            .cmp(&b.window_start)
            .then(b.stability.cmp(&a.stability))
            .then(a.id.cmp(&b.id))
    });
    let mut t = start;
    let mut here = origin;
    let drop_off = |t: &mut NaiveDateTime,
                    here: &mut Position,
                    carried: &mut Vec<(i64, NaiveDateTime)>,
                    stops: &mut Vec<RouteStop>,
                    at_risk: &mut Vec<i64>| {
        *t += travel(*here, lab);
        *here = lab;
        for (id, deadline) in carried.iter() {
            if *t + margin > *deadline && !at_risk.contains(id) {
                at_risk.push(*id);
            }
        }
        stops.push(RouteStop {
            kind: "lab_drop",
            collection_ids: carried.iter().map(|(id, _)| *id).collect(),
            lat: lab.lat(),
            lng: lab.lng(),
            arrive_at: *t,
            sample_deadline: None,
        });
        carried.clear();
        *t += DROP_TIME;
    };
    for next in pending {
        if !carried.is_empty() {
            let arrive = (t + travel(here, next.at)).max(next.window_start);
            let at_lab_after = arrive + SERVICE_TIME + travel(next.at, lab);
            if carried
                .iter()
                .any(|(_, deadline)| at_lab_after + margin > *deadline)
            {
                drop_off(&mut t, &mut here, &mut carried, &mut stops, &mut at_risk);
            }
        }
        let arrive = (t + travel(here, next.at)).max(next.window_start);
        if arrive > next.window_end {
            at_risk.push(next.id);
        }
        let deadline = arrive + next.stability;
        stops.push(RouteStop {
            kind: "collect",
            collection_ids: vec![next.id],
            lat: next.at.lat(),
            lng: next.at.lng(),
            arrive_at: arrive,
            sample_deadline: Some(deadline),
        });
        carried.push((next.id, deadline));
        t = arrive + SERVICE_TIME;
        here = next.at;
    }
    if !carried.is_empty() {
        drop_off(&mut t, &mut here, &mut carried, &mut stops, &mut at_risk);
    }
    Plan { stops, at_risk }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    fn near(dlat: f64) -> Position {
        Position::new(12.97 + dlat, 77.59).unwrap()
    }

    fn collection(id: i64, dlat: f64, window: (u32, u32), hours: i64) -> PlannedCollection {
        PlannedCollection {
            id,
            at: near(dlat),
            window_start: at(window.0, 0),
            window_end: at(window.1, 0),
            stability: TimeDelta::hours(hours),
            collected_at: None,
        }
    }

    #[test]
    fn short_lived_samples_are_drawn_last_and_dropped_before_they_expire() {
        let day = [
            collection(1, 0.01, (7, 9), 2),
            collection(2, 0.02, (7, 9), 24),
            collection(3, 0.015, (12, 14), 2),
        ];
        let plan = plan(near(0.0), near(0.0), at(6, 30), TimeDelta::minutes(15), &day);
        let order: Vec<(&str, Vec<i64>)> = plan
            .stops
            .iter()
            .map(|s| (s.kind, s.collection_ids.clone()))
            .collect();
        assert_eq!(
            order,
            [
                ("collect", vec![2]),
                ("collect", vec![1]),
                ("lab_drop", vec![2, 1]),
                ("collect", vec![3]),
                ("lab_drop", vec![3]),
            ]
        );
        assert!(plan.at_risk.is_empty(), "{:?}", plan.at_risk);
    }

    #[test]
    fn a_sample_that_cannot_reach_the_lab_in_time_is_flagged() {
        let mut drawn = collection(4, 0.3, (7, 9), 1);
        drawn.collected_at = Some(at(7, 0));
        // ~33 km of road at 20 km/h from the lab: far more than the hour the sample lasts.
        let plan = plan(near(0.3), near(0.0), at(7, 5), TimeDelta::minutes(15), &[drawn]);
        assert_eq!(plan.at_risk, [4]);
        assert_eq!(plan.stops.last().unwrap().kind, "lab_drop");
    }
}
