//! The `onemedi` binary as an operator uses it: migrate, create users, seed the demo, serve and stop.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{fresh_postgres_database, postgres_url};

/// A data dir plus, on the PostgreSQL pass, a fresh database for the binary to use.
async fn environment() -> (tempfile::TempDir, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let database = match postgres_url() {
        Some(base) => Some(fresh_postgres_database(&base).await.0),
        None => None,
    };
    (dir, database)
}

fn onemedi(dir: &tempfile::TempDir, database: &Option<String>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onemedi"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env("ONEMEDI_CONFIG_DIR", dir.path())
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn");
    match database {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
}

fn run(dir: &tempfile::TempDir, database: &Option<String>, args: &[&str]) -> (bool, String) {
    let output = onemedi(dir, database, args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[actix_web::test]
async fn an_operator_migrates_creates_an_admin_and_seeds_the_demo_from_the_command_line() {
    let (dir, database) = environment().await;
    let (ok, text) = run(&dir, &database, &["migrate"]);
    assert!(ok, "{text}");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert!(
        text.contains(&format!("applied {migrations} migration(s)")),
        "{text}"
    );
    let (ok, text) = run(&dir, &database, &["migrate"]);
    assert!(ok && text.contains("applied 0 migration(s)"), "{text}");

    let create = [
        "user",
        "create",
        "--email",
        "ops@example.in",
        "--password",
        "long enough",
        "--role",
        "admin",
    ];
    let (ok, text) = run(&dir, &database, &create);
    assert!(ok, "{text}");
    assert!(text.contains("with role admin"), "{text}");
    let (ok, text) = run(&dir, &database, &create);
    assert!(
        !ok && text.contains("already exists"),
        "a second account with the same email: {text}"
    );
    let (ok, text) = run(
        &dir,
        &database,
        &[
            "user",
            "create",
            "--email",
            "x@example.in",
            "--password",
            "long enough",
            "--role",
            "root",
        ],
    );
    assert!(!ok && text.contains("--role must be one of"), "{text}");

    let (ok, text) = run(&dir, &database, &["seed-demo"]);
    assert!(ok && text.contains("dispatcher@demo.onemedi.in"), "{text}");
    let (ok, text) = run(&dir, &database, &["seed-demo"]);
    assert!(ok && text.contains("already present"), "{text}");
}

#[actix_web::test]
async fn the_served_binary_answers_and_stops_cleanly_on_sigterm() {
    let (dir, database) = environment().await;
    let mut child = onemedi(&dir, &database, &["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let port = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split(' ').next()?.parse::<u16>().ok())
        })
        .expect("the server prints the address it listens on");

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let register = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/register"))
        .json(&json!({"name": "Process", "email": "process@example.in", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            waited < Duration::from_secs(30),
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
