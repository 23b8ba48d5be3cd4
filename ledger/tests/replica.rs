//! A verifying replica (`Ledger::replicate`, behind `isms mirror`): it takes another server's
//! entries batch by batch, checking each against its own history, and refuses a fork, a
//! rewritten entry or a bad signature before writing anything.

mod common;

use common::{copy_dir, Fixture};
use ledger::{Import, Ledger, LedgerConfig, LedgerError};

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

/// Replicates every checkpoint of `source` after the replica's head.
fn follow(source: &Ledger, replica: &Ledger) -> Result<(), LedgerError> {
    let sizes: Vec<u64> = source
        .checkpoints()
        .map(|c| c.expect("checkpoint").checkpoint.size)
        .filter(|s| *s > replica.head().size)
        .collect();
    for size in sizes {
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
