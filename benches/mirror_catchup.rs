//! Mirror catch-up: how fast a verifying replica (`Ledger::replicate`, what `isms mirror`
//! runs) checks and stores another server's entries — decode, chain link, key validity,
//! signature (batched), Merkle root against the checkpoint, one atomic sled batch and flush per
//! batch of the server's checkpoints. Batches go through a `Replicator`, as in `isms mirror`:
//! the checks of one batch run while the one before it is written.
//!
//! `cargo bench --bench mirror_catchup`. Knobs: MC_ENTRIES (default 1,000,000), MC_BATCH
//! (entries per replicated batch, default 50,000; a multiple of 1,000), MC_CACHE_MB (sled's
//! cache for the replica, default 256 as `isms mirror --cache-mb`).

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use ledger::envelope::EnvelopeView;
use ledger::{Import, KeyGrant, Ledger, LedgerConfig, LedgerId, Replicator, SignedEvent};
use prost::Message;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let entries = env("MC_ENTRIES", 1_000_000);
    let step = env("MC_BATCH", 50_000).max(1_000) / 1_000 * 1_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = SigningKey::from_bytes(&[2; 32]);
    let id = LedgerId([5; 16]);
    let source = Ledger::create_with_id(
        dir.path().join("source"),
        id,
        "Mirror bench Ltd",
        SigningKey::from_bytes(&[1; 32]),
        vec![KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "admin".into(),
            roles: vec!["admin".into()],
        }],
        LedgerConfig::default(),
    )
    .expect("create");
    let started = Instant::now();
    let now = ledger::UnixMicros::now().0;
    for batch in 0..entries.div_ceil(1_000) {
        let events = (0..1_000)
            .map(|i| {
                let mut body = EnvelopeView {
                    ledger_id: id.0.to_vec(),
                    event_id: format!("ev-{batch}-{i}"),
                    effective_at_us: now,
                    client_time_us: now,
                    ..EnvelopeView::default()
                }
                .encode_to_vec();
                // An ISMS-sized payload as field 32.
                body.extend_from_slice(&[0x82, 0x02, 100]);
                body.extend_from_slice(&[b'x'; 100]);
                SignedEvent::sign(&admin, body)
            })
            .collect();
        for r in source.append(events) {
            r.expect("append");
        }
    }
    let size = source.head().size;
    println!(
        "source: {size} entries built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let genesis = source.get(ledger::Seq(0)).unwrap().unwrap().encode();
    let first = source.checkpoint_at(1).unwrap().unwrap();
    let replica_dir = dir.path().join("replica");
    let mut import = Import::begin(&replica_dir, &genesis, &LedgerConfig::default()).unwrap();
    import.checkpoint(&first.note).unwrap();
    import.finish().unwrap();
    let config = LedgerConfig {
        cache_bytes: env("MC_CACHE_MB", 256) * 1024 * 1024,
        ..LedgerConfig::default()
    };
    let replica = Arc::new(Ledger::open(&replica_dir, config, None).unwrap());

    // The batches as the mirror receives them: read first, so that the replication figure is
    // the replica's own work (reading from the source store is timed apart).
    let t = Instant::now();
    let mut batches = Vec::new();
    let mut at = 1;
    while at < size {
        let to = (at + step).min(size);
        let raw: Vec<Vec<u8>> = source
            .entries(at..to)
            .map(|e| e.unwrap().encode())
            .collect();
        let note = source
            .checkpoint_at(to)
            .unwrap()
            .expect("a checkpoint every 1,000")
            .note;
        batches.push((raw, note));
        at = to;
    }
    let reading = t.elapsed().as_secs_f64();
    // Checks of one batch overlap the write of the one before (`Replicator`); the time runs
    // until the last batch is flushed.
    let t = Instant::now();
    let mut replicator = Replicator::new(replica.clone());
    for (raw, note) in &batches {
        replicator.push(raw, note).expect("replicate");
    }
    replicator.finish().expect("replicate");
    let replicating = t.elapsed().as_secs_f64();
    assert_eq!(replica.head(), source.head());
    let copied = (size - 1) as f64;
    println!(
        "mirror catch-up, {} entries in batches of {step} (2 cores)",
        size - 1
    );
    println!(
        "{:<58}{:>10.0}",
        "verified and stored (entries/s)",
        copied / replicating
    );
    println!(
        "{:<58}{:>10.0}",
        "including reading them from the source store (entries/s)",
        copied / (replicating + reading)
    );
}
