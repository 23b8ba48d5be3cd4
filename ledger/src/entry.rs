//! The entry: the unit of the permanent record, its fixed-layout encoding and its hash.
//!
//! The encoding is what sled stores and what `entry_hash` covers, byte for byte:
//!
//! ```text
//! offset  size  field
//!      0     1  format version (0x01)
//!      1     8  seq, u64 big-endian
//!      9     8  recorded_at, i64 big-endian, unix microseconds
//!     17    32  prev_hash (all zero for the genesis entry)
//!     49    32  key_id of the signing key
//!     81    64  ed25519 signature over EVENT_SIGNATURE || body
//!    145     4  body length n, u32 big-endian
//!    149     n  body: the client's EventBody bytes, verbatim
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::{tags, EntryHash, KeyId, Seq, UnixMicros};

/// The only entry format version so far.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 149;
/// Byte offset of `recorded_at` in the encoding (used for the time index without decoding).
pub const RECORDED_AT_OFFSET: usize = 9;

/// One entry of the ledger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// Position in the ledger.
    pub seq: Seq,
    /// Transaction time: when the ledger accepted the entry (never decreasing).
    pub recorded_at: UnixMicros,
    /// `entry_hash` of the entry before; zero for the genesis.
    pub prev_hash: EntryHash,
    /// Which key signed the body.
    pub key_id: KeyId,
    /// ed25519 signature over `EVENT_SIGNATURE || body`.
    pub signature: [u8; 64],
    /// The client's protobuf `EventBody`, stored verbatim.
    pub body: Vec<u8>,
}

/// Why bytes are not an encoded entry.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("entry is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Bytes found.
        len: usize,
    },
    /// The version byte is not one this code reads.
    #[error("unknown entry format version {found} (expected {FORMAT_VERSION})")]
    UnknownVersion {
        /// Version byte found.
        found: u8,
    },
    /// The body length field does not match the bytes present.
    #[error("body length field says {declared} bytes but {present} follow the header")]
    LengthMismatch {
        /// What the length field says.
        declared: usize,
        /// What is there.
        present: usize,
    },
}

impl Entry {
    /// The fixed-layout encoding (see the module docs and docs/FORMAT.md).
    pub fn encode(&self) -> Vec<u8> {
        encode_parts(
            self.seq,
            self.recorded_at,
            &self.prev_hash,
            &self.key_id,
            &self.signature,
            &self.body,
        )
    }

    /// Reads the fixed-layout encoding; every byte must be accounted for.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        if bytes[0] != FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion { found: bytes[0] });
        }
        let declared = u32::from_be_bytes(bytes[145..149].try_into().expect("4 bytes")) as usize;
        let present = bytes.len() - HEADER_LEN;
        if declared != present {
            return Err(DecodeError::LengthMismatch { declared, present });
        }
        Ok(Entry {
            seq: Seq(u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"))),
            recorded_at: UnixMicros(i64::from_be_bytes(
                bytes[9..17].try_into().expect("8 bytes"),
            )),
            prev_hash: EntryHash(bytes[17..49].try_into().expect("32 bytes")),
            key_id: KeyId(bytes[49..81].try_into().expect("32 bytes")),
            signature: bytes[81..145].try_into().expect("64 bytes"),
            body: bytes[HEADER_LEN..].to_vec(),
        })
    }

    /// `blake3(ENTRY || encode())`.
    pub fn hash(&self) -> EntryHash {
        hash_encoded(&self.encode())
    }
}

/// The fixed-layout encoding of an entry from its parts, without building an [`Entry`] (the
/// writer encodes straight from the submitted event).
pub fn encode_parts(
    seq: Seq,
    recorded_at: UnixMicros,
    prev_hash: &EntryHash,
    key_id: &KeyId,
    signature: &[u8; 64],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&seq.0.to_be_bytes());
    out.extend_from_slice(&recorded_at.0.to_be_bytes());
    out.extend_from_slice(&prev_hash.0);
    out.extend_from_slice(&key_id.0);
    out.extend_from_slice(signature);
    // Bodies are bounded far below 4 GiB by the ledger's configuration.
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The entry hash of an already-encoded entry.
pub fn hash_encoded(encoded: &[u8]) -> EntryHash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(tags::ENTRY);
    hasher.update(encoded);
    EntryHash(*hasher.finalize().as_bytes())
}

/// The message an event signature covers: `EVENT_SIGNATURE || body`.
pub fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(tags::EVENT_SIGNATURE.len() + body.len());
    msg.extend_from_slice(tags::EVENT_SIGNATURE);
    msg.extend_from_slice(body);
    msg
}

/// An event as a client submits it: body bytes, the signing key's id and the signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedEvent {
    /// Key id of the signer (must be enrolled in the ledger).
    pub key_id: KeyId,
    /// ed25519 signature over `EVENT_SIGNATURE || body`.
    pub signature: [u8; 64],
    /// The serialized `EventBody`.
    pub body: Vec<u8>,
}

impl SignedEvent {
    /// Signs `body` with `key`, as a client does.
    pub fn sign(key: &SigningKey, body: Vec<u8>) -> SignedEvent {
        let signature: Signature = key.sign(&signing_input(&body));
        SignedEvent {
            key_id: KeyId::of_public_key(key.verifying_key().as_bytes()),
            signature: signature.to_bytes(),
            body,
        }
    }
}
