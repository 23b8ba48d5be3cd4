//! Where the ledger's bytes live: one small ordered key-value interface and the engines
//! behind it.
//!
//! Everything the ledger stores — entries, node blocks, checkpoints, event-index blocks,
//! keys, erasure markers, cosignatures, the head, artifacts and the derived projection
//! snapshots — is a `(key, value)` pair in a named [`Keyspace`], under the keys
//! docs/FORMAT.md gives byte for byte. An engine only keeps those pairs in key order and
//! writes a [`WriteBatch`] all or nothing, so the formats, proofs and verification are the
//! same on every engine by construction: the engine never sees a record's meaning.
//!
//! - [`SledEngine`]: a sled folder on local disk (the default). A batch is in sled's log when
//!   `apply` returns and durable after [`Engine::flush`].
//! - [`crate::postgres::PostgresEngine`]: one PostgreSQL database holding many ledgers. A
//!   batch is one transaction, durable when `apply` returns; the writer's batches are fenced
//!   by its lease term.

use std::fmt::Debug;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::LedgerError;

/// One stored pair: key, value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// The pairs of a range, in key order (or reverse order for [`Keyspace::scan_rev`]). The
/// iterator may read lazily, page by page.
pub type Pairs<'a> = Box<dyn Iterator<Item = Result<Pair, LedgerError>> + Send + 'a>;

/// A range of keys: `start` (inclusive or exclusive) to `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Where the range starts.
    pub start: Bound<Vec<u8>>,
    /// Where the range ends.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// `start..end`.
    pub fn half_open(start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Self {
        KeyRange {
            start: Bound::Included(start.as_ref().to_vec()),
            end: Bound::Excluded(end.as_ref().to_vec()),
        }
    }

    /// `start..=end`.
    pub fn inclusive(start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Self {
        KeyRange {
            start: Bound::Included(start.as_ref().to_vec()),
            end: Bound::Included(end.as_ref().to_vec()),
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: impl AsRef<[u8]>) -> Self {
        let prefix = prefix.as_ref().to_vec();
        KeyRange {
            end: match prefix_successor(&prefix) {
                Some(next) => Bound::Excluded(next),
                None => Bound::Unbounded,
            },
            start: Bound::Included(prefix),
        }
    }

    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key up to and including `end`.
    pub fn up_to(end: impl AsRef<[u8]>) -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Included(end.as_ref().to_vec()),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// The first bytes of `bytes` in hex, for messages.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(16)];
    let mut out = hex::encode(shown);
    if bytes.len() > shown.len() {
        out.push('…');
    }
    out
}

/// The smallest key greater than every key that starts with `prefix`, if there is one.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (nothing happens when it is absent).
    Delete(Vec<u8>),
}

/// Writes applied all or nothing, in order (a later write to the same key wins), and only if
/// every precondition holds when they are applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    writes: Vec<Write>,
    expected: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// Applies the batch only if `key` holds exactly `value` (`None`: is absent) at that
    /// moment; otherwise [`Keyspace::apply`] writes nothing and fails with
    /// [`LedgerError::Conflict`]. The ledger's writer expects the head it extends, so a batch
    /// can never overwrite one it did not know was committed (after a commit whose answer was
    /// lost, or by another server).
    pub fn expect(&mut self, key: impl AsRef<[u8]>, value: Option<Vec<u8>>) {
        self.expected.push((key.as_ref().to_vec(), value));
    }

    /// The preconditions, in order.
    pub fn expectations(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.expected
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        self.writes
            .push(Write::Put(key.as_ref().to_vec(), value.into()));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.writes.push(Write::Delete(key.as_ref().to_vec()));
    }

    /// The writes, in order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// Takes the writes.
    pub fn into_writes(self) -> Vec<Write> {
        self.writes
    }

    /// Checks the preconditions against `current` (the value a key holds now).
    pub fn check_expectations(
        &self,
        mut current: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, LedgerError>,
    ) -> Result<(), LedgerError> {
        for (key, expected) in &self.expected {
            let found = current(key)?;
            if found != *expected {
                return Err(LedgerError::Conflict(format!(
                    "key {} holds {}, but the batch expected {}",
                    hex_prefix(key),
                    found.as_deref().map_or("nothing".into(), hex_prefix),
                    expected.as_deref().map_or("nothing".into(), hex_prefix),
                )));
            }
        }
        Ok(())
    }

    /// The number of writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether there is no write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The last write to each key, in key order: what the batch leaves behind.
    pub fn last_per_key(self) -> std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let mut out = std::collections::BTreeMap::new();
        for write in self.writes {
            match write {
                Write::Put(k, v) => out.insert(k, Some(v)),
                Write::Delete(k) => out.insert(k, None),
            };
        }
        out
    }
}

/// A named, ordered set of pairs in an engine (`records`, `artifacts`, `derived/<name>`).
/// Keys compare as unsigned bytes, shorter first on a common prefix.
pub trait Keyspace: Send + Sync + Debug {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;

    /// The pairs in `range`, smallest key first.
    fn scan(&self, range: KeyRange) -> Pairs<'_>;

    /// The pairs in `range`, largest key first.
    fn scan_rev(&self, range: KeyRange) -> Pairs<'_>;

    /// Applies `batch` all or nothing, if its preconditions ([`WriteBatch::expect`]) hold.
    /// On an engine whose writes are not durable at once (sled), they become durable with
    /// [`Engine::flush`].
    fn apply(&self, batch: WriteBatch) -> Result<(), LedgerError>;

    /// The pair with the smallest key in `range`.
    fn first(&self, range: KeyRange) -> Result<Option<Pair>, LedgerError> {
        self.scan(range).next().transpose()
    }

    /// The pair with the largest key in `range`.
    fn last(&self, range: KeyRange) -> Result<Option<Pair>, LedgerError> {
        self.scan_rev(range).next().transpose()
    }

    /// Whether `key` is present.
    fn contains(&self, key: &[u8]) -> Result<bool, LedgerError> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets one key.
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        let mut batch = WriteBatch::default();
        batch.insert(key, value);
        self.apply(batch)
    }

    /// Removes one key.
    fn remove(&self, key: &[u8]) -> Result<(), LedgerError> {
        let mut batch = WriteBatch::default();
        batch.remove(key);
        self.apply(batch)
    }
}

/// A keyspace shared between the ledger and its readers.
pub type Space = Arc<dyn Keyspace>;

/// A storage engine: the keyspaces of one ledger.
pub trait Engine: Send + Sync + Debug {
    /// A short name for messages and metrics: `sled`, `postgres`.
    fn kind(&self) -> &'static str;

    /// The keyspace called `name`, created empty when it does not exist yet.
    fn keyspace(&self, name: &str) -> Result<Space, LedgerError>;

    /// Makes every batch applied so far durable (a no-op where `apply` already is).
    fn flush(&self) -> Result<(), LedgerError>;

    /// Bytes the ledger takes in the engine, as the engine counts them.
    fn size_bytes(&self) -> Result<u64, LedgerError>;

    /// The local folder of the store, for an engine that has one (sled). The ledger keeps its
    /// acknowledged-head file there.
    fn folder(&self) -> Option<&Path> {
        None
    }

    /// Whether a batch is durable as soon as [`Keyspace::apply`] returns.
    fn durable_on_apply(&self) -> bool;

    /// Why this engine may no longer write, when another writer took its place (a
    /// PostgreSQL writer lease taken over); `None` while it may.
    fn lost_writer(&self) -> Option<String> {
        None
    }
}

/// A ledger store in a sled folder.
#[derive(Debug)]
pub struct SledEngine {
    db: sled::Db,
    path: PathBuf,
}

impl SledEngine {
    /// Opens (or creates) the sled store in `path`. When a `Ledger` in this process was just
    /// dropped, sled's background flusher may hold the folder's file lock for a few
    /// milliseconds more, so a lock conflict is retried for up to two seconds before it is
    /// reported.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledEngine, LedgerError> {
        let mut attempts = 0;
        loop {
            let opened = sled::Config::new()
                .path(path)
                .cache_capacity(cache_bytes)
                .mode(sled::Mode::HighThroughput)
                .open();
            match opened {
                Err(sled::Error::Io(e))
                    if attempts < 200 && e.to_string().contains("acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => {
                    return Ok(SledEngine {
                        db: other?,
                        path: path.to_path_buf(),
                    })
                }
            }
        }
    }

    /// The sled database (for tools that inspect or damage a store on purpose).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }
}

impl Engine for SledEngine {
    fn kind(&self) -> &'static str {
        "sled"
    }

    fn keyspace(&self, name: &str) -> Result<Space, LedgerError> {
        Ok(Arc::new(SledSpace(self.db.open_tree(name)?)))
    }

    fn flush(&self) -> Result<(), LedgerError> {
        self.db.flush()?;
        Ok(())
    }

    fn size_bytes(&self) -> Result<u64, LedgerError> {
        Ok(self.db.size_on_disk()?)
    }

    fn folder(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn durable_on_apply(&self) -> bool {
        false
    }
}

/// A sled tree as a keyspace.
#[derive(Debug, Clone)]
pub struct SledSpace(pub sled::Tree);

fn sled_range(tree: &sled::Tree, range: KeyRange) -> sled::Iter {
    tree.range::<Vec<u8>, _>((range.start, range.end))
}

fn sled_pair(item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<Pair, LedgerError> {
    let (k, v) = item?;
    Ok((k.to_vec(), v.to_vec()))
}

impl Keyspace for SledSpace {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.0.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, range: KeyRange) -> Pairs<'_> {
        if empty_range(&range) {
            return Box::new(std::iter::empty());
        }
        Box::new(sled_range(&self.0, range).map(sled_pair))
    }

    fn scan_rev(&self, range: KeyRange) -> Pairs<'_> {
        if empty_range(&range) {
            return Box::new(std::iter::empty());
        }
        Box::new(sled_range(&self.0, range).rev().map(sled_pair))
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), LedgerError> {
        // One process holds a sled folder (its lock), and the ledger's writer lock orders its
        // batches, so checking before applying is not racing another writer.
        batch.check_expectations(|key| self.get(key))?;
        let mut sled_batch = sled::Batch::default();
        for write in batch.into_writes() {
            match write {
                Write::Put(k, v) => sled_batch.insert(k, v),
                Write::Delete(k) => sled_batch.remove(k),
            }
        }
        self.0.apply_batch(sled_batch)?;
        Ok(())
    }

    fn contains(&self, key: &[u8]) -> Result<bool, LedgerError> {
        Ok(self.0.contains_key(key)?)
    }
}

/// Whether `range` holds no key at all by its bounds (sled panics on a range whose start is
/// after its end).
pub(crate) fn empty_range(range: &KeyRange) -> bool {
    match (&range.start, &range.end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_that_start_with_the_prefix() {
        let range = KeyRange::prefix([b'c']);
        assert!(range.contains(b"c"));
        assert!(range.contains(b"c\xff\xff"));
        assert!(!range.contains(b"d"));
        assert!(!range.contains(b"b\xff"));
    }

    #[test]
    fn a_prefix_of_all_ff_bytes_runs_to_the_end_of_the_keyspace() {
        let range = KeyRange::prefix([0xff, 0xff]);
        assert_eq!(range.end, Bound::Unbounded);
        assert!(range.contains(&[0xff, 0xff, 0x00]));
    }

    #[test]
    fn the_last_write_to_a_key_in_a_batch_wins() {
        let mut batch = WriteBatch::default();
        batch.insert(b"k", b"1".to_vec());
        batch.remove(b"k");
        batch.insert(b"j", b"2".to_vec());
        let last = batch.last_per_key();
        assert_eq!(last.get(b"k".as_slice()), Some(&None));
        assert_eq!(last.get(b"j".as_slice()), Some(&Some(b"2".to_vec())));
    }

    #[test]
    fn a_batch_whose_expectation_fails_names_the_key_and_both_values() {
        let mut batch = WriteBatch::default();
        batch.expect(b"h", Some(vec![1]));
        let err = batch
            .check_expectations(|_| Ok(Some(vec![2])))
            .expect_err("the value differs");
        let text = err.to_string();
        assert!(
            text.contains("68") && text.contains("01") && text.contains("02"),
            "{text}"
        );
    }
}
