//! Witness cosignatures kept beside the checkpoints: `Ledger::add_cosignatures` stores them
//! durably under their own key, never rewrites the ledger-signed note, and
//! `with_cosignatures` serves the note with them as extra signature lines.

mod common;

use common::{key, Fixture};
use ed25519_dalek::SigningKey;
use ledger::{LedgerError, SignedCheckpoint, WitnessKey};

fn witness(seed: u8, name: &str) -> WitnessKey {
    WitnessKey::new(name, SigningKey::from_bytes(&[seed; 32])).expect("witness key")
}

/// The witness's line over the stored checkpoint of `size`.
fn cosign(f: &Fixture, w: &WitnessKey, size: u64, at: u64) -> String {
    let note = f.ledger.checkpoint_at(size).unwrap().expect("stored").note;
    w.cosign(ledger::cosignature::note_body(&note).unwrap(), at)
        .unwrap()
}

#[test]
fn kept_cosignatures_are_served_as_extra_lines_and_the_stored_note_is_unchanged() {
    let f = Fixture::new();
    f.ledger.append(vec![f.event(&f.admin, "e1", b"x")]);
    let size = f.ledger.head().size;
    let stored = f.ledger.checkpoint_at(size).unwrap().unwrap();
    let (w1, w2) = (witness(4, "w.example/1"), witness(5, "w.example/2"));
    let line1 = cosign(&f, &w1, size, 1_700_000_000);
    f.ledger.add_cosignatures(size, &line1).unwrap();
    // Sent again (a witness re-cosigning) and with a second witness: no line twice.
    f.ledger
        .add_cosignatures(
            size,
            &format!("{line1}{}", cosign(&f, &w2, size, 1_700_000_001)),
        )
        .unwrap();

    assert_eq!(f.ledger.checkpoint_at(size).unwrap().unwrap(), stored);
    let served = f.ledger.with_cosignatures(stored.clone()).unwrap();
    assert_eq!(served.note.lines().count(), stored.note.lines().count() + 2);
    SignedCheckpoint::verify(&served.note, &key(1).verifying_key()).unwrap();
    assert_eq!(w1.verifier().verify_note(&served.note), Ok(1_700_000_000));
    assert_eq!(w2.verifier().verify_note(&served.note), Ok(1_700_000_001));
    let (at, line) = f
        .ledger
        .latest_cosignature(|l| w1.verifier().names(l))
        .unwrap()
        .expect("kept");
    assert_eq!((at, line.to_line()), (size, line1));

    let f = f.restart();
    let again = f.ledger.checkpoint_at(size).unwrap().unwrap();
    assert_eq!(f.ledger.with_cosignatures(again).unwrap(), served);
    f.ledger.verify(&|_| {}).unwrap();
}

#[test]
fn cosignatures_for_a_size_without_a_checkpoint_or_that_are_not_lines_are_refused() {
    let f = Fixture::new();
    let size = f.ledger.head().size;
    let line = cosign(&f, &witness(4, "w.example/1"), size, 1);
    assert!(matches!(
        f.ledger.add_cosignatures(size + 5, &line),
        Err(LedgerError::OutOfRange(_))
    ));
    assert!(matches!(
        f.ledger.add_cosignatures(size, "not a signature line\n"),
        Err(LedgerError::Cosignature(_))
    ));
    assert_eq!(f.ledger.cosignatures(size).unwrap(), "");
}
