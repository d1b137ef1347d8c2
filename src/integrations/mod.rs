//! Adapters to the outside world: SMS today; mail, payments and storage as their features land.

pub mod sms;
