//! The event-id index: which seq holds each event id, for idempotency and lookups.
//!
//! It is derived data, kept in memory as a map from a 64-bit hash of the event id to the seq,
//! and persisted as one block per append batch (`j` + first seq → the batch's hashes, 8 bytes
//! each, in seq order) inside the batch's atomic write. One insert per batch instead of one
//! per entry is what lets a batch of 1,000 reach sled in half the time, and a lookup costs a
//! hash and a probe instead of a sled read.
//!
//! A hash names candidates, never an answer: the caller reads the entry at each candidate seq
//! and compares the event id itself, so two ids that share a hash (possible: an adversary can
//! find 64-bit collisions) are both found, through the overflow list.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes per event in a persisted block.
pub(crate) const BLOCK_RECORD: usize = 8;

/// The key of a map that is already a uniformly distributed hash: used as is.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; anything else is folded in for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type U64Map<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

/// The in-memory index.
#[derive(Default)]
pub(crate) struct EventIndex {
    /// The first seq seen with each hash.
    first: U64Map<u64>,
    /// Later seqs whose event ids share a hash with an earlier one (in practice empty).
    more: U64Map<Vec<u64>>,
    /// Entries indexed: seqs `0..len` are covered.
    len: u64,
}

impl std::fmt::Debug for EventIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventIndex")
            .field("len", &self.len)
            .field("collisions", &self.more.len())
            .finish()
    }
}

/// The index's hash of an event id.
/// blake3 keyed with a fixed key (it separates this use of blake3 from every other; it is no
/// secret, and a collision only costs one more entry read).
pub(crate) fn id_hash(event_id: &str) -> u64 {
    const KEY: &[u8; 32] = b"isms-ledger/v1/event-id-index\0\0\0";
    let bytes = blake3::keyed_hash(KEY, event_id.as_bytes());
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

impl EventIndex {
    /// How many entries (from seq 0) the index covers.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Seqs whose event id hashes to `hash`, oldest first. The caller checks each one.
    pub(crate) fn candidates(&self, hash: u64) -> impl Iterator<Item = u64> + '_ {
        let first = self.first.get(&hash).copied();
        let more = first
            .and_then(|_| self.more.get(&hash))
            .into_iter()
            .flatten()
            .copied();
        first.into_iter().chain(more)
    }

    /// Indexes the next entries: `hashes[i]` is the event id hash of seq `self.len() + i`.
    pub(crate) fn extend(&mut self, hashes: &[u64]) {
        self.first.reserve(hashes.len());
        for &hash in hashes {
            let seq = self.len;
            match self.first.entry(hash) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(seq);
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    self.more.entry(hash).or_default().push(seq);
                }
            }
            self.len += 1;
        }
    }

    /// Indexes a persisted block whose first seq is `first`. Only the block that continues
    /// the index is taken; `false` means it does not (a gap or an overlap) or is malformed.
    pub(crate) fn extend_from_block(&mut self, first: u64, block: &[u8]) -> bool {
        if first != self.len || block.len() % BLOCK_RECORD != 0 {
            return false;
        }
        let hashes: Vec<u64> = block
            .chunks_exact(BLOCK_RECORD)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        self.extend(&hashes);
        true
    }
}

/// The persisted form of a batch's hashes.
pub(crate) fn encode_block(hashes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hashes.len() * BLOCK_RECORD);
    for h in hashes {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// The event id of a stored body (only field 2 is decoded; the rest is skipped).
pub(crate) fn event_id_of(body: &[u8]) -> Option<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct EventIdOnly {
        #[prost(string, tag = "2")]
        event_id: String,
    }
    prost::Message::decode(body)
        .ok()
        .map(|m: EventIdOnly| m.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_hashes_keep_every_seq_in_order() {
        let mut index = EventIndex::default();
        index.extend(&[7, 9, 7, 7]);
        assert_eq!(index.candidates(7).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(index.candidates(9).collect::<Vec<_>>(), vec![1]);
        assert_eq!(index.candidates(8).count(), 0);
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn blocks_must_continue_the_index() {
        let mut index = EventIndex::default();
        assert!(index.extend_from_block(0, &encode_block(&[1, 2])));
        assert!(!index.extend_from_block(5, &encode_block(&[3])), "a gap");
        assert!(
            !index.extend_from_block(1, &encode_block(&[3])),
            "an overlap"
        );
        assert!(!index.extend_from_block(2, &[0; 7]), "a torn record");
        assert!(index.extend_from_block(2, &encode_block(&[3])));
        assert_eq!(index.candidates(3).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn the_hash_depends_on_every_byte_of_the_id() {
        assert_ne!(id_hash("ev-1"), id_hash("ev-2"));
        assert_ne!(id_hash("ev-1"), id_hash("ev-1 "));
        assert_eq!(id_hash("ev-1"), id_hash("ev-1"));
    }

    #[test]
    fn reads_the_event_id_and_skips_the_rest() {
        let body = crate::envelope::EnvelopeView {
            ledger_id: vec![7; 16],
            event_id: "ev-42".into(),
            effective_at_us: 5,
            ..Default::default()
        };
        let bytes = prost::Message::encode_to_vec(&body);
        assert_eq!(event_id_of(&bytes).as_deref(), Some("ev-42"));
        assert_eq!(event_id_of(&[0xff, 0xff]), None);
    }
}
