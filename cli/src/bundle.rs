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

/// What the bundle says about itself. Verification takes nothing from it, but refuses a
/// manifest that contradicts the bundle (docs/BUNDLE.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// One key as the entries enrolled it (derived; checked against the entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A record of a bundle, as verification names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleRecord {
    /// The magic and version bytes.
    Header,
    /// The manifest.
    Manifest,
    /// The entry with this seq.
    Entry(u64),
    /// The n-th checkpoint record (from 1), before its note is read.
    CheckpointRecord(usize),
    /// The key list.
    Keys,
    /// The n-th artifact record (from 1).
    Artifact(usize),
    /// The end record.
    End,
    /// A record whose tag is not one of the layout's.
    Unknown(u8),
}

impl BundleRecord {
    /// The entry's seq, when the record is an entry.
    pub fn seq(&self) -> Option<u64> {
        match self {
            BundleRecord::Entry(seq) => Some(*seq),
            _ => None,
        }
    }
}

impl fmt::Display for BundleRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleRecord::Header => write!(f, "the bundle header"),
            BundleRecord::Manifest => write!(f, "the manifest"),
            BundleRecord::Entry(seq) => write!(f, "entry {seq}"),
            BundleRecord::CheckpointRecord(n) => write!(f, "checkpoint record {n}"),
            BundleRecord::Keys => write!(f, "the key list"),
            BundleRecord::Artifact(n) => write!(f, "artifact record {n}"),
            BundleRecord::End => write!(f, "the end record"),
            BundleRecord::Unknown(tag) => write!(f, "a record with tag {tag}"),
        }
    }
}

/// Why a bundle could not be read: where in the file, which record, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset of the record that is malformed.
    pub offset: usize,
    /// The record being read.
    pub record: BundleRecord,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (bundle byte {}): {}",
            self.record, self.offset, self.what
        )
    }
}

impl std::error::Error for ReadError {}

/// Where the reader is in the documented record order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Section {
    Start,
    Manifest,
    Entries,
    Checkpoints,
    Keys,
    Artifacts,
}

fn record(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    // Entries are bounded by the ledger's body limit; artifacts by the server's 64 MiB.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

impl Bundle {
    /// The ledger key its genesis (entry 0) names, unverified: where a verification that
    /// follows the key hand-overs starts. `None` when entry 0 is not a readable genesis.
    pub fn genesis_key(&self) -> Option<VerifyingKey> {
        let verifier = ledger::ChainVerifier::from_genesis(self.entries.first()?).ok()?;
        VerifyingKey::from_bytes(&verifier.genesis().ledger_public_key).ok()
    }

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

    /// Reads a bundle, refusing anything that is not exactly the documented layout: one
    /// manifest, the entries, the checkpoints, one key list, the artifacts and an empty end
    /// record, in that order, with nothing after the end record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, ReadError> {
        let err = |offset: usize, record: BundleRecord, what: String| ReadError {
            offset,
            record,
            what,
        };
        if bytes.len() < 9 || &bytes[..8] != MAGIC {
            return Err(err(
                0,
                BundleRecord::Header,
                "not an isms bundle (no ISMSBNDL magic)".into(),
            ));
        }
        if bytes[8] != VERSION {
            return Err(err(
                8,
                BundleRecord::Header,
                format!("bundle version {} (this isms reads {VERSION})", bytes[8]),
            ));
        }
        let mut bundle = Bundle::default();
        let mut at = 9;
        let mut section = Section::Start;
        // The record read last, to say where something is missing or out of place.
        let mut last = BundleRecord::Header;
        loop {
            let Some(&tag) = bytes.get(at) else {
                return Err(err(
                    at,
                    BundleRecord::End,
                    format!("missing: the bundle ends after {last} (truncated?)"),
                ));
            };
            let record = match tag {
                tag::END => BundleRecord::End,
                tag::MANIFEST => BundleRecord::Manifest,
                tag::ENTRY => BundleRecord::Entry(bundle.entries.len() as u64),
                tag::CHECKPOINT => BundleRecord::CheckpointRecord(bundle.checkpoints.len() + 1),
                tag::KEYS => BundleRecord::Keys,
                tag::ARTIFACT => BundleRecord::Artifact(bundle.artifacts.len() + 1),
                // A changed tag byte inside the entries lands here: name the entry it would
                // have been.
                other if section == Section::Entries => {
                    return Err(err(
                        at,
                        BundleRecord::Entry(bundle.entries.len() as u64),
                        format!("unknown record tag {other}"),
                    ))
                }
                other => BundleRecord::Unknown(other),
            };
            if at + 5 > bytes.len() {
                return Err(err(
                    at,
                    record,
                    "the bundle ends inside the record header (truncated?)".into(),
                ));
            }
            let len =
                u32::from_be_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
            let start = at + 5;
            let Some(payload) = bytes.get(start..start + len) else {
                return Err(err(
                    at,
                    record,
                    format!("a record of {len} bytes runs past the end of the bundle"),
                ));
            };
            // Which sections may hold this record, and the one it moves the reader to.
            let out_of_order = |what: &str| {
                err(
                    at,
                    record.clone(),
                    format!("{what}; it follows {last} (the order is: manifest, entries, checkpoints, key list, artifacts, end)"),
                )
            };
            match tag {
                tag::END => {
                    if section < Section::Keys {
                        return Err(out_of_order("the end record before the key list"));
                    }
                    if len != 0 {
                        return Err(err(
                            at,
                            record,
                            format!("must be empty; it holds {len} bytes"),
                        ));
                    }
                    if start != bytes.len() {
                        return Err(err(
                            at,
                            record,
                            format!("{} bytes follow it", bytes.len() - start),
                        ));
                    }
                    break;
                }
                tag::MANIFEST => {
                    if section != Section::Start {
                        return Err(out_of_order("a manifest that is not the first record"));
                    }
                    section = Section::Manifest;
                    bundle.manifest = serde_json::from_slice(payload)
                        .map_err(|e| err(at, record.clone(), format!("{e}")))?;
                }
                tag::ENTRY => {
                    if section != Section::Manifest && section != Section::Entries {
                        return Err(out_of_order(if section == Section::Start {
                            "an entry before the manifest"
                        } else {
                            "an entry after the entries"
                        }));
                    }
                    section = Section::Entries;
                    bundle.entries.push(payload.to_vec());
                }
                tag::CHECKPOINT => {
                    if section != Section::Entries && section != Section::Checkpoints {
                        return Err(out_of_order(if section < Section::Entries {
                            "a checkpoint before the entries"
                        } else {
                            "a checkpoint after the key list"
                        }));
                    }
                    section = Section::Checkpoints;
                    bundle
                        .checkpoints
                        .push(String::from_utf8(payload.to_vec()).map_err(|_| {
                            err(at, record.clone(), "the note is not UTF-8".into())
                        })?);
                }
                tag::KEYS => {
                    if section == Section::Keys || section == Section::Artifacts {
                        return Err(out_of_order("a second key list"));
                    }
                    if section < Section::Entries {
                        return Err(out_of_order("a key list before the entries"));
                    }
                    section = Section::Keys;
                    bundle.keys = serde_json::from_slice(payload)
                        .map_err(|e| err(at, record.clone(), format!("{e}")))?;
                }
                tag::ARTIFACT => {
                    if section < Section::Keys {
                        return Err(out_of_order("an artifact before the key list"));
                    }
                    section = Section::Artifacts;
                    if payload.len() < 32 {
                        return Err(err(at, record, "shorter than its hash".into()));
                    }
                    let hash: [u8; 32] = payload[..32].try_into().expect("32 bytes");
                    bundle.artifacts.push((hash, payload[32..].to_vec()));
                }
                other => return Err(err(at, record, format!("unknown record tag {other}"))),
            }
            last = record;
            at = start + len;
        }
        Ok(bundle)
    }
}

/// Reads a ledger's public key: a signed-note verifier key (`origin+hash+base64`), 64 hex
/// digits, or a file holding either.
pub fn parse_ledger_key(text: &str) -> anyhow::Result<VerifyingKey> {
    Ok(parse_ledger_key_named(text)?.key)
}

/// The ledger key an auditor gives, and the origin its verifier key names (none for hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenKey {
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// The key name of a signed-note verifier key: the origin of the ledger it is for.
    pub origin: Option<String>,
}

/// Reads a ledger's public key as [`parse_ledger_key`] does, keeping the origin a verifier key
/// names.
pub fn parse_ledger_key_named(text: &str) -> anyhow::Result<GivenKey> {
    let text = text.trim();
    let from_text = |t: &str| -> anyhow::Result<GivenKey> {
        let t = t.trim();
        if t.contains('+') {
            let (origin, key) = ledger::checkpoint::parse_verifier_key(t)?;
            return Ok(GivenKey {
                key,
                origin: Some(origin),
            });
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(t, &mut raw).map_err(|_| {
            anyhow::anyhow!("expected a verifier key (origin+hash+base64) or 64 hex digits")
        })?;
        Ok(GivenKey {
            key: VerifyingKey::from_bytes(&raw)?,
            origin: None,
        })
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

/// What a verification rests on, given by the auditor from outside the bundle or server.
#[derive(Clone, Debug)]
pub struct Trust {
    /// The ledger key (and the origin its verifier key names).
    pub ledger_key: GivenKey,
    /// A checkpoint note the auditor kept (from an earlier audit, a receipt, a witness): the
    /// verified history must reach its size and have its root there.
    pub checkpoint: Option<String>,
}

impl Trust {
    /// Trust in the ledger key alone.
    pub fn key(key: VerifyingKey) -> Trust {
        Trust {
            ledger_key: GivenKey { key, origin: None },
            checkpoint: None,
        }
    }
}

/// A verification that did not pass. Every variant names the record it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The bundle's layout is broken.
    Read(ReadError),
    /// The chain, a checkpoint or the trusted checkpoint does not verify.
    Chain(VerifyError),
    /// The genesis names another ledger key than the one given.
    WrongLedgerKey {
        /// The key given.
        expected: String,
        /// The key the genesis names.
        found: String,
    },
    /// The verifier key given names another ledger's origin than the genesis.
    KeyOfAnotherLedger {
        /// The origin the verifier key names.
        key_origin: String,
        /// The genesis's origin.
        origin: String,
    },
    /// A checkpoint note that does not parse, so it has no size to be named by.
    UnreadableCheckpoint {
        /// Its place among the checkpoint records, from 1.
        position: usize,
        /// The size of the checkpoint before it, if any.
        after: Option<u64>,
        /// What is wrong.
        what: String,
    },
    /// No checkpoint signed by the ledger key covers every entry.
    Uncovered {
        /// Entries present.
        entries: u64,
        /// The largest checkpoint size.
        latest: u64,
    },
    /// The manifest contradicts the bundle.
    Manifest {
        /// The manifest field.
        field: &'static str,
        /// What the bundle holds.
        expected: String,
        /// What the manifest says.
        found: String,
    },
    /// The key list differs from the keys the entries enrol.
    Keys {
        /// The first key (hex id) that differs, or the count.
        expected: String,
        /// What the key list holds there.
        found: String,
    },
    /// An artifact's content does not hash to its name.
    Artifact {
        /// The hash it is filed under.
        expected: String,
        /// What its bytes hash to.
        found: String,
    },
}

impl VerifyFailure {
    /// The seq of the entry the failure is about, if it is about an entry.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyFailure::Read(r) => r.record.seq(),
            VerifyFailure::Chain(c) => Some(c.seq),
            VerifyFailure::WrongLedgerKey { .. } | VerifyFailure::KeyOfAnotherLedger { .. } => {
                Some(0)
            }
            VerifyFailure::Uncovered { entries, .. } => Some(entries.saturating_sub(1)),
            _ => None,
        }
    }
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Read(e) => write!(f, "{e}"),
            VerifyFailure::Chain(e) => {
                write!(
                    f,
                    "{}: {:?}: expected {}, found {}",
                    e.record, e.failure, e.expected, e.found
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
            VerifyFailure::KeyOfAnotherLedger { key_origin, origin } => write!(
                f,
                "entry 0: the verifier key given is for {key_origin}, but the genesis's origin \
                 is {origin}: it is another ledger's key"
            ),
            VerifyFailure::UnreadableCheckpoint {
                position,
                after,
                what,
            } => {
                write!(f, "checkpoint record {position}")?;
                if let Some(size) = after {
                    write!(f, " (after the checkpoint of size {size})")?;
                }
                write!(f, ": {what}")
            }
            VerifyFailure::Uncovered { entries, latest } => write!(
                f,
                "entry {}: no checkpoint covers it: {entries} entries, the latest checkpoint \
                 covers {latest}",
                entries.saturating_sub(1)
            ),
            VerifyFailure::Manifest {
                field,
                expected,
                found,
            } => write!(
                f,
                "the manifest: {field} is {found}, but the bundle holds {expected}"
            ),
            VerifyFailure::Keys { expected, found } => write!(
                f,
                "the key list: expected {expected} (as the entries enrol them), found {found}"
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
    /// The trusted checkpoint the history was found to agree with, if one was given.
    pub trusted: Option<SignedCheckpoint>,
}

/// Verifies raw entries (seq order from 0) and checkpoint notes (in increasing size order)
/// against what `trust` gives, with `ledger::ChainVerifier`. `progress` is told how many
/// entries are done.
pub fn verify_chain(
    entries: &[Vec<u8>],
    checkpoints: &[String],
    trust: &Trust,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let ledger_key = &trust.ledger_key.key;
    let Some(genesis) = entries.first() else {
        return Err(VerifyFailure::Uncovered {
            entries: 0,
            latest: 0,
        });
    };
    let mut verifier = ChainVerifier::from_genesis(genesis).map_err(VerifyFailure::Chain)?;
    let genesis_key = verifier.genesis().ledger_public_key;
    let origin = verifier.genesis().origin.clone();
    if genesis_key != ledger_key.to_bytes() {
        let found = VerifyingKey::from_bytes(&genesis_key)
            .map(|k| verifier_key(&origin, &k))
            .unwrap_or_else(|_| hex::encode(genesis_key));
        return Err(VerifyFailure::WrongLedgerKey {
            expected: verifier_key(
                trust.ledger_key.origin.as_deref().unwrap_or(&origin),
                ledger_key,
            ),
            found,
        });
    }
    // The same key may serve two ledgers; a verifier key names the one it is for.
    if let Some(key_origin) = &trust.ledger_key.origin {
        if *key_origin != origin {
            return Err(VerifyFailure::KeyOfAnotherLedger {
                key_origin: key_origin.clone(),
                origin,
            });
        }
    }
    // Each checkpoint is named by its own size line; one whose text does not even parse is
    // named by its place in the bundle.
    let mut sized: Vec<(u64, &str)> = Vec::with_capacity(checkpoints.len());
    for (i, note) in checkpoints.iter().enumerate() {
        match SignedCheckpoint::parse_unverified(note) {
            Ok(c) => sized.push((c.size, note.as_str())),
            Err(e) => {
                return Err(VerifyFailure::UnreadableCheckpoint {
                    position: i + 1,
                    after: sized.last().map(|(size, _)| *size),
                    what: e.to_string(),
                })
            }
        }
    }
    verifier
        .add_checkpoints(sized)
        .map_err(VerifyFailure::Chain)?;
    let trusted = match &trust.checkpoint {
        Some(note) => {
            verifier
                .trust_checkpoint(note)
                .map_err(VerifyFailure::Chain)?;
            // The verifier checked it with the key in charge at its size (the genesis's or a
            // hand-over's).
            SignedCheckpoint::parse_unverified(note)
                .ok()
                .map(|checkpoint| SignedCheckpoint {
                    checkpoint,
                    note: note.clone(),
                })
        }
        None => None,
    };
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
        trusted,
    })
}

/// Verifies a whole bundle: its chain, its checkpoints, its manifest and key list, and its
/// artifacts' content.
pub fn verify_bundle(
    bytes: &[u8],
    trust: &Trust,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let bundle = Bundle::from_bytes(bytes).map_err(VerifyFailure::Read)?;
    verify_parsed(&bundle, trust, progress)
}

/// Verifies a bundle already read (see [`verify_bundle`]).
pub fn verify_parsed(
    bundle: &Bundle,
    trust: &Trust,
    progress: &dyn Fn(u64),
) -> Result<Verified, VerifyFailure> {
    let mut verified = verify_chain(&bundle.entries, &bundle.checkpoints, trust, progress)?;
    check_manifest_and_keys(bundle)?;
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

/// The manifest and the key list are derived from the rest of the bundle: after the chain has
/// verified, each must say exactly what the bundle holds, so that nobody reading them is
/// misled.
fn check_manifest_and_keys(bundle: &Bundle) -> Result<(), VerifyFailure> {
    let entries: Vec<ledger::Entry> = bundle
        .entries
        .iter()
        .map(|raw| ledger::Entry::decode(raw).expect("verified entries decode"))
        .collect();
    let genesis = ChainVerifier::from_genesis(&bundle.entries[0])
        .map_err(VerifyFailure::Chain)?
        .genesis()
        .clone();
    let ledger_key = VerifyingKey::from_bytes(&genesis.ledger_public_key)
        .map(|k| verifier_key(&genesis.origin, &k))
        .unwrap_or_default();
    let m = &bundle.manifest;
    let checks: [(&'static str, String, String); 6] = [
        ("ledger_id", genesis.ledger_id.to_hex(), m.ledger_id.clone()),
        ("origin", genesis.origin.clone(), m.origin.clone()),
        ("ledger_key", ledger_key, m.ledger_key.clone()),
        ("entries", entries.len().to_string(), m.entries.to_string()),
        (
            "checkpoints",
            bundle.checkpoints.len().to_string(),
            m.checkpoints.to_string(),
        ),
        (
            "artifacts",
            bundle.artifacts.len().to_string(),
            m.artifacts.to_string(),
        ),
    ];
    for (field, expected, found) in checks {
        if expected != found {
            return Err(VerifyFailure::Manifest {
                field,
                expected,
                found,
            });
        }
    }
    // The export time is the exporter's word and binds nothing, but it must be a time.
    if crate::dates::parse(&m.exported_at, crate::dates::BareDate::StartOfDay).is_err() {
        return Err(VerifyFailure::Manifest {
            field: "exported_at",
            expected: "an RFC 3339 time such as 2025-01-01T00:00:00Z".into(),
            found: m.exported_at.clone(),
        });
    }
    let keys = crate::commands::log::keys_of(&entries);
    if keys != bundle.keys {
        let differs = keys
            .iter()
            .zip(&bundle.keys)
            .find(|(a, b)| a != b)
            .map(|(a, b)| (format!("{a:?}"), format!("{b:?}")));
        let (expected, found) = differs.unwrap_or_else(|| {
            (
                format!("{} keys", keys.len()),
                format!("{} keys", bundle.keys.len()),
            )
        });
        return Err(VerifyFailure::Keys { expected, found });
    }
    Ok(())
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
