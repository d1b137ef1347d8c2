//! ONE MEDI server library: configuration, persistence, HTTP API and real-time sessions.
