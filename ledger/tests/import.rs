//! Rebuilding a store from existing entries (`Import`, behind `isms restore`) and saving what
//! still verifies from a damaged one (`salvage`).

mod common;

use common::{config, key, open_raw, put_raw_entry, Fixture};
use ledger::{salvage, Import, Ledger, LedgerError};

/// A ledger with a few batches, an enrolled and then revoked key, and an artifact.
fn filled() -> Fixture {
    let f = Fixture::new();
    let agent = key(9);
    f.ledger.append(vec![f.enroll(
        "enrol-agent",
        &agent,
        "agent@example.com",
        &["agent"],
    )]);
    for batch in 0..6 {
        let events = (0..5)
            .map(|i| f.event(&agent, &format!("evidence-{batch}-{i}"), b"scan"))
            .collect();
        f.ledger.append(events);
        f.clock.advance(1_000_000);
    }
    f.ledger
        .put_artifact(b"the scan's bytes")
        .expect("artifact");
    f.ledger.append(vec![f.revoke("revoke-agent", &agent)]);
    f
}

/// Every raw entry and every stored checkpoint note (with cosignatures) of `ledger`.
fn contents(ledger: &Ledger) -> (Vec<Vec<u8>>, Vec<String>) {
    let size = ledger.head().size;
    let entries = ledger
        .entries(0..size)
        .map(|e| e.expect("entry").encode())
        .collect();
    let notes = ledger
        .checkpoints()
        .map(|c| {
            ledger
                .with_cosignatures(c.expect("checkpoint"))
                .expect("cosignatures")
                .note
        })
        .collect();
    (entries, notes)
}

/// Imports `entries` into `path`, adding each note when the tree reaches its size.
fn import(
    path: &std::path::Path,
    entries: &[Vec<u8>],
    notes: &[String],
) -> Result<(), LedgerError> {
    let sizes: Vec<u64> = notes
        .iter()
        .map(|n| {
            ledger::SignedCheckpoint::parse_unverified(n)
                .expect("note")
                .size
        })
        .collect();
    let mut import = Import::begin(path, &entries[0], &ledger::LedgerConfig::default())?;
    let add_notes = |import: &mut Import| -> Result<(), LedgerError> {
        for (size, note) in sizes.iter().zip(notes) {
            if *size == import.size() {
                import.checkpoint(note)?;
            }
        }
        Ok(())
    };
    add_notes(&mut import)?;
    for raw in &entries[1..] {
        import.push(raw)?;
        add_notes(&mut import)?;
    }
    import.finish().map(|_| ())
}

#[test]
fn an_imported_store_has_the_same_entries_checkpoints_and_root_and_verifies() {
    let f = filled();
    let (entries, notes) = contents(&f.ledger);
    let to = tempfile::tempdir().expect("temp dir");
    import(to.path(), &entries, &notes).expect("import");
    let copy = Ledger::open(to.path(), config(&f.clock), None).expect("open the copy");
    assert_eq!(copy.head(), f.ledger.head());
    assert_eq!(contents(&copy), (entries, notes));
    let report = copy.verify(&|_| {}).expect("the copy verifies");
    assert_eq!(report.entries, f.ledger.head().size);
}

#[test]
fn an_imported_store_continues_the_same_chain_with_its_keys() {
    let f = filled();
    let (entries, notes) = contents(&f.ledger);
    let to = tempfile::tempdir().expect("temp dir");
    import(to.path(), &entries, &notes).expect("import");
    let copy = Ledger::open(to.path(), config(&f.clock), Some(f.ledger_key.clone())).expect("open");
    let results = copy.append(vec![
        f.event(&f.admin, "after-restore", b"x"),
        // The revoked key stays revoked in the rebuilt key index.
        f.event(&key(9), "by-revoked-agent", b"x"),
    ]);
    let placed = results[0].as_ref().expect("the admin appends");
    assert_eq!(placed.prev_hash, f.ledger.head().last_hash);
    assert!(results[1].is_err(), "a revoked key signed after the import");
    copy.verify(&|_| {}).expect("verifies after the append");
}

#[test]
fn an_import_refuses_a_checkpoint_whose_root_differs_from_the_entries() {
    let f = filled();
    let (entries, notes) = contents(&f.ledger);
    // The checkpoint of size 1 put where the tree has 2 entries: signed, but another root.
    let first = notes[0].clone();
    let mut import = Import::begin(
        tempfile::tempdir().expect("dir").path(),
        &entries[0],
        &ledger::LedgerConfig::default(),
    )
    .expect("begin");
    import.push(&entries[1]).expect("push");
    let err = import
        .checkpoint(&first)
        .expect_err("a mismatched checkpoint was kept");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn an_import_refuses_an_entry_that_does_not_chain() {
    let f = filled();
    let (entries, _) = contents(&f.ledger);
    let dir = tempfile::tempdir().expect("dir");
    let mut import =
        Import::begin(dir.path(), &entries[0], &ledger::LedgerConfig::default()).expect("begin");
    let err = import
        .push(&entries[2])
        .expect_err("entry 2 accepted after the genesis");
    assert!(matches!(err, LedgerError::Corrupt { seq: 1, .. }), "{err}");
}

#[test]
fn an_import_without_a_checkpoint_at_its_end_is_refused() {
    let f = filled();
    let (entries, _) = contents(&f.ledger);
    let dir = tempfile::tempdir().expect("dir");
    let mut import =
        Import::begin(dir.path(), &entries[0], &ledger::LedgerConfig::default()).expect("begin");
    import.push(&entries[1]).expect("push");
    let err = import.finish().expect_err("finished without a checkpoint");
    assert!(err.to_string().contains("no checkpoint of size 2"), "{err}");
}

/// `f`'s store, closed, with one byte of the body of the entry at `seq` changed through sled
/// (its signature no longer holds), and the ledger key.
fn damaged_at(f: Fixture, seq: u64) -> (tempfile::TempDir, ed25519_dalek::SigningKey) {
    let raw = f
        .ledger
        .get(ledger::Seq(seq))
        .expect("read")
        .expect("entry")
        .encode();
    let (dir, key) = (f.dir, f.ledger_key);
    drop(f.ledger);
    let db = open_raw(dir.path());
    let records = db.open_tree("records").expect("records");
    let mut changed = raw.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    put_raw_entry(&records, seq, &changed);
    db.flush().expect("flush");
    drop(db);
    (dir, key)
}

fn salvage_into(
    from: &std::path::Path,
    key: &ed25519_dalek::SigningKey,
) -> (tempfile::TempDir, ledger::Salvaged) {
    let to = tempfile::tempdir().expect("dir");
    let store = to.path().join("store");
    let saved = salvage(from, &store, key, &ledger::LedgerConfig::default()).expect("salvage");
    (to, saved)
}

#[test]
fn salvage_saves_every_entry_before_the_first_damaged_one_and_names_it() {
    let (dir, key) = damaged_at(filled(), 10);
    let (to, saved) = salvage_into(dir.path(), &key);
    assert_eq!(saved.entries, 10);
    assert_eq!(saved.first_lost.as_ref().map(|(seq, _)| *seq), Some(10));
    let copy = Ledger::open(
        to.path().join("store"),
        ledger::LedgerConfig::default(),
        Some(key),
    )
    .expect("open the salvaged store");
    assert_eq!(copy.head().size, 10);
    assert_eq!(copy.verify(&|_| {}).expect("verifies").entries, 10);
}

#[test]
fn salvage_signs_a_checkpoint_where_no_stored_one_ends() {
    // Batches of 5 after seq 1: no stored checkpoint has size 10.
    let (dir, key) = damaged_at(filled(), 10);
    let (to, saved) = salvage_into(dir.path(), &key);
    assert!(saved.signed_checkpoint);
    let copy = Ledger::open(
        to.path().join("store"),
        ledger::LedgerConfig::default(),
        None,
    )
    .expect("open");
    assert_eq!(
        copy.latest_checkpoint()
            .expect("checkpoint")
            .checkpoint
            .size,
        10
    );
}

#[test]
fn salvage_of_an_intact_store_copies_every_entry_checkpoint_and_artifact() {
    let f = filled();
    let (size, checkpoints) = (f.ledger.head().size, f.ledger.checkpoints().count() as u64);
    let (dir, key) = (f.dir, f.ledger_key);
    drop(f.ledger);
    let (_to, saved) = salvage_into(dir.path(), &key);
    assert_eq!(
        (
            saved.entries,
            saved.first_lost,
            saved.checkpoints,
            saved.signed_checkpoint,
            saved.artifacts
        ),
        (size, None, checkpoints, false, 1)
    );
}

#[test]
fn salvage_refuses_a_key_that_is_not_the_ledgers() {
    let f = filled();
    let dir = f.dir;
    drop(f.ledger);
    let to = tempfile::tempdir().expect("dir");
    let err = salvage(
        dir.path(),
        &to.path().join("store"),
        &key(42),
        &ledger::LedgerConfig::default(),
    )
    .expect_err("salvaged with another key");
    assert!(matches!(err, LedgerError::WrongLedgerKey { .. }), "{err}");
}
