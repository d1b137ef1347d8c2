//! P5: batch assignment of 500 jobs to 1000 units — Hungarian (exact), pruned Hungarian and greedy,
//! time and total ETA, in the same run.

mod common;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use common::{CITY_RADIUS_M, Rng, city_point, machine, row, write_results};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use onemedi_actors::{
    batch::{
        BatchJob, BatchUnit, CostMatrix, PRUNE_CANDIDATES, assign_batch, solve_exact, solve_greedy,
        solve_pruned,
    },
    fleet::UnitKind,
    ids::{OrderId, UnitId},
    machines::EntityKey,
};

const JOBS: usize = 500;
const UNITS: usize = 1000;
const DEADLINE: Duration = Duration::from_millis(25);
const RUNS: usize = 7;

fn instance(seed: u64) -> (Vec<BatchJob>, Vec<BatchUnit>) {
    let mut rng = Rng::new(seed);
    let jobs = (0..JOBS)
        .map(|i| BatchJob {
            job: EntityKey::Order(OrderId(i as i64)),
            point: city_point(&mut rng, CITY_RADIUS_M),
            kind: UnitKind::Rider,
        })
        .collect();
    let units = (0..UNITS)
        .map(|i| BatchUnit {
            unit: UnitId(i as i64),
            position: city_point(&mut rng, CITY_RADIUS_M),
            kind: UnitKind::Rider,
        })
        .collect();
    (jobs, units)
}

/// First come, first served: each job in arrival order takes its nearest free unit.
fn first_come_first_served(costs: &CostMatrix) -> Vec<(usize, usize)> {
    let mut used = vec![false; costs.cols()];
    (0..costs.rows())
        .filter_map(|j| {
            let u = (0..costs.cols())
                .filter(|&u| !used[u])
                .min_by_key(|&u| costs.at(j, u))?;
            used[u] = true;
            Some((j, u))
        })
        .collect()
}

/// Median wall time of `RUNS` runs (cost matrix included) and the matching's total.
fn measure(
    jobs: &[BatchJob],
    units: &[BatchUnit],
    solve: impl Fn(&CostMatrix) -> Vec<(usize, usize)>,
) -> (Duration, i64) {
    let mut times = Vec::with_capacity(RUNS);
    let mut total = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let costs = CostMatrix::build(jobs, units);
        let matching = black_box(solve(&costs));
        times.push(start.elapsed());
        total = costs.total(&matching);
    }
    times.sort_unstable();
    (times[RUNS / 2], total)
}

fn bench(c: &mut Criterion) {
    let (jobs, units) = instance(3);
    let start = Instant::now();
    let matrix_only = CostMatrix::build(&jobs, &units);
    let build_time = start.elapsed();
    black_box(&matrix_only);

    let (exact_t, exact_cost) = measure(&jobs, &units, solve_exact);
    let (pruned_t, pruned_cost) = measure(&jobs, &units, |c| solve_pruned(c, PRUNE_CANDIDATES));
    let (greedy_t, greedy_cost) = measure(&jobs, &units, solve_greedy);
    let (fcfs_t, fcfs_cost) = measure(&jobs, &units, first_come_first_served);
    let chosen = assign_batch(&jobs, &units, DEADLINE);

    let gap = |cost: i64| (cost as f64 / exact_cost as f64 - 1.0) * 100.0;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut table = String::new();
    for (name, t, cost) in [
        ("hungarian (exact, kuhn_munkres)", exact_t, exact_cost),
        (
            "pruned hungarian (12 nearest, per component)",
            pruned_t,
            pruned_cost,
        ),
        ("greedy (cheapest pair first)", greedy_t, greedy_cost),
        ("first come, first served nearest", fcfs_t, fcfs_cost),
    ] {
        table.push_str(&row(&[
            name.to_owned(),
            format!("{:.2}", ms(t)),
            format!("{:.0}", cost as f64 / 1000.0),
            format!("{:+.2}%", gap(cost)),
        ]));
    }
    let markdown = format!(
        "# P5: batch assignment, {JOBS} jobs × {UNITS} units (30 km city)\n\n{}; median of {RUNS} runs, cost matrix (ETA, ms) included \
         (building it alone: {:.2} ms).\nCommand: `CARGO_TARGET_DIR=target/actors cargo bench -p onemedi-actors --bench batch_assign`\n\n\
         | method | time ms | total ETA s | vs optimal |\n|---|---|---|---|\n{table}\n\
         `assign_batch` with a {} ms deadline chose **{:?}** (took {:.2} ms, total ETA {:.0} s).\n\
         Goal: ≤ 25 ms and within 1% of optimal.\n",
        machine(),
        ms(build_time),
        DEADLINE.as_millis(),
        chosen.method,
        ms(chosen.elapsed),
        chosen.total_eta_ms as f64 / 1000.0,
    );
    let json = serde_json::json!({
        "jobs": JOBS, "units": UNITS, "deadline_ms": DEADLINE.as_millis() as u64,
        "matrix_build_ms": ms(build_time),
        "exact": {"ms": ms(exact_t), "total_eta_ms": exact_cost},
        "pruned": {"ms": ms(pruned_t), "total_eta_ms": pruned_cost, "gap_pct": gap(pruned_cost)},
        "greedy": {"ms": ms(greedy_t), "total_eta_ms": greedy_cost, "gap_pct": gap(greedy_cost)},
        "first_come_first_served": {"ms": ms(fcfs_t), "total_eta_ms": fcfs_cost, "gap_pct": gap(fcfs_cost)},
        "assign_batch": {"method": format!("{:?}", chosen.method), "ms": ms(chosen.elapsed), "total_eta_ms": chosen.total_eta_ms},
    });
    write_results("batch-assign", &json, &markdown);

    let mut group = c.benchmark_group("batch_500x1000");
    group.bench_function(BenchmarkId::new("hungarian", "exact"), |b| {
        b.iter(|| solve_exact(black_box(&matrix_only)))
    });
    group.bench_function(BenchmarkId::new("hungarian", "pruned"), |b| {
        b.iter(|| solve_pruned(black_box(&matrix_only), PRUNE_CANDIDATES))
    });
    group.bench_function(BenchmarkId::new("greedy", "cheapest_first"), |b| {
        b.iter(|| solve_greedy(black_box(&matrix_only)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(10);
    targets = bench
}
criterion_main!(benches);
