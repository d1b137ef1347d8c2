//! Blood groups, components and the transfusion compatibility rules, as pure functions.
//!
//! The rules, per component (recipient ← donor):
//! - **Red cells**: the donor's cells must carry no ABO antigen the recipient lacks (O gives to all,
//!   AB+ receives from all), and an Rh-negative recipient only gets Rh-negative cells.
//! - **Platelets**: follow the red-cell rules. Platelet units carry residual red cells and anti-D
//!   sensitisation is the main risk for Rh-negative recipients, so the conservative red-cell matrix is
//!   used rather than the looser plasma-minimising practice some banks allow.
//! - **Plasma**: reversed ABO (the donor's plasma must carry no antibody against the recipient's cells):
//!   AB gives to all, O receives from all. Rh does not matter for plasma.
//! - **Whole blood**: carries both cells and plasma, so it must be ABO-identical, and Rh-compatible
//!   like red cells.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Days a donor waits after a donation before giving again.
pub const MIN_DAYS_BETWEEN_DONATIONS: i64 = 90;

/// An ABO/Rh blood group; the wire form is `A+`, `O-`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum BloodGroup {
    #[serde(rename = "A+")]
    APos,
    #[serde(rename = "A-")]
    ANeg,
    #[serde(rename = "B+")]
    BPos,
    #[serde(rename = "B-")]
    BNeg,
    #[serde(rename = "AB+")]
    AbPos,
    #[serde(rename = "AB-")]
    AbNeg,
    #[serde(rename = "O+")]
    OPos,
    #[serde(rename = "O-")]
    ONeg,
}

impl BloodGroup {
    pub const ALL: [BloodGroup; 8] = [
        Self::APos,
        Self::ANeg,
        Self::BPos,
        Self::BNeg,
        Self::AbPos,
        Self::AbNeg,
        Self::OPos,
        Self::ONeg,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::APos => "A+",
            Self::ANeg => "A-",
            Self::BPos => "B+",
            Self::BNeg => "B-",
            Self::AbPos => "AB+",
            Self::AbNeg => "AB-",
            Self::OPos => "O+",
            Self::ONeg => "O-",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// (carries the A antigen, carries the B antigen)
    fn antigens(self) -> (bool, bool) {
        match self {
            Self::APos | Self::ANeg => (true, false),
            Self::BPos | Self::BNeg => (false, true),
            Self::AbPos | Self::AbNeg => (true, true),
            Self::OPos | Self::ONeg => (false, false),
        }
    }

    pub fn rh_positive(self) -> bool {
        matches!(self, Self::APos | Self::BPos | Self::AbPos | Self::OPos)
    }
}

impl fmt::Display for BloodGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A blood product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    WholeBlood,
    RedCells,
    Plasma,
    Platelets,
}

impl Component {
    pub const ALL: [Component; 4] = [Self::WholeBlood, Self::RedCells, Self::Plasma, Self::Platelets];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WholeBlood => "whole_blood",
            Self::RedCells => "red_cells",
            Self::Plasma => "plasma",
            Self::Platelets => "platelets",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Whether `recipient` may receive `component` from a `donor` of that group (see the module docs).
pub fn compatible(component: Component, recipient: BloodGroup, donor: BloodGroup) -> bool {
    let (ra, rb) = recipient.antigens();
    let (da, db) = donor.antigens();
    let rh_ok = recipient.rh_positive() || !donor.rh_positive();
    match component {
        // The donor's cells carry no antigen the recipient's plasma attacks.
        Component::RedCells | Component::Platelets => (!da || ra) && (!db || rb) && rh_ok,
        // The donor's plasma carries no antibody against an antigen on the recipient's cells.
        Component::Plasma => (!ra || da) && (!rb || db),
        Component::WholeBlood => (ra, rb) == (da, db) && rh_ok,
    }
}

/// The donor groups `recipient` may receive `component` from, in order of preference: the exact group
/// first, then the other compatible groups with the scarce universal donors (O-, and AB for plasma) last.
pub fn donor_groups(component: Component, recipient: BloodGroup) -> Vec<BloodGroup> {
    let scarcity = |g: BloodGroup| -> u8 {
        match (component, g) {
            (_, g) if g == recipient => 0,
            (Component::Plasma, BloodGroup::AbNeg) => 3,
            (Component::Plasma, BloodGroup::AbPos) => 2,
            (Component::Plasma, _) => 1,
            (_, BloodGroup::ONeg) => 3,
            (_, BloodGroup::OPos) => 2,
            _ => 1,
        }
    };
    let mut groups: Vec<BloodGroup> = BloodGroup::ALL
        .into_iter()
        .filter(|&donor| compatible(component, recipient, donor))
        .collect();
    groups.sort_by_key(|&g| scarcity(g));
    groups
}

/// A donor may give when they say they are available and their last donation (if any) was at least
/// [`MIN_DAYS_BETWEEN_DONATIONS`] days before `today`.
pub fn donor_eligible(available: bool, last_donation: Option<NaiveDate>, today: NaiveDate) -> bool {
    available && last_donation.is_none_or(|day| (today - day).num_days() >= MIN_DAYS_BETWEEN_DONATIONS)
}

/// The last day a donation may have happened for the donor to be eligible on `today`.
pub fn latest_eligible_donation(today: NaiveDate) -> NaiveDate {
    today - chrono::TimeDelta::days(MIN_DAYS_BETWEEN_DONATIONS)
}

/// How soon blood is needed; decides how long reservations are held and when the request lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routine => "routine",
            Self::Urgent => "urgent",
            Self::Critical => "critical",
        }
    }

    /// How long a bank holds reserved units for the request: short for critical needs, so stock that
    /// is not collected goes back to others quickly.
    pub fn hold(self) -> chrono::TimeDelta {
        match self {
            Self::Critical => chrono::TimeDelta::hours(6),
            Self::Urgent => chrono::TimeDelta::hours(24),
            Self::Routine => chrono::TimeDelta::hours(72),
        }
    }

    /// How long the request stays open.
    pub fn lifetime(self) -> chrono::TimeDelta {
        match self {
            Self::Critical => chrono::TimeDelta::hours(24),
            Self::Urgent => chrono::TimeDelta::hours(72),
            Self::Routine => chrono::TimeDelta::days(7),
        }
    }
}

/// A blood request's stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Nothing reserved or pledged yet.
    Open,
    /// Some units reserved or pledged, fewer than needed.
    PartiallyReserved,
    /// Bank stock alone covers every unit (no donor was needed).
    Reserved,
    /// Reserved plus pledged units cover the need, with donors' help.
    Fulfilled,
    Cancelled,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::PartiallyReserved => "partially_reserved",
            Self::Reserved => "reserved",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Open,
            Self::PartiallyReserved,
            Self::Reserved,
            Self::Fulfilled,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether donors may still pledge: only while units are missing.
    pub fn accepts_pledges(self) -> bool {
        matches!(self, Self::Open | Self::PartiallyReserved)
    }

    /// Whether the request may be cancelled (and its held stock released).
    pub fn may_cancel(self) -> bool {
        !matches!(self, Self::Cancelled | Self::Expired)
    }

    /// The status of a live request with these counts (the one rule for open → partially_reserved →
    /// reserved | fulfilled).
    pub fn for_counts(needed: i32, reserved: i32, pledged: i32) -> Self {
        if reserved >= needed {
            Self::Reserved
        } else if reserved.saturating_add(pledged) >= needed {
            Self::Fulfilled
        } else if reserved > 0 || pledged > 0 {
            Self::PartiallyReserved
        } else {
            Self::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BloodGroup::*, Component::*, *};

    fn receivers(component: Component, donor: BloodGroup) -> Vec<&'static str> {
        BloodGroup::ALL
            .into_iter()
            .filter(|&r| compatible(component, r, donor))
            .map(BloodGroup::as_str)
            .collect()
    }

    #[test]
    fn o_negative_red_cells_go_to_everyone_and_ab_positive_receives_from_everyone() {
        assert_eq!(receivers(RedCells, ONeg).len(), 8);
        assert!(
            BloodGroup::ALL
                .into_iter()
                .all(|d| compatible(RedCells, AbPos, d))
        );
        assert_eq!(receivers(RedCells, AbPos), ["AB+"]);
        assert_eq!(receivers(RedCells, APos), ["A+", "AB+"]);
        assert_eq!(receivers(RedCells, BNeg), ["B+", "B-", "AB+", "AB-"]);
    }

    #[test]
    fn rh_negative_recipients_get_only_rh_negative_cells() {
        for recipient in [ANeg, BNeg, AbNeg, ONeg] {
            for donor in BloodGroup::ALL {
                for component in [RedCells, Platelets, WholeBlood] {
                    if donor.rh_positive() {
                        assert!(!compatible(component, recipient, donor), "{recipient} ← {donor}");
                    }
                }
            }
        }
        assert_eq!(donor_groups(RedCells, ONeg), [ONeg]);
        assert_eq!(donor_groups(RedCells, ANeg), [ANeg, ONeg]);
    }

    #[test]
    fn plasma_is_reversed_ab_gives_to_all_and_o_receives_from_all() {
        assert_eq!(receivers(Plasma, AbNeg).len(), 8);
        assert!(BloodGroup::ALL.into_iter().all(|d| compatible(Plasma, ONeg, d)));
        assert_eq!(receivers(Plasma, OPos), ["O+", "O-"]);
        assert!(compatible(Plasma, ANeg, APos), "Rh does not matter for plasma");
        assert!(!compatible(Plasma, APos, OPos));
    }

    #[test]
    fn whole_blood_is_abo_identical_and_rh_compatible() {
        assert_eq!(donor_groups(WholeBlood, APos), [APos, ANeg]);
        assert_eq!(donor_groups(WholeBlood, ANeg), [ANeg]);
        assert!(!compatible(WholeBlood, AbPos, ONeg));
        assert!(!compatible(WholeBlood, OPos, APos));
    }

    #[test]
    fn the_exact_group_comes_first_and_universal_donors_last() {
        assert_eq!(donor_groups(RedCells, AbPos)[0], AbPos);
        assert_eq!(donor_groups(RedCells, AbPos).last(), Some(&ONeg));
        assert_eq!(donor_groups(RedCells, APos), [APos, ANeg, OPos, ONeg]);
        assert_eq!(donor_groups(Plasma, OPos)[0], OPos);
        assert_eq!(donor_groups(Plasma, OPos).last(), Some(&AbNeg));
        assert_eq!(donor_groups(Platelets, BPos), [BPos, BNeg, OPos, ONeg]);
    }

    #[test]
    fn a_donor_waits_ninety_days_and_must_be_available() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let days_ago = |n| Some(today - chrono::TimeDelta::days(n));
        assert!(donor_eligible(true, None, today));
        assert!(donor_eligible(true, days_ago(90), today));
        assert!(!donor_eligible(true, days_ago(89), today));
        assert!(!donor_eligible(true, days_ago(30), today));
        assert!(!donor_eligible(false, None, today));
        assert_eq!(latest_eligible_donation(today), days_ago(90).unwrap());
    }

    #[test]
    fn groups_and_components_parse_their_wire_names_only() {
        for g in BloodGroup::ALL {
            assert_eq!(BloodGroup::parse(g.as_str()), Some(g));
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str());
        }
        assert_eq!(BloodGroup::parse("C+"), None);
        assert_eq!(BloodGroup::parse("a+"), None);
        assert_eq!(Component::parse("plasma"), Some(Plasma));
        assert_eq!(Component::parse("blood"), None);
    }

    #[test]
    fn status_follows_the_counts() {
        use RequestStatus as S;
        assert_eq!(S::for_counts(3, 0, 0), S::Open);
        assert_eq!(S::for_counts(3, 1, 0), S::PartiallyReserved);
        assert_eq!(S::for_counts(3, 0, 2), S::PartiallyReserved);
        assert_eq!(S::for_counts(3, 3, 0), S::Reserved);
        assert_eq!(S::for_counts(3, 2, 1), S::Fulfilled);
        assert_eq!(S::for_counts(3, 0, 3), S::Fulfilled);
        assert!(S::PartiallyReserved.accepts_pledges());
        assert!(!S::Fulfilled.accepts_pledges());
        assert!(S::Fulfilled.may_cancel() && !S::Cancelled.may_cancel());
    }
}
