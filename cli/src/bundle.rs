//! The export bundle (docs/BUNDLE.md): one file holding a ledger's entries exactly as encoded
//! in the permanent record, its checkpoints, its keys and optionally its artifacts, and the
//! offline verification of such a bundle with nothing but the ledger's public key.
//!
//! Architecture invariant: verification here reads no server and no sled store. It hands the
//! raw entries and checkpoint notes to `ledger::ChainVerifier`, the same engine `Ledger::verify`
//! uses, so a bundle verifies exactly when the ledger it came from would.

use std::fmt;

use ed25519_dalek::VerifyingKey;
use ledger::checkpoint::verifier_key;
use ledger::{ChainVerifier, Failure, SignedCheckpoint, VerifyError, VerifyReport};
use serde::{Deserialize, Serialize};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"ISMSBNDL";
/// The bundle format version this code writes and reads.
pub const VERSION: u8 = 1;

/// Record tags.
mod tag {
    pub const END: u8 = 0;
    pub const MANIFEST: u8 = 1;
    pub const ENTRY: u8 = 2;
    pub const CHECKPOINT: u8 = 3;
    pub const KEYS: u8 = 4;
    pub const ARTIFACT: u8 = 5;
}

/// What the bundle says about itself (informational: verification trusts none of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Hex ledger id.
    pub ledger_id: String,
    /// The checkpoint origin.
    pub origin: String,
    /// The ledger's signed-note verifier key, as the genesis states it.
    pub ledger_key: String,
    /// Number of entries.
    pub entries: u64,
    /// Number of checkpoints.
    pub checkpoints: u64,
    /// Number of artifacts.
    pub artifacts: u64,
    /// When the bundle was written (RFC 3339).
    pub exported_at: String,
}

/// One key as the entries enrolled it (informational).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Hex key id.
    pub key_id: String,
    /// Hex ed25519 public key.
    pub public_key: String,
    /// Who holds it.
    pub subject: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// The entry that enrolled it.
    pub enrolled_at: u64,
    /// The entry that revoked it, if any.
    pub revoked_at: Option<u64>,
}

/// A whole bundle in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// Entries in seq order, each in the record's fixed-layout encoding.
    pub entries: Vec<Vec<u8>>,
    /// Checkpoint notes (signed-note text).
    pub checkpoints: Vec<String>,
    /// The keys.
    pub keys: Vec<KeyInfo>,
    /// Artifacts: blake3 hash and content.
    pub artifacts: Vec<([u8; 32], Vec<u8>)>,
}

/// Why a bundle could not be read: where in the file, and (when inside one) which entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset of the record that is malformed.
    pub offset: usize,
    /// The entry (seq) being read, if the problem is inside the entries.
    pub entry: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(seq) => write!(f, "bundle byte {}: entry {seq}: {}", self.offset, self.what),
            None => write!(f, "bundle byte {}: {}", self.offset, self.what),
        }
    }
}

impl std::error::Error for ReadError {}

fn record(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    // Entries are bounded by the ledger's body limit; artifacts by the server's 64 MiB.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

impl Bundle {
    /// The bundle's bytes (docs/BUNDLE.md).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        let manifest = serde_json::to_vec(&self.manifest).expect("manifest serializes");
        record(&mut out, tag::MANIFEST, &manifest);
        for e in &self.entries {
            record(&mut out, tag::ENTRY, e);
        }
        for c in &self.checkpoints {
            record(&mut out, tag::CHECKPOINT, c.as_bytes());
        }
        let keys = serde_json::to_vec(&self.keys).expect("keys serialize");
        record(&mut out, tag::KEYS, &keys);
        for (hash, content) in &self.artifacts {
            let mut payload = hash.to_vec();
            payload.extend_from_slice(content);
            record(&mut out, tag::ARTIFACT, &payload);
        }
        record(&mut out, tag::END, &[]);
        out
    }

    /// Reads a bundle, refusing anything that is not exactly the documented layout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, ReadError> {
        let err = |offset: usize, entry: Option<u64>, what: String| ReadError {
            offset,
            entry,
            what,
        };
        if bytes.len() < 9 || &bytes[..8] != MAGIC {
            return Err(err(
                0,
                None,
                "not an isms bundle (no ISMSBNDL magic)".into(),
            ));
        }
        if bytes[8] != VERSION {
            return Err(err(
                8,
                None,
                format!("bundle version {} (this isms reads {VERSION})", bytes[8]),
            ));
        }
        let mut bundle = Bundle::default();
        let mut at = 9;
        let mut saw_manifest = false;
        loop {
            let entry = Some(bundle.entries.len() as u64);
            if at + 5 > bytes.len() {
                return Err(err(
                    at,
                    entry,
                    "the bundle ends inside a record header (truncated?)".into(),
                ));
            }
            let tag = bytes[at];
            let len =
                u32::from_be_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
            let start = at + 5;
            let Some(payload) = bytes.get(start..start + len) else {
                let in_entry = (tag == tag::ENTRY).then_some(entry).flatten();
                return Err(err(
                    at,
                    in_entry,
                    format!("a record of {len} bytes runs past the end of the bundle"),
                ));
            };
            match tag {
                tag::END => {
                    if start + len != bytes.len() {
                        return Err(err(at, None, "bytes after the end record".into()));
                    }
                    break;
                }
                tag::MANIFEST => {
                    bundle.manifest = serde_json::from_slice(payload)
                        .map_err(|e| err(at, None, format!("manifest: {e}")))?;
                    saw_manifest = true;
                }
                tag::ENTRY => bundle.entries.push(payload.to_vec()),
                tag::CHECKPOINT => bundle.checkpoints.push(
                    String::from_utf8(payload.to_vec())
                        .map_err(|_| err(at, None, "checkpoint note is not UTF-8".into()))?,
                ),
                tag::KEYS => {
                    bundle.keys = serde_json::from_slice(payload)
                        .map_err(|e| err(at, None, format!("keys: {e}")))?;
                }
                tag::ARTIFACT => {
                    if payload.len() < 32 {
                        return Err(err(
                            at,
                            None,
                            "artifact record shorter than its hash".into(),
                        ));
                    }
                    let hash: [u8; 32] = payload[..32].try_into().expect("32 bytes");
                    bundle.artifacts.push((hash, payload[32..].to_vec()));
                }
                other => {
                    // A changed tag byte inside the entries lands here: name the entry it
                    // would have been.
                    return Err(err(at, entry, format!("unknown record tag {other}")));
                }
            }
            at = start + len;
        }
        if !saw_manifest {
            return Err(err(9, None, "no manifest record".into()));
        }
        Ok(bundle)
    }
}

/// Reads a ledger's public key: a signed-note verifier key (`origin+hash+base64`), 64 hex
/// digits, or a file holding either.
pub fn parse_ledger_key(text: &str) -> anyhow::Result<VerifyingKey> {
    let text = text.trim();
    let from_text = |t: &str| -> anyhow::Result<VerifyingKey> {
        let t = t.trim();
        if t.contains('+') {
            return parse_vkey(t);
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(t, &mut raw).map_err(|_| {
            anyhow::anyhow!("expected a verifier key (origin+hash+base64) or 64 hex digits")
        })?;
        Ok(VerifyingKey::from_bytes(&raw)?)
    };
    if let Ok(key) = from_text(text) {
        return Ok(key);
    }
    let path = std::path::Path::new(text);
    if path.is_file() {
        let content = std::fs::read_to_string(path)?;
        return from_text(&content).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    from_text(text)
}

/// Parses a signed-note verifier key `<name>+<hash>+<base64(0x01 || key)>`.
pub fn parse_vkey(vkey: &str) -> anyhow::Result<VerifyingKey> {
    Ok(ledger::checkpoint::parse_verifier_key(vkey)?.1)
}

/// The verifier key string of a ledger (what `--ledger-key` takes).
pub fn ledger_vkey(origin: &str, key: &VerifyingKey) -> String {
    verifier_key(origin, key)
}

/// A verification that did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The bundle's layout is broken.
    Read(ReadError),
    /// The chain does not verify.
    Chain(VerifyError),
    /// The genesis names another ledger key than the one given.
    WrongLedgerKey {
        /// The key given.
        expected: String,
        /// The key the genesis names.
        found: String,
    },
    /// No checkpoint signed by the ledger key covers every entry.
    Uncovered {
        /// Entries present.
        entries: u64,
        /// The largest checkpoint size.
        latest: u64,
    },
    /// An artifact's content does not hash to its name.
    Artifact {
        /// The hash it is filed under.
        expected: String,
        /// What its bytes hash to.
        found: String,
    },
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Read(e) => write!(f, "{e}"),
            VerifyFailure::Chain(e) => {
                write!(
                    f,
                    "entry {}: {:?}: expected {}, found {}",
                    e.seq, e.failure, e.expected, e.found
                )?;
                if e.failure == Failure::ChainBroken && e.seq > 0 {
                    write!(f, " (entry {} or entry {} was altered)", e.seq - 1, e.seq)?;
                }
                Ok(())
            }
            VerifyFailure::WrongLedgerKey { expected, found } => write!(
                f,
                "entry 0: the genesis names ledger key {found}, not the one given ({expected})"
            ),
            VerifyFailure::Uncovered { entries, latest } => write!(
                f,
                "entry {}: no checkpoint covers it: {entries} entries, the latest checkpoint \
                 covers {latest}",
                entries.saturating_sub(1)
            ),
            VerifyFailure::Artifact { expected, found } => {
                write!(f, "artifact {expected}: its content hashes to {found}")
            }
        }
    }
}

impl std::error::Error for VerifyFailure {}

/// What a passing verification covered.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The engine's report.
    pub report: VerifyReport,
    /// The latest checkpoint checked: what the verification rests on.
    pub checkpoint: SignedCheckpoint,
    /// Artifacts whose content was checked.
    pub artifacts: u64,
}

/// Verifies raw entries (seq order from 0) and checkpoint notes against `ledger_key` with
/// `ledger::ChainVerifier`. `progress` is told how many entries are done.
pub fn verify_chain(
    entries: &[Vec<u8>],
    checkpoints: &[String],
    ledger_key: &VerifyingKey,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let Some(genesis) = entries.first() else {
        return Err(VerifyFailure::Uncovered {
            entries: 0,
            latest: 0,
        });
    };
    let mut verifier = ChainVerifier::from_genesis(genesis).map_err(VerifyFailure::Chain)?;
    let genesis_key = verifier.genesis().ledger_public_key;
    if genesis_key != ledger_key.to_bytes() {
        let origin = verifier.genesis().origin.clone();
        let found = VerifyingKey::from_bytes(&genesis_key)
            .map(|k| verifier_key(&origin, &k))
            .unwrap_or_else(|_| hex::encode(genesis_key));
        return Err(VerifyFailure::WrongLedgerKey {
            expected: verifier_key(&origin, ledger_key),
            found,
        });
    }
    // Checkpoint sizes come from the notes themselves; a note that does not parse is refused
    // by the verifier with the checkpoint's own error.
    let sized: Vec<(u64, &str)> = checkpoints
        .iter()
        .map(|n| {
            let size = SignedCheckpoint::parse_unverified(n)
                .map(|c| c.size)
                .unwrap_or(0);
            (size, n.as_str())
        })
        .collect();
    verifier
        .add_checkpoints(sized)
        .map_err(VerifyFailure::Chain)?;
    progress(1);
    const CHUNK: usize = 1024;
    let mut seq = 1u64;
    for chunk in entries[1..].chunks(CHUNK) {
        let fed: Vec<(u64, Vec<u8>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| (seq + i as u64, e.clone()))
            .collect();
        verifier.feed(&fed, None).map_err(VerifyFailure::Chain)?;
        seq += chunk.len() as u64;
        progress(seq);
    }
    let report = verifier
        .finish(Some(entries.len() as u64))
        .map_err(VerifyFailure::Chain)?;
    let latest = report
        .latest_checkpoint
        .clone()
        .filter(|c| c.checkpoint.size == entries.len() as u64);
    let Some(checkpoint) = latest else {
        return Err(VerifyFailure::Uncovered {
            entries: entries.len() as u64,
            latest: report
                .latest_checkpoint
                .as_ref()
                .map_or(0, |c| c.checkpoint.size),
        });
    };
    Ok(Verified {
        report,
        checkpoint,
        artifacts: 0,
    })
}

/// Verifies a whole bundle: its chain, its checkpoints and its artifacts' content.
pub fn verify_bundle(
    bytes: &[u8],
    ledger_key: &VerifyingKey,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let bundle = Bundle::from_bytes(bytes).map_err(VerifyFailure::Read)?;
    verify_parsed(&bundle, ledger_key, progress)
}

/// Verifies a bundle already read (see [`verify_bundle`]).
pub fn verify_parsed(
    bundle: &Bundle,
    ledger_key: &VerifyingKey,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let mut verified = verify_chain(&bundle.entries, &bundle.checkpoints, ledger_key, progress)?;
    for (hash, content) in &bundle.artifacts {
        let found = blake3::hash(content);
        if found.as_bytes() != hash {
            return Err(VerifyFailure::Artifact {
                expected: hex::encode(hash),
                found: found.to_hex().to_string(),
            });
        }
        verified.artifacts += 1;
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips() {
        let bundle = Bundle {
            manifest: Manifest {
                ledger_id: "00".into(),
                entries: 1,
                ..Manifest::default()
            },
            entries: vec![vec![1, 2, 3]],
            checkpoints: vec!["note\n".into()],
            keys: Vec::new(),
            artifacts: vec![([9; 32], b"scan".to_vec())],
        };
        let bytes = bundle.to_bytes();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), bundle);
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 3);
        assert!(Bundle::from_bytes(&cut).is_err());
    }

    #[test]
    fn verifier_keys_with_plus_in_their_base64_parse() {
        // Regression: rsplitn-based parsing refused keys whose base64 holds a '+'.
        for seed in 0..64u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            let vkey = ledger_vkey("isms-ledger/00", &key);
            assert_eq!(parse_ledger_key(&vkey).unwrap(), key, "{vkey}");
        }
    }
}
