//! Shared harness of the real-time load benchmarks: a release `onemedi serve` child process on
//! 127.0.0.1 with a temp SQLite database, crews and dispatchers inserted directly, websocket clients,
//! percentiles and the result files in `bench-results/`.
#![allow(dead_code, reason = "each benchmark uses only part of the harness")]

pub mod raw;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{
    auth::JwtKeys,
    config::Settings,
    db::{Db, schema},
    domain::Role,
    on_conn,
};
use secrecy::SecretString;

/// The JWT secret shared by the server child and the benchmark, which signs the sessions' tokens.
const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

/// Longest wait for one answer during setup.
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// `--name value` options after the benchmark name (cargo's own `--bench` flag is ignored).
pub struct Options(Vec<String>);

impl Options {
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1).collect())
    }

    fn value(&self, name: &str) -> Option<&str> {
        let flag = format!("--{name}");
        let at = self.0.iter().position(|a| *a == flag)?;
        self.0.get(at + 1).map(String::as_str)
    }

    pub fn number(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        self.value(name).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("--{name} {v}"))
        })
    }

    pub fn word(&self, name: &str, default: &str) -> String {
        self.value(name).unwrap_or(default).to_owned()
    }

    pub fn list(&self, name: &str, default: &[u64]) -> anyhow::Result<Vec<u64>> {
        match self.value(name) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .split(',')
                .map(|n| n.trim().parse().with_context(|| format!("--{name} {v}")))
                .collect(),
        }
    }
}

/// A small deterministic generator (xorshift), so every run of a driver draws the same world.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next()
    }

    /// A point in the square of half-width `spread_deg` around `centre` (lat, lng).
    pub fn point(&mut self, centre: (f64, f64), spread_deg: f64) -> (f64, f64) {
        (
            centre.0 + (self.next() * 2.0 - 1.0) * spread_deg,
            centre.1 + (self.next() * 2.0 - 1.0) * spread_deg,
        )
    }
}

/// A `onemedi serve` process on 127.0.0.1 with its own data dir; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub db: Db,
    pub jwt: JwtKeys,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// Starts the release server binary built next to this benchmark (embedded SQLite, in-process bus)
    /// and waits for its port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(None, None).await
    }

    /// Starts the server on `database_url` (PostgreSQL) and `redis_url` when given, as production runs.
    pub async fn start_on(database_url: Option<&str>, redis_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(database_url, redis_url, &[]).await
    }

    /// [`Server::start_on`] with extra `ONEMEDI__…` settings in the server's environment.
    pub async fn start_with(
        database_url: Option<&str>,
        redis_url: Option<&str>,
        settings_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        // With PostgreSQL the data folder holds only the mail outbox, written once per order. It goes on
        // tmpfs where there is one: creating each .eml file on this VM's ext4 cost a fifth of the
        // server's CPU (perf: ext4_create → find_inode_bit → recently_deleted), a cost production does
        // not have (mail goes out over SMTP) and the SQL baselines do not pay. SQLite stays on disk.
        let shm = std::path::Path::new("/dev/shm");
        let data_dir = if database_url.is_some() && shm.is_dir() {
            tempfile::tempdir_in(shm)?
        } else {
            tempfile::tempdir()?
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_onemedi"));
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .env("ONEMEDI_CONFIG_DIR", data_dir.path().join("no-config"))
            .env("ONEMEDI__AUTH__JWT_SECRET", SECRET)
            .env("ONEMEDI__RATE_LIMIT__ENABLED", "false")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL");
        for (key, value) in settings_env {
            command.env(key, value);
        }
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        if let Some(url) = redis_url {
            command.env("REDIS_URL", url).env(
                "ONEMEDI__REDIS__KEY_PREFIX",
                format!("bench-{}", std::process::id()),
            );
        }
        // `BENCH_SERVER_LOG=<file>` keeps the server's log (appended) for looking into a run.
        let stderr = match std::env::var_os("BENCH_SERVER_LOG") {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.to_string_lossy()))?,
            ),
            None => Stdio::null(),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting onemedi serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let port = tokio::task::spawn_blocking(move || -> anyhow::Result<u16> {
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    return Ok(digits.parse()?);
                }
            }
            anyhow::bail!("the server exited before listening")
        })
        .await??;
        let mut settings = Settings::load_env("bench")?;
        settings.database.url = SecretString::from(database_url.unwrap_or_default().to_owned());
        settings.auth.jwt_secret = SecretString::from(SECRET.to_owned());
        let db = Db::connect(&settings.database.effective_url(data_dir.path()), 4).await?;
        let jwt = JwtKeys::from_settings(&settings.auth, data_dir.path())?;
        Ok(Self {
            child,
            port,
            db,
            jwt,
            _data_dir: data_dir,
        })
    }

    /// Inserts `count` users with `role` (one multi-row statement per 500); returns (id, token) of each.
    pub async fn users(&self, prefix: &str, role: Role, count: usize) -> anyhow::Result<Vec<(i64, String)>> {
        use schema::users as u;
        let rows: Vec<String> = (0..count)
            .map(|i| {
                format!(
                    "('{prefix}-{i}@bench.invalid', 'Bench User', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                    role.as_str()
                )
            })
            .collect();
        self.insert_rows("users (email, name, role, created_at, updated_at)", &rows)
            .await?;
        let pattern = format!("{prefix}-%");
        let mut conn = self.db.read().await?;
        let ids = on_conn!(&mut conn, c => u::table
            .filter(u::email.like(&pattern))
            .order(u::id.asc())
            .select(u::id)
            .load::<i64>(c)
            .await)?;
        ids.into_iter()
            .map(|id| Ok((id, self.jwt.issue(id, role)?)))
            .collect()
    }

    /// Inserts one available rider unit per user, crewed by that user; returns the unit ids in order.
    pub async fn crew_units(&self, crews: &[(i64, String)]) -> anyhow::Result<Vec<i64>> {
        let at = vec![(12.97, 77.59); crews.len()];
        self.crewed_units(crews, "rider", "BENCH", &at).await
    }

    /// Inserts one available ambulance (`als`) per user at the given home position, crewed by that user;
    /// returns the unit ids in order.
    pub async fn ambulances(&self, crews: &[(i64, String)], at: &[(f64, f64)]) -> anyhow::Result<Vec<i64>> {
        self.crewed_units(crews, "als", "AMB", at).await
    }

    /// One available unit of `kind` per crew member, called `{prefix}-000001`…, at `at`.
    async fn crewed_units(
        &self,
        crews: &[(i64, String)],
        kind: &str,
        prefix: &str,
        at: &[(f64, f64)],
    ) -> anyhow::Result<Vec<i64>> {
        use schema::units as un;
        let units: Vec<String> = at
            .iter()
            .enumerate()
            .map(|(i, (lat, lng))| {
                format!(
                    "('{prefix}-{i:06}', '{kind}', 'available', {lat:.6}, {lng:.6}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            })
            .collect();
        self.insert_rows(
            "units (call_sign, kind, status, home_lat, home_lng, created_at, updated_at)",
            &units,
        )
        .await?;
        let pattern = format!("{prefix}-%");
        let mut conn = self.db.read().await?;
        let ids = on_conn!(&mut conn, c => un::table
            .filter(un::call_sign.like(&pattern))
            .order(un::id.asc())
            .select(un::id)
            .load::<i64>(c)
            .await)?;
        drop(conn);
        let role = if kind == "rider" { "rider" } else { "paramedic" };
        let links: Vec<String> = ids
            .iter()
            .zip(crews)
            .map(|(unit, (user, _))| format!("({unit}, {user}, '{role}')"))
            .collect();
        self.insert_rows("unit_crew (unit_id, user_id, crew_role)", &links)
            .await?;
        Ok(ids)
    }

    /// `INSERT INTO {into} VALUES …` in one transaction, 500 rows a statement. Rows are built by this
    /// harness from numbers and fixed words only.
    pub async fn insert_rows(&self, into: &str, rows: &[String]) -> anyhow::Result<()> {
        use diesel_async::SimpleAsyncConnection;
        let mut sql = String::from("BEGIN;");
        for chunk in rows.chunks(500) {
            sql.push_str(&format!("INSERT INTO {into} VALUES {};", chunk.join(",")));
        }
        sql.push_str("COMMIT;");
        let mut conn = self.db.write().await?;
        on_conn!(&mut conn, c => c.batch_execute(&sql).await)?;
        Ok(())
    }

    /// Opens a session on the drivers' minimal client ([`raw::RawSocket`]) authenticated by `token`
    /// (header), then waits for the acks of `commands` (each sent with a `ref`).
    pub async fn session(&self, token: &str, commands: &[String]) -> anyhow::Result<raw::RawSocket> {
        let mut socket = raw::RawSocket::connect(self.port, token).await?;
        for (i, command) in commands.iter().enumerate() {
            let reference = format!("setup-{i}");
            let framed = format!("{},\"ref\":\"{reference}\"}}", command.trim_end_matches('}'));
            socket.send_text(&framed).await?;
            loop {
                let incoming = tokio::time::timeout(SETUP_PATIENCE, socket.next_text())
                    .await
                    .context("no answer during setup")??;
                let raw::Incoming::Text(text) = incoming else {
                    anyhow::bail!("session closed during setup");
                };
                let text = String::from_utf8_lossy(text);
                if text.contains(&reference) {
                    anyhow::ensure!(text.contains("\"ack\""), "setup command refused: {text}");
                    break;
                }
            }
        }
        Ok(socket)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A location frame as a crew app sends it (`ts` = device time, Unix ms).
pub fn location_frame(ts: i64, jitter: f64) -> String {
    let mut frame = String::with_capacity(160);
    write_location_frame(&mut frame, ts, jitter);
    frame
}

/// Writes [`location_frame`] into `frame` (cleared first), for a driver that reuses one buffer.
pub fn write_location_frame(frame: &mut String, ts: i64, jitter: f64) {
    use std::fmt::Write as _;
    frame.clear();
    let _ = write!(
        frame,
        r#"{{"type":"location","lat":{:.6},"lng":{:.6},"heading":90,"speed":8.5,"accuracy":6,"ts":{ts}}}"#,
        12.9716 + jitter,
        77.5946 + jitter
    );
}

/// A location frame at a given point.
pub fn location_at(ts: i64, lat: f64, lng: f64) -> String {
    format!(
        r#"{{"type":"location","lat":{lat:.6},"lng":{lng:.6},"heading":90,"speed":0,"accuracy":6,"ts":{ts}}}"#
    )
}

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The `q`-quantile (0..=1) of sorted microsecond samples, in milliseconds.
pub fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[at.min(sorted.len() - 1)]) / 1000.0
}

/// Rounds to 2 decimals for the result files.
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Writes `bench-results/{name}.json` and `.md`.
pub fn write_results(name: &str, json: &serde_json::Value, markdown: &str) -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(json)? + "\n",
    )?;
    std::fs::write(dir.join(format!("{name}.md")), markdown)?;
    Ok(dir)
}

/// What the machine is, for the result files.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores (shared VM), server and load clients on the same machine; release profile, SQLite, \
         in-process event bus (no REDIS_URL)"
    )
}
