//! The store and its single writer: appending batches atomically, reading entries,
//! checkpoints and proofs. The bytes live in an [`Engine`] (sled by default, or PostgreSQL);
//! this module never sees which.
//!
//! Layout of the `records` keyspace (one keyspace, so that a whole batch is one atomic
//! write):
//!
//! | key                                  | value                                   |
//! |--------------------------------------|-----------------------------------------|
//! | `b` first seq(u64 BE)                | up to 64 consecutive encoded entries (entry_blocks.rs) |
//! | `e` seq(u64 BE)                      | one encoded entry (entry.rs), in stores before layout 3 |
//! | `j` first seq of a batch(u64 BE)     | that batch's event-id index block (event_index.rs) |
//! | `m` last seq of a batch(u64 BE)      | the Merkle nodes that batch created: (level u8, index u64 BE, hash 32) each |
//! | `c` tree size(u64 BE)                | signed checkpoint note (UTF-8)          |
//! | `k` key id(32)                       | key index record (keys.rs)              |
//! | `x` artifact hash(32)                | seq of the erasure entry (u64 BE)       |
//! | `r` seq(u64 BE)                      | new ledger public key(32) of the hand-over entry at seq |
//! | `w` tree size(u64 BE)                | witness cosignature lines of that checkpoint (UTF-8) |
//! | `h`                                  | head: size(u64 BE) last hash(32) last recorded_at(i64 BE) |
//!
//! Only the entries (`b`, `e`) and `c` are the permanent record; `j`, `m`, `k`, `x`, `r` and `h` are indexes that
//! `verify` recomputes or checks against it. `w` is neither: witnesses' statements about a
//! checkpoint, kept beside its note (never merged into it) and checked by whoever trusts
//! those witnesses. Artifact bytes live in the `artifacts` tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::{SigningKey, VerifyingKey};
use prost::Message;
use rand::RngCore;
use rayon::prelude::*;

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::cosignature::{add_cosignatures, SignatureLine};
use crate::engine::{Engine, KeyRange, Keyspace, SledEngine, Space, WriteBatch};
use crate::entry::{self, Entry, SignedEvent, RECORDED_AT_OFFSET};
use crate::envelope::{EnvelopeView, Genesis, GenesisView, KeyGrant, RecordAction};
use crate::event_index::{self, EventIndex};
use crate::keys::{KeyRecord, ADMIN_ROLE};
use crate::merkle::{self, Blake3Hasher, Frontier, NodeSource};
use crate::receipt::Receipt;
use crate::rules;
use crate::sig;
use crate::{AppendError, ArtifactHash, EntryHash, KeyId, LedgerError, LedgerId, Seq, UnixMicros};

pub mod entry_blocks;
mod import;
mod replica;
pub use import::{salvage, Import, Salvaged};
pub use replica::{CheckedBatch, ReplicaTip, Replicator};

/// Entries of stores written before layout 3, one per record (`e` + seq); entries are now
/// written in blocks ([`entry_blocks`], `b` + first seq).
const ENTRY: u8 = b'e';
/// Event-id index blocks (`j` + first seq of a batch); `i` was the per-entry index of
/// ledgers written before the index moved to blocks, removed when such a ledger is opened.
const EVENT_INDEX: u8 = b'j';
const LEGACY_EVENT_ID: u8 = b'i';
const NODE: u8 = b'm';
const CHECKPOINT: u8 = b'c';
const KEY: u8 = b'k';
const ERASED: u8 = b'x';
/// `r` seq → the new ledger public key (32 bytes) of the hand-over entry at that seq.
const ROTATION: u8 = b'r';
/// Witness cosignature lines of the checkpoint of that size (`w` + size): kept apart from the
/// ledger-signed note under `c`, which is the record and is never rewritten.
const COSIGNATURES: u8 = b'w';
const HEAD: &[u8] = b"h";
/// The layout version record (u32 big-endian); absent in stores written before it existed,
/// which are layout 1.
const LAYOUT: &[u8] = b"v";

/// The on-disk layout this build writes and the newest it reads (docs/FORMAT.md, "The sled
/// store"). A store of a newer layout is refused rather than misread; every older layout
/// stays readable (`ledger/tests/upgrade.rs` opens a kept store of each). Layout 2 added the
/// ledger-key hand-over (`r` records, checkpoints signed by a key other than the genesis's);
/// a layout-1 store is a layout-2 store without hand-overs, and is marked 2 by its first.
/// Layout 3 stores entries in blocks ([`entry_blocks`]); a store of an older layout keeps its
/// single entry records, is continued with blocks, and is marked 3 by its first block.
pub const LAYOUT_VERSION: u32 = 3;
/// Below this many events, `prepare` works on the calling thread instead of the pool.
const SMALL_PREPARE: usize = 16;

/// A source of the current time for `recorded_at`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in unix microseconds.
    fn now(&self) -> UnixMicros;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMicros {
        UnixMicros::now()
    }
}

/// How a ledger behaves; the defaults suit production.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// Largest body accepted, in bytes (default 64 KiB). Artifacts go to the artifact store.
    pub max_body_bytes: usize,
    /// How far `effective_at` may lie ahead of `recorded_at` (default 5 minutes).
    pub max_future_skew_us: i64,
    /// Where `recorded_at` comes from.
    pub clock: Arc<dyn Clock>,
    /// sled's page cache, in bytes (default 32 MiB; sled's own default is 1 GiB). The
    /// server's resident memory grows about twice as fast as this (sled's pages fragment the
    /// heap): 64 MiB cost ~70 MiB more at a million events and made no append faster.
    pub cache_bytes: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            max_body_bytes: 64 * 1024,
            max_future_skew_us: 5 * 60 * 1_000_000,
            clock: Arc::new(SystemClock),
            cache_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The latest committed state of the ledger.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head {
    /// Number of entries (the next seq).
    pub size: u64,
    /// Hash of the last entry.
    pub last_hash: EntryHash,
    /// recorded_at of the last entry.
    pub last_recorded_at: UnixMicros,
    /// Merkle root over all entries.
    pub root: [u8; 32],
}

/// What the ISMS rules (or any other admission policy) see of an event about to be appended.
#[derive(Debug)]
pub struct Candidate<'a> {
    /// The seq it will get.
    pub seq: Seq,
    /// The recorded_at it will get.
    pub recorded_at: UnixMicros,
    /// The key that signed it (valid at `seq`).
    pub key: &'a KeyRecord,
    /// Its event id.
    pub event_id: &'a str,
    /// The verbatim body.
    pub body: &'a [u8],
}

/// Why an admission policy refused an event; kept whole so the edge can map it.
pub type Rejection = Box<dyn std::error::Error + Send + Sync>;

/// A policy the single writer consults for every new event, in seq order, before anything is
/// written. A policy that keeps state applies an admitted event at once (later events of the
/// same batch see it). If the batch then fails to commit, the append returns `Store` errors
/// and the policy must be rebuilt from the ledger.
pub trait Admission {
    /// Admits or refuses one event.
    fn admit(&mut self, candidate: &Candidate<'_>) -> Result<(), Rejection>;

    /// Remembers the current state: an all-or-nothing group is about to be admitted. An
    /// admission that keeps state must implement this and [`Admission::rewind`].
    fn save(&mut self) {}

    /// Returns to the state [`Admission::save`] remembered: the group was refused and none of
    /// the events admitted since was written.
    fn rewind(&mut self) {}
}

/// Admits everything the record rules admit.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmitAll;

impl Admission for AdmitAll {
    fn admit(&mut self, _: &Candidate<'_>) -> Result<(), Rejection> {
        Ok(())
    }
}

/// An accepted event: where it is and which checkpoint first covers it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Appended {
    /// Its seq.
    pub seq: Seq,
    /// Its entry hash.
    pub entry_hash: EntryHash,
    /// Its recorded_at.
    pub recorded_at: UnixMicros,
    /// The entry hash before it (so a receipt needs no read of the entry).
    pub prev_hash: EntryHash,
    /// The key that signed it.
    pub key_id: KeyId,
    /// Its signature.
    pub signature: [u8; 64],
    /// Size of the first checkpoint that covers it.
    pub checkpoint_size: u64,
    /// True when this was a retry of an event already in the ledger (same id, same bytes).
    pub duplicate: bool,
}

/// Whether an artifact's bytes are there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArtifactState {
    /// Stored.
    Present,
    /// Erased by the entry at this seq.
    Erased(Seq),
    /// Never stored here.
    Unknown,
}

/// Events that passed the stateless checks of [`Ledger::prepare`], ready for
/// [`Ledger::commit`].
#[derive(Debug)]
pub struct Prepared {
    events: Vec<SignedEvent>,
    checks: Vec<Result<(EnvelopeView, RecordAction, bool), AppendError>>,
    /// All or nothing: if any event is refused, none is written.
    atomic: bool,
    /// A ledger-key hand-over made by [`Ledger::rotate_ledger_key`]: the only way one is
    /// admitted, because the writer must change keys with it.
    rotation: bool,
}

impl Prepared {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends `other`'s events after these, so that events prepared one by one (for
    /// example per request) can be committed as one batch. An all-or-nothing group is staged
    /// on its own and never extended, nor extends another.
    pub fn extend(&mut self, other: Prepared) {
        assert!(
            !self.atomic && !other.atomic,
            "an all-or-nothing group is staged alone"
        );
        self.events.extend(other.events);
        self.checks.extend(other.checks);
    }

    /// Makes these events one all-or-nothing group: [`Ledger::stage`] checks every event, in
    /// order, each against the state the earlier ones produce, and writes them all in one
    /// atomic write, or, if any is refused, writes none (the others get
    /// [`AppendError::GroupRefused`]) and rewinds the admission to where it was.
    pub fn all_or_nothing(mut self) -> Prepared {
        self.atomic = true;
        self
    }

    /// Whether this is an all-or-nothing group.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }
}

struct Writer {
    frontier: Frontier,
}

/// The outcome of [`Ledger::stage`]: written to sled, not yet durable.
#[derive(Debug)]
pub struct Staged {
    /// One result per event, in order. None of them may be acknowledged before
    /// [`Ledger::make_durable`] covered `durable_size`.
    pub results: Vec<Result<Appended, AppendError>>,
    /// The ledger size that must be durable before these results are acknowledged (0 when
    /// nothing was accepted).
    pub durable_size: u64,
}

/// A ledger in a store (a sled folder or a PostgreSQL database).
pub struct Ledger {
    engine: Arc<dyn Engine>,
    records: Space,
    artifacts: Space,
    config: LedgerConfig,
    genesis: Genesis,
    signing_key: Option<SigningKey>,
    /// The key that signs checkpoints now: the genesis's, or the last hand-over's new key.
    checkpoint_key: RwLock<VerifyingKey>,
    writer: Mutex<Writer>,
    /// The durable head: what readers see and what has been flushed.
    head: RwLock<Head>,
    /// The head after the last staged batch (written to sled, maybe not yet flushed).
    staged_head: RwLock<Head>,
    /// Serialises flushes so that one flush answers every waiter it covers.
    flush_lock: Mutex<()>,
    /// Set when a flush failed: what is durable is then unknown, so the ledger takes no more
    /// appends until it is reopened.
    poisoned: Mutex<Option<String>>,
    /// Recent and high-level Merkle nodes, for proofs and receipts.
    nodes: NodeCache,
    /// Artifact erasures staged but not yet durable: (ledger size that makes them durable,
    /// artifact).
    pending_erasures: Mutex<Vec<(u64, ArtifactHash)>>,
    keys: RwLock<HashMap<KeyId, KeyRecord>>,
    /// Event id → seq, for every staged entry.
    events: RwLock<EventIndex>,
    /// The acknowledged-head file beside sled's own (see [`ACKNOWLEDGED_FILE`]), for an
    /// engine with a local folder.
    acknowledged: Option<std::path::PathBuf>,
    /// Serialises read-modify-writes of kept cosignatures.
    cosignatures_lock: Mutex<()>,
    /// Set when a batch's commit was neither confirmed nor refused (a database connection
    /// lost in the middle): the next batch first reads the store's head again.
    uncertain: AtomicBool,
}

/// A file in the store's folder, beside sled's, holding the last durable head (size u64
/// big-endian, then the last entry's hash): 40 bytes, rewritten (by rename) after every
/// flush. sled recovers from a damaged log record by dropping it and everything after it, as
/// it would a torn write, so one flipped bit could silently take back acknowledged entries;
/// `open` compares the store's head with this file and refuses a store that ends before what
/// was acknowledged, naming the first missing seq. It is written after sled's flush returned, without
/// its own fsync: after a power loss it may be older than the store, never newer.
pub const ACKNOWLEDGED_FILE: &str = "acknowledged";

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("ledger_id", &self.genesis.ledger_id)
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

/// Bytes of one node record in a node block: level (1), index (8, BE), hash (32).
const NODE_RECORD: usize = 41;

/// The seq of the leaf whose append completes node (level, index): its last leaf.
pub(crate) fn completing_seq(level: u8, index: u64) -> u64 {
    ((index + 1) << level) - 1
}

/// Encodes the Merkle nodes one batch created, in push order (by completing seq, then level),
/// as one value: sled pays per insert, so a batch stores its nodes with one insert rather than
/// about two per entry.
pub(crate) fn encode_node_block(nodes: &[merkle::NewNode]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * NODE_RECORD);
    for node in nodes {
        out.push(node.level);
        out.extend_from_slice(&node.index.to_be_bytes());
        out.extend_from_slice(&node.hash);
    }
    out
}

/// Every node of one block, as (level, index, hash).
pub(crate) fn decode_node_block(block: &[u8]) -> impl Iterator<Item = (u8, u64, [u8; 32])> + '_ {
    block.chunks_exact(NODE_RECORD).map(|r| {
        (
            r[0],
            u64::from_be_bytes(r[1..9].try_into().expect("8 bytes")),
            r[9..41].try_into().expect("32 bytes"),
        )
    })
}

/// Finds node (level, index) in a block by binary search on (completing seq, level).
fn find_in_block(block: &[u8], level: u8, index: u64) -> Option<[u8; 32]> {
    let want = (completing_seq(level, index), level);
    let count = block.len() / NODE_RECORD;
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let r = &block[mid * NODE_RECORD..(mid + 1) * NODE_RECORD];
        let (l, i) = (
            r[0],
            u64::from_be_bytes(r[1..9].try_into().expect("8 bytes")),
        );
        match (completing_seq(l, i), l).cmp(&want) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return r[9..41].try_into().ok(),
        }
    }
    None
}

/// How many bytes of the latest node blocks stay in memory for proofs and receipts (a block
/// of 1,000 entries is about 80 KiB; large batches make larger blocks, so the bound is in
/// bytes, not blocks).
const RECENT_BLOCK_BYTES: usize = 8 * 1024 * 1024;
/// Nodes at this level and above are few (one per 4,096 entries) and sit in almost every
/// proof, so they are kept in memory once read.
const HIGH_LEVEL: u8 = 12;

/// Node blocks by the last seq they cover: (first seq they cover, the block).
type RecentBlocks = std::collections::BTreeMap<u64, (u64, Arc<Vec<u8>>)>;

/// Merkle nodes kept in memory so that receipts and proofs rarely read sled: the latest node
/// blocks (which hold every low-level sibling of a recent entry) and every high-level node
/// read so far. Only a cache: sled holds them all.
#[derive(Default)]
pub(crate) struct NodeCache {
    /// last seq of a block → (first seq it covers, the block), with their total size.
    recent: RwLock<(RecentBlocks, usize)>,
    high: RwLock<HashMap<(u8, u64), merkle::Hash>>,
}

impl NodeCache {
    fn get(&self, level: u8, index: u64) -> Option<merkle::Hash> {
        if level >= HIGH_LEVEL {
            if let Some(h) = self.high.read().expect("cache lock").get(&(level, index)) {
                return Some(*h);
            }
        }
        let seq = completing_seq(level, index);
        let recent = self.recent.read().expect("cache lock");
        let (_, (first, block)) = recent.0.range(seq..).next()?;
        if *first > seq {
            return None;
        }
        find_in_block(block, level, index)
    }

    fn remember_high(&self, level: u8, index: u64, hash: merkle::Hash) {
        if level >= HIGH_LEVEL {
            self.high
                .write()
                .expect("cache lock")
                .insert((level, index), hash);
        }
    }

    fn add_block(&self, first: u64, last: u64, block: Vec<u8>) {
        for (level, index, hash) in decode_node_block(&block) {
            self.remember_high(level, index, hash);
        }
        let mut recent = self.recent.write().expect("cache lock");
        let (blocks, bytes) = &mut *recent;
        *bytes += block.len();
        blocks.insert(last, (first, Arc::new(block)));
        // Keep at least the newest block, however large.
        while *bytes > RECENT_BLOCK_BYTES && blocks.len() > 1 {
            if let Some((_, (_, old))) = blocks.pop_first() {
                *bytes -= old.len();
            }
        }
    }
}

/// Merkle nodes from the cache, else from sled (remembering high-level ones).
/// Remembers every node read through it, for a run of proofs over the same tree.
struct MemoNodes<'a> {
    inner: CachedNodes<'a>,
    seen: RefCell<HashMap<(u8, u64), merkle::Hash>>,
}

impl NodeSource for MemoNodes<'_> {
    type Error = LedgerError;

    fn node(&self, level: u8, index: u64) -> Result<merkle::Hash, LedgerError> {
        if let Some(hash) = self.seen.borrow().get(&(level, index)) {
            return Ok(*hash);
        }
        let hash = self.inner.node(level, index)?;
        self.seen.borrow_mut().insert((level, index), hash);
        Ok(hash)
    }
}

pub(crate) struct CachedNodes<'a> {
    pub(crate) cache: &'a NodeCache,
    pub(crate) records: &'a dyn Keyspace,
}

impl NodeSource for CachedNodes<'_> {
    type Error = LedgerError;

    fn node(&self, level: u8, index: u64) -> Result<merkle::Hash, LedgerError> {
        if let Some(hash) = self.cache.get(level, index) {
            return Ok(hash);
        }
        let hash = StoredNodes(self.records).node(level, index)?;
        self.cache.remember_high(level, index, hash);
        Ok(hash)
    }
}

/// Reads Merkle nodes from the node blocks (`m` keys) of the records tree. The block that
/// holds node (level, index) is the one of the batch that appended its completing leaf: the
/// first block whose key (the batch's last seq) is at or after that leaf.
pub(crate) struct StoredNodes<'a>(pub(crate) &'a dyn Keyspace);

impl NodeSource for StoredNodes<'_> {
    type Error = LedgerError;

    fn node(&self, level: u8, index: u64) -> Result<merkle::Hash, LedgerError> {
        let seq = completing_seq(level, index);
        let missing = || LedgerError::Corrupt {
            seq,
            what: format!("Merkle node (level {level}, index {index}) is missing"),
        };
        let (_, block) = self
            .0
            .first(KeyRange::inclusive(
                node_block_key(seq),
                node_block_key(u64::MAX),
            ))?
            .ok_or_else(missing)?;
        find_in_block(&block, level, index).ok_or_else(missing)
    }
}

pub(crate) fn entry_key(seq: u64) -> [u8; 9] {
    let mut k = [ENTRY; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The key of the event-id index block of the batch whose first entry is `first_seq`.
pub(crate) fn event_index_key(first_seq: u64) -> [u8; 9] {
    let mut key = [EVENT_INDEX; 9];
    key[1..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

pub(crate) fn node_block_key(last_seq: u64) -> [u8; 9] {
    let mut k = [NODE; 9];
    k[1..].copy_from_slice(&last_seq.to_be_bytes());
    k
}

pub(crate) fn checkpoint_key(size: u64) -> [u8; 9] {
    let mut k = [CHECKPOINT; 9];
    k[1..].copy_from_slice(&size.to_be_bytes());
    k
}

/// A duration in the unit a person reads it in: "42 seconds", "5 minutes", "3 hours", "26
/// days".
fn human_duration(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        s if s >= 2 * 86_400 => plural(s / 86_400, "day"),
        s if s >= 2 * 3_600 => plural(s / 3_600, "hour"),
        s if s >= 2 * 60 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

pub(crate) fn rotation_key(seq: u64) -> [u8; 9] {
    let mut k = [ROTATION; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The key index record of a new ledger key: like the genesis's, it holds no role and signs
/// no event, and its id can never be enrolled.
pub(crate) fn handover_key_record(
    genesis: &Genesis,
    handover: &crate::envelope::Handover,
    seq: Seq,
) -> KeyRecord {
    KeyRecord {
        key_id: KeyId::of_public_key(&handover.new_public_key),
        public_key: handover.new_public_key,
        subject: genesis.origin.clone(),
        roles: Vec::new(),
        enrolled_at: seq,
        revoked_at: Some(seq),
    }
}

/// The ledger key that signs checkpoints now: the last hand-over's new key, or the genesis's.
fn current_ledger_key(
    records: &dyn Keyspace,
    genesis: &Genesis,
) -> Result<VerifyingKey, LedgerError> {
    let raw = match records.last(KeyRange::prefix([ROTATION]))? {
        Some((k, v)) => {
            let seq = be_u64(&k[1..]).unwrap_or(0);
            <[u8; 32]>::try_from(v.as_ref()).map_err(|_| LedgerError::Corrupt {
                seq,
                what: "the ledger-key hand-over record is not 32 bytes".into(),
            })?
        }
        None => genesis.ledger_public_key,
    };
    VerifyingKey::from_bytes(&raw).map_err(|_| LedgerError::Corrupt {
        seq: 0,
        what: "the current ledger key is not a valid Ed25519 key".into(),
    })
}

pub(crate) fn cosignatures_key(size: u64) -> [u8; 9] {
    let mut k = [COSIGNATURES; 9];
    k[1..].copy_from_slice(&size.to_be_bytes());
    k
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

fn encode_head(head: &Head) -> Vec<u8> {
    let mut v = Vec::with_capacity(48);
    v.extend_from_slice(&head.size.to_be_bytes());
    v.extend_from_slice(&head.last_hash.0);
    v.extend_from_slice(&head.last_recorded_at.0.to_be_bytes());
    v
}

/// Unwraps a Merkle builder error into a ledger error, keeping the store's own error.
fn merkle_err(e: merkle::BuildError<LedgerError>) -> LedgerError {
    match e {
        merkle::BuildError::Source(e) => e,
        merkle::BuildError::Proof(e) => LedgerError::OutOfRange(e.to_string()),
    }
}

/// The origin line of a ledger's checkpoints.
pub fn origin_of(ledger_id: &LedgerId) -> String {
    format!("isms-ledger/{}", ledger_id.to_hex())
}

impl Ledger {
    /// Creates a new ledger in `path`: a random ledger id and the genesis entry 0, signed by
    /// `ledger_key`, enrolling `admins`.
    pub fn create(
        path: impl AsRef<Path>,
        name: &str,
        ledger_key: SigningKey,
        admins: Vec<KeyGrant>,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Self::create_with_id(path, LedgerId(id), name, ledger_key, admins, config)
    }

    /// Like [`Ledger::create`] with a chosen ledger id (for reproducible examples).
    pub fn create_with_id(
        path: impl AsRef<Path>,
        ledger_id: LedgerId,
        name: &str,
        ledger_key: SigningKey,
        admins: Vec<KeyGrant>,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let engine = Arc::new(SledEngine::open(path.as_ref(), config.cache_bytes)?);
        Self::create_in(engine, ledger_id, name, ledger_key, admins, config)
    }

    /// Creates a new ledger in `engine` (which must hold none), like [`Ledger::create_with_id`].
    pub fn create_in(
        engine: Arc<dyn Engine>,
        ledger_id: LedgerId,
        name: &str,
        ledger_key: SigningKey,
        admins: Vec<KeyGrant>,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let records = engine.keyspace("records")?;
        if let Some(raw) = entry_blocks::read(records.as_ref(), 0)? {
            let existing = Entry::decode(&raw)
                .map(|e| hex::encode(&e.body[..e.body.len().min(18)]))
                .unwrap_or_default();
            return Err(LedgerError::AlreadyExists(existing));
        }
        let now = config.clock.now();
        let body = genesis_body(&ledger_id, name, &ledger_key.verifying_key(), &admins, now);
        let (view, action) = {
            let view = EnvelopeView::decode(body.as_slice()).expect("we just encoded it");
            let action = rules::record_action(&view)
                .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
            (view, action)
        };
        let RecordAction::Genesis(genesis) = action else {
            unreachable!("genesis_body always carries a genesis");
        };
        debug_assert_eq!(view.event_id, "genesis");
        let signed = SignedEvent::sign(&ledger_key, body);
        let entry = Entry {
            seq: Seq(0),
            recorded_at: now,
            prev_hash: EntryHash::ZERO,
            key_id: signed.key_id,
            signature: signed.signature,
            body: signed.body,
        };
        let encoded = entry.encode();
        let entry_hash = entry::hash_encoded(&encoded);
        let mut frontier = Frontier::new();
        let mut batch = WriteBatch::default();
        entry_blocks::put(&mut batch, 0, &[encoded]);
        batch.insert(
            event_index_key(0),
            event_index::encode_block(&[event_index::id_hash("genesis")]),
        );
        let nodes = frontier.push::<Blake3Hasher>(&entry_hash.0);
        batch.insert(node_block_key(0), encode_node_block(&nodes));
        for record in genesis_keys(&genesis) {
            batch.insert(prefixed(KEY, &record.key_id.0), record.encode());
        }
        let head = Head {
            size: 1,
            last_hash: entry_hash,
            last_recorded_at: now,
            root: frontier.root::<Blake3Hasher>(),
        };
        let checkpoint = Checkpoint {
            origin: genesis.origin.clone(),
            size: 1,
            root: head.root,
            time: now,
        }
        .sign(&ledger_key);
        batch.insert(checkpoint_key(1), checkpoint.note.as_bytes());
        batch.insert(HEAD, encode_head(&head));
        batch.insert(LAYOUT, LAYOUT_VERSION.to_be_bytes());
        // Two `init`s racing for one database ledger: one genesis wins, whole.
        batch.expect(HEAD, None);
        records.apply(batch)?;
        engine.flush()?;
        drop(records);
        Self::open_in(engine, config, Some(ledger_key))
    }

    /// Opens an existing ledger. With `signing_key` it can append (it must be the key the
    /// genesis names); without, it is read-only. A store whose files sled's own checksums
    /// refuse is [`LedgerError::Damaged`], naming the folder.
    pub fn open(
        path: impl AsRef<Path>,
        config: LedgerConfig,
        signing_key: Option<SigningKey>,
    ) -> Result<Ledger, LedgerError> {
        let path = path.as_ref();
        SledEngine::open(path, config.cache_bytes)
            .and_then(|engine| Self::open_in(Arc::new(engine), config, signing_key))
            .map_err(|e| match e {
                LedgerError::Store(sled::Error::Corruption { at, .. }) => LedgerError::Damaged {
                    path: path.to_path_buf(),
                    detail: match at {
                        Some(offset) => format!("corrupted data at {offset}"),
                        None => "corrupted data".into(),
                    },
                },
                // Every store is written by this sled version, so "Unsupported" at open means a
                // damaged `conf` file, not an old store.
                LedgerError::Store(sled::Error::Unsupported(what)) => LedgerError::Damaged {
                    path: path.to_path_buf(),
                    detail: what,
                },
                other => other,
            })
    }

    /// Opens the ledger held in `engine`, like [`Ledger::open`].
    pub fn open_in(
        engine: Arc<dyn Engine>,
        config: LedgerConfig,
        signing_key: Option<SigningKey>,
    ) -> Result<Ledger, LedgerError> {
        let records = engine.keyspace("records")?;
        let artifacts = engine.keyspace("artifacts")?;
        match records.get(LAYOUT)? {
            // Written before the layout was recorded: layout 1. Recorded from now on when the
            // ledger is opened to write.
            None if signing_key.is_some() => {
                records.insert(LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
            }
            None => {}
            Some(raw) => {
                let found = <[u8; 4]>::try_from(raw.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| LedgerError::Corrupt {
                        seq: 0,
                        what: "the layout version record is not 4 bytes".into(),
                    })?;
                if found > LAYOUT_VERSION {
                    return Err(LedgerError::NewerLayout {
                        found,
                        supported: LAYOUT_VERSION,
                    });
                }
            }
        }
        let genesis_bytes = match entry_blocks::read(records.as_ref(), 0)? {
            Some(bytes) => bytes,
            // Records without a genesis are a damaged ledger, not an empty store (the layout
            // record alone is written by opening an empty store to write).
            None if records
                .scan(KeyRange::all())
                .take(2)
                .any(|pair| pair.map_or(true, |(key, _)| key != LAYOUT)) =>
            {
                return Err(LedgerError::Corrupt {
                    seq: 0,
                    what: "the genesis entry is missing, though the store holds records".into(),
                })
            }
            None => {
                // An empty tree in a folder that acknowledged entries: its records were lost
                // (a damaged tree name in sled's own metadata reads as a new, empty tree).
                if let Some(folder) = engine.folder() {
                    check_acknowledged(&folder.join(ACKNOWLEDGED_FILE), 0)?;
                }
                return Err(LedgerError::NoLedger);
            }
        };
        let genesis_entry = Entry::decode(&genesis_bytes).map_err(|e| LedgerError::Corrupt {
            seq: 0,
            what: e.to_string(),
        })?;
        let genesis = decode_genesis(&genesis_entry)?;
        let checkpoint_key = current_ledger_key(records.as_ref(), &genesis)?;
        if let Some(key) = &signing_key {
            let expected = KeyId::of_public_key(checkpoint_key.as_bytes());
            if KeyId::of_public_key(key.verifying_key().as_bytes()) != expected {
                return Err(LedgerError::WrongLedgerKey { expected });
            }
        }
        let (head, frontier) = read_head(records.as_ref())?;
        let size = head.size;
        let keys = read_keys(records.as_ref())?;
        let acknowledged = engine.folder().map(|folder| folder.join(ACKNOWLEDGED_FILE));
        if let Some(file) = &acknowledged {
            check_acknowledged(file, head.size)?;
        }
        let events = load_event_index(records.as_ref(), size)?;
        let ledger = Ledger {
            engine,
            records,
            artifacts,
            config,
            genesis,
            signing_key,
            checkpoint_key: RwLock::new(checkpoint_key),
            writer: Mutex::new(Writer { frontier }),
            head: RwLock::new(head),
            staged_head: RwLock::new(head),
            flush_lock: Mutex::new(()),
            poisoned: Mutex::new(None),
            pending_erasures: Mutex::new(Vec::new()),
            nodes: NodeCache::default(),
            keys: RwLock::new(keys),
            events: RwLock::new(events),
            acknowledged,
            cosignatures_lock: Mutex::new(()),
            uncertain: AtomicBool::new(false),
        };
        ledger.finish_erasures()?;
        Ok(ledger)
    }

    /// Bytes the store takes, as its engine counts them (sled: on disk).
    pub fn store_size_bytes(&self) -> Result<u64, LedgerError> {
        self.engine.size_bytes()
    }

    /// The engine the ledger is stored in.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The key that signs this ledger's checkpoints now: the genesis's ledger key, or the new
    /// key of the last hand-over ([`Ledger::rotate_ledger_key`]).
    pub fn checkpoint_key(&self) -> VerifyingKey {
        *self.checkpoint_key.read().expect("key lock")
    }

    /// Whether this ledger was opened without its signing key (it then takes no appends).
    pub fn is_read_only(&self) -> bool {
        self.signing_key.is_none()
    }

    /// Hands the checkpoint key over to `new_key`: appends a `ledger_key_rotated` entry signed
    /// by `admin` (an admin key) and carrying the current and the new ledger key's signatures
    /// over the hand-over statement, in a batch of its own whose checkpoint the current key
    /// still signs. Every later checkpoint is signed by `new_key`, so the ledger takes no more
    /// appends until it is reopened with it. Needs the ledger opened with its current key.
    pub fn rotate_ledger_key(
        &self,
        admin: &SigningKey,
        new_key: &SigningKey,
        reason: &str,
    ) -> Result<Appended, AppendError> {
        let old = self.signing_key.as_ref().ok_or(AppendError::ReadOnly)?;
        let handover = crate::envelope::Handover::sign(&self.genesis.ledger_id, old, new_key);
        let now = self.config.clock.now();
        let body = EnvelopeView {
            ledger_id: self.genesis.ledger_id.0.to_vec(),
            event_id: format!(
                "ledger-key-rotated-{}",
                KeyId::of_public_key(&handover.new_public_key).to_hex()
            ),
            effective_at_us: now.0,
            client_time_us: now.0,
            ledger_key_rotated: Some(handover.to_view(reason)),
            ..EnvelopeView::default()
        }
        .encode_to_vec();
        let mut prepared = self.prepare(vec![SignedEvent::sign(admin, body)]);
        prepared.rotation = true;
        let appended = self
            .commit(prepared, &mut AdmitAll)
            .pop()
            .expect("one result per event")?;
        *self.poisoned.lock().expect("poison lock") = Some(format!(
            "the ledger key was handed over at seq {}; reopen the ledger with the new key",
            appended.seq
        ));
        Ok(appended)
    }

    /// The ledger id.
    pub fn ledger_id(&self) -> LedgerId {
        self.genesis.ledger_id
    }

    /// The checkpoint origin, `isms-ledger/<ledger id hex>`.
    pub fn origin(&self) -> &str {
        &self.genesis.origin
    }

    /// The ledger's checkpoint-signing public key.
    pub fn public_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(&self.genesis.ledger_public_key).expect("checked at open")
    }

    /// The decoded genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The configuration in force.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Reads the head, indexes and checkpoint key from the store again (after a batch whose
    /// commit was not confirmed) and publishes them; whether the head moved. Clears the
    /// uncertainty once read.
    fn reload_from_store(&self, writer: &mut Writer) -> Result<bool, LedgerError> {
        let before = *self.staged_head.read().expect("head lock");
        let (head, frontier) = read_head(self.records.as_ref())?;
        let moved = head != before;
        if moved {
            let events = load_event_index(self.records.as_ref(), head.size)?;
            *self.events.write().expect("index lock") = events;
            self.adopt_head(writer, head, frontier)?;
        }
        self.uncertain.store(false, Ordering::SeqCst);
        Ok(moved)
    }

    /// Takes `head` (the store's, read with its `frontier`) as this ledger's own: the key
    /// index and the checkpoint key are read again, and readers see the new head. The
    /// event-id index is the caller's to bring up to `head` first.
    fn adopt_head(
        &self,
        writer: &mut Writer,
        head: Head,
        frontier: Frontier,
    ) -> Result<(), LedgerError> {
        let keys = read_keys(self.records.as_ref())?;
        let checkpoint_key = current_ledger_key(self.records.as_ref(), &self.genesis)?;
        *self.keys.write().expect("keys lock") = keys;
        *self.checkpoint_key.write().expect("key lock") = checkpoint_key;
        writer.frontier = frontier;
        *self.staged_head.write().expect("head lock") = head;
        *self.head.write().expect("head lock") = head;
        Ok(())
    }

    /// For a read-only ledger whose store another server writes (a PostgreSQL ledger served
    /// by several servers): catches up with the store's head — the head readers see, the key
    /// index, the event-id index and the checkpoint key. Returns the new size. Refused on a
    /// ledger opened to write (its head is its own) and on a store whose head went back.
    pub fn refresh(&self) -> Result<u64, LedgerError> {
        if self.signing_key.is_some() {
            return Err(LedgerError::OutOfRange(
                "a ledger opened with its signing key is its store's only writer; it has \
                 nothing to catch up with"
                    .into(),
            ));
        }
        let mut writer = self.writer.lock().expect("writer lock");
        let current = self.head();
        let (head, frontier) = read_head(self.records.as_ref())?;
        if head.size == current.size {
            return Ok(head.size);
        }
        if head.size < current.size {
            return Err(LedgerError::Corrupt {
                seq: head.size,
                what: format!(
                    "the store's head went back from {} to {} entries",
                    current.size, head.size
                ),
            });
        }
        {
            let mut events = self.events.write().expect("index lock");
            for item in self.records.scan(KeyRange::inclusive(
                event_index_key(events.len()),
                event_index_key(head.size.saturating_sub(1)),
            )) {
                let (key, block) = item?;
                match be_u64(&key[1..]) {
                    Some(first) if events.extend_from_block(first, &block) => {}
                    _ => break,
                }
            }
        }
        self.adopt_head(&mut writer, head, frontier)?;
        Ok(head.size)
    }

    /// The latest committed head.
    pub fn head(&self) -> Head {
        *self.head.read().expect("head lock")
    }

    /// A keyspace for rebuildable derived data (projection snapshots, caches), in the same
    /// engine. It is never part of the permanent record and `verify` ignores it.
    pub fn derived(&self, name: &str) -> Result<Space, LedgerError> {
        self.engine.keyspace(&format!("derived/{name}"))
    }

    /// Every key ever enrolled, revoked ones included.
    pub fn keys(&self) -> Vec<KeyRecord> {
        let mut keys: Vec<_> = self
            .keys
            .read()
            .expect("keys lock")
            .values()
            .cloned()
            .collect();
        keys.sort_by_key(|k| (k.enrolled_at, k.key_id));
        keys
    }

    /// One key.
    pub fn key(&self, key_id: &KeyId) -> Option<KeyRecord> {
        self.keys.read().expect("keys lock").get(key_id).cloned()
    }

    /// The entry at `seq`.
    pub fn get(&self, seq: Seq) -> Result<Option<Entry>, LedgerError> {
        if seq.0 >= self.head().size {
            // Not there, or staged but not yet durable: readers see durable entries only.
            return Ok(None);
        }
        let Some(bytes) = entry_blocks::read(self.records.as_ref(), seq.0)? else {
            return Ok(None);
        };
        Entry::decode(&bytes)
            .map(Some)
            .map_err(|e| LedgerError::Corrupt {
                seq: seq.0,
                what: e.to_string(),
            })
    }

    /// The entry whose body has `event_id`.
    pub fn get_by_event_id(&self, event_id: &str) -> Result<Option<Entry>, LedgerError> {
        let durable = self.head().size;
        Ok(self
            .find_event(event_id, event_index::id_hash(event_id))?
            .filter(|entry| entry.seq.0 < durable))
    }

    /// The staged or durable entry holding `event_id`: the index names candidates by hash,
    /// and the event id in each candidate's body decides.
    fn find_event(&self, event_id: &str, hash: u64) -> Result<Option<Entry>, LedgerError> {
        let candidates: Vec<u64> = self
            .events
            .read()
            .expect("index lock")
            .candidates(hash)
            .collect();
        for seq in candidates {
            let entry = entry_blocks::read(self.records.as_ref(), seq)?
                .and_then(|bytes| Entry::decode(&bytes).ok())
                .ok_or_else(|| LedgerError::Corrupt {
                    seq,
                    what: format!("the event-id index points at a missing entry ({event_id:?})"),
                })?;
            if event_index::event_id_of(&entry.body).as_deref() == Some(event_id) {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Entries with seq in `range`, in order (stopping at the head).
    pub fn entries(
        &self,
        range: Range<u64>,
    ) -> impl Iterator<Item = Result<Entry, LedgerError>> + '_ {
        let end = range.end.min(self.head().size);
        let start = range.start.min(end);
        let mut rows = entry_blocks::scan(self.records.as_ref(), start, end);
        let mut next = start;
        let mut failed = false;
        // Every seq in start..end must be there, in order: a missing entry is an error at its
        // seq (not silently skipped), and after the first error the iterator ends, because a
        // damaged sled page can return the same error forever.
        std::iter::from_fn(move || {
            if failed || next >= end {
                return None;
            }
            let seq = next;
            next += 1;
            let item = match rows.next() {
                None => Err(LedgerError::Corrupt {
                    seq,
                    what: format!("entry {seq} is missing (the head is at {end})"),
                }),
                Some(Err(e)) => Err(LedgerError::Corrupt {
                    seq,
                    what: format!("the store could not read the entry: {e}"),
                }),
                Some(Ok((found, _))) if found != seq => Err(LedgerError::Corrupt {
                    seq,
                    what: format!("entry {seq} is missing (the next stored entry is {found})"),
                }),
                Some(Ok((_, value))) => Entry::decode(&value).map_err(|e| LedgerError::Corrupt {
                    seq,
                    what: e.to_string(),
                }),
            };
            failed = item.is_err();
            Some(item)
        })
    }

    /// The last seq whose recorded_at is at or before `t`: the basis of "as of T". `None` when
    /// `t` is before the genesis.
    pub fn seq_at_or_before(&self, t: UnixMicros) -> Result<Option<Seq>, LedgerError> {
        // recorded_at never decreases with seq, so a binary search over the entries finds it
        // in O(log n) reads without a separate time index.
        // The last probes fall in one entry block, which the cursor reads once.
        let size = self.head().size;
        let mut cursor = entry_blocks::Cursor::default();
        let (mut lo, mut hi) = (0u64, size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.recorded_at(&mut cursor, mid)? <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1).map(Seq))
    }

    fn recorded_at(
        &self,
        cursor: &mut entry_blocks::Cursor,
        seq: u64,
    ) -> Result<UnixMicros, LedgerError> {
        let bytes =
            cursor
                .read(self.records.as_ref(), seq)?
                .ok_or_else(|| LedgerError::Corrupt {
                    seq,
                    what: "entry is missing".into(),
                })?;
        let raw = bytes
            .get(RECORDED_AT_OFFSET..RECORDED_AT_OFFSET + 8)
            .ok_or_else(|| LedgerError::Corrupt {
                seq,
                what: "entry is too short".into(),
            })?;
        Ok(UnixMicros(i64::from_be_bytes(
            raw.try_into().expect("8 bytes"),
        )))
    }

    /// The Merkle root over the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<[u8; 32], LedgerError> {
        self.check_size(size)?;
        merkle::root_at::<Blake3Hasher, _>(&self.cached_nodes(), size)
    }

    fn check_size(&self, size: u64) -> Result<(), LedgerError> {
        let head = self.head().size;
        if size > head {
            return Err(LedgerError::OutOfRange(format!(
                "tree size {size} is larger than the ledger ({head} entries)"
            )));
        }
        Ok(())
    }

    /// The inclusion proof of entry `seq` in the tree of `size` entries.
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<Vec<[u8; 32]>, LedgerError> {
        self.check_size(size)?;
        if seq.0 >= size {
            return Err(LedgerError::OutOfRange(format!(
                "seq {seq} is not inside a tree of size {size}"
            )));
        }
        merkle::inclusion_proof::<Blake3Hasher, _>(&self.cached_nodes(), seq.0, size)
            .map_err(merkle_err)
    }

    /// Inclusion proofs of several entries in the tree of `size` entries, sharing the node
    /// reads (a batch's receipts share every upper node and the right edge).
    pub fn inclusion_proofs(
        &self,
        seqs: &[Seq],
        size: u64,
    ) -> Result<Vec<Vec<[u8; 32]>>, LedgerError> {
        self.check_size(size)?;
        let memo = MemoNodes {
            inner: self.cached_nodes(),
            seen: RefCell::new(HashMap::new()),
        };
        seqs.iter()
            .map(|seq| {
                if seq.0 >= size {
                    return Err(LedgerError::OutOfRange(format!(
                        "seq {seq} is not inside a tree of size {size}"
                    )));
                }
                merkle::inclusion_proof::<Blake3Hasher, _>(&memo, seq.0, size).map_err(merkle_err)
            })
            .collect()
    }

    /// The consistency proof from the tree of `old_size` entries to the one of `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<[u8; 32]>, LedgerError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(LedgerError::OutOfRange(format!(
                "old size {old_size} is larger than new size {new_size}"
            )));
        }
        merkle::consistency_proof::<Blake3Hasher, _>(&self.cached_nodes(), old_size, new_size)
            .map_err(merkle_err)
    }

    /// The latest stored checkpoint.
    pub fn latest_checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        let (_, note) = self
            .records
            .last(KeyRange::inclusive(
                checkpoint_key(0),
                checkpoint_key(self.head().size),
            ))?
            .ok_or(LedgerError::NoLedger)?;
        self.read_checkpoint(&note)
    }

    /// The stored checkpoint of exactly `size` entries, if one was written.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        if size > self.head().size {
            return Ok(None);
        }
        match self.records.get(&checkpoint_key(size))? {
            Some(note) => self.read_checkpoint(&note).map(Some),
            None => Ok(None),
        }
    }

    /// The first stored checkpoint that covers `seq` (its size is greater than `seq`).
    pub fn covering_checkpoint(&self, seq: Seq) -> Result<SignedCheckpoint, LedgerError> {
        self.covering_checkpoint_within(seq, self.head().size)
    }

    /// The first checkpoint of at most `limit` entries that covers `seq`.
    fn covering_checkpoint_within(
        &self,
        seq: Seq,
        limit: u64,
    ) -> Result<SignedCheckpoint, LedgerError> {
        let (_, note) = self
            .records
            .first(KeyRange::inclusive(
                checkpoint_key(seq.0 + 1),
                checkpoint_key(limit),
            ))?
            .ok_or_else(|| LedgerError::OutOfRange(format!("no checkpoint covers seq {seq}")))?;
        self.read_checkpoint(&note)
    }

    /// Every stored checkpoint, smallest first.
    pub fn checkpoints(&self) -> impl Iterator<Item = Result<SignedCheckpoint, LedgerError>> + '_ {
        self.checkpoints_in(0..=u64::MAX)
    }

    /// [`Ledger::checkpoints_in`] as readers are served them: each note with the witness
    /// cosignatures kept for its size ([`Ledger::with_cosignatures`]).
    pub fn cosigned_checkpoints_in(
        &self,
        sizes: RangeInclusive<u64>,
    ) -> impl Iterator<Item = Result<SignedCheckpoint, LedgerError>> + '_ {
        self.checkpoints_in(sizes)
            .map(|c| c.and_then(|c| self.with_cosignatures(c)))
    }

    /// The stored checkpoints whose size lies in `sizes` (and within the durable head),
    /// smallest first. Read lazily; the iterator ends after the first error, so a damaged
    /// store yields one error rather than the same one forever.
    pub fn checkpoints_in(
        &self,
        sizes: RangeInclusive<u64>,
    ) -> impl Iterator<Item = Result<SignedCheckpoint, LedgerError>> + '_ {
        let to = (*sizes.end()).min(self.head().size);
        let from = (*sizes.start()).min(to.saturating_add(1));
        let range = if from <= to {
            self.records.scan(KeyRange::inclusive(
                checkpoint_key(from),
                checkpoint_key(to),
            ))
        } else {
            Box::new(std::iter::empty())
        };
        until_first_error(range.map(move |item| {
            let (key, note) = item.map_err(|e| LedgerError::Corrupt {
                seq: 0,
                what: format!("the store could not read the checkpoints from size {from}: {e}"),
            })?;
            let size = be_u64(&key[1..]).unwrap_or(u64::MAX);
            self.read_checkpoint(&note).map_err(|e| match e {
                LedgerError::Corrupt { what, .. } => LedgerError::Corrupt {
                    seq: size.saturating_sub(1),
                    what: format!("checkpoint of size {size}: {what}"),
                },
                other => other,
            })
        }))
    }

    /// Reads a stored checkpoint note. Its signature is not re-checked here: it is checked by
    /// `verify` and by whoever receives it, and checking it on every receipt would cost one
    /// ed25519 verification per appended event.
    fn read_checkpoint(&self, note: &[u8]) -> Result<SignedCheckpoint, LedgerError> {
        let text = std::str::from_utf8(note).map_err(|_| LedgerError::Corrupt {
            seq: 0,
            what: "checkpoint note is not UTF-8".into(),
        })?;
        let checkpoint =
            SignedCheckpoint::parse_unverified(text).map_err(|e| LedgerError::Corrupt {
                seq: 0,
                what: e.to_string(),
            })?;
        Ok(SignedCheckpoint {
            checkpoint,
            note: text.to_string(),
        })
    }

    /// A checkpoint of `size` entries: the stored one, or else one signed now over the root
    /// at that size (a true statement about the past, not stored).
    pub fn checkpoint_for_size(&self, size: u64) -> Result<SignedCheckpoint, LedgerError> {
        if let Some(stored) = self.checkpoint_at(size)? {
            return Ok(stored);
        }
        let key = self.signing_key.as_ref().ok_or_else(|| {
            LedgerError::OutOfRange(format!(
                "no stored checkpoint at size {size}, and this ledger is read-only"
            ))
        })?;
        if size == 0 {
            return Err(LedgerError::OutOfRange(
                "a checkpoint covers at least one entry".into(),
            ));
        }
        let root = self.root_at(size)?;
        Ok(Checkpoint {
            origin: self.genesis.origin.clone(),
            size,
            root,
            time: self.recorded_at(&mut entry_blocks::Cursor::default(), size - 1)?,
        }
        .sign(key))
    }

    /// The receipt of the entry at `seq`: the entry's fields, the first checkpoint covering it
    /// and the inclusion proof to that checkpoint.
    pub fn receipt(&self, seq: Seq) -> Result<Receipt, LedgerError> {
        let entry = self
            .get(seq)?
            .ok_or_else(|| LedgerError::OutOfRange(format!("no entry at seq {seq}")))?;
        let checkpoint = self.covering_checkpoint(seq)?;
        let inclusion_path = self.inclusion_proof(seq, checkpoint.checkpoint.size)?;
        Ok(Receipt {
            seq,
            recorded_at: entry.recorded_at,
            prev_hash: entry.prev_hash,
            key_id: entry.key_id,
            signature: entry.signature,
            entry_hash: entry.hash(),
            checkpoint: checkpoint.note,
            inclusion_path,
        })
    }

    /// Appends a batch with no admission policy beyond the record rules.
    pub fn append(&self, events: Vec<SignedEvent>) -> Vec<Result<Appended, AppendError>> {
        self.append_with(events, &mut AdmitAll)
    }

    /// The first half of an append, which needs no lock: decodes every body, checks the
    /// record rules that need no ledger state and verifies the signatures of events whose key
    /// is already enrolled (batched, on all cores). Callers that take events from many
    /// connections prepare in parallel and hand the results to [`Ledger::commit`].
    pub fn prepare(&self, events: Vec<SignedEvent>) -> Prepared {
        let checks = self.precheck(&events);
        Prepared {
            events,
            checks,
            atomic: false,
            rotation: false,
        }
    }

    /// Appends a batch: [`Ledger::prepare`] then [`Ledger::commit`].
    pub fn append_with(
        &self,
        events: Vec<SignedEvent>,
        admission: &mut dyn Admission,
    ) -> Vec<Result<Appended, AppendError>> {
        self.commit(self.prepare(events), admission)
    }

    /// The single writer's half of an append: every prepared event is checked against the
    /// ledger state (idempotency, key validity at its seq, effective time, record rules, then
    /// `admission`) and the admitted ones are written with their indexes, Merkle nodes, one
    /// checkpoint and the new head in one atomic sled batch, flushed before this returns.
    /// One result per event, in order. A retried event (same id, same bytes) returns its
    /// original placement with `duplicate: true`.
    pub fn commit(
        &self,
        prepared: Prepared,
        admission: &mut dyn Admission,
    ) -> Vec<Result<Appended, AppendError>> {
        let mut staged = self.stage(prepared, admission);
        if let Err(e) = self.make_durable(staged.durable_size) {
            let message = e.to_string();
            for r in staged.results.iter_mut() {
                if r.is_ok() {
                    *r = Err(AppendError::Store(message.clone()));
                }
            }
        }
        staged.results
    }

    /// The writer's half of [`Ledger::commit`] without the flush: the batch is written to
    /// sled atomically and becomes visible to later stages (idempotency, keys, the Merkle
    /// tree), but readers and acknowledgements must wait for [`Ledger::make_durable`]. A
    /// server stages the next batch while the previous one is being flushed, so one flush
    /// covers many batches.
    pub fn stage(&self, prepared: Prepared, admission: &mut dyn Admission) -> Staged {
        let Prepared {
            events,
            checks: checked,
            atomic,
            rotation,
        } = prepared;
        let refuse_all = |e: &dyn Fn() -> AppendError| Staged {
            results: events.iter().map(|_| Err(e())).collect(),
            durable_size: 0,
        };
        let Some(ledger_key) = self.signing_key.as_ref() else {
            return refuse_all(&|| AppendError::ReadOnly);
        };
        if let Some(why) = self.poisoned.lock().expect("poison lock").clone() {
            return refuse_all(&|| {
                AppendError::Store(format!(
                    "an earlier flush failed ({why}); reopen the ledger"
                ))
            });
        }

        let mut writer = self.writer.lock().expect("writer lock");
        if self.uncertain.load(Ordering::SeqCst) {
            // The last batch's fate is unknown: read the store again. When it moved, these
            // events were checked by rules that had not seen what it holds now, so they are
            // refused (the caller rebuilds its rules state and they can be sent again).
            let message = match self.reload_from_store(&mut writer) {
                Ok(false) => None,
                Ok(true) => {
                    Some("the store held a batch this writer had not seen; send again".to_string())
                }
                Err(e) => Some(format!("the store cannot be read: {e}")),
            };
            if let Some(message) = message {
                return refuse_all(&|| AppendError::Store(message.clone()));
            }
        }
        let head = *self.staged_head.read().expect("head lock");
        let now = self.config.clock.now().max(head.last_recorded_at);
        let mut frontier = writer.frontier.clone();
        let mut batch = WriteBatch::default();
        let mut results: Vec<Option<Result<Appended, AppendError>>> =
            Vec::with_capacity(events.len());
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        let mut new_keys: HashMap<KeyId, KeyRecord> = HashMap::new();
        let mut erasures = Vec::new();
        let mut new_nodes = Vec::new();
        let mut id_hashes = Vec::with_capacity(events.len());
        let mut new_entries: Vec<Vec<u8>> = Vec::with_capacity(events.len());
        let mut next = head.size;
        let mut prev_hash = head.last_hash;
        let keys = self.keys.read().expect("keys lock");
        if atomic {
            admission.save();
        }

        for (i, (event, check)) in events.iter().zip(checked).enumerate() {
            let (view, action, signature_ok) = match check {
                Ok(c) => c,
                Err(e) => {
                    results.push(Some(Err(e)));
                    continue;
                }
            };
            // Idempotency, against this batch and the whole history.
            if let Some(&first) = in_batch.get(view.event_id.as_str()) {
                let same = events[first].body == event.body;
                let placed = match &results[first] {
                    Some(Ok(a)) => *a,
                    _ => unreachable!("only admitted events enter in_batch"),
                };
                results.push(Some(if same {
                    Ok(Appended {
                        duplicate: true,
                        ..placed
                    })
                } else {
                    Err(AppendError::EventIdConflict {
                        event_id: view.event_id.clone(),
                        seq: placed.seq,
                    })
                }));
                continue;
            }
            let id_hash = event_index::id_hash(&view.event_id);
            match self.duplicate_of(&view.event_id, id_hash, &event.body) {
                Ok(None) => {}
                Ok(Some(found)) => {
                    results.push(Some(found));
                    continue;
                }
                Err(e) => {
                    results.push(Some(Err(AppendError::Store(e.to_string()))));
                    continue;
                }
            }
            let seq = Seq(next);
            let key = match new_keys
                .get(&event.key_id)
                .or_else(|| keys.get(&event.key_id))
            {
                None => {
                    results.push(Some(Err(AppendError::UnknownKey {
                        key_id: event.key_id,
                    })));
                    continue;
                }
                Some(k) if !k.valid_at(seq) => {
                    results.push(Some(Err(AppendError::RevokedKey {
                        key_id: event.key_id,
                        revoked_at: k.revoked_at.unwrap_or(k.enrolled_at),
                    })));
                    continue;
                }
                Some(k) => k.clone(),
            };
            if !signature_ok && !sig::verify_one(&sig_item(&key.public_key, event)) {
                results.push(Some(Err(AppendError::BadSignature {
                    key_id: event.key_id,
                })));
                continue;
            }
            if view.effective_at_us > now.0.saturating_add(self.config.max_future_skew_us) {
                results.push(Some(Err(AppendError::Malformed {
                    field: "effective_at_us",
                    rule: format!(
                        "lies {} in the future; at most {} of clock skew is allowed",
                        human_duration((view.effective_at_us - now.0) / 1_000_000),
                        human_duration(self.config.max_future_skew_us / 1_000_000)
                    ),
                })));
                continue;
            }
            if matches!(action, RecordAction::LedgerKeyRotated(_)) && !rotation {
                results.push(Some(Err(AppendError::Malformed {
                    field: "ledger_key_rotated",
                    rule: "the ledger key is handed over only with `isms ledger-key rotate` on \
                           the stopped server's folder, never through a running server"
                        .into(),
                })));
                continue;
            }
            if let Err(e) = self.record_rules(&action, &key, &keys, &new_keys) {
                results.push(Some(Err(e)));
                continue;
            }
            if let RecordAction::ArtifactErased(hash) = &action {
                if let Err(e) = self.check_erasable(hash, &erasures) {
                    results.push(Some(Err(e)));
                    continue;
                }
            }
            let candidate = Candidate {
                seq,
                recorded_at: now,
                key: &key,
                event_id: &view.event_id,
                body: &event.body,
            };
            if let Err(rejection) = admission.admit(&candidate) {
                results.push(Some(Err(AppendError::Rejected(rejection))));
                continue;
            }

            match &action {
                RecordAction::KeyEnrolled(grant) => {
                    let record = grant.record(seq);
                    batch.insert(prefixed(KEY, &record.key_id.0), record.encode());
                    new_keys.insert(record.key_id, record);
                }
                RecordAction::KeyRevoked(key_id) => {
                    let mut record = new_keys
                        .get(key_id)
                        .or_else(|| keys.get(key_id))
                        .cloned()
                        .expect("record_rules checked the key exists");
                    record.revoked_at = Some(seq);
                    batch.insert(prefixed(KEY, &key_id.0), record.encode());
                    new_keys.insert(*key_id, record);
                }
                RecordAction::ArtifactErased(hash) => {
                    batch.insert(prefixed(ERASED, &hash.0), seq.0.to_be_bytes());
                    erasures.push(*hash);
                }
                RecordAction::LedgerKeyRotated(handover) => {
                    let record = handover_key_record(&self.genesis, handover, seq);
                    batch.insert(prefixed(KEY, &record.key_id.0), record.encode());
                    batch.insert(rotation_key(seq.0), handover.new_public_key);
                    // A build that knows no hand-over would misread this store from here on.
                    batch.insert(LAYOUT, LAYOUT_VERSION.to_be_bytes());
                    new_keys.insert(record.key_id, record);
                }
                RecordAction::None | RecordAction::Genesis(_) => {}
            }
            let encoded = entry::encode_parts(
                seq,
                now,
                &prev_hash,
                &event.key_id,
                &event.signature,
                &event.body,
            );
            let entry_hash = entry::hash_encoded(&encoded);
            new_entries.push(encoded);
            id_hashes.push(id_hash);
            new_nodes.extend(frontier.push::<Blake3Hasher>(&entry_hash.0));
            in_batch.insert(view.event_id.clone(), i);
            results.push(Some(Ok(Appended {
                seq,
                entry_hash,
                recorded_at: now,
                prev_hash,
                key_id: event.key_id,
                signature: event.signature,
                checkpoint_size: 0, // filled in below, once the batch size is known
                duplicate: false,
            })));
            prev_hash = entry_hash;
            next += 1;
        }
        drop(keys);

        let mut results: Vec<Result<Appended, AppendError>> = results
            .into_iter()
            .map(|r| r.expect("one result per event"))
            .collect();
        if let Some(first) = results.iter().position(Result::is_err).filter(|_| atomic) {
            // All or nothing: nothing of the group is written, the admission forgets what it
            // admitted, and every event that passed says why it was not stored.
            admission.rewind();
            let reason = match &results[first] {
                Err(e) => e.to_string(),
                Ok(_) => unreachable!("position found an error"),
            };
            for r in results.iter_mut() {
                if matches!(r, Ok(a) if !a.duplicate) {
                    *r = Err(AppendError::GroupRefused {
                        first,
                        reason: reason.clone(),
                    });
                }
            }
            let durable_size = durable_size_of(&results);
            return Staged {
                results,
                durable_size,
            };
        }
        let durable_size = durable_size_of;
        if next == head.size {
            let durable_size = durable_size(&results);
            return Staged {
                results,
                durable_size,
            };
        }
        let new_head = Head {
            size: next,
            last_hash: prev_hash,
            last_recorded_at: now,
            root: frontier.root::<Blake3Hasher>(),
        };
        let checkpoint = Checkpoint {
            origin: self.genesis.origin.clone(),
            size: next,
            root: new_head.root,
            time: now,
        }
        .sign(ledger_key);
        entry_blocks::put(&mut batch, head.size, &new_entries);
        batch.insert(checkpoint_key(next), checkpoint.note.as_bytes());
        let node_block = encode_node_block(&new_nodes);
        batch.insert(node_block_key(next - 1), node_block.clone());
        batch.insert(
            event_index_key(head.size),
            event_index::encode_block(&id_hashes),
        );
        let (old_head_bytes, new_head_bytes) = (encode_head(&head), encode_head(&new_head));
        batch.insert(HEAD, new_head_bytes.clone());
        // The batch extends exactly this head: it can never overwrite a batch this writer
        // did not know was committed.
        batch.expect(HEAD, Some(old_head_bytes.clone()));

        let applied = match self.records.apply(batch) {
            // A database may lose the answer to a commit that happened: the store's head
            // tells which.
            Err(e) if self.engine.durable_on_apply() => {
                match self.records.get(HEAD) {
                    Ok(Some(stored)) if stored == new_head_bytes => Ok(()),
                    Ok(Some(stored)) if stored == old_head_bytes => Err(e),
                    _ => {
                        // Unknown, or moved by someone else: read the store again before the
                        // next batch.
                        self.uncertain.store(true, Ordering::SeqCst);
                        Err(e)
                    }
                }
            }
            other => other,
        };
        if let Err(e) = applied {
            // Nothing is acknowledged. The engine's batch is atomic, so after a crash or
            // reopen the store holds either all of it or none; in this process we keep the
            // old head. (A PostgreSQL writer fenced out by a newer term lands here too.)
            let message = e.to_string();
            for r in results.iter_mut() {
                if matches!(r, Ok(a) if !a.duplicate && a.seq.0 >= head.size) {
                    *r = Err(AppendError::Store(message.clone()));
                }
            }
            let durable_size = durable_size(&results);
            return Staged {
                results,
                durable_size,
            };
        }
        writer.frontier = frontier;
        self.events.write().expect("index lock").extend(&id_hashes);
        self.nodes.add_block(head.size, next - 1, node_block);
        self.keys.write().expect("keys lock").extend(new_keys);
        self.pending_erasures
            .lock()
            .expect("erasure lock")
            .extend(erasures.into_iter().map(|h| (next, h)));
        *self.staged_head.write().expect("head lock") = new_head;
        drop(writer);

        for r in results.iter_mut().flatten() {
            if r.checkpoint_size == 0 {
                r.checkpoint_size = next;
            }
        }
        let durable_size = durable_size(&results);
        Staged {
            results,
            durable_size,
        }
    }

    /// Makes every staged batch up to `size` entries durable (one `flush` covers every batch
    /// staged before it starts) and publishes the new head to readers. Returns at once when
    /// `size` is already durable. A failed flush poisons the ledger: nothing more is staged
    /// until it is reopened, because what reached the disk is unknown.
    pub fn make_durable(&self, size: u64) -> Result<Head, LedgerError> {
        let head = self.head();
        if head.size >= size {
            return Ok(head);
        }
        let _flushing = self.flush_lock.lock().expect("flush lock");
        let head = self.head();
        if head.size >= size {
            return Ok(head);
        }
        // Everything staged before this read is in sled's log before the flush starts.
        let target = *self.staged_head.read().expect("head lock");
        if let Err(e) = self.engine.flush() {
            *self.poisoned.lock().expect("poison lock") = Some(e.to_string());
            return Err(e);
        }
        *self.head.write().expect("head lock") = target;
        self.record_acknowledged(&target);
        let ready: Vec<ArtifactHash> = {
            let mut pending = self.pending_erasures.lock().expect("erasure lock");
            let (ready, later) = pending.drain(..).partition(|(at, _)| *at <= target.size);
            *pending = later;
            ready.into_iter().map(|(_, h)| h).collect()
        };
        if !ready.is_empty() {
            // The erasure entries are durable; removing the bytes can follow. If we crash in
            // between, `open` finishes the job from the `x` markers.
            let _ = self.remove_artifacts(&ready);
        }
        Ok(target)
    }

    /// The record-level checks of every event that need no ledger state, and signature
    /// verification for events whose key is already known (in parallel, batched).
    #[allow(clippy::type_complexity)]
    fn precheck(
        &self,
        events: &[SignedEvent],
    ) -> Vec<Result<(EnvelopeView, RecordAction, bool), AppendError>> {
        let ledger_id = self.genesis.ledger_id;
        let max = self.config.max_body_bytes;
        let keys = self.keys.read().expect("keys lock");
        let known: Vec<Option<[u8; 32]>> = events
            .iter()
            .map(|e| keys.get(&e.key_id).map(|k| k.public_key))
            .collect();
        drop(keys);
        // A handful of events is checked on the calling thread: handing them to the pool
        // costs more in wake-ups than the checks themselves.
        let small = events.len() < SMALL_PREPARE;
        let checks: Vec<_> = if small {
            events
                .iter()
                .map(|e| rules::check_body(&e.body, &ledger_id, max))
                .collect()
        } else {
            events
                .par_iter()
                .map(|e| rules::check_body(&e.body, &ledger_id, max))
                .collect()
        };
        // Signatures of events with a known key, verified in parallel chunks; a chunk that
        // fails batch verification is re-checked one by one to find the culprits.
        let indices: Vec<usize> = (0..events.len())
            .filter(|&i| checks[i].is_ok() && known[i].is_some())
            .collect();
        let known = &known;
        let check_chunk = |chunk: &[usize]| {
            let items: Vec<sig::Item<'_>> = chunk
                .iter()
                .map(|&i| sig_item(known[i].as_ref().expect("filtered"), &events[i]))
                .collect();
            let all = sig::verify_batch(&items);
            chunk
                .iter()
                .zip(&items)
                .map(|(&i, item)| (i, all || sig::verify_one(item)))
                .collect::<Vec<_>>()
        };
        // One chunk per core, between 64 and 1,024 signatures: larger batches amortise the
        // multi-scalar multiplication better, and a lone small remainder chunk would not. A
        // single chunk is checked right here, without a hand-off to the pool.
        let per_core = indices.len().div_ceil(rayon::current_num_threads().max(1));
        let chunk = per_core.clamp(64, 1024);
        let verified: Vec<(usize, bool)> = if indices.len() <= chunk {
            check_chunk(&indices)
        } else {
            indices
                .par_chunks(chunk)
                .flat_map_iter(check_chunk)
                .collect()
        };
        let mut ok = vec![false; events.len()];
        for (i, good) in verified {
            ok[i] = good;
        }
        checks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let (view, action) = c?;
                if known[i].is_some() && !ok[i] {
                    return Err(AppendError::BadSignature {
                        key_id: events[i].key_id,
                    });
                }
                Ok((view, action, ok[i]))
            })
            .collect()
    }

    /// `Some` if `event_id` is taken: the original placement when the bytes are the same, an
    /// `EventIdConflict` when they are not.
    fn duplicate_of(
        &self,
        event_id: &str,
        hash: u64,
        body: &[u8],
    ) -> Result<Option<Result<Appended, AppendError>>, LedgerError> {
        let Some(entry) = self.find_event(event_id, hash)? else {
            return Ok(None);
        };
        let seq = entry.seq;
        if entry.body != body {
            return Ok(Some(Err(AppendError::EventIdConflict {
                event_id: event_id.to_string(),
                seq,
            })));
        }
        // The original may be staged and not yet durable: look among staged checkpoints too
        // (the caller waits for durability before acknowledging).
        let staged = self.staged_head.read().expect("head lock").size;
        let checkpoint = self.covering_checkpoint_within(seq, staged)?;
        Ok(Some(Ok(Appended {
            seq,
            entry_hash: entry.hash(),
            recorded_at: entry.recorded_at,
            prev_hash: entry.prev_hash,
            key_id: entry.key_id,
            signature: entry.signature,
            checkpoint_size: checkpoint.checkpoint.size,
            duplicate: true,
        })))
    }

    fn record_rules(
        &self,
        action: &RecordAction,
        key: &KeyRecord,
        keys: &HashMap<KeyId, KeyRecord>,
        new_keys: &HashMap<KeyId, KeyRecord>,
    ) -> Result<(), AppendError> {
        let needs_admin = |name: &'static str| {
            if key.has_role(ADMIN_ROLE) {
                Ok(())
            } else {
                Err(AppendError::RoleRequired {
                    key_id: key.key_id,
                    subject: key.subject.clone(),
                    role: ADMIN_ROLE,
                    action: name,
                })
            }
        };
        let lookup = |id: &KeyId| new_keys.get(id).or_else(|| keys.get(id));
        match action {
            RecordAction::None => Ok(()),
            RecordAction::Genesis(_) => unreachable!("check_body refuses a second genesis"),
            RecordAction::KeyEnrolled(grant) => {
                needs_admin("key_enrolled")?;
                match lookup(&grant.key_id()) {
                    Some(existing) => Err(AppendError::Malformed {
                        field: "key_enrolled.public_key",
                        rule: format!(
                            "key {} is already enrolled (seq {}); a key id is never reused",
                            existing.key_id.short(),
                            existing.enrolled_at
                        ),
                    }),
                    None => Ok(()),
                }
            }
            RecordAction::KeyRevoked(key_id) => {
                needs_admin("key_revoked")?;
                match lookup(key_id) {
                    None => Err(AppendError::Malformed {
                        field: "key_revoked.key_id",
                        rule: format!("key {} is not enrolled", key_id.short()),
                    }),
                    Some(k) if k.revoked_at.is_some() => Err(AppendError::Malformed {
                        field: "key_revoked.key_id",
                        rule: format!("key {} is already revoked", key_id.short()),
                    }),
                    // The key would be invalid at the very entry it signs.
                    Some(_) if *key_id == key.key_id => Err(AppendError::Malformed {
                        field: "key_revoked.key_id",
                        rule: format!(
                            "key {} cannot revoke itself; another admin key must sign it",
                            key_id.short()
                        ),
                    }),
                    Some(_) => Ok(()),
                }
            }
            RecordAction::ArtifactErased(_) => needs_admin("artifact_erased"),
            RecordAction::LedgerKeyRotated(handover) => {
                needs_admin("ledger_key_rotated")?;
                handover
                    .check(&self.genesis.ledger_id, self.checkpoint_key().as_bytes())
                    .map_err(|rule| AppendError::Malformed {
                        field: "ledger_key_rotated",
                        rule,
                    })?;
                match lookup(&KeyId::of_public_key(&handover.new_public_key)) {
                    Some(existing) => Err(AppendError::Malformed {
                        field: "ledger_key_rotated.new_public_key",
                        rule: format!(
                            "key {} is already known to this ledger (seq {}); a new ledger key \
                             is a key never used before",
                            existing.key_id.short(),
                            existing.enrolled_at
                        ),
                    }),
                    None => Ok(()),
                }
            }
        }
    }

    /// Only an artifact whose bytes are stored here, and not already erased (by an entry or
    /// earlier in this batch), can be erased: an erasure of nothing would be a record of an
    /// act that never happened.
    fn check_erasable(
        &self,
        hash: &ArtifactHash,
        erased_in_batch: &[ArtifactHash],
    ) -> Result<(), AppendError> {
        let state = if erased_in_batch.contains(hash) {
            None
        } else {
            Some(
                self.artifact_state(hash)
                    .map_err(|e| AppendError::Store(e.to_string()))?,
            )
        };
        let why = match state {
            Some(ArtifactState::Present) => return Ok(()),
            Some(ArtifactState::Erased(seq)) => format!("was already erased at seq {seq}"),
            Some(ArtifactState::Unknown) => "is not stored in this ledger".to_string(),
            None => "is already erased by an earlier event of this batch".to_string(),
        };
        Err(AppendError::NotErasable { hash: *hash, why })
    }

    /// Stores an artifact's bytes under their blake3 hash (durably) and returns the hash.
    pub fn put_artifact(&self, bytes: &[u8]) -> Result<ArtifactHash, LedgerError> {
        let hash = ArtifactHash::of(bytes);
        self.artifacts.insert(&hash.0, bytes)?;
        self.engine.flush()?;
        Ok(hash)
    }

    /// The bytes of an artifact, if present.
    pub fn get_artifact(&self, hash: &ArtifactHash) -> Result<Option<Vec<u8>>, LedgerError> {
        self.artifacts.get(&hash.0)
    }

    /// Whether an artifact is present, erased, or unknown.
    pub fn artifact_state(&self, hash: &ArtifactHash) -> Result<ArtifactState, LedgerError> {
        if let Some(seq) = self.records.get(&prefixed(ERASED, &hash.0))? {
            return Ok(ArtifactState::Erased(Seq(be_u64(&seq).unwrap_or(0))));
        }
        Ok(if self.artifacts.contains(&hash.0)? {
            ArtifactState::Present
        } else {
            ArtifactState::Unknown
        })
    }

    fn remove_artifacts(&self, hashes: &[ArtifactHash]) -> Result<(), LedgerError> {
        let mut batch = WriteBatch::default();
        for hash in hashes {
            batch.remove(hash.0);
        }
        self.artifacts.apply(batch)?;
        self.engine.flush()
    }

    /// Removes the bytes of artifacts whose erasure entry is committed (after a crash between
    /// the entry and the removal).
    fn finish_erasures(&self) -> Result<(), LedgerError> {
        let mut pending = Vec::new();
        for item in self.records.scan(KeyRange::prefix([ERASED])) {
            let (k, _) = item?;
            if let Some(hash) = ArtifactHash::from_slice(&k[1..]) {
                if self.artifacts.contains(&hash.0)? {
                    pending.push(hash);
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        self.remove_artifacts(&pending)
    }

    fn cached_nodes(&self) -> CachedNodes<'_> {
        CachedNodes {
            cache: &self.nodes,
            records: self.records.as_ref(),
        }
    }

    /// Entries written so far, durable or only staged.
    pub(crate) fn staged_size(&self) -> u64 {
        self.staged_head.read().expect("head lock").size
    }

    pub(crate) fn records_space(&self) -> &dyn Keyspace {
        self.records.as_ref()
    }

    /// Keeps witness cosignature lines (`lines`: one `— <name> <base64>` per line, as a
    /// witness returns them) for the stored checkpoint of `size` entries, beside its note, and
    /// makes them durable before returning. Lines already kept are not added twice. The ledger
    /// only checks their shape: whether a line verifies is for whoever trusts its witness
    /// ([`crate::WitnessVerifier::verify_note`] on [`Ledger::with_cosignatures`]'s note), and a
    /// caller should store only lines it verified. The ledger-signed note under `c` is never
    /// rewritten.
    pub fn add_cosignatures(&self, size: u64, lines: &str) -> Result<(), LedgerError> {
        if self.checkpoint_at(size)?.is_none() {
            return Err(LedgerError::OutOfRange(format!(
                "no stored checkpoint of size {size} to add cosignatures to"
            )));
        }
        let mut new = Vec::new();
        for line in lines.lines().filter(|l| !l.is_empty()) {
            new.push(SignatureLine::parse(line)?.to_line());
        }
        let _writing = self.cosignatures_lock.lock().expect("cosignatures lock");
        let mut kept = self
            .records
            .get(&cosignatures_key(size))?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        for line in &new {
            if !kept.lines().any(|l| format!("{l}\n") == *line) {
                kept.push_str(line);
            }
        }
        self.records
            .insert(&cosignatures_key(size), kept.as_bytes())?;
        self.engine.flush()
    }

    /// The witness cosignature lines kept for the checkpoint of `size` entries, each ending in
    /// a newline; empty when none was kept.
    pub fn cosignatures(&self, size: u64) -> Result<String, LedgerError> {
        match self.records.get(&cosignatures_key(size))? {
            None => Ok(String::new()),
            Some(v) => String::from_utf8(v).map_err(|_| LedgerError::Corrupt {
                seq: size.saturating_sub(1),
                what: format!("the cosignatures of checkpoint {size} are not UTF-8"),
            }),
        }
    }

    /// `checkpoint` with the cosignature lines kept for its size added as extra signature
    /// lines of its note (what readers are served; `SignedCheckpoint::verify` ignores them,
    /// `WitnessVerifier::verify_note` checks them). Unchanged when none was kept.
    pub fn with_cosignatures(
        &self,
        mut checkpoint: SignedCheckpoint,
    ) -> Result<SignedCheckpoint, LedgerError> {
        let lines = self.cosignatures(checkpoint.checkpoint.size)?;
        if !lines.is_empty() {
            checkpoint.note = add_cosignatures(&checkpoint.note, &lines)?;
        }
        Ok(checkpoint)
    }

    /// The largest checkpoint size with a kept cosignature line that `by` accepts (e.g.
    /// [`crate::WitnessVerifier::names`]), and that line. Scans the kept cosignatures from the
    /// largest size down: a ledger server learns from it where each witness stood before a
    /// restart.
    pub fn latest_cosignature(
        &self,
        by: impl Fn(&SignatureLine) -> bool,
    ) -> Result<Option<(u64, SignatureLine)>, LedgerError> {
        for item in self.records.scan_rev(KeyRange::inclusive(
            cosignatures_key(0),
            cosignatures_key(u64::MAX),
        )) {
            let (key, value) = item?;
            let size = be_u64(&key[1..]).unwrap_or(0);
            let text = String::from_utf8_lossy(&value);
            for line in text.lines() {
                if let Ok(parsed) = SignatureLine::parse(line) {
                    if by(&parsed) {
                        return Ok(Some((size, parsed)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Flushes everything to disk (appends already do; this is for derived keyspaces).
    pub fn flush(&self) -> Result<(), LedgerError> {
        self.engine.flush()
    }

    /// Rewrites the acknowledged-head file. A failure here costs only the check at the next
    /// open (the store itself is durable), so it does not fail the append.
    fn record_acknowledged(&self, head: &Head) {
        let (Some(file), Some(_)) = (&self.acknowledged, &self.signing_key) else {
            return;
        };
        let mut bytes = head.size.to_be_bytes().to_vec();
        bytes.extend_from_slice(&head.last_hash.0);
        let temporary = file.with_extension("new");
        if std::fs::write(&temporary, &bytes).is_ok() {
            let _ = std::fs::rename(&temporary, file);
        }
    }
}

/// The stored head and the Merkle frontier at its size.
fn read_head(records: &dyn Keyspace) -> Result<(Head, Frontier), LedgerError> {
    let head_bytes = records.get(HEAD)?.ok_or(LedgerError::Corrupt {
        seq: 0,
        what: "head record is missing".into(),
    })?;
    let corrupt_head = || LedgerError::Corrupt {
        seq: 0,
        what: "head record is damaged".into(),
    };
    if head_bytes.len() != 48 {
        return Err(corrupt_head());
    }
    let size = be_u64(&head_bytes[..8]).ok_or_else(corrupt_head)?;
    let last_hash = EntryHash::from_slice(&head_bytes[8..40]).ok_or_else(corrupt_head)?;
    let last_recorded_at = UnixMicros(i64::from_be_bytes(
        head_bytes[40..48].try_into().map_err(|_| corrupt_head())?,
    ));
    let frontier = Frontier::load(&StoredNodes(records), size)?;
    let head = Head {
        size,
        last_hash,
        last_recorded_at,
        root: frontier.root::<Blake3Hasher>(),
    };
    Ok((head, frontier))
}

/// Every key record of the key index.
fn read_keys(records: &dyn Keyspace) -> Result<HashMap<KeyId, KeyRecord>, LedgerError> {
    let mut keys = HashMap::new();
    for item in records.scan(KeyRange::prefix([KEY])) {
        let (k, v) = item?;
        let key_id = KeyId::from_slice(&k[1..]).ok_or_else(|| LedgerError::Corrupt {
            seq: 0,
            what: "key index entry has a bad key id".into(),
        })?;
        let record = KeyRecord::decode(key_id, &v).ok_or_else(|| LedgerError::Corrupt {
            seq: 0,
            what: format!("key index record for {key_id} is damaged"),
        })?;
        keys.insert(key_id, record);
    }
    Ok(keys)
}

/// Refuses a store of `size_stored` entries that ends before the head it last acknowledged (see
/// [`ACKNOWLEDGED_FILE`]).
fn check_acknowledged(file: &Path, size_stored: u64) -> Result<(), LedgerError> {
    let folder = file.parent().unwrap_or(file);
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        // A store written before the file existed, or never appended to: nothing to compare.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(LedgerError::Damaged {
                path: folder.to_path_buf(),
                detail: format!("the acknowledged-head file cannot be read: {e}"),
            })
        }
    };
    let damaged = |detail: String| LedgerError::Damaged {
        path: folder.to_path_buf(),
        detail,
    };
    // The last entry's hash (bytes 8..40) is kept for outside tools; a store holding the
    // acknowledged entries but different ones is tampering, not sled's recovery, and `verify`
    // names the first entry that differs.
    let (Some(size), 40) = (bytes.get(..8).and_then(be_u64), bytes.len()) else {
        return Err(damaged(format!(
            "the acknowledged-head file holds {} bytes, not 40",
            bytes.len()
        )));
    };
    if size > size_stored {
        return Err(LedgerError::Corrupt {
            seq: size_stored,
            what: format!(
                "the store ends after {} entries, but {size} had been acknowledged: sled \
                 dropped the rest of its log as if it had been torn, which means a file was \
                 damaged; restore it from a backup (`isms restore`) or a mirror, or copy what still verifies with `isms salvage`",
                size_stored
            ),
        });
    }
    Ok(())
}

/// The event-id index from its blocks. A ledger written before the index was kept in blocks,
/// or one whose blocks do not tile `0..size`, has its index rebuilt from the entries (and the
/// blocks rewritten); an entry that cannot be read is skipped here and left to `verify` to
/// name.
fn load_event_index(records: &dyn Keyspace, size: u64) -> Result<EventIndex, LedgerError> {
    let mut index = EventIndex::default();
    for item in records.scan(KeyRange::prefix([EVENT_INDEX])) {
        let (key, block) = item?;
        match be_u64(&key[1..]) {
            Some(first) if index.extend_from_block(first, &block) => {}
            _ => break,
        }
    }
    if index.len() == size {
        return Ok(index);
    }
    let mut batch = WriteBatch::default();
    for prefix in [EVENT_INDEX, LEGACY_EVENT_ID] {
        for item in records.scan(KeyRange::prefix([prefix])) {
            batch.remove(item?.0);
        }
    }
    let mut index = EventIndex::default();
    let mut cursor = entry_blocks::Cursor::default();
    const REBUILD_BLOCK: u64 = 4096;
    for first in (0..size).step_by(REBUILD_BLOCK as usize) {
        let mut hashes = Vec::with_capacity(REBUILD_BLOCK as usize);
        for seq in first..size.min(first + REBUILD_BLOCK) {
            let id = cursor
                .read(records, seq)?
                .and_then(|bytes| Entry::decode(&bytes).ok())
                .and_then(|entry| event_index::event_id_of(&entry.body));
            // An unreadable entry still takes its place, so later seqs stay where they are.
            hashes.push(id.map_or(0, |id| event_index::id_hash(&id)));
        }
        batch.insert(event_index_key(first), event_index::encode_block(&hashes));
        index.extend(&hashes);
    }
    records.apply(batch)?;
    Ok(index)
}

/// The keys the genesis makes valid: the ledger key (it signs the genesis itself, holds no
/// role, and signs nothing else) and the first admins.
pub(crate) fn genesis_keys(genesis: &Genesis) -> Vec<KeyRecord> {
    let mut out = vec![KeyRecord {
        key_id: KeyId::of_public_key(&genesis.ledger_public_key),
        public_key: genesis.ledger_public_key,
        subject: genesis.origin.clone(),
        roles: Vec::new(),
        enrolled_at: Seq(0),
        revoked_at: Some(Seq(1)),
    }];
    out.extend(genesis.admins.iter().map(|a| a.record(Seq(0))));
    out
}

/// The body of a genesis entry.
pub fn genesis_body(
    ledger_id: &LedgerId,
    name: &str,
    ledger_key: &VerifyingKey,
    admins: &[KeyGrant],
    now: UnixMicros,
) -> Vec<u8> {
    EnvelopeView {
        ledger_id: ledger_id.0.to_vec(),
        event_id: "genesis".into(),
        effective_at_us: now.0,
        client_time_us: now.0,
        expected_version: None,
        artifacts: Vec::new(),
        genesis: Some(GenesisView {
            origin: origin_of(ledger_id),
            ledger_public_key: ledger_key.as_bytes().to_vec(),
            admins: admins.iter().map(KeyGrant::to_view).collect(),
            name: name.to_string(),
        }),
        key_enrolled: None,
        key_revoked: None,
        artifact_erased: None,
        ledger_key_rotated: None,
    }
    .encode_to_vec()
}

/// Decodes and checks entry 0.
pub(crate) fn decode_genesis(entry: &Entry) -> Result<Genesis, LedgerError> {
    let corrupt = |what: String| LedgerError::Corrupt { seq: 0, what };
    let view = EnvelopeView::decode(entry.body.as_slice())
        .map_err(|e| corrupt(format!("genesis body does not decode: {e}")))?;
    rules::check_wire(&entry.body).map_err(|e| corrupt(e.to_string()))?;
    let RecordAction::Genesis(genesis) =
        rules::record_action(&view).map_err(|e| corrupt(e.to_string()))?
    else {
        return Err(corrupt("entry 0 is not a genesis".into()));
    };
    if genesis.origin != origin_of(&genesis.ledger_id) {
        return Err(corrupt(format!(
            "genesis origin {:?} does not match its ledger id",
            genesis.origin
        )));
    }
    let key_id = KeyId::of_public_key(&genesis.ledger_public_key);
    if entry.key_id != key_id
        || !sig::verify_one(&sig::Item {
            public_key: &genesis.ledger_public_key,
            signature: &entry.signature,
            body: &entry.body,
        })
    {
        return Err(corrupt(
            "genesis is not signed by the ledger key it names".into(),
        ));
    }
    Ok(genesis)
}

/// The item to check for `event` signed by `public_key`.
pub(crate) fn sig_item<'a>(public_key: &'a [u8; 32], event: &'a SignedEvent) -> sig::Item<'a> {
    sig::Item {
        public_key,
        signature: &event.signature,
        body: &event.body,
    }
}

/// The ledger size that must be durable before `results` are acknowledged.
fn durable_size_of(results: &[Result<Appended, AppendError>]) -> u64 {
    results
        .iter()
        .flatten()
        .map(|a| a.seq.0 + 1)
        .max()
        .unwrap_or(0)
}

/// Ends an iterator after the first error it yields: sled's iterators over a damaged page
/// can return the same error on every call, and a caller that collects or retries would
/// then loop without end.
fn until_first_error<T, E>(
    iter: impl Iterator<Item = Result<T, E>>,
) -> impl Iterator<Item = Result<T, E>> {
    let mut failed = false;
    iter.map_while(move |item| {
        if failed {
            return None;
        }
        failed = item.is_err();
        Some(item)
    })
}

#[cfg(test)]
mod until_first_error_tests {
    use super::until_first_error;

    #[test]
    fn an_iterator_that_repeats_an_error_forever_yields_it_once() {
        let endless = std::iter::once(Ok(1)).chain(std::iter::repeat(Err("damaged page")));
        let items: Vec<Result<i32, &str>> = until_first_error(endless).take(10).collect();
        assert_eq!(items, vec![Ok(1), Err("damaged page")]);
    }
}

#[cfg(test)]
mod human_duration_tests {
    use super::human_duration;

    #[test]
    fn durations_are_given_in_the_unit_a_person_reads() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(300), "5 minutes");
        assert_eq!(human_duration(3 * 3_600), "3 hours");
        assert_eq!(human_duration(2_274_626_925), "26326 days");
    }
}
