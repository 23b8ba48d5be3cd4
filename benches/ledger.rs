//! Ledger benchmarks: durable append, full verification, proofs, and the machine's own limits
//! (ed25519 single and batch verification per core, sled insert and flush) measured in the
//! same run so the figures can be read against them. See docs/PERFORMANCE.md.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use ledger::envelope::EnvelopeView;
use ledger::{AdmitAll, KeyGrant, Ledger, LedgerConfig, LedgerId, Seq, SignedEvent};
use prost::Message;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

/// A body of about the size of a real evidence event (~300 bytes).
const PAYLOAD: usize = 220;

struct Bench {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    admin: SigningKey,
    next_id: AtomicU64,
}

fn new_ledger() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let admin = SigningKey::from_bytes(&[2; 32]);
    let ledger = Ledger::create_with_id(
        dir.path(),
        LedgerId([7; 16]),
        "bench",
        SigningKey::from_bytes(&[1; 32]),
        vec![KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "bench".into(),
            roles: vec!["admin".into()],
        }],
        LedgerConfig::default(),
    )
    .unwrap();
    Bench {
        _dir: dir,
        ledger,
        admin,
        next_id: AtomicU64::new(0),
    }
}

impl Bench {
    /// `n` signed events with fresh ids, signed on all cores.
    fn events(&self, n: usize) -> Vec<SignedEvent> {
        let start = self.next_id.fetch_add(n as u64, Ordering::Relaxed);
        let ledger_id = self.ledger.ledger_id().0.to_vec();
        (start..start + n as u64)
            .into_par_iter()
            .map(|i| {
                let mut body = EnvelopeView {
                    ledger_id: ledger_id.clone(),
                    event_id: format!("bench-{i:012}"),
                    effective_at_us: 1_735_689_600_000_000,
                    client_time_us: 1_735_689_600_000_000,
                    ..EnvelopeView::default()
                }
                .encode_to_vec();
                body.extend_from_slice(&[0x82, 0x02]);
                prost::encoding::encode_varint(PAYLOAD as u64, &mut body);
                body.extend(std::iter::repeat_n(b'x', PAYLOAD));
                SignedEvent::sign(&self.admin, body)
            })
            .collect()
    }

    fn fill(&self, total: u64) {
        while self.ledger.head().size < total {
            let n = (total - self.ledger.head().size).min(10_000) as usize;
            for r in self.ledger.append(self.events(n)) {
                r.unwrap();
            }
        }
    }
}

fn machine_limits(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let key = SigningKey::from_bytes(&[9; 32]);
    let public = key.verifying_key();
    let msgs: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 300]).collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| key.sign(m)).collect();
    g.throughput(Throughput::Elements(256));
    g.bench_function("ed25519_verify_single_1core", |b| {
        b.iter(|| {
            for (m, s) in msgs.iter().zip(&sigs) {
                public.verify(m, s).unwrap();
            }
        })
    });
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let keys = vec![public; 256];
    g.bench_function("ed25519_verify_batch256_1core", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&refs, &sigs, &keys).unwrap())
    });
    // The ledger's own batch check (one equation for single and batch, terms of the same key
    // summed): 256 event bodies signed by one key, as a run from one agent.
    let events: Vec<SignedEvent> = msgs
        .iter()
        .map(|m| SignedEvent::sign(&key, m.clone()))
        .collect();
    let public_bytes = public.to_bytes();
    let items: Vec<ledger::sig::Item<'_>> = events
        .iter()
        .map(|e| ledger::sig::Item {
            public_key: &public_bytes,
            signature: &e.signature,
            body: &e.body,
        })
        .collect();
    g.bench_function("ledger_keyed_batch256_one_key_1core", |b| {
        b.iter(|| assert!(ledger::sig::verify_batch(&items)))
    });
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("t").unwrap();
    let value = vec![7u8; 450];
    let mut counter = 0u64;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("sled_insert_1000_then_flush", |b| {
        b.iter(|| {
            let mut batch = sled::Batch::default();
            for _ in 0..1000 {
                counter += 1;
                batch.insert(&counter.to_be_bytes(), value.as_slice());
            }
            tree.apply_batch(batch).unwrap();
            db.flush().unwrap();
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("sled_small_write_then_flush", |b| {
        b.iter(|| {
            counter += 1;
            tree.insert(counter.to_be_bytes(), &value[..32]).unwrap();
            db.flush().unwrap();
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let bench = new_ledger();
    bench.fill(20_000);
    g.throughput(Throughput::Elements(1000));
    // Durable commit of a batch of 1,000 events whose signatures were verified beforehand
    // (as the server does per connection, off the writer).
    g.bench_function("commit_preverified_batch_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let prepared = bench.ledger.prepare(bench.events(1000));
                let start = Instant::now();
                let results = bench.ledger.commit(prepared, &mut AdmitAll);
                total += start.elapsed();
                assert!(results.iter().all(Result::is_ok));
            }
            total
        })
    });
    // The whole append: decode, batch signature verification on both cores, commit, flush.
    g.bench_function("append_batch_1000_with_verification", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let events = bench.events(1000);
                let start = Instant::now();
                let results = bench.ledger.append(events);
                total += start.elapsed();
                assert!(results.iter().all(Result::is_ok));
            }
            total
        })
    });
    g.finish();
}

fn verify_and_proofs(c: &mut Criterion) {
    let size: u64 = std::env::var("ISMS_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let bench = new_ledger();
    bench.fill(size);
    let mut g = c.benchmark_group("verify");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(size));
    g.bench_with_input(
        BenchmarkId::new("full_verify_2_cores", size),
        &size,
        |b, _| b.iter(|| bench.ledger.verify(&|_| {}).unwrap()),
    );
    g.finish();

    let mut g = c.benchmark_group("proofs");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    let mut rng = StdRng::seed_from_u64(7);
    let head = bench.ledger.head().size;
    g.bench_with_input(BenchmarkId::new("inclusion_proof", head), &head, |b, &n| {
        b.iter(|| {
            black_box(
                bench
                    .ledger
                    .inclusion_proof(Seq(rng.gen_range(0..n)), n)
                    .unwrap(),
            )
        })
    });
    g.bench_with_input(
        BenchmarkId::new("consistency_proof", head),
        &head,
        |b, &n| {
            b.iter(|| {
                black_box(
                    bench
                        .ledger
                        .consistency_proof(rng.gen_range(1..n), n)
                        .unwrap(),
                )
            })
        },
    );
    g.bench_with_input(BenchmarkId::new("receipt", head), &head, |b, &n| {
        b.iter(|| {
            black_box(
                bench
                    .ledger
                    .receipt(Seq(rng.gen_range(n - 1000..n)))
                    .unwrap(),
            )
        })
    });
    g.bench_with_input(BenchmarkId::new("seq_at_or_before", head), &head, |b, _| {
        b.iter(|| {
            black_box(
                bench
                    .ledger
                    .seq_at_or_before(ledger::UnixMicros(rng.gen_range(0..i64::MAX)))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, machine_limits, append, verify_and_proofs);
criterion_main!(benches);
