//! The integration suite: one binary, every test on a fresh database and a random port.
//! `cargo test` runs it on SQLite; with TEST_DATABASE_URL and TEST_REDIS_URL it runs on PostgreSQL + Redis.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test setup and helpers fail loudly; a panic is the test failure"
)]

mod admin;
mod analytics;
mod appointment_payments;
mod auth;
mod blood;
mod care;
mod cart;
mod catalog;
mod cli;
mod console;
mod conventions;
mod coupons;
mod database_outage;
mod delivery;
mod demo;
mod dispatch_queue;
mod emergency;
mod failover;
mod helpers;
mod idempotency;
mod insurance;
mod jwt;
mod lab_admin;
mod lab_collections;
mod lab_tests;
mod mail;
mod marketing;
mod migrations;
mod operations;
mod orders;
mod orders_admin;
mod pages;
mod payments;
mod prescriptions;
mod realtime;
mod redis_outage;
mod refunds;
mod shop;
mod simulate;
mod slots;
mod tracking;
mod users;
mod ws_client;
