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
use crate::entry::{self, Entry, SignedEvent};
use crate::envelope::{EnvelopeView, Genesis, RecordAction};
use crate::keys::{KeyRecord, ADMIN_ROLE};
use crate::merkle::{self, Blake3Hasher, Frontier, MerkleHasher};
use crate::store::{self, Ledger, SledNodes};
use crate::{rules, sig, EntryHash, KeyId, LedgerError, Seq, UnixMicros};

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
}

/// The first thing that did not verify: where, what, what was expected and what was found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifyError {
    /// The seq of the failing entry (for a checkpoint: the last entry it covers).
    pub seq: u64,
    /// What failed.
    pub failure: Failure,
    /// What verification expected.
    pub expected: String,
    /// What it found.
    pub found: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {}: {:?}: expected {}, found {}",
            self.seq, self.failure, self.expected, self.found
        )
    }
}

impl std::error::Error for VerifyError {}

fn fail(
    seq: u64,
    failure: Failure,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> VerifyError {
    VerifyError {
        seq,
        failure,
        expected: expected.into(),
        found: found.into(),
    }
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
    ledger_key: VerifyingKey,
    keys: HashMap<KeyId, KeyRecord>,
    next: u64,
    from: u64,
    prev_hash: EntryHash,
    last_recorded_at: UnixMicros,
    frontier: Frontier,
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
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
            keys,
            next: 1,
            from: 0,
            prev_hash: hash,
            last_recorded_at: entry.recorded_at,
            frontier,
            checkpoints: BTreeMap::new(),
            checked_checkpoints: 0,
            latest_checkpoint: None,
            pending: Vec::new(),
        })
    }

    /// The genesis being verified against.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Adds checkpoint notes to check as the tree reaches their size. Every note must be
    /// signed by the ledger key.
    pub fn add_checkpoints<'a>(
        &mut self,
        notes: impl IntoIterator<Item = (u64, &'a str)>,
    ) -> Result<(), VerifyError> {
        let notes: Vec<(u64, &str)> = notes.into_iter().collect();
        let parsed: Vec<Result<(u64, SignedCheckpoint), VerifyError>> = notes
            .par_iter()
            .map(|(size, note)| {
                let last = size.saturating_sub(1);
                let signed = SignedCheckpoint::verify(note, &self.ledger_key).map_err(|e| {
                    fail(
                        last,
                        Failure::BadCheckpoint,
                        format!("checkpoint of size {size} signed by the ledger key"),
                        e.to_string(),
                    )
                })?;
                if signed.checkpoint.size != *size
                    || signed.checkpoint.origin != self.genesis.origin
                {
                    return Err(fail(
                        last,
                        Failure::BadCheckpoint,
                        format!("origin {} and size {size}", self.genesis.origin),
                        format!(
                            "origin {} and size {}",
                            signed.checkpoint.origin, signed.checkpoint.size
                        ),
                    ));
                }
                Ok((*size, signed))
            })
            .collect();
        for item in parsed {
            let (size, signed) = item?;
            if size <= self.from {
                continue;
            }
            self.checkpoints.insert(size, signed);
        }
        if self.next == 1 {
            self.check_checkpoint_at(1)?;
        }
        Ok(())
    }

    /// Replays the key history of entries before a range without checking them, so that a
    /// range can be verified on its own (`Ledger::verify_range`).
    fn skip_to(&mut self, entries: &[Entry], frontier: Frontier) {
        for entry in entries {
            if let Ok(view) = EnvelopeView::decode(entry.body.as_slice()) {
                if let Ok(action) = rules::record_action(&view) {
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

    fn check_checkpoint_at(&mut self, size: u64) -> Result<(), VerifyError> {
        let Some(signed) = self.checkpoints.get(&size) else {
            return Ok(());
        };
        let root = self.frontier.root::<Blake3Hasher>();
        if signed.checkpoint.root != root {
            return Err(fail(
                size - 1,
                Failure::RootMismatch,
                format!(
                    "checkpoint root {} at size {size}",
                    hex::encode(signed.checkpoint.root)
                ),
                format!("root {} from the entries", hex::encode(root)),
            ));
        }
        self.checked_checkpoints += 1;
        self.latest_checkpoint = Some(signed.clone());
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
            return Err(fail(
                self.next,
                Failure::Missing,
                format!("entries up to {} (a checkpoint covers them)", size - 1),
                format!("{} entries", self.next),
            ));
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
        let store_err = |e: LedgerError| fail(0, Failure::Store, "a readable store", e.to_string());
        let records = self.records_tree();
        let raw_genesis = records
            .get(store::entry_key(0))
            .map_err(|e| store_err(e.into()))?
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
            let frontier = Frontier::load(&SledNodes(records), start).map_err(store_err)?;
            verifier.skip_to(&before, frontier);
        }
        let notes: Vec<(u64, String)> = records
            .scan_prefix(b"c")
            .map(|item| {
                let (k, v) = item.map_err(|e| store_err(e.into()))?;
                let size = u64::from_be_bytes(k[1..].try_into().map_err(|_| {
                    fail(
                        0,
                        Failure::BadCheckpoint,
                        "an 8-byte size key",
                        hex::encode(&k),
                    )
                })?);
                let note = String::from_utf8(v.to_vec()).map_err(|_| {
                    fail(
                        size.saturating_sub(1),
                        Failure::BadCheckpoint,
                        "a UTF-8 note",
                        "other bytes",
                    )
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

        let mut chunk = Vec::with_capacity(CHUNK);
        // Entries staged but not yet durable are not the record yet; verification stops at the
        // durable head and, below, refuses entries stored beyond everything staged.
        let upper = end;
        let feed = |chunk: &mut Vec<(u64, Vec<u8>)>, verifier: &mut ChainVerifier| {
            // The stored nodes this chunk completes, read in one pass over the node blocks
            // instead of one lookup per node.
            let (first, last) = (chunk[0].0, chunk[chunk.len() - 1].0);
            let nodes = stored_nodes(records, first, last).map_err(store_err)?;
            let lookup = |level: u8, index: u64| -> Result<Option<[u8; 32]>, String> {
                Ok(nodes.get(&(level, index)).copied())
            };
            verifier.feed(chunk, Some(&lookup))?;
            progress(verifier.next - verifier.from);
            chunk.clear();
            Ok::<(), VerifyError>(())
        };
        for item in records.range(store::entry_key(start)..store::entry_key(upper)) {
            let (k, v) = item.map_err(|e| store_err(e.into()))?;
            let key_seq = u64::from_be_bytes(k[1..].try_into().map_err(|_| {
                fail(
                    0,
                    Failure::Undecodable,
                    "an 8-byte seq key",
                    hex::encode(&k),
                )
            })?);
            chunk.push((key_seq, v.to_vec()));
            if chunk.len() == CHUNK {
                feed(&mut chunk, &mut verifier)?;
            }
        }
        if !chunk.is_empty() {
            feed(&mut chunk, &mut verifier)?;
        }
        if range.end >= head {
            let staged = self.staged_size();
            if let Some(item) = records
                .range(store::entry_key(staged)..store::entry_key(u64::MAX))
                .next()
            {
                let (k, _) = item.map_err(|e| store_err(e.into()))?;
                let seq = u64::from_be_bytes(k[1..].try_into().unwrap_or([0xff; 8]));
                return Err(fail(
                    seq,
                    Failure::ExtraEntry,
                    format!("no entry after the head ({head} entries)"),
                    format!("an entry at seq {seq}"),
                ));
            }
        }
        let expected = (range.end >= head).then_some(head);
        verifier.finish(expected)
    }
}

/// The stored Merkle nodes completed by the leaves `first..=last`, from the node blocks that
/// cover them.
fn stored_nodes(
    records: &sled::Tree,
    first: u64,
    last: u64,
) -> Result<HashMap<(u8, u64), [u8; 32]>, LedgerError> {
    let mut nodes = HashMap::new();
    for item in records.range(store::node_block_key(first)..=store::node_block_key(u64::MAX)) {
        let (key, block) = item?;
        for (level, index, hash) in store::decode_node_block(&block) {
            let seq = store::completing_seq(level, index);
            if (first..=last).contains(&seq) {
                nodes.insert((level, index), hash);
            }
        }
        if u64::from_be_bytes(key[1..].try_into().unwrap_or([0xff; 8])) >= last {
            break;
        }
    }
    Ok(nodes)
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
