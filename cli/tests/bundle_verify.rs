//! Offline verification of export bundles against docs/BUNDLE.md: what a bundle must hold to
//! verify, and for every way it can fail, the record the message names. The bundles are built
//! from a real ledger in a temp dir, then changed the way an adversary (or a damaged copy)
//! would change them.

use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};

use ed25519_dalek::SigningKey;
use isms_cli::bundle::{
    self, ledger_vkey, Bundle, GivenKey, Manifest, Trust, Verified, VerifyFailure,
};
use ledger::envelope::{EnvelopeView, KeyEnrolledView};
use ledger::{Checkpoint, KeyGrant, Ledger, LedgerId, SignedCheckpoint, SignedEvent, UnixMicros};
use prost::Message;

/// A clock that moves 1 ms each time it is read, so that batches have distinct times.
#[derive(Debug)]
struct StepClock(AtomicI64);

impl ledger::Clock for StepClock {
    fn now(&self) -> UnixMicros {
        UnixMicros(self.0.fetch_add(1000, Ordering::SeqCst))
    }
}

/// Adds `delta` to the recorded_at (bytes 9..17) of an encoded entry.
fn shift_recorded_at(entry: &mut [u8], delta: i64) {
    let t = i64::from_be_bytes(entry[9..17].try_into().unwrap());
    entry[9..17].copy_from_slice(&(t + delta).to_be_bytes());
}

/// A ledger of 1 + 12 entries (an agent enrolled, then ordinary events) in batches of 3, so
/// that some entries end a batch (and a checkpoint) and some do not. Its checkpoints have
/// sizes 1, 4, 7, 10, 13.
struct Source {
    dir: tempfile::TempDir,
    ledger: Ledger,
    ledger_key: SigningKey,
}

fn source() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let ledger_key = SigningKey::from_bytes(&[1; 32]);
    let admin = SigningKey::from_bytes(&[2; 32]);
    // The layout of an `isms init` data folder: the store in `store/`.
    let ledger = Ledger::create_with_id(
        dir.path().join("store"),
        LedgerId([7; 16]),
        "Example Ltd",
        ledger_key.clone(),
        vec![KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "ciso@example.com".into(),
            roles: vec!["admin".into()],
        }],
        ledger::LedgerConfig {
            clock: std::sync::Arc::new(StepClock(AtomicI64::new(
                UnixMicros::now().0 / 1000 * 1000,
            ))),
            ..ledger::LedgerConfig::default()
        },
    )
    .unwrap();
    let envelope = |event_id: String| EnvelopeView {
        ledger_id: vec![7; 16],
        event_id,
        effective_at_us: UnixMicros::now().0,
        client_time_us: UnixMicros::now().0,
        ..EnvelopeView::default()
    };
    let mut enrol = envelope("enrol-agent".into());
    enrol.key_enrolled = Some(KeyEnrolledView {
        public_key: SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes()
            .to_vec(),
        subject: "ci".into(),
        roles: vec!["agent".into()],
    });
    let mut next = vec![SignedEvent::sign(&admin, enrol.encode_to_vec())];
    for i in 0..11 {
        next.push(SignedEvent::sign(
            &admin,
            envelope(format!("event-{i}")).encode_to_vec(),
        ));
        if next.len() == 3 || i == 10 {
            for r in ledger.append(std::mem::take(&mut next)) {
                r.expect("appended");
            }
        }
    }
    assert_eq!(ledger.head().size, 13);
    Source {
        dir,
        ledger,
        ledger_key,
    }
}

impl Source {
    /// The bundle `isms export` would write (with one artifact).
    fn bundle(&self) -> Bundle {
        let entries: Vec<ledger::Entry> = self
            .ledger
            .entries(0..u64::MAX)
            .map(Result::unwrap)
            .collect();
        let checkpoints: Vec<String> = self.ledger.checkpoints().map(|c| c.unwrap().note).collect();
        let artifact = b"scan report".to_vec();
        let origin = self.ledger.origin().to_string();
        Bundle {
            manifest: Manifest {
                ledger_id: self.ledger.ledger_id().to_hex(),
                origin: origin.clone(),
                ledger_key: ledger_vkey(&origin, &self.ledger.public_key()),
                entries: entries.len() as u64,
                checkpoints: checkpoints.len() as u64,
                artifacts: 1,
                exported_at: "2025-01-01T00:00:00Z".into(),
            },
            keys: isms_cli::commands::log::keys_of(&entries),
            entries: entries.iter().map(|e| e.encode()).collect(),
            checkpoints,
            artifacts: vec![(*blake3::hash(&artifact).as_bytes(), artifact)],
        }
    }

    fn trust(&self) -> Trust {
        Trust::key(self.ledger.public_key())
    }

    fn vkey(&self) -> String {
        ledger_vkey(self.ledger.origin(), &self.ledger.public_key())
    }

    /// A checkpoint signed by the ledger key, whatever it says.
    fn sign(&self, size: u64, root: [u8; 32], time: i64) -> String {
        Checkpoint {
            origin: self.ledger.origin().to_string(),
            size,
            root,
            time: UnixMicros(time),
        }
        .sign(&self.ledger_key)
        .note
    }
}

fn verify(bundle: &Bundle, trust: &Trust) -> Result<Verified, VerifyFailure> {
    bundle::verify_bundle(&bundle.to_bytes(), trust, &|_| {})
}

/// Verifies `bytes` and returns the message, which must start by naming `record` and contain
/// every fragment.
fn refused_bytes(bytes: &[u8], trust: &Trust, record: &str, fragments: &[&str]) -> String {
    let err = bundle::verify_bundle(bytes, trust, &|_| {}).expect_err("must not verify");
    let text = err.to_string();
    assert!(text.starts_with(record), "must name {record}: {text}");
    for fragment in fragments {
        assert!(text.contains(fragment), "must say {fragment:?}: {text}");
    }
    text
}

fn refused(bundle: &Bundle, trust: &Trust, record: &str, fragments: &[&str]) -> String {
    refused_bytes(&bundle.to_bytes(), trust, record, fragments)
}

/// The byte offset where each record starts: (tag, offset), in file order.
fn records(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut at = 9;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((bytes[at], at));
        at += 5 + len;
    }
    out
}

/// `bytes` with the record starting at `from` moved to start at `to`.
fn move_record(bytes: &[u8], from: usize, to: usize) -> Vec<u8> {
    let len = u32::from_be_bytes(bytes[from + 1..from + 5].try_into().unwrap()) as usize;
    let record = bytes[from..from + 5 + len].to_vec();
    let mut rest = bytes.to_vec();
    rest.drain(from..from + 5 + len);
    let to = if to > from { to - record.len() } else { to };
    rest.splice(to..to, record);
    rest
}

#[test]
fn an_exported_bundle_verifies_and_checks_every_checkpoint() {
    let s = source();
    let verified = verify(&s.bundle(), &s.trust()).unwrap();
    assert_eq!(verified.report.checkpoints, 5);
    assert_eq!(verified.checkpoint.checkpoint.size, 13);
    assert_eq!(verified.artifacts, 1);
}

#[test]
fn a_bundle_with_two_checkpoints_of_one_size_and_different_roots_is_refused_naming_both() {
    let s = source();
    let mut b = s.bundle();
    let genuine = SignedCheckpoint::parse_unverified(&b.checkpoints[2]).unwrap();
    let forged = s.sign(genuine.size, [0xee; 32], genuine.time.0);
    b.checkpoints.insert(2, forged);
    b.manifest.checkpoints += 1;
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 7: Equivocation",
        &[
            &hex::encode([0xee; 32]),
            &hex::encode(genuine.root),
            "two checkpoints of size 7 signed by the ledger key",
        ],
    );
}

#[test]
fn a_bundle_with_a_repeated_checkpoint_is_refused_naming_its_size() {
    let s = source();
    let mut b = s.bundle();
    let again = b.checkpoints[1].clone();
    b.checkpoints.insert(1, again);
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 4: CheckpointOrder",
        &["the same checkpoint twice"],
    );
}

#[test]
fn a_bundle_with_reordered_checkpoints_is_refused_naming_both_sizes() {
    let s = source();
    let mut b = s.bundle();
    b.checkpoints.swap(2, 3);
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 7: CheckpointOrder",
        &["checkpoint of size 7 after checkpoint of size 10"],
    );
}

#[test]
fn a_bundle_with_a_checkpoint_of_size_0_is_refused() {
    let s = source();
    let mut b = s.bundle();
    let genesis_time = SignedCheckpoint::parse_unverified(&b.checkpoints[0])
        .unwrap()
        .time;
    b.checkpoints
        .insert(0, s.sign(0, *blake3::hash(b"").as_bytes(), genesis_time.0));
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 0: BadCheckpoint",
        &["a size of at least 1"],
    );
}

#[test]
fn a_bundle_with_a_checkpoint_time_other_than_its_last_entrys_recorded_at_is_refused() {
    let s = source();
    let mut b = s.bundle();
    let genuine = SignedCheckpoint::parse_unverified(&b.checkpoints[1]).unwrap();
    b.checkpoints[1] = s.sign(genuine.size, genuine.root, 1);
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 4: CheckpointTime",
        &[&format!("expected time {}", genuine.time.0), "found time 1"],
    );
}

#[test]
fn a_bundle_with_a_five_line_checkpoint_note_is_refused_naming_its_size() {
    let s = source();
    let mut b = s.bundle();
    // Witness-style extension lines are not part of this format: only the four lines are.
    b.checkpoints[1] = b.checkpoints[1].replacen("\n\n", "\nextra line\n\n", 1);
    refused(
        &b,
        &s.trust(),
        "checkpoint record 2 (after the checkpoint of size 1)",
        &["5 lines", "exactly four"],
    );
}

#[test]
fn a_corrupted_checkpoint_note_is_named_by_its_record_not_as_entry_0() {
    let s = source();
    let mut b = s.bundle();
    b.checkpoints[3] = b.checkpoints[3].replacen("\n10\n", "\nten\n", 1);
    refused(
        &b,
        &s.trust(),
        "checkpoint record 4 (after the checkpoint of size 7)",
        &["second line is not a decimal tree size"],
    );
}

#[test]
fn a_checkpoint_with_a_changed_root_is_named_by_its_size() {
    let s = source();
    let mut b = s.bundle();
    let c = SignedCheckpoint::parse_unverified(&b.checkpoints[3]).unwrap();
    let mut root = c.root;
    root[0] ^= 1;
    let note = b.checkpoints[3].replacen(&base64_of(&c.root), &base64_of(&root), 1);
    b.checkpoints[3] = note;
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 10: BadCheckpoint",
        &["signature by isms-ledger/07070707070707070707070707070707 does not verify"],
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_bundle_with_a_non_empty_end_record_is_refused_naming_the_end_record() {
    let s = source();
    let mut bytes = s.bundle().to_bytes();
    // The end record is the last 5 bytes: tag 0, length 0. Make it hold 2 bytes.
    let at = bytes.len() - 5;
    bytes[at + 1..at + 5].copy_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(b"hi");
    refused_bytes(
        &bytes,
        &s.trust(),
        "the end record",
        &["must be empty; it holds 2 bytes"],
    );
}

#[test]
fn a_bundle_with_bytes_after_the_end_record_is_refused() {
    let s = source();
    let mut bytes = s.bundle().to_bytes();
    bytes.push(0);
    refused_bytes(&bytes, &s.trust(), "the end record", &["1 bytes follow it"]);
}

#[test]
fn a_bundle_cut_inside_the_end_record_names_the_end_record_not_an_entry() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    refused_bytes(
        &bytes[..bytes.len() - 2],
        &s.trust(),
        "the end record",
        &["ends inside the record header"],
    );
}

#[test]
fn a_bundle_cut_before_the_end_record_names_what_is_missing() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    refused_bytes(
        &bytes[..bytes.len() - 5],
        &s.trust(),
        "the end record",
        &["missing: the bundle ends after artifact record 1"],
    );
}

#[test]
fn a_bundle_with_the_manifest_after_entry_0_is_refused_naming_the_manifest() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    let recs = records(&bytes);
    // Manifest first, entry 0 second: put the manifest after entry 0.
    let moved = move_record(&bytes, recs[0].1, recs[2].1);
    refused_bytes(
        &moved,
        &s.trust(),
        "entry 0",
        &["an entry before the manifest"],
    );
    let mut b = s.bundle();
    let e0 = b.entries[0].clone();
    let mut bytes = isms_cli::bundle::MAGIC.to_vec();
    bytes.push(1);
    let rec = |out: &mut Vec<u8>, tag: u8, payload: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    };
    b.entries.clear();
    let whole = b.to_bytes();
    // Manifest, entry 0, then a second manifest: refused, naming the manifest.
    let manifest_end = records(&whole)[1].1;
    bytes.extend_from_slice(&whole[9..manifest_end]);
    rec(&mut bytes, 2, &e0);
    bytes.extend_from_slice(&whole[9..manifest_end]);
    refused_bytes(
        &bytes,
        &s.trust(),
        "the manifest",
        &["a manifest that is not the first record; it follows entry 0"],
    );
}

#[test]
fn a_bundle_with_two_key_lists_is_refused_naming_the_key_list() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    let recs = records(&bytes);
    let (_, keys_at) = *recs.iter().find(|(tag, _)| *tag == 4).unwrap();
    let len = u32::from_be_bytes(bytes[keys_at + 1..keys_at + 5].try_into().unwrap()) as usize;
    let mut doubled = bytes.clone();
    doubled.splice(keys_at..keys_at, bytes[keys_at..keys_at + 5 + len].to_vec());
    refused_bytes(
        &doubled,
        &s.trust(),
        "the key list",
        &["a second key list; it follows the key list"],
    );
}

#[test]
fn a_bundle_with_a_checkpoint_after_the_key_list_is_refused_naming_the_checkpoint() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    let recs = records(&bytes);
    let (_, first_checkpoint) = *recs.iter().find(|(tag, _)| *tag == 3).unwrap();
    let (_, artifact) = *recs.iter().find(|(tag, _)| *tag == 5).unwrap();
    let moved = move_record(&bytes, first_checkpoint, artifact);
    refused_bytes(
        &moved,
        &s.trust(),
        "checkpoint record 5",
        &["a checkpoint after the key list"],
    );
}

#[test]
fn a_bundle_without_a_key_list_is_refused_naming_the_end_record() {
    let s = source();
    let mut b = s.bundle();
    b.artifacts.clear();
    let bytes = b.to_bytes();
    let recs = records(&bytes);
    let (_, keys_at) = *recs.iter().find(|(tag, _)| *tag == 4).unwrap();
    let mut cut = bytes[..keys_at].to_vec();
    cut.extend_from_slice(&[0, 0, 0, 0, 0]);
    refused_bytes(
        &cut,
        &s.trust(),
        "the end record",
        &["the end record before the key list"],
    );
}

#[test]
fn an_unknown_tag_inside_the_entries_names_the_entry() {
    let s = source();
    let mut bytes = s.bundle().to_bytes();
    let at = records(&bytes)[6].1;
    bytes[at] = 9;
    refused_bytes(&bytes, &s.trust(), "entry 5", &["unknown record tag 9"]);
}

#[test]
fn a_verifier_key_naming_another_ledgers_origin_is_refused() {
    let s = source();
    let other = ledger_vkey(
        "isms-ledger/00000000000000000000000000000000",
        &s.ledger.public_key(),
    );
    let trust = Trust {
        ledger_key: bundle::parse_ledger_key_named(&other).unwrap(),
        checkpoint: None,
    };
    refused(
        &s.bundle(),
        &trust,
        "entry 0",
        &[
            "is for isms-ledger/00000000000000000000000000000000",
            "another ledger's key",
        ],
    );
    // The same key under this ledger's origin verifies.
    let trust = Trust {
        ledger_key: bundle::parse_ledger_key_named(&s.vkey()).unwrap(),
        checkpoint: None,
    };
    verify(&s.bundle(), &trust).unwrap();
}

#[test]
fn a_bundle_of_another_ledger_key_is_refused_naming_the_genesis() {
    let s = source();
    let trust = Trust::key(SigningKey::from_bytes(&[9; 32]).verifying_key());
    refused(
        &s.bundle(),
        &trust,
        "entry 0",
        &["the genesis names ledger key"],
    );
}

#[test]
fn a_manifest_that_contradicts_the_bundle_is_refused_naming_the_field() {
    let s = source();
    let mut b = s.bundle();
    b.manifest.entries = 12;
    refused(
        &b,
        &s.trust(),
        "the manifest",
        &["entries is 12, but the bundle holds 13"],
    );
}

#[test]
fn a_manifest_whose_export_time_is_not_a_time_is_refused_naming_the_field() {
    let s = source();
    let mut b = s.bundle();
    b.manifest.exported_at = "20D5-01-01T00:00:00Z".into();
    refused(
        &b,
        &s.trust(),
        "the manifest",
        &["exported_at", "20D5-01-01"],
    );
}

#[test]
fn a_manifest_without_ledger_id_is_refused_naming_the_manifest() {
    let s = source();
    let b = s.bundle();
    let bytes = b.to_bytes();
    let recs = records(&bytes);
    let mut json: serde_json::Value = serde_json::to_value(&b.manifest).unwrap();
    json.as_object_mut().unwrap().remove("ledger_id");
    let payload = serde_json::to_vec(&json).unwrap();
    let mut changed = bytes[..9].to_vec();
    changed.push(1);
    changed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    changed.extend_from_slice(&payload);
    changed.extend_from_slice(&bytes[recs[1].1..]);
    refused_bytes(
        &changed,
        &s.trust(),
        "the manifest",
        &["missing field `ledger_id`"],
    );
}

#[test]
fn a_key_list_that_differs_from_the_entries_is_refused() {
    let s = source();
    let mut b = s.bundle();
    b.keys[1].roles = vec!["admin".into()];
    refused(
        &b,
        &s.trust(),
        "the key list",
        &["as the entries enrol them"],
    );
}

#[test]
fn an_artifact_whose_content_does_not_hash_to_its_name_is_refused() {
    let s = source();
    let mut b = s.bundle();
    b.artifacts[0].1.push(b'!');
    refused(&b, &s.trust(), "artifact ", &["its content hashes to"]);
}

#[test]
fn entries_cut_from_the_end_with_their_checkpoints_pass_without_a_trusted_checkpoint() {
    let s = source();
    let mut b = s.bundle();
    // An operator hides entries 10..=12: drops them and the checkpoint of size 13.
    b.entries.truncate(10);
    b.checkpoints.pop();
    b.manifest.entries = 10;
    b.manifest.checkpoints -= 1;
    verify(&b, &s.trust()).expect("nothing in the bundle alone can tell");
    let trusted = s.ledger.checkpoint_at(13).unwrap().unwrap().note;
    let trust = Trust {
        checkpoint: Some(trusted),
        ..s.trust()
    };
    refused(
        &b,
        &trust,
        "trusted checkpoint of size 13: TrustedCheckpoint",
        &["the history ends at size 10, before the trusted checkpoint of size 13"],
    );
}

#[test]
fn a_bundle_whose_root_differs_from_the_trusted_checkpoint_is_refused_naming_it() {
    let s = source();
    let genuine = s.ledger.checkpoint_at(7).unwrap().unwrap().checkpoint;
    let trust = Trust {
        checkpoint: Some(s.sign(7, [3; 32], genuine.time.0)),
        ..s.trust()
    };
    refused(
        &s.bundle(),
        &trust,
        "trusted checkpoint of size 7: TrustedCheckpoint",
        &["the root at size 7 differs from the trusted checkpoint"],
    );
    let agreeing = Trust {
        checkpoint: Some(s.ledger.checkpoint_at(7).unwrap().unwrap().note),
        ..s.trust()
    };
    let verified = verify(&s.bundle(), &agreeing).unwrap();
    assert_eq!(verified.trusted.unwrap().checkpoint.size, 7);
}

#[test]
fn a_bundle_whose_last_checkpoint_is_removed_names_the_uncovered_entry() {
    let s = source();
    let mut b = s.bundle();
    b.checkpoints.pop();
    b.manifest.checkpoints -= 1;
    refused(
        &b,
        &s.trust(),
        "entry 12",
        &["no checkpoint covers it: 13 entries, the latest checkpoint covers 10"],
    );
}

/// A changed header byte is named at the entry itself: its own checks see most fields (a
/// recorded_at lowered below the entry before breaks the order) ...
#[test]
fn a_header_change_inside_a_batch_is_named_at_that_entry() {
    let s = source();
    let mut b = s.bundle();
    // Entry 5 is inside the batch 4..=6.
    shift_recorded_at(&mut b.entries[5], -1);
    refused(&b, &s.trust(), "entry 5: RecordedAtDecreased", &[]);
    let mut b = s.bundle();
    b.entries[5][60] ^= 0x01;
    refused(&b, &s.trust(), "entry 5: UnknownKey", &[]);
}

/// ... except a recorded_at raised inside a batch: nothing in entry 4 shows it, and entry 5,
/// whose prev_hash is checked first, breaks the chain, naming the pair ...
#[test]
fn a_recorded_at_raised_inside_a_batch_breaks_the_chain_at_the_next_entry_naming_both() {
    let s = source();
    let mut b = s.bundle();
    shift_recorded_at(&mut b.entries[4], 1);
    refused(
        &b,
        &s.trust(),
        "entry 5: ChainBroken",
        &["(entry 4 or entry 5 was altered)"],
    );
}

/// ... a changed prev_hash cannot say which side was changed, so both are named ...
#[test]
fn a_changed_prev_hash_breaks_the_chain_naming_both_entries() {
    let s = source();
    let mut b = s.bundle();
    b.entries[6][20] ^= 0x01;
    refused(
        &b,
        &s.trust(),
        "entry 6: ChainBroken",
        &["(entry 5 or entry 6 was altered)"],
    );
}

/// ... and the checkpoint of its batch when the entry ends a batch, since that checkpoint is
/// checked before the next entry is read.
#[test]
fn a_header_change_in_the_last_entry_of_a_batch_is_refuted_by_its_checkpoint() {
    let s = source();
    let mut b = s.bundle();
    // Entry 6 ends the batch whose checkpoint has size 7; entry 7 is recorded later.
    shift_recorded_at(&mut b.entries[6], 1);
    refused(
        &b,
        &s.trust(),
        "checkpoint of size 7: RootMismatch",
        &["the root at size 7 differs from the checkpoint"],
    );
}

#[test]
fn verifier_keys_are_split_on_the_first_two_plus_signs_only() {
    for seed in 0..64u8 {
        let key = SigningKey::from_bytes(&[seed; 32]).verifying_key();
        let vkey = ledger_vkey("isms-ledger/07070707070707070707070707070707", &key);
        assert_eq!(
            bundle::parse_ledger_key_named(&vkey).unwrap(),
            GivenKey {
                key,
                origin: Some("isms-ledger/07070707070707070707070707070707".into())
            },
            "{vkey}"
        );
    }
}

/// The command itself: `--trusted-checkpoint` is taken from a file, and a history that ends
/// before it exits 1 naming it.
#[test]
fn isms_verify_offline_with_a_trusted_checkpoint_exits_1_naming_it() {
    let s = source();
    let dir = tempfile::tempdir().unwrap();
    let mut b = s.bundle();
    b.entries.truncate(7);
    b.checkpoints.truncate(3);
    b.manifest.entries = 7;
    b.manifest.checkpoints = 3;
    b.keys = isms_cli::commands::log::keys_of(
        &b.entries
            .iter()
            .map(|e| ledger::Entry::decode(e).unwrap())
            .collect::<Vec<_>>(),
    );
    std::fs::write(dir.path().join("cut.bundle"), b.to_bytes()).unwrap();
    let kept = s.ledger.checkpoint_at(13).unwrap().unwrap().note;
    std::fs::write(dir.path().join("kept.note"), kept).unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_isms"))
            .current_dir(dir.path())
            .args([
                "verify",
                "--offline",
                "cut.bundle",
                "--ledger-key",
                &s.vkey(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(&["--trusted-checkpoint", "kept.note"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "trusted checkpoint of size 13: TrustedCheckpoint: expected a history that reaches \
             the trusted checkpoint of size 13, found the history ends at size 7"
        ),
        "{stderr}"
    );
}

/// `isms verify --data` runs `Ledger::verify` over the store, so a derived block changed through
/// sled is named by the block and its first bad seq, and the command exits 1.
#[test]
fn isms_verify_data_names_a_changed_event_id_index_block() {
    let s = source();
    let vkey = s.vkey();
    let Source { dir, ledger, .. } = s;
    drop(ledger);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_isms"))
            .args(["verify", "--data"])
            .arg(dir.path())
            .args(["--ledger-key", &vkey])
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Batches start at seqs 1, 4, 7, 10: change the record of entry 8 in the block from 7.
    let db = open_raw(&dir.path().join("store"));
    let records = db.open_tree("records").unwrap();
    let mut key = vec![b'j'];
    key.extend_from_slice(&7u64.to_be_bytes());
    let mut block = records.get(&key).unwrap().unwrap().to_vec();
    block[8] ^= 0x01;
    records.insert(&key, block).unwrap();
    db.flush().unwrap();
    drop((records, db));
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("event-id index block from seq 7: EventIndexMismatch")
            && stderr.contains("of entry 8's event id"),
        "{stderr}"
    );
}

/// Opens a sled store directly. sled's background flusher can hold the file lock for a moment
/// after the last handle is dropped, so a few retries are allowed.
fn open_raw(path: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("open store: {e}"),
        }
    }
    panic!("store still locked after 2 s")
}

#[test]
fn a_file_without_the_bundle_magic_is_refused_naming_the_header() {
    let s = source();
    let mut bytes = s.bundle().to_bytes();
    bytes[0] = b'X';
    refused_bytes(
        &bytes,
        &s.trust(),
        "the bundle header",
        &["no ISMSBNDL magic"],
    );
    let mut bytes = s.bundle().to_bytes();
    bytes[8] = 2;
    refused_bytes(
        &bytes,
        &s.trust(),
        "the bundle header",
        &["bundle version 2"],
    );
}

#[test]
fn an_artifact_record_shorter_than_its_hash_is_refused_naming_it() {
    let s = source();
    let mut b = s.bundle();
    b.artifacts.clear();
    let bytes = b.to_bytes();
    let end = bytes.len() - 5;
    let mut changed = bytes[..end].to_vec();
    changed.extend_from_slice(&[5, 0, 0, 0, 3, 1, 2, 3]);
    changed.extend_from_slice(&bytes[end..]);
    refused_bytes(
        &changed,
        &s.trust(),
        "artifact record 1",
        &["shorter than its hash"],
    );
}

#[test]
fn a_checkpoint_record_that_is_not_utf8_is_refused_naming_it() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    let (_, at) = records(&bytes)
        .into_iter()
        .filter(|(tag, _)| *tag == 3)
        .nth(1)
        .unwrap();
    let mut changed = bytes.clone();
    changed[at + 5] = 0xff;
    refused_bytes(
        &changed,
        &s.trust(),
        "checkpoint record 2",
        &["the note is not UTF-8"],
    );
}

#[test]
fn an_entry_record_that_is_not_an_entry_is_named() {
    let s = source();
    let mut b = s.bundle();
    b.entries[3].truncate(100);
    refused(
        &b,
        &s.trust(),
        "entry 3: Undecodable",
        &["an encoded entry"],
    );
}

#[test]
fn an_entry_record_running_past_the_end_names_the_entry() {
    let s = source();
    let bytes = s.bundle().to_bytes();
    let at = records(&bytes)[4].1;
    refused_bytes(
        &bytes[..at + 30],
        &s.trust(),
        "entry 3",
        &["runs past the end of the bundle"],
    );
}

/// A store that refuses to open because its genesis is damaged did not verify: exit 1, naming
/// the entry, rather than an error.
#[test]
fn isms_verify_data_names_a_damaged_genesis_and_exits_1() {
    let s = source();
    let Source { dir, ledger, .. } = s;
    drop(ledger);
    let db = open_raw(&dir.path().join("store"));
    let records = ledger::engine::SledSpace(db.open_tree("records").unwrap());
    let mut genesis = ledger::entry_blocks::read(&records, 0).unwrap().unwrap();
    let last = genesis.len() - 1;
    genesis[last] ^= 0x01;
    ledger::entry_blocks::replace(&records, 0, &genesis).unwrap();
    db.flush().unwrap();
    drop((records, db));
    let out = Command::new(env!("CARGO_BIN_EXE_isms"))
        .args(["verify", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("entry 0: Store"), "{stderr}");
}
