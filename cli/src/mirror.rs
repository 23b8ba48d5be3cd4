//! `isms mirror`: a verifying replica of a ledger. It follows the ledger's server, checks
//! every entry and checkpoint against its own copy (`ledger::Replicator`), keeps that
//! copy in its own sled folder, and serves the read RPCs from it — so auditors and read load
//! can move to the mirror. Writes are refused with FAILED_PRECONDITION. When the server shows
//! a history that contradicts the copy (a fork, a rewritten entry, a tree that shrank), the
//! mirror stops taking entries, writes the evidence of both sides under `DATA/evidence/`,
//! reports NOT_SERVING on gRPC health, and exits with status 1 naming the first seq where the
//! histories differ.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use ledger::{Import, Ledger, LedgerConfig, LedgerError, Replicator};

use crate::client::Client;
use crate::commands::VerificationFailed;
use crate::server::{self, ServeOptions, STORE_DIR};

/// Entries taken in one replicated batch at most while catching up (between two of the
/// server's checkpoints).
const MAX_BATCH: u64 = 50_000;

/// How `isms mirror` runs.
#[derive(Debug)]
pub struct MirrorOptions {
    /// The ledger server followed.
    pub from: String,
    /// The key the mirror reads with (none: the server must allow anonymous reads).
    pub key: Option<SigningKey>,
    /// The mirror's own data folder.
    pub data: PathBuf,
    /// How often the server is asked for its latest checkpoint.
    pub interval: Duration,
    /// How the mirror serves its copy.
    pub serve: ServeOptions,
    /// sled's cache for the copy, in bytes.
    pub cache_bytes: u64,
    /// A witness run in the same process: its folder (made by `isms witness init`) and the
    /// address of its HTTP API.
    pub witness: Option<(PathBuf, std::net::SocketAddr)>,
}

/// Creates the mirror's store from the server's genesis when the folder holds none yet (built
/// under a temporary name and renamed when whole).
async fn first_store(client: &mut Client, data: &Path) -> anyhow::Result<()> {
    let store = data.join(STORE_DIR);
    if store.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let genesis = client.entry(0).await?.encode();
    let first = client.checkpoint(1).await?;
    let partial = data.join(".store.partial");
    let _ = std::fs::remove_dir_all(&partial);
    {
        let mut import = Import::begin(&partial, &genesis, &LedgerConfig::default())?;
        import.checkpoint(&first.note)?;
        import.finish()?;
    }
    std::fs::rename(&partial, &store)
        .with_context(|| format!("renaming {} to {}", partial.display(), store.display()))?;
    Ok(())
}

/// Runs a mirror until SIGTERM/Ctrl-C (Ok) or an alarm (a [`VerificationFailed`] naming the
/// seq).
pub async fn run(options: MirrorOptions) -> anyhow::Result<()> {
    let mut client = Client::connect_with(&options.from, options.key.clone()).await?;
    first_store(&mut client, &options.data).await?;
    let store = options.data.join(STORE_DIR);
    let config = LedgerConfig {
        cache_bytes: options.cache_bytes,
        ..LedgerConfig::default()
    };
    let ledger = Arc::new(
        Ledger::open(&store, config, None)
            .with_context(|| format!("opening the mirror's copy in {}", store.display()))?,
    );
    let witness = match &options.witness {
        Some((dir, listen)) => {
            let state = Arc::new(crate::witness::open(dir)?);
            let verifier = state.verifier();
            let running = crate::witness::http::start(state, *listen).await?;
            println!("isms mirror: witness serving on {}", running.addr);
            eprintln!("isms mirror: witness {verifier}");
            Some(running)
        }
        None => None,
    };
    let running = server::start(ledger.clone(), options.serve).await?;
    println!("isms mirror: serving on {}", running.addr);
    println!("isms mirror: following {}", options.from);
    let signal = crate::commands::wait_for_signal();
    let mut signal = std::pin::pin!(signal);
    let mut replicator = Some(Replicator::new(ledger.clone()));
    let mut behind = false;
    let outcome = loop {
        // While catching up, the next batch is asked for at once.
        let pause = if behind {
            Duration::ZERO
        } else {
            options.interval
        };
        tokio::select! {
            r = &mut signal => {
                r?;
                eprintln!("isms mirror: shutting down");
                break Ok(());
            }
            _ = tokio::time::sleep(pause) => {}
        }
        match step(&mut client, &ledger, &mut replicator).await {
            Ok(more) => behind = more,
            Err(Step::Unreachable(e)) => {
                behind = false;
                eprintln!("isms mirror: the server is not answering ({e:#}); trying again");
            }
            Err(Step::Alarm { seq, what, theirs }) => {
                server::set_not_serving(&running.health).await;
                // What was checked before the alarm is stored in full first.
                if let Some(mut r) = replicator.take() {
                    let _ = tokio::task::spawn_blocking(move || r.finish()).await;
                }
                let first = first_difference(&mut client, &ledger).await;
                let file = write_evidence(&options.data, &ledger, seq, &what, &theirs, first)?;
                let at = first.unwrap_or(seq);
                eprintln!(
                    "isms mirror: ALARM at seq {at}: {what}; the mirror stopped taking entries; \
                     evidence in {}",
                    file.display()
                );
                break Err(VerificationFailed(format!(
                    "the server's history departs from the mirror's at seq {at}: {what} \
                     (evidence in {})",
                    file.display()
                ))
                .into());
            }
        }
    };
    if let Some(mut r) = replicator.take() {
        let _ = tokio::task::spawn_blocking(move || r.finish()).await;
    }
    running.shutdown().await?;
    if let Some(witness) = witness {
        witness.shutdown().await?;
    }
    outcome
}

/// Why one step did not advance.
enum Step {
    /// The server could not be asked; try again later.
    Unreachable(anyhow::Error),
    /// The server's history contradicts the mirror's copy.
    Alarm {
        seq: u64,
        what: String,
        /// The server's checkpoint note that showed it.
        theirs: String,
    },
}

/// Takes the server's next batch (up to its latest checkpoint, at most [`MAX_BATCH`] entries)
/// into the replicator, which checks it and stores it while the next one is fetched. `Ok(true)`
/// when the server holds more than was taken.
async fn step(
    client: &mut Client,
    ledger: &Arc<Ledger>,
    replicator: &mut Option<Replicator>,
) -> Result<bool, Step> {
    let latest = client.checkpoint(0).await.map_err(Step::Unreachable)?;
    let Some(head) = replicator.as_ref().map(|r| r.tip().head) else {
        return Ok(false);
    };
    if latest.size < head.size {
        return Err(Step::Alarm {
            seq: latest.size,
            what: format!(
                "the server's latest checkpoint has {} entries, fewer than the {} the mirror \
                 holds: its history was cut back",
                latest.size, head.size
            ),
            theirs: latest.note,
        });
    }
    if latest.size == head.size {
        if latest.root.as_slice() != head.root {
            return Err(Step::Alarm {
                seq: head.size.saturating_sub(1),
                what: format!(
                    "the server's checkpoint of size {} names another root than the mirror's",
                    head.size
                ),
                theirs: latest.note,
            });
        }
        return Ok(false);
    }
    // Catch up through the server's own checkpoints, a bounded batch at a time.
    let target = if latest.size - head.size > MAX_BATCH {
        client
            .checkpoints_in(head.size + 1, head.size + MAX_BATCH)
            .await
            .map_err(Step::Unreachable)?
            .pop()
            .unwrap_or(latest.clone())
    } else {
        latest.clone()
    };
    let entries = client
        .entries(head.size, target.size, &|_| {})
        .await
        .map_err(Step::Unreachable)?;
    let raw: Vec<Vec<u8>> = entries.iter().map(ledger::Entry::encode).collect();
    let note = target.note.clone();
    let mut taking = replicator.take().expect("checked above");
    let (taking, pushed) = tokio::task::spawn_blocking(move || {
        let pushed = taking.push(&raw, &note);
        (taking, pushed)
    })
    .await
    .map_err(|e| Step::Unreachable(e.into()))?;
    *replicator = Some(taking);
    match pushed {
        Ok(()) => {
            copy_artifacts(client, ledger, &entries).await;
            Ok(target.size < latest.size)
        }
        Err(LedgerError::Corrupt { seq, what }) => Err(Step::Alarm {
            seq,
            what,
            theirs: target.note,
        }),
        Err(e) => Err(Step::Unreachable(e.into())),
    }
}

/// Copies the artifacts the new entries refer to (their bytes must hash to the name the
/// entry gives). One the server no longer holds (erased, or never uploaded) is left out; the
/// record of it is still there, as on the server.
async fn copy_artifacts(client: &mut Client, ledger: &Ledger, entries: &[ledger::Entry]) {
    let hashes = entries.iter().flat_map(|e| {
        projections::wire::decode_body(&e.body)
            .map(|env| env.artifacts.iter().map(|a| a.blake3).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    for hash in hashes {
        if matches!(
            ledger.artifact_state(&ledger::ArtifactHash(hash)),
            Ok(ledger::ArtifactState::Present | ledger::ArtifactState::Erased(_))
        ) {
            continue;
        }
        match client.get_artifact(&hash).await {
            Ok(Some(bytes)) if blake3::hash(&bytes).as_bytes() == &hash => {
                if let Err(e) = ledger.put_artifact(&bytes) {
                    eprintln!(
                        "isms mirror: could not store artifact {}: {e}",
                        hex::encode(hash)
                    );
                }
            }
            Ok(Some(_)) => eprintln!(
                "isms mirror: the server's artifact {} does not hash to its name; not kept",
                hex::encode(hash)
            ),
            Ok(None) | Err(_) => {}
        }
    }
}

/// The first seq whose entry differs between the server and the mirror (their entry hashes
/// chain, so equal hashes at a seq mean equal histories up to it: a binary search finds it).
/// `None` when the server cannot be asked or every entry the mirror holds matches.
async fn first_difference(client: &mut Client, ledger: &Ledger) -> Option<u64> {
    let size = ledger.head().size;
    let same = |ours: Option<ledger::Entry>, theirs: &ledger::Entry| {
        ours.is_some_and(|o| o.hash() == theirs.hash())
    };
    let (mut lo, mut hi) = (0u64, size);
    // Invariant: entries before `lo` match; the entry at `hi` (if < size) differs.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let theirs = client.entry(mid).await.ok()?;
        if same(ledger.get(ledger::Seq(mid)).ok().flatten(), &theirs) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo < size).then_some(lo)
}

/// Writes what both sides showed: the mirror's own latest checkpoint and entry at the first
/// differing seq, the server's checkpoint note, and why. Returns the file.
fn write_evidence(
    data: &Path,
    ledger: &Ledger,
    seq: u64,
    what: &str,
    theirs: &str,
    first: Option<u64>,
) -> anyhow::Result<PathBuf> {
    let dir = data.join("evidence");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ours = ledger
        .latest_checkpoint()
        .and_then(|c| ledger.with_cosignatures(c))
        .map(|c| c.note)
        .unwrap_or_else(|e| format!("(unreadable: {e})"));
    let at = first.unwrap_or(seq);
    let our_entry = ledger
        .get(ledger::Seq(at))
        .ok()
        .flatten()
        .map_or("(none)".to_string(), |e| hex::encode(e.encode()));
    let text = format!(
        "isms mirror alarm\nwhy: {what}\nfirst seq where the histories differ: {}\n\n\
         the mirror's latest checkpoint (what the server had shown before):\n{ours}\n\
         the server's checkpoint now:\n{theirs}\n\
         the mirror's entry at seq {at} (hex):\n{our_entry}\n",
        first.map_or("not found (the server did not answer)".to_string(), |s| s
            .to_string())
    );
    let file = dir.join(format!("alarm-seq-{at}.txt"));
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}
