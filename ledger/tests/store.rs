//! Appending, reading, idempotency, keys, receipts, proofs and artifacts against a real sled
//! store on disk.

mod common;

use common::{key, Fixture, T0};
use ledger::envelope::ArtifactErasedView;
use ledger::merkle::{self, Blake3Hasher};
use ledger::{
    AppendError, Appended, ArtifactHash, ArtifactState, Code, Seq, SignedEvent, UnixMicros,
};
use prost::Message;

#[test]
fn genesis_is_entry_zero_and_verifies() {
    let f = Fixture::new();
    let head = f.ledger.head();
    assert_eq!(head.size, 1);
    let genesis = f.ledger.get(Seq(0)).unwrap().unwrap();
    assert_eq!(genesis.prev_hash, ledger::EntryHash::ZERO);
    assert_eq!(f.ledger.genesis().admins.len(), 1);
    assert_eq!(
        f.ledger.origin(),
        format!("isms-ledger/{}", "07".repeat(16))
    );
    let report = f.ledger.verify(&|_| {}).unwrap();
    assert_eq!(report.entries, 1, "the genesis is an entry");
    assert_eq!(report.checkpoints, 1);
}

#[test]
fn append_assigns_gapless_seqs_and_chains_entries() {
    let f = Fixture::new();
    let events: Vec<_> = (0..10)
        .map(|i| f.event(&f.admin, &format!("e{i}"), b"x"))
        .collect();
    let results = f.ledger.append(events);
    for (i, r) in results.iter().enumerate() {
        let a = r.as_ref().unwrap();
        assert_eq!(a.seq, Seq(i as u64 + 1));
        assert!(!a.duplicate);
        assert_eq!(a.checkpoint_size, 11);
    }
    let entries: Vec<_> = f.ledger.entries(0..100).map(Result::unwrap).collect();
    assert_eq!(entries.len(), 11);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash());
        assert_eq!(pair[1].seq.0, pair[0].seq.0 + 1);
    }
    assert_eq!(f.ledger.head().last_hash, entries[10].hash());
    // What an append result says of its entry is what was stored (receipts are built from it).
    for (r, entry) in results.iter().zip(&entries[1..]) {
        let a = r.as_ref().unwrap();
        assert_eq!(a.entry_hash, entry.hash());
        assert_eq!(a.prev_hash, entry.prev_hash);
        assert_eq!(a.key_id, entry.key_id);
        assert_eq!(a.signature, entry.signature);
        assert_eq!(a.recorded_at, entry.recorded_at);
    }
    f.ledger.verify(&|_| {}).unwrap();
}

#[test]
fn the_same_event_twice_returns_the_original_receipt() {
    let f = Fixture::new();
    let e = f.event(&f.admin, "evidence-1", b"scan passed");
    let first = f.ledger.append(vec![e.clone()]).remove(0).unwrap();
    f.ledger.append(vec![f.event(&f.admin, "other", b"y")]);
    let again = f.ledger.append(vec![e.clone()]).remove(0).unwrap();
    assert!(again.duplicate);
    assert_eq!(
        Appended {
            duplicate: false,
            ..again
        },
        first,
        "a retry reports the original entry"
    );
    assert_eq!(
        (again.seq, again.entry_hash, again.recorded_at),
        (first.seq, first.entry_hash, first.recorded_at)
    );
    assert_eq!(again.checkpoint_size, first.checkpoint_size);
    // Within one batch as well.
    let both = f.ledger.append(vec![
        f.event(&f.admin, "pair", b"z"),
        f.event(&f.admin, "pair", b"z"),
    ]);
    let (a, b) = (both[0].as_ref().unwrap(), both[1].as_ref().unwrap());
    assert_eq!(a.seq, b.seq);
    assert!(b.duplicate && !a.duplicate);
    assert_eq!(f.ledger.head().size, 4);
}

#[test]
fn the_same_id_with_other_bytes_is_already_exists() {
    let f = Fixture::new();
    f.ledger
        .append(vec![f.event(&f.admin, "evidence-1", b"pass")])
        .remove(0)
        .unwrap();
    let head = f.ledger.head();
    let err = f
        .ledger
        .append(vec![f.event(&f.admin, "evidence-1", b"fail")])
        .remove(0)
        .unwrap_err();
    assert!(
        matches!(err, AppendError::EventIdConflict { seq: Seq(1), .. }),
        "{err}"
    );
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.to_string().contains("event_id"));
    assert_eq!(f.ledger.head(), head, "a refused event leaves nothing");
}

#[test]
fn refusals_name_the_field_and_leave_nothing() {
    let f = Fixture::new();
    let stranger = key(50);
    let mut bad_sig = f.event(&f.admin, "bad-sig", b"x");
    bad_sig.signature[5] ^= 1;
    let mut wrong_ledger = f.envelope("wrong-ledger");
    wrong_ledger.ledger_id = vec![9; 16];
    let huge = f.event(&f.admin, "huge", &vec![0u8; 70 * 1024]);
    let future = {
        let mut v = f.envelope("future");
        v.effective_at_us = T0 + 3_600_000_000;
        SignedEvent::sign(&f.admin, v.encode_to_vec())
    };
    let cases: Vec<(SignedEvent, Code, &str)> = vec![
        (bad_sig, Code::Unauthenticated, "signature"),
        (
            f.event(&stranger, "stranger", b"x"),
            Code::Unauthenticated,
            "not enrolled",
        ),
        (
            SignedEvent::sign(&f.admin, wrong_ledger.encode_to_vec()),
            Code::InvalidArgument,
            "ledger_id",
        ),
        (
            SignedEvent::sign(&f.admin, vec![0xff, 0xff, 0xff]),
            Code::InvalidArgument,
            "body",
        ),
        (huge, Code::InvalidArgument, "larger than the limit"),
        (
            f.event(&f.admin, "", b"x"),
            Code::InvalidArgument,
            "event_id",
        ),
        (future, Code::InvalidArgument, "effective_at_us"),
        (
            f.event(&f.ledger_key, "ledger-key-signs", b"x"),
            Code::Unauthenticated,
            "revoked",
        ),
    ];
    let head = f.ledger.head();
    let (events, expected): (Vec<_>, Vec<_>) =
        cases.into_iter().map(|(e, c, m)| (e, (c, m))).unzip();
    for (result, (code, needle)) in f.ledger.append(events).into_iter().zip(expected) {
        let err = result.expect_err(needle);
        assert_eq!(err.code(), code, "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err:?} should mention {needle}"
        );
    }
    assert_eq!(f.ledger.head(), head);
    assert_eq!(
        f.ledger.checkpoints().count(),
        1,
        "no checkpoint for an empty batch"
    );
}

#[test]
fn keys_are_enrolled_used_and_revoked() {
    let f = Fixture::new();
    let agent = key(10);
    let results = f.ledger.append(vec![
        f.enroll("enroll-agent", &agent, "ci/scanner", &["agent"]),
        // The agent may sign in the same batch, right after its enrolment.
        f.event(&agent, "scan-1", b"pass"),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // An agent cannot enrol keys.
    let mut view = f.envelope("agent-enrolls");
    view.key_enrolled = f
        .enroll("x", &key(11), "x", &["admin"])
        .body
        .pipe_decode()
        .key_enrolled;
    let err = f
        .ledger
        .append(vec![SignedEvent::sign(&agent, view.encode_to_vec())])
        .remove(0)
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // Unknown roles are refused.
    let err = f
        .ledger
        .append(vec![f.enroll("bad-role", &key(12), "x", &["superuser"])])
        .remove(0)
        .unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");
    // Revoked: refused from the revocation on, and verification still passes.
    let revoked = f
        .ledger
        .append(vec![f.revoke("revoke-agent", &agent)])
        .remove(0)
        .unwrap();
    let err = f
        .ledger
        .append(vec![f.event(&agent, "scan-2", b"pass")])
        .remove(0)
        .unwrap_err();
    assert!(
        matches!(err, AppendError::RevokedKey { revoked_at, .. } if revoked_at == revoked.seq),
        "{err}"
    );
    let record = f
        .ledger
        .key(&ledger::KeyId::of_public_key(
            agent.verifying_key().as_bytes(),
        ))
        .unwrap();
    assert_eq!(record.revoked_at, Some(revoked.seq));
    f.ledger.verify(&|_| {}).unwrap();
}

trait PipeDecode {
    fn pipe_decode(&self) -> ledger::envelope::EnvelopeView;
}

impl PipeDecode for Vec<u8> {
    fn pipe_decode(&self) -> ledger::envelope::EnvelopeView {
        ledger::envelope::EnvelopeView::decode(self.as_slice()).unwrap()
    }
}

#[test]
fn recorded_time_finds_the_last_seq_at_or_before_it() {
    let f = Fixture::new();
    for i in 0..5 {
        f.clock.advance(1_000_000);
        f.ledger
            .append(vec![f.event(&f.admin, &format!("t{i}"), b"x")]);
    }
    assert_eq!(f.ledger.seq_at_or_before(UnixMicros(T0 - 1)).unwrap(), None);
    assert_eq!(
        f.ledger.seq_at_or_before(UnixMicros(T0)).unwrap(),
        Some(Seq(0))
    );
    assert_eq!(
        f.ledger
            .seq_at_or_before(UnixMicros(T0 + 2_500_000))
            .unwrap(),
        Some(Seq(2))
    );
    assert_eq!(
        f.ledger
            .seq_at_or_before(UnixMicros(T0 + 3_000_000))
            .unwrap(),
        Some(Seq(3))
    );
    assert_eq!(
        f.ledger.seq_at_or_before(UnixMicros(i64::MAX)).unwrap(),
        Some(Seq(5))
    );
}

#[test]
fn recorded_at_never_decreases_when_the_clock_goes_back() {
    let f = Fixture::new();
    f.clock.advance(10_000_000);
    let a = f
        .ledger
        .append(vec![f.event(&f.admin, "a", b"x")])
        .remove(0)
        .unwrap();
    f.clock.advance(-5_000_000);
    let b = f
        .ledger
        .append(vec![f.event(&f.admin, "b", b"x")])
        .remove(0)
        .unwrap();
    assert!(b.recorded_at >= a.recorded_at);
}

#[test]
fn receipts_verify_with_the_ledger_key_alone() {
    let f = Fixture::new();
    let event = f.event(&f.admin, "r1", b"evidence");
    let appended = f.ledger.append(vec![event.clone()]).remove(0).unwrap();
    for i in 0..7 {
        f.ledger
            .append(vec![f.event(&f.admin, &format!("later{i}"), b"x")]);
    }
    let receipt = f.ledger.receipt(appended.seq).unwrap();
    let checkpoint = receipt.verify(&event.body, &f.ledger.public_key()).unwrap();
    assert_eq!(checkpoint.size, appended.checkpoint_size);
    // Another body, another key, or a forged path: refused.
    assert!(receipt
        .verify(b"something else", &f.ledger.public_key())
        .is_err());
    assert!(receipt
        .verify(&event.body, &key(77).verifying_key())
        .is_err());
    let mut forged = receipt.clone();
    forged.inclusion_path[0][0] ^= 1;
    assert!(forged.verify(&event.body, &f.ledger.public_key()).is_err());
}

#[test]
fn proofs_from_the_store_verify_against_checkpoints() {
    let f = Fixture::new();
    for batch in 0..9 {
        let events = (0..(batch % 4 + 1))
            .map(|i| f.event(&f.admin, &format!("b{batch}-{i}"), b"x"))
            .collect();
        f.ledger.append(events);
    }
    let size = f.ledger.head().size;
    let latest = f.ledger.latest_checkpoint().unwrap();
    assert_eq!(latest.checkpoint.size, size);
    let checkpoints: Vec<_> = f.ledger.checkpoints().map(Result::unwrap).collect();
    assert_eq!(checkpoints.len(), 10);
    for seq in 0..size {
        let entry = f.ledger.get(Seq(seq)).unwrap().unwrap();
        let proof = f.ledger.inclusion_proof(Seq(seq), size).unwrap();
        ledger::verify::verify_entry_inclusion(
            &entry.hash(),
            Seq(seq),
            size,
            &proof,
            &latest.checkpoint.root,
        )
        .unwrap();
    }
    for old in &checkpoints {
        let proof = f
            .ledger
            .consistency_proof(old.checkpoint.size, size)
            .unwrap();
        merkle::verify_consistency::<Blake3Hasher>(
            old.checkpoint.size,
            size,
            &old.checkpoint.root,
            &latest.checkpoint.root,
            &proof,
        )
        .unwrap();
        assert_eq!(
            f.ledger.root_at(old.checkpoint.size).unwrap(),
            old.checkpoint.root
        );
    }
    assert!(f.ledger.inclusion_proof(Seq(size), size).is_err());
    assert!(f.ledger.consistency_proof(1, size + 1).is_err());
}

#[test]
fn checkpoint_notes_are_c2sp_signed_notes() {
    let f = Fixture::new();
    let note = f.ledger.latest_checkpoint().unwrap().note;
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[0], f.ledger.origin());
    assert_eq!(lines[1], "1");
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with(&format!("\u{2014} {} ", f.ledger.origin())));
    let vkey = ledger::checkpoint::verifier_key(f.ledger.origin(), &f.ledger.public_key());
    let (name, public) = ledger::checkpoint::parse_verifier_key(&vkey).unwrap();
    assert_eq!(name, f.ledger.origin());
    ledger::SignedCheckpoint::verify(&note, &public).unwrap();
    let tampered = note.replacen("\n1\n", "\n2\n", 1);
    assert!(ledger::SignedCheckpoint::verify(&tampered, &public).is_err());
}

#[test]
fn erasing_an_artifact_keeps_verification_green() {
    let f = Fixture::new();
    let report = b"nessus scan: 0 critical";
    let hash = f.ledger.put_artifact(report).unwrap();
    assert_eq!(hash, ArtifactHash::of(report));
    assert_eq!(
        f.ledger.get_artifact(&hash).unwrap().as_deref(),
        Some(&report[..])
    );
    let mut view = f.envelope("erase-1");
    view.artifact_erased = Some(ArtifactErasedView {
        blake3: hash.0.to_vec(),
        reason: "contains personal data".into(),
    });
    let erased = f
        .ledger
        .append(vec![SignedEvent::sign(&f.admin, view.encode_to_vec())])
        .remove(0)
        .unwrap();
    assert_eq!(f.ledger.get_artifact(&hash).unwrap(), None);
    assert_eq!(
        f.ledger.artifact_state(&hash).unwrap(),
        ArtifactState::Erased(erased.seq)
    );
    f.ledger.verify(&|_| {}).unwrap();
}

/// An admin-signed erasure of `hash`.
fn erasure(f: &Fixture, event_id: &str, hash: &ArtifactHash) -> SignedEvent {
    let mut view = f.envelope(event_id);
    view.artifact_erased = Some(ArtifactErasedView {
        blake3: hash.0.to_vec(),
        reason: "contains personal data".into(),
    });
    SignedEvent::sign(&f.admin, view.encode_to_vec())
}

#[test]
fn erasing_an_artifact_that_was_never_stored_is_refused_and_stores_nothing() {
    let f = Fixture::new();
    let head = f.ledger.head();
    let never = ArtifactHash::of(b"never uploaded");
    let refused = f
        .ledger
        .append(vec![erasure(&f, "erase-unknown", &never)])
        .remove(0)
        .expect_err("nothing to erase");
    assert_eq!(refused.code(), ledger::Code::FailedPrecondition);
    assert!(refused.to_string().contains("is not stored"), "{refused}");
    assert_eq!(f.ledger.head(), head);
}

#[test]
fn erasing_an_artifact_twice_is_refused_naming_the_first_erasure() {
    let f = Fixture::new();
    let hash = f.ledger.put_artifact(b"scan with names").unwrap();
    let first = f
        .ledger
        .append(vec![erasure(&f, "erase-1", &hash)])
        .remove(0)
        .unwrap();
    let again = f
        .ledger
        .append(vec![erasure(&f, "erase-2", &hash)])
        .remove(0)
        .expect_err("already erased");
    assert!(
        again
            .to_string()
            .contains(&format!("already erased at seq {}", first.seq)),
        "{again}"
    );
}

#[test]
fn two_erasures_of_one_artifact_in_one_batch_keep_only_the_first() {
    let f = Fixture::new();
    let hash = f.ledger.put_artifact(b"scan with names").unwrap();
    let results = f.ledger.append(vec![
        erasure(&f, "erase-a", &hash),
        erasure(&f, "erase-b", &hash),
    ]);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        results[1]
            .as_ref()
            .expect_err("second erasure")
            .to_string()
            .contains("earlier event of this batch"),
        "{:?}",
        results[1]
    );
}

#[test]
fn everything_survives_a_restart() {
    let mut f = Fixture::new();
    let agent = key(10);
    f.ledger
        .append(vec![f.enroll("enroll", &agent, "ci", &["agent"])]);
    f.ledger.append(
        (0..20)
            .map(|i| f.event(&agent, &format!("e{i}"), b"x"))
            .collect(),
    );
    let head = f.ledger.head();
    f = f.restart();
    assert_eq!(f.ledger.head(), head);
    assert!(f
        .ledger
        .key(&ledger::KeyId::of_public_key(
            agent.verifying_key().as_bytes()
        ))
        .is_some());
    let again = f
        .ledger
        .append(vec![f.event(&agent, "e3", b"x")])
        .remove(0)
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.seq, Seq(5));
    let next = f
        .ledger
        .append(vec![f.event(&agent, "e20", b"x")])
        .remove(0)
        .unwrap();
    assert_eq!(next.seq, Seq(head.size));
    f.ledger.verify(&|_| {}).unwrap();
}

#[test]
fn a_lost_or_legacy_event_index_is_rebuilt_from_the_entries() {
    let f = Fixture::new();
    for batch in 0..3 {
        f.ledger.append(
            (0..10)
                .map(|i| f.event(&f.admin, &format!("e{batch}-{i}"), b"x"))
                .collect(),
        );
    }
    let head = f.ledger.head();
    let original = f.ledger.get_by_event_id("e1-7").unwrap().unwrap();
    let f = f.with_store_closed(|records| {
        // Lose one batch's index block and leave a per-entry key of the old layout behind.
        let blocks: Vec<_> = records
            .scan_prefix(b"j")
            .map(|item| item.unwrap().0)
            .collect();
        assert_eq!(blocks.len(), 4, "genesis and three batches, one block each");
        records.remove(&blocks[2]).unwrap();
        records.insert(b"ie1-7", &7u64.to_be_bytes()).unwrap();
    });
    assert_eq!(f.ledger.head(), head);
    assert_eq!(
        f.ledger.get_by_event_id("e1-7").unwrap(),
        Some(original.clone())
    );
    assert_eq!(f.ledger.get_by_event_id("e1-70").unwrap(), None);
    let again = f
        .ledger
        .append(vec![f.event(&f.admin, "e1-7", b"x")])
        .remove(0)
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.seq, original.seq);
    let conflict = f
        .ledger
        .append(vec![f.event(&f.admin, "e1-7", b"other")])
        .remove(0)
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    // The rebuilt index is persisted again as blocks; the old per-entry key is gone.
    let f = f.with_store_closed(|records| {
        assert_eq!(records.scan_prefix(b"i").count(), 0);
        assert_eq!(records.scan_prefix(b"j").count(), 1, "one rebuilt block");
    });
    assert_eq!(
        f.ledger.get_by_event_id("e2-9").unwrap().unwrap().seq,
        Seq(30)
    );
    f.ledger.verify(&|_| {}).unwrap();
}

#[test]
fn proofs_built_together_equal_proofs_built_one_by_one() {
    let f = Fixture::new();
    for batch in 0..5 {
        f.ledger.append(
            (0..37)
                .map(|i| f.event(&f.admin, &format!("p{batch}-{i}"), b"x"))
                .collect(),
        );
    }
    let size = f.ledger.head().size;
    for at in [size, size - 37, 40] {
        let seqs: Vec<Seq> = (0..at).rev().step_by(3).map(Seq).collect();
        let together = f.ledger.inclusion_proofs(&seqs, at).unwrap();
        assert_eq!(together.len(), seqs.len());
        for (seq, path) in seqs.iter().zip(&together) {
            assert_eq!(
                path,
                &f.ledger.inclusion_proof(*seq, at).unwrap(),
                "seq {seq}"
            );
        }
    }
    assert!(f.ledger.inclusion_proofs(&[Seq(size)], size).is_err());
}

#[test]
fn a_read_only_ledger_refuses_appends() {
    let f = Fixture::new();
    let path = f.dir.path().to_path_buf();
    let (dir, clock, admin) = (f.dir, f.clock, f.admin);
    drop(f.ledger);
    let ro = ledger::Ledger::open(&path, common::config(&clock), None).unwrap();
    let body = SignedEvent::sign(&admin, vec![]);
    assert!(matches!(
        ro.append(vec![body]).remove(0),
        Err(AppendError::ReadOnly)
    ));
    ro.verify(&|_| {}).unwrap();
    drop(dir);
}

/// An entry whose chain and hashes are consistent but whose signature is forged (what an
/// insider rewriting history with recomputed hashes would produce) is named by its seq.
#[test]
fn a_forged_signature_with_a_consistent_chain_is_named() {
    let f = Fixture::new();
    for i in 0..300 {
        f.ledger
            .append(vec![f.event(&f.admin, &format!("e{i}"), b"x")]);
    }
    let mut entries: Vec<ledger::Entry> =
        f.ledger.entries(0..u64::MAX).map(Result::unwrap).collect();
    let forged_at = 217;
    entries[forged_at].signature[10] ^= 0x40;
    for i in forged_at + 1..entries.len() {
        entries[i].prev_hash = entries[i - 1].hash();
    }
    let raw: Vec<(u64, Vec<u8>)> = entries.iter().map(|e| (e.seq.0, e.encode())).collect();
    let mut verifier = ledger::ChainVerifier::from_genesis(&raw[0].1).unwrap();
    let outcome = raw[1..]
        .chunks(64)
        .try_for_each(|chunk| verifier.feed(chunk, None))
        .and_then(|()| verifier.finish(Some(raw.len() as u64)).map(|_| ()));
    let err = outcome.unwrap_err();
    assert_eq!(
        (err.seq, err.failure),
        (forged_at as u64, ledger::Failure::BadSignature),
        "{err}"
    );
}

/// Regression: a verifier key whose base64 holds a '+' was split in the wrong place, refusing
/// about half of all keys.
#[test]
fn verifier_keys_round_trip_for_every_key() {
    let mut with_plus = 0;
    for seed in 0..64u8 {
        let public = key(seed).verifying_key();
        let vkey = ledger::checkpoint::verifier_key("isms-ledger/0707", &public);
        let b64 = vkey.splitn(3, '+').nth(2).unwrap();
        with_plus += usize::from(b64.contains('+'));
        let (name, parsed) = ledger::checkpoint::parse_verifier_key(&vkey).unwrap();
        assert_eq!((name.as_str(), parsed), ("isms-ledger/0707", public));
    }
    assert!(with_plus > 0, "no key exercised a '+' in its base64");
}

#[test]
fn staged_batches_are_invisible_until_a_flush_makes_them_durable() {
    let f = Fixture::new();
    let first = f.ledger.stage(
        f.ledger.prepare(vec![f.event(&f.admin, "s1", b"x")]),
        &mut ledger::AdmitAll,
    );
    let second = f.ledger.stage(
        f.ledger.prepare(vec![
            f.event(&f.admin, "s2", b"x"),
            f.event(&f.admin, "s1", b"x"),
        ]),
        &mut ledger::AdmitAll,
    );
    let a = first.results[0].as_ref().unwrap();
    let b = second.results[0].as_ref().unwrap();
    let retry = second.results[1].as_ref().unwrap();
    assert_eq!((a.seq, b.seq), (Seq(1), Seq(2)));
    assert!(
        retry.duplicate && retry.seq == a.seq,
        "a staged event is already idempotent"
    );
    assert_eq!(second.durable_size, 3);
    // Readers see the durable head only.
    assert_eq!(f.ledger.head().size, 1);
    assert!(f.ledger.get(Seq(1)).unwrap().is_none());
    assert_eq!(f.ledger.latest_checkpoint().unwrap().checkpoint.size, 1);
    // One flush makes both batches durable.
    let head = f.ledger.make_durable(second.durable_size).unwrap();
    assert_eq!(head.size, 3);
    assert_eq!(f.ledger.head(), head);
    assert!(f.ledger.get(Seq(2)).unwrap().is_some());
    assert_eq!(f.ledger.checkpoints().count(), 3);
    f.ledger
        .receipt(Seq(1))
        .unwrap()
        .verify(&f.event(&f.admin, "s1", b"x").body, &f.ledger.public_key())
        .unwrap();
    f.ledger.verify(&|_| {}).unwrap();
}

/// Proofs come from an in-memory node cache when they can; a cold cache (after a reopen) must
/// give the very same proofs from sled.
#[test]
fn proofs_are_the_same_from_the_cache_and_from_sled() {
    let mut f = Fixture::new();
    for batch in 0..40 {
        let events = (0..(batch % 9 + 1))
            .map(|i| f.event(&f.admin, &format!("c{batch}-{i}"), b"x"))
            .collect();
        f.ledger.append(events);
    }
    let size = f.ledger.head().size;
    let warm: Vec<_> = (0..size)
        .map(|seq| f.ledger.inclusion_proof(Seq(seq), size).unwrap())
        .collect();
    let warm_consistency: Vec<_> = (1..size)
        .map(|old| f.ledger.consistency_proof(old, size).unwrap())
        .collect();
    f = f.restart();
    for (seq, proof) in warm.iter().enumerate() {
        assert_eq!(
            &f.ledger.inclusion_proof(Seq(seq as u64), size).unwrap(),
            proof
        );
    }
    for (i, proof) in warm_consistency.iter().enumerate() {
        assert_eq!(
            &f.ledger.consistency_proof(i as u64 + 1, size).unwrap(),
            proof
        );
    }
}

/// An admission that admits everything and counts how often it was asked to save and rewind.
#[derive(Default)]
struct Recording {
    admitted: usize,
    saved: usize,
    rewound: usize,
}

impl ledger::Admission for Recording {
    fn admit(&mut self, _: &ledger::Candidate<'_>) -> Result<(), ledger::Rejection> {
        self.admitted += 1;
        Ok(())
    }

    fn save(&mut self) {
        self.saved += 1;
    }

    fn rewind(&mut self) {
        self.rewound += 1;
    }
}

#[test]
fn an_all_or_nothing_group_with_one_refused_event_writes_nothing_and_rewinds_the_admission() {
    let f = Fixture::new();
    let head = f.ledger.head();
    let stranger = key(77);
    let events = vec![
        f.event(&f.admin, "g-1", b"one"),
        f.event(&stranger, "g-2", b"unknown key"),
        f.event(&f.admin, "g-3", b"three"),
    ];
    let mut admission = Recording::default();
    let staged = f
        .ledger
        .stage(f.ledger.prepare(events).all_or_nothing(), &mut admission);
    assert!(matches!(
        staged.results[0],
        Err(AppendError::GroupRefused { first: 1, .. })
    ));
    assert!(matches!(
        staged.results[1],
        Err(AppendError::UnknownKey { .. })
    ));
    assert!(matches!(
        staged.results[2],
        Err(AppendError::GroupRefused { first: 1, .. })
    ));
    assert_eq!((admission.saved, admission.rewound), (1, 1));
    assert_eq!(staged.durable_size, 0);
    f.ledger.make_durable(head.size).unwrap();
    assert_eq!(f.ledger.head(), head, "nothing was written");
    assert!(f.ledger.get_by_event_id("g-1").unwrap().is_none());
}

#[test]
fn an_all_or_nothing_group_that_passes_is_written_whole() {
    let f = Fixture::new();
    let events = vec![
        f.event(&f.admin, "g-1", b"one"),
        f.event(&f.admin, "g-2", b"two"),
    ];
    let mut admission = Recording::default();
    let staged = f
        .ledger
        .stage(f.ledger.prepare(events).all_or_nothing(), &mut admission);
    assert!(staged.results.iter().all(Result::is_ok));
    assert_eq!((admission.saved, admission.rewound), (1, 0));
    f.ledger.make_durable(staged.durable_size).unwrap();
    assert!(f.ledger.get_by_event_id("g-2").unwrap().is_some());
}
