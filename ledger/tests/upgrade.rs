//! A later build never strands a store written by an earlier one: stores kept from each
//! on-disk layout (`tests/data/layout-v1/`, `tests/data/layout-v2/`) open, verify, answer and take new appends; a store
//! of a newer layout is refused, unchanged.
//!
//! The kept store is built by [`build_history`] from fixed keys and a fixed clock, so this
//! build can also rebuild it and compare roots: a change to any encoding shows up here as a
//! root that no longer matches. After a deliberate layout change, bump `LAYOUT_VERSION`, keep
//! the old folder, and write the new one with
//! `ISMS_WRITE_LAYOUT_FIXTURE=1 cargo test -p ledger --test upgrade`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use common::{config, copy_dir, grant, key, open_raw, ManualClock, T0};
use ledger::envelope::{ArtifactErasedView, EnvelopeView, KeyEnrolledView};
use ledger::{Ledger, LedgerError, LedgerId, SignedEvent, LAYOUT_VERSION};
use prost::Message;

const LEDGER_ID: LedgerId = LedgerId([9; 16]);

fn kept_store(layout: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("layout-v{layout}"))
}

/// A copy of a kept store in a temp dir (sled writes to a store it opens).
fn copy_of(store: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(store, dir.path());
    dir
}

fn envelope(event_id: &str, t: i64) -> EnvelopeView {
    EnvelopeView {
        ledger_id: LEDGER_ID.0.to_vec(),
        event_id: event_id.into(),
        effective_at_us: t,
        client_time_us: t,
        ..EnvelopeView::default()
    }
}

/// The layouts whose stores are kept, and the ledger key that writes to each (from layout 2
/// the history ends with a hand-over to `key(4)`).
const KEPT: [(u32, u8); 3] = [(1, 1), (2, 4), (3, 4)];

/// Every kind of record the ledger itself knows in `layout`, in batches of several sizes, with
/// an artifact stored and one erased (and, from layout 2, a ledger-key hand-over followed by
/// an entry under the new key): the same bytes on every run.
fn build_history(dir: &Path, layout: u32) -> Ledger {
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let admin = key(2);
    let agent = key(3);
    let ledger = Ledger::create_with_id(
        dir,
        LEDGER_ID,
        "Layout fixture Ltd",
        key(1),
        vec![grant(&admin, "ciso@example.com", &["admin", "management"])],
        config(&clock),
    )
    .expect("create");
    let mut enroll = envelope("enroll-agent", T0);
    enroll.key_enrolled = Some(KeyEnrolledView {
        public_key: agent.verifying_key().to_bytes().to_vec(),
        subject: "scanner".into(),
        roles: vec!["agent".into()],
    });
    clock.advance(1_000_000);
    ledger
        .append(vec![SignedEvent::sign(&admin, enroll.encode_to_vec())])
        .remove(0)
        .expect("enrol");
    for batch in 0..6u8 {
        clock.advance(60_000_000);
        let events = (0..=batch)
            .map(|i| {
                let mut body = envelope(&format!("evt-{batch}-{i}"), T0).encode_to_vec();
                // An ISMS payload as an unknown field (32), as the ledger stores it verbatim.
                body.extend_from_slice(&[0x82, 0x02, 3, b'a' + batch, b'0' + i, b'!']);
                SignedEvent::sign(&agent, body)
            })
            .collect();
        for result in ledger.append(events) {
            result.expect("append");
        }
    }
    let erased = ledger.put_artifact(b"scan with names").expect("artifact");
    ledger.put_artifact(b"scan kept").expect("artifact");
    let mut erase = envelope("erase-1", T0);
    erase.artifact_erased = Some(ArtifactErasedView {
        blake3: erased.0.to_vec(),
        reason: "personal data".into(),
    });
    clock.advance(60_000_000);
    ledger
        .append(vec![SignedEvent::sign(&admin, erase.encode_to_vec())])
        .remove(0)
        .expect("erase");
    if layout < 2 {
        ledger.flush().expect("flush");
        return ledger;
    }
    clock.advance(60_000_000);
    ledger
        .rotate_ledger_key(&admin, &key(4), "yearly rotation")
        .expect("hand-over");
    drop(ledger);
    let ledger = Ledger::open(dir, config(&clock), Some(key(4))).expect("reopen with the new key");
    clock.advance(60_000_000);
    let mut body = envelope("after-handover", T0).encode_to_vec();
    body.extend_from_slice(&[0x82, 0x02, 1, b'h']);
    ledger
        .append(vec![SignedEvent::sign(&agent, body)])
        .remove(0)
        .expect("append under the new key");
    ledger.flush().expect("flush");
    ledger
}

/// Writes the kept store of the current layout when asked to (see the module docs).
fn write_fixture_if_asked() {
    if std::env::var_os("ISMS_WRITE_LAYOUT_FIXTURE").is_none() {
        return;
    }
    let target = kept_store(LAYOUT_VERSION);
    let built = tempfile::tempdir().expect("temp dir");
    drop(build_history(built.path(), LAYOUT_VERSION));
    let _ = std::fs::remove_dir_all(&target);
    copy_dir(built.path(), &target);
}

fn open_kept(layout: u32, signing: bool) -> (tempfile::TempDir, Ledger) {
    write_fixture_if_asked();
    let dir = copy_of(&kept_store(layout));
    let clock = Arc::new(ManualClock(AtomicI64::new(T0 + 3_600_000_000)));
    let ledger_key = KEPT
        .iter()
        .find(|(l, _)| *l == layout)
        .map(|(_, seed)| key(*seed))
        .expect("a kept layout");
    let ledger = Ledger::open(dir.path(), config(&clock), signing.then_some(ledger_key))
        .expect("a store of an older or the current layout opens");
    (dir, ledger)
}

#[test]
fn every_kept_store_opens_and_verifies() {
    for (layout, _) in KEPT {
        let (_dir, ledger) = open_kept(layout, false);
        let report = ledger
            .verify(&|_| {})
            .unwrap_or_else(|e| panic!("layout {layout}: {e}"));
        assert_eq!(report.entries, ledger.head().size);
        assert!(ledger.head().size >= 20, "the kept store holds a history");
    }
}

#[test]
fn this_build_writes_the_same_history_as_every_kept_store() {
    for (layout, _) in KEPT {
        let (_dir, kept) = open_kept(layout, false);
        let rebuilt_dir = tempfile::tempdir().expect("temp dir");
        let rebuilt = build_history(rebuilt_dir.path(), layout);
        assert_eq!(
            rebuilt.head(),
            kept.head(),
            "layout {layout}: same inputs, different record: an encoding changed; if on \
             purpose, bump LAYOUT_VERSION and keep a store of the old layout"
        );
    }
}

#[test]
fn the_kept_layout_2_store_follows_its_ledger_key_handover() {
    let (_dir, ledger) = open_kept(2, false);
    assert_eq!(ledger.checkpoint_key(), key(4).verifying_key());
    assert_ne!(ledger.public_key(), ledger.checkpoint_key());
}

#[test]
fn the_kept_layout_1_store_answers_by_event_id_and_keeps_its_erasure() {
    let (_dir, ledger) = open_kept(1, false);
    let entry = ledger
        .get_by_event_id("evt-5-5")
        .expect("read")
        .expect("the event is there");
    assert!(entry.seq.0 > 0);
    let erased = ledger::ArtifactHash::of(b"scan with names");
    assert!(matches!(
        ledger.artifact_state(&erased).expect("state"),
        ledger::ArtifactState::Erased(_)
    ));
    assert_eq!(
        ledger
            .get_artifact(&ledger::ArtifactHash::of(b"scan kept"))
            .expect("read")
            .as_deref(),
        Some(&b"scan kept"[..])
    );
}

#[test]
fn every_kept_store_takes_new_appends_that_verify() {
    for (layout, _) in KEPT {
        let (_dir, ledger) = open_kept(layout, true);
        let before = ledger.head().size;
        let mut body = envelope("after-upgrade", T0).encode_to_vec();
        body.extend_from_slice(&[0x82, 0x02, 1, b'u']);
        ledger
            .append(vec![SignedEvent::sign(&key(3), body)])
            .remove(0)
            .expect("append after upgrade");
        assert_eq!(ledger.head().size, before + 1);
        ledger
            .verify(&|_| {})
            .unwrap_or_else(|e| panic!("layout {layout}: the continued chain: {e}"));
    }
}

#[test]
fn a_store_of_a_newer_layout_is_refused_naming_both_layouts() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(build_history(dir.path(), LAYOUT_VERSION));
    {
        let db = open_raw(dir.path());
        let records = db.open_tree("records").expect("records");
        records
            .insert(b"v", &(LAYOUT_VERSION + 1).to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let refused = Ledger::open(dir.path(), config(&clock), None).expect_err("a newer layout");
    let LedgerError::NewerLayout { found, supported } = &refused else {
        panic!("expected NewerLayout, got {refused}");
    };
    assert_eq!((*found, *supported), (LAYOUT_VERSION + 1, LAYOUT_VERSION));
    assert!(refused.to_string().contains("upgrade isms"), "{refused}");
}

/// The number of records in `dir`'s store whose key starts with `tag`.
fn records_tagged(dir: &Path, tag: u8) -> usize {
    let db = open_raw(dir);
    let records = db.open_tree("records").expect("records");
    records.scan_prefix([tag]).count()
}

#[test]
fn a_layout_2_store_keeps_its_single_entries_continues_in_blocks_and_is_marked_3() {
    let (dir, ledger) = open_kept(2, true);
    let before = ledger.head().size;
    let mut body = envelope("first-block", T0).encode_to_vec();
    body.extend_from_slice(&[0x82, 0x02, 1, b'b']);
    ledger
        .append(vec![SignedEvent::sign(&key(3), body)])
        .remove(0)
        .expect("append");
    drop(ledger);
    assert_eq!(
        records_tagged(dir.path(), b'e') as u64,
        before,
        "old entries stay"
    );
    assert_eq!(
        records_tagged(dir.path(), b'b'),
        1,
        "the new entry is a block"
    );
    let db = open_raw(dir.path());
    let layout = db
        .open_tree("records")
        .expect("records")
        .get(b"v")
        .expect("read")
        .expect("a layout record");
    assert_eq!(layout.as_ref(), &3u32.to_be_bytes());
}

#[test]
fn the_kept_layout_3_store_holds_its_entries_in_blocks_only() {
    let (dir, ledger) = open_kept(3, false);
    drop(ledger);
    assert_eq!(records_tagged(dir.path(), b'e'), 0);
    assert!(
        records_tagged(dir.path(), b'b') >= 8,
        "one or more blocks per batch"
    );
}
