//! Point-in-time queries over a ledger: the state as of a recorded time or seq (with
//! snapshots every K entries, so a query replays at most K entries), bitemporal queries
//! (effective at T1, as known at T2) and diffs between two times, register by register.
//!
//! The engine reads entries through [`EntrySource`] and keeps snapshots in a
//! [`SnapshotStore`], so it runs on a real ledger (see `ledger_glue`) or on plain vectors in
//! tests. Snapshots are bincode of [`State`]: rebuildable, never part of the permanent record;
//! an unreadable snapshot is ignored and rebuilt.
//!
//! Score history is kept out of the snapshotted state, so decoding a snapshot costs the same
//! however long the history: each snapshot also stores the score points of its own interval
//! (a segment, read only when its chain is not yet in memory), and the engine links the
//! segments into a shared chain that states reference instead of copying.

use std::{
    collections::BTreeMap,
    ops::Range,
    sync::{Arc, Mutex},
};

use crate::{
    model::{KeyIdBytes, RiskId, Timestamp},
    registers::{Registers, Table},
    state::{HistorySegment, ScorePoint, State},
    validator::{apply_envelope, fold_entry},
    wire,
};

/// One ledger entry as the projections need it (a subset of `ledger::Entry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// Position, gapless from 0.
    pub seq: u64,
    /// Transaction time.
    pub recorded_at: Timestamp,
    /// The signing key.
    pub key_id: KeyIdBytes,
    /// The `EventBody` bytes, verbatim.
    pub body: Vec<u8>,
}

/// Failure to read entries or snapshots.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where entries come from.
pub trait EntrySource {
    /// How many entries there are.
    fn len(&self) -> Result<u64, SourceError>;
    /// Whether there are no entries.
    fn is_empty(&self) -> Result<bool, SourceError> {
        Ok(self.len()? == 0)
    }
    /// Entries `range.start..range.end`, in order.
    fn entries(&self, range: Range<u64>) -> Result<Vec<RawEntry>, SourceError>;
    /// The last seq recorded at or before `t`.
    fn seq_at_or_before(&self, t: Timestamp) -> Result<Option<u64>, SourceError>;
}

impl EntrySource for [RawEntry] {
    fn len(&self) -> Result<u64, SourceError> {
        Ok(<[RawEntry]>::len(self) as u64)
    }

    fn entries(&self, range: Range<u64>) -> Result<Vec<RawEntry>, SourceError> {
        let end = (range.end as usize).min(<[RawEntry]>::len(self));
        let start = (range.start as usize).min(end);
        Ok(self[start..end].to_vec())
    }

    fn seq_at_or_before(&self, t: Timestamp) -> Result<Option<u64>, SourceError> {
        // recorded_at never decreases, so the entries are sorted by it.
        let n = self.partition_point(|e| e.recorded_at <= t);
        Ok(n.checked_sub(1).map(|s| s as u64))
    }
}

/// Where snapshots live. Key: how many entries the state has applied.
pub trait SnapshotStore {
    /// The snapshot with the largest key `<= applied`.
    fn floor(&self, applied: u64) -> Result<Option<(u64, Vec<u8>)>, SourceError>;
    /// Stores a snapshot.
    fn put(&self, applied: u64, bytes: Vec<u8>) -> Result<(), SourceError>;
}

/// Snapshots in memory, for tests and short-lived tools.
#[derive(Debug, Default)]
pub struct MemorySnapshots(Mutex<BTreeMap<u64, Vec<u8>>>);

impl SnapshotStore for MemorySnapshots {
    fn floor(&self, applied: u64) -> Result<Option<(u64, Vec<u8>)>, SourceError> {
        let map = self.0.lock().map_err(|_| "snapshot lock poisoned")?;
        Ok(map
            .range(..=applied)
            .next_back()
            .map(|(k, v)| (*k, v.clone())))
    }

    fn put(&self, applied: u64, bytes: Vec<u8>) -> Result<(), SourceError> {
        let mut map = self.0.lock().map_err(|_| "snapshot lock poisoned")?;
        map.insert(applied, bytes);
        Ok(())
    }
}

impl SnapshotStore for ledger::engine::Space {
    fn floor(&self, applied: u64) -> Result<Option<(u64, Vec<u8>)>, SourceError> {
        let found = self.last(ledger::engine::KeyRange::up_to(applied.to_be_bytes()))?;
        Ok(found.and_then(|(k, v)| {
            let key: [u8; 8] = k.as_slice().try_into().ok()?;
            Some((u64::from_be_bytes(key), v))
        }))
    }

    fn put(&self, applied: u64, bytes: Vec<u8>) -> Result<(), SourceError> {
        self.insert(&applied.to_be_bytes(), &bytes)?;
        Ok(())
    }
}

impl SnapshotStore for sled::Tree {
    fn floor(&self, applied: u64) -> Result<Option<(u64, Vec<u8>)>, SourceError> {
        let found = self
            .range(..=applied.to_be_bytes())
            .next_back()
            .transpose()?;
        Ok(found.and_then(|(k, v)| {
            let key: [u8; 8] = k.as_ref().try_into().ok()?;
            Some((u64::from_be_bytes(key), v.to_vec()))
        }))
    }

    fn put(&self, applied: u64, bytes: Vec<u8>) -> Result<(), SourceError> {
        self.insert(applied.to_be_bytes(), bytes)?;
        Ok(())
    }
}

/// Snapshot format version: bumped whenever `State` or the snapshot layout changes shape, so
/// old snapshots are ignored (and rebuilt) instead of misread.
const SNAPSHOT_FORMAT: u8 = 5;

/// How the engine is tuned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectorConfig {
    /// Take a snapshot every K entries; an as-of query replays fewer than K entries.
    pub snapshot_every: u64,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 1_000,
        }
    }
}

/// The query engine.
#[derive(Debug)]
pub struct Projector<S, P> {
    source: P,
    snapshots: S,
    config: ProjectorConfig,
    /// The score-history chain ending at each snapshot key, once built or loaded: derived
    /// and immutable, so every query starting from that snapshot shares it.
    history: Mutex<BTreeMap<u64, Arc<HistorySegment>>>,
    /// What a bitemporal query needs besides the snapshots (see [`ValidTimeIndex`]).
    valid_time: Mutex<ValidTimeIndex>,
}

/// The entries a bitemporal query cannot take from a recorded-time snapshot, kept in memory
/// (derived, rebuilt by one scan): those recorded after they took effect (backdated) and the
/// identity events, which always apply; and how far any entry took effect ahead of its
/// recording. Every entry recorded at or before `E - max_ahead` took effect by `E`, so a
/// query effective at `E` starts from the recorded-time state there, scans the few entries
/// recorded in `(E - max_ahead, E]`, and adds the backdated and identity entries recorded
/// after `E`: cost grows with those, not with the ledger.
#[derive(Debug, Default)]
struct ValidTimeIndex {
    /// Entries `0..indexed` are covered.
    indexed: u64,
    /// The largest `effective_at - recorded_at` seen (0 when nothing took effect late).
    max_ahead: i64,
    /// (seq, effective_at) in seq order of the backdated entries; identity events are listed
    /// with `i64::MIN`, so every query takes them.
    late: Vec<(u64, i64)>,
}

fn is_identity(event: &crate::Event) -> bool {
    matches!(
        event,
        crate::Event::Genesis { .. }
            | crate::Event::KeyEnrolled(_)
            | crate::Event::KeyRevoked { .. }
    )
}

/// A row's cells by field name.
pub type Row = Vec<(&'static str, String)>;

/// One changed cell: field, value before, value after.
pub type FieldChange = (&'static str, String, String);

/// A register's changes between two times.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Which register.
    pub register: &'static str,
    /// Rows only in the later answer.
    pub added: Vec<(String, Row)>,
    /// Rows only in the earlier answer.
    pub removed: Vec<(String, Row)>,
    /// Rows in both with different cells: (row, [(field, before, after)]).
    pub changed: Vec<(String, Vec<FieldChange>)>,
}

/// Compares two sets of tables (from `Registers::tables`), register by register.
pub fn diff_tables(before: &[(&'static str, Table)], after: &[(&'static str, Table)]) -> Vec<Diff> {
    let mut out = Vec::new();
    for ((name, a), (_, b)) in before.iter().zip(after) {
        let mut d = Diff {
            register: name,
            ..Diff::default()
        };
        for (key, row) in b {
            match a.get(key) {
                None => d.added.push((key.clone(), row.clone())),
                Some(old) => {
                    let changes: Vec<_> = old
                        .iter()
                        .zip(row)
                        .filter(|(x, y)| x.1 != y.1)
                        .map(|(x, y)| (x.0, x.1.clone(), y.1.clone()))
                        .collect();
                    if !changes.is_empty() {
                        d.changed.push((key.clone(), changes));
                    }
                }
            }
        }
        for (key, row) in a {
            if !b.contains_key(key) {
                d.removed.push((key.clone(), row.clone()));
            }
        }
        if !(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty()) {
            out.push(d);
        }
    }
    out
}

/// The naive fold: the state after entries `0..applied`, with no snapshots. The reference
/// every optimised path is tested against.
pub fn naive_fold(entries: &[RawEntry], applied: u64) -> State {
    let mut state = State::default();
    for e in entries.iter().take(applied as usize) {
        fold_entry(&mut state, e.seq, e.recorded_at, &e.key_id, &e.body);
    }
    state
}

impl<S: SnapshotStore, P: std::ops::Deref> Projector<S, P>
where
    P::Target: EntrySource,
{
    /// An engine over `source`, keeping snapshots in `snapshots`.
    pub fn new(source: P, snapshots: S, config: ProjectorConfig) -> Self {
        Self {
            source,
            snapshots,
            config,
            history: Mutex::default(),
            valid_time: Mutex::default(),
        }
    }

    /// The state after entries `0..applied` (clamped to the ledger's length): the nearest
    /// snapshot at or below, then at most K entries replayed. Snapshots missing on the way
    /// are written, so the first query over a long history pays once.
    pub fn state_after(&self, applied: u64) -> Result<State, SourceError> {
        let applied = applied.min(self.source.len()?);
        let k = self.config.snapshot_every.max(1);
        let mut state = State::default();
        let mut at = 0;
        let mut floor = applied;
        // Walk down past unreadable snapshots (older format, or a history chain that cannot
        // be followed) to one we can use.
        while let Some((key, bytes)) = self.snapshots.floor(floor)? {
            let mut unusable = key;
            if let Some(mut s) = decode_snapshot(&bytes) {
                match self.history_at(key, &bytes)? {
                    Ok(sealed) => {
                        s.history.set_sealed(sealed);
                        state = s;
                        at = key;
                        break;
                    }
                    // Snapshots between the broken link and `key` mostly chain through it:
                    // skip them rather than follow the chain down to it again from each.
                    Err(broken) => unusable = broken,
                }
            }
            if unusable == 0 {
                break;
            }
            floor = unusable - 1;
        }
        // The snapshot each written segment continues from.
        let mut from = at;
        let mut next = at;
        while next < applied {
            let end = applied.min((next / k + 1) * k);
            for e in self.source.entries(next..end)? {
                fold_entry(&mut state, e.seq, e.recorded_at, &e.key_id, &e.body);
            }
            next = end;
            if next % k == 0 {
                let (points, segment) = state.history.seal();
                self.snapshots
                    .put(next, encode_snapshot(&state, from, &points))?;
                self.history_cache()?.insert(next, segment);
                from = next;
            }
        }
        Ok(state)
    }

    fn history_cache(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<u64, Arc<HistorySegment>>>, SourceError> {
        Ok(self.history.lock().map_err(|_| "history lock poisoned")?)
    }

    /// The score-history chain ending at snapshot `key` (whose bytes are `bytes`): from
    /// memory, or by following the segments' `from` links down through the store.
    /// `Err(broken)` if the snapshot at `broken` is missing or unreadable (or links upwards):
    /// the chain cannot be trusted, so the caller treats `key` as unusable.
    #[allow(clippy::type_complexity)]
    fn history_at(
        &self,
        key: u64,
        bytes: &[u8],
    ) -> Result<Result<Option<Arc<HistorySegment>>, u64>, SourceError> {
        let mut cache = self.history_cache()?;
        if let Some(seg) = cache.get(&key) {
            return Ok(Ok(Some(seg.clone())));
        }
        let Some((mut from, points)) = decode_segment(bytes) else {
            return Ok(Err(key));
        };
        let mut pending = vec![(key, points)];
        let mut prev = loop {
            let top = pending[pending.len() - 1].0;
            if from >= top {
                // A link that does not go down would never end.
                return Ok(Err(top));
            }
            if from == 0 {
                break None;
            }
            if let Some(seg) = cache.get(&from) {
                break Some(seg.clone());
            }
            let Some((found, bytes)) = self.snapshots.floor(from)? else {
                return Ok(Err(from));
            };
            let Some((below, points)) = decode_segment(&bytes).filter(|_| found == from) else {
                return Ok(Err(from));
            };
            pending.push((from, points));
            from = below;
        };
        for (key, points) in pending.into_iter().rev() {
            let seg = Arc::new(HistorySegment { points, prev });
            cache.insert(key, seg.clone());
            prev = Some(seg);
        }
        Ok(Ok(prev))
    }

    /// The state after entry `seq` (inclusive).
    pub fn as_of_seq(&self, seq: u64) -> Result<State, SourceError> {
        self.state_after(seq + 1)
    }

    /// The state as of recorded time `t`: every entry with `recorded_at <= t`. Later entries,
    /// backdated or not, never change this answer.
    pub fn as_of(&self, t: Timestamp) -> Result<State, SourceError> {
        match self.source.seq_at_or_before(t)? {
            Some(seq) => self.as_of_seq(seq),
            None => Ok(State::default()),
        }
    }

    /// The state with every entry.
    pub fn latest(&self) -> Result<State, SourceError> {
        self.state_after(u64::MAX)
    }

    /// Bitemporal: what was effective at `effective` as known at `known` — the entries
    /// recorded at or before `known` whose `effective_at <= effective`. Key enrolments always
    /// apply (identity is not backdated). Equal to a fold of the whole history filtered by
    /// valid time (`bitemporal_by_scan`), at the cost of a recorded-time query plus the
    /// backdated entries (see [`ValidTimeIndex`]).
    pub fn bitemporal(&self, effective: Timestamp, known: Timestamp) -> Result<State, SourceError> {
        let Some(last) = self.source.seq_at_or_before(known)? else {
            return Ok(State::default());
        };
        let mut index = self
            .valid_time
            .lock()
            .map_err(|_| "valid-time index lock poisoned")?;
        let len = self.source.len()?;
        while index.indexed < len {
            let end = len.min(index.indexed + 10_000);
            for e in self.source.entries(index.indexed..end)? {
                let Ok(envelope) = wire::decode_body(&e.body) else {
                    continue;
                };
                let ahead = envelope.effective_at.0.saturating_sub(e.recorded_at.0);
                index.max_ahead = index.max_ahead.max(ahead);
                if is_identity(&envelope.event) {
                    index.late.push((e.seq, i64::MIN));
                } else if ahead < 0 {
                    index.late.push((e.seq, envelope.effective_at.0));
                }
            }
            index.indexed = end;
        }
        let sure = Timestamp(effective.0.saturating_sub(index.max_ahead));
        // Entries 0..start all took effect by `effective`: the recorded-time state has them.
        let start = match self.source.seq_at_or_before(sure)? {
            Some(seq) => seq.min(last) + 1,
            None => 0,
        };
        let mut state = if start == 0 {
            State::default()
        } else {
            self.state_after(start)?
        };
        let apply = |state: &mut State, e: &RawEntry| {
            if let Ok(envelope) = wire::decode_body(&e.body) {
                if is_identity(&envelope.event) || envelope.effective_at <= effective {
                    apply_envelope(state, e.seq, e.recorded_at, &e.key_id, &envelope);
                }
            }
        };
        // Recorded in (effective - max_ahead, effective]: may have taken effect either side.
        let scanned_to = match self.source.seq_at_or_before(effective)? {
            Some(seq) => seq.min(last) + 1,
            None => 0,
        }
        .max(start);
        for e in self.source.entries(start..scanned_to)? {
            apply(&mut state, &e);
        }
        // Recorded after `effective`: only backdated entries and identity events count.
        let from = index.late.partition_point(|(seq, _)| *seq < scanned_to);
        let wanted: Vec<u64> = index.late[from..]
            .iter()
            .take_while(|(seq, _)| *seq <= last)
            .filter(|(_, at)| *at <= effective.0)
            .map(|(seq, _)| *seq)
            .collect();
        drop(index);
        for seq in wanted {
            for e in self.source.entries(seq..seq + 1)? {
                apply(&mut state, &e);
            }
        }
        Ok(state)
    }

    /// The bitemporal state by folding every entry up to `known`, filtered by valid time:
    /// the definition [`Projector::bitemporal`] must agree with (kept for tests and checks).
    pub fn bitemporal_by_scan(
        &self,
        effective: Timestamp,
        known: Timestamp,
    ) -> Result<State, SourceError> {
        let mut state = State::default();
        let Some(last) = self.source.seq_at_or_before(known)? else {
            return Ok(state);
        };
        for e in self.source.entries(0..last + 1)? {
            let Ok(envelope) = wire::decode_body(&e.body) else {
                continue;
            };
            if is_identity(&envelope.event) || envelope.effective_at <= effective {
                apply_envelope(&mut state, e.seq, e.recorded_at, &e.key_id, &envelope);
            }
        }
        Ok(state)
    }

    /// What changed in every register between recorded times `t1` and `t2` (each judged at
    /// its own time, so due dates turning overdue show up too).
    pub fn diff(&self, t1: Timestamp, t2: Timestamp) -> Result<Vec<Diff>, SourceError>
    where
        S: Sync,
        P: Sync,
    {
        // The two sides are independent: each on its own core.
        let tables_at = |t: Timestamp| -> Result<Vec<(&'static str, Table)>, String> {
            let state = self.as_of(t).map_err(|e| e.to_string())?;
            Ok(Registers {
                state: &state,
                now: t,
            }
            .tables())
        };
        let (before, after) = std::thread::scope(|scope| {
            let before = scope.spawn(|| tables_at(t1));
            let after = tables_at(t2);
            (before.join(), after)
        });
        let before = before.map_err(|_| "diff: the query thread panicked")??;
        Ok(diff_tables(&before, &after?))
    }

    /// A validator continuing from the ledger's current state (after a failed batch write,
    /// or at start-up).
    pub fn validator(&self) -> Result<crate::Validator, SourceError> {
        Ok(crate::Validator::from_state(self.latest()?))
    }
}

/// The score points recorded in one snapshot interval, and the snapshot it continues from.
type Segment = (u64, BTreeMap<RiskId, Vec<ScorePoint>>);

/// Layout: format byte, state length (u64 LE), the state (without score history), then the
/// interval's segment. The length lets a query decode the state alone.
fn encode_snapshot(
    state: &State,
    from: u64,
    points: &BTreeMap<RiskId, Vec<ScorePoint>>,
) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    let state = bincode::serialize(state).expect("State serializes");
    let segment = bincode::serialize(&(from, points)).expect("segment serializes");
    let mut out = Vec::with_capacity(9 + state.len() + segment.len());
    out.push(SNAPSHOT_FORMAT);
    out.extend((state.len() as u64).to_le_bytes());
    out.extend(state);
    out.extend(segment);
    out
}

/// The state part and the segment part of a snapshot.
fn split_snapshot(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&format, rest) = bytes.split_first()?;
    if format != SNAPSHOT_FORMAT || rest.len() < 8 {
        return None;
    }
    let (len, rest) = rest.split_at(8);
    let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

fn decode_snapshot(bytes: &[u8]) -> Option<State> {
    bincode::deserialize(split_snapshot(bytes)?.0).ok()
}

fn decode_segment(bytes: &[u8]) -> Option<Segment> {
    bincode::deserialize(split_snapshot(bytes)?.1).ok()
}
