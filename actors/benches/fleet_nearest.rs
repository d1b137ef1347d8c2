//! P1: nearest-10 available units among 100k in a 30 km city — our H3 index at several resolutions,
//! next to an R*-tree (`rstar`) and a brute-force scan, in the same run.

mod common;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use common::{CITY_RADIUS_M, Rng, city_fleet, city_point, machine, now, percentiles, row, write_results};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use h3o::Resolution;
use onemedi_actors::{
    fleet::{DEFAULT_STALE_AFTER, FleetIndex, SearchFilter, UnitKind},
    position::Position,
};
use rstar::{RTree, primitives::GeomWithData};

const UNITS: usize = 100_000;
const K: usize = 10;
const QUERIES: usize = 20_000;
/// Search radius: the whole city; the ring rule stops long before.
const RADIUS_M: f64 = 30_000.0;
const RESOLUTIONS: [Resolution; 4] = [
    Resolution::Seven,
    Resolution::Eight,
    Resolution::Nine,
    Resolution::Ten,
];

type Point3 = GeomWithData<[f64; 3], i64>;

fn unit_vector(p: Position) -> [f64; 3] {
    let (lat, lng) = (p.lat().to_radians(), p.lng().to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

/// The baseline: one pass over every unit keeping the best `K` by chord length.
fn brute_force(units: &[([f64; 3], i64)], q: [f64; 3]) -> Vec<(f64, i64)> {
    let mut best: Vec<(f64, i64)> = Vec::with_capacity(K + 1);
    for &(p, id) in units {
        let d = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
        if best.len() < K || d < best[K - 1].0 {
            let at = best.partition_point(|&(b, _)| b < d);
            best.insert(at, (d, id));
            best.truncate(K);
        }
    }
    best
}

struct Setup {
    indexes: Vec<(Resolution, FleetIndex)>,
    rtree: RTree<Point3>,
    flat: Vec<([f64; 3], i64)>,
    queries: Vec<Position>,
}

fn setup() -> Setup {
    let fleet = city_fleet(UNITS, UnitKind::AmbulanceAls, 7);
    let indexes = RESOLUTIONS
        .iter()
        .map(|&res| {
            let mut index = FleetIndex::new(res, DEFAULT_STALE_AFTER);
            for unit in &fleet {
                let _ = index.upsert(*unit);
            }
            (res, index)
        })
        .collect();
    let flat: Vec<([f64; 3], i64)> = fleet.iter().map(|u| (unit_vector(u.position), u.id.0)).collect();
    let rtree = RTree::bulk_load(flat.iter().map(|&(p, id)| GeomWithData::new(p, id)).collect());
    let mut rng = Rng::new(99);
    let queries = (0..QUERIES)
        .map(|_| city_point(&mut rng, CITY_RADIUS_M * 0.95))
        .collect();
    Setup {
        indexes,
        rtree,
        flat,
        queries,
    }
}

fn self_timed(s: &Setup) {
    let filter = SearchFilter::default();
    let t = now();
    let mut lines = String::new();
    let mut json = serde_json::Map::new();
    let mut record = |name: String, samples: Vec<Duration>| {
        let p = percentiles(samples);
        lines.push_str(&row(&[
            name.clone(),
            format!("{:.2}", p.mean_ns / 1000.0),
            format!("{:.2}", p.p50_ns / 1000.0),
            format!("{:.2}", p.p99_ns / 1000.0),
            format!("{:.2}", p.max_ns / 1000.0),
        ]));
        json.insert(
            name,
            serde_json::json!({"mean_us": p.mean_ns / 1000.0, "p50_us": p.p50_ns / 1000.0, "p99_us": p.p99_ns / 1000.0}),
        );
    };
    for (res, index) in &s.indexes {
        let samples = s
            .queries
            .iter()
            .map(|&q| {
                let start = Instant::now();
                black_box(index.nearest_available(UnitKind::AmbulanceAls, q, K, RADIUS_M, &filter, t));
                start.elapsed()
            })
            .collect();
        record(format!("h3_res{}", u8::from(*res)), samples);
    }
    let samples = s
        .queries
        .iter()
        .map(|&q| {
            let v = unit_vector(q);
            let start = Instant::now();
            black_box(
                s.rtree
                    .nearest_neighbor_iter(&v)
                    .take(K)
                    .map(|p| p.data)
                    .collect::<Vec<_>>(),
            );
            start.elapsed()
        })
        .collect();
    record("rstar".to_owned(), samples);
    let samples = s
        .queries
        .iter()
        .take(2_000)
        .map(|&q| {
            let v = unit_vector(q);
            let start = Instant::now();
            black_box(brute_force(&s.flat, v));
            start.elapsed()
        })
        .collect();
    record("brute_force".to_owned(), samples);

    let markdown = format!(
        "# P1: nearest-{K} available among {UNITS} units (30 km city, Bengaluru)\n\n\
         {}; {QUERIES} random queries each (brute force: 2000), each timed on its own.\n\
         Command: `CARGO_TARGET_DIR=target/actors cargo bench -p onemedi-actors --bench fleet_nearest`\n\n\
         | search | mean µs | p50 µs | p99 µs | max µs |\n|---|---|---|---|---|\n{lines}\n\
         Goal: p99 ≤ 5 µs and within 2× of rstar. The index answers with status/staleness/capability filters and\n\
         haversine distances + ETA; rstar and brute force only rank points (all units are available here).\n\
         Resolution choice: 9 (DEFAULT_RESOLUTION). At city density (~140 units/km²) a res-9 cell (edge ≈ 174 m) holds\n\
         about a dozen units: a nearest-10 search reads the origin cell and its first ring and prunes most of the second\n\
         by each bucket's reach. Res 8 scans ~100 units per cell, res 10 probes many near-empty cells, res 7 both.\n",
        machine()
    );
    write_results("fleet-nearest", &serde_json::Value::Object(json), &markdown);
}

fn bench(c: &mut Criterion) {
    let s = setup();
    self_timed(&s);
    let filter = SearchFilter::default();
    let t = now();
    let mut group = c.benchmark_group("nearest10_of_100k");
    for (res, index) in &s.indexes {
        group.bench_with_input(BenchmarkId::new("h3_index", u8::from(*res)), index, |b, index| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % s.queries.len();
                index.nearest_available(
                    UnitKind::AmbulanceAls,
                    black_box(s.queries[i]),
                    K,
                    RADIUS_M,
                    &filter,
                    t,
                )
            });
        });
    }
    group.bench_function(BenchmarkId::new("rstar", "3d"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % s.queries.len();
            let v = unit_vector(black_box(s.queries[i]));
            s.rtree
                .nearest_neighbor_iter(&v)
                .take(K)
                .map(|p| p.data)
                .collect::<Vec<_>>()
        });
    });
    group.bench_function(BenchmarkId::new("brute_force", "scan"), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % s.queries.len();
            brute_force(&s.flat, unit_vector(black_box(s.queries[i])))
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
