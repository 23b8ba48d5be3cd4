//! Errors of the record layer and the status code each becomes at the gRPC edge.

use crate::{KeyId, Seq};

/// The gRPC status code an error maps to, without depending on tonic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Code {
    /// Malformed input.
    InvalidArgument,
    /// Bad signature or unknown key.
    Unauthenticated,
    /// A role or duty rule refused it.
    PermissionDenied,
    /// Same event id, different bytes.
    AlreadyExists,
    /// Expected version mismatch or invalid state transition.
    FailedPrecondition,
    /// Something asked for is not there.
    NotFound,
    /// The store failed.
    Unavailable,
    /// Stored data is damaged: retrying will not help; restore from a backup or a mirror.
    DataLoss,
}

/// Why one submitted event was refused. Nothing of a refused event is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// A field of the body breaks a rule of the record format. → InvalidArgument.
    #[error("{field}: {rule}")]
    Malformed {
        /// The field, as named in envelope.proto.
        field: &'static str,
        /// The rule it breaks, and what was found.
        rule: String,
    },
    /// The body is larger than the ledger takes. → InvalidArgument.
    #[error("body: {size} bytes is larger than the limit of {max} bytes")]
    BodyTooLarge {
        /// Bytes submitted.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The body names another ledger. → InvalidArgument.
    #[error("ledger_id: this ledger is {expected}, the body names {found}")]
    WrongLedger {
        /// This ledger's id (hex).
        expected: String,
        /// The id in the body (hex).
        found: String,
    },
    /// No key with this id was ever enrolled. → Unauthenticated.
    #[error("key_id: key {key_id} is not enrolled in this ledger")]
    UnknownKey {
        /// The submitted key id.
        key_id: KeyId,
    },
    /// The key was revoked. → Unauthenticated.
    #[error("key_id: key {key_id} was revoked at seq {revoked_at}")]
    RevokedKey {
        /// The submitted key id.
        key_id: KeyId,
        /// Seq of the revocation entry.
        revoked_at: Seq,
    },
    /// The signature does not verify with the key. → Unauthenticated.
    #[error("signature: does not verify with key {key_id} over the body")]
    BadSignature {
        /// The submitted key id.
        key_id: KeyId,
    },
    /// A record-level action needs a role the key lacks. → PermissionDenied.
    #[error("key {key_id} ({subject}) lacks the {role} role needed to append {action}")]
    RoleRequired {
        /// The signer.
        key_id: KeyId,
        /// Its subject.
        subject: String,
        /// The role needed.
        role: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The event id is taken by an event with different bytes. → AlreadyExists.
    #[error("event_id: {event_id:?} was already used at seq {seq} with different bytes")]
    EventIdConflict {
        /// The event id.
        event_id: String,
        /// Where the first one is.
        seq: Seq,
    },
    /// The event passed every check, but another event of its all-or-nothing group was
    /// refused, so none was stored. → FailedPrecondition.
    #[error("not stored: event {first} of the same all-or-nothing group was refused ({reason})")]
    GroupRefused {
        /// The position in the group of the first refused event.
        first: usize,
        /// Why that event was refused.
        reason: String,
    },
    /// An erasure names an artifact that is not stored here or was already erased.
    /// → FailedPrecondition.
    #[error("artifact_erased.blake3: artifact {hash} {why}; there is nothing to erase")]
    NotErasable {
        /// The artifact named.
        hash: crate::ArtifactHash,
        /// Why it cannot be erased.
        why: String,
    },
    /// The admission hook (the ISMS rules) refused the event; its error is kept whole so the
    /// edge can map it to the right status.
    #[error("{0}")]
    Rejected(crate::Rejection),
    /// The ledger was opened without its signing key, so it cannot write checkpoints.
    /// → FailedPrecondition.
    #[error(
        "this server holds a read-only copy of the ledger (a mirror, or a store opened without \
         its signing key): write to the ledger's own server"
    )]
    ReadOnly,
    /// The store failed while writing the batch; nothing of the batch is acknowledged.
    /// → Unavailable.
    #[error("store: {0}")]
    Store(String),
}

impl AppendError {
    /// The status code at the gRPC edge. `Rejected` errors answer through the hook's own
    /// mapping (the edge downcasts them); here they count as FailedPrecondition.
    pub fn code(&self) -> Code {
        match self {
            AppendError::Malformed { .. }
            | AppendError::BodyTooLarge { .. }
            | AppendError::WrongLedger { .. } => Code::InvalidArgument,
            AppendError::UnknownKey { .. }
            | AppendError::RevokedKey { .. }
            | AppendError::BadSignature { .. } => Code::Unauthenticated,
            AppendError::RoleRequired { .. } => Code::PermissionDenied,
            AppendError::EventIdConflict { .. } => Code::AlreadyExists,
            AppendError::Rejected(_)
            | AppendError::ReadOnly
            | AppendError::NotErasable { .. }
            | AppendError::GroupRefused { .. } => Code::FailedPrecondition,
            AppendError::Store(_) => Code::Unavailable,
        }
    }
}

/// Failures of opening, creating and reading a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// sled failed. → Unavailable, or DataLoss when sled found its files damaged.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// sled refused the store's files when opening it (its checksums failed, or its `conf`
    /// file is unreadable): the damage lies below the ledger's records, so no seq can be named.
    /// → DataLoss.
    #[error(
        "the store in {} is damaged: sled refused its files (the log file `db`, the \
         configuration `conf`, the folder `blobs`): {detail}. This copy cannot be read; \
         rebuild the folder from a backup or an export bundle (`isms restore`) or a mirror, and \
         keep the damaged folder for investigation",
        path.display()
    )]
    Damaged {
        /// The store's folder.
        path: std::path::PathBuf,
        /// What sled said.
        detail: String,
    },
    /// The store was written by a newer release, in a layout this build does not know; it is
    /// refused rather than misread. → FailedPrecondition.
    #[error(
        "this store has on-disk layout {found}, written by a newer isms; this build reads \
         layouts up to {supported}: upgrade isms (the store is unchanged)"
    )]
    NewerLayout {
        /// The store's layout.
        found: u32,
        /// The newest layout this build reads.
        supported: u32,
    },
    /// The folder holds no ledger. → NotFound.
    #[error("no ledger in this store (no genesis entry)")]
    NoLedger,
    /// `create` was called on a folder that already holds a ledger. → AlreadyExists.
    #[error("this store already holds ledger {0}")]
    AlreadyExists(String),
    /// The signing key given is not the ledger's current checkpoint key (the genesis's, or the
    /// new key of the last hand-over). → PermissionDenied.
    #[error(
        "the signing key given is not this ledger's current checkpoint key {expected} (the \
         genesis's, or the new key of the last `isms key rotate-ledger-key`)"
    )]
    WrongLedgerKey {
        /// Key id of the current checkpoint key.
        expected: KeyId,
    },
    /// Stored data is not what the format says; `verify` names the exact entry. → DataLoss.
    #[error("corrupt record at seq {seq}: {what}")]
    Corrupt {
        /// The entry (or the tree size) concerned.
        seq: u64,
        /// What is wrong.
        what: String,
    },
    /// A genesis argument is invalid. → InvalidArgument.
    #[error("{0}")]
    InvalidGenesis(String),
    /// A proof was asked for a size or index the ledger does not have. → NotFound /
    /// InvalidArgument.
    #[error("{0}")]
    OutOfRange(String),
    /// A cosignature line given to keep is not a signature line. → InvalidArgument.
    #[error(transparent)]
    Cosignature(#[from] crate::CosignatureError),
    /// The database engine failed or could not be reached (PostgreSQL). Nothing of the
    /// failed batch is stored. → Unavailable.
    #[error("database ({engine}): {detail}")]
    Database {
        /// The engine (`postgres`).
        engine: &'static str,
        /// What the engine said.
        detail: String,
    },
    /// A batch's precondition did not hold: the store's head is not the one the writer
    /// extended (a batch whose commit was not acknowledged did commit, or another writer
    /// wrote). Nothing of the batch is stored; the writer reads the store's head again before
    /// its next batch. → Unavailable (retry).
    #[error("the store changed under the writer: {0}; nothing of the batch is stored")]
    Conflict(String),
    /// This server is not (or no longer) the ledger's writer: another server holds the
    /// writer lease, or took it over with a newer term, and the database refused this
    /// server's batch. Nothing of it is stored. → FailedPrecondition.
    #[error(
        "this server is not the writer of ledger {ledger:?}: {detail}; nothing of the batch \
         is stored"
    )]
    NotWriter {
        /// The ledger's name in the database.
        ledger: String,
        /// Who holds the lease and since when, or which term fenced this one out.
        detail: String,
    },
}

impl LedgerError {
    /// The status code at the gRPC edge.
    pub fn code(&self) -> Code {
        match self {
            LedgerError::Store(sled::Error::Corruption { .. })
            | LedgerError::Corrupt { .. }
            | LedgerError::Damaged { .. } => Code::DataLoss,
            LedgerError::Store(_) | LedgerError::Database { .. } | LedgerError::Conflict(_) => {
                Code::Unavailable
            }
            LedgerError::NotWriter { .. } => Code::FailedPrecondition,
            LedgerError::NoLedger => Code::NotFound,
            LedgerError::AlreadyExists(_) => Code::AlreadyExists,
            LedgerError::WrongLedgerKey { .. } => Code::PermissionDenied,
            LedgerError::NewerLayout { .. } => Code::FailedPrecondition,
            LedgerError::InvalidGenesis(_)
            | LedgerError::OutOfRange(_)
            | LedgerError::Cosignature(_) => Code::InvalidArgument,
        }
    }
}
