//! Authentication and authorisation: password hashing, JWT sessions, OTP codes and role checks.

pub mod extract;
pub mod jwt;
pub mod password;

pub use extract::{AuthUser, Authorized, Policy};
pub use jwt::{JwtKeys, load_or_create_secret};
