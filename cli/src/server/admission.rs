//! The glue between the ledger's single writer and the ISMS rules: an [`ledger::Admission`]
//! that hands every candidate event to a `projections::Validator`, and the entry source the
//! projections' query engine reads the ledger through.

use std::ops::Range;
use std::sync::Arc;

use ledger::{Candidate, Ledger, Rejection};
use projections::query::SourceError;
use projections::{EntrySource, RawEntry, Timestamp, Validator};

/// Admits an event only if the ISMS rules accept it, against the state after the previous
/// entry. The validator applies each admitted event at once, so later events of the same batch
/// see it.
#[derive(Debug, Default)]
pub struct IsmsAdmission {
    validator: Validator,
}

impl IsmsAdmission {
    /// Folds every entry the ledger holds into a fresh validator. Called at start-up and after
    /// a batch failed to commit (the validator had run ahead of what the ledger holds).
    pub fn rebuild(ledger: &Ledger) -> Result<IsmsAdmission, ledger::LedgerError> {
        let mut state = projections::State::default();
        let size = ledger.head().size;
        for entry in ledger.entries(0..size) {
            projections::ledger_glue::fold_ledger_entry(&mut state, &entry?);
        }
        Ok(IsmsAdmission {
            validator: Validator::from_state(state),
        })
    }
}

impl ledger::Admission for IsmsAdmission {
    /// The projections' own `Admission` for `Validator` decides (the key's roles come from the
    /// ledger's key record; the signature and key validity were checked by the ledger).
    fn admit(&mut self, candidate: &Candidate<'_>) -> Result<(), Rejection> {
        ledger::Admission::admit(&mut self.validator, candidate)
    }

    fn save(&mut self) {
        ledger::Admission::save(&mut self.validator);
    }

    fn rewind(&mut self) {
        ledger::Admission::rewind(&mut self.validator);
    }
}

/// The ledger as the projections' query engine sees it.
#[derive(Debug, Clone)]
pub struct LedgerSource(pub Arc<Ledger>);

// Delegates to the projections' own `EntrySource` for `Ledger`, so the two cannot drift.
impl EntrySource for LedgerSource {
    fn len(&self) -> Result<u64, SourceError> {
        EntrySource::len(&*self.0)
    }

    fn entries(&self, range: Range<u64>) -> Result<Vec<RawEntry>, SourceError> {
        EntrySource::entries(&*self.0, range)
    }

    fn seq_at_or_before(&self, t: Timestamp) -> Result<Option<u64>, SourceError> {
        EntrySource::seq_at_or_before(&*self.0, t)
    }
}
