//! Handing the ledger's checkpoint key over to a new key: a signed `ledger_key_rotated` entry
//! that the writer, verification, import and salvage all follow.

mod common;

use common::{config, key, Fixture};
use ledger::envelope::Handover;
use ledger::{AppendError, Ledger, LedgerError, SignedCheckpoint};
use prost::Message as _;

const NEW_KEY: u8 = 77;

/// A ledger with events before and after a hand-over to `key(NEW_KEY)`, reopened with the new
/// key; the seq of the hand-over entry.
fn rotated() -> (Fixture, u64) {
    let f = Fixture::new();
    f.ledger.append(
        (0..3)
            .map(|i| f.event(&f.admin, &format!("before-{i}"), b"x"))
            .collect(),
    );
    let handover = f
        .ledger
        .rotate_ledger_key(&f.admin, &key(NEW_KEY), "yearly rotation")
        .expect("rotate");
    let mut f = f.restart_with_key(key(NEW_KEY));
    f.clock.advance(1_000);
    for i in 0..3 {
        let results = f
            .ledger
            .append(vec![f.event(&f.admin, &format!("after-{i}"), b"y")]);
        results[0].as_ref().expect("append after the hand-over");
    }
    f.ledger_key = key(NEW_KEY);
    (f, handover.seq.0)
}

#[test]
fn a_ledger_verifies_across_a_key_handover() {
    let (f, _) = rotated();
    let report = f.ledger.verify(&|_| {}).expect("verifies");
    assert_eq!(report.entries, f.ledger.head().size);
}

#[test]
fn checkpoints_up_to_the_handover_are_signed_by_the_old_key_and_later_ones_by_the_new() {
    let (f, seq) = rotated();
    let (old, new) = (key(1).verifying_key(), key(NEW_KEY).verifying_key());
    let at_handover = f
        .ledger
        .checkpoint_at(seq + 1)
        .expect("read")
        .expect("checkpoint");
    SignedCheckpoint::verify(&at_handover.note, &old).expect("the old key signs the hand-over's");
    let latest = f.ledger.latest_checkpoint().expect("latest");
    SignedCheckpoint::verify(&latest.note, &new).expect("the new key signs later ones");
    assert!(SignedCheckpoint::verify(&latest.note, &old).is_err());
}

#[test]
fn after_a_handover_the_ledger_does_not_reopen_with_the_old_key() {
    let (f, _) = rotated();
    let Fixture {
        dir, ledger, clock, ..
    } = f;
    drop(ledger);
    let err = Ledger::open(dir.path(), config(&clock), Some(key(1))).expect_err("old key");
    assert!(matches!(err, LedgerError::WrongLedgerKey { .. }), "{err}");
}

#[test]
fn a_handover_submitted_as_an_ordinary_append_is_refused() {
    let f = Fixture::new();
    let mut view = f.envelope("sneaky-rotation");
    let handover = Handover::sign(&f.ledger.ledger_id(), &f.ledger_key, &key(NEW_KEY));
    view.ledger_key_rotated = Some(handover.to_view("not this way"));
    let event = ledger::SignedEvent::sign(&f.admin, view.encode_to_vec());
    let result = f.ledger.append(vec![event]).pop().expect("one result");
    assert!(
        matches!(
            result,
            Err(AppendError::Malformed {
                field: "ledger_key_rotated",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn a_handover_not_signed_by_the_current_ledger_key_does_not_check() {
    let f = Fixture::new();
    let forged = Handover::sign(&f.ledger.ledger_id(), &key(99), &key(NEW_KEY));
    let why = forged
        .check(
            &f.ledger.ledger_id(),
            &f.ledger_key.verifying_key().to_bytes(),
        )
        .expect_err("a hand-over from another key");
    assert!(why.contains("old_key_signature"), "{why}");
}

#[test]
fn a_checkpoint_the_old_key_signed_after_the_handover_fails_verification() {
    let (f, seq) = rotated();
    let size = f.ledger.head().size;
    assert!(size > seq + 2, "a checkpoint after the hand-over's exists");
    let genuine = f
        .ledger
        .checkpoint_at(size)
        .expect("read")
        .expect("checkpoint");
    // The same statement, signed by the key that was handed over.
    let forged = genuine.checkpoint.sign(&key(1));
    let f = f.with_store_closed(|records| {
        let mut k = vec![b'c'];
        k.extend_from_slice(&size.to_be_bytes());
        records
            .insert(k, forged.note.as_bytes())
            .expect("overwrite");
    });
    let err = f
        .ledger
        .verify(&|_| {})
        .expect_err("an old-key checkpoint verified");
    assert_eq!(err.record, ledger::Record::Checkpoint(size), "{err}");
}

#[test]
fn salvage_of_a_rotated_ledger_keeps_its_checkpoints_with_the_new_key() {
    let (f, _) = rotated();
    let (size, checkpoints) = (f.ledger.head().size, f.ledger.checkpoints().count() as u64);
    let Fixture { dir, ledger, .. } = f;
    drop(ledger);
    let to = tempfile::tempdir().expect("dir");
    let saved = ledger::salvage(
        dir.path(),
        &to.path().join("store"),
        &key(NEW_KEY),
        &ledger::LedgerConfig::default(),
    )
    .expect("salvage");
    assert_eq!((saved.entries, saved.checkpoints), (size, checkpoints));
    let copy = Ledger::open(
        to.path().join("store"),
        ledger::LedgerConfig::default(),
        Some(key(NEW_KEY)),
    )
    .expect("opens with the new key");
    copy.verify(&|_| {}).expect("verifies");
}
