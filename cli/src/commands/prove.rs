//! `isms prove inclusion | consistency | check`: RFC 9162 proofs in the JSON form of
//! docs/PROOFS.md, which any tool with blake3 and ed25519 can check, and the check itself
//! (offline, with the ledger's public key alone).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use isms_proto::v1 as pb;
use ledger::merkle::{self, Blake3Hasher, MerkleHasher};
use ledger::{Entry, SignedCheckpoint};
use serde::{Deserialize, Serialize};

use super::VerificationFailed;
use crate::bundle::parse_ledger_key;
use crate::client::{block_on, Client, ConnectArgs};
use crate::server::ledger_service::method as lm;
use crate::witness_policy::{self, WitnessPolicy};

/// The `type` of an inclusion proof document.
pub const INCLUSION_TYPE: &str = "isms-ledger/inclusion-proof/v1";
/// The `type` of a consistency proof document.
pub const CONSISTENCY_TYPE: &str = "isms-ledger/consistency-proof/v1";

/// `isms prove ...`.
#[derive(Subcommand, Debug)]
pub enum ProveCommand {
    /// Prove that an entry is in the tree of a checkpoint.
    #[command(
        after_help = "Examples:\n  isms prove inclusion --key auditor.key --seq 12 > p.json\n  \
                            isms prove inclusion --key auditor.key --event-id evidence-EV-1 \
                            --tree-size 40\n  isms prove check --ledger-key ledger.vkey p.json"
    )]
    Inclusion(InclusionArgs),
    /// Prove that an older tree is a prefix of a newer one (nothing was rewritten).
    #[command(
        after_help = "Example:\n  isms prove consistency --key auditor.key --old 10 > c.json"
    )]
    Consistency(ConsistencyArgs),
    /// Check a proof document offline against the ledger's public key.
    #[command(
        after_help = "Examples:\n  isms prove check --ledger-key ledger.vkey p.json\n  \
        isms prove check --ledger-key ledger.vkey --witness-key w1.vkey p.json"
    )]
    Check {
        /// The ledger's public key (verifier key, hex, or a file holding either).
        #[arg(long)]
        ledger_key: String,
        /// A witness you trust (verifier key or file; repeatable): the proof's checkpoints
        /// must carry the quorum's cosignatures, and the check says by when they existed.
        #[arg(long = "witness-key", value_name = "VKEY_OR_FILE")]
        witness_keys: Vec<String>,
        /// How many of the --witness-key witnesses must have cosigned (default: all).
        #[arg(long, value_name = "N")]
        witness_quorum: Option<usize>,
        /// The proof document.
        file: PathBuf,
    },
}

/// `isms prove inclusion`.
#[derive(Args, Debug)]
pub struct InclusionArgs {
    /// The entry's seq.
    #[arg(
        long,
        conflicts_with = "event_id",
        required_unless_present = "event_id"
    )]
    seq: Option<u64>,
    /// The entry's event id.
    #[arg(long)]
    event_id: Option<String>,
    /// The tree size to prove against (default: the latest).
    #[arg(long, default_value_t = 0)]
    tree_size: u64,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `isms prove consistency`.
#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    /// The older tree size.
    #[arg(long)]
    old: u64,
    /// The newer tree size (default: the latest).
    #[arg(long, default_value_t = 0)]
    new: u64,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// An inclusion proof (docs/PROOFS.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionDoc {
    /// [`INCLUSION_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The entry's seq (its leaf index).
    pub seq: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's fixed-layout encoding, hex (docs/FORMAT.md).
    pub entry: String,
    /// blake3("isms-ledger/v1/entry\0" || entry), hex.
    pub entry_hash: String,
    /// blake3(0x00 || entry_hash), hex.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, hex.
    pub path: Vec<String>,
    /// The root the path leads to, hex (must equal the checkpoint's).
    pub root: String,
    /// The checkpoint of `tree_size`, signed-note text.
    pub checkpoint: String,
}

/// A consistency proof (docs/PROOFS.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyDoc {
    /// [`CONSISTENCY_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The older root, hex.
    pub old_root: String,
    /// The newer root, hex.
    pub new_root: String,
    /// The proof's hashes, hex (RFC 9162 §2.1.4).
    pub path: Vec<String>,
    /// The checkpoint of `old_size`.
    pub old_checkpoint: String,
    /// The checkpoint of `new_size`.
    pub new_checkpoint: String,
}

fn h32(field: &str, text: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .with_context(|| format!("{field}: not 32 bytes of hex"))?;
    Ok(out)
}

fn root_of(note: &str) -> anyhow::Result<[u8; 32]> {
    Ok(SignedCheckpoint::parse_unverified(note)?.root)
}

/// Fetches an inclusion proof document.
pub async fn inclusion(
    client: &mut Client,
    seq: u64,
    tree_size: u64,
) -> anyhow::Result<InclusionDoc> {
    let request = client.read(
        pb::GetInclusionProofRequest { seq, tree_size },
        lm::GET_INCLUSION_PROOF,
    );
    let proof = client
        .ledger()
        .get_inclusion_proof(request)
        .await?
        .into_inner();
    let entry: Entry = client.entry(seq).await?;
    inclusion_doc(&entry, proof.tree_size, &proof.path, proof.checkpoint)
}

/// The inclusion proof document of `entry` in the tree of `tree_size` entries, from its audit
/// path and that tree's checkpoint note.
pub fn inclusion_doc<H: AsRef<[u8]>>(
    entry: &Entry,
    tree_size: u64,
    path: &[H],
    checkpoint: String,
) -> anyhow::Result<InclusionDoc> {
    let entry_hash = entry.hash();
    Ok(InclusionDoc {
        kind: INCLUSION_TYPE.into(),
        seq: entry.seq.0,
        tree_size,
        entry: hex::encode(entry.encode()),
        entry_hash: entry_hash.to_hex(),
        leaf_hash: hex::encode(Blake3Hasher::hash_leaf(&entry_hash.0)),
        path: path.iter().map(hex::encode).collect(),
        root: hex::encode(root_of(&checkpoint)?),
        checkpoint,
    })
}

/// Checks a proof document (either kind) against the ledger key; returns a one-line summary.
pub fn check(text: &str, ledger_key: &ed25519_dalek::VerifyingKey) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let fail = |what: String| -> anyhow::Error { VerificationFailed(what).into() };
    match value.get("type").and_then(|t| t.as_str()) {
        Some(INCLUSION_TYPE) => {
            let doc: InclusionDoc = serde_json::from_value(value)?;
            let cp = SignedCheckpoint::verify(&doc.checkpoint, ledger_key)
                .map_err(|e| fail(format!("checkpoint: {e}")))?
                .checkpoint;
            if cp.size != doc.tree_size {
                return Err(fail(format!(
                    "the checkpoint is of size {}, the proof says {}",
                    cp.size, doc.tree_size
                )));
            }
            let entry = Entry::decode(&hex::decode(&doc.entry).context("entry: not hex")?)
                .map_err(|e| fail(format!("entry {}: {e}", doc.seq)))?;
            if entry.seq.0 != doc.seq {
                return Err(fail(format!("the entry says seq {}, the proof {}", entry.seq, doc.seq)));
            }
            let entry_hash = entry.hash();
            if entry_hash.to_hex() != doc.entry_hash {
                return Err(fail(format!(
                    "entry {}: hashes to {}, the proof says {}",
                    doc.seq,
                    entry_hash.to_hex(),
                    doc.entry_hash
                )));
            }
            let path = doc
                .path
                .iter()
                .map(|p| h32("path", p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            merkle::verify_inclusion::<Blake3Hasher>(
                &Blake3Hasher::hash_leaf(&entry_hash.0),
                doc.seq,
                doc.tree_size,
                &path,
                &cp.root,
            )
            .map_err(|e| fail(format!("entry {}: inclusion proof: {e}", doc.seq)))?;
            Ok(format!(
                "inclusion proof OK: entry {} ({}) is in the tree of {} entries, root {}",
                doc.seq,
                doc.entry_hash,
                doc.tree_size,
                hex::encode(cp.root)
            ))
        }
        Some(CONSISTENCY_TYPE) => {
            let doc: ConsistencyDoc = serde_json::from_value(value)?;
            let old = SignedCheckpoint::verify(&doc.old_checkpoint, ledger_key)
                .map_err(|e| fail(format!("old checkpoint: {e}")))?
                .checkpoint;
            let new = SignedCheckpoint::verify(&doc.new_checkpoint, ledger_key)
                .map_err(|e| fail(format!("new checkpoint: {e}")))?
                .checkpoint;
            if old.size != doc.old_size || new.size != doc.new_size {
                return Err(fail("the checkpoints' sizes differ from the proof's".into()));
            }
            let path = doc
                .path
                .iter()
                .map(|p| h32("path", p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            merkle::verify_consistency::<Blake3Hasher>(
                doc.old_size,
                doc.new_size,
                &old.root,
                &new.root,
                &path,
            )
            .map_err(|e| fail(format!("consistency proof: {e}")))?;
            Ok(format!(
                "consistency proof OK: the tree of {} entries is a prefix of the tree of {}",
                doc.old_size, doc.new_size
            ))
        }
        other => anyhow::bail!(
            "not a proof document: type is {other:?} (expected {INCLUSION_TYPE} or {CONSISTENCY_TYPE})"
        ),
    }
}

/// Runs `isms prove ...`.
pub fn run(command: ProveCommand) -> anyhow::Result<()> {
    match command {
        ProveCommand::Inclusion(args) => {
            let doc = block_on(async {
                let mut client = Client::connect(&args.connect).await?;
                let seq = match (&args.seq, &args.event_id) {
                    (Some(seq), _) => *seq,
                    (None, Some(id)) => client.entry_by_event_id(id).await?.seq.0,
                    (None, None) => anyhow::bail!("give --seq or --event-id"),
                };
                inclusion(&mut client, seq, args.tree_size).await
            })??;
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        ProveCommand::Consistency(args) => {
            let doc = block_on(async {
                let mut client = Client::connect(&args.connect).await?;
                let request = client.read(
                    pb::GetConsistencyProofRequest {
                        old_size: args.old,
                        new_size: args.new,
                    },
                    lm::GET_CONSISTENCY_PROOF,
                );
                let p = client
                    .ledger()
                    .get_consistency_proof(request)
                    .await?
                    .into_inner();
                anyhow::Ok(ConsistencyDoc {
                    kind: CONSISTENCY_TYPE.into(),
                    old_size: p.old_size,
                    new_size: p.new_size,
                    old_root: hex::encode(root_of(&p.old_checkpoint)?),
                    new_root: hex::encode(root_of(&p.new_checkpoint)?),
                    path: p.path.iter().map(hex::encode).collect(),
                    old_checkpoint: p.old_checkpoint,
                    new_checkpoint: p.new_checkpoint,
                })
            })??;
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        ProveCommand::Check {
            ledger_key,
            file,
            witness_keys,
            witness_quorum,
        } => {
            let key = parse_ledger_key(&ledger_key).context("--ledger-key")?;
            let policy = WitnessPolicy::from_flags(&witness_keys, witness_quorum)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            println!("{}", check(&text, &key)?);
            if let Some(policy) = policy {
                let value: serde_json::Value = serde_json::from_str(&text)?;
                let notes: Vec<String> = ["checkpoint", "old_checkpoint", "new_checkpoint"]
                    .iter()
                    .filter_map(|field| value.get(*field)?.as_str().map(str::to_string))
                    .collect();
                for note in &notes {
                    let ranges = witness_policy::coverage(&policy, std::slice::from_ref(note))
                        .map_err(|why| VerificationFailed(format!("witness policy: {why}")))?;
                    for range in ranges {
                        println!("{}", range.sentence());
                    }
                }
            }
            Ok(())
        }
    }
}
