//! Witness cosignatures: C2SP `tlog-cosignature` v1 (timestamped Ed25519, signature type 0x04),
//! as extra signature lines of a checkpoint note.
//!
//! A witness signs
//!
//! ```text
//! cosignature/v1\n
//! time <unix seconds, decimal>\n
//! <the checkpoint's note text, every line with its newline>
//! ```
//!
//! and the line it returns is `— <witness name> base64(key ID[4] || timestamp u64 BE[8] ||
//! signature[64])`, with key ID = the first 4 bytes of SHA-256(name || "\n" || 0x04 || public
//! key). Our checkpoints carry a `time <µs>` extension line; it is part of the note text and so
//! part of what a witness signs (the witness vouches only for origin, size and root; see
//! docs/WITNESS.md).
//!
//! The verifier key of a witness is `<name>+<key ID hex>+base64(0x04 || public key)`.
//! The ledger's own signature (type 0x01) is checked by [`crate::checkpoint`], which ignores
//! these lines.

use std::fmt;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::checkpoint::{note_key_hash, split_note, SIG_PREFIX};

/// The signed-note signature type of timestamped Ed25519 cosignatures.
pub const COSIGNATURE_V1: u8 = 0x04;

/// The first line of every signed cosignature message (domain separation).
pub const HEADER_LINE: &str = "cosignature/v1";

/// The largest timestamp the spec allows (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of a cosignature blob: key ID, timestamp, signature.
const BLOB_LEN: usize = 4 + 8 + 64;

/// Why a cosignature, a witness key or a note does not check out.
///
/// None of these is a gRPC refusal; a caller that reports them over gRPC maps `Malformed` to
/// InvalidArgument and the other two to Unauthenticated.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// A key name, verifier key, signature line, checkpoint body or timestamp is not in the
    /// shape the specs fix; the message says which and why.
    #[error("cosignature: {0}")]
    Malformed(String),
    /// The note has no signature line with this witness's name and key ID.
    #[error("no cosignature by witness {name} ({key_hash:08x})")]
    NotCosigned {
        /// The witness name.
        name: String,
        /// The witness key ID.
        key_hash: u32,
    },
    /// A line carries this witness's name and key ID, but its signature does not verify over
    /// this checkpoint body and its timestamp.
    #[error("cosignature by witness {name} does not verify")]
    BadSignature {
        /// The witness name.
        name: String,
    },
}

fn malformed(why: impl Into<String>) -> CosignatureError {
    CosignatureError::Malformed(why.into())
}

/// Checks a signed-note key name: non-empty, no Unicode space, no `+`, no control character.
pub fn check_key_name(name: &str) -> Result<(), CosignatureError> {
    if name.is_empty() {
        return Err(malformed("key name is empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(malformed(format!(
            "key name {name:?} holds a space, a '+' or a control character"
        )));
    }
    Ok(())
}

/// Checks that `body` is a note text: non-empty, ends in a newline, no blank line, no control
/// character other than newline.
fn check_body(body: &str) -> Result<(), CosignatureError> {
    if body.is_empty() || !body.ends_with('\n') {
        return Err(malformed(
            "checkpoint body must be non-empty and end in a newline",
        ));
    }
    if body.starts_with('\n') || body.contains("\n\n") {
        return Err(malformed("checkpoint body holds a blank line"));
    }
    if body.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(malformed("checkpoint body holds a control character"));
    }
    Ok(())
}

/// The exact bytes a witness signs for `checkpoint_body` at `timestamp` (unix seconds).
pub fn signed_message(checkpoint_body: &str, timestamp: u64) -> String {
    format!("{HEADER_LINE}\ntime {timestamp}\n{checkpoint_body}")
}

/// One signature line of a note, `— <name> base64(key ID || signature bytes)`, of any type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignatureLine {
    /// The key name.
    pub name: String,
    /// The key ID (first 4 bytes of the blob, big-endian).
    pub key_hash: u32,
    /// The rest of the blob: for a cosignature, timestamp then Ed25519 signature.
    pub signature: Vec<u8>,
}

impl SignatureLine {
    /// Parses one line, with or without its final newline.
    pub fn parse(line: &str) -> Result<SignatureLine, CosignatureError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            malformed(format!(
                "{line:?} does not start with an em dash and a space"
            ))
        })?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed(format!("{line:?} has no signature after the key name")))?;
        check_key_name(name)?;
        let blob = B64
            .decode(blob)
            .map_err(|_| malformed(format!("the signature of {name} is not base64")))?;
        if blob.len() < 5 {
            return Err(malformed(format!(
                "the signature of {name} is {} bytes, too short for a key ID and a signature",
                blob.len()
            )));
        }
        Ok(SignatureLine {
            name: name.to_string(),
            key_hash: u32::from_be_bytes(blob[..4].try_into().expect("4 bytes")),
            signature: blob[4..].to_vec(),
        })
    }

    /// The line as it appears in a note, ending in a newline.
    pub fn to_line(&self) -> String {
        let mut blob = self.key_hash.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// Every signature line of a signed note, in order (the ledger's own, then any cosignatures).
pub fn signature_lines(note: &str) -> Result<Vec<SignatureLine>, CosignatureError> {
    let (_, sigs) = split_note(note).map_err(|e| malformed(e.to_string()))?;
    sigs.lines().map(SignatureLine::parse).collect()
}

/// The note text of a signed note (above the blank line, final newline included): what both
/// the ledger and the witnesses sign.
pub fn note_body(note: &str) -> Result<&str, CosignatureError> {
    split_note(note)
        .map(|(text, _)| text)
        .map_err(|e| malformed(e.to_string()))
}

/// Adds the signature lines in `lines` (one per line, as a witness returns them) to `note`,
/// skipping lines the note already holds byte for byte. Every added line must parse as a
/// signature line; whether it verifies is the caller's business ([`WitnessVerifier::verify_note`]
/// on the result checks one witness).
pub fn add_cosignatures(note: &str, lines: &str) -> Result<String, CosignatureError> {
    let existing = signature_lines(note)?;
    let mut out = note.to_string();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let parsed = SignatureLine::parse(line)?;
        if !existing.contains(&parsed) && !out.contains(&parsed.to_line()) {
            out.push_str(&parsed.to_line());
        }
    }
    Ok(out)
}

/// A witness's signing key and name. `Debug` shows the verifier key, never the secret.
#[derive(Clone)]
pub struct WitnessKey {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitnessKey")
            .field("verifier", &self.verifier().to_string())
            .finish_non_exhaustive()
    }
}

impl WitnessKey {
    /// A witness named `name` (a schema-less URL is recommended, e.g. `witness.example.org/w1`)
    /// signing with `key`. Use a key for nothing else: the signed message does not commit to the
    /// name.
    pub fn new(name: &str, key: SigningKey) -> Result<WitnessKey, CosignatureError> {
        check_key_name(name)?;
        Ok(WitnessKey {
            name: name.to_string(),
            key,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// What others need to check this witness's cosignatures.
    pub fn verifier(&self) -> WitnessVerifier {
        WitnessVerifier {
            name: self.name.clone(),
            public_key: self.key.verifying_key(),
        }
    }

    /// Cosigns a checkpoint body (the note text, final newline included) at `timestamp` (unix
    /// seconds, at most 2^63 - 1). Returns the signature line, ending in a newline.
    pub fn cosign(
        &self,
        checkpoint_body: &str,
        timestamp: u64,
    ) -> Result<String, CosignatureError> {
        check_body(checkpoint_body)?;
        if timestamp > MAX_TIMESTAMP {
            return Err(malformed(format!("timestamp {timestamp} exceeds 2^63 - 1")));
        }
        let signature = self
            .key
            .sign(signed_message(checkpoint_body, timestamp).as_bytes());
        let mut blob = timestamp.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(SignatureLine {
            name: self.name.clone(),
            key_hash: self.verifier().key_hash(),
            signature: blob,
        }
        .to_line())
    }
}

/// A witness's public identity: name and Ed25519 public key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WitnessVerifier {
    name: String,
    public_key: VerifyingKey,
}

impl fmt::Display for WitnessVerifier {
    /// The verifier key string `<name>+<key ID hex>+base64(0x04 || public key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![COSIGNATURE_V1];
        raw.extend_from_slice(self.public_key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_hash(),
            B64.encode(raw)
        )
    }
}

impl WitnessVerifier {
    /// A verifier from a name and a public key.
    pub fn new(name: &str, public_key: VerifyingKey) -> Result<WitnessVerifier, CosignatureError> {
        check_key_name(name)?;
        Ok(WitnessVerifier {
            name: name.to_string(),
            public_key,
        })
    }

    /// Parses a verifier key string `<name>+<key ID hex>+base64(0x04 || public key)`.
    pub fn parse(vkey: &str) -> Result<WitnessVerifier, CosignatureError> {
        let bad = |why: &str| malformed(format!("witness verifier key: {why}"));
        // The name holds no '+'; the base64 key may, so split from the left and keep it whole.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key ID>+<key>"));
        };
        check_key_name(name)?;
        let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        if raw.len() != 33 || raw[0] != COSIGNATURE_V1 {
            return Err(bad(
                "key is not 0x04 (cosignature/v1) followed by a 32-byte Ed25519 key",
            ));
        }
        let public_key = VerifyingKey::from_bytes(raw[1..].try_into().expect("32 bytes"))
            .map_err(|_| bad("not a valid Ed25519 point"))?;
        let verifier = WitnessVerifier {
            name: name.to_string(),
            public_key,
        };
        if format!("{:08x}", verifier.key_hash()) != hash {
            return Err(bad("key ID does not match name and key"));
        }
        Ok(verifier)
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The key ID: SHA-256(name || "\n" || 0x04 || public key)[:4], big-endian.
    pub fn key_hash(&self) -> u32 {
        note_key_hash(&self.name, COSIGNATURE_V1, self.public_key.as_bytes())
    }

    /// Whether `line` claims to be by this witness (same name and key ID).
    pub fn names(&self, line: &SignatureLine) -> bool {
        line.name == self.name && line.key_hash == self.key_hash()
    }

    /// Verifies one cosignature line over `checkpoint_body`; returns its timestamp (unix
    /// seconds).
    pub fn verify_line(
        &self,
        checkpoint_body: &str,
        line: &SignatureLine,
    ) -> Result<u64, CosignatureError> {
        if !self.names(line) {
            return Err(CosignatureError::NotCosigned {
                name: self.name.clone(),
                key_hash: self.key_hash(),
            });
        }
        if line.signature.len() != BLOB_LEN - 4 {
            return Err(malformed(format!(
                "cosignature by {} is {} bytes after the key ID, expected {}",
                self.name,
                line.signature.len(),
                BLOB_LEN - 4
            )));
        }
        let timestamp = u64::from_be_bytes(line.signature[..8].try_into().expect("8 bytes"));
        if timestamp > MAX_TIMESTAMP {
            return Err(malformed(format!(
                "cosignature by {} has timestamp {timestamp}, above 2^63 - 1",
                self.name
            )));
        }
        let signature = Signature::from_bytes(line.signature[8..].try_into().expect("64 bytes"));
        self.public_key
            .verify(
                signed_message(checkpoint_body, timestamp).as_bytes(),
                &signature,
            )
            .map_err(|_| CosignatureError::BadSignature {
                name: self.name.clone(),
            })?;
        Ok(timestamp)
    }

    /// Verifies this witness's cosignature in a signed note and returns its timestamp. Lines by
    /// other keys are ignored. Every line with this witness's name and key ID must verify (the
    /// signed-note spec asks to reject a note with a failing known signature); if there are
    /// several (the checkpoint was cosigned more than once), the earliest timestamp is returned,
    /// the tightest "existed no later than".
    pub fn verify_note(&self, note: &str) -> Result<u64, CosignatureError> {
        let body = note_body(note)?;
        let mut earliest: Option<u64> = None;
        for line in signature_lines(note)? {
            if !self.names(&line) {
                continue;
            }
            let t = self.verify_line(body, &line)?;
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        earliest.ok_or_else(|| CosignatureError::NotCosigned {
            name: self.name.clone(),
            key_hash: self.key_hash(),
        })
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::{Checkpoint, UnixMicros};

    const NAME: &str = "witness.example.org/w1";
    const TIME: u64 = 1_735_689_700;

    fn witness() -> WitnessKey {
        WitnessKey::new(NAME, SigningKey::from_bytes(&[0x04; 32])).unwrap()
    }

    /// The checkpoint of docs/FORMAT.md's worked example (ledger key 0x01..).
    fn checkpoint_note() -> String {
        Checkpoint {
            origin: "isms-ledger/07070707070707070707070707070707".into(),
            size: 2,
            root: hex::decode("603c7afe59bb271724b78a14d1cf9721aad0a6e65f52b4d247f29cfae2f65923")
                .unwrap()
                .try_into()
                .unwrap(),
            time: UnixMicros(1_735_689_601_000_000),
        }
        .sign(&SigningKey::from_bytes(&[0x01; 32]))
        .note
    }

    /// Computed once with this code and reproduced independently with OpenSSL's Ed25519 (through
    /// Python's `cryptography`) from the spec's words; the test below also recomputes every part
    /// of it with nothing but sha2 and ed25519-dalek, so a change to either side shows.
    const EXPECTED_LINE: &str = "— witness.example.org/w1 B76CegAAAABndIXkf4yjgLazdKv8pYmQtsH2tusge5DI87khcFnZiKp3r0QsaKSV3Gto/7qNK7VjuUmUxcJ5OLxPOBscR6Le4D5qAw==\n";

    #[test]
    fn known_answer_cosignature_matches_an_independent_recomputation() {
        let note = checkpoint_note();
        let body = note_body(&note).unwrap();
        assert_eq!(
            body,
            "isms-ledger/07070707070707070707070707070707\n2\n\
             YDx6/lm7Jxckt4oU0c+XIarQpuZfUrTSR/Kc+uL2WSM=\ntime 1735689601000000\n"
        );
        let line = witness().cosign(body, TIME).unwrap();

        // Independent recomputation from the spec's words.
        let key = SigningKey::from_bytes(&[0x04; 32]);
        let mut h = Sha256::new();
        h.update(NAME.as_bytes());
        h.update([0x0a, 0x04]);
        h.update(key.verifying_key().as_bytes());
        let key_id = &h.finalize()[..4];
        let message = format!("cosignature/v1\ntime 1735689700\n{body}");
        let signature = key.sign(message.as_bytes()).to_bytes();
        let mut blob = key_id.to_vec();
        blob.extend_from_slice(&TIME.to_be_bytes());
        blob.extend_from_slice(&signature);
        let expected = format!("\u{2014} {NAME} {}\n", B64.encode(&blob));
        assert_eq!(line, expected);
        assert_eq!(line, EXPECTED_LINE);
        assert!(
            include_str!("../../docs/WITNESS.md").contains(EXPECTED_LINE),
            "docs/WITNESS.md's worked example must show this line"
        );
    }

    #[test]
    fn verifier_key_round_trips_and_has_the_spec_shape() {
        let verifier = witness().verifier();
        let vkey = verifier.to_string();
        assert_eq!(
            vkey,
            "witness.example.org/w1+07be827a+BMqTrBcFGHBx1nuDx/8O/oEI6OxFMFdddyaHkzPb2r58"
        );
        let (name, rest) = vkey.split_once('+').unwrap();
        assert_eq!(name, NAME);
        assert_eq!(&rest[..8], format!("{:08x}", verifier.key_hash()));
        let raw = B64.decode(&rest[9..]).unwrap();
        assert_eq!(raw[0], 0x04);
        assert_eq!(&raw[1..], verifier.public_key().as_bytes());
        assert_eq!(WitnessVerifier::parse(&vkey).unwrap(), verifier);
        // A ledger (type 0x01) key is not a witness key.
        let ledger_vkey = crate::checkpoint::verifier_key(NAME, verifier.public_key());
        assert!(WitnessVerifier::parse(&ledger_vkey).is_err());
    }

    #[test]
    fn a_cosigned_note_verifies_and_returns_the_timestamp() {
        let note = checkpoint_note();
        let line = witness().cosign(note_body(&note).unwrap(), TIME).unwrap();
        let cosigned = add_cosignatures(&note, &line).unwrap();
        assert_eq!(cosigned, format!("{note}{line}"));
        assert_eq!(witness().verifier().verify_note(&cosigned), Ok(TIME));
        // The ledger's own check ignores the extra line.
        let ledger_key = SigningKey::from_bytes(&[0x01; 32]).verifying_key();
        crate::SignedCheckpoint::verify(&cosigned, &ledger_key).unwrap();
        // Adding the same line again changes nothing.
        assert_eq!(add_cosignatures(&cosigned, &line).unwrap(), cosigned);
    }

    #[test]
    fn a_cosignature_by_another_key_under_the_same_name_is_not_this_witness() {
        let note = checkpoint_note();
        let other = WitnessKey::new(NAME, SigningKey::from_bytes(&[0x05; 32])).unwrap();
        let line = other.cosign(note_body(&note).unwrap(), TIME).unwrap();
        let cosigned = add_cosignatures(&note, &line).unwrap();
        assert!(matches!(
            witness().verifier().verify_note(&cosigned),
            Err(CosignatureError::NotCosigned { .. })
        ));
    }

    #[test]
    fn a_cosignature_over_another_body_does_not_verify() {
        let note = checkpoint_note();
        let body = note_body(&note).unwrap();
        let line = witness()
            .cosign(&body.replace("\n2\n", "\n3\n"), TIME)
            .unwrap();
        let cosigned = add_cosignatures(&note, &line).unwrap();
        assert_eq!(
            witness().verifier().verify_note(&cosigned),
            Err(CosignatureError::BadSignature { name: NAME.into() })
        );
    }

    #[test]
    fn a_changed_timestamp_does_not_verify() {
        let note = checkpoint_note();
        let body = note_body(&note).unwrap();
        let mut line = SignatureLine::parse(&witness().cosign(body, TIME).unwrap()).unwrap();
        line.signature[..8].copy_from_slice(&(TIME - 1).to_be_bytes());
        assert_eq!(
            witness().verifier().verify_line(body, &line),
            Err(CosignatureError::BadSignature { name: NAME.into() })
        );
    }

    #[test]
    fn a_truncated_blob_is_malformed() {
        let note = checkpoint_note();
        let body = note_body(&note).unwrap();
        let mut line = SignatureLine::parse(&witness().cosign(body, TIME).unwrap()).unwrap();
        line.signature.truncate(70);
        assert!(matches!(
            witness().verifier().verify_line(body, &line),
            Err(CosignatureError::Malformed(_))
        ));
        let cosigned = add_cosignatures(&note, &line.to_line()).unwrap();
        assert!(matches!(
            witness().verifier().verify_note(&cosigned),
            Err(CosignatureError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_lines_names_and_bodies_are_refused() {
        for line in [
            "- witness.example.org/w1 AAAA",
            "— witness.example.org/w1",
            "— witness.example.org/w1 !!!",
            "— witness.example.org/w1 AAAA",
            "— a+b AAAAAAAA",
        ] {
            assert!(SignatureLine::parse(line).is_err(), "{line:?}");
        }
        assert!(WitnessKey::new("two words", SigningKey::from_bytes(&[4; 32])).is_err());
        assert!(WitnessKey::new("", SigningKey::from_bytes(&[4; 32])).is_err());
        assert!(witness().cosign("no final newline", TIME).is_err());
        assert!(witness().cosign("a\n\nb\n", TIME).is_err());
        assert!(witness().cosign("a\n", MAX_TIMESTAMP + 1).is_err());
    }
}
