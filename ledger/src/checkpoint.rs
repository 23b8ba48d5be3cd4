//! Checkpoints: the ledger key's signed statement of (origin, tree size, root hash, time), in
//! the C2SP `tlog-checkpoint` body inside a C2SP `signed-note`.
//!
//! ```text
//! isms-ledger/<ledger id hex>\n        origin
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! time <unix microseconds>\n            extension line
//! \n
//! — <key name> <base64(key hash[4] || ed25519 signature[64])>\n
//! ```
//!
//! The signature covers the note text (the four lines above, with their newlines). The key name
//! is the origin; the key hash is the first 4 bytes of SHA-256(name || "\n" || 0x01 || public
//! key), as the signed-note spec fixes for Ed25519.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::UnixMicros;

/// The em dash and space that open a signature line.
pub const SIG_PREFIX: &str = "\u{2014} ";
/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// A checkpoint before signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    /// The log's origin line, `isms-ledger/<ledger id hex>`.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Merkle root over those entries.
    pub root: [u8; 32],
    /// When it was signed (the recorded_at of its last entry).
    pub time: UnixMicros,
}

/// Why a checkpoint note does not check out.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text is not a note in the expected shape.
    #[error("checkpoint note: {0}")]
    Malformed(String),
    /// No signature line by the expected key.
    #[error("checkpoint note: no signature by key {name} ({key_hash:08x})")]
    NoSignature {
        /// The expected key name.
        name: String,
        /// The expected key hash.
        key_hash: u32,
    },
    /// The signature by the expected key does not verify.
    #[error("checkpoint note: signature by {name} does not verify")]
    BadSignature {
        /// The key name.
        name: String,
    },
}

/// The signed-note key hash of an Ed25519 key.
pub fn key_hash(name: &str, public_key: &VerifyingKey) -> u32 {
    note_key_hash(name, ALG_ED25519, public_key.as_bytes())
}

/// The signed-note key ID of any key: the first 4 bytes, big-endian, of
/// SHA-256(name || "\n" || signature type || public key). Cosignatures use the same rule with
/// their own signature type (0x04).
pub fn note_key_hash(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([signature_type]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes(digest[..4].try_into().expect("4 bytes"))
}

/// The signed-note verifier key string: `<name>+<key hash hex>+<base64(0x01 || key)>`.
pub fn verifier_key(name: &str, public_key: &VerifyingKey) -> String {
    let mut raw = vec![ALG_ED25519];
    raw.extend_from_slice(public_key.as_bytes());
    format!(
        "{name}+{:08x}+{}",
        key_hash(name, public_key),
        B64.encode(raw)
    )
}

/// Parses a verifier key string back into its name and public key.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, VerifyingKey), CheckpointError> {
    let bad = |why: &str| CheckpointError::Malformed(format!("verifier key: {why}"));
    // The name comes first and holds no '+'; the base64 key may hold '+', so split from the
    // left and leave the key whole.
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<hash>+<key>"));
    };
    let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
    if raw.len() != 33 || raw[0] != ALG_ED25519 {
        return Err(bad("key is not 0x01 followed by a 32-byte Ed25519 key"));
    }
    let public_key = VerifyingKey::from_bytes(raw[1..].try_into().expect("32 bytes"))
        .map_err(|_| bad("not a valid Ed25519 point"))?;
    if format!("{:08x}", key_hash(name, &public_key)) != hash {
        return Err(bad("key hash does not match name and key"));
    }
    Ok((name.to_string(), public_key))
}

impl Checkpoint {
    /// The note text that is signed.
    pub fn body_text(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.time.0
        )
    }

    /// Signs the checkpoint with the ledger key; the key name is the origin.
    pub fn sign(&self, key: &SigningKey) -> SignedCheckpoint {
        let text = self.body_text();
        let signature: Signature = key.sign(text.as_bytes());
        let mut blob = key_hash(&self.origin, &key.verifying_key())
            .to_be_bytes()
            .to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        let note = format!("{text}\n{SIG_PREFIX}{} {}\n", self.origin, B64.encode(blob));
        SignedCheckpoint {
            checkpoint: self.clone(),
            note,
        }
    }
}

/// A checkpoint with its signed-note text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The whole note, signature lines included, exactly as stored.
    pub note: String,
}

impl SignedCheckpoint {
    /// Parses a note and checks its signature by `public_key` under the key name `origin`.
    /// Other signature lines (witnesses, for example) are allowed and ignored.
    pub fn verify(
        note: &str,
        public_key: &VerifyingKey,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let checkpoint = Self::parse_unverified(note)?;
        let (text, sigs) = split_note(note)?;
        let name = checkpoint.origin.clone();
        let want = key_hash(&name, public_key);
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(CheckpointError::Malformed(format!(
                    "signature line does not start with an em dash: {line:?}"
                )));
            };
            let Some((line_name, blob)) = rest.rsplit_once(' ') else {
                return Err(CheckpointError::Malformed(
                    "signature line has no blob".into(),
                ));
            };
            let Ok(blob) = B64.decode(blob) else {
                return Err(CheckpointError::Malformed("signature is not base64".into()));
            };
            if line_name != name || blob.len() != 68 {
                continue;
            }
            if u32::from_be_bytes(blob[..4].try_into().expect("4 bytes")) != want {
                continue;
            }
            let signature = Signature::from_bytes(blob[4..].try_into().expect("64 bytes"));
            return public_key
                .verify(text.as_bytes(), &signature)
                .map(|()| SignedCheckpoint {
                    checkpoint,
                    note: note.to_string(),
                })
                .map_err(|_| CheckpointError::BadSignature { name });
        }
        Err(CheckpointError::NoSignature {
            name,
            key_hash: want,
        })
    }

    /// Reads the checkpoint body without checking any signature.
    pub fn parse_unverified(note: &str) -> Result<Checkpoint, CheckpointError> {
        let (text, _) = split_note(note)?;
        let bad = |why: String| CheckpointError::Malformed(why);
        let mut lines = text.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line".into()))?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| bad("second line is not a decimal tree size".into()))?;
        let root: [u8; 32] = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("third line is not a base64 32-byte root hash".into()))?;
        let time = lines
            .next()
            .and_then(|l| l.strip_prefix("time "))
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| bad("fourth line is not `time <unix microseconds>`".into()))?;
        let extra = lines.count();
        if extra > 0 {
            return Err(bad(format!(
                "the note text has {} lines; a checkpoint has exactly four (origin, size, root, \
                 time)",
                4 + extra
            )));
        }
        let checkpoint = Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            time: UnixMicros(time),
        };
        // One checkpoint has one text: a size or time with a sign or leading zeros, or a
        // non-canonical base64 root, would let two texts (and two signatures) say the same.
        if checkpoint.body_text() != text {
            return Err(bad(
                "the note text is not in canonical form (decimal numbers without sign or \
                 leading zeros, padded base64)"
                    .into(),
            ));
        }
        Ok(checkpoint)
    }
}

/// Splits a signed note into its text (with the final newline) and its signature block (every
/// signature line, each ending in a newline). Refuses control characters other than newline.
pub fn split_note(note: &str) -> Result<(&str, &str), CheckpointError> {
    let Some(at) = note.find("\n\n") else {
        return Err(CheckpointError::Malformed(
            "no blank line before the signatures".into(),
        ));
    };
    if note.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(CheckpointError::Malformed(
            "control character in note".into(),
        ));
    }
    let (text, sigs) = (&note[..=at], &note[at + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(CheckpointError::Malformed(
            "signature block must end in a newline".into(),
        ));
    }
    Ok((text, sigs))
}
