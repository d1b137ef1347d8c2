//! Newtype identifiers, so a unit id can never be passed where an order id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_id!(
    /// A dispatchable unit: an ambulance, a delivery rider or a phlebotomist.
    UnitId
);
int_id!(
    /// An emergency ambulance request.
    AmbulanceRequestId
);
int_id!(
    /// A blood request raised by a hospital or a patient's family.
    BloodRequestId
);
int_id!(
    /// A pharmacy order and its delivery.
    OrderId
);
int_id!(
    /// One bookable slot in a doctor's calendar.
    SlotId
);
int_id!(
    /// A home sample collection for a lab test.
    LabCollectionId
);
int_id!(
    /// A person using the platform (customer, dispatcher, crew, doctor, ...).
    UserId
);

/// Longest accepted command id; idempotency keys are short tokens, not payloads.
pub const COMMAND_ID_MAX_LEN: usize = 128;

/// The caller-chosen id of one command. Re-sending a command with the same id never applies it twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

/// Why a string is not a usable command id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandIdError {
    /// The id was empty or only whitespace.
    #[error("a command id must not be empty")]
    Empty,
    /// The id was longer than [`COMMAND_ID_MAX_LEN`].
    #[error("a command id must be at most {COMMAND_ID_MAX_LEN} characters")]
    TooLong,
}

impl CommandId {
    /// Checks and wraps a caller-provided id (an `Idempotency-Key`, a uuid, ...).
    pub fn parse(raw: impl Into<String>) -> Result<Self, CommandIdError> {
        let raw = raw.into();
        if raw.trim().is_empty() {
            return Err(CommandIdError::Empty);
        }
        if raw.len() > COMMAND_ID_MAX_LEN {
            return Err(CommandIdError::TooLong);
        }
        Ok(Self(raw))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommandId {
    type Error = CommandIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<CommandId> for String {
    fn from(value: CommandId) -> Self {
        value.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_oversized_command_id_is_rejected() {
        assert_eq!(CommandId::parse("  "), Err(CommandIdError::Empty));
        assert_eq!(
            CommandId::parse("x".repeat(COMMAND_ID_MAX_LEN + 1)),
            Err(CommandIdError::TooLong)
        );
        assert_eq!(CommandId::parse("abc").unwrap().as_str(), "abc");
    }
}
