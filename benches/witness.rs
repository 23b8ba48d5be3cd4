//! Witness throughput and latency: `add-checkpoint` requests answered per second by a real
//! `isms witness` HTTP server on 127.0.0.1, and their p50/p99 latency, for one ledger sending
//! its checkpoints one after another (each request checks the ledger's signature and a
//! consistency proof, cosigns, and writes the witness's state durably before answering) and
//! for several ledgers at once.
//!
//! `cargo bench --bench witness`. Knobs: WITNESS_CHECKPOINTS (checkpoints per ledger, default
//! 2,000), WITNESS_LEDGERS (ledgers sending at once in the second phase, default 4).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use isms_cli::witness::client::{AddCheckpointOutcome, Timeouts, WitnessClient};
use ledger::{KeyGrant, Ledger, LedgerConfig, LedgerId, SignedEvent};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a ledger sends a witness: for each size, the old size, the proof and the note.
struct Feed {
    vkey: String,
    requests: Vec<(u64, Vec<[u8; 32]>, String)>,
}

/// A ledger of `checkpoints` one-event batches (one checkpoint each), and its feed.
fn feed(dir: &Path, seed: u8, checkpoints: u64) -> Feed {
    let ledger_key = SigningKey::from_bytes(&[seed; 32]);
    let admin = SigningKey::from_bytes(&[seed.wrapping_add(100); 32]);
    let ledger = Ledger::create_with_id(
        dir,
        LedgerId([seed; 16]),
        "Bench Ltd",
        ledger_key,
        vec![KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "admin@example.com".into(),
            roles: vec!["admin".into()],
        }],
        LedgerConfig::default(),
    )
    .expect("create ledger");
    for i in 1..checkpoints {
        let mut body = ledger::envelope::EnvelopeView {
            ledger_id: vec![seed; 16],
            event_id: format!("e{i}"),
            ..Default::default()
        };
        body.effective_at_us = 1;
        let body = prost::Message::encode_to_vec(&body);
        ledger
            .append(vec![SignedEvent::sign(&admin, body)])
            .remove(0)
            .expect("append");
    }
    let requests = (1..=checkpoints)
        .map(|size| {
            let old = size - 1;
            let proof = if old == 0 {
                Vec::new()
            } else {
                ledger.consistency_proof(old, size).expect("proof")
            };
            let note = ledger
                .checkpoint_at(size)
                .expect("read")
                .expect("checkpoint")
                .note;
            (old, proof, note)
        })
        .collect();
    Feed {
        vkey: ledger::checkpoint::verifier_key(ledger.origin(), &ledger.public_key()),
        requests,
    }
}

/// Sends a feed in order; the latency of each request.
async fn send(client: &WitnessClient, feed: &Feed) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(feed.requests.len());
    for (old, proof, note) in &feed.requests {
        let started = Instant::now();
        let answer = client
            .add_checkpoint(*old, proof, note)
            .await
            .expect("answer");
        latencies.push(started.elapsed());
        assert!(
            matches!(answer, AddCheckpointOutcome::Cosigned { .. }),
            "{answer:?}"
        );
    }
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(phase: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    println!(
        "{phase}: {} requests in {:.2} s = {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let checkpoints = env("WITNESS_CHECKPOINTS", 2_000);
    let ledgers = env("WITNESS_LEDGERS", 4) as u8;
    let work = tempfile::tempdir().expect("temp dir");
    let feeds: Vec<Feed> = (0..=ledgers)
        .map(|i| feed(&work.path().join(format!("ledger-{i}")), i + 1, checkpoints))
        .collect();
    let witness_dir = work.path().join("witness");
    isms_cli::witness::init(&witness_dir, "witness.example/bench").expect("witness init");
    for f in &feeds {
        isms_cli::witness::add_ledger(&witness_dir, &f.vkey).expect("add ledger");
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let state = Arc::new(isms_cli::witness::open(&witness_dir).expect("open witness"));
        let running = isms_cli::witness::http::start(state, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("start witness");
        let url = format!("http://{}", running.addr);
        let client = Arc::new(WitnessClient::new(&url, Timeouts::default()).expect("client"));

        let started = Instant::now();
        let latencies = send(&client, &feeds[0]).await;
        report("one ledger, sequential", latencies, started.elapsed());

        let started = Instant::now();
        let tasks: Vec<_> = feeds[1..]
            .iter()
            .map(|f| {
                let client = client.clone();
                let requests = f.requests.clone();
                let vkey = f.vkey.clone();
                tokio::spawn(async move { send(&client, &Feed { vkey, requests }).await })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("sender"));
        }
        report(
            &format!("{ledgers} ledgers at once"),
            all,
            started.elapsed(),
        );
        running.shutdown().await.expect("shutdown");
    });
}
