//! The permanent record: signed, hash-chained, Merkle-proven entries in sled.
//!
//! This crate knows nothing of ISO 27001 or gRPC. It takes signed event bodies, checks the
//! record-level rules (envelope, signature, key validity, idempotency), hands each event to an
//! [`Admission`] policy, and writes accepted batches atomically with their Merkle nodes and a
//! signed checkpoint. Every encoding is documented byte for byte in docs/FORMAT.md.

pub mod checkpoint;
pub mod cosignature;
pub mod engine;
pub mod entry;
pub mod envelope;
mod error;
mod event_index;
pub mod keys;
pub mod merkle;
pub mod postgres;
pub mod receipt;
pub mod rules;
pub mod sig;
mod store;
pub mod tags;
mod types;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
pub use cosignature::{CosignatureError, WitnessKey, WitnessVerifier};
pub use entry::{Entry, SignedEvent};
pub use envelope::{Genesis, KeyGrant, RecordAction};
pub use error::{AppendError, Code, LedgerError};
pub use keys::KeyRecord;
pub use receipt::{Receipt, ReceiptError};
pub use store::entry_blocks;
pub use store::{
    genesis_body, origin_of, salvage, Admission, AdmitAll, Appended, ArtifactState, Candidate,
    CheckedBatch, Clock, Head, Import, Ledger, LedgerConfig, Prepared, Rejection, ReplicaTip,
    Replicator, Salvaged, Staged, SystemClock, ACKNOWLEDGED_FILE, LAYOUT_VERSION,
};
pub use types::{ArtifactHash, EntryHash, KeyId, LedgerId, Seq, UnixMicros};
pub use verify::{ChainVerifier, Failure, Record, VerifyError, VerifyReport};
