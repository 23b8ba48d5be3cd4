//! The ledger's own reading of an `EventBody`: the envelope fields and the record-level
//! payloads (genesis, key enrolment and revocation, artifact erasure).
//!
//! These are hand-written prost messages with the field numbers of
//! `proto/isms/ledger/v1/envelope.proto`. Decoding skips fields it does not know, so the ledger
//! reads what it needs from any body without knowing the ISMS event kinds (field 32), and the
//! generated protobuf types stay out of this crate.

use crate::{ArtifactHash, KeyId, LedgerId, UnixMicros};

/// Field numbers 1..=20 of `EventBody`, as the ledger reads them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvelopeView {
    /// `ledger_id = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub ledger_id: Vec<u8>,
    /// `event_id = 2`.
    #[prost(string, tag = "2")]
    pub event_id: String,
    /// `effective_at_us = 3`.
    #[prost(int64, tag = "3")]
    pub effective_at_us: i64,
    /// `client_time_us = 4`.
    #[prost(int64, tag = "4")]
    pub client_time_us: i64,
    /// `expected_version = 5`.
    #[prost(uint64, optional, tag = "5")]
    pub expected_version: Option<u64>,
    /// `artifacts = 6`.
    #[prost(message, repeated, tag = "6")]
    pub artifacts: Vec<ArtifactRefView>,
    /// `genesis = 16`.
    #[prost(message, optional, tag = "16")]
    pub genesis: Option<GenesisView>,
    /// `key_enrolled = 17`.
    #[prost(message, optional, tag = "17")]
    pub key_enrolled: Option<KeyEnrolledView>,
    /// `key_revoked = 18`.
    #[prost(message, optional, tag = "18")]
    pub key_revoked: Option<KeyRevokedView>,
    /// `artifact_erased = 19`.
    #[prost(message, optional, tag = "19")]
    pub artifact_erased: Option<ArtifactErasedView>,
    /// `ledger_key_rotated = 20`.
    #[prost(message, optional, tag = "20")]
    pub ledger_key_rotated: Option<LedgerKeyRotatedView>,
}

/// `ArtifactRef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArtifactRefView {
    /// blake3 of the artifact.
    #[prost(bytes = "vec", tag = "1")]
    pub blake3: Vec<u8>,
    /// Size in bytes.
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// Media type.
    #[prost(string, tag = "3")]
    pub media_type: String,
    /// File name.
    #[prost(string, tag = "4")]
    pub name: String,
}

/// `Genesis`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GenesisView {
    /// Checkpoint origin line.
    #[prost(string, tag = "1")]
    pub origin: String,
    /// Ledger (checkpoint) public key.
    #[prost(bytes = "vec", tag = "2")]
    pub ledger_public_key: Vec<u8>,
    /// First admin keys.
    #[prost(message, repeated, tag = "3")]
    pub admins: Vec<KeyEnrolledView>,
    /// Human name.
    #[prost(string, tag = "4")]
    pub name: String,
}

/// `KeyEnrolled`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyEnrolledView {
    /// ed25519 public key.
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    /// Who holds it.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// Role names.
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
}

/// `KeyRevoked`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyRevokedView {
    /// Key id of the revoked key.
    #[prost(bytes = "vec", tag = "1")]
    pub key_id: Vec<u8>,
    /// Why.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// `ArtifactErased`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArtifactErasedView {
    /// blake3 of the erased artifact.
    #[prost(bytes = "vec", tag = "1")]
    pub blake3: Vec<u8>,
    /// Why.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// `LedgerKeyRotated`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LedgerKeyRotatedView {
    /// The new ledger public key.
    #[prost(bytes = "vec", tag = "1")]
    pub new_public_key: Vec<u8>,
    /// The old key's signature over the hand-over statement.
    #[prost(bytes = "vec", tag = "2")]
    pub old_key_signature: Vec<u8>,
    /// The new key's signature over the hand-over statement.
    #[prost(bytes = "vec", tag = "3")]
    pub new_key_signature: Vec<u8>,
    /// Why.
    #[prost(string, tag = "4")]
    pub reason: String,
}

/// A hand-over of the ledger's checkpoint key, as an entry states it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Handover {
    /// The new ledger public key.
    pub new_public_key: [u8; 32],
    /// The old (current) key's signature over [`handover_statement`].
    pub old_key_signature: [u8; 64],
    /// The new key's signature over [`handover_statement`].
    pub new_key_signature: [u8; 64],
}

/// The bytes both ledger keys sign to hand the checkpoint key over.
pub fn handover_statement(ledger_id: &LedgerId, old: &[u8; 32], new: &[u8; 32]) -> Vec<u8> {
    let mut out = crate::tags::LEDGER_KEY_HANDOVER.to_vec();
    out.extend_from_slice(&ledger_id.0);
    out.extend_from_slice(old);
    out.extend_from_slice(new);
    out
}

impl Handover {
    /// Signs a hand-over from `old` to `new` in ledger `ledger_id`.
    pub fn sign(
        ledger_id: &LedgerId,
        old: &ed25519_dalek::SigningKey,
        new: &ed25519_dalek::SigningKey,
    ) -> Handover {
        use ed25519_dalek::Signer as _;
        let new_public_key = new.verifying_key().to_bytes();
        let statement =
            handover_statement(ledger_id, &old.verifying_key().to_bytes(), &new_public_key);
        Handover {
            new_public_key,
            old_key_signature: old.sign(&statement).to_bytes(),
            new_key_signature: new.sign(&statement).to_bytes(),
        }
    }

    /// Checks both signatures, with `current` the ledger key the hand-over is from. The error
    /// says which signature failed.
    pub fn check(&self, ledger_id: &LedgerId, current: &[u8; 32]) -> Result<(), String> {
        use ed25519_dalek::{Signature, VerifyingKey};
        let statement = handover_statement(ledger_id, current, &self.new_public_key);
        let verify = |key: &[u8; 32], signature: &[u8; 64]| {
            VerifyingKey::from_bytes(key)
                .ok()
                .filter(|k| {
                    k.verify_strict(&statement, &Signature::from_bytes(signature))
                        .is_ok()
                })
                .is_some()
        };
        if !verify(current, &self.old_key_signature) {
            return Err(format!(
                "ledger_key_rotated.old_key_signature is not the current ledger key's ({}) \
                 signature over the hand-over statement",
                KeyId::of_public_key(current).short()
            ));
        }
        if !verify(&self.new_public_key, &self.new_key_signature) {
            return Err(
                "ledger_key_rotated.new_key_signature is not the new key's signature over the \
                 hand-over statement"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// The body payload for this hand-over.
    pub fn to_view(&self, reason: &str) -> LedgerKeyRotatedView {
        LedgerKeyRotatedView {
            new_public_key: self.new_public_key.to_vec(),
            old_key_signature: self.old_key_signature.to_vec(),
            new_key_signature: self.new_key_signature.to_vec(),
            reason: reason.to_string(),
        }
    }
}

/// The record-level meaning of a body, after the envelope rules have passed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RecordAction {
    /// An ordinary event: nothing for the record layer to do.
    None,
    /// The genesis entry.
    Genesis(Genesis),
    /// A key joins.
    KeyEnrolled(KeyGrant),
    /// A key leaves.
    KeyRevoked(KeyId),
    /// An artifact's content is erased.
    ArtifactErased(ArtifactHash),
    /// The ledger's checkpoint key is handed over.
    LedgerKeyRotated(Handover),
}

/// The decoded genesis.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Genesis {
    /// The ledger id.
    pub ledger_id: LedgerId,
    /// The checkpoint origin.
    pub origin: String,
    /// The ledger's checkpoint-signing public key.
    pub ledger_public_key: [u8; 32],
    /// The first admin keys.
    pub admins: Vec<KeyGrant>,
    /// The ledger's human name.
    pub name: String,
    /// When the genesis says it was made.
    pub effective_at: UnixMicros,
}

/// A key and what it may do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyGrant {
    /// ed25519 public key.
    pub public_key: [u8; 32],
    /// Who holds it.
    pub subject: String,
    /// Role names (admin, agent, risk_owner, control_owner, auditor, management, reader).
    pub roles: Vec<String>,
}

impl KeyGrant {
    /// The grant's key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_public_key(&self.public_key)
    }

    /// The key record this grant makes, enrolled by the entry at `seq`.
    pub fn record(&self, seq: crate::Seq) -> crate::KeyRecord {
        crate::KeyRecord {
            key_id: self.key_id(),
            public_key: self.public_key,
            subject: self.subject.clone(),
            roles: self.roles.clone(),
            enrolled_at: seq,
            revoked_at: None,
        }
    }

    pub(crate) fn to_view(&self) -> KeyEnrolledView {
        KeyEnrolledView {
            public_key: self.public_key.to_vec(),
            subject: self.subject.clone(),
            roles: self.roles.clone(),
        }
    }
}
