//! The small value types of the record: sequence numbers, times, key ids and hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tags;

/// The position of an entry in the ledger: gapless from 0 (the genesis entry).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in time as microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    /// The current system time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMicros(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for UnixMicros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lower-case hex of the 32 bytes.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits.
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).ok()?;
                Some($name(out))
            }

            /// Takes exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map($name)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

hash_newtype!(
    /// blake3 over the fixed-layout encoding of an entry (see docs/FORMAT.md).
    EntryHash
);
hash_newtype!(
    /// Identifies an ed25519 public key: blake3 of the key id tag and the 32-byte key.
    KeyId
);
hash_newtype!(
    /// The blake3 hash of an artifact's bytes: its address in the artifact store.
    ArtifactHash
);

impl EntryHash {
    /// The `prev_hash` of the genesis entry.
    pub const ZERO: EntryHash = EntryHash([0; 32]);
}

impl KeyId {
    /// The key id of an ed25519 public key.
    pub fn of_public_key(public_key: &[u8; 32]) -> KeyId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(tags::KEY_ID);
        hasher.update(public_key);
        KeyId(*hasher.finalize().as_bytes())
    }

    /// The first 8 bytes in hex, for people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl ArtifactHash {
    /// The content address of `bytes`.
    pub fn of(bytes: &[u8]) -> ArtifactHash {
        ArtifactHash(*blake3::hash(bytes).as_bytes())
    }
}

/// The 16-byte id of a ledger, chosen at random by its genesis.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LedgerId(pub [u8; 16]);

impl LedgerId {
    /// Lower-case hex of the 16 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerId({})", self.to_hex())
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
