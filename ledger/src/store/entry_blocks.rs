//! Entries stored several to a record: entry blocks (layout 3, docs/FORMAT.md, "Entry
//! blocks").
//!
//! A batch of entries is written as blocks of consecutive entries under `b` + the first
//! entry's seq, each holding at most [`MAX_ENTRIES`] entries and, past its first, at most
//! [`MAX_BYTES`] of them. Keyed one record per entry, a store of a million entries spent more
//! time in sled's insert than in every check of a replicated batch together; blocks of 64
//! take a fiftieth of the records. The entries' own bytes are unchanged: hashes, proofs,
//! exports and receipts do not see the difference.
//!
//! Stores written before layout 3 hold their entries one per record (`e` + seq). Such a store
//! keeps them, and a writer continues it with blocks, so every entry below a store's first
//! block is a single record and every entry from it on is in a block. Every read here looks in
//! both places.
//!
//! The editing functions at the end ([`replace`], [`remove`], [`insert`]) change one stored
//! entry in place. The ledger never uses them: they are for repair tools and for tests that
//! damage a store on purpose.

use super::{be_u64, entry_key, LAYOUT, LAYOUT_VERSION};
use crate::engine::{KeyRange, Keyspace, Pair, WriteBatch};
use crate::LedgerError;

/// The first byte of an entry block's key.
pub const ENTRY_BLOCK: u8 = b'b';
/// The most entries one block holds.
pub const MAX_ENTRIES: usize = 64;
/// A block takes no further entry once its entries' bytes reach this many.
pub const MAX_BYTES: usize = 64 * 1024;

/// The key of the block whose first entry is `first_seq`.
pub fn block_key(first_seq: u64) -> [u8; 9] {
    let mut key = [ENTRY_BLOCK; 9];
    key[1..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

/// A block's bytes: the entry count `n` (u32 BE), then `n` end offsets (u32 BE, each
/// relative to the start of the entry bytes), then the entries' bytes one after another.
pub fn encode<E: AsRef<[u8]>>(entries: &[E]) -> Vec<u8> {
    let data: usize = entries.iter().map(|e| e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + 4 * entries.len() + data);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut end = 0u32;
    for entry in entries {
        end += entry.as_ref().len() as u32;
        out.extend_from_slice(&end.to_be_bytes());
    }
    for entry in entries {
        out.extend_from_slice(entry.as_ref());
    }
    out
}

/// A decoded block: its entries, found without copying.
#[derive(Debug)]
pub struct Block<'a> {
    first: u64,
    ends: &'a [u8],
    data: &'a [u8],
}

impl<'a> Block<'a> {
    /// Reads the block stored under `first` (its key's seq). A block whose count, offsets or
    /// length do not agree is corrupt at `first`.
    pub fn decode(first: u64, bytes: &'a [u8]) -> Result<Block<'a>, LedgerError> {
        let bad = |what: String| LedgerError::Corrupt {
            seq: first,
            what: format!("the entry block at seq {first} {what}"),
        };
        let count = bytes
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| bad("is shorter than its count".into()))?;
        if count == 0 || count > MAX_ENTRIES {
            return Err(bad(format!(
                "says it holds {count} entries (a block holds 1 to {MAX_ENTRIES})"
            )));
        }
        let ends = bytes
            .get(4..4 + 4 * count)
            .ok_or_else(|| bad(format!("is too short for the offsets of {count} entries")))?;
        let data = &bytes[4 + 4 * count..];
        let mut previous = 0usize;
        for i in 0..count {
            let end = offset(ends, i);
            if end < previous || end > data.len() {
                return Err(bad(format!(
                    "gives entry {} an end ({end}) outside its {} bytes",
                    first + i as u64,
                    data.len()
                )));
            }
            previous = end;
        }
        if previous != data.len() {
            return Err(bad(format!(
                "has {} bytes after its last entry",
                data.len() - previous
            )));
        }
        Ok(Block { first, ends, data })
    }

    /// The seq of its first entry.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    /// Whether it holds none (a decoded block never does).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The seq after its last entry.
    pub fn end(&self) -> u64 {
        self.first + self.len() as u64
    }

    /// The encoded entry at `seq`, if the block holds it.
    pub fn get(&self, seq: u64) -> Option<&'a [u8]> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        if i >= self.len() {
            return None;
        }
        let start = if i == 0 { 0 } else { offset(self.ends, i - 1) };
        Some(&self.data[start..offset(self.ends, i)])
    }

    /// Its entries with their seqs, in order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &'a [u8])> + '_ {
        (self.first..self.end()).map(|seq| (seq, self.get(seq).expect("within the block")))
    }
}

fn offset(ends: &[u8], i: usize) -> usize {
    u32::from_be_bytes(ends[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize
}

/// Puts `entries`, the consecutive entries from `first_seq` on, into `batch` as blocks, and
/// marks the store layout 3 in the same batch (a build that knows no blocks must refuse it).
pub fn put<E: AsRef<[u8]>>(batch: &mut WriteBatch, first_seq: u64, entries: &[E]) {
    if entries.is_empty() {
        return;
    }
    let mut start = 0;
    while start < entries.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < entries.len()
            && end - start < MAX_ENTRIES
            && (end == start || bytes < MAX_BYTES)
        {
            bytes += entries[end].as_ref().len();
            end += 1;
        }
        batch.insert(
            block_key(first_seq + start as u64),
            encode(&entries[start..end]),
        );
        start = end;
    }
    batch.insert(LAYOUT, LAYOUT_VERSION.to_be_bytes());
}

/// The stored block that would hold `seq` (the one with the greatest first seq at or below
/// it): `(first seq, bytes)`. It holds `seq` only if it is long enough.
fn block_at_or_before(
    records: &dyn Keyspace,
    seq: u64,
) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
    records
        .last(KeyRange::inclusive(block_key(0), block_key(seq)))?
        .map(|pair| keyed(pair, seq))
        .transpose()
}

/// `(seq, value)` of a stored entry or block, whose key is its tag and a seq (u64 BE). A key
/// of another length is corrupt at `near`, the seq the read was about.
fn keyed((key, value): Pair, near: u64) -> Result<(u64, Vec<u8>), LedgerError> {
    let seq = key
        .get(1..)
        .and_then(be_u64)
        .ok_or_else(|| LedgerError::Corrupt {
            seq: near,
            what: format!(
                "the stored key {} is not a tag and an 8-byte seq",
                hex::encode(&key)
            ),
        })?;
    Ok((seq, value))
}

/// The encoded entry at `seq`, from its block or its single record.
pub fn read(records: &dyn Keyspace, seq: u64) -> Result<Option<Vec<u8>>, LedgerError> {
    Cursor::default().read(records, seq)
}

/// Reads entries one by one, keeping the last block it decoded, so that reading entries in
/// order costs one block read per block.
#[derive(Debug, Default)]
pub struct Cursor {
    block: Option<(u64, Vec<u8>)>,
}

impl Cursor {
    /// The encoded entry at `seq`, like [`read`].
    pub fn read(
        &mut self,
        records: &dyn Keyspace,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        if let Some(found) = self.in_block(seq)? {
            return Ok(Some(found));
        }
        if let Some(block) = block_at_or_before(records, seq)? {
            self.block = Some(block);
            if let Some(found) = self.in_block(seq)? {
                return Ok(Some(found));
            }
        }
        records.get(&entry_key(seq))
    }

    fn in_block(&self, seq: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        match &self.block {
            Some((first, bytes)) if *first <= seq => {
                Ok(Block::decode(*first, bytes)?.get(seq).map(<[u8]>::to_vec))
            }
            _ => Ok(None),
        }
    }
}

/// The stored entries with seq in `start..end`, in order, as `(seq, encoded entry)`: the
/// single records first, then the blocks. Nothing is said about gaps: the caller checks that
/// seqs follow each other. After an error the iterator ends.
pub fn scan(
    records: &dyn Keyspace,
    start: u64,
    end: u64,
) -> impl Iterator<Item = Result<(u64, Vec<u8>), LedgerError>> + '_ {
    let singles = records
        .scan(KeyRange::half_open(entry_key(start), entry_key(end)))
        .map(move |item| item.and_then(|pair| keyed(pair, start)));
    // The block holding `start` begins at or before it; every later one begins inside.
    let blocks = (start < end)
        .then(|| {
            let holding_start = block_at_or_before(records, start).transpose();
            let later = records
                .scan(KeyRange::half_open(
                    block_key(start.saturating_add(1)),
                    block_key(end),
                ))
                .map(move |item| item.and_then(|pair| keyed(pair, start)));
            holding_start.into_iter().chain(later)
        })
        .into_iter()
        .flatten();
    let from_blocks = blocks.flat_map(move |item| {
        let entries: Vec<Result<(u64, Vec<u8>), LedgerError>> = match item {
            Err(e) => vec![Err(e)],
            Ok((first, bytes)) => match Block::decode(first, &bytes) {
                Err(e) => vec![Err(e)],
                Ok(block) => block
                    .entries()
                    .filter(|(seq, _)| (start..end).contains(seq))
                    .map(|(seq, raw)| Ok((seq, raw.to_vec())))
                    .collect(),
            },
        };
        entries
    });
    let mut failed = false;
    singles.chain(from_blocks).take_while(move |item| {
        let go_on = !failed;
        failed |= item.is_err();
        go_on
    })
}

/// The smallest seq at or after `seq` that a stored entry has, if any.
pub fn first_at_or_after(records: &dyn Keyspace, seq: u64) -> Result<Option<u64>, LedgerError> {
    if let Some(pair) = records.first(KeyRange::inclusive(entry_key(seq), entry_key(u64::MAX)))? {
        return keyed(pair, seq).map(|(found, _)| Some(found));
    }
    if let Some((first, bytes)) = block_at_or_before(records, seq)? {
        if Block::decode(first, &bytes).is_ok_and(|block| block.end() > seq) {
            return Ok(Some(seq));
        }
    }
    records
        .first(KeyRange::inclusive(
            block_key(seq.saturating_add(1)),
            block_key(u64::MAX),
        ))?
        .map(|pair| keyed(pair, seq).map(|(found, _)| found))
        .transpose()
}

/// Where the entry at `seq` is stored: its block (first seq, bytes) or its single record.
enum Place {
    Block(u64, Vec<u8>),
    Single,
    Nowhere,
}

fn place(records: &dyn Keyspace, seq: u64) -> Result<Place, LedgerError> {
    if let Some((first, bytes)) = block_at_or_before(records, seq)? {
        if Block::decode(first, &bytes)?.get(seq).is_some() {
            return Ok(Place::Block(first, bytes));
        }
    }
    Ok(if records.contains(&entry_key(seq))? {
        Place::Single
    } else {
        Place::Nowhere
    })
}

/// Rewrites the stored entry at `seq` with `raw` (for repair tools and tests that damage a
/// store on purpose). An entry not stored is [`LedgerError::OutOfRange`].
pub fn replace(records: &dyn Keyspace, seq: u64, raw: &[u8]) -> Result<(), LedgerError> {
    match place(records, seq)? {
        Place::Block(first, bytes) => {
            let block = Block::decode(first, &bytes)?;
            let entries: Vec<&[u8]> = block
                .entries()
                .map(|(at, old)| if at == seq { raw } else { old })
                .collect();
            records.insert(&block_key(first), &encode(&entries))
        }
        Place::Single => records.insert(&entry_key(seq), raw),
        Place::Nowhere => Err(not_stored(seq)),
    }
}

/// Removes the stored entry at `seq`, leaving the others where they are (a block is split
/// around it). An entry not stored is [`LedgerError::OutOfRange`].
pub fn remove(records: &dyn Keyspace, seq: u64) -> Result<(), LedgerError> {
    match place(records, seq)? {
        Place::Block(first, bytes) => {
            let block = Block::decode(first, &bytes)?;
            let before: Vec<&[u8]> = block
                .entries()
                .filter(|(at, _)| *at < seq)
                .map(|(_, e)| e)
                .collect();
            let after: Vec<&[u8]> = block
                .entries()
                .filter(|(at, _)| *at > seq)
                .map(|(_, e)| e)
                .collect();
            let mut batch = WriteBatch::default();
            batch.remove(block_key(first));
            if !before.is_empty() {
                batch.insert(block_key(first), encode(&before));
            }
            if !after.is_empty() {
                batch.insert(block_key(seq + 1), encode(&after));
            }
            records.apply(batch)
        }
        Place::Single => records.remove(&entry_key(seq)),
        Place::Nowhere => Err(not_stored(seq)),
    }
}

/// Stores `raw` as the entry at `seq`: in place if one is stored there, else as a block of
/// its own (for repair tools and tests).
pub fn insert(records: &dyn Keyspace, seq: u64, raw: &[u8]) -> Result<(), LedgerError> {
    match place(records, seq)? {
        Place::Nowhere => records.insert(&block_key(seq), &encode(&[raw])),
        _ => replace(records, seq, raw),
    }
}

fn not_stored(seq: u64) -> LedgerError {
    LedgerError::OutOfRange(format!("no entry {seq} is stored"))
}
