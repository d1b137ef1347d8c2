//! Adapters to the outside world: SMS, e-mail (lettre) and Razorpay payments.

pub mod mail;
pub mod razorpay;
pub mod sms;
