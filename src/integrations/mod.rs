//! Adapters to the outside world: SMS and Razorpay payments; mail and storage as their features land.

pub mod razorpay;
pub mod sms;
