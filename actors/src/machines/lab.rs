//! The home lab sample collection lifecycle, carried out by a phlebotomist.
//!
//! ```text
//! booked ─assign─▶ assigned ─depart─▶ en_route ─collect─▶ collected ─deliver_to_lab─▶ at_lab ─publish_report─▶ report_ready
//! assigned|en_route ─unassign─▶ unassigned ─assign─▶ assigned
//! cancel: from booked, assigned, en_route, unassigned
//! ```

use serde::{Deserialize, Serialize};

use super::{EntityKind, TransitionError};
use crate::ids::UnitId;

/// Where a lab collection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "phlebotomist", rename_all = "snake_case")]
pub enum LabStatus {
    /// Booked by the customer, nobody assigned yet.
    Booked,
    /// A phlebotomist was claimed for it.
    Assigned(UnitId),
    /// The phlebotomist is travelling to the customer.
    EnRoute(UnitId),
    /// The sample was drawn.
    Collected(UnitId),
    /// The sample reached the lab.
    AtLab,
    /// The report is published (terminal).
    ReportReady,
    /// The phlebotomist dropped out; waiting for another.
    Unassigned,
    /// Called off (terminal).
    Cancelled,
}

/// What can happen to a lab collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "phlebotomist", rename_all = "snake_case")]
pub enum LabEvent {
    /// A phlebotomist was claimed.
    Assign(UnitId),
    /// The phlebotomist set off.
    Depart,
    /// The sample was drawn.
    Collect,
    /// The sample was dropped at the lab.
    DeliverToLab,
    /// The lab published the report.
    PublishReport,
    /// The phlebotomist dropped out.
    Unassign,
    /// The customer or staff called it off.
    Cancel,
}

impl LabEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Assign(_) => "assign",
            Self::Depart => "depart",
            Self::Collect => "collect",
            Self::DeliverToLab => "deliver_to_lab",
            Self::PublishReport => "publish_report",
            Self::Unassign => "unassign",
            Self::Cancel => "cancel",
        }
    }
}

impl LabStatus {
    /// The state's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Assigned(_) => "assigned",
            Self::EnRoute(_) => "en_route",
            Self::Collected(_) => "collected",
            Self::AtLab => "at_lab",
            Self::ReportReady => "report_ready",
            Self::Unassigned => "unassigned",
            Self::Cancelled => "cancelled",
        }
    }

    /// The transition function.
    pub fn transition(&self, event: &LabEvent) -> Result<Self, TransitionError> {
        use LabEvent as E;
        use LabStatus as S;
        let next = match (*self, *event) {
            (S::Booked | S::Unassigned, E::Assign(p)) => S::Assigned(p),
            (S::Assigned(p), E::Depart) => S::EnRoute(p),
            (S::EnRoute(p), E::Collect) => S::Collected(p),
            (S::Collected(_), E::DeliverToLab) => S::AtLab,
            (S::AtLab, E::PublishReport) => S::ReportReady,
            (S::Assigned(_) | S::EnRoute(_), E::Unassign) => S::Unassigned,
            (S::Booked | S::Assigned(_) | S::EnRoute(_) | S::Unassigned, E::Cancel) => S::Cancelled,
            (state, event) => {
                return Err(TransitionError::Illegal {
                    kind: EntityKind::LabCollection,
                    state: state.name(),
                    event: event.name(),
                });
            }
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: UnitId = UnitId(5);

    #[test]
    fn a_collection_ends_with_a_ready_report() {
        let steps = [
            LabEvent::Assign(P),
            LabEvent::Depart,
            LabEvent::Collect,
            LabEvent::DeliverToLab,
            LabEvent::PublishReport,
        ];
        let end = steps
            .iter()
            .try_fold(LabStatus::Booked, |s, e| s.transition(e))
            .unwrap();
        assert_eq!(end, LabStatus::ReportReady);
    }

    #[test]
    fn an_unassigned_collection_can_be_given_to_another_phlebotomist() {
        let s = LabStatus::EnRoute(P).transition(&LabEvent::Unassign).unwrap();
        assert_eq!(
            s.transition(&LabEvent::Assign(UnitId(6))),
            Ok(LabStatus::Assigned(UnitId(6)))
        );
    }

    #[test]
    fn a_collected_sample_cannot_be_cancelled() {
        assert!(LabStatus::Collected(P).transition(&LabEvent::Cancel).is_err());
    }
}
