//! P1b: position update throughput — `upsert` of a unit that moves to another H3 cell, single core.

mod common;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use common::{Rng, city_fleet, machine, now, row, write_results};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use h3o::Resolution;
use onemedi_actors::{
    fleet::{DEFAULT_RESOLUTION, DEFAULT_STALE_AFTER, FleetIndex, Unit, UnitKind},
    position::Position,
};

const UNITS: usize = 100_000;
const UPDATES: usize = 1_000_000;

/// Each unit alternates between its home and a point `shift_m` away, lengthened step by step until it
/// is in another cell (for `shift_m` ≥ 10) — a short step lands in the adjacent cell, a long one jumps.
fn moves(fleet: &[Unit], resolution: Resolution, shift_m: f64) -> Vec<Unit> {
    let mut rng = Rng::new(5);
    fleet
        .iter()
        .map(|u| {
            let mut moved = *u;
            for attempt in 1..20 {
                let d = shift_m * f64::from(attempt);
                let theta = rng.unit() * std::f64::consts::TAU;
                let lat = u.position.lat() + d * theta.sin() / 111_195.0;
                let lng =
                    u.position.lng() + d * theta.cos() / (111_195.0 * u.position.lat().to_radians().cos());
                let Ok(p) = Position::new(lat, lng) else { continue };
                moved.position = p;
                let cell = |p: Position| {
                    h3o::LatLng::new(p.lat(), p.lng())
                        .map(|l| l.to_cell(resolution))
                        .ok()
                };
                if shift_m < 10.0 || cell(p) != cell(u.position) {
                    break;
                }
            }
            moved
        })
        .collect()
}

fn index_of(fleet: &[Unit]) -> FleetIndex {
    let mut index = FleetIndex::new(DEFAULT_RESOLUTION, DEFAULT_STALE_AFTER);
    for unit in fleet {
        let _ = index.upsert(*unit);
    }
    index
}

/// Upserts per second over `UPDATES` alternating updates.
fn throughput(index: &mut FleetIndex, home: &[Unit], away: &[Unit]) -> f64 {
    let start = Instant::now();
    for i in 0..UPDATES {
        let (n, round) = (i % home.len(), i / home.len());
        let unit = if round % 2 == 0 { away[n] } else { home[n] };
        let _ = black_box(index.upsert(unit));
    }
    UPDATES as f64 / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let home = city_fleet(UNITS, UnitKind::Rider, 11);
    let far = moves(&home, DEFAULT_RESOLUTION, 700.0);
    let adjacent = moves(&home, DEFAULT_RESOLUTION, 25.0);
    let near = moves(&home, DEFAULT_RESOLUTION, 1.0);
    let jumps = throughput(&mut index_of(&home), &home, &far);
    let cell_changes = throughput(&mut index_of(&home), &home, &adjacent);
    let same_cell = throughput(&mut index_of(&home), &home, &near);
    let _ = now();

    let markdown = format!(
        "# P1b: position updates (upsert) on a {UNITS}-unit index, resolution {}\n\n{}; {UPDATES} updates each, self-timed.\n\
         Command: `CARGO_TARGET_DIR=target/actors cargo bench -p onemedi-actors --bench fleet_upsert`\n\n\
         | update | upserts per second |\n|---|---|\n{}{}{}\nGoal: ≥ 1,000,000/s single core for updates that change cell. \
         A ping crossing into the adjacent cell is placed from the cached cell shapes; a jump of several cells \
         needs H3's LatLng→cell, which costs ≈ 0.5 µs on this machine.\n",
        u8::from(DEFAULT_RESOLUTION),
        machine(),
        row(&[
            "crosses into the adjacent cell (25 m steps until the cell changes)".to_owned(),
            format!("{cell_changes:.0}")
        ]),
        row(&[
            "jumps ≥ 700 m (usually 2+ cells)".to_owned(),
            format!("{jumps:.0}")
        ]),
        row(&["stays in its cell (1 m)".to_owned(), format!("{same_cell:.0}")]),
    );
    let json = serde_json::json!({
        "units": UNITS, "updates": UPDATES, "resolution": u8::from(DEFAULT_RESOLUTION),
        "adjacent_cell_change_per_s": cell_changes, "jump_per_s": jumps, "same_cell_per_s": same_cell,
    });
    write_results("fleet-upsert", &json, &markdown);

    let mut group = c.benchmark_group("upsert_100k");
    group.throughput(Throughput::Elements(1));
    for (name, away) in [("adjacent_cell", &adjacent), ("jump", &far), ("same_cell", &near)] {
        let mut index = index_of(&home);
        group.bench_function(BenchmarkId::new(name, UNITS), |b| {
            let mut i = 0_usize;
            b.iter(|| {
                let (n, round) = (i % UNITS, i / UNITS);
                i += 1;
                let unit = if round % 2 == 0 { away[n] } else { home[n] };
                index.upsert(black_box(unit))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
