//! A verifying replica: entries that another server of the same ledger already holds, checked
//! and written verbatim into a ledger opened without its signing key (`isms mirror`).
//!
//! Every batch is checked before anything is written — each entry's seq, chain link, recorded
//! time, key validity at its seq and signature, the key history it changes, and the
//! checkpoint that ends the batch: signed by the ledger key in charge at its size, naming the
//! root recomputed from this replica's own entries and the new ones, with the last entry's
//! recorded time. Since the root covers this replica's whole history, a checkpoint from a
//! server whose past differs (a fork, a rewritten entry) can never match; the error names the
//! seq. The batch is then one atomic batch, flushed, and only then visible to readers.
//!
//! Checking and storing are two steps ([`Ledger::check_replica`], [`Ledger::store_replica`]) so
//! that a [`Replicator`] can check the next batch on all cores while the previous one is being
//! written: sled's batch insert runs on one core and takes about as long as the checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use ed25519_dalek::VerifyingKey;
use prost::Message as _;
use rayon::prelude::*;

use super::{
    checkpoint_key, cosignatures_key, encode_head, encode_node_block, entry_blocks,
    event_index_key, handover_key_record, node_block_key, prefixed, rotation_key, sig_item, Head,
    Ledger, ERASED, HEAD, KEY, LAYOUT, LAYOUT_VERSION,
};
use crate::checkpoint::{key_hash, SignedCheckpoint};
use crate::cosignature::signature_lines;
use crate::engine::WriteBatch;
use crate::entry::{self, Entry, SignedEvent};
use crate::envelope::{EnvelopeView, RecordAction};
use crate::event_index;
use crate::keys::KeyRecord;
use crate::merkle::{Blake3Hasher, Frontier};
use crate::{rules, sig, ArtifactHash, KeyId, LedgerError, Seq};

fn refuse(seq: u64, what: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt {
        seq,
        what: what.into(),
    }
}

/// An entry decoded ahead of the sequential checks.
struct Decoded {
    entry: Entry,
    action: RecordAction,
    hash: crate::EntryHash,
    id_hash: u64,
}

/// Where a replica's checks stand: the state after the last checked batch, which may not be
/// stored yet. The next batch is checked against it.
#[derive(Clone, Debug)]
pub struct ReplicaTip {
    /// The head after the last checked batch.
    pub head: Head,
    frontier: Frontier,
    checkpoint_key: VerifyingKey,
    /// Keys enrolled, revoked or handed over by checked batches (they take precedence over
    /// the store's, which may not have them yet).
    keys: HashMap<KeyId, KeyRecord>,
}

/// A batch that passed every check, ready to be written by [`Ledger::store_replica`].
pub struct CheckedBatch {
    /// The head the batch extends.
    base: Head,
    batch: WriteBatch,
    erased: Vec<ArtifactHash>,
    id_hashes: Vec<u64>,
    node_block: Vec<u8>,
    new_keys: HashMap<KeyId, KeyRecord>,
    /// The state after the batch.
    tip: ReplicaTip,
}

impl std::fmt::Debug for CheckedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedBatch")
            .field("from", &self.base.size)
            .field("to", &self.tip.head.size)
            .finish_non_exhaustive()
    }
}

impl CheckedBatch {
    /// The state after this batch.
    pub fn tip(&self) -> &ReplicaTip {
        &self.tip
    }
}

impl Ledger {
    /// Checks `raw` (the encoded entries that follow this ledger's head, in order) and
    /// `note` (the checkpoint that ends them, with any cosignature lines) and writes them
    /// durably. Only for a ledger opened without its signing key. Nothing is written when
    /// anything fails; the error names the first seq at fault (for the checkpoint, its last
    /// entry).
    pub fn replicate(&self, raw: &[Vec<u8>], note: &str) -> Result<Head, LedgerError> {
        let checked = self.check_replica(&self.replica_tip(), raw, note)?;
        self.store_replica(checked)
    }

    /// The state the next replicated batch is checked against: this ledger's head.
    pub fn replica_tip(&self) -> ReplicaTip {
        let writer = self.writer.lock().expect("writer lock");
        ReplicaTip {
            head: *self.staged_head.read().expect("head lock"),
            frontier: writer.frontier.clone(),
            checkpoint_key: self.checkpoint_key(),
            keys: HashMap::new(),
        }
    }

    /// Checks `raw` and `note` as [`Ledger::replicate`] does, against `tip` (this ledger's
    /// head, or the tip of a batch checked before and not stored yet), and writes nothing.
    pub fn check_replica(
        &self,
        tip: &ReplicaTip,
        raw: &[Vec<u8>],
        note: &str,
    ) -> Result<CheckedBatch, LedgerError> {
        if self.signing_key.is_some() {
            return Err(refuse(
                self.head().size,
                "a ledger opened with its signing key writes its own entries; it replicates none",
            ));
        }
        let head = tip.head;
        let mut frontier = tip.frontier.clone();
        let mut batch = WriteBatch::default();
        let mut new_keys: HashMap<KeyId, KeyRecord> = HashMap::new();
        let mut id_hashes = Vec::with_capacity(raw.len());
        let mut new_nodes = Vec::new();
        let mut to_check: Vec<([u8; 32], SignedEvent, u64)> = Vec::with_capacity(raw.len());
        let mut current_key = tip.checkpoint_key;
        let mut next_key: Option<(u64, VerifyingKey)> = None;
        let mut erased = Vec::new();
        let (mut next, mut prev_hash, mut last_recorded_at) =
            (head.size, head.last_hash, head.last_recorded_at);
        // Decoding and hashing need no state: done on all cores first.
        let start = head.size;
        let decoded: Vec<Result<Decoded, LedgerError>> = raw
            .par_iter()
            .enumerate()
            .map(|(i, bytes)| {
                let seq = start + i as u64;
                let entry = Entry::decode(bytes).map_err(|e| refuse(seq, e.to_string()))?;
                let view = EnvelopeView::decode(entry.body.as_slice())
                    .map_err(|err| refuse(seq, format!("its body does not decode: {err}")))?;
                let action =
                    rules::record_action(&view).map_err(|err| refuse(seq, err.to_string()))?;
                Ok(Decoded {
                    hash: entry::hash_encoded(bytes),
                    id_hash: event_index::id_hash(&view.event_id),
                    entry,
                    action,
                })
            })
            .collect();
        let walked: Result<(), LedgerError> = (|| {
            let keys = self.keys.read().expect("keys lock");
            for decoded in decoded {
                let seq = next;
                let Decoded {
                    entry: e,
                    action,
                    hash,
                    id_hash,
                } = decoded?;
                if e.seq.0 != seq {
                    return Err(refuse(seq, format!("the entry says seq {}", e.seq)));
                }
                if e.prev_hash != prev_hash {
                    return Err(refuse(
                        seq,
                        "its prev hash is not this replica's previous entry: the history differs",
                    ));
                }
                if e.recorded_at < last_recorded_at {
                    return Err(refuse(seq, "its recorded time goes back"));
                }
                // Only what is needed of the signer: no per-entry copy of its record.
                let (signer_key, signer_is_admin) = new_keys
                    .get(&e.key_id)
                    .or_else(|| tip.keys.get(&e.key_id))
                    .or_else(|| keys.get(&e.key_id))
                    .filter(|k| k.valid_at(Seq(seq)))
                    .map(|k| (k.public_key, k.has_role(crate::keys::ADMIN_ROLE)))
                    .ok_or_else(|| {
                        refuse(seq, format!("key {} is not valid here", e.key_id.short()))
                    })?;
                match &action {
                    RecordAction::KeyEnrolled(grant) => {
                        let record = grant.record(Seq(seq));
                        batch.insert(prefixed(KEY, &record.key_id.0), record.encode());
                        new_keys.insert(record.key_id, record);
                    }
                    RecordAction::KeyRevoked(key_id) => {
                        let mut record = new_keys
                            .get(key_id)
                            .or_else(|| tip.keys.get(key_id))
                            .or_else(|| keys.get(key_id))
                            .cloned()
                            .ok_or_else(|| refuse(seq, "it revokes a key never enrolled"))?;
                        record.revoked_at = Some(Seq(seq));
                        batch.insert(prefixed(KEY, &key_id.0), record.encode());
                        new_keys.insert(*key_id, record);
                    }
                    RecordAction::ArtifactErased(hash) => {
                        batch.insert(prefixed(ERASED, &hash.0), seq.to_be_bytes());
                        erased.push(*hash);
                    }
                    RecordAction::LedgerKeyRotated(handover) => {
                        handover
                            .check(&self.genesis.ledger_id, current_key.as_bytes())
                            .map_err(|why| refuse(seq, why))?;
                        let record = handover_key_record(&self.genesis, handover, Seq(seq));
                        batch.insert(prefixed(KEY, &record.key_id.0), record.encode());
                        batch.insert(rotation_key(seq), handover.new_public_key);
                        batch.insert(LAYOUT, LAYOUT_VERSION.to_be_bytes());
                        new_keys.insert(record.key_id, record);
                        let key = VerifyingKey::from_bytes(&handover.new_public_key)
                            .map_err(|_| refuse(seq, "the new ledger key is not a valid key"))?;
                        next_key = Some((seq + 1, key));
                    }
                    RecordAction::Genesis(_) => return Err(refuse(seq, "a second genesis")),
                    RecordAction::None => {}
                }
                if !matches!(action, RecordAction::None) && !signer_is_admin {
                    return Err(refuse(seq, "a record action not signed by an admin key"));
                }
                let recorded_at = e.recorded_at;
                to_check.push((
                    signer_key,
                    SignedEvent {
                        key_id: e.key_id,
                        signature: e.signature,
                        body: e.body,
                    },
                    seq,
                ));
                id_hashes.push(id_hash);
                new_nodes.extend(frontier.push::<Blake3Hasher>(&hash.0));
                if let Some((_, key)) = next_key.filter(|(from, _)| *from <= seq) {
                    current_key = key;
                    next_key = None;
                }
                prev_hash = hash;
                last_recorded_at = recorded_at;
                next += 1;
            }
            Ok(())
        })();
        // Signatures, in one batch; the first bad one is named, before any later failure (a
        // changed entry also breaks the next one's chain link).
        let bad = to_check
            .par_chunks(2048)
            .filter_map(|part| {
                let items: Vec<sig::Item<'_>> =
                    part.iter().map(|(k, e, _)| sig_item(k, e)).collect();
                if sig::verify_batch(&items) {
                    return None;
                }
                part.iter()
                    .zip(&items)
                    .find(|(_, item)| !sig::verify_one(item))
                    .map(|((_, _, seq), _)| *seq)
            })
            .min();
        if let Some(bad) = bad {
            return Err(refuse(bad, "its signature does not verify"));
        }
        walked?;
        // The checkpoint that ends the batch: a hand-over in it signs off with the old key up
        // to its own entry, so the key in charge at `next` is the last one that took effect.
        let last = next.saturating_sub(1);
        let key_here = match next_key {
            Some((from, key)) if next > from => key,
            _ => current_key,
        };
        let signed = SignedCheckpoint::verify(note, &key_here)
            .map_err(|e| refuse(last, format!("checkpoint of size {next}: {e}")))?;
        let c = &signed.checkpoint;
        let root = frontier.root::<Blake3Hasher>();
        if c.origin != self.genesis.origin || c.size != next {
            return Err(refuse(
                last,
                format!(
                    "the checkpoint of size {} does not end this batch of size {next}",
                    c.size
                ),
            ));
        }
        if c.root != root {
            return Err(refuse(
                last,
                format!(
                    "the checkpoint of size {next} names root {}, but this replica's entries give \
                     {}: the server's history is not this replica's (a fork or a rewritten entry)",
                    hex::encode(c.root),
                    hex::encode(root)
                ),
            ));
        }
        if c.time != last_recorded_at {
            return Err(refuse(
                last,
                "the checkpoint's time is not its last entry's recorded time",
            ));
        }
        let own_hash = key_hash(&self.genesis.origin, &key_here);
        let lines = signature_lines(note).map_err(|e| refuse(last, e.to_string()))?;
        let mut stored = c.body_text();
        stored.push('\n');
        let mut cosignatures = String::new();
        for line in lines {
            if line.name == self.genesis.origin && line.key_hash == own_hash {
                stored.push_str(&line.to_line());
            } else {
                cosignatures.push_str(&line.to_line());
            }
        }
        let mut keys = tip.keys.clone();
        keys.extend(new_keys.iter().map(|(id, record)| (*id, record.clone())));
        let new_head = Head {
            size: next,
            last_hash: prev_hash,
            last_recorded_at,
            root,
        };
        let node_block = encode_node_block(&new_nodes);
        if next > head.size {
            entry_blocks::put(&mut batch, head.size, raw);
            batch.insert(checkpoint_key(next), stored.as_bytes());
            if !cosignatures.is_empty() {
                batch.insert(cosignatures_key(next), cosignatures.as_bytes());
            }
            batch.insert(node_block_key(next - 1), node_block.clone());
            batch.insert(
                event_index_key(head.size),
                event_index::encode_block(&id_hashes),
            );
            batch.insert(HEAD, encode_head(&new_head));
        }
        Ok(CheckedBatch {
            base: head,
            batch,
            erased,
            id_hashes,
            node_block,
            new_keys,
            tip: ReplicaTip {
                head: new_head,
                frontier,
                checkpoint_key: key_here,
                keys,
            },
        })
    }

    /// Writes a batch [`Ledger::check_replica`] passed, as one atomic batch, flushes it,
    /// and only then shows it to readers. Refused when the ledger's head is no longer the one
    /// the batch was checked against (another batch was stored in between).
    pub fn store_replica(&self, checked: CheckedBatch) -> Result<Head, LedgerError> {
        let mut writer = self.writer.lock().expect("writer lock");
        let head = *self.staged_head.read().expect("head lock");
        if head != checked.base {
            return Err(refuse(
                head.size,
                format!(
                    "the batch was checked against a head of size {}, but this replica's head \
                     has size {}",
                    checked.base.size, head.size
                ),
            ));
        }
        let new_head = checked.tip.head;
        if new_head.size == head.size {
            return Ok(head);
        }
        let mut batch = checked.batch;
        batch.expect(HEAD, Some(encode_head(&head)));
        self.records.apply(batch)?;
        self.engine.flush()?;
        for hash in checked.erased {
            self.artifacts.remove(&hash.0)?;
        }
        writer.frontier = checked.tip.frontier;
        self.events
            .write()
            .expect("index lock")
            .extend(&checked.id_hashes);
        self.nodes
            .add_block(head.size, new_head.size - 1, checked.node_block);
        self.keys
            .write()
            .expect("keys lock")
            .extend(checked.new_keys);
        *self.checkpoint_key.write().expect("key lock") = checked.tip.checkpoint_key;
        *self.staged_head.write().expect("head lock") = new_head;
        *self.head.write().expect("head lock") = new_head;
        Ok(new_head)
    }
}

/// Replication in a pipeline: each batch is checked (on all cores) while the one before it is
/// written and flushed on a thread of its own. A batch becomes visible to readers only once
/// stored; [`Replicator::finish`] waits for the last one.
pub struct Replicator {
    ledger: Arc<Ledger>,
    tip: ReplicaTip,
    storing: Option<JoinHandle<Result<Head, LedgerError>>>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("tip", &self.tip.head.size)
            .field("storing", &self.storing.is_some())
            .finish_non_exhaustive()
    }
}

impl Replicator {
    /// A pipeline from the ledger's current head.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        let tip = ledger.replica_tip();
        Replicator {
            ledger,
            tip,
            storing: None,
        }
    }

    /// The state after the last batch taken (checked; maybe still being stored).
    pub fn tip(&self) -> &ReplicaTip {
        &self.tip
    }

    /// Checks the next batch against the tip; once it passes and the batch before it is
    /// stored, starts storing it. Errors are the check's (naming the seq), or the previous
    /// batch's store error; either way nothing more is stored after the error.
    pub fn push(&mut self, raw: &[Vec<u8>], note: &str) -> Result<(), LedgerError> {
        let checked = self.ledger.check_replica(&self.tip, raw, note);
        self.wait()?;
        let checked = checked?;
        self.tip = checked.tip.clone();
        let ledger = self.ledger.clone();
        self.storing = Some(std::thread::spawn(move || ledger.store_replica(checked)));
        Ok(())
    }

    /// Waits until every batch taken is stored; returns the ledger's head.
    pub fn finish(&mut self) -> Result<Head, LedgerError> {
        self.wait()?;
        Ok(self.ledger.head())
    }

    fn wait(&mut self) -> Result<(), LedgerError> {
        if let Some(storing) = self.storing.take() {
            let stored = storing.join().map_err(|_| LedgerError::Corrupt {
                seq: self.ledger.head().size,
                what: "storing a replicated batch panicked".into(),
            });
            if let Err(e) = stored.and_then(|r| r) {
                // What is stored is the ledger's head; check again from there.
                self.tip = self.ledger.replica_tip();
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}
