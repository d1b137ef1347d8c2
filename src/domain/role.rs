//! The roles a user can hold, and what each may do in broad strokes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Staff,
    Partner,
    Admin,
    Doctor,
    Dispatcher,
    Paramedic,
    Phlebotomist,
    Rider,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Customer,
        Role::Staff,
        Role::Partner,
        Role::Admin,
        Role::Doctor,
        Role::Dispatcher,
        Role::Paramedic,
        Role::Phlebotomist,
        Role::Rider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Staff => "staff",
            Self::Partner => "partner",
            Self::Admin => "admin",
            Self::Doctor => "doctor",
            Self::Dispatcher => "dispatcher",
            Self::Paramedic => "paramedic",
            Self::Phlebotomist => "phlebotomist",
            Self::Rider => "rider",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert_eq!(Role::parse("root"), None);
    }
}
