//! Receipts a submitter keeps, and their check: `isms submit --receipts FILE` writes one JSON
//! line per stored event (the ledger's receipt with the exact body that was signed), and
//! `isms receipt check FILE` proves each of them offline against the ledger key — the entry
//! rebuilt from the body hashes to the receipt's entry hash, which the signed checkpoint's
//! tree includes — and, with `--witness-key`, says by when an independent witness had seen it.
//!
//! A receipt's checkpoint is the one that first covered its entry, signed at once on append,
//! before any witness could cosign it. With `--server`, the check therefore looks for the first
//! later checkpoint the witness quorum cosigned and proves the receipt's tree a prefix of it
//! (a consistency proof from the server, checked here): a ledger that rewrote the entry after
//! the receipt was given cannot produce one, and the check fails naming the receipt.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ed25519_dalek::VerifyingKey;
use isms_proto::v1 as pb;
use ledger::merkle::{self, Blake3Hasher};
use ledger::{EntryHash, KeyId, Receipt, Seq, SignedCheckpoint, UnixMicros};
use serde::{Deserialize, Serialize};

use super::submit::Outcome;
use super::VerificationFailed;
use crate::bundle::parse_ledger_key;
use crate::client::{block_on, Client, ConnectArgs};
use crate::server::ledger_service::method as lm;
use crate::witness_policy::{self, WitnessPolicy};

/// The `type` of a receipt document.
pub const RECEIPT_TYPE: &str = "isms-ledger/receipt/v1";

/// One receipt as a submitter keeps it (a JSON line): the ledger's receipt and the body the
/// submitter signed, all binary fields in hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptDoc {
    /// Always [`RECEIPT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's idempotency key.
    pub event_id: String,
    /// Where the entry is.
    pub seq: u64,
    /// When the ledger recorded it (unix microseconds).
    pub recorded_at_us: i64,
    /// The entry before it.
    pub prev_hash: String,
    /// The signing key's id.
    pub key_id: String,
    /// The event signature.
    pub signature: String,
    /// The entry hash.
    pub entry_hash: String,
    /// The first checkpoint covering the entry (signed-note text).
    pub checkpoint: String,
    /// The inclusion proof of the entry in that checkpoint's tree, leaf to root.
    pub inclusion_path: Vec<String>,
    /// The signed event body.
    pub body: String,
}

impl ReceiptDoc {
    /// The document for a stored event, or `None` for a refused one or a retry answered as a
    /// duplicate (its receipt is the first submission's, whose body differs in client time).
    pub fn of(outcome: &Outcome) -> Option<ReceiptDoc> {
        let r = outcome.result.as_ref().ok().filter(|r| !r.duplicate)?;
        Some(ReceiptDoc {
            kind: RECEIPT_TYPE.into(),
            event_id: outcome.event_id.clone(),
            seq: r.seq,
            recorded_at_us: r.recorded_at_us,
            prev_hash: hex::encode(&r.prev_hash),
            key_id: hex::encode(&r.key_id),
            signature: hex::encode(&r.signature),
            entry_hash: hex::encode(&r.entry_hash),
            checkpoint: r.checkpoint.clone(),
            inclusion_path: r.inclusion_path.iter().map(hex::encode).collect(),
            body: hex::encode(&outcome.body),
        })
    }

    /// The ledger's receipt and the body, from the hex fields.
    fn parts(&self) -> anyhow::Result<(Receipt, Vec<u8>)> {
        anyhow::ensure!(
            self.kind == RECEIPT_TYPE,
            "type: {:?} is not a receipt ({RECEIPT_TYPE})",
            self.kind
        );
        let receipt = Receipt {
            seq: Seq(self.seq),
            recorded_at: UnixMicros(self.recorded_at_us),
            prev_hash: EntryHash(bytes("prev_hash", &self.prev_hash)?),
            key_id: KeyId(bytes("key_id", &self.key_id)?),
            signature: bytes("signature", &self.signature)?,
            entry_hash: EntryHash(bytes("entry_hash", &self.entry_hash)?),
            checkpoint: self.checkpoint.clone(),
            inclusion_path: self
                .inclusion_path
                .iter()
                .map(|p| bytes("inclusion_path", p))
                .collect::<anyhow::Result<_>>()?,
        };
        let body = hex::decode(&self.body).context("body: not hex")?;
        Ok((receipt, body))
    }
}

fn bytes<const N: usize>(field: &str, text: &str) -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .with_context(|| format!("{field}: not {N} bytes of hex"))?;
    Ok(out)
}

/// Appends the receipts of the stored events in `outcomes` to `path` (JSON lines), flushed.
/// Returns how many were written.
pub fn append_receipts(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<usize> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut written = 0;
    let mut text = String::new();
    for doc in outcomes.iter().filter_map(ReceiptDoc::of) {
        text.push_str(&serde_json::to_string(&doc)?);
        text.push('\n');
        written += 1;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}

/// `isms receipt ...`.
#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Check receipts kept by `isms submit --receipts` against the ledger key (offline), and
    /// with --witness-key say by when a witness had seen each entry.
    #[command(
        after_help = "Examples:\n  isms receipt check --ledger-key ledger.vkey receipts.jsonl\n  \
                            isms receipt check --ledger-key ledger.vkey --witness-key w1.vkey \
                            --server http://ledger:50051 --key auditor.key receipts.jsonl\n\n\
                            Exit codes: 0 every receipt holds, 1 one does not (named), 2 error."
    )]
    Check(CheckArgs),
}

/// `isms receipt check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The ledger's public key (verifier key, hex, or a file holding either).
    #[arg(long)]
    ledger_key: String,
    /// A witness you trust (verifier key or file; repeatable).
    #[arg(long = "witness-key", value_name = "VKEY_OR_FILE")]
    witness_keys: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned (default: all).
    #[arg(long, value_name = "N")]
    witness_quorum: Option<usize>,
    /// Ask this server (with --key) for the first later checkpoint the quorum cosigned and a
    /// consistency proof to it, when a receipt's own checkpoint carries no cosignatures.
    #[command(flatten)]
    connect: ConnectArgs,
    /// Do not ask any server: a receipt whose checkpoint the quorum did not cosign fails.
    #[arg(long)]
    offline: bool,
    /// The receipts file (JSON lines).
    file: PathBuf,
}

/// Runs `isms receipt ...`.
pub fn run(command: ReceiptCommand) -> anyhow::Result<()> {
    match command {
        ReceiptCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let key = parse_ledger_key(&args.ledger_key).context("--ledger-key")?;
    let policy = WitnessPolicy::from_flags(&args.witness_keys, args.witness_quorum)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let docs = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<ReceiptDoc>(line)
                .with_context(|| format!("{} line {}: not a receipt", args.file.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!docs.is_empty(), "{}: no receipts", args.file.display());
    // One runtime for the whole check: the connection, made only when a receipt needs it,
    // lives on it.
    block_on(async {
        let mut client = None;
        for doc in &docs {
            check_one(doc, &key, policy.as_ref(), &args, &mut client).await?;
        }
        anyhow::Ok(())
    })?
}

/// Checks one receipt and prints what it proves.
async fn check_one(
    doc: &ReceiptDoc,
    key: &VerifyingKey,
    policy: Option<&WitnessPolicy>,
    args: &CheckArgs,
    client: &mut Option<Client>,
) -> anyhow::Result<()> {
    let fail = |why: String| -> anyhow::Error {
        VerificationFailed(format!(
            "receipt of {:?} (seq {}): {why}",
            doc.event_id, doc.seq
        ))
        .into()
    };
    let (receipt, body) = doc.parts().map_err(|e| fail(format!("{e:#}")))?;
    let checkpoint = receipt
        .verify(&body, key)
        .map_err(|e| fail(e.to_string()))?;
    println!(
        "receipt OK: {:?} is entry {} (hash {}), in the signed tree of {} entries",
        doc.event_id, doc.seq, doc.entry_hash, checkpoint.size
    );
    let Some(policy) = policy else {
        return Ok(());
    };
    if let Ok(ranges) = witness_policy::coverage(policy, std::slice::from_ref(&doc.checkpoint)) {
        for range in ranges {
            println!("  {}", range.sentence());
        }
        return Ok(());
    }
    if args.offline {
        return Err(fail(format!(
            "its checkpoint carries no cosignatures of {} of the witness(es) given, and \
             --offline forbids asking the server for a later cosigned one",
            policy.quorum
        )));
    }
    if client.is_none() {
        *client = Some(Client::connect(&args.connect).await?);
    }
    let c = client.as_mut().expect("connected above");
    let line = witnessed_later(c, policy, key, &checkpoint)
        .await?
        .map_err(fail)?;
    println!("  {line}");
    Ok(())
}

/// The first checkpoint after `own` that the quorum cosigned, and a consistency proof from
/// `own` to it, from the server. `Err` (a verification failure) when none exists or the proof
/// does not hold; the outer error is the server's.
async fn witnessed_later(
    client: &mut Client,
    policy: &WitnessPolicy,
    key: &VerifyingKey,
    own: &ledger::Checkpoint,
) -> anyhow::Result<Result<String, String>> {
    let latest = client.checkpoint(0).await?.size;
    let cosigned = client
        .checkpoints_in(own.size, latest)
        .await?
        .into_iter()
        .find_map(|c| {
            let ranges = witness_policy::coverage(policy, std::slice::from_ref(&c.note)).ok()?;
            Some((c, ranges.into_iter().next()?))
        });
    let Some((later, range)) = cosigned else {
        return Ok(Err(format!(
            "no checkpoint from size {} to the server's latest ({latest}) is cosigned by {} of \
             the witness(es) given: nothing shows the entry was seen outside the ledger yet",
            own.size, policy.quorum
        )));
    };
    let later_checkpoint = match SignedCheckpoint::verify(&later.note, key) {
        Ok(c) => c.checkpoint,
        Err(e) => {
            return Ok(Err(format!(
                "the server's checkpoint of size {}: {e}",
                later.size
            )))
        }
    };
    let proof = if later_checkpoint.size == own.size {
        Vec::new()
    } else {
        let request = client.read(
            pb::GetConsistencyProofRequest {
                old_size: own.size,
                new_size: later_checkpoint.size,
            },
            lm::GET_CONSISTENCY_PROOF,
        );
        client
            .ledger()
            .get_consistency_proof(request)
            .await?
            .into_inner()
            .path
            .iter()
            .map(|p| {
                <[u8; 32]>::try_from(p.as_slice()).map_err(|_| {
                    anyhow::anyhow!("the server's consistency proof: a node is not 32 bytes")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let consistent = if later_checkpoint.size == own.size {
        later_checkpoint.root == own.root
    } else {
        merkle::verify_consistency::<Blake3Hasher>(
            own.size,
            later_checkpoint.size,
            &own.root,
            &later_checkpoint.root,
            &proof,
        )
        .is_ok()
    };
    if !consistent {
        return Ok(Err(format!(
            "the receipt's tree of {} entries is not a prefix of the checkpoint of size {} \
             that the witnesses cosigned: the ledger's history no longer holds this receipt's \
             entry as it was given",
            own.size, later_checkpoint.size
        )));
    }
    Ok(Ok(format!(
        "{}; the receipt's tree of {} entries is a prefix of it",
        range.sentence(),
        own.size
    )))
}
