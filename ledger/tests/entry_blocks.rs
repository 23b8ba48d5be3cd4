//! Entry blocks (docs/FORMAT.md, "Entry blocks"): how a batch's entries are split into
//! blocks, how a block's bytes are checked, and how reads find entries in blocks and in the
//! single records of stores written before layout 3.

use ledger::engine::{KeyRange, Keyspace, SledSpace, WriteBatch};
use ledger::entry_blocks::{self, Block, MAX_BYTES, MAX_ENTRIES};
use ledger::LedgerError;

fn space() -> SledSpace {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary sled");
    SledSpace(db.open_tree("records").expect("tree"))
}

/// Entry `seq`'s stand-in bytes: distinct per seq, `len` long.
fn fake_entry(seq: u64, len: usize) -> Vec<u8> {
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.resize(len.max(8), (seq % 251) as u8);
    bytes
}

/// Stores the entries `first..first + count` as one batch, as the ledger writes them.
fn put_batch(records: &SledSpace, first: u64, count: u64, len: usize) {
    let entries: Vec<Vec<u8>> = (first..first + count).map(|s| fake_entry(s, len)).collect();
    let mut batch = WriteBatch::default();
    entry_blocks::put(&mut batch, first, &entries);
    records.apply(batch).expect("apply");
}

/// The first seqs of the stored blocks.
fn block_starts(records: &SledSpace) -> Vec<u64> {
    records
        .scan(KeyRange::prefix([entry_blocks::ENTRY_BLOCK]))
        .map(|item| {
            let (key, _) = item.expect("scan");
            u64::from_be_bytes(key[1..].try_into().expect("8 bytes"))
        })
        .collect()
}

/// Stores entry `seq` as a single record, as stores before layout 3 did.
fn put_single(records: &SledSpace, seq: u64, len: usize) {
    let mut key = vec![b'e'];
    key.extend_from_slice(&seq.to_be_bytes());
    records.insert(&key, &fake_entry(seq, len)).expect("insert");
}

#[test]
fn a_block_decodes_to_exactly_the_entries_encoded() {
    let entries: Vec<Vec<u8>> = (7..12).map(|s| fake_entry(s, 10 + s as usize)).collect();
    let bytes = entry_blocks::encode(&entries);
    let block = Block::decode(7, &bytes).expect("decode");
    assert_eq!(block.len(), 5);
    assert_eq!(block.end(), 12);
    let decoded: Vec<(u64, Vec<u8>)> = block.entries().map(|(s, e)| (s, e.to_vec())).collect();
    let expected: Vec<(u64, Vec<u8>)> = (7..12).zip(entries).collect();
    assert_eq!(decoded, expected);
    assert_eq!(block.get(6), None);
    assert_eq!(block.get(12), None);
}

#[test]
fn a_batch_is_split_into_blocks_of_at_most_max_entries() {
    let records = space();
    put_batch(&records, 1, 150, 100);
    let starts = block_starts(&records);
    let step = MAX_ENTRIES as u64;
    assert_eq!(starts, vec![1, 1 + step, 1 + 2 * step]);
}

#[test]
fn a_block_takes_no_entry_once_its_bytes_reach_max_bytes() {
    let records = space();
    // Each entry is a third of the limit: the block closes after the third.
    put_batch(&records, 0, 7, MAX_BYTES / 3 + 1);
    assert_eq!(block_starts(&records), vec![0, 3, 6]);
}

#[test]
fn an_entry_larger_than_max_bytes_is_a_block_of_its_own() {
    let records = space();
    put_batch(&records, 0, 2, MAX_BYTES * 2);
    assert_eq!(block_starts(&records), vec![0, 1]);
    let read = entry_blocks::read(&records, 1)
        .expect("read")
        .expect("stored");
    assert_eq!(read, fake_entry(1, MAX_BYTES * 2));
}

#[test]
fn a_block_whose_count_is_zero_or_above_the_limit_is_corrupt_at_its_first_seq() {
    for count in [0u32, MAX_ENTRIES as u32 + 1] {
        let mut bytes = entry_blocks::encode(&[fake_entry(5, 20)]);
        bytes[..4].copy_from_slice(&count.to_be_bytes());
        let err = Block::decode(5, &bytes).expect_err("a bad count");
        let LedgerError::Corrupt { seq, what } = err else {
            panic!("expected Corrupt, got {err}");
        };
        assert_eq!(seq, 5);
        assert!(what.contains(&format!("{count} entries")), "{what}");
    }
}

#[test]
fn a_block_whose_offsets_run_past_its_bytes_is_corrupt() {
    let mut bytes = entry_blocks::encode(&[fake_entry(3, 20), fake_entry(4, 20)]);
    // The first entry's end offset, pushed past the data.
    bytes[4..8].copy_from_slice(&1000u32.to_be_bytes());
    let err = Block::decode(3, &bytes).expect_err("offset outside");
    assert!(err.to_string().contains("outside its 40 bytes"), "{err}");
}

#[test]
fn a_block_with_bytes_after_its_last_entry_is_corrupt() {
    let mut bytes = entry_blocks::encode(&[fake_entry(3, 20)]);
    bytes.push(0);
    let err = Block::decode(3, &bytes).expect_err("trailing byte");
    assert!(
        err.to_string().contains("1 bytes after its last entry"),
        "{err}"
    );
}

#[test]
fn reads_find_single_records_below_the_first_block_and_blocks_from_it() {
    let records = space();
    for seq in 0..10 {
        put_single(&records, seq, 30);
    }
    put_batch(&records, 10, 100, 30);
    for seq in [0, 9, 10, 73, 109] {
        let read = entry_blocks::read(&records, seq).expect("read");
        assert_eq!(read, Some(fake_entry(seq, 30)), "seq {seq}");
    }
    assert_eq!(entry_blocks::read(&records, 110).expect("read"), None);
}

#[test]
fn a_scan_yields_every_stored_entry_in_a_range_once_in_order() {
    let records = space();
    for seq in 0..5 {
        put_single(&records, seq, 16);
    }
    put_batch(&records, 5, 3, 16);
    put_batch(&records, 8, 200, 16);
    for (start, end) in [(0, 208), (3, 9), (6, 7), (70, 140), (207, 300), (9, 9)] {
        let seqs: Vec<u64> = entry_blocks::scan(&records, start, end)
            .map(|item| {
                let (seq, raw) = item.expect("scan");
                assert_eq!(raw, fake_entry(seq, 16), "seq {seq}");
                seq
            })
            .collect();
        let expected: Vec<u64> = (start..end.min(208)).collect();
        assert_eq!(seqs, expected, "{start}..{end}");
    }
}

#[test]
fn a_scan_ends_at_the_first_damaged_block() {
    let records = space();
    put_batch(&records, 0, 3 * MAX_ENTRIES as u64, 16);
    let damaged = entry_blocks::block_key(MAX_ENTRIES as u64);
    records.insert(&damaged, &[0, 0, 0]).expect("damage");
    let items: Vec<_> = entry_blocks::scan(&records, 0, 3 * MAX_ENTRIES as u64).collect();
    assert_eq!(
        items.len(),
        MAX_ENTRIES + 1,
        "the first block, then one error"
    );
    let Err(LedgerError::Corrupt { seq, .. }) = items.last().expect("an item") else {
        panic!("expected a corrupt block, got {:?}", items.last());
    };
    assert_eq!(*seq, MAX_ENTRIES as u64);
}

#[test]
fn removing_an_entry_splits_its_block_and_leaves_the_others_readable() {
    let records = space();
    put_batch(&records, 0, 10, 16);
    entry_blocks::remove(&records, 4).expect("remove");
    assert_eq!(block_starts(&records), vec![0, 5]);
    assert_eq!(entry_blocks::read(&records, 4).expect("read"), None);
    for seq in (0..10).filter(|s| *s != 4) {
        assert_eq!(
            entry_blocks::read(&records, seq).expect("read"),
            Some(fake_entry(seq, 16))
        );
    }
    assert_eq!(
        entry_blocks::first_at_or_after(&records, 4).expect("read"),
        Some(5)
    );
}

#[test]
fn replacing_an_entry_changes_only_that_entry() {
    let records = space();
    put_batch(&records, 0, 10, 16);
    entry_blocks::replace(&records, 6, b"changed").expect("replace");
    for seq in 0..10 {
        let expected = if seq == 6 {
            b"changed".to_vec()
        } else {
            fake_entry(seq, 16)
        };
        assert_eq!(
            entry_blocks::read(&records, seq).expect("read"),
            Some(expected)
        );
    }
}

#[test]
fn first_at_or_after_finds_an_entry_inside_a_block_beyond_the_asked_seq() {
    let records = space();
    put_batch(&records, 0, 10, 16);
    assert_eq!(
        entry_blocks::first_at_or_after(&records, 3).expect("read"),
        Some(3)
    );
    assert_eq!(
        entry_blocks::first_at_or_after(&records, 10).expect("read"),
        None
    );
    put_single(&records, 20, 16);
    assert_eq!(
        entry_blocks::first_at_or_after(&records, 10).expect("read"),
        Some(20)
    );
}

#[test]
fn a_stored_entry_key_without_an_8_byte_seq_is_corrupt_not_seq_0() {
    let records = space();
    put_batch(&records, 0, 3, 16);
    // A 9-byte seq part: sorts between the keys of blocks 2 and 3.
    records
        .insert(b"b\x00\x00\x00\x00\x00\x00\x00\x02\xff", b"x")
        .expect("insert");
    let items: Vec<_> = entry_blocks::scan(&records, 0, 10).collect();
    let Some(Err(LedgerError::Corrupt { what, .. })) = items.last() else {
        panic!("expected a corrupt key, got {items:?}");
    };
    assert!(
        what.contains("620000000000000002ff"),
        "names the key: {what}"
    );
}
