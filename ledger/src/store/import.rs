//! Rebuilding a store from entries that already exist: `isms restore` (from a backup bundle)
//! and `isms salvage` (from what still verifies in a damaged store).
//!
//! An import writes the entries verbatim — their seq, recorded time, prev hash, key id and
//! signature are the record, so nothing is re-signed — with the same indexes an append writes
//! (Merkle node blocks, event-id index blocks, key index, erasure markers, head) and the
//! checkpoints given, each checked against the root recomputed at its size before it is kept.
//! The caller verifies signatures and ISMS rules first (the bundle verifier or
//! [`crate::ChainVerifier`]); the import itself refuses anything that would not chain.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use prost::Message as _;

use super::{
    checkpoint_key, cosignatures_key, decode_genesis, encode_head, encode_node_block, entry_blocks,
    event_index_key, genesis_keys, handover_key_record, node_block_key, prefixed, rotation_key,
    Head, ERASED, HEAD, KEY, LAYOUT, LAYOUT_VERSION, ROTATION,
};
use crate::checkpoint::{key_hash, Checkpoint, SignedCheckpoint};
use crate::cosignature::signature_lines;
use crate::engine::{Engine, KeyRange, Keyspace, SledEngine, Space, WriteBatch};
use crate::entry::{self, Entry};
use crate::envelope::{EnvelopeView, Genesis, RecordAction};
use crate::event_index;
use crate::keys::KeyRecord;
use crate::merkle::{Blake3Hasher, Frontier, NewNode};
use crate::rules;
use crate::{ArtifactHash, EntryHash, KeyId, LedgerConfig, LedgerError, Seq};

/// Entries per batch while importing.
const IMPORT_BATCH: usize = 4096;

/// A store being rebuilt: push entries in seq order (and checkpoints as the tree reaches their
/// size), then [`Import::finish`]. Until `finish` returns, the folder is not a ledger to use;
/// callers build it under a temporary name and rename it when done.
pub struct Import {
    engine: Arc<dyn Engine>,
    records: Space,
    artifacts: Space,
    genesis: Genesis,
    /// The key that signs a checkpoint of the current size.
    ledger_key: VerifyingKey,
    /// The new key of a hand-over just pushed: it signs checkpoints from the next entry on.
    next_key: Option<VerifyingKey>,
    frontier: Frontier,
    head: Head,
    keys: HashMap<KeyId, KeyRecord>,
    batch: WriteBatch,
    /// First seq of the entries in `batch`.
    batch_first: u64,
    batch_entries: Vec<Vec<u8>>,
    batch_ids: Vec<u64>,
    batch_nodes: Vec<NewNode>,
    checkpoints: u64,
    /// Artifacts erased by an imported entry: their bytes are never stored again.
    erased: HashSet<ArtifactHash>,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import")
            .field("ledger_id", &self.genesis.ledger_id)
            .field("size", &self.head.size)
            .finish_non_exhaustive()
    }
}

fn corrupt(seq: u64, what: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt {
        seq,
        what: what.into(),
    }
}

impl Import {
    /// Starts a sled store in `path` (which must hold none) from the raw genesis entry.
    pub fn begin(
        path: impl AsRef<Path>,
        raw_genesis: &[u8],
        config: &LedgerConfig,
    ) -> Result<Import, LedgerError> {
        let engine = SledEngine::open(path.as_ref(), config.cache_bytes)?;
        Self::begin_in(Arc::new(engine), raw_genesis)
    }

    /// Starts a store in `engine` (which must hold no ledger) from the raw genesis entry.
    pub fn begin_in(engine: Arc<dyn Engine>, raw_genesis: &[u8]) -> Result<Import, LedgerError> {
        let entry = Entry::decode(raw_genesis).map_err(|e| corrupt(0, e.to_string()))?;
        if entry.seq != Seq(0) || entry.prev_hash != EntryHash::ZERO {
            return Err(corrupt(
                0,
                "the first entry is not a genesis (seq 0, zero prev hash)",
            ));
        }
        let genesis = decode_genesis(&entry)?;
        let ledger_key = VerifyingKey::from_bytes(&genesis.ledger_public_key)
            .map_err(|_| corrupt(0, "the genesis's ledger key is not a valid ed25519 key"))?;
        let records = engine.keyspace("records")?;
        let artifacts = engine.keyspace("artifacts")?;
        if entry_blocks::read(records.as_ref(), 0)?.is_some() {
            return Err(LedgerError::AlreadyExists(match engine.folder() {
                Some(folder) => folder.display().to_string(),
                None => format!("the {} store", engine.kind()),
            }));
        }
        let keys: HashMap<KeyId, KeyRecord> = genesis_keys(&genesis)
            .into_iter()
            .map(|k| (k.key_id, k))
            .collect();
        let mut import = Import {
            engine,
            records,
            artifacts,
            genesis,
            ledger_key,
            next_key: None,
            frontier: Frontier::new(),
            head: Head {
                size: 0,
                last_hash: EntryHash::ZERO,
                last_recorded_at: entry.recorded_at,
                root: [0; 32],
            },
            keys: HashMap::new(),
            batch: WriteBatch::default(),
            batch_first: 0,
            batch_entries: Vec::new(),
            batch_ids: Vec::new(),
            batch_nodes: Vec::new(),
            checkpoints: 0,
            erased: HashSet::new(),
        };
        for record in keys.values() {
            import
                .batch
                .insert(prefixed(KEY, &record.key_id.0), record.encode());
        }
        import.keys = keys;
        import.place(entry, raw_genesis, "genesis")?;
        Ok(import)
    }

    /// The genesis of the ledger being rebuilt.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Entries imported so far.
    pub fn size(&self) -> u64 {
        self.head.size
    }

    /// Checkpoints kept so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// Appends the next entry, verbatim. It must chain onto the previous one (seq, prev hash,
    /// recorded time not going back); its key records are applied to the key index.
    pub fn push(&mut self, raw: &[u8]) -> Result<(), LedgerError> {
        let seq = self.head.size;
        if let Some(key) = self.next_key.take() {
            self.ledger_key = key;
        }
        let entry = Entry::decode(raw).map_err(|e| corrupt(seq, e.to_string()))?;
        if entry.seq.0 != seq {
            return Err(corrupt(seq, format!("the entry says seq {}", entry.seq)));
        }
        if entry.prev_hash != self.head.last_hash {
            return Err(corrupt(
                seq,
                "its prev hash is not the previous entry's hash",
            ));
        }
        if entry.recorded_at < self.head.last_recorded_at {
            return Err(corrupt(
                seq,
                "its recorded time is before the previous entry's",
            ));
        }
        let view = EnvelopeView::decode(entry.body.as_slice())
            .map_err(|e| corrupt(seq, format!("its body does not decode: {e}")))?;
        let action = rules::record_action(&view).map_err(|e| corrupt(seq, e.to_string()))?;
        match action {
            RecordAction::KeyEnrolled(grant) => {
                let record = grant.record(Seq(seq));
                self.batch
                    .insert(prefixed(KEY, &record.key_id.0), record.encode());
                self.keys.insert(record.key_id, record);
            }
            RecordAction::KeyRevoked(key_id) => {
                let record = self
                    .keys
                    .get_mut(&key_id)
                    .ok_or_else(|| corrupt(seq, "it revokes a key that is not enrolled"))?;
                record.revoked_at = Some(Seq(seq));
                self.batch.insert(prefixed(KEY, &key_id.0), record.encode());
            }
            RecordAction::ArtifactErased(hash) => {
                self.batch
                    .insert(prefixed(ERASED, &hash.0), seq.to_be_bytes());
                self.artifacts.remove(&hash.0)?;
                self.erased.insert(hash);
            }
            RecordAction::LedgerKeyRotated(handover) => {
                handover
                    .check(&self.genesis.ledger_id, self.ledger_key.as_bytes())
                    .map_err(|e| corrupt(seq, e))?;
                let record = handover_key_record(&self.genesis, &handover, Seq(seq));
                self.batch
                    .insert(prefixed(KEY, &record.key_id.0), record.encode());
                self.batch
                    .insert(rotation_key(seq), handover.new_public_key);
                self.keys.insert(record.key_id, record);
                self.next_key = Some(
                    VerifyingKey::from_bytes(&handover.new_public_key)
                        .map_err(|_| corrupt(seq, "the new ledger key is not a valid key"))?,
                );
            }
            RecordAction::Genesis(_) => return Err(corrupt(seq, "a second genesis")),
            RecordAction::None => {}
        }
        self.place(entry, raw, &view.event_id)?;
        if self.batch_ids.len() >= IMPORT_BATCH {
            self.write_batch()?;
        }
        Ok(())
    }

    fn place(&mut self, entry: Entry, raw: &[u8], event_id: &str) -> Result<(), LedgerError> {
        let seq = entry.seq.0;
        let hash = entry::hash_encoded(raw);
        self.batch_entries.push(raw.to_vec());
        self.batch_ids.push(event_index::id_hash(event_id));
        self.batch_nodes
            .extend(self.frontier.push::<Blake3Hasher>(&hash.0));
        self.head = Head {
            size: seq + 1,
            last_hash: hash,
            last_recorded_at: entry.recorded_at,
            root: self.frontier.root::<Blake3Hasher>(),
        };
        Ok(())
    }

    /// Writes the entries pushed since the last batch with their node block, event-id block
    /// and head.
    fn write_batch(&mut self) -> Result<(), LedgerError> {
        let mut batch = std::mem::take(&mut self.batch);
        entry_blocks::put(&mut batch, self.batch_first, &self.batch_entries);
        if !self.batch_ids.is_empty() {
            batch.insert(
                node_block_key(self.head.size - 1),
                encode_node_block(&self.batch_nodes),
            );
            batch.insert(
                event_index_key(self.batch_first),
                event_index::encode_block(&self.batch_ids),
            );
        }
        batch.insert(HEAD, encode_head(&self.head));
        self.records.apply(batch)?;
        self.batch_first = self.head.size;
        self.batch_entries.clear();
        self.batch_ids.clear();
        self.batch_nodes.clear();
        Ok(())
    }

    /// Keeps a checkpoint of the entries pushed so far: `note` must be signed by the ledger key
    /// for exactly the current size and root. Signature lines other than the ledger's are kept
    /// as the checkpoint's cosignatures (see `Ledger::add_cosignatures`); whoever trusts a
    /// witness checks its line.
    pub fn checkpoint(&mut self, note: &str) -> Result<(), LedgerError> {
        let size = self.head.size;
        let signed = SignedCheckpoint::verify(note, &self.ledger_key)
            .map_err(|e| corrupt(size.saturating_sub(1), format!("checkpoint: {e}")))?;
        let c = &signed.checkpoint;
        if c.size != size || c.root != self.head.root || c.origin != self.genesis.origin {
            return Err(corrupt(
                size.saturating_sub(1),
                format!(
                    "the checkpoint of size {} does not match the {size} entries imported (its \
                     root or origin differs)",
                    c.size
                ),
            ));
        }
        let own_hash = key_hash(&self.genesis.origin, &self.ledger_key);
        let lines = signature_lines(note)
            .map_err(|e| corrupt(size.saturating_sub(1), format!("checkpoint: {e}")))?;
        let (own, others): (Vec<_>, Vec<_>) = lines
            .into_iter()
            .partition(|l| l.name == self.genesis.origin && l.key_hash == own_hash);
        let mut stored = c.body_text();
        stored.push('\n');
        for line in &own {
            stored.push_str(&line.to_line());
        }
        self.batch.insert(checkpoint_key(size), stored.as_bytes());
        if !others.is_empty() {
            let cosignatures: String = others.iter().map(|l| l.to_line()).collect();
            self.batch
                .insert(cosignatures_key(size), cosignatures.as_bytes());
        }
        self.checkpoints += 1;
        self.write_batch()
    }

    /// Signs and keeps a new checkpoint of the entries pushed so far, at the last entry's
    /// recorded time, with the ledger key (for a salvaged ledger whose last stored checkpoint
    /// lies beyond what could be saved).
    pub fn sign_checkpoint(&mut self, ledger_key: &SigningKey) -> Result<(), LedgerError> {
        if ledger_key.verifying_key() != self.ledger_key {
            return Err(LedgerError::WrongLedgerKey {
                expected: KeyId::of_public_key(self.ledger_key.as_bytes()),
            });
        }
        let signed = Checkpoint {
            origin: self.genesis.origin.clone(),
            size: self.head.size,
            root: self.head.root,
            time: self.head.last_recorded_at,
        }
        .sign(ledger_key);
        self.checkpoint(&signed.note)
    }

    /// Stores an artifact's bytes (checked against their hash); the bytes of an artifact an
    /// imported entry erased are not kept.
    pub fn put_artifact(&mut self, hash: &[u8; 32], bytes: &[u8]) -> Result<(), LedgerError> {
        if self.erased.contains(&ArtifactHash(*hash)) {
            return Ok(());
        }
        if ArtifactHash::of(bytes).0 != *hash {
            return Err(LedgerError::OutOfRange(format!(
                "artifact {} does not hash to its name",
                hex::encode(hash)
            )));
        }
        self.artifacts.insert(hash, bytes)?;
        Ok(())
    }

    /// Writes what is left, the layout version and the acknowledged head, and flushes. The
    /// last thing pushed must have been a checkpoint: a ledger always ends at one.
    pub fn finish(mut self) -> Result<Head, LedgerError> {
        // `checkpoint` writes its batch at once, so a checkpoint at the head is in the tree.
        if self.records.get(&checkpoint_key(self.head.size))?.is_none() {
            return Err(corrupt(
                self.head.size.saturating_sub(1),
                format!(
                    "no checkpoint of size {} (the last entry) was given; a ledger ends at a \
                     checkpoint",
                    self.head.size
                ),
            ));
        }
        self.batch.insert(LAYOUT, LAYOUT_VERSION.to_be_bytes());
        self.write_batch()?;
        self.engine.flush()?;
        if let Some(folder) = self.engine.folder() {
            let mut acknowledged = self.head.size.to_be_bytes().to_vec();
            acknowledged.extend_from_slice(&self.head.last_hash.0);
            std::fs::write(folder.join(super::ACKNOWLEDGED_FILE), acknowledged)
                .map_err(|e| corrupt(0, format!("writing the acknowledged-head file: {e}")))?;
        }
        Ok(self.head)
    }
}

/// What [`salvage`] saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    /// Entries copied: every entry from 0 up to the first that could not be read or verified.
    pub entries: u64,
    /// The first entry that was not saved and why, or `None` when every stored entry was.
    pub first_lost: Option<(u64, String)>,
    /// Stored checkpoints kept (those within the saved entries whose root matches them).
    pub checkpoints: u64,
    /// Stored checkpoints within the saved entries that were dropped because they did not
    /// match (or did not verify): (size, why), the first one.
    pub dropped_checkpoint: Option<(u64, String)>,
    /// Whether a new checkpoint was signed at the saved size (none was stored there).
    pub signed_checkpoint: bool,
    /// Artifacts copied (their bytes hash to their name).
    pub artifacts: u64,
    /// Artifacts left behind because their bytes no longer hash to their name.
    pub damaged_artifacts: u64,
}

/// Copies every entry of the (damaged) store in `from` that still reads and verifies —
/// decoding, seq, hash chain, signature by a key valid there, recorded time — from the genesis
/// up to the first that does not, into a new store in `to`, with the stored checkpoints that
/// match them (and their cosignatures) and the artifacts whose bytes are intact. When no stored
/// checkpoint ends at the last saved entry, one is signed with `ledger_key`. The source is only
/// read. A store sled refuses to open is [`LedgerError::Damaged`]: nothing can be saved from it
/// here.
pub fn salvage(
    from: &Path,
    to: &Path,
    ledger_key: &SigningKey,
    config: &LedgerConfig,
) -> Result<Salvaged, LedgerError> {
    let engine = SledEngine::open(from, config.cache_bytes).map_err(|e| match e {
        LedgerError::Store(sled::Error::Corruption { .. } | sled::Error::Unsupported(_)) => {
            LedgerError::Damaged {
                path: from.to_path_buf(),
                detail: e.to_string(),
            }
        }
        other => other,
    })?;
    let records = engine.keyspace("records")?;
    let records = records.as_ref();
    let raw_genesis = entry_blocks::read(records, 0)?.ok_or(LedgerError::NoLedger)?;
    let genesis = Entry::decode(&raw_genesis)
        .map_err(|e| corrupt(0, e.to_string()))
        .and_then(|e| decode_genesis(&e))?;
    // The genesis's key or one a hand-over named; which one signs the saved part's last
    // checkpoint is known only once it is saved (`sign_checkpoint` checks it then).
    let given = ledger_key.verifying_key().to_bytes();
    let mut known = vec![genesis.ledger_public_key];
    for (_, key) in records.scan(KeyRange::prefix([ROTATION])).flatten() {
        if let Ok(key) = <[u8; 32]>::try_from(key.as_ref()) {
            known.push(key);
        }
    }
    if !known.contains(&given) {
        return Err(LedgerError::WrongLedgerKey {
            expected: KeyId::of_public_key(known.last().expect("the genesis key")),
        });
    }
    // Pass 1: how far the chain verifies. A chunk's signatures are checked while the next is
    // read, so the first failure found is confirmed by verifying again up to it.
    let mut end = u64::MAX;
    let mut first_lost = None;
    loop {
        match verified_prefix(records, &raw_genesis, end)? {
            (size, None) => {
                end = size;
                break;
            }
            (_, Some((seq, why))) => {
                end = seq;
                first_lost = Some((seq, why));
            }
        }
    }
    // Checkpoints and their cosignatures, by size, within what is saved.
    let mut notes = std::collections::BTreeMap::new();
    for item in records.scan(KeyRange::inclusive(checkpoint_key(1), checkpoint_key(end))) {
        let Ok((key, value)) = item else { break };
        let size = u64::from_be_bytes(key[1..9].try_into().expect("9-byte key"));
        let mut note = String::from_utf8_lossy(&value).into_owned();
        if let Ok(Some(lines)) = records.get(&cosignatures_key(size)) {
            if let Ok(with) =
                crate::cosignature::add_cosignatures(&note, &String::from_utf8_lossy(&lines))
            {
                note = with;
            }
        }
        notes.insert(size, note);
    }
    let mut import = Import::begin(to, &raw_genesis, config)?;
    let mut dropped_checkpoint = None;
    let mut keep_checkpoint = |import: &mut Import| -> Result<(), LedgerError> {
        if let Some(note) = notes.get(&import.size()) {
            if let Err(e) = import.checkpoint(note) {
                dropped_checkpoint.get_or_insert((import.size(), e.to_string()));
            }
        }
        Ok(())
    };
    keep_checkpoint(&mut import)?;
    let mut cursor = entry_blocks::Cursor::default();
    for seq in 1..end {
        let raw = cursor
            .read(records, seq)?
            .ok_or_else(|| corrupt(seq, "the entry vanished while salvaging"))?;
        import.push(&raw)?;
        keep_checkpoint(&mut import)?;
    }
    let signed_checkpoint = if records_has_checkpoint(&import)? {
        false
    } else {
        import.sign_checkpoint(ledger_key)?;
        true
    };
    let checkpoints = import.checkpoints() - u64::from(signed_checkpoint);
    let (mut artifacts, mut damaged_artifacts) = (0, 0);
    for item in engine.keyspace("artifacts")?.scan(KeyRange::all()) {
        let Ok((key, bytes)) = item else {
            damaged_artifacts += 1;
            continue;
        };
        match <[u8; 32]>::try_from(key.as_ref()) {
            Ok(hash) if ArtifactHash::of(&bytes).0 == hash => {
                import.put_artifact(&hash, &bytes)?;
                artifacts += 1;
            }
            _ => damaged_artifacts += 1,
        }
    }
    import.finish()?;
    Ok(Salvaged {
        entries: end,
        first_lost,
        checkpoints,
        dropped_checkpoint,
        signed_checkpoint,
        artifacts,
        damaged_artifacts,
    })
}

fn records_has_checkpoint(import: &Import) -> Result<bool, LedgerError> {
    Ok(import
        .records
        .get(&checkpoint_key(import.size()))?
        .is_some())
}

/// Verifies the stored entries from the genesis up to `end` (or the first missing one):
/// `(entries that verified, the first failure)`.
#[allow(clippy::type_complexity)]
fn verified_prefix(
    records: &dyn Keyspace,
    raw_genesis: &[u8],
    end: u64,
) -> Result<(u64, Option<(u64, String)>), LedgerError> {
    // Without a readable genesis nothing can be verified, so nothing is saved.
    let mut verifier =
        crate::ChainVerifier::from_genesis(raw_genesis).map_err(|e| corrupt(0, e.to_string()))?;
    let mut seq = 1;
    let mut chunk = Vec::with_capacity(IMPORT_BATCH);
    let mut stopped = None;
    let mut cursor = entry_blocks::Cursor::default();
    while seq < end {
        match cursor.read(records, seq) {
            Ok(Some(raw)) => chunk.push((seq, raw)),
            Ok(None) => {
                // The end of the store, or a hole before later entries.
                let later = entry_blocks::first_at_or_after(records, seq)
                    .ok()
                    .flatten()
                    .is_some();
                if later {
                    stopped = Some((seq, "the entry is missing from the store".to_string()));
                }
                break;
            }
            Err(e) => {
                stopped = Some((seq, format!("the store cannot read it: {e}")));
                break;
            }
        }
        seq += 1;
        if chunk.len() == IMPORT_BATCH {
            if let Err(e) = verifier.feed(&chunk, None) {
                return Ok((e.seq, Some((e.seq, e.to_string()))));
            }
            chunk.clear();
        }
    }
    if let Err(e) = verifier.feed(&chunk, None) {
        return Ok((e.seq, Some((e.seq, e.to_string()))));
    }
    match verifier.finish(None) {
        Err(e) => Ok((e.seq, Some((e.seq, e.to_string())))),
        Ok(_) => Ok((seq, stopped)),
    }
}
