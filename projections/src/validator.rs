//! The admission step: a `Validator` holds the current state, decides on each candidate event
//! (decode, then every rule) and, only if it is accepted, applies it. The server plugs it into
//! the ledger's single writer (see `ledger_glue`), so the state it checks against is exactly
//! the state after the previous entry.
//!
//! If the ledger's batch write fails after events were admitted, the validator's state is
//! ahead of the ledger: the caller must rebuild it with [`Validator::rebuild`] (or
//! `Projector::validator`) from what the ledger actually holds.

use crate::{
    error::Error,
    model::{Envelope, KeyIdBytes, Timestamp},
    rules::{validate, Submitter},
    state::{apply, Meta, State},
    wire,
};

/// Current state plus the rules: admits or refuses each new event, in seq order.
#[derive(Clone, Debug, Default)]
pub struct Validator {
    state: State,
    /// The state before an all-or-nothing group, to return to if the group is refused.
    saved: Option<State>,
}

impl Validator {
    /// A validator for an empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A validator that continues from `state` (e.g. `Projector::latest`).
    pub fn from_state(state: State) -> Self {
        Self { state, saved: None }
    }

    /// Remembers the current state before an all-or-nothing group.
    pub fn save(&mut self) {
        self.saved = Some(self.state.clone());
    }

    /// Returns to the state [`Validator::save`] remembered (nothing if none was).
    pub fn rewind(&mut self) {
        if let Some(state) = self.saved.take() {
            self.state = state;
        }
    }

    /// Rebuilds the state by folding `entries` (every entry the ledger holds, in order).
    pub fn rebuild<'a>(entries: impl IntoIterator<Item = &'a crate::query::RawEntry>) -> Self {
        let mut state = State::default();
        for e in entries {
            fold_entry(&mut state, e.seq, e.recorded_at, &e.key_id, &e.body);
        }
        Self { state, saved: None }
    }

    /// The state after every admitted event.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Decides on the event in `body`, appended as `seq` at `recorded_at` by `who`; applies it
    /// if accepted. A refused event changes nothing.
    pub fn admit(
        &mut self,
        seq: u64,
        recorded_at: Timestamp,
        who: &Submitter,
        body: &[u8],
    ) -> Result<Envelope, Error> {
        let envelope = wire::decode_body(body)?;
        validate(&self.state, who, recorded_at, &envelope)?;
        let meta = Meta {
            seq,
            recorded_at,
            effective_at: envelope.effective_at,
            subject: who.subject.clone(),
        };
        apply(&mut self.state, meta, &envelope.event);
        Ok(envelope)
    }
}

/// Applies one stored entry to `state` (no rules: the entry was admitted when written).
/// A body that no longer decodes (impossible for admitted entries, but the fold must be
/// total) only advances the position.
pub fn fold_entry(
    state: &mut State,
    seq: u64,
    recorded_at: Timestamp,
    key_id: &KeyIdBytes,
    body: &[u8],
) {
    match wire::decode_body(body) {
        Ok(envelope) => apply_envelope(state, seq, recorded_at, key_id, &envelope),
        Err(_) => state.applied = state.applied.max(seq + 1),
    }
}

/// Applies a decoded entry, resolving the signer's subject from the keys folded so far.
pub fn apply_envelope(
    state: &mut State,
    seq: u64,
    recorded_at: Timestamp,
    key_id: &KeyIdBytes,
    envelope: &Envelope,
) {
    let meta = Meta {
        seq,
        recorded_at,
        effective_at: envelope.effective_at,
        subject: state.subject_of(key_id),
    };
    apply(state, meta, &envelope.event);
}
