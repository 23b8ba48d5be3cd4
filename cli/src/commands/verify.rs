//! `isms verify` (against the server, or `--offline` from a bundle with the ledger's public key
//! alone) and `isms export` (writes the bundle, docs/BUNDLE.md).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ed25519_dalek::VerifyingKey;

use super::keys::ledger_key_of;
use super::log::{fetch_all, keys_of};
use super::VerificationFailed;
use crate::bundle::{self, ledger_vkey, Bundle, Manifest, Trust, Verified, VerifyFailure};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates;
use crate::output::{print_json, progress};
use crate::witness_policy::{self, WitnessPolicy};

/// `isms verify`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  isms verify --key auditor.key --ledger-key ledger.vkey\n  \
                        isms verify --offline isms-2025.bundle --ledger-key \
                        'isms-ledger/4f…+1a2b3c4d+AW…' --trusted-checkpoint kept.note\n  \
                        isms verify --data ./isms-data\n  \
                        isms verify --key auditor.key --witness-key w1.vkey --witness-key \
                        w2.vkey --witness-quorum 1\n\nExit codes: 0 verified, 1 did not \
                        verify (the failing record is named), 2 error."
)]
pub struct VerifyArgs {
    /// Verify this bundle (from `isms export`) without any server.
    #[arg(long, value_name = "BUNDLE", conflicts_with = "data")]
    offline: Option<PathBuf>,
    /// Verify the ledger's own store in this data folder (the one `isms serve` uses; stop the
    /// server first): besides the entries and checkpoints, the derived blocks (Merkle nodes,
    /// event-id index, head) are checked against the entries.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The ledger's public key: a signed-note verifier key, 64 hex digits, or a file holding
    /// either (`isms key list` prints it). Required with --offline.
    #[arg(long, value_name = "VKEY_OR_FILE")]
    ledger_key: Option<String>,
    /// A checkpoint note you kept (from an earlier audit, a receipt, a witness): the verified
    /// history must reach its size and have exactly its root there. Without one, entries cut
    /// from the end of a history together with their checkpoints cannot be noticed.
    #[arg(long, value_name = "FILE")]
    trusted_checkpoint: Option<PathBuf>,
    /// A witness you trust: its verifier key (`<name>+<hash>+<key>`) or a file holding it
    /// (repeatable). Verification then says which entries the witnesses saw by when, and
    /// refuses a checkpoint that carries a cosignature of theirs that does not verify.
    #[arg(long = "witness-key", value_name = "VKEY_OR_FILE")]
    witness_keys: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned (default: all of them).
    #[arg(long, value_name = "N")]
    witness_quorum: Option<usize>,
    /// An earlier copy of this ledger: a bundle from `isms export`, kept from an earlier audit
    /// or taken from a mirror. Its checkpoints that a --witness-key witness cosigned are held
    /// against the history verified (even when the history's own checkpoints carry no
    /// cosignatures), and where the history departs from them the first seq that differs is
    /// named exactly, with the event there in both.
    #[arg(long, value_name = "BUNDLE", requires = "witness_keys")]
    compare_with: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The verification result as JSON.
pub fn verified_json(v: &Verified) -> serde_json::Value {
    let c = &v.checkpoint.checkpoint;
    serde_json::json!({
        "ok": true,
        "entries": v.report.entries + v.report.from,
        "checkpoints_checked": v.report.checkpoints,
        "artifacts_checked": v.artifacts,
        "root": hex::encode(v.report.root),
        "checkpoint": {
            "origin": c.origin,
            "size": c.size,
            "root": hex::encode(c.root),
            "time": dates::show_time(c.time.0),
            "note": v.checkpoint.note,
        },
        "trusted_checkpoint": v.trusted.as_ref().map(|t| serde_json::json!({
            "size": t.checkpoint.size,
            "root": hex::encode(t.checkpoint.root),
        })),
    })
}

/// One line per fact, for people.
pub fn verified_text(v: &Verified) -> String {
    let c = &v.checkpoint.checkpoint;
    let mut out = format!(
        "verified: {} entries (seq 0..={}), {} checkpoint(s) checked",
        c.size,
        c.size.saturating_sub(1),
        v.report.checkpoints
    );
    if v.artifacts > 0 {
        out.push_str(&format!(", {} artifact(s)", v.artifacts));
    }
    out.push_str(&format!(
        "\nroot {} at size {}, signed by the ledger key at {}\nrests on checkpoint:\n{}",
        hex::encode(c.root),
        c.size,
        dates::show_time(c.time.0),
        v.checkpoint.note.trim_end()
    ));
    if let Some(t) = &v.trusted {
        out.push_str(&format!(
            "\nagrees with the trusted checkpoint: root {} at size {}",
            hex::encode(t.checkpoint.root),
            t.checkpoint.size
        ));
    }
    out
}

fn failed(e: VerifyFailure, json: bool) -> anyhow::Error {
    if json {
        print_json(&serde_json::json!({ "ok": false, "seq": e.seq(), "error": e.to_string() }));
    }
    VerificationFailed(e.to_string()).into()
}

/// Verifies what the server holds now; with `ledger_key` unset, trusts the key the genesis
/// names (and says so).
pub async fn verify_server(
    client: &mut Client,
    ledger_key: Option<VerifyingKey>,
) -> anyhow::Result<(Result<Verified, VerifyFailure>, bool)> {
    let given = ledger_key.map(|key| bundle::GivenKey { key, origin: None });
    let checked = verify_server_trusting(client, given, None).await?;
    Ok((checked.result, checked.key_given))
}

/// What [`verify_server_trusting`] found, with the history it fetched to find it.
#[derive(Debug)]
pub struct ServerHistory {
    /// The verification.
    pub result: Result<Verified, VerifyFailure>,
    /// Whether the ledger key was given (not taken from the genesis).
    pub key_given: bool,
    /// Every entry, encoded, in seq order.
    pub entries: Vec<Vec<u8>>,
    /// Every checkpoint note up to the verified size, with the cosignatures kept.
    pub notes: Vec<String>,
}

/// [`verify_server`] with a verifier key (whose origin must be the ledger's) and, optionally,
/// a checkpoint note the caller kept, which the history must agree with.
pub async fn verify_server_trusting(
    client: &mut Client,
    ledger_key: Option<bundle::GivenKey>,
    trusted_checkpoint: Option<String>,
) -> anyhow::Result<ServerHistory> {
    let (given, ledger_key) = match ledger_key {
        Some(k) => (true, k),
        None => (
            false,
            bundle::GivenKey {
                key: ledger_key_of(client).await?.1,
                origin: None,
            },
        ),
    };
    let trust = Trust {
        ledger_key,
        checkpoint: trusted_checkpoint,
    };
    let (entries, checkpoint) = fetch_all(client, "fetching").await?;
    let notes: Vec<String> = client
        .checkpoints(checkpoint.size)
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    let raw: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect();
    let bar = progress(raw.len() as u64, "verifying");
    let result = bundle::verify_chain(&raw, &notes, &trust, &|n| bar.set_position(n));
    bar.finish_and_clear();
    Ok(ServerHistory {
        result,
        key_given: given,
        entries: raw,
        notes,
    })
}

/// Verifies a ledger's sled store with `Ledger::verify`, which also checks the derived blocks
/// against the entries, under the same trust as a bundle. With `notes`, a passing
/// verification also gives every checkpoint note with its kept cosignatures (for a witness
/// policy), read from the store already open.
pub fn verify_store(
    dir: &std::path::Path,
    ledger_key: Option<bundle::GivenKey>,
    trusted_checkpoint: Option<String>,
    notes: Option<&mut Vec<String>>,
) -> anyhow::Result<Result<Verified, VerifyFailure>> {
    let ledger = match crate::store::open_data_folder(dir) {
        Ok(ledger) => ledger,
        Err(e) => match e.downcast_ref::<ledger::LedgerError>() {
            // A store that refuses to open because an entry is damaged did not verify.
            Some(ledger::LedgerError::Corrupt { seq, what }) => {
                return Ok(Err(VerifyFailure::Chain(ledger::VerifyError {
                    seq: *seq,
                    record: ledger::Record::Entry(*seq),
                    failure: ledger::Failure::Store,
                    expected: "a store that opens".into(),
                    found: what.clone(),
                })))
            }
            _ => return Err(e),
        },
    };
    let trust = Trust {
        ledger_key: ledger_key.unwrap_or(bundle::GivenKey {
            key: ledger.public_key(),
            origin: None,
        }),
        checkpoint: trusted_checkpoint,
    };
    let genesis = ledger.genesis();
    if genesis.ledger_public_key != trust.ledger_key.key.to_bytes() {
        return Ok(Err(VerifyFailure::WrongLedgerKey {
            expected: ledger_vkey(&genesis.origin, &trust.ledger_key.key),
            found: ledger_vkey(&genesis.origin, &ledger.public_key()),
        }));
    }
    if let Some(key_origin) = &trust.ledger_key.origin {
        if *key_origin != genesis.origin {
            return Ok(Err(VerifyFailure::KeyOfAnotherLedger {
                key_origin: key_origin.clone(),
                origin: genesis.origin.clone(),
            }));
        }
    }
    let bar = progress(ledger.head().size, "verifying");
    let report = match &trust.checkpoint {
        Some(note) => ledger.verify_trusting(note, &|n| bar.set_position(n)),
        None => ledger.verify(&|n| bar.set_position(n)),
    };
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => return Ok(Err(VerifyFailure::Chain(e))),
    };
    let size = report.from + report.entries;
    let Some(checkpoint) = report
        .latest_checkpoint
        .clone()
        .filter(|c| c.checkpoint.size == size)
    else {
        return Ok(Err(VerifyFailure::Uncovered {
            entries: size,
            latest: report
                .latest_checkpoint
                .as_ref()
                .map_or(0, |c| c.checkpoint.size),
        }));
    };
    let trusted = trust.checkpoint.as_deref().and_then(|note| {
        // Checked by `verify_trusting` with the key in charge at its size.
        ledger::SignedCheckpoint::parse_unverified(note)
            .ok()
            .map(|checkpoint| ledger::SignedCheckpoint {
                checkpoint,
                note: note.to_string(),
            })
    });
    if let Some(notes) = notes {
        *notes = ledger
            .cosigned_checkpoints_in(0..=size)
            .map(|c| Ok(c?.note))
            .collect::<Result<_, ledger::LedgerError>>()?;
    }
    Ok(Ok(Verified {
        report,
        checkpoint,
        artifacts: 0,
        trusted,
    }))
}

/// Runs `isms verify`.
pub fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let ledger_key = args
        .ledger_key
        .as_deref()
        .map(bundle::parse_ledger_key_named)
        .transpose()
        .context("--ledger-key")?;
    let trusted_checkpoint = args
        .trusted_checkpoint
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("--trusted-checkpoint: reading {}", path.display()))
        })
        .transpose()?;
    let policy = WitnessPolicy::from_flags(&args.witness_keys, args.witness_quorum)?;
    let copy = args.compare_with.as_deref().map(read_copy).transpose()?;
    let mut notes: Vec<String> = Vec::new();
    // The history's encoded entries, kept only to compare with the earlier copy.
    let mut presented: Vec<Vec<u8>> = Vec::new();
    let (result, trusted) = match (&args.offline, &args.data) {
        (None, Some(dir)) => {
            let given = ledger_key.is_some();
            let wanted = policy.is_some().then_some(&mut notes);
            let result = verify_store(dir, ledger_key, trusted_checkpoint, wanted)?;
            if copy.is_some() && result.is_ok() {
                presented = store_entries(dir)?;
            }
            (result, given)
        }
        (Some(path), _) => {
            let key = ledger_key.context(
                "--offline needs --ledger-key: the bundle alone cannot say which ledger it is",
            )?;
            let trust = Trust {
                ledger_key: key,
                checkpoint: trusted_checkpoint,
            };
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let result = match Bundle::from_bytes(&bytes) {
                Err(e) => Err(VerifyFailure::Read(e)),
                Ok(parsed) => {
                    let bar = progress(parsed.entries.len() as u64, "verifying");
                    let r = bundle::verify_parsed(&parsed, &trust, &|n| bar.set_position(n));
                    bar.finish_and_clear();
                    notes = parsed.checkpoints;
                    if copy.is_some() {
                        presented = parsed.entries;
                    }
                    r
                }
            };
            (result, true)
        }
        (None, None) => block_on(async {
            let mut client = Client::connect(&args.connect).await?;
            let checked =
                verify_server_trusting(&mut client, ledger_key, trusted_checkpoint).await?;
            // The witness policy and the comparison read the history just verified.
            notes = checked.notes;
            presented = checked.entries;
            anyhow::Ok((checked.result, checked.key_given))
        })??,
    };
    let verified = result.map_err(|e| failed(e, args.json))?;
    let compared = match (&policy, &copy) {
        (Some(policy), Some(copy)) => Some(
            witness_policy::compare_with_copy(policy, &presented, &copy.entries, &copy.checkpoints)
                .map_err(|why| {
                    if args.json {
                        print_json(&serde_json::json!({ "ok": false, "error": why }));
                    }
                    VerificationFailed(format!("witness policy: {why}"))
                })?,
        ),
        _ => None,
    };
    let witnessed = match &policy {
        None => None,
        Some(policy) => Some(witness_policy::coverage(policy, &notes).map_err(|why| {
            if args.json {
                print_json(&serde_json::json!({ "ok": false, "error": why }));
            }
            VerificationFailed(format!("witness policy: {why}"))
        })?),
    };
    if args.json {
        let mut value = verified_json(&verified);
        value["ledger_key_given"] = serde_json::Value::Bool(trusted);
        if let Some(ranges) = &witnessed {
            value["witnessed"] = witness_policy::coverage_json(ranges);
        }
        if let Some(compared) = &compared {
            value["compared_with_copy"] = serde_json::Value::String(compared.clone());
        }
        print_json(&value);
    } else {
        println!("{}", verified_text(&verified));
        if let Some(ranges) = &witnessed {
            println!(
                "{}",
                witness_policy::coverage_text(ranges, verified.checkpoint.checkpoint.size)
            );
        }
        if let Some(compared) = &compared {
            println!("{compared}");
        }
        if !trusted {
            println!(
                "note: no --ledger-key given; the ledger key was taken from the ledger's own \
                 genesis entry"
            );
        }
    }
    Ok(())
}

/// The earlier copy given with `--compare-with`, verified from its own genesis's key (following
/// any ledger-key hand-over) so that its witnessed roots are its entries' roots.
fn read_copy(path: &std::path::Path) -> anyhow::Result<Bundle> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let copy = Bundle::from_bytes(&bytes)
        .map_err(|e| VerificationFailed(format!("--compare-with {}: {e}", path.display())))?;
    let genesis_key = copy.genesis_key().ok_or_else(|| {
        VerificationFailed(format!(
            "--compare-with {}: entry 0 is not a readable genesis",
            path.display()
        ))
    })?;
    bundle::verify_parsed(&copy, &Trust::key(genesis_key), &|_| {}).map_err(|e| {
        VerificationFailed(format!(
            "--compare-with {}: the earlier copy does not verify: {e}",
            path.display()
        ))
    })?;
    Ok(copy)
}

/// Every entry of the store in a data folder, encoded.
fn store_entries(dir: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let ledger = crate::store::open_data_folder(dir)?;
    ledger
        .entries(0..ledger.head().size)
        .map(|e| Ok(e?.encode()))
        .collect()
}

/// `isms export`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  isms export --key auditor.key --out isms-2025.bundle --artifacts\n  \
                        isms verify --offline isms-2025.bundle --ledger-key ledger.vkey"
)]
pub struct ExportArgs {
    /// The bundle file to write.
    #[arg(long)]
    out: PathBuf,
    /// Include the artifacts' content (evidence files) as well.
    #[arg(long)]
    artifacts: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Fetches everything a bundle holds from the server.
pub async fn build_bundle(client: &mut Client, with_artifacts: bool) -> anyhow::Result<Bundle> {
    let (origin, ledger_key) = ledger_key_of(client).await?;
    let (entries, checkpoint) = fetch_all(client, "exporting").await?;
    // Every checkpoint the ledger signed up to the exported size: the receipts clients hold
    // rest on them, and each is checked against the entries.
    let checkpoints: Vec<String> = client
        .checkpoints(checkpoint.size)
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    let mut artifacts = Vec::new();
    if with_artifacts {
        let hashes: BTreeSet<[u8; 32]> = entries
            .iter()
            .flat_map(|e| {
                projections::wire::decode_body(&e.body)
                    .map(|env| env.artifacts.iter().map(|a| a.blake3).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        let bar = progress(hashes.len() as u64, "artifacts");
        for hash in hashes {
            if let Some(content) = client.get_artifact(&hash).await? {
                artifacts.push((hash, content));
            } else {
                eprintln!(
                    "isms: artifact {} is not on the server (erased?); left out",
                    hex::encode(hash)
                );
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let genesis = ledger::ChainVerifier::from_genesis(&entries[0].encode())
        .map_err(|e| anyhow::anyhow!("the genesis entry does not verify: {e}"))?;
    Ok(Bundle {
        manifest: Manifest {
            ledger_id: genesis.genesis().ledger_id.to_hex(),
            origin: origin.clone(),
            ledger_key: ledger_vkey(&origin, &ledger_key),
            entries: entries.len() as u64,
            checkpoints: checkpoints.len() as u64,
            artifacts: artifacts.len() as u64,
            exported_at: dates::show_time(ledger::UnixMicros::now().0),
        },
        keys: keys_of(&entries),
        entries: entries.iter().map(|e| e.encode()).collect(),
        checkpoints,
        artifacts,
    })
}

/// Runs `isms export`.
pub fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let bundle = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        build_bundle(&mut client, args.artifacts).await
    })??;
    let bytes = bundle.to_bytes();
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes): {} entries, {} checkpoint(s), {} key(s), {} artifact(s)",
        args.out.display(),
        bytes.len(),
        bundle.manifest.entries,
        bundle.checkpoints.len(),
        bundle.keys.len(),
        bundle.artifacts.len()
    );
    println!("ledger key (as the genesis states it; confirm it out of band):");
    println!("  {}", bundle.manifest.ledger_key);
    Ok(())
}
