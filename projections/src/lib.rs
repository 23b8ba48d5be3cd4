//! The ISMS domain of isms-ledger: event kinds, the rules an event must pass, the Annex A:2022
//! catalog, and the registers (risk register, SoA, audits, corrective actions, evidence, ...)
//! computed as pure folds of the ledger's entries, at any point in time.
//!
//! Deciding is split from applying (cqrs-es): [`rules::validate`] may refuse an event with an
//! [`Error`] naming the field and the rule; [`state::apply`] never fails and holds no rules.
//! `register = fold(apply, empty, entries[..=seq])`; snapshots ([`query`]) only make that
//! fold cheaper, and a property test checks they change nothing.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod error;
pub mod iso2013;
pub mod ledger_glue;
pub mod model;
pub mod oscal;
pub mod plan;
pub mod query;
mod readiness;
pub mod registers;
pub mod rules;
pub mod seed;
pub mod state;
pub mod testkit;
pub mod validator;
pub mod wire;

pub use catalog::{catalog, Control, ControlId};
pub use error::{Error, ErrorCode};
pub use model::{Envelope, Event, EventKind, Role, Subject, Timestamp};
pub use query::{Diff, EntrySource, Projector, RawEntry, SnapshotStore};
pub use registers::Registers;
pub use rules::Submitter;
pub use state::{apply, State};
pub use validator::Validator;
