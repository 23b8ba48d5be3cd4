//! Plugs the projections into the `ledger` crate: the `Validator` as the ledger writer's
//! `Admission` hook, the ledger as an `EntrySource`, and a `Projector` whose snapshots live
//! in `ledger.derived("snapshots")` (rebuildable, never part of the permanent record).

use std::ops::Range;

use crate::{
    model::{Role, Subject, Timestamp},
    query::{EntrySource, Projector, ProjectorConfig, RawEntry, SourceError},
    rules::Submitter,
    Validator,
};

/// The state after the ledger's `entries`, in seq order from the genesis (no rules: they were
/// admitted when written).
pub fn state_of<'a>(entries: impl IntoIterator<Item = &'a ledger::Entry>) -> crate::State {
    let mut state = crate::State::default();
    for entry in entries {
        fold_ledger_entry(&mut state, entry);
    }
    state
}

/// Applies one stored ledger entry to `state` (see [`crate::validator::fold_entry`]).
pub fn fold_ledger_entry(state: &mut crate::State, entry: &ledger::Entry) {
    crate::validator::fold_entry(
        state,
        entry.seq.0,
        Timestamp(entry.recorded_at.0),
        &entry.key_id.0,
        &entry.body,
    );
}

impl ledger::Admission for Validator {
    /// Decides on the candidate against the state after the previous entry and applies it if
    /// accepted. Refusals are `crate::Error` boxed; the server downcasts to map the code. If
    /// the batch holding admitted events then fails to commit, rebuild the validator with
    /// [`projector`]`(..)?.validator()`.
    fn admit(&mut self, candidate: &ledger::Candidate<'_>) -> Result<(), ledger::Rejection> {
        let who = Submitter {
            subject: Subject(candidate.key.subject.clone()),
            // Unknown role names grant nothing.
            roles: candidate
                .key
                .roles
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
        };
        self.admit(
            candidate.seq.0,
            Timestamp(candidate.recorded_at.0),
            &who,
            candidate.body,
        )?;
        Ok(())
    }

    fn save(&mut self) {
        Validator::save(self);
    }

    fn rewind(&mut self) {
        Validator::rewind(self);
    }
}

impl EntrySource for ledger::Ledger {
    fn len(&self) -> Result<u64, SourceError> {
        Ok(self.head().size)
    }

    fn entries(&self, range: Range<u64>) -> Result<Vec<RawEntry>, SourceError> {
        ledger::Ledger::entries(self, range)
            .map(|e| {
                let e = e?;
                Ok(RawEntry {
                    seq: e.seq.0,
                    recorded_at: Timestamp(e.recorded_at.0),
                    key_id: e.key_id.0,
                    body: e.body,
                })
            })
            .collect()
    }

    fn seq_at_or_before(&self, t: Timestamp) -> Result<Option<u64>, SourceError> {
        Ok(ledger::Ledger::seq_at_or_before(self, ledger::UnixMicros(t.0))?.map(|s| s.0))
    }
}

/// The query engine over a ledger, with snapshots in its `snapshots` derived keyspace.
pub fn projector(
    ledger: &ledger::Ledger,
    config: ProjectorConfig,
) -> Result<Projector<ledger::engine::Space, &ledger::Ledger>, ledger::LedgerError> {
    Ok(Projector::new(ledger, ledger.derived("snapshots")?, config))
}
