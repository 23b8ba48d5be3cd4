//! The promises of `ChainVerifier` and `Ledger::verify` that an outside verifier relies on:
//! every checkpoint is checked at its size, once; the key history rules hold in the chain
//! itself; a body means one thing to every decoder; and the derived blocks (event-id index,
//! Merkle nodes) match the entries. Each test names the record its failure must name.

mod common;

use common::{key, put_raw_entry, raw_entry, remove_raw_entry, Fixture};
use ledger::envelope::{EnvelopeView, KeyRevokedView};
use ledger::{
    AppendError, ChainVerifier, Checkpoint, Entry, Failure, KeyId, SignedEvent, UnixMicros,
    VerifyError, VerifyReport,
};
use prost::Message;

/// A ledger of 1 + `batches` entries, one batch (and so one checkpoint) per entry.
fn ledger_with(batches: usize) -> Fixture {
    let f = Fixture::new();
    for i in 0..batches {
        f.clock.advance(1_000_000);
        let appended = f
            .ledger
            .append(vec![f.event(&f.admin, &format!("e{i}"), b"x")]);
        appended[0].as_ref().expect("appended");
    }
    f
}

fn entries(f: &Fixture) -> Vec<Entry> {
    f.ledger.entries(0..u64::MAX).map(Result::unwrap).collect()
}

fn notes(f: &Fixture) -> Vec<(u64, String)> {
    f.ledger
        .checkpoints()
        .map(|c| {
            let c = c.unwrap();
            (c.checkpoint.size, c.note)
        })
        .collect()
}

/// Runs the engine over `entries` and the checkpoint `notes`, as a bundle verifier does.
fn verify(entries: &[Entry], notes: &[(u64, String)]) -> Result<VerifyReport, VerifyError> {
    let raw: Vec<(u64, Vec<u8>)> = entries.iter().map(|e| (e.seq.0, e.encode())).collect();
    let mut verifier = ChainVerifier::from_genesis(&raw[0].1)?;
    verifier.add_checkpoints(notes.iter().map(|(s, n)| (*s, n.as_str())))?;
    verifier.feed(&raw[1..], None)?;
    verifier.finish(Some(raw.len() as u64))
}

/// Appends a forged entry (signed by `signer`, chained correctly) to `entries`: what an insider
/// with the keys could write past the writer's checks.
fn forge(entries: &mut Vec<Entry>, signer: &ed25519_dalek::SigningKey, body: Vec<u8>) {
    let last = entries.last().unwrap();
    let event = SignedEvent::sign(signer, body);
    entries.push(Entry {
        seq: ledger::Seq(last.seq.0 + 1),
        recorded_at: last.recorded_at,
        prev_hash: last.hash(),
        key_id: event.key_id,
        signature: event.signature,
        body: event.body,
    });
}

fn checkpoint(f: &Fixture, size: u64, root: [u8; 32], time: i64) -> String {
    Checkpoint {
        origin: f.ledger.origin().to_string(),
        size,
        root,
        time: UnixMicros(time),
    }
    .sign(&f.ledger_key)
    .note
}

fn revoke_body(f: &Fixture, event_id: &str, key_id: KeyId) -> Vec<u8> {
    let mut view = f.envelope(event_id);
    view.key_revoked = Some(KeyRevokedView {
        key_id: key_id.0.to_vec(),
        reason: "test".into(),
    });
    view.encode_to_vec()
}

fn assert_names(err: &VerifyError, record: &str, failure: Failure, fragments: &[&str]) {
    let text = err.to_string();
    assert!(text.starts_with(record), "names {record}: {text}");
    assert_eq!(err.failure, failure, "{text}");
    for fragment in fragments {
        assert!(text.contains(fragment), "says {fragment:?}: {text}");
    }
}

#[test]
fn two_checkpoints_of_one_size_with_different_roots_are_refused_naming_both() {
    let f = ledger_with(4);
    let mut notes = notes(&f);
    let genuine = ledger::SignedCheckpoint::parse_unverified(&notes[2].1).unwrap();
    let forged_root = [0xab; 32];
    let forged = checkpoint(&f, genuine.size, forged_root, genuine.time.0);
    // Placed before the genuine one: only comparing the last note of each size missed it.
    notes.insert(2, (genuine.size, forged));
    let err = verify(&entries(&f), &notes).unwrap_err();
    assert_names(
        &err,
        &format!("checkpoint of size {}", genuine.size),
        Failure::Equivocation,
        &[&hex::encode(forged_root), &hex::encode(genuine.root)],
    );
}

#[test]
fn the_same_checkpoint_twice_is_refused_as_a_repeat() {
    let f = ledger_with(3);
    let mut notes = notes(&f);
    notes.push(notes[1].clone());
    let err = verify(&entries(&f), &notes).unwrap_err();
    assert_names(
        &err,
        &format!("checkpoint of size {}", notes[1].0),
        Failure::CheckpointOrder,
        &["the same checkpoint twice"],
    );
}

#[test]
fn checkpoints_out_of_size_order_are_refused_naming_both_sizes() {
    let f = ledger_with(3);
    let mut notes = notes(&f);
    notes.swap(1, 2);
    let err = verify(&entries(&f), &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 2",
        Failure::CheckpointOrder,
        &["checkpoint of size 2 after checkpoint of size 3"],
    );
}

#[test]
fn a_checkpoint_of_size_0_is_refused() {
    let f = ledger_with(1);
    let mut notes = notes(&f);
    let empty_root = *blake3::hash(b"").as_bytes();
    notes.insert(0, (0, checkpoint(&f, 0, empty_root, common::T0)));
    let err = verify(&entries(&f), &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 0",
        Failure::BadCheckpoint,
        &["a size of at least 1"],
    );
}

#[test]
fn a_checkpoint_whose_time_is_not_its_last_entrys_recorded_at_is_refused() {
    let f = ledger_with(2);
    let entries = entries(&f);
    let mut notes = notes(&f);
    let genuine = ledger::SignedCheckpoint::parse_unverified(&notes[1].1).unwrap();
    notes[1].1 = checkpoint(&f, genuine.size, genuine.root, 1);
    let err = verify(&entries, &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 2",
        Failure::CheckpointTime,
        &[
            &format!("time {}", entries[1].recorded_at.0),
            "found time 1",
        ],
    );
}

#[test]
fn a_checkpoint_whose_root_differs_from_the_entries_is_refused() {
    let f = ledger_with(2);
    let entries = entries(&f);
    let mut notes = notes(&f);
    notes[1].1 = checkpoint(&f, 2, [9; 32], entries[1].recorded_at.0);
    let err = verify(&entries, &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 2",
        Failure::RootMismatch,
        &[&hex::encode([9; 32]), "the root at size 2 differs"],
    );
}

#[test]
fn a_checkpoint_with_a_fifth_text_line_is_refused() {
    let f = ledger_with(1);
    let entries = entries(&f);
    let mut notes = notes(&f);
    let c = ledger::SignedCheckpoint::parse_unverified(&notes[1].1).unwrap();
    // Signed by the ledger key, so only the shape can refuse it.
    let text = format!("{}extra line\n", c.body_text());
    let sig = ed25519_dalek::Signer::sign(&f.ledger_key, text.as_bytes());
    let mut blob = ledger::checkpoint::key_hash(&c.origin, &f.ledger.public_key())
        .to_be_bytes()
        .to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    use base64::Engine;
    notes[1].1 = format!(
        "{text}\n\u{2014} {} {}\n",
        c.origin,
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    let err = verify(&entries, &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 2",
        Failure::BadCheckpoint,
        &["5 lines", "exactly four"],
    );
}

#[test]
fn a_checkpoint_text_that_is_not_canonical_is_refused() {
    let f = ledger_with(1);
    let notes = notes(&f);
    let note = notes[1].1.replacen("\n2\n", "\n02\n", 1);
    let err = ledger::SignedCheckpoint::parse_unverified(&note).unwrap_err();
    assert!(err.to_string().contains("canonical"), "{err}");
}

#[test]
fn a_checkpoint_of_another_origin_is_refused() {
    let f = ledger_with(1);
    let entries = entries(&f);
    let mut notes = notes(&f);
    let c = ledger::SignedCheckpoint::parse_unverified(&notes[1].1).unwrap();
    notes[1].1 = Checkpoint {
        origin: "isms-ledger/00000000000000000000000000000000".into(),
        ..c
    }
    .sign(&f.ledger_key)
    .note;
    let err = verify(&entries, &notes).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 2",
        Failure::BadCheckpoint,
        &["found origin isms-ledger/00000000000000000000000000000000"],
    );
}

#[test]
fn a_checkpoint_beyond_the_entries_is_refused() {
    let f = ledger_with(3);
    let entries = entries(&f);
    let err = verify(&entries[..2], &notes(&f)).unwrap_err();
    assert_names(
        &err,
        "checkpoint of size 3",
        Failure::Missing,
        &["entries up to 2"],
    );
}

fn trusting(f: &Fixture, entries: &[Entry], trusted: &str) -> Result<VerifyReport, VerifyError> {
    let raw: Vec<(u64, Vec<u8>)> = entries.iter().map(|e| (e.seq.0, e.encode())).collect();
    let mut verifier = ChainVerifier::from_genesis(&raw[0].1)?;
    let notes = notes(f);
    verifier.add_checkpoints(
        notes
            .iter()
            .filter(|(s, _)| *s as usize <= entries.len())
            .map(|(s, n)| (*s, n.as_str())),
    )?;
    verifier.trust_checkpoint(trusted)?;
    verifier.feed(&raw[1..], None)?;
    verifier.finish(Some(raw.len() as u64))
}

#[test]
fn a_history_that_ends_before_the_trusted_checkpoint_is_refused_naming_it() {
    let f = ledger_with(4);
    let entries = entries(&f);
    let trusted = f.ledger.checkpoint_at(5).unwrap().unwrap().note;
    trusting(&f, &entries, &trusted).expect("the whole history agrees");
    let err = trusting(&f, &entries[..3], &trusted).unwrap_err();
    assert_names(
        &err,
        "trusted checkpoint of size 5",
        Failure::TrustedCheckpoint,
        &["the history ends at size 3, before the trusted checkpoint of size 5"],
    );
}

#[test]
fn a_history_whose_root_differs_from_the_trusted_checkpoint_is_refused_naming_it() {
    let f = ledger_with(4);
    let entries = entries(&f);
    let trusted = checkpoint(&f, 3, [5; 32], entries[2].recorded_at.0);
    let err = trusting(&f, &entries, &trusted).unwrap_err();
    assert_names(
        &err,
        "trusted checkpoint of size 3",
        Failure::TrustedCheckpoint,
        &["the root at size 3 differs from the trusted checkpoint"],
    );
}

#[test]
fn a_trusted_checkpoint_not_signed_by_the_ledger_key_is_refused() {
    let f = ledger_with(2);
    let entries = entries(&f);
    let c = f.ledger.checkpoint_at(2).unwrap().unwrap().checkpoint;
    let other = c.sign(&key(99)).note;
    let err = trusting(&f, &entries, &other).unwrap_err();
    assert_names(
        &err,
        "trusted checkpoint of size 2",
        Failure::BadCheckpoint,
        &["no signature by key"],
    );
}

#[test]
fn a_key_enrolled_twice_in_the_chain_is_refused() {
    let f = ledger_with(0);
    let agent = key(3);
    f.ledger
        .append(vec![f.enroll("enrol", &agent, "ci", &["agent"])]);
    let mut entries = entries(&f);
    let again = f.enroll("enrol-again", &agent, "ci", &["agent", "admin"]);
    forge(&mut entries, &f.admin, again.body);
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 2",
        Failure::BadBody,
        &["already enrolled at seq 1"],
    );
}

#[test]
fn revoking_a_key_never_enrolled_is_refused() {
    let f = ledger_with(0);
    let mut entries = entries(&f);
    let stranger = KeyId::of_public_key(key(42).verifying_key().as_bytes());
    forge(&mut entries, &f.admin, revoke_body(&f, "r", stranger));
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(&err, "entry 1", Failure::BadBody, &["is not enrolled"]);
    // The writer refuses it too.
    let refused = f.ledger.append(vec![SignedEvent::sign(
        &f.admin,
        revoke_body(&f, "r", stranger),
    )]);
    assert!(
        matches!(&refused[0], Err(AppendError::Malformed { field, .. }) if *field == "key_revoked.key_id")
    );
}

#[test]
fn revoking_a_key_twice_is_refused() {
    let f = ledger_with(0);
    let agent = key(3);
    f.ledger
        .append(vec![f.enroll("enrol", &agent, "ci", &["agent"])]);
    f.ledger.append(vec![f.revoke("revoke", &agent)]);
    let mut entries = entries(&f);
    forge(
        &mut entries,
        &f.admin,
        revoke_body(
            &f,
            "revoke-again",
            KeyId::of_public_key(agent.verifying_key().as_bytes()),
        ),
    );
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 3",
        Failure::BadBody,
        &["already revoked at seq 2"],
    );
}

#[test]
fn a_key_revoking_itself_is_refused_by_the_writer_and_the_verifier() {
    let f = ledger_with(0);
    let own = KeyId::of_public_key(f.admin.verifying_key().as_bytes());
    let refused = f.ledger.append(vec![SignedEvent::sign(
        &f.admin,
        revoke_body(&f, "self", own),
    )]);
    let Err(AppendError::Malformed { field, rule }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert_eq!(*field, "key_revoked.key_id");
    assert!(rule.contains("cannot revoke itself"), "{rule}");
    let mut entries = entries(&f);
    forge(&mut entries, &f.admin, revoke_body(&f, "self", own));
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 1",
        Failure::BadBody,
        &["signs its own revocation"],
    );
}

#[test]
fn a_key_with_an_unknown_role_is_refused() {
    let f = ledger_with(0);
    let refused = f
        .ledger
        .append(vec![f.enroll("enrol", &key(3), "ci", &["superuser"])]);
    let Err(AppendError::Malformed { rule, .. }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert!(rule.contains("unknown role \"superuser\""), "{rule}");
}

/// Field 2 (event_id) twice: prost keeps the last, a first-wins decoder the first.
#[test]
fn a_body_repeating_a_field_that_is_not_repeated_is_refused() {
    let f = ledger_with(0);
    let mut body = f.envelope("first").encode_to_vec();
    body.extend_from_slice(
        &EnvelopeView {
            event_id: "second".into(),
            ..EnvelopeView::default()
        }
        .encode_to_vec(),
    );
    let refused = f
        .ledger
        .append(vec![SignedEvent::sign(&f.admin, body.clone())]);
    let Err(AppendError::Malformed { field, rule }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert_eq!(*field, "event_id");
    assert!(rule.contains("appears more than once"), "{rule}");
    let mut entries = entries(&f);
    forge(&mut entries, &f.admin, body);
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 1",
        Failure::BadBody,
        &["event_id: appears more than once"],
    );
}

/// key_revoked (18) and isms (32) in one body: the ledger would revoke a key while the ISMS
/// layer (reading the oneof's last member) saw an ordinary event.
#[test]
fn a_body_with_a_record_payload_and_an_isms_payload_is_refused() {
    let f = ledger_with(0);
    let agent = key(3);
    f.ledger
        .append(vec![f.enroll("enrol", &agent, "ci", &["agent"])]);
    let mut body = revoke_body(
        &f,
        "both",
        KeyId::of_public_key(agent.verifying_key().as_bytes()),
    );
    body.extend_from_slice(&[0x82, 0x02, 0x00]);
    let refused = f.ledger.append(vec![SignedEvent::sign(&f.admin, body)]);
    let Err(AppendError::Malformed { field, rule }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert_eq!(*field, "payload");
    assert!(rule.contains("both key_revoked and isms"), "{rule}");
}

#[test]
fn a_body_with_a_group_is_refused() {
    let f = ledger_with(0);
    let mut body = f.envelope("grouped").encode_to_vec();
    // Field 40, wire type 3 (start group), then end group.
    body.extend_from_slice(&[0xc3, 0x02, 0xc4, 0x02]);
    let refused = f.ledger.append(vec![SignedEvent::sign(&f.admin, body)]);
    let Err(AppendError::Malformed { rule, .. }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert!(rule.contains("groups are refused"), "{rule}");
}

#[test]
fn an_event_id_with_a_c1_control_character_is_refused() {
    let f = ledger_with(0);
    let refused = f.ledger.append(vec![f.event(&f.admin, "ev\u{85}1", b"x")]);
    let Err(AppendError::Malformed { field, rule }) = &refused[0] else {
        panic!("accepted: {refused:?}");
    };
    assert_eq!(*field, "event_id");
    assert!(rule.contains("control characters"), "{rule}");
    let accepted = f.ledger.append(vec![f.event(&f.admin, "ev\u{a0}1", b"x")]);
    assert!(accepted[0].is_ok(), "U+00A0 is not a control character");
}

/// A ledger of 1 + 12 entries in batches of 3, closed, with `change` applied to its sled
/// records, reopened and verified.
fn verify_after(change: impl FnOnce(&sled::Tree)) -> VerifyError {
    let f = Fixture::new();
    for batch in 0..4 {
        let events = (0..3)
            .map(|i| f.event(&f.admin, &format!("b{batch}-{i}"), b"x"))
            .collect();
        f.ledger.append(events);
    }
    f.ledger
        .verify(&|_| {})
        .expect("verifies before the change");
    let f = f.with_store_closed(change);
    f.ledger.verify(&|_| {}).unwrap_err()
}

fn key9(prefix: u8, n: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&n.to_be_bytes());
    k
}

#[test]
fn a_changed_event_id_index_record_is_named_by_its_seq() {
    // Batches start at seqs 1, 4, 7, 10; entry 8 is the second record of the block at 7.
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'j', 7)).unwrap().unwrap().to_vec();
        block[8] ^= 0x01;
        records.insert(key9(b'j', 7), block).unwrap();
    });
    assert_eq!(err.seq, 8, "{err}");
    assert_names(
        &err,
        "event-id index block from seq 7",
        Failure::EventIndexMismatch,
        &["of entry 8's event id"],
    );
}

#[test]
fn an_extra_node_in_a_merkle_node_block_is_refused_naming_the_block() {
    // The batch of entries 4..=6 is filed under its last seq, 6.
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        let last = block[block.len() - 41..].to_vec();
        block.extend_from_slice(&last);
        records.insert(key9(b'm', 6), block).unwrap();
    });
    assert_names(
        &err,
        "Merkle node block ending at seq 6",
        Failure::NodeMismatch,
        &["out of order or repeated"],
    );
}

#[test]
fn a_merkle_node_block_out_of_push_order_is_refused_naming_the_block() {
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        let first = block[..41].to_vec();
        let second = block[41..82].to_vec();
        block[..41].copy_from_slice(&second);
        block[41..82].copy_from_slice(&first);
        records.insert(key9(b'm', 6), block).unwrap();
    });
    assert_names(
        &err,
        "Merkle node block ending at seq 6",
        Failure::NodeMismatch,
        &["in push order"],
    );
}

#[test]
fn a_torn_merkle_node_block_is_refused_naming_the_block() {
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 9)).unwrap().unwrap().to_vec();
        block.pop();
        records.insert(key9(b'm', 9), block).unwrap();
    });
    assert_eq!(err.seq, 7, "{err}");
    assert_names(
        &err,
        "Merkle node block ending at seq 9",
        Failure::NodeMismatch,
        &["whole 41-byte node records"],
    );
}

#[test]
fn a_node_filed_in_another_batchs_block_is_refused_naming_the_block() {
    // Move the last node of the block of 4..=6 into the block of 7..=9.
    let err = verify_after(|records| {
        let mut from = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        let moved = from.split_off(from.len() - 41);
        let mut to = records.get(key9(b'm', 9)).unwrap().unwrap().to_vec();
        to.splice(0..0, moved);
        records.insert(key9(b'm', 6), from).unwrap();
        records.insert(key9(b'm', 9), to).unwrap();
    });
    // A block with a node too few is named from its first seq: which node is missing is
    // only known once the entries are hashed.
    assert_eq!(err.seq, 4, "{err}");
    assert_names(
        &err,
        "Merkle node block ending at seq 6",
        Failure::NodeMismatch,
        &[
            "expected 4 nodes (the nodes completed by entries 4..=6",
            "found 3 nodes",
        ],
    );
}

#[test]
fn a_checkpoint_filed_under_another_size_is_refused() {
    let err = verify_after(|records| {
        let note = records.get(key9(b'c', 7)).unwrap().unwrap();
        records.remove(key9(b'c', 7)).unwrap();
        records.insert(key9(b'c', 8), note).unwrap();
    });
    assert_names(
        &err,
        "checkpoint of size 8",
        Failure::BadCheckpoint,
        &["size 8 (where it is filed)", "found size 7"],
    );
}

#[test]
fn a_head_record_that_does_not_describe_the_last_entry_is_refused() {
    // The head is what the next append chains to: a wrong last hash would fork the chain.
    let err = verify_after(|records| {
        let mut head = records.get(b"h").unwrap().unwrap().to_vec();
        head[8] ^= 0x01;
        records.insert(b"h", head).unwrap();
    });
    assert_eq!(err.seq, 12, "{err}");
    assert_names(
        &err,
        "head record",
        Failure::HeadMismatch,
        &["last entry hash"],
    );
}

#[test]
fn the_same_checkpoint_with_a_witness_signature_added_is_a_repeat_not_an_equivocation() {
    let f = ledger_with(3);
    let mut notes = notes(&f);
    let (size, note) = notes[2].clone();
    use base64::Engine;
    let cosigned = format!(
        "{note}\u{2014} witness.example/w1 {}\n",
        base64::engine::general_purpose::STANDARD.encode([7u8; 72])
    );
    notes.insert(3, (size, cosigned));
    let err = verify(&entries(&f), &notes).unwrap_err();
    assert_names(
        &err,
        &format!("checkpoint of size {size}"),
        Failure::CheckpointOrder,
        &["the same checkpoint twice"],
    );
}

fn verify_raw(raw: &[Vec<u8>]) -> Result<VerifyReport, VerifyError> {
    let fed: Vec<(u64, Vec<u8>)> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u64, r.clone()))
        .collect();
    let mut verifier = ChainVerifier::from_genesis(&fed[0].1)?;
    verifier.feed(&fed[1..], None)?;
    verifier.finish(Some(fed.len() as u64))
}

#[test]
fn an_entry_that_does_not_decode_is_named() {
    let f = ledger_with(3);
    let mut raw: Vec<Vec<u8>> = entries(&f).iter().map(Entry::encode).collect();
    raw[2].pop();
    let err = verify_raw(&raw).unwrap_err();
    assert_names(&err, "entry 2", Failure::Undecodable, &["an encoded entry"]);
}

#[test]
fn an_entry_that_says_another_seq_is_named_at_its_place() {
    let f = ledger_with(3);
    let mut entries = entries(&f);
    entries[2].seq = ledger::Seq(7);
    let raw: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    let err = verify_raw(&raw).unwrap_err();
    assert_names(
        &err,
        "entry 2",
        Failure::SeqMismatch,
        &["an entry that says seq 7"],
    );
}

#[test]
fn a_genesis_with_a_prev_hash_is_refused() {
    let f = ledger_with(1);
    let mut entries = entries(&f);
    entries[0].prev_hash = ledger::EntryHash([1; 32]);
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 0",
        Failure::BadGenesis,
        &["seq 0 with a zero prev_hash"],
    );
}

#[test]
fn a_genesis_not_signed_by_its_ledger_key_is_refused() {
    let f = ledger_with(1);
    let mut entries = entries(&f);
    entries[0].signature[0] ^= 1;
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 0",
        Failure::BadGenesis,
        &["not signed by the ledger key"],
    );
}

#[test]
fn an_entry_signed_by_a_revoked_key_is_refused() {
    let f = ledger_with(0);
    let agent = key(3);
    f.ledger
        .append(vec![f.enroll("enrol", &agent, "ci", &["agent"])]);
    f.ledger.append(vec![f.revoke("revoke", &agent)]);
    let mut entries = entries(&f);
    forge(&mut entries, &agent, f.body("late", b"x"));
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 3",
        Failure::KeyNotValid,
        &["valid at seq 3", "revoked at Some(2)"],
    );
}

#[test]
fn a_key_action_signed_by_a_key_without_admin_is_refused() {
    let f = ledger_with(0);
    let agent = key(3);
    f.ledger
        .append(vec![f.enroll("enrol", &agent, "ci", &["agent"])]);
    let mut entries = entries(&f);
    let enrol = f.enroll("self-made", &key(4), "x", &["admin"]);
    forge(&mut entries, &agent, enrol.body);
    let err = verify(&entries, &[]).unwrap_err();
    assert_names(
        &err,
        "entry 2",
        Failure::BadBody,
        &["a record action signed by an admin key"],
    );
}

#[test]
fn a_changed_merkle_leaf_is_named_by_its_entry() {
    // The block of entries 4..=6 opens with leaf 4 (level 0, index 4).
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        assert_eq!(&block[..9], &[0, 0, 0, 0, 0, 0, 0, 0, 4]);
        block[20] ^= 0x01;
        records.insert(key9(b'm', 6), block).unwrap();
    });
    assert_names(&err, "entry 4", Failure::LeafMismatch, &["Merkle leaf"]);
}

#[test]
fn a_node_record_of_another_batch_is_refused_naming_its_entry() {
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        let last = block.len() - 41;
        // Level 0, index 11: a leaf that entry 11 completes, not one of 4..=6.
        block[last] = 0;
        block[last + 1..last + 9].copy_from_slice(&11u64.to_be_bytes());
        records.insert(key9(b'm', 6), block).unwrap();
    });
    assert_names(
        &err,
        "Merkle node block ending at seq 6",
        Failure::NodeMismatch,
        &["node (level 0, index 11), completed by entry 11"],
    );
}

#[test]
fn a_node_record_that_no_entry_completes_is_refused() {
    let err = verify_after(|records| {
        let mut block = records.get(key9(b'm', 6)).unwrap().unwrap().to_vec();
        let last = block.len() - 41;
        block[last] = 200;
        records.insert(key9(b'm', 6), block).unwrap();
    });
    assert_names(
        &err,
        "Merkle node block ending at seq 6",
        Failure::NodeMismatch,
        &["which no entry completes"],
    );
}

#[test]
fn a_missing_entry_is_named() {
    let err = verify_after(|records| {
        remove_raw_entry(records, 5);
    });
    assert_names(
        &err,
        "entry 5",
        Failure::Missing,
        &["next stored entry is 6"],
    );
}

#[test]
fn an_entry_stored_beyond_the_head_is_named() {
    let err = verify_after(|records| {
        let last = raw_entry(records, 12);
        put_raw_entry(records, 13, &last);
    });
    assert_names(
        &err,
        "entry 13",
        Failure::ExtraEntry,
        &["no entry after the head (13 entries)"],
    );
}
