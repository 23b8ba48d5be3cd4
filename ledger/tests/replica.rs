//! A verifying replica (`Ledger::replicate`, behind `isms mirror`): it takes another server's
//! entries batch by batch, checking each against its own history, and refuses a fork, a
//! rewritten entry or a bad signature before writing anything.

mod common;

use common::{copy_dir, Fixture};
use std::sync::Arc;

use ledger::{Head, Import, Ledger, LedgerConfig, LedgerError, Replicator};

/// A replica of `source` holding only its genesis (and checkpoint 1), opened read-only.
fn replica_of(source: &Ledger) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("dir");
    let genesis = source
        .get(ledger::Seq(0))
        .expect("read")
        .expect("genesis")
        .encode();
    let first = source
        .checkpoint_at(1)
        .expect("read")
        .expect("checkpoint 1");
    let mut import = Import::begin(dir.path(), &genesis, &LedgerConfig::default()).expect("begin");
    import.checkpoint(&first.note).expect("checkpoint 1");
    import.finish().expect("finish");
    let replica = Ledger::open(dir.path(), LedgerConfig::default(), None).expect("open");
    (dir, replica)
}

/// `source`'s entries after `replica`'s head up to `size`, and its checkpoint of `size`.
fn batch(source: &Ledger, from: u64, size: u64) -> (Vec<Vec<u8>>, String) {
    let raw = source
        .entries(from..size)
        .map(|e| e.expect("entry").encode())
        .collect();
    let note = source
        .checkpoint_at(size)
        .expect("read")
        .expect("checkpoint")
        .note;
    (raw, note)
}

/// Appends `n` batches of three events to the fixture's ledger.
fn grow(f: &Fixture, tag: &str, n: usize) {
    for b in 0..n {
        let events = (0..3)
            .map(|i| f.event(&f.admin, &format!("{tag}-{b}-{i}"), tag.as_bytes()))
            .collect();
        for r in f.ledger.append(events) {
            r.expect("append");
        }
        f.clock.advance(1_000);
    }
}

/// The sizes of `source`'s checkpoints larger than `size`, in order.
fn checkpoint_sizes_after(source: &Ledger, size: u64) -> Vec<u64> {
    source
        .checkpoints()
        .map(|c| c.expect("checkpoint").checkpoint.size)
        .filter(|s| *s > size)
        .collect()
}

/// Replicates every checkpoint of `source` after the replica's head.
fn follow(source: &Ledger, replica: &Ledger) -> Result<(), LedgerError> {
    for size in checkpoint_sizes_after(source, replica.head().size) {
        let (raw, note) = batch(source, replica.head().size, size);
        replica.replicate(&raw, &note)?;
    }
    Ok(())
}

#[test]
fn a_replica_follows_its_ledger_and_verifies() {
    let f = Fixture::new();
    grow(&f, "a", 4);
    let (_dir, replica) = replica_of(&f.ledger);
    follow(&f.ledger, &replica).expect("follow");
    assert_eq!(replica.head(), f.ledger.head());
    replica.verify(&|_| {}).expect("the replica verifies");
}

#[test]
fn a_replica_resumes_from_its_head_after_a_reopen() {
    let f = Fixture::new();
    grow(&f, "a", 2);
    let (dir, replica) = replica_of(&f.ledger);
    follow(&f.ledger, &replica).expect("follow");
    drop(replica);
    grow(&f, "b", 2);
    let replica = Ledger::open(dir.path(), LedgerConfig::default(), None).expect("reopen");
    follow(&f.ledger, &replica).expect("follow after the reopen");
    assert_eq!(replica.head(), f.ledger.head());
}

#[test]
fn a_replica_refuses_a_fork_naming_the_seq_and_writes_nothing() {
    let f = Fixture::new();
    grow(&f, "common", 1);
    // A second server of the same ledger: a copy of the store that then goes its own way.
    let other_dir = tempfile::tempdir().expect("dir");
    let Fixture {
        dir,
        ledger,
        ledger_key,
        admin,
        clock,
    } = f;
    drop(ledger);
    copy_dir(dir.path(), other_dir.path());
    let reopen = |path: &std::path::Path| {
        Ledger::open(path, common::config(&clock), Some(ledger_key.clone())).expect("open")
    };
    let f = Fixture {
        ledger: reopen(dir.path()),
        dir,
        ledger_key: ledger_key.clone(),
        admin: admin.clone(),
        clock: clock.clone(),
    };
    let g = Fixture {
        ledger: reopen(other_dir.path()),
        dir: other_dir,
        ledger_key,
        admin,
        clock,
    };
    grow(&f, "mine", 1);
    grow(&g, "theirs", 2);
    let (_rdir, replica) = replica_of(&f.ledger);
    follow(&f.ledger, &replica).expect("follow the first server");
    let before = replica.head();
    let err = follow(&g.ledger, &replica).expect_err("a fork was replicated");
    let LedgerError::Corrupt { seq, what } = &err else {
        panic!("{err}");
    };
    // The first entry of the other history does not link onto this replica's last one.
    assert_eq!(*seq, before.size, "{what}");
    assert!(what.contains("the history differs"), "{what}");
    assert_eq!(replica.head(), before, "nothing of the fork was written");
}

#[test]
fn a_replica_refuses_an_entry_whose_signature_does_not_verify() {
    let f = Fixture::new();
    grow(&f, "a", 2);
    let (_dir, replica) = replica_of(&f.ledger);
    let size = f.ledger.head().size;
    let (mut raw, note) = batch(&f.ledger, 1, size);
    let last = raw[2].len() - 1;
    raw[2][last] ^= 1;
    let err = replica
        .replicate(&raw, &note)
        .expect_err("a changed body was replicated");
    assert!(matches!(err, LedgerError::Corrupt { seq: 3, .. }), "{err}");
    assert_eq!(replica.head().size, 1);
}

/// Replicates every checkpoint of `source` after the replica's head through a pipeline.
fn follow_pipelined(source: &Ledger, replica: &Arc<Ledger>) -> Result<Head, LedgerError> {
    let mut replicator = Replicator::new(replica.clone());
    for size in checkpoint_sizes_after(source, replica.head().size) {
        let (raw, note) = batch(source, replicator.tip().head.size, size);
        replicator.push(&raw, &note)?;
    }
    replicator.finish()
}

#[test]
fn a_pipelined_replica_matches_its_ledger() {
    let f = Fixture::new();
    grow(&f, "a", 6);
    let (_dir, replica) = replica_of(&f.ledger);
    let replica = Arc::new(replica);
    let head = follow_pipelined(&f.ledger, &replica).expect("follow");
    assert_eq!(head, f.ledger.head());
    replica.verify(&|_| {}).expect("the replica verifies");
}

#[test]
fn a_key_enrolled_in_a_checked_batch_not_yet_stored_signs_the_next_batch() {
    let f = Fixture::new();
    let agent = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    for r in f
        .ledger
        .append(vec![f.enroll("enrol-agent", &agent, "agent", &["agent"])])
    {
        r.expect("enrol");
    }
    for r in f.ledger.append(vec![f.event(&agent, "by-agent", b"x")]) {
        r.expect("append");
    }
    let (_dir, replica) = replica_of(&f.ledger);
    let (raw, note) = batch(&f.ledger, 1, 2);
    let first = replica
        .check_replica(&replica.replica_tip(), &raw, &note)
        .expect("the enrolment");
    // Checked against the first batch's tip while the first is not stored.
    let (raw, note) = batch(&f.ledger, 2, 3);
    let second = replica
        .check_replica(first.tip(), &raw, &note)
        .expect("the agent's event, against the tip");
    replica.store_replica(first).expect("store the first");
    replica.store_replica(second).expect("store the second");
    assert_eq!(replica.head(), f.ledger.head());
}

#[test]
fn a_pipelined_replica_keeps_the_batches_before_a_bad_one_and_names_its_seq() {
    let f = Fixture::new();
    grow(&f, "a", 3);
    let (_dir, replica) = replica_of(&f.ledger);
    let replica = Arc::new(replica);
    let mut replicator = Replicator::new(replica.clone());
    let (raw, note) = batch(&f.ledger, 1, 4);
    replicator.push(&raw, &note).expect("the first batch");
    let (mut raw, note) = batch(&f.ledger, 4, 7);
    let mut changed = ledger::Entry::decode(&raw[1]).expect("decode");
    changed.signature[0] ^= 1;
    raw[1] = changed.encode();
    match replicator.push(&raw, &note) {
        Err(LedgerError::Corrupt { seq, .. }) => assert_eq!(seq, 5),
        other => panic!("a bad signature was taken: {other:?}"),
    }
    assert_eq!(replicator.finish().expect("finish").size, 4);
    assert_eq!(replica.head().size, 4, "the good batch before it is stored");
}

#[test]
fn a_batch_checked_against_a_head_that_moved_on_is_not_stored() {
    let f = Fixture::new();
    grow(&f, "a", 2);
    let (_dir, replica) = replica_of(&f.ledger);
    let (raw, note) = batch(&f.ledger, 1, 4);
    let checked = replica
        .check_replica(&replica.replica_tip(), &raw, &note)
        .expect("check");
    replica.replicate(&raw, &note).expect("replicate");
    let head = replica.head();
    replica
        .store_replica(checked)
        .expect_err("a batch checked against an old head was stored");
    assert_eq!(replica.head(), head);
}
