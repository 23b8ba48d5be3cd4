//! Tampering with stored entries — through sled and in the files on disk — is always caught by
//! `verify`, which names the entry that was changed.

mod common;

use std::sync::Arc;

use common::{config, open_raw, put_raw_entry, raw_entry, remove_raw_entry, Fixture, ManualClock};
use ledger::{Ledger, LedgerError, Seq};
use rand::{rngs::StdRng, Rng, SeedableRng};

const ENTRIES: u64 = 120;

/// A closed ledger with `ENTRIES` entries in batches of varied sizes: its folder and clock.
fn build() -> (tempfile::TempDir, Arc<ManualClock>, u64) {
    let f = Fixture::new();
    let mut i = 0;
    while f.ledger.head().size < ENTRIES {
        let n = (i % 7) + 1;
        let events = (0..n)
            .map(|j| {
                f.event(
                    &f.admin,
                    &format!("evt-{i:04}-{j}-marker"),
                    format!("payload {i} {j}").as_bytes(),
                )
            })
            .collect();
        f.ledger.append(events);
        i += 1;
    }
    let size = f.ledger.head().size;
    let Fixture {
        dir, clock, ledger, ..
    } = f;
    drop(ledger);
    (dir, clock, size)
}

fn open_ledger(path: &std::path::Path, clock: &Arc<ManualClock>) -> Result<Ledger, LedgerError> {
    Ledger::open(path, config(clock), None)
}

/// Opens the ledger in `path` and verifies it; the seq named by the failure (an open error
/// counts as failing at the seq it names).
fn failing_seq(clock: &Arc<ManualClock>, path: &std::path::Path) -> (u64, String) {
    match open_ledger(path, clock) {
        Err(LedgerError::Corrupt { seq, what }) => (seq, what),
        Err(e) => panic!("open failed without naming an entry: {e}"),
        Ok(ledger) => match ledger.verify(&|_| {}) {
            Ok(r) => panic!("tampered ledger verified: {r:?}"),
            Err(e) => (e.seq, e.to_string()),
        },
    }
}

#[test]
fn every_single_byte_change_through_sled_is_caught_at_its_seq() {
    let (dir, clock, size) = build();

    let mut rng = StdRng::seed_from_u64(2718);
    for round in 0..300 {
        let seq = rng.gen_range(0..size);
        let db = open_raw(dir.path());
        let tree = db.open_tree("records").unwrap();
        let original = raw_entry(&tree, seq);
        let mut changed = original.to_vec();
        let at = rng.gen_range(0..changed.len());
        changed[at] ^= rng.gen_range(1..=255u8);
        put_raw_entry(&tree, seq, &changed);
        db.flush().unwrap();
        drop((tree, db));

        let (named, what) = failing_seq(&clock, dir.path());
        assert_eq!(
            named, seq,
            "round {round}: byte {at} of entry {seq} changed, verify said: {what}"
        );

        let db = open_raw(dir.path());
        put_raw_entry(&db.open_tree("records").unwrap(), seq, &original);
        db.flush().unwrap();
    }
    verifies_again(dir.path(), &clock);
}

#[test]
fn every_single_byte_change_of_an_entry_block_is_caught_inside_its_seqs() {
    let (dir, clock, _) = build();
    let mut rng = StdRng::seed_from_u64(1618);
    for round in 0..200 {
        let db = open_raw(dir.path());
        let tree = db.open_tree("records").unwrap();
        let blocks: Vec<(sled::IVec, sled::IVec)> =
            tree.scan_prefix([b'b']).map(Result::unwrap).collect();
        let (key, original) = blocks[rng.gen_range(0..blocks.len())].clone();
        let first = u64::from_be_bytes(key[1..].try_into().unwrap());
        let count = u64::from(u32::from_be_bytes(original[..4].try_into().unwrap()));
        let mut changed = original.to_vec();
        // The count and offsets as often as the entries' bytes.
        let header = 4 + 4 * count as usize;
        let at = if rng.gen_bool(0.5) {
            rng.gen_range(0..header)
        } else {
            rng.gen_range(header..changed.len())
        };
        changed[at] ^= rng.gen_range(1..=255u8);
        tree.insert(&key, changed).unwrap();
        db.flush().unwrap();
        drop((tree, db));

        let (named, what) = failing_seq(&clock, dir.path());
        assert!(
            (first..first + count).contains(&named),
            "round {round}: byte {at} of the block of entries {first}..{} changed, verify \
             named {named}: {what}",
            first + count
        );

        let db = open_raw(dir.path());
        db.open_tree("records")
            .unwrap()
            .insert(&key, original)
            .unwrap();
        db.flush().unwrap();
    }
    verifies_again(dir.path(), &clock);
}

/// After every change was undone, the ledger verifies again.
fn verifies_again(path: &std::path::Path, clock: &Arc<ManualClock>) {
    open_ledger(path, clock)
        .unwrap()
        .verify(&|_| {})
        .expect("restored ledger verifies again");
}

#[test]
fn deleted_truncated_and_reordered_entries_are_caught() {
    let (dir, clock, size) = build();
    let mut rng = StdRng::seed_from_u64(31415);
    for round in 0..60 {
        let db = open_raw(dir.path());
        let tree = db.open_tree("records").unwrap();
        let a = rng.gen_range(1..size);
        let mut restore = vec![(a, raw_entry(&tree, a))];
        let expected = match round % 4 {
            0 => {
                remove_raw_entry(&tree, a);
                a
            }
            1 => {
                let value = restore[0].1.to_vec();
                let cut = rng.gen_range(0..value.len());
                put_raw_entry(&tree, a, &value[..cut]);
                a
            }
            2 => {
                let b = loop {
                    let b = rng.gen_range(1..size);
                    if b != a {
                        break b;
                    }
                };
                let vb = raw_entry(&tree, b);
                restore.push((b, vb.clone()));
                put_raw_entry(&tree, b, &restore[0].1.clone());
                put_raw_entry(&tree, a, &vb);
                a.min(b)
            }
            _ => {
                // Truncate the ledger: the last entries vanish, the head still says more.
                for s in a..size {
                    if s != a {
                        restore.push((s, raw_entry(&tree, s)));
                    }
                    remove_raw_entry(&tree, s);
                }
                a
            }
        };
        db.flush().unwrap();
        drop((tree, db));
        let (named, what) = failing_seq(&clock, dir.path());
        assert_eq!(named, expected, "round {round}: {what}");
        let db = open_raw(dir.path());
        let tree = db.open_tree("records").unwrap();
        for (s, v) in restore {
            put_raw_entry(&tree, s, &v);
        }
        db.flush().unwrap();
    }
    let ledger = open_ledger(dir.path(), &clock).unwrap();
    ledger.verify(&|_| {}).unwrap();
    assert_eq!(
        ledger.get(Seq(size - 1)).unwrap().unwrap().seq,
        Seq(size - 1)
    );
}

/// Every file sled keeps for the store, with its bytes.
fn store_files(path: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(dir).unwrap() {
            let p = item.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}

#[test]
fn single_byte_changes_in_the_files_on_disk_are_caught() {
    let (dir, clock, size) = build();
    let mut rng = StdRng::seed_from_u64(1618);
    for round in 0..40 {
        // Pick an entry and find its body in the files by its unique event id.
        let seq = rng.gen_range(1..size);
        let ledger = open_ledger(dir.path(), &clock).unwrap();
        let entry = ledger.get(Seq(seq)).unwrap().unwrap();
        drop(ledger);
        let marker = &entry.body[entry.body.len() - 12..];
        let files = store_files(dir.path());
        let (file, bytes) = files
            .iter()
            .find(|(_, b)| b.windows(marker.len()).any(|w| w == marker))
            .expect("the entry's bytes are in a file");
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap()
            + rng.gen_range(0..marker.len());
        let mut changed = bytes.clone();
        changed[at] ^= rng.gen_range(1..=255u8);
        std::fs::write(file, &changed).unwrap();

        // sled checksums what it writes, so a changed byte in its files usually makes it refuse
        // to open the store at all, before the ledger can name an entry; when it does open,
        // verify must fail at or before the changed entry.
        match open_ledger(dir.path(), &clock) {
            Err(e @ LedgerError::Damaged { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("is damaged") && text.contains("restore"),
                    "{text}"
                );
            }
            Err(e) => panic!("round {round}: open failed, but not as corruption: {e}"),
            Ok(ledger) => match ledger.verify(&|_| {}) {
                Ok(r) => panic!(
                    "round {round}: byte {at} of {file:?} changed, ledger still verified: {r:?}"
                ),
                Err(e) => assert!(
                    e.seq <= seq,
                    "round {round}: named {} after the changed entry {seq}",
                    e.seq
                ),
            },
        }
        std::fs::write(file, bytes).unwrap();
    }
    open_ledger(dir.path(), &clock)
        .unwrap()
        .verify(&|_| {})
        .unwrap();
}

#[test]
fn changed_checkpoints_and_merkle_nodes_are_caught() {
    let (dir, clock, size) = build();
    // A checkpoint whose note was edited: its signature no longer verifies.
    let db = open_raw(dir.path());
    let tree = db.open_tree("records").unwrap();
    let (key, note) = tree.scan_prefix(b"c").nth(5).unwrap().unwrap();
    let checkpoint_size = u64::from_be_bytes(key[1..].try_into().unwrap());
    let mut edited = note.to_vec();
    let root_line = edited.iter().position(|&b| b == b'\n').unwrap() + 1;
    let root_line = root_line
        + edited[root_line..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap()
        + 1;
    edited[root_line] = if edited[root_line] == b'A' {
        b'B'
    } else {
        b'A'
    };
    tree.insert(&key, edited).unwrap();
    db.flush().unwrap();
    drop((tree, db));
    let err = open_ledger(dir.path(), &clock)
        .unwrap()
        .verify(&|_| {})
        .unwrap_err();
    assert_eq!(
        (err.seq, err.failure),
        (checkpoint_size - 1, ledger::Failure::BadCheckpoint),
        "{err}"
    );
    let db = open_raw(dir.path());
    db.open_tree("records").unwrap().insert(&key, note).unwrap();
    db.flush().unwrap();
    drop(db);

    // A Merkle node (level 2, index 5) that was overwritten: proofs would lie, so verify
    // refuses. Node blocks hold (level u8, index u64 BE, hash 32) records; the block that
    // holds the node is the first whose key (a batch's last seq) is at or after seq 23, the
    // node's last leaf.
    let db = open_raw(dir.path());
    let tree = db.open_tree("records").unwrap();
    let mut start = vec![b'm'];
    start.extend_from_slice(&23u64.to_be_bytes());
    let (block_key, original) = tree.range(start..).next().unwrap().unwrap();
    let mut block = original.to_vec();
    let at = block
        .chunks_exact(41)
        .position(|r| r[0] == 2 && r[1..9] == 5u64.to_be_bytes())
        .expect("the node is in its batch's block");
    block[at * 41 + 20] ^= 0x55;
    tree.insert(&block_key, block).unwrap();
    db.flush().unwrap();
    drop((tree, db));
    let err = open_ledger(dir.path(), &clock)
        .unwrap()
        .verify(&|_| {})
        .unwrap_err();
    // Node (2, 5) covers leaves 20..24; it is completed by entry 23.
    assert_eq!(
        (err.seq, err.failure),
        (23, ledger::Failure::NodeMismatch),
        "{err}"
    );
    let db = open_raw(dir.path());
    db.open_tree("records")
        .unwrap()
        .insert(&block_key, original)
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let ledger = open_ledger(dir.path(), &clock).unwrap();
    assert_eq!(ledger.verify(&|_| {}).unwrap().entries, size);
}

/// Everything a reader can see of a ledger: every entry's bytes and every checkpoint note.
fn readable(ledger: &Ledger) -> Result<(Vec<Vec<u8>>, Vec<String>), LedgerError> {
    let entries = ledger
        .entries(0..u64::MAX)
        .map(|e| e.map(|e| e.encode()))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoints = ledger
        .checkpoints()
        .map(|c| c.map(|c| c.note))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((entries, checkpoints))
}

#[test]
fn a_byte_changed_anywhere_in_sleds_files_is_refused_named_or_harmless_never_silent() {
    let (dir, clock, _) = build();
    let pristine = store_files(dir.path());
    let original = readable(&open_ledger(dir.path(), &clock).unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(2718);
    // 40 rounds in the test suite; ISMS_TAMPER_ROUNDS for a longer run.
    let rounds = std::env::var("ISMS_TAMPER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    for round in 0..rounds {
        // Any byte of any file, not only inside an entry: headers, page tables, padding.
        let (file, bytes) = &pristine[rng.gen_range(0..pristine.len())];
        if bytes.is_empty() {
            continue;
        }
        let at = rng.gen_range(0..bytes.len());
        let mut changed = bytes.clone();
        changed[at] ^= rng.gen_range(1..=255u8);
        std::fs::write(file, &changed).unwrap();
        match open_ledger(dir.path(), &clock) {
            Err(LedgerError::Damaged { .. } | LedgerError::Corrupt { .. }) => {}
            Err(e) => panic!("round {round}: byte {at} of {file:?}: open failed unclearly: {e}"),
            Ok(ledger) => {
                // Every read ends (one error at most per iterator), and either verification
                // names the damage or nothing a reader sees has changed.
                let seen = readable(&ledger);
                match ledger.verify(&|_| {}) {
                    Err(_) => {}
                    Ok(_) => {
                        let summary = |r: &(Vec<Vec<u8>>, Vec<String>)| (r.0.len(), r.1.len());
                        assert!(
                            seen.as_ref().ok() == Some(&original),
                            "round {round}: byte {at} of {file:?} changed what readers see, and \
                             the ledger still verified: (entries, checkpoints) {:?} instead of \
                             {:?}; head {:?}",
                            seen.as_ref().map(summary),
                            summary(&original),
                            ledger.head(),
                        );
                    }
                }
            }
        }
        // sled may have written new files while it had the damaged store open: put the whole
        // folder back as it was.
        restore(dir.path(), &pristine);
    }
    open_ledger(dir.path(), &clock)
        .unwrap()
        .verify(&|_| {})
        .unwrap();
}

/// Makes `path` hold exactly `files` again.
fn restore(path: &std::path::Path, files: &[(std::path::PathBuf, Vec<u8>)]) {
    for (file, _) in store_files(path) {
        std::fs::remove_file(file).unwrap();
    }
    for (file, bytes) in files {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
}

#[test]
fn a_store_whose_records_vanished_after_acknowledging_entries_is_corrupt_not_empty() {
    let (dir, clock, size) = build();
    {
        let db = open_raw(dir.path());
        assert!(db.drop_tree("records").unwrap(), "the tree existed");
        db.flush().unwrap();
    }
    let err = open_ledger(dir.path(), &clock).expect_err("records lost");
    let LedgerError::Corrupt { seq, what } = &err else {
        panic!("expected Corrupt, got {err}");
    };
    assert_eq!(*seq, 0);
    assert!(
        what.contains(&format!("{size} had been acknowledged")),
        "{what}"
    );
}

#[test]
fn a_store_holding_records_but_no_genesis_is_corrupt_at_seq_0() {
    let (dir, clock, _) = build();
    {
        let db = open_raw(dir.path());
        remove_raw_entry(&db.open_tree("records").unwrap(), 0);
        db.flush().unwrap();
    }
    let err = open_ledger(dir.path(), &clock).expect_err("genesis removed");
    let LedgerError::Corrupt { seq, what } = &err else {
        panic!("expected Corrupt, got {err}");
    };
    assert_eq!(*seq, 0);
    assert!(what.contains("genesis entry is missing"), "{what}");
}
