//! Receipts: what the submitter of an event keeps to prove, later and with the ledger's public
//! key alone, that the ledger accepted it at a given place.

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::merkle::ProofError;
use crate::{Entry, EntryHash, KeyId, Seq, UnixMicros};

/// Proof that an event is entry `seq` of the ledger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// Where the event is.
    pub seq: Seq,
    /// When the ledger accepted it.
    pub recorded_at: UnixMicros,
    /// The entry before it.
    pub prev_hash: EntryHash,
    /// Who signed it.
    pub key_id: KeyId,
    /// The signature stored with it.
    pub signature: [u8; 64],
    /// Its entry hash.
    pub entry_hash: EntryHash,
    /// The first checkpoint that covers it (signed-note text).
    pub checkpoint: String,
    /// Inclusion proof of the entry hash in that checkpoint's tree.
    pub inclusion_path: Vec<[u8; 32]>,
}

/// Why a receipt does not prove what it claims.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The entry rebuilt from the receipt and the body does not hash to `entry_hash`.
    #[error("entry hash: the receipt says {expected}, the body and receipt fields give {found}")]
    EntryHashMismatch {
        /// What the receipt says.
        expected: EntryHash,
        /// What the fields hash to.
        found: EntryHash,
    },
    /// The checkpoint is malformed or not signed by the ledger key.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint does not cover the seq.
    #[error("checkpoint of size {size} does not cover seq {seq}")]
    NotCovered {
        /// The receipt's seq.
        seq: Seq,
        /// The checkpoint's size.
        size: u64,
    },
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Proof(#[from] ProofError),
}

impl Receipt {
    /// Checks the receipt against the event `body` the submitter sent and the ledger's public
    /// key: the entry hash, the checkpoint signature and the inclusion proof. Returns the
    /// checkpoint it rests on.
    pub fn verify(
        &self,
        body: &[u8],
        ledger_key: &VerifyingKey,
    ) -> Result<Checkpoint, ReceiptError> {
        let entry = Entry {
            seq: self.seq,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash,
            key_id: self.key_id,
            signature: self.signature,
            body: body.to_vec(),
        };
        let found = entry.hash();
        if found != self.entry_hash {
            return Err(ReceiptError::EntryHashMismatch {
                expected: self.entry_hash,
                found,
            });
        }
        let checkpoint = SignedCheckpoint::verify(&self.checkpoint, ledger_key)?.checkpoint;
        if self.seq.0 >= checkpoint.size {
            return Err(ReceiptError::NotCovered {
                seq: self.seq,
                size: checkpoint.size,
            });
        }
        crate::verify::verify_entry_inclusion(
            &self.entry_hash,
            self.seq,
            checkpoint.size,
            &self.inclusion_path,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}
