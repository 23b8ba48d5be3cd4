//! Read paths over a damaged store end in bounded time with one error that names the record,
//! never an endless run of the same error, and never a silent gap.

mod common;

use common::{put_raw_entry, remove_raw_entry, Fixture};
use ledger::LedgerError;

/// A ledger of the genesis and `batches` one-event batches: one checkpoint per batch.
fn ledger_with_batches(batches: usize) -> Fixture {
    let f = Fixture::new();
    for i in 0..batches {
        let event = f.event(
            &f.admin,
            &format!("evt-{i}"),
            format!("payload {i}").as_bytes(),
        );
        f.ledger.append(vec![event]).remove(0).expect("append");
    }
    f
}

fn key(prefix: u8, n: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&n.to_be_bytes());
    k
}

#[test]
fn checkpoints_in_reads_only_the_sizes_asked_for() {
    let f = ledger_with_batches(6);
    let sizes: Vec<u64> = f
        .ledger
        .checkpoints_in(3..=5)
        .map(|c| c.expect("checkpoint").checkpoint.size)
        .collect();
    assert_eq!(sizes, vec![3, 4, 5]);
}

#[test]
fn checkpoints_in_past_the_head_stops_at_the_head() {
    let f = ledger_with_batches(3);
    let head = f.ledger.head().size;
    let sizes: Vec<u64> = f
        .ledger
        .checkpoints_in(head..=u64::MAX)
        .map(|c| c.expect("checkpoint").checkpoint.size)
        .collect();
    assert_eq!(sizes, vec![head]);
    assert_eq!(f.ledger.checkpoints_in(head + 1..=u64::MAX).count(), 0);
}

#[test]
fn a_damaged_checkpoint_ends_the_list_with_one_error_naming_its_size() {
    let f = ledger_with_batches(6).with_store_closed(|records| {
        records
            .insert(key(b'c', 4), b"not a checkpoint note".to_vec())
            .expect("insert");
    });
    let items: Vec<_> = f.ledger.checkpoints().collect();
    let sizes: Vec<u64> = items
        .iter()
        .filter_map(|c| c.as_ref().ok().map(|c| c.checkpoint.size))
        .collect();
    assert_eq!(
        sizes,
        vec![1, 2, 3],
        "the checkpoints before the damage are read"
    );
    assert_eq!(items.len(), 4, "one error, then the list ends");
    let Err(LedgerError::Corrupt { seq, what }) = &items[3] else {
        panic!("expected a corrupt-record error, got {:?}", items[3]);
    };
    assert_eq!(*seq, 3, "the last entry the damaged checkpoint covers");
    assert!(what.contains("checkpoint of size 4"), "{what}");
}

#[test]
fn a_missing_entry_is_named_by_entries_instead_of_skipped() {
    let f = ledger_with_batches(5).with_store_closed(|records| {
        remove_raw_entry(records, 3);
    });
    let items: Vec<_> = f.ledger.entries(0..6).collect();
    assert_eq!(items.len(), 4, "entries 0..=2, then one error");
    let Err(LedgerError::Corrupt { seq, what }) = &items[3] else {
        panic!("expected a corrupt-record error, got {:?}", items[3]);
    };
    assert_eq!(*seq, 3);
    assert!(what.contains("entry 3 is missing"), "{what}");
}

#[test]
fn a_damaged_entry_is_named_and_ends_the_read() {
    let f = ledger_with_batches(5).with_store_closed(|records| {
        put_raw_entry(records, 2, &[0xff; 7]);
    });
    let items: Vec<_> = f.ledger.entries(0..6).collect();
    assert_eq!(items.len(), 3, "entries 0 and 1, then one error");
    assert!(matches!(
        &items[2],
        Err(LedgerError::Corrupt { seq: 2, .. })
    ));
}

#[test]
fn a_corrupt_record_maps_to_data_loss_not_a_retryable_code() {
    let error = LedgerError::Corrupt {
        seq: 9,
        what: "damaged".into(),
    };
    assert_eq!(error.code(), ledger::Code::DataLoss);
}

#[test]
fn a_store_that_lost_acknowledged_entries_is_refused_naming_the_first_missing_seq() {
    // An earlier copy of the store stands in for sled having dropped the tail of its log:
    // the acknowledged-head file of the later store says more was acknowledged.
    let f = ledger_with_batches(2);
    let earlier = tempfile::tempdir().expect("temp dir");
    f.ledger.flush().expect("flush");
    let f = f.restart();
    common::copy_dir(f.dir.path(), earlier.path());
    let kept = f.event(&f.admin, "evt-later", b"later");
    f.ledger.append(vec![kept]).remove(0).expect("append");
    let later_size = f.ledger.head().size;
    std::fs::copy(
        f.dir.path().join(ledger::ACKNOWLEDGED_FILE),
        earlier.path().join(ledger::ACKNOWLEDGED_FILE),
    )
    .expect("copy the acknowledged-head file");
    let refused = ledger::Ledger::open(earlier.path(), common::config(&f.clock), None)
        .expect_err("acknowledged entries are missing");
    let LedgerError::Corrupt { seq, what } = &refused else {
        panic!("expected a corrupt-record error, got {refused}");
    };
    assert_eq!(
        *seq,
        later_size - 1,
        "the first acknowledged entry the store lacks"
    );
    assert!(what.contains("had been acknowledged"), "{what}");
}
