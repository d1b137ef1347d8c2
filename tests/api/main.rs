//! The integration suite: one binary, every test on a fresh database and a random port.
//! `cargo test` runs it on SQLite; with TEST_DATABASE_URL and TEST_REDIS_URL it runs on PostgreSQL + Redis.

mod admin;
mod auth;
mod conventions;
mod helpers;
mod jwt;
mod migrations;
mod operations;
mod users;
