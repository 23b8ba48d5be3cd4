//! Structured random inputs for every decoder of untrusted bytes: event bodies (the ledger's
//! envelope view and the ISMS decoder), entries, checkpoint notes, verifier keys, cosignature
//! lines, receipts, Merkle proofs, export bundles and YAML intake.
//!
//! Each target starts from real, valid encodings taken from a real ledger and mutates them
//! (bit flips, byte changes, insertions, deletions, truncations, duplicated ranges, splices
//! with other seeds, and wholly random bytes), then checks what must hold for any input: no
//! panic, a typed error, and — where a signature or hash binds the bytes — that nothing but
//! the original is accepted. The stable toolchain has no coverage-guided fuzzer, so this is
//! the documented substitute (docs/ASSURANCE.md).
//!
//! A short run per target is part of the test suite; the long run is
//! `ISMS_FUZZ_CASES=1000000 cargo test --release --test fuzz_decoders`.

mod util;

use ed25519_dalek::SigningKey;
use isms_cli::bundle::{Bundle, Manifest, Trust};
use ledger::checkpoint::{parse_verifier_key, verifier_key};
use ledger::cosignature::{SignatureLine, WitnessKey, WitnessVerifier};
use ledger::merkle::{self, Blake3Hasher, MerkleHasher};
use ledger::{Entry, Receipt, SignedCheckpoint};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use util::*;

/// Cases per target: a short run by default, `ISMS_FUZZ_CASES` for a long one.
fn cases() -> u64 {
    std::env::var("ISMS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// Derives new inputs from seeds. Deterministic per target, so a failure is reproducible
/// from the case number it reports.
struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
}

impl Mutator {
    fn new(target: &str, seeds: Vec<Vec<u8>>) -> Mutator {
        let seed = blake3::hash(target.as_bytes());
        Mutator {
            rng: StdRng::from_seed(*seed.as_bytes()),
            seeds,
        }
    }

    /// One input: a seed changed one to four times, or (one case in sixteen) random bytes.
    fn next(&mut self) -> Vec<u8> {
        if self.rng.gen_range(0..16) == 0 {
            let len = self.rng.gen_range(0..256);
            return (0..len).map(|_| self.rng.gen()).collect();
        }
        let mut data = self.seeds[self.rng.gen_range(0..self.seeds.len())].clone();
        for _ in 0..self.rng.gen_range(1..=4) {
            self.mutate(&mut data);
        }
        data
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        let len = data.len();
        let at = |rng: &mut StdRng| if len == 0 { 0 } else { rng.gen_range(0..len) };
        match self.rng.gen_range(0..8) {
            0 if len > 0 => {
                let i = at(&mut self.rng);
                data[i] ^= 1 << self.rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = at(&mut self.rng);
                data[i] = self.rng.gen();
            }
            2 => {
                let i = if len == 0 {
                    0
                } else {
                    self.rng.gen_range(0..=len)
                };
                let n = self.rng.gen_range(1..8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.gen()).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = at(&mut self.rng);
                let end = (i + self.rng.gen_range(1..16)).min(len);
                data.drain(i..end);
            }
            4 => {
                let keep = if len == 0 {
                    0
                } else {
                    self.rng.gen_range(0..len)
                };
                data.truncate(keep);
            }
            5 if len > 0 => {
                let i = at(&mut self.rng);
                let end = (i + self.rng.gen_range(1..32)).min(len);
                let copy = data[i..end].to_vec();
                let to = self.rng.gen_range(0..=data.len());
                data.splice(to..to, copy);
            }
            6 => {
                let other = &self.seeds[self.rng.gen_range(0..self.seeds.len())];
                if !other.is_empty() {
                    let from = self.rng.gen_range(0..other.len());
                    let tail = other[from..].to_vec();
                    let cut = if len == 0 {
                        0
                    } else {
                        self.rng.gen_range(0..len)
                    };
                    data.truncate(cut);
                    data.extend_from_slice(&tail);
                }
            }
            _ => {
                // Interesting bytes where lengths and varints live.
                if len > 0 {
                    let i = at(&mut self.rng);
                    data[i] =
                        [0x00, 0x01, 0x7f, 0x80, 0xff, b'\n', b'+', b' '][self.rng.gen_range(0..8)];
                }
            }
        }
    }

    /// Runs `check` on `cases()` inputs, naming the case that panicked.
    fn run(mut self, target: &str, mut check: impl FnMut(&[u8])) {
        for case in 0..cases() {
            let input = self.next();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
            if let Err(panic) = outcome {
                panic!(
                    "{target}: case {case} failed on input {}: {:?}",
                    hex::encode(&input),
                    panic.downcast_ref::<String>().map(String::as_str)
                );
            }
        }
    }
}

/// A real ledger of 12 entries of several kinds, for seeds.
fn history() -> History {
    History::new(1, 2, 12)
}

fn encoded_entries(h: &History) -> Vec<Vec<u8>> {
    h.ledger
        .entries(0..u64::MAX)
        .map(|e| e.expect("entry").encode())
        .collect()
}

fn bodies(h: &History) -> Vec<Vec<u8>> {
    h.ledger
        .entries(0..u64::MAX)
        .map(|e| e.expect("entry").body)
        .collect()
}

#[test]
fn event_bodies_never_panic_the_ledgers_envelope_checks() {
    let h = history();
    let ledger_id = h.ledger.ledger_id();
    Mutator::new("envelope", bodies(&h)).run("envelope", |input| {
        if let Err(e) = ledger::rules::check_body(input, &ledger_id, 64 * 1024) {
            assert!(!e.to_string().is_empty());
        }
    });
}

#[test]
fn event_bodies_never_panic_the_isms_decoder_and_every_refusal_is_the_clients_fault() {
    let h = history();
    Mutator::new("isms-body", bodies(&h)).run("isms-body", |input| {
        if let Err(e) = projections::wire::decode_body(input) {
            assert_eq!(e.code(), projections::ErrorCode::InvalidArgument, "{e}");
        }
    });
}

#[test]
fn entries_decode_only_from_their_one_canonical_encoding() {
    let h = history();
    Mutator::new("entry", encoded_entries(&h)).run("entry", |input| {
        if let Ok(entry) = Entry::decode(input) {
            assert_eq!(
                entry.encode(),
                input,
                "a decoded entry re-encodes to its bytes"
            );
        }
    });
}

#[test]
fn checkpoint_notes_never_verify_unless_the_ledger_signed_that_text() {
    let h = history();
    let key = h.ledger.public_key();
    let notes: Vec<Vec<u8>> = h
        .ledger
        .checkpoints()
        .map(|c| c.expect("checkpoint").note.into_bytes())
        .collect();
    let originals: Vec<SignedCheckpoint> = h.ledger.checkpoints().map(|c| c.expect("c")).collect();
    Mutator::new("note", notes).run("note", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let _ = SignedCheckpoint::parse_unverified(text);
        if let Ok(verified) = SignedCheckpoint::verify(text, &key) {
            assert!(
                originals
                    .iter()
                    .any(|o| o.checkpoint == verified.checkpoint),
                "a changed note verified: {text:?}"
            );
        }
    });
}

#[test]
fn verifier_keys_parse_only_when_they_print_back_the_same() {
    let seeds: Vec<Vec<u8>> = (1..5u8)
        .map(|i| {
            verifier_key(
                &format!("isms-ledger/0{i}0{i}"),
                &SigningKey::from_bytes(&[i; 32]).verifying_key(),
            )
            .into_bytes()
        })
        .collect();
    Mutator::new("vkey", seeds).run("vkey", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        if let Ok((name, key)) = parse_verifier_key(text) {
            assert_eq!(verifier_key(&name, &key), text.trim(), "{text:?}");
        }
    });
}

#[test]
fn cosignature_lines_never_verify_unless_the_witness_signed_that_note() {
    let h = history();
    let witness = WitnessKey::new("witness.example/w1", SigningKey::from_bytes(&[9; 32]))
        .expect("witness key");
    let verifier: WitnessVerifier = witness.verifier();
    let note = h.note(12);
    let body = ledger::cosignature::note_body(&note)
        .expect("body")
        .to_string();
    let line = witness.cosign(&body, 1_767_225_600).expect("cosign");
    let cosigned = ledger::cosignature::add_cosignatures(&note, &line).expect("add");
    Mutator::new(
        "cosignature",
        vec![cosigned.clone().into_bytes(), line.into_bytes()],
    )
    .run("cosignature", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        for l in text.lines() {
            let _ = SignatureLine::parse(l);
        }
        let _ = WitnessVerifier::parse(text);
        if verifier.verify_note(text).is_ok() {
            let found = ledger::cosignature::note_body(text).expect("a verified note has a body");
            assert_eq!(
                found, body,
                "a cosignature verified over other text: {text:?}"
            );
        }
    });
}

#[test]
fn receipts_never_verify_with_any_field_changed() {
    let h = history();
    let key = h.ledger.public_key();
    let seq = ledger::Seq(7);
    let receipt = h.ledger.receipt(seq).expect("receipt");
    let body = h.ledger.get(seq).expect("read").expect("entry").body;
    // The receipt's fields laid end to end, so the mutator changes them as bytes.
    let pack = |r: &Receipt| -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&r.seq.0.to_be_bytes());
        out.extend_from_slice(&r.recorded_at.0.to_be_bytes());
        out.extend_from_slice(&r.prev_hash.0);
        out.extend_from_slice(&r.key_id.0);
        out.extend_from_slice(&r.signature);
        out.extend_from_slice(&r.entry_hash.0);
        for node in &r.inclusion_path {
            out.extend_from_slice(node);
        }
        out
    };
    let original = pack(&receipt);
    Mutator::new("receipt", vec![original.clone()]).run("receipt", |input| {
        // seq 8, recorded_at 8, prev_hash 32, key_id 32, signature 64, entry_hash 32.
        if input.len() < 176 || (input.len() - 176) % 32 != 0 {
            return;
        }
        let h32 = |at: usize| -> [u8; 32] { input[at..at + 32].try_into().expect("32") };
        let mutated = Receipt {
            seq: ledger::Seq(u64::from_be_bytes(input[0..8].try_into().expect("8"))),
            recorded_at: ledger::UnixMicros(i64::from_be_bytes(
                input[8..16].try_into().expect("8"),
            )),
            prev_hash: ledger::EntryHash(h32(16)),
            key_id: ledger::KeyId(h32(48)),
            signature: input[80..144].try_into().expect("64"),
            entry_hash: ledger::EntryHash(h32(144)),
            checkpoint: receipt.checkpoint.clone(),
            inclusion_path: input[176..]
                .chunks(32)
                .skip(1)
                .map(|c| c.try_into().expect("32"))
                .collect(),
        };
        // Only the exact original receipt may verify.
        let accepted = mutated.verify(&body, &key).is_ok();
        if accepted {
            assert_eq!(pack(&mutated), original, "a changed receipt verified");
        }
    });
}

#[test]
fn merkle_proofs_never_verify_unless_they_are_the_true_proof() {
    let h = history();
    let size = 12;
    let root = h.root(size);
    let leaf = h
        .ledger
        .get(ledger::Seq(5))
        .expect("read")
        .expect("entry")
        .hash()
        .0;
    let leaf_hash = Blake3Hasher::hash_leaf(&leaf);
    let inclusion = h
        .ledger
        .inclusion_proof(ledger::Seq(5), size)
        .expect("proof");
    let consistency = h.proof(5, size);
    let old_root = h.root(5);
    let flatten = |p: &[[u8; 32]]| p.concat();
    Mutator::new("proofs", vec![flatten(&inclusion), flatten(&consistency)]).run(
        "proofs",
        |input| {
            if input.len() % 32 != 0 {
                return;
            }
            let proof: Vec<[u8; 32]> = input
                .chunks(32)
                .map(|c| c.try_into().expect("32"))
                .collect();
            if merkle::verify_inclusion::<Blake3Hasher>(&leaf_hash, 5, size, &proof, &root).is_ok()
            {
                assert_eq!(proof, inclusion, "a changed inclusion proof verified");
            }
            if merkle::verify_consistency::<Blake3Hasher>(5, size, &old_root, &root, &proof).is_ok()
            {
                assert_eq!(proof, consistency, "a changed consistency proof verified");
            }
        },
    );
}

#[test]
fn bundles_never_panic_the_reader_and_only_the_original_verifies() {
    let h = history();
    let entries: Vec<Entry> = h
        .ledger
        .entries(0..u64::MAX)
        .map(|e| e.expect("entry"))
        .collect();
    let checkpoints: Vec<String> = h.ledger.checkpoints().map(|c| c.expect("c").note).collect();
    let origin = h.ledger.origin().to_string();
    let bundle = Bundle {
        manifest: Manifest {
            ledger_id: h.ledger.ledger_id().to_hex(),
            origin: origin.clone(),
            ledger_key: isms_cli::bundle::ledger_vkey(&origin, &h.ledger.public_key()),
            entries: entries.len() as u64,
            checkpoints: checkpoints.len() as u64,
            artifacts: 0,
            exported_at: "2025-01-01T00:00:00Z".into(),
        },
        keys: isms_cli::commands::log::keys_of(&entries),
        entries: entries.iter().map(Entry::encode).collect(),
        checkpoints,
        artifacts: Vec::new(),
    };
    let original = bundle.to_bytes();
    let trust = Trust::key(h.ledger.public_key());
    isms_cli::bundle::verify_bundle(&original, &trust, &|_| {}).expect("the original verifies");
    Mutator::new("bundle", vec![original.clone()]).run("bundle", |input| {
        let _ = Bundle::from_bytes(input);
        if isms_cli::bundle::verify_bundle(input, &trust, &|_| {}).is_ok() && input != original {
            // Only the export time is the exporter's word, bound by nothing; all else must be
            // exactly what was exported.
            let mut read = Bundle::from_bytes(input).expect("a verified bundle reads");
            read.manifest.exported_at = bundle.manifest.exported_at.clone();
            assert_eq!(
                read.to_bytes(),
                original,
                "a changed bundle verified: {}",
                hex::encode(input)
            );
        }
    });
}

#[test]
fn yaml_intake_never_panics_on_damaged_files() {
    let seeds: Vec<Vec<u8>> = [
        "risk_assessment.yaml",
        "soa_template.yaml",
        "internal_audit.yaml",
    ]
    .iter()
    .map(|f| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/seed")
                .join(f),
        )
        .expect("seed fixture")
    })
    .collect();
    Mutator::new("yaml", seeds).run("yaml", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let _ = projections::seed::risk_register_events(text);
        let _ = projections::seed::soa_events(text);
        let _ = projections::seed::audit_plan_event(text);
        let _ = isms_cli::commands::submit::events_of(text, "fuzzed.yaml");
    });
}
