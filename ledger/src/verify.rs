//! Verification of the permanent record: every entry's encoding, seq, chain link, entry hash
//! and signature (by a key valid at that seq), and the Merkle root against every checkpoint.
//!
//! [`ChainVerifier`] is the engine and reads no store: it is fed raw entries in seq order and
//! the checkpoint notes, so the same code checks a sled ledger (`Ledger::verify`) and an
//! exported bundle with no store at all. Decoding, hashing and signatures run in parallel
//! (rayon, ed25519 batch verification); the chain, the key history and the tree are sequential.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;

use ed25519_dalek::VerifyingKey;
use prost::Message;
use rayon::prelude::*;

use crate::checkpoint::SignedCheckpoint;
use crate::engine::{KeyRange, Keyspace};
use crate::entry::{self, Entry, SignedEvent};
use crate::envelope::{EnvelopeView, Genesis, RecordAction};
use crate::keys::{KeyRecord, ADMIN_ROLE};
use crate::merkle::{self, Blake3Hasher, Frontier, MerkleHasher};
use crate::store::{self, Ledger, StoredNodes};
use crate::{event_index, rules, sig, EntryHash, KeyId, LedgerError, Seq, UnixMicros};

/// What failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Failure {
    /// An entry that should be there is not.
    Missing,
    /// The stored bytes are not an encoded entry.
    Undecodable,
    /// The entry stored at this seq says it is another seq.
    SeqMismatch,
    /// prev_hash is not the hash of the entry before.
    ChainBroken,
    /// recorded_at went backwards.
    RecordedAtDecreased,
    /// The entry's hash is not the leaf the Merkle tree holds for it.
    LeafMismatch,
    /// An internal Merkle node differs from the one the entries give.
    NodeMismatch,
    /// The signing key was never enrolled.
    UnknownKey,
    /// The signing key was not valid at this seq (revoked, or enrolled later).
    KeyNotValid,
    /// The signature does not verify.
    BadSignature,
    /// The body breaks a record rule (ledger id, key enrolment by a non-admin, ...).
    BadBody,
    /// Entry 0 is not a valid genesis.
    BadGenesis,
    /// A checkpoint note is malformed or not signed by the ledger key.
    BadCheckpoint,
    /// The root computed from the entries differs from a checkpoint's root.
    RootMismatch,
    /// The head record disagrees with the entries.
    HeadMismatch,
    /// There are entries after the head.
    ExtraEntry,
    /// The store could not be read.
    Store,
    /// Two checkpoints of one size with different notes: the ledger key signed two views
    /// of the log (a split view), or one of them is forged with the ledger key.
    Equivocation,
    /// Checkpoints not in strictly increasing size order (a repeat or a step back).
    CheckpointOrder,
    /// A checkpoint's `time` line is not the recorded_at of the last entry it covers.
    CheckpointTime,
    /// The history does not reach, or does not agree with, the checkpoint the caller trusts.
    TrustedCheckpoint,
    /// An event-id index block disagrees with the entries.
    EventIndexMismatch,
}

/// The record a verification failure is about.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Record {
    /// The entry with this seq.
    Entry(u64),
    /// The checkpoint of this size.
    Checkpoint(u64),
    /// The checkpoint the caller trusts (kept from an earlier audit), of this size.
    TrustedCheckpoint(u64),
    /// The stored event-id index block whose first seq is this.
    EventIndexBlock(u64),
    /// The stored Merkle node block of the batch whose last seq is this.
    NodeBlock(u64),
    /// The stored head record.
    Head,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Entry(seq) => write!(f, "entry {seq}"),
            Record::Checkpoint(size) => write!(f, "checkpoint of size {size}"),
            Record::TrustedCheckpoint(size) => write!(f, "trusted checkpoint of size {size}"),
            Record::EventIndexBlock(first) => {
                write!(f, "event-id index block from seq {first}")
            }
            Record::NodeBlock(last) => write!(f, "Merkle node block ending at seq {last}"),
            Record::Head => write!(f, "head record"),
        }
    }
}

/// The first thing that did not verify: which record, where, what, what was expected and what
/// was found.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{record}: {failure:?}: expected {expected}, found {found}")]
pub struct VerifyError {
    /// The seq of the failing entry (for a checkpoint: the last entry it covers); the lowest
    /// one is reported when several records fail.
    pub seq: u64,
    /// The record the failure is about.
    pub record: Record,
    /// What failed.
    pub failure: Failure,
    /// What verification expected.
    pub expected: String,
    /// What it found.
    pub found: String,
}

fn fail(
    seq: u64,
    failure: Failure,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> VerifyError {
    fail_in(Record::Entry(seq), seq, failure, expected, found)
}

fn fail_in(
    record: Record,
    seq: u64,
    failure: Failure,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> VerifyError {
    VerifyError {
        seq,
        record,
        failure,
        expected: expected.into(),
        found: found.into(),
    }
}

/// A checkpoint error, about the checkpoint of `size` (its last entry is `size - 1`).
fn fail_checkpoint(
    size: u64,
    failure: Failure,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> VerifyError {
    fail_in(
        Record::Checkpoint(size),
        size.saturating_sub(1),
        failure,
        expected,
        found,
    )
}

/// What a successful verification covered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifyReport {
    /// First seq checked.
    pub from: u64,
    /// Number of entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Merkle root over entries 0..(from + entries).
    pub root: [u8; 32],
    /// The latest checkpoint checked, if any.
    pub latest_checkpoint: Option<SignedCheckpoint>,
}

struct Decoded {
    entry: Entry,
    hash: EntryHash,
    action: Result<RecordAction, String>,
}

/// The verification engine: feed it raw entries in order, then finish.
pub struct ChainVerifier {
    genesis: Genesis,
    /// The genesis's ledger key.
    ledger_key: VerifyingKey,
    /// Ledger-key hand-overs seen so far: (size after which the key signs, the new key).
    handovers: Vec<(u64, VerifyingKey)>,
    /// Sizes of added checkpoints not signed by the genesis key: their signature is checked
    /// when the tree reaches them and the hand-overs before them are known.
    signed_later: std::collections::HashSet<u64>,
    keys: HashMap<KeyId, KeyRecord>,
    next: u64,
    from: u64,
    prev_hash: EntryHash,
    last_recorded_at: UnixMicros,
    frontier: Frontier,
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
    /// The largest checkpoint size added so far (0 before the first).
    last_added: u64,
    /// The checkpoint the caller trusts, if any.
    trusted: Option<SignedCheckpoint>,
    checked_checkpoints: u64,
    latest_checkpoint: Option<SignedCheckpoint>,
    pending: Vec<std::sync::mpsc::Receiver<Option<VerifyError>>>,
}

/// The lowest seq whose signature fails, checking in batches of 512 on all cores.
fn first_bad_signature(to_check: &[([u8; 32], SignedEvent, u64)]) -> Option<VerifyError> {
    to_check
        .par_chunks(512)
        .filter_map(|part| {
            let items: Vec<sig::Item<'_>> =
                part.iter().map(|(k, e, _)| store::sig_item(k, e)).collect();
            if sig::verify_batch(&items) {
                return None;
            }
            part.iter()
                .zip(&items)
                .find(|(_, item)| !sig::verify_one(item))
                .map(|(found, _)| found)
                .map(|(_, e, seq)| {
                    fail(
                        *seq,
                        Failure::BadSignature,
                        format!("a signature by key {} over the body", e.key_id.short()),
                        hex::encode(e.signature),
                    )
                })
        })
        .min_by_key(|e| e.seq)
}

impl fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainVerifier")
            .field("ledger_id", &self.genesis.ledger_id)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Looks up the stored Merkle node (level, index) for the node check; `None` skips it.
pub type NodeLookup<'a> = &'a (dyn Fn(u8, u64) -> Result<Option<[u8; 32]>, String> + Sync);

impl ChainVerifier {
    /// Starts from the raw genesis entry (seq 0), checking it.
    pub fn from_genesis(raw_genesis: &[u8]) -> Result<ChainVerifier, VerifyError> {
        let entry = Entry::decode(raw_genesis)
            .map_err(|e| fail(0, Failure::Undecodable, "an encoded entry", e.to_string()))?;
        if entry.seq != Seq(0) || entry.prev_hash != EntryHash::ZERO {
            return Err(fail(
                0,
                Failure::BadGenesis,
                "seq 0 with a zero prev_hash",
                format!("seq {}", entry.seq),
            ));
        }
        let genesis = store::decode_genesis(&entry).map_err(|e| {
            fail(
                0,
                Failure::BadGenesis,
                "a genesis signed by its ledger key",
                e.to_string(),
            )
        })?;
        let ledger_key = VerifyingKey::from_bytes(&genesis.ledger_public_key).map_err(|_| {
            fail(
                0,
                Failure::BadGenesis,
                "a valid ledger key",
                "an invalid point",
            )
        })?;
        let keys = store::genesis_keys(&genesis)
            .into_iter()
            .map(|k| (k.key_id, k))
            .collect();
        let hash = entry.hash();
        let mut frontier = Frontier::new();
        frontier.push::<Blake3Hasher>(&hash.0);
        Ok(ChainVerifier {
            genesis,
            ledger_key,
            handovers: Vec::new(),
            signed_later: std::collections::HashSet::new(),
            keys,
            next: 1,
            from: 0,
            prev_hash: hash,
            last_recorded_at: entry.recorded_at,
            frontier,
            checkpoints: BTreeMap::new(),
            last_added: 0,
            trusted: None,
            checked_checkpoints: 0,
            latest_checkpoint: None,
            pending: Vec::new(),
        })
    }

    /// The genesis being verified against.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Adds checkpoint notes to check as the tree reaches their size: `(size, note)`, where
    /// `size` is where the caller found the note (sled's key; for a bundle, the note's own size
    /// line). Every note must be signed by the ledger key under the genesis's origin, cover at
    /// least the genesis, and come in strictly increasing size order (across calls too). Two
    /// notes of one size are refused: the same checkpoint twice (whatever other signature
    /// lines each carries) as a repeat, two different checkpoints as an equivocation naming
    /// both roots.
    pub fn add_checkpoints<'a>(
        &mut self,
        notes: impl IntoIterator<Item = (u64, &'a str)>,
    ) -> Result<(), VerifyError> {
        let notes: Vec<(u64, &str)> = notes.into_iter().collect();
        let parsed: Vec<Result<(SignedCheckpoint, bool), VerifyError>> = notes
            .par_iter()
            .map(|(size, note)| {
                check_note_any_key(
                    &self.ledger_key,
                    &self.genesis.origin,
                    Record::Checkpoint(*size),
                    Some(*size),
                    note,
                )
            })
            .collect();
        let parsed: Vec<(SignedCheckpoint, bool)> = parsed.into_iter().collect::<Result<_, _>>()?;
        for (signed, by_genesis) in &parsed {
            if !by_genesis {
                self.signed_later.insert(signed.checkpoint.size);
            }
        }
        let parsed: Vec<SignedCheckpoint> = parsed.into_iter().map(|(s, _)| s).collect();
        // Equivocation first: two signed views of one size are the most important thing a
        // bundle can show, and must not hide behind an ordering complaint.
        let mut by_size: BTreeMap<u64, &SignedCheckpoint> = self
            .checkpoints
            .iter()
            .map(|(size, signed)| (*size, signed))
            .collect();
        for signed in &parsed {
            let size = signed.checkpoint.size;
            match by_size.get(&size) {
                // The same checkpoint may come with other signature lines (witnesses'
                // cosignatures): still one statement, so a repeat, not a split view.
                Some(earlier) if earlier.checkpoint == signed.checkpoint => {
                    return Err(fail_checkpoint(
                        size,
                        Failure::CheckpointOrder,
                        format!("one checkpoint of size {size}"),
                        "the same checkpoint twice",
                    ));
                }
                Some(earlier) => {
                    return Err(fail_checkpoint(
                        size,
                        Failure::Equivocation,
                        format!("one checkpoint of size {size}"),
                        format!(
                            "two checkpoints of size {size} signed by the ledger key: root {} \
                             (time {}) and root {} (time {}); a split view of the ledger",
                            hex::encode(earlier.checkpoint.root),
                            earlier.checkpoint.time.0,
                            hex::encode(signed.checkpoint.root),
                            signed.checkpoint.time.0
                        ),
                    ));
                }
                None => {
                    by_size.insert(size, signed);
                }
            }
        }
        let mut has_first = false;
        for signed in parsed {
            let size = signed.checkpoint.size;
            has_first |= size == 1;
            if size <= self.last_added {
                return Err(fail_checkpoint(
                    size,
                    Failure::CheckpointOrder,
                    "checkpoints in strictly increasing size order",
                    format!(
                        "checkpoint of size {size} after checkpoint of size {}",
                        self.last_added
                    ),
                ));
            }
            self.last_added = size;
            self.checkpoints.insert(size, signed);
        }
        if self.next == 1 && has_first {
            let signed = self.checkpoints[&1].clone();
            self.check_one(Record::Checkpoint(1), &signed)?;
            self.checked_checkpoints += 1;
            self.latest_checkpoint = Some(signed);
        }
        Ok(())
    }

    /// Sets the checkpoint the caller already holds (from an earlier audit, a receipt, a
    /// witness): the history must reach its size and have its exact root there, or
    /// verification fails naming it. It must be signed by the ledger key.
    pub fn trust_checkpoint(&mut self, note: &str) -> Result<(), VerifyError> {
        let size = SignedCheckpoint::parse_unverified(note).map_or(0, |c| c.size);
        let (signed, by_genesis) = check_note_any_key(
            &self.ledger_key,
            &self.genesis.origin,
            Record::TrustedCheckpoint(size),
            None,
            note,
        )?;
        if !by_genesis {
            self.signed_later.insert(0);
        }
        if self.next == 1 && signed.checkpoint.size == 1 {
            self.check_one(Record::TrustedCheckpoint(1), &signed)?;
        }
        self.trusted = Some(signed);
        Ok(())
    }

    /// Replays the key history of entries before a range without checking them, so that a
    /// range can be verified on its own (`Ledger::verify_range`).
    fn skip_to(&mut self, entries: &[Entry], frontier: Frontier) {
        for entry in entries {
            if let Ok(view) = EnvelopeView::decode(entry.body.as_slice()) {
                if let Ok(action) = rules::record_action(&view) {
                    self.apply_handover(&action, entry.seq);
                    apply_key_action(&mut self.keys, &action, entry.seq);
                }
            }
        }
        if let Some(last) = entries.last() {
            self.next = last.seq.0 + 1;
            self.from = self.next;
            self.prev_hash = last.hash();
            self.last_recorded_at = last.recorded_at;
        }
        self.frontier = frontier;
    }

    /// Checks the next chunk of raw entries: `(seq the store files it under, bytes)`, in
    /// order. `nodes` looks up stored Merkle nodes to compare with the recomputed ones.
    pub fn feed(
        &mut self,
        chunk: &[(u64, Vec<u8>)],
        nodes: Option<NodeLookup<'_>>,
    ) -> Result<(), VerifyError> {
        let ledger_id = self.genesis.ledger_id;
        let decoded: Vec<Result<Decoded, VerifyError>> = chunk
            .par_iter()
            .map(|(key_seq, raw)| {
                let entry = Entry::decode(raw).map_err(|e| {
                    fail(
                        *key_seq,
                        Failure::Undecodable,
                        "an encoded entry",
                        e.to_string(),
                    )
                })?;
                let hash = entry::hash_encoded(raw);
                if let Some(lookup) = nodes {
                    match lookup(0, *key_seq) {
                        Ok(Some(leaf)) if leaf == Blake3Hasher::hash_leaf(&hash.0) => {}
                        Ok(Some(leaf)) => {
                            return Err(fail(
                                *key_seq,
                                Failure::LeafMismatch,
                                format!(
                                    "Merkle leaf {}",
                                    hex::encode(Blake3Hasher::hash_leaf(&hash.0))
                                ),
                                hex::encode(leaf),
                            ))
                        }
                        Ok(None) => {
                            return Err(fail(
                                *key_seq,
                                Failure::LeafMismatch,
                                "a Merkle leaf",
                                "none",
                            ))
                        }
                        Err(e) => {
                            return Err(fail(*key_seq, Failure::Store, "a readable store", e))
                        }
                    }
                }
                let action = rules::check_body(&entry.body, &ledger_id, usize::MAX)
                    .map(|(_, action)| action)
                    .map_err(|e| e.to_string());
                Ok(Decoded {
                    entry,
                    hash,
                    action,
                })
            })
            .collect();

        // Sequential: the chain, the times, the keys. Signatures are collected for a parallel
        // pass; every failure found is kept and the lowest seq wins.
        let mut first: Option<VerifyError> = None;
        let note = |e: VerifyError, first: &mut Option<VerifyError>| {
            if first.as_ref().is_none_or(|f| e.seq < f.seq) {
                *first = Some(e);
            }
        };
        let mut to_check: Vec<([u8; 32], SignedEvent, u64)> = Vec::with_capacity(chunk.len());
        for (item, (key_seq, _)) in decoded.into_iter().zip(chunk) {
            let expected_seq = self.next;
            if *key_seq != expected_seq {
                note(
                    fail(
                        expected_seq,
                        Failure::Missing,
                        format!("entry {expected_seq}"),
                        format!("next stored entry is {key_seq}"),
                    ),
                    &mut first,
                );
                break;
            }
            let d = match item {
                Ok(d) => d,
                Err(e) => {
                    note(e, &mut first);
                    break;
                }
            };
            let seq = d.entry.seq.0;
            if seq != expected_seq {
                note(
                    fail(
                        expected_seq,
                        Failure::SeqMismatch,
                        format!("seq {expected_seq}"),
                        format!("an entry that says seq {seq}"),
                    ),
                    &mut first,
                );
                break;
            }
            if d.entry.prev_hash != self.prev_hash {
                note(
                    fail(
                        seq,
                        Failure::ChainBroken,
                        format!("prev_hash {}", self.prev_hash),
                        d.entry.prev_hash.to_hex(),
                    ),
                    &mut first,
                );
                break;
            }
            if d.entry.recorded_at < self.last_recorded_at {
                note(
                    fail(
                        seq,
                        Failure::RecordedAtDecreased,
                        format!("recorded_at >= {}", self.last_recorded_at),
                        d.entry.recorded_at.to_string(),
                    ),
                    &mut first,
                );
                break;
            }
            let action = match d.action {
                Ok(a) => a,
                Err(e) => {
                    note(
                        fail(
                            seq,
                            Failure::BadBody,
                            "a body that passes the record rules",
                            e,
                        ),
                        &mut first,
                    );
                    break;
                }
            };
            match self.keys.get(&d.entry.key_id) {
                None => {
                    note(
                        fail(
                            seq,
                            Failure::UnknownKey,
                            "a key enrolled before this entry",
                            d.entry.key_id.to_hex(),
                        ),
                        &mut first,
                    );
                    break;
                }
                Some(k) if !k.valid_at(Seq(seq)) => {
                    note(
                        fail(
                            seq,
                            Failure::KeyNotValid,
                            format!("key {} valid at seq {seq}", k.key_id.short()),
                            format!(
                                "enrolled at {} revoked at {:?}",
                                k.enrolled_at,
                                k.revoked_at.map(|s| s.0)
                            ),
                        ),
                        &mut first,
                    );
                    break;
                }
                Some(k) => {
                    let needs_admin = !matches!(action, RecordAction::None);
                    if needs_admin && !k.has_role(ADMIN_ROLE) {
                        note(
                            fail(
                                seq,
                                Failure::BadBody,
                                "a record action signed by an admin key",
                                format!("signed by {} ({})", k.key_id.short(), k.subject),
                            ),
                            &mut first,
                        );
                        break;
                    }
                    if let Some(e) = key_rule(&self.keys, &action, k, seq) {
                        note(e, &mut first);
                        break;
                    }
                    if let RecordAction::LedgerKeyRotated(handover) = &action {
                        let current = self.ledger_key_for(u64::MAX).to_bytes();
                        if let Err(why) = handover.check(&self.genesis.ledger_id, &current) {
                            note(
                                fail(
                                    seq,
                                    Failure::BadBody,
                                    "a hand-over signed by the current and the new ledger key",
                                    why,
                                ),
                                &mut first,
                            );
                            break;
                        }
                    }
                    to_check.push((
                        k.public_key,
                        SignedEvent {
                            key_id: d.entry.key_id,
                            signature: d.entry.signature,
                            body: d.entry.body,
                        },
                        seq,
                    ));
                }
            }
            self.apply_handover(&action, Seq(seq));
            apply_key_action(&mut self.keys, &action, Seq(seq));
            self.prev_hash = d.hash;
            self.last_recorded_at = d.entry.recorded_at;
            self.next += 1;
            let new_nodes = self.frontier.push::<Blake3Hasher>(&d.hash.0);
            if let Some(lookup) = nodes {
                for n in new_nodes.iter().filter(|n| n.level > 0) {
                    match lookup(n.level, n.index) {
                        Ok(Some(stored)) if stored == n.hash => {}
                        other => {
                            let found = match other {
                                Ok(Some(h)) => hex::encode(h),
                                Ok(None) => "none".into(),
                                Err(e) => e,
                            };
                            note(
                                fail(
                                    seq,
                                    Failure::NodeMismatch,
                                    format!(
                                        "Merkle node (level {}, index {}) = {}",
                                        n.level,
                                        n.index,
                                        hex::encode(n.hash)
                                    ),
                                    found,
                                ),
                                &mut first,
                            );
                        }
                    }
                }
            }
            if let Err(e) = self.check_checkpoint_at(self.next) {
                note(e, &mut first);
                break;
            }
        }

        // Signatures are checked on the rayon pool while the caller reads and walks the next
        // chunk: at most two chunks are in flight, and every result is collected before an
        // error is reported, so the lowest failing seq still wins.
        let (tx, rx) = std::sync::mpsc::channel();
        rayon::spawn(move || {
            let _ = tx.send(first_bad_signature(&to_check));
        });
        self.pending.push(rx);
        if first.is_some() {
            if let Some(e) = self.drain_pending(0) {
                note(e, &mut first);
            }
            return Err(first.expect("checked above"));
        }
        if let Some(e) = self.drain_pending(1) {
            return Err(e);
        }
        Ok(())
    }

    /// Waits for signature checks until at most `keep` are in flight; the lowest failure.
    fn drain_pending(&mut self, keep: usize) -> Option<VerifyError> {
        let mut worst: Option<VerifyError> = None;
        while self.pending.len() > keep {
            let rx = self.pending.remove(0);
            let result = rx.recv().unwrap_or_else(|_| {
                Some(fail(
                    self.next,
                    Failure::Store,
                    "a finished signature check",
                    "a worker that stopped",
                ))
            });
            if let Some(e) = result {
                if worst.as_ref().is_none_or(|w| e.seq < w.seq) {
                    worst = Some(e);
                }
            }
        }
        if worst.is_some() {
            // Anything still in flight covers later seqs; its result no longer matters.
            self.pending.clear();
        }
        worst
    }

    /// Follows a ledger-key hand-over at `seq`: the new key signs checkpoints of sizes above
    /// seq + 1, and its id is taken.
    fn apply_handover(&mut self, action: &RecordAction, seq: Seq) {
        if let RecordAction::LedgerKeyRotated(handover) = action {
            if let Ok(key) = VerifyingKey::from_bytes(&handover.new_public_key) {
                self.handovers.push((seq.0 + 1, key));
            }
            let record = store::handover_key_record(&self.genesis, handover, seq);
            self.keys.entry(record.key_id).or_insert(record);
        }
    }

    /// The ledger key that must sign a checkpoint of `size`: the genesis's, or the new key of
    /// the last hand-over before it (a hand-over at seq r is signed off by the old key's
    /// checkpoints up to size r + 1).
    fn ledger_key_for(&self, size: u64) -> &VerifyingKey {
        self.handovers
            .iter()
            .rev()
            .find(|(after, _)| size > *after)
            .map_or(&self.ledger_key, |(_, key)| key)
    }

    /// Checks that the key in charge at the checkpoint's size signed it.
    fn check_signer(&self, record: &Record, signed: &SignedCheckpoint) -> Result<(), VerifyError> {
        let size = signed.checkpoint.size;
        let key = self.ledger_key_for(size);
        let later = match record {
            Record::TrustedCheckpoint(_) => self.signed_later.contains(&0),
            _ => self.signed_later.contains(&size),
        };
        let outcome = if later {
            SignedCheckpoint::verify(&signed.note, key).map(|_| ())
        } else if key == &self.ledger_key {
            Ok(())
        } else {
            Err(crate::CheckpointError::Malformed(format!(
                "signed by the genesis's ledger key, which handed over to key {} before this \
                 size",
                KeyId::of_public_key(key.as_bytes()).short()
            )))
        };
        outcome.map_err(|e| {
            fail_in(
                record.clone(),
                size - 1,
                Failure::BadCheckpoint,
                format!(
                    "checkpoint of size {size} signed by the ledger key in charge there ({})",
                    KeyId::of_public_key(key.as_bytes()).short()
                ),
                e.to_string(),
            )
        })
    }

    /// Checks the checkpoint of `size` (and the trusted one, if that is its size) now that
    /// the tree holds `size` leaves.
    fn check_checkpoint_at(&mut self, size: u64) -> Result<(), VerifyError> {
        if let Some(signed) = self.checkpoints.get(&size) {
            self.check_one(Record::Checkpoint(size), signed)?;
            self.checked_checkpoints += 1;
            self.latest_checkpoint = Some(signed.clone());
        }
        if let Some(trusted) = self.trusted.as_ref().filter(|t| t.checkpoint.size == size) {
            self.check_one(Record::TrustedCheckpoint(size), trusted)?;
        }
        Ok(())
    }

    /// Checks one checkpoint whose size the tree has just reached: its root against the
    /// recomputed one, and its `time` against the recorded_at of its last entry.
    fn check_one(&self, record: Record, signed: &SignedCheckpoint) -> Result<(), VerifyError> {
        let size = signed.checkpoint.size;
        self.check_signer(&record, signed)?;
        let root = self.frontier.root::<Blake3Hasher>();
        if signed.checkpoint.root != root {
            let (failure, whose) = match record {
                Record::TrustedCheckpoint(_) => (Failure::TrustedCheckpoint, "trusted checkpoint"),
                _ => (Failure::RootMismatch, "checkpoint"),
            };
            return Err(fail_in(
                record,
                size - 1,
                failure,
                format!(
                    "root {} at size {size} (the {whose})",
                    hex::encode(signed.checkpoint.root)
                ),
                format!(
                    "root {} from the entries: the root at size {size} differs from the {whose}",
                    hex::encode(root)
                ),
            ));
        }
        if signed.checkpoint.time != self.last_recorded_at {
            return Err(fail_in(
                record,
                size - 1,
                Failure::CheckpointTime,
                format!(
                    "time {} (the recorded_at of entry {}, its last entry)",
                    self.last_recorded_at.0,
                    size - 1
                ),
                format!("time {}", signed.checkpoint.time.0),
            ));
        }
        Ok(())
    }

    /// Ends verification: `expected_size` (when known, e.g. from the head) must be the number
    /// of entries fed, and no checkpoint may cover more.
    pub fn finish(mut self, expected_size: Option<u64>) -> Result<VerifyReport, VerifyError> {
        if let Some(e) = self.drain_pending(0) {
            return Err(e);
        }
        if let Some(size) = expected_size {
            if self.next < size {
                return Err(fail(
                    self.next,
                    Failure::Missing,
                    format!("{size} entries (the head)"),
                    format!("{} entries", self.next),
                ));
            }
            if self.next > size {
                return Err(fail(
                    size,
                    Failure::ExtraEntry,
                    format!("{size} entries (the head)"),
                    format!("{} entries", self.next),
                ));
            }
        }
        if let Some((&size, _)) = self.checkpoints.range(self.next + 1..).next() {
            return Err(fail_in(
                Record::Checkpoint(size),
                self.next,
                Failure::Missing,
                format!("entries up to {} (the checkpoint covers them)", size - 1),
                format!("{} entries", self.next),
            ));
        }
        if let Some(trusted) = self.trusted.as_ref().map(|t| t.checkpoint.size) {
            if trusted > self.next {
                return Err(fail_in(
                    Record::TrustedCheckpoint(trusted),
                    self.next,
                    Failure::TrustedCheckpoint,
                    format!("a history that reaches the trusted checkpoint of size {trusted}"),
                    format!(
                        "the history ends at size {}, before the trusted checkpoint of size \
                         {trusted}",
                        self.next
                    ),
                ));
            }
        }
        Ok(VerifyReport {
            from: self.from,
            entries: self.next - self.from,
            checkpoints: self.checked_checkpoints,
            root: self.frontier.root::<Blake3Hasher>(),
            latest_checkpoint: self.latest_checkpoint,
        })
    }
}

/// A note checked on its own (see [`check_note`]) and whether the genesis's ledger key
/// signed it. A note with no signature line by the genesis key may be signed by a key a
/// later hand-over names: it is parsed now and its signature checked when the tree
/// reaches its size (`ChainVerifier::check_signer`).
fn check_note_any_key(
    ledger_key: &VerifyingKey,
    origin: &str,
    record: Record,
    filed_size: Option<u64>,
    note: &str,
) -> Result<(SignedCheckpoint, bool), VerifyError> {
    match check_note(Some(ledger_key), origin, record.clone(), filed_size, note) {
        Ok(signed) => Ok((signed, true)),
        Err(e) => match SignedCheckpoint::verify(note, ledger_key) {
            Err(crate::CheckpointError::NoSignature { .. }) => {
                check_note(None, origin, record, filed_size, note).map(|s| (s, false))
            }
            _ => Err(e),
        },
    }
}

/// Checks one note on its own: signature, origin, size.
fn check_note(
    ledger_key: Option<&VerifyingKey>,
    origin: &str,
    record: Record,
    filed_size: Option<u64>,
    note: &str,
) -> Result<SignedCheckpoint, VerifyError> {
    let what = match filed_size {
        Some(size) => format!("checkpoint of size {size}"),
        None => "a checkpoint".to_string(),
    };
    let last = filed_size.unwrap_or(0).saturating_sub(1);
    let signed = match ledger_key {
        Some(key) => SignedCheckpoint::verify(note, key),
        None => SignedCheckpoint::parse_unverified(note).map(|checkpoint| SignedCheckpoint {
            checkpoint,
            note: note.to_string(),
        }),
    }
    .map_err(|e| {
        fail_in(
            record.clone(),
            last,
            Failure::BadCheckpoint,
            format!("{what} signed by the ledger key"),
            e.to_string(),
        )
    })?;
    let c = &signed.checkpoint;
    if c.origin != origin {
        return Err(fail_in(
            record,
            last,
            Failure::BadCheckpoint,
            format!("origin {}", origin),
            format!("origin {}", c.origin),
        ));
    }
    if let Some(size) = filed_size {
        if c.size != size {
            return Err(fail_in(
                record,
                last,
                Failure::BadCheckpoint,
                format!("size {size} (where it is filed)"),
                format!("size {}", c.size),
            ));
        }
    }
    if c.size == 0 {
        return Err(fail_in(
            record,
            0,
            Failure::BadCheckpoint,
            "a size of at least 1 (every checkpoint covers the genesis)",
            "size 0",
        ));
    }
    Ok(signed)
}

/// The key history rules an entry's record action must keep (the same the writer applies):
/// a key id is enrolled once; only an enrolled, unrevoked key is revoked; and no key signs
/// its own revocation (it would be invalid at that very seq).
fn key_rule(
    keys: &HashMap<KeyId, KeyRecord>,
    action: &RecordAction,
    signer: &KeyRecord,
    seq: u64,
) -> Option<VerifyError> {
    let bad = |expected: &str, found: String| Some(fail(seq, Failure::BadBody, expected, found));
    match action {
        RecordAction::KeyEnrolled(grant) => {
            let existing = keys.get(&grant.key_id())?;
            bad(
                "an enrolment of a key id never enrolled before",
                format!(
                    "key {} already enrolled at seq {}",
                    existing.key_id.short(),
                    existing.enrolled_at
                ),
            )
        }
        RecordAction::LedgerKeyRotated(handover) => {
            let existing = keys.get(&KeyId::of_public_key(&handover.new_public_key))?;
            bad(
                "a new ledger key never used before",
                format!(
                    "key {} already known at seq {}",
                    existing.key_id.short(),
                    existing.enrolled_at
                ),
            )
        }
        RecordAction::KeyRevoked(id) => match keys.get(id) {
            None => bad(
                "a revocation of an enrolled key",
                format!("key {} is not enrolled", id.short()),
            ),
            Some(k) if k.revoked_at.is_some() => bad(
                "a revocation of a key not yet revoked",
                format!(
                    "key {} already revoked at seq {}",
                    id.short(),
                    k.revoked_at.map_or(0, |r| r.0)
                ),
            ),
            Some(_) if *id == signer.key_id => bad(
                "a revocation signed by another admin key",
                format!("key {} signs its own revocation", id.short()),
            ),
            Some(_) => None,
        },
        _ => None,
    }
}

fn apply_key_action(keys: &mut HashMap<KeyId, KeyRecord>, action: &RecordAction, seq: Seq) {
    match action {
        RecordAction::KeyEnrolled(grant) => {
            keys.entry(grant.key_id())
                .or_insert_with(|| grant.record(seq));
        }
        RecordAction::KeyRevoked(id) => {
            if let Some(k) = keys.get_mut(id) {
                k.revoked_at.get_or_insert(seq);
            }
        }
        _ => {}
    }
}

/// Entries read from sled per parallel chunk.
const CHUNK: usize = 8192;

impl Ledger {
    /// Verifies the whole ledger. `progress` is told the number of entries checked so far.
    pub fn verify(&self, progress: &dyn Fn(u64)) -> Result<VerifyReport, VerifyError> {
        self.verify_range(0..u64::MAX, progress)
    }

    /// Verifies entries in `range` (clamped to the ledger). Entries before the range are
    /// trusted for their hash chain and key history; the Merkle state at the range start is
    /// read from the stored nodes.
    pub fn verify_range(
        &self,
        range: Range<u64>,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport, VerifyError> {
        self.verify_inner(range, None, progress)
    }

    /// Verifies the whole ledger as [`Ledger::verify`] does, and that it agrees with
    /// `trusted_note`, a checkpoint the caller kept: it must be signed by the ledger key, and
    /// the ledger must reach its size with exactly its root there.
    pub fn verify_trusting(
        &self,
        trusted_note: &str,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport, VerifyError> {
        self.verify_inner(0..u64::MAX, Some(trusted_note), progress)
    }

    fn verify_inner(
        &self,
        range: Range<u64>,
        trusted_note: Option<&str>,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport, VerifyError> {
        let store_err = |e: LedgerError| fail(0, Failure::Store, "a readable store", e.to_string());
        let records = self.records_space();
        let raw_genesis = store::entry_blocks::read(records, 0)
            .map_err(store_err)?
            .ok_or_else(|| fail(0, Failure::Missing, "a genesis entry", "none"))?;
        let mut verifier = ChainVerifier::from_genesis(&raw_genesis)?;
        let head = self.head().size;
        let start = range.start.max(1);
        let end = range.end.min(head);
        if start > 1 {
            let before: Vec<Entry> = self
                .entries(1..start)
                .collect::<Result<_, _>>()
                .map_err(store_err)?;
            let frontier = Frontier::load(&StoredNodes(records), start).map_err(store_err)?;
            verifier.skip_to(&before, frontier);
        }
        let notes: Vec<(u64, String)> = records
            .scan(KeyRange::prefix(b"c"))
            .map(|item| {
                let (k, v) = item.map_err(store_err)?;
                let size = u64::from_be_bytes(k[1..].try_into().map_err(|_| {
                    fail(
                        0,
                        Failure::BadCheckpoint,
                        "an 8-byte size key",
                        hex::encode(&k),
                    )
                })?);
                let note = String::from_utf8(v).map_err(|_| {
                    fail_checkpoint(size, Failure::BadCheckpoint, "a UTF-8 note", "other bytes")
                })?;
                Ok((size, note))
            })
            .collect::<Result<_, VerifyError>>()?;
        verifier.add_checkpoints(
            notes
                .iter()
                .filter(|(s, _)| *s <= end.max(1))
                .map(|(s, n)| (*s, n.as_str())),
        )?;
        if let Some(note) = trusted_note {
            verifier.trust_checkpoint(note)?;
        }

        let mut chunk = Vec::with_capacity(CHUNK);
        // Entries staged but not yet durable are not the record yet; verification stops at the
        // durable head and, below, refuses entries stored beyond everything staged.
        let upper = end;
        let feed = |chunk: &mut Vec<(u64, Vec<u8>)>, verifier: &mut ChainVerifier| {
            // The stored nodes this chunk completes, read in one pass over the node blocks
            // instead of one lookup per node; the blocks' shape is checked on the way.
            let (first, last) = (chunk[0].0, chunk[chunk.len() - 1].0);
            let (nodes, bad_block) = stored_nodes(records, first, last).map_err(store_err)?;
            let lookup = |level: u8, index: u64| -> Result<Option<[u8; 32]>, String> {
                Ok(nodes.get(&(level, index)).copied())
            };
            let fed = verifier.feed(chunk, Some(&lookup)).err();
            let bad_index = check_event_index(records, chunk).map_err(store_err)?;
            // The lowest seq wins; on a tie the block (the more specific record) is named.
            let worst = [bad_block, bad_index, fed]
                .into_iter()
                .flatten()
                .reduce(|a, b| if b.seq < a.seq { b } else { a });
            if let Some(e) = worst {
                return Err(e);
            }
            progress(verifier.next - verifier.from);
            chunk.clear();
            Ok::<(), VerifyError>(())
        };
        for item in store::entry_blocks::scan(records, start, upper) {
            let (key_seq, v) = item.map_err(|e| match e {
                LedgerError::Corrupt { seq, what } => {
                    fail(seq, Failure::Undecodable, "readable stored entries", what)
                }
                other => store_err(other),
            })?;
            chunk.push((key_seq, v));
            if chunk.len() == CHUNK {
                feed(&mut chunk, &mut verifier)?;
            }
        }
        if !chunk.is_empty() {
            feed(&mut chunk, &mut verifier)?;
        }
        if range.end >= head {
            let staged = self.staged_size();
            if let Some(seq) =
                store::entry_blocks::first_at_or_after(records, staged).map_err(store_err)?
            {
                return Err(fail(
                    seq,
                    Failure::ExtraEntry,
                    format!("no entry after the head ({head} entries)"),
                    format!("an entry at seq {seq}"),
                ));
            }
        }
        let expected = (range.end >= head).then_some(head);
        if expected.is_some() && verifier.next == head {
            check_head(&self.head(), &verifier)?;
        }
        verifier.finish(expected)
    }
}

/// The head record (what appends continue from) must describe the last entry verified.
fn check_head(head: &store::Head, verifier: &ChainVerifier) -> Result<(), VerifyError> {
    let root = verifier.frontier.root::<Blake3Hasher>();
    let last = head.size.saturating_sub(1);
    let bad = |expected: String, found: String| {
        Err(fail_in(
            Record::Head,
            last,
            Failure::HeadMismatch,
            expected,
            found,
        ))
    };
    if head.last_hash != verifier.prev_hash {
        return bad(
            format!("last entry hash {} (entry {last})", verifier.prev_hash),
            head.last_hash.to_hex(),
        );
    }
    if head.root != root {
        return bad(
            format!("root {} of the entries", hex::encode(root)),
            hex::encode(head.root),
        );
    }
    if head.last_recorded_at != verifier.last_recorded_at {
        return bad(
            format!(
                "recorded_at {} of entry {last}",
                verifier.last_recorded_at.0
            ),
            head.last_recorded_at.0.to_string(),
        );
    }
    Ok(())
}

/// How many Merkle nodes (leaves included) the leaves `first..=last` complete: leaf `s`
/// completes one node per trailing one bit of `s`, plus itself.
fn nodes_completed(first: u64, last: u64) -> u64 {
    (first..=last)
        .map(|s| 1 + u64::from(s.trailing_ones()))
        .sum()
}

/// The stored Merkle nodes completed by the leaves `first..=last`, from the node blocks that
/// cover them, and the first block that is not exactly what its batch completed: a block
/// filed under a batch's last seq `l`, after the block of `p`, must hold the nodes the leaves
/// `p + 1..=l` complete, each once, in push order (by completing seq, then level), since
/// proofs find nodes in it by binary search. The hashes themselves are compared by the
/// caller, node by node, with the recomputed ones.
#[allow(clippy::type_complexity)]
fn stored_nodes(
    records: &dyn Keyspace,
    first: u64,
    last: u64,
) -> Result<(HashMap<(u8, u64), [u8; 32]>, Option<VerifyError>), LedgerError> {
    let mut nodes = HashMap::new();
    let mut bad: Option<VerifyError> = None;
    let mut block_first = match records.last(KeyRange::half_open(
        store::node_block_key(0),
        store::node_block_key(first),
    ))? {
        Some((key, _)) => be_key(&key).map_or(0, |p| p + 1),
        None => 0,
    };
    for item in records.scan(KeyRange::inclusive(
        store::node_block_key(first),
        store::node_block_key(u64::MAX),
    )) {
        let (key, block) = item?;
        let block_last = be_key(&key).unwrap_or(u64::MAX);
        if bad.is_none() {
            bad = check_node_block(block_first, block_last, &block).err();
        }
        for (level, index, hash) in store::decode_node_block(&block) {
            let Some(seq) = checked_completing_seq(level, index) else {
                continue;
            };
            if (first..=last).contains(&seq) {
                nodes.insert((level, index), hash);
            }
        }
        if block_last >= last {
            break;
        }
        block_first = block_last.saturating_add(1);
    }
    Ok((nodes, bad))
}

fn be_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..)?.try_into().ok()?))
}

/// `store::completing_seq` for values read from disk, which may be anything.
fn checked_completing_seq(level: u8, index: u64) -> Option<u64> {
    if level >= 64 {
        return None;
    }
    index
        .checked_add(1)?
        .checked_mul(1u64 << level)?
        .checked_sub(1)
}

/// Checks the shape of the node block of leaves `first..=last` (see [`stored_nodes`]).
fn check_node_block(first: u64, last: u64, block: &[u8]) -> Result<(), VerifyError> {
    let bad = |seq: u64, expected: String, found: String| {
        Err(fail_in(
            Record::NodeBlock(last),
            seq,
            Failure::NodeMismatch,
            expected,
            found,
        ))
    };
    let what = format!("the nodes completed by entries {first}..={last}, in push order");
    if first > last {
        return bad(
            last,
            what,
            "a block filed before the end of the previous one".into(),
        );
    }
    if block.len() % 41 != 0 {
        return bad(
            first,
            "whole 41-byte node records".into(),
            format!("{} bytes", block.len()),
        );
    }
    let mut previous: Option<(u64, u8)> = None;
    for (level, index, _) in store::decode_node_block(block) {
        let at = checked_completing_seq(level, index);
        match at {
            Some(seq) if (first..=last).contains(&seq) && previous < Some((seq, level)) => {
                previous = Some((seq, level));
            }
            _ => {
                let seq = at.map_or(first, |s| s.clamp(first, last));
                return bad(
                    seq,
                    what,
                    format!(
                        "node (level {level}, index {index}){}",
                        match at {
                            Some(s) if (first..=last).contains(&s) => {
                                " out of order or repeated".to_string()
                            }
                            Some(s) => format!(", completed by entry {s}"),
                            None => ", which no entry completes".to_string(),
                        }
                    ),
                );
            }
        }
    }
    let expected = nodes_completed(first, last);
    let found = (block.len() / 41) as u64;
    if found != expected {
        return bad(
            first,
            format!("{expected} nodes ({what})"),
            format!("{found} nodes"),
        );
    }
    Ok(())
}

/// Checks the stored event-id index against the entries of `chunk` (consecutive seqs): the
/// blocks must tile the seqs without gap or overlap, and each record must be the index hash
/// of its entry's event id. Returns the first disagreement.
fn check_event_index(
    records: &dyn Keyspace,
    chunk: &[(u64, Vec<u8>)],
) -> Result<Option<VerifyError>, LedgerError> {
    let (first, last) = (chunk[0].0, chunk[chunk.len() - 1].0);
    // By the seq the store files each entry under: a missing entry leaves a gap, named by
    // the chain check.
    let hashes: HashMap<u64, u64> = chunk
        .par_iter()
        .filter_map(|(seq, raw)| {
            let hash = Entry::decode(raw)
                .ok()
                .and_then(|e| event_index::event_id_of(&e.body))
                .map(|id| event_index::id_hash(&id))?;
            Some((*seq, hash))
        })
        .collect();
    let start = records
        .last(KeyRange::inclusive(
            store::event_index_key(0),
            store::event_index_key(first),
        ))?
        .and_then(|(k, _)| be_key(&k))
        .unwrap_or(first);
    let mut expect_key = None;
    let mut seq = first;
    for item in records.scan(KeyRange::inclusive(
        store::event_index_key(start),
        store::event_index_key(last),
    )) {
        let (key, block) = item?;
        let block_first = be_key(&key).unwrap_or(u64::MAX);
        let record = Record::EventIndexBlock(block_first);
        if expect_key.is_some_and(|k| k != block_first) || block_first > seq {
            return Ok(Some(fail_in(
                record,
                seq.min(block_first),
                Failure::EventIndexMismatch,
                format!("an index block starting at seq {seq}"),
                format!("a block starting at seq {block_first}"),
            )));
        }
        if block.len() % event_index::BLOCK_RECORD != 0 {
            return Ok(Some(fail_in(
                record,
                block_first,
                Failure::EventIndexMismatch,
                "whole 8-byte index records",
                format!("{} bytes", block.len()),
            )));
        }
        let count = (block.len() / event_index::BLOCK_RECORD) as u64;
        let block_end = block_first + count;
        while seq < block_end && seq <= last {
            let at = ((seq - block_first) as usize) * event_index::BLOCK_RECORD;
            let stored = u64::from_le_bytes(
                block[at..at + event_index::BLOCK_RECORD]
                    .try_into()
                    .expect("8 bytes"),
            );
            // An entry that is missing or does not decode is named by the chain check instead.
            if let Some(&want) = hashes.get(&seq) {
                if stored != want {
                    return Ok(Some(fail_in(
                        record,
                        seq,
                        Failure::EventIndexMismatch,
                        format!("index hash {want:016x} of entry {seq}'s event id"),
                        format!("{stored:016x}"),
                    )));
                }
            }
            seq += 1;
        }
        expect_key = Some(block_end);
        if seq > last {
            return Ok(None);
        }
    }
    Ok(Some(fail_in(
        Record::EventIndexBlock(seq),
        seq,
        Failure::EventIndexMismatch,
        format!("an index block covering seq {seq}"),
        "none",
    )))
}

/// Checks an inclusion proof of an entry hash against a checkpoint root.
pub fn verify_entry_inclusion(
    entry_hash: &EntryHash,
    seq: Seq,
    size: u64,
    path: &[[u8; 32]],
    root: &[u8; 32],
) -> Result<(), merkle::ProofError> {
    merkle::verify_inclusion::<Blake3Hasher>(
        &Blake3Hasher::hash_leaf(&entry_hash.0),
        seq.0,
        size,
        path,
        root,
    )
}
