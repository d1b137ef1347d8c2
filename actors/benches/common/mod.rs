//! Shared fixtures of the benchmarks: a deterministic city-sized fleet and a results writer.

#![allow(
    dead_code,
    reason = "each benchmark binary uses a different part of the fixtures"
)]

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use chrono::{DateTime, Utc};
use onemedi_actors::{
    fleet::{Capabilities, Unit, UnitKind, UnitStatus},
    ids::UnitId,
    position::Position,
};

/// Bengaluru city centre.
pub const CITY_CENTRE: (f64, f64) = (12.9716, 77.5946);
/// Radius of the simulated city: 15 km, i.e. a 30 km wide city.
pub const CITY_RADIUS_M: f64 = 15_000.0;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_195.0;

/// A small deterministic generator (SplitMix64), so runs compare like with like.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// A uniformly random point in a disk of `radius_m` around the city centre.
pub fn city_point(rng: &mut Rng, radius_m: f64) -> Position {
    let r = radius_m * rng.unit().sqrt();
    let theta = rng.unit() * std::f64::consts::TAU;
    let dlat = r * theta.sin() / M_PER_DEG;
    let dlng = r * theta.cos() / (M_PER_DEG * CITY_CENTRE.0.to_radians().cos());
    Position::new(CITY_CENTRE.0 + dlat, CITY_CENTRE.1 + dlng).unwrap_or_else(|_| centre())
}

pub fn centre() -> Position {
    Position::new(CITY_CENTRE.0, CITY_CENTRE.1).unwrap_or_else(|_| unreachable!("constant is valid"))
}

/// `n` available, fresh units of one kind spread over the city.
pub fn city_fleet(n: usize, kind: UnitKind, seed: u64) -> Vec<Unit> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| Unit {
            id: UnitId(i as i64),
            kind,
            position: city_point(&mut rng, CITY_RADIUS_M),
            heading_deg: 0.0,
            speed_mps: 8.0,
            status: UnitStatus::Available,
            capabilities: Capabilities::NONE,
            last_seen: now(),
        })
        .collect()
}

/// Latency percentiles of individually timed operations.
pub struct Percentiles {
    pub mean_ns: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub max_ns: f64,
}

pub fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort_unstable();
    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    let at = |q: f64| ns(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    Percentiles {
        mean_ns: samples.iter().map(|&d| ns(d)).sum::<f64>() / samples.len() as f64,
        p50_ns: at(0.5),
        p99_ns: at(0.99),
        max_ns: at(1.0),
    }
}

/// `bench-results/actors-<name>.<ext>` at the workspace root.
pub fn result_path(name: &str, ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("bench-results")
        .join(format!("actors-{name}.{ext}"))
}

/// Writes the summary files; a failure to write is reported, not fatal.
pub fn write_results(name: &str, json: &serde_json::Value, markdown: &str) {
    let json_text = serde_json::to_string_pretty(json).unwrap_or_default();
    for (ext, text) in [("json", json_text.as_str()), ("md", markdown)] {
        let path = result_path(name, ext);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("could not write {}: {err}", path.display());
        } else {
            eprintln!("wrote {}", path.display());
        }
    }
}

/// A markdown table row.
pub fn row(cells: &[String]) -> String {
    let mut line = String::from("|");
    for cell in cells {
        let _ = write!(line, " {cell} |");
    }
    line.push('\n');
    line
}

/// Machine description for the reports.
pub fn machine() -> String {
    format!(
        "{} cores available, release profile, criterion + self-timed percentiles",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}
