//! The `onemedi` command line: serve, migrate, seed demo data, manage users.
fn main() {}
