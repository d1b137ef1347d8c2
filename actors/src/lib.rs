//! Live entities of ONE MEDI: supervised actors, the fleet index and dispatch.
//!
//! See `ARCHITECTURE.md` beside this crate's `Cargo.toml` for the code map and the ports' contracts.

pub mod batch;
pub mod dispatch;
pub mod entity;
pub mod events;
pub mod fleet;
pub mod ids;
pub mod machines;
pub mod ports;
pub mod position;
