//! Benchmarks the as-of query: risk register and SoA as of a random recorded time, over
//! synthetic histories of 10,000, 100,000 and 1,000,000 entries, with snapshots every 1,000
//! entries. Entries are held in memory (a `[RawEntry]` source and in-memory snapshots), not in
//! a sled ledger, so the figure is the projection cost: snapshot decode + at most K entries
//! decoded and applied + the two registers built. Prints p50/p99 over 500 random queries per
//! size, then runs criterion on the same query.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use projections::{
    query::{MemorySnapshots, Projector, ProjectorConfig, RawEntry},
    registers::Registers,
    testkit::{synthetic_history, Rng},
    Timestamp,
};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const K: u64 = 1_000;

fn history(n: usize) -> Vec<RawEntry> {
    synthetic_history(n, 7)
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

fn query(p: &Projector<MemorySnapshots, &[RawEntry]>, t: Timestamp) -> (usize, usize) {
    let state = p.as_of(t).expect("in-memory source");
    let r = Registers {
        state: &state,
        now: t,
    };
    (r.risk_register().len(), r.soa().len())
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("as_of_risk_register_and_soa");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let entries = history(n);
        let p = Projector::new(
            entries.as_slice(),
            MemorySnapshots::default(),
            ProjectorConfig { snapshot_every: K },
        );
        // Build every snapshot once, as a long-running server would have.
        p.latest().expect("fold");
        let (t0, t1) = (entries[0].recorded_at.0, entries[n - 1].recorded_at.0);
        let mut rng = Rng::new(n as u64);
        let mut random_t = move || Timestamp(t0 + (rng.next_u64() % (t1 - t0) as u64) as i64);
        let mut samples: Vec<Duration> = (0..500)
            .map(|_| {
                let t = random_t();
                let start = Instant::now();
                std::hint::black_box(query(&p, t));
                start.elapsed()
            })
            .collect();
        samples.sort();
        println!(
            "entries={n:>9} K={K} as_of(risk register + SoA): p50={:?} p99={:?} max={:?}",
            samples[samples.len() / 2],
            samples[samples.len() * 99 / 100],
            samples[samples.len() - 1]
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| query(&p, random_t()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
