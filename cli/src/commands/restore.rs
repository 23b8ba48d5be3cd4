//! `isms restore` (a data folder rebuilt from an `isms backup` folder) and `isms salvage` (a
//! new data folder holding every entry of a damaged one that still verifies).
//!
//! Both build the new folder under a temporary sibling name, verify what they built, flush
//! it, and only then rename it to the name asked for: a run killed at any point leaves no
//! folder under that name (at worst a `.NAME.partial` folder the next run replaces). Neither
//! writes into an existing folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ed25519_dalek::SigningKey;
use ledger::engine::{Engine, SledEngine};
use ledger::postgres::PostgresEngine;
use ledger::{Import, Ledger, LedgerConfig, SignedCheckpoint};

use super::backup::{sync_dir, BACKUP_BUNDLE};
use super::VerificationFailed;
use crate::bundle::{self, Bundle, Trust};
use crate::init::write_secret;
use crate::output::progress;
use crate::server::{read_key_file, LEDGER_KEY_FILE, STORE_DIR};
use crate::store::{StoreLocation, STORE_FILE};

/// `isms restore`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    isms restore --from /backups/isms-2025-12-01 --data ./isms-data --ledger-key-file ledger.key\n  \
    isms restore --from /backups/isms-2025-12-01 --data ./isms-data --ledger-key-file ledger.key \
    --trusted-checkpoint kept.note\n\n\
    The backup is verified in full against the ledger key given (every entry, signature, \
    checkpoint and artifact) before anything is written; the rebuilt folder is verified again \
    before it takes its name. Then `isms serve --data DIR` continues the same chain.")]
pub struct RestoreArgs {
    /// The backup folder (from `isms backup`), or a bundle file (from `isms export
    /// --artifacts`).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The data folder to create (it must not exist yet).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Rebuild the records in PostgreSQL instead of the folder's sled store:
    /// `postgres://USER@HOST:PORT/DATABASE#LEDGER` (the ledger name must not be taken). The
    /// ledger is built under a temporary name and renamed in one transaction once verified.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The ledger's private key (the `ledger.key` kept apart from backups): the backup's last
    /// checkpoint must be signed by it, and the restored server signs new checkpoints with it.
    #[arg(long, value_name = "FILE")]
    ledger_key_file: PathBuf,
    /// A checkpoint note kept from before (an audit, a receipt, a witness): the backup must
    /// reach its size with exactly its root, so a backup cut short is refused.
    #[arg(long, value_name = "FILE")]
    trusted_checkpoint: Option<PathBuf>,
}

/// `isms salvage`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    isms salvage --data ./isms-data --out ./isms-salvaged\n  \
    isms salvage --data ./isms-data --out ./isms-salvaged --ledger-key-file /secure/ledger.key\n\n\
    The damaged folder is only read. Every entry from the genesis up to the first one that \
    cannot be read or does not verify is copied, with the stored checkpoints that match them \
    and the artifacts whose bytes are intact; when no stored checkpoint ends at the last saved \
    entry, one is signed with the ledger key. Exit codes: 0 every entry saved, 1 entries were \
    lost from the seq named, 2 nothing could be saved (restore a backup or use a mirror).")]
pub struct SalvageArgs {
    /// The damaged data folder (stop its server first).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The new data folder to create (it must not exist yet).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The ledger's private key; by default the damaged folder's `ledger.key`.
    #[arg(long, value_name = "FILE")]
    ledger_key_file: Option<PathBuf>,
}

/// A new folder built beside its final name and renamed into place when complete; its
/// records in the folder's sled store, or in a PostgreSQL ledger built under a temporary
/// name and renamed with it.
struct NewFolder {
    partial: PathBuf,
    target: PathBuf,
    postgres: Option<PartialLedger>,
}

/// A PostgreSQL ledger being rebuilt under a temporary name.
struct PartialLedger {
    url: String,
    name: String,
    partial_name: String,
}

impl NewFolder {
    /// Refuses an existing target; replaces a partial folder an interrupted run left.
    fn start(target: &Path) -> anyhow::Result<NewFolder> {
        if target.exists() {
            anyhow::bail!(
                "{} already exists; give a new folder (nothing is written into an existing one)",
                target.display()
            );
        }
        let name = target
            .file_name()
            .context("the folder needs a name")?
            .to_string_lossy();
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let partial = parent.join(format!(".{name}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("removing the unfinished {}", partial.display()))?;
        }
        std::fs::create_dir(&partial).with_context(|| format!("creating {}", partial.display()))?;
        Ok(NewFolder {
            partial,
            target: target.to_path_buf(),
            postgres: None,
        })
    }

    /// Builds the records in `store` instead of the folder's sled store.
    fn in_store(mut self, store: &StoreLocation) -> anyhow::Result<NewFolder> {
        if let StoreLocation::Postgres { url, ledger } = store {
            let partial_name = format!("{ledger}-partial");
            if PostgresEngine::ledgers(url)?.contains(ledger) {
                anyhow::bail!(
                    "{} already holds a ledger; give a new ledger name (nothing is written \
                     into an existing one)",
                    store.describe()
                );
            }
            // An interrupted run's unfinished copy is replaced.
            PostgresEngine::delete_ledger(url, &partial_name)?;
            self.postgres = Some(PartialLedger {
                url: url.clone(),
                name: ledger.clone(),
                partial_name,
            });
        }
        Ok(self)
    }

    /// The engine the records are built in.
    fn engine(&self) -> anyhow::Result<Arc<dyn Engine>> {
        Ok(match &self.postgres {
            Some(p) => Arc::new(PostgresEngine::connect(&p.url, &p.partial_name)?),
            None => Arc::new(SledEngine::open(
                &self.partial.join(STORE_DIR),
                LedgerConfig::default().cache_bytes,
            )?),
        })
    }

    /// Writes the ledger key file (mode 0600).
    fn write_key(&self, key: &SigningKey) -> anyhow::Result<()> {
        write_secret(
            &self.partial.join(LEDGER_KEY_FILE),
            &format!("{}\n", hex::encode(key.to_bytes())),
        )
    }

    /// Opens the built store with its key, verifies it in full, flushes everything and renames
    /// the folder into place.
    fn verify_and_commit(self, key: &SigningKey) -> anyhow::Result<ledger::VerifyReport> {
        let report = {
            let ledger =
                Ledger::open_in(self.engine()?, LedgerConfig::default(), Some(key.clone()))
                    .context("opening the rebuilt store")?;
            let size = ledger.head().size;
            let bar = progress(size, "verifying the rebuilt store");
            let report = ledger.verify(&|n| bar.set_position(n));
            bar.finish_and_clear();
            report.map_err(|e| {
                anyhow::anyhow!("the rebuilt store did not verify ({e}); nothing was renamed")
            })?
        };
        if let Some(p) = &self.postgres {
            PostgresEngine::rename_ledger(&p.url, &p.partial_name, &p.name)?;
            let store = StoreLocation::Postgres {
                url: p.url.clone(),
                ledger: p.name.clone(),
            };
            write_secret(
                &self.partial.join(STORE_FILE),
                &format!("{}\n", store.to_text()),
            )?;
        }
        sync_tree(&self.partial)?;
        std::fs::rename(&self.partial, &self.target).with_context(|| {
            format!(
                "renaming {} to {}",
                self.partial.display(),
                self.target.display()
            )
        })?;
        sync_dir(&parent_of(&self.target))?;
        Ok(report)
    }
}

/// The folder holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes every file and folder under `dir` (sled flushed its own files; the folders' entries
/// and the key file are flushed here).
fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    for item in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = item?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("flushing {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

/// Runs `isms restore`.
pub fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let key = read_key_file(&args.ledger_key_file)?;
    // A backup folder, or a bundle file (`isms export --artifacts` writes the same format).
    let path = if args.from.is_file() {
        args.from.clone()
    } else {
        args.from.join(BACKUP_BUNDLE)
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let bundle = Bundle::from_bytes(&bytes)
        .map_err(|e| VerificationFailed(format!("{}: {e}", path.display())))?;
    // The history is verified from its genesis's key, following any ledger-key hand-over; the
    // key given must be the one in charge at its end (it signed the last checkpoint), which
    // binds the whole backup to the key the operator holds.
    let genesis_key = bundle.genesis_key().ok_or_else(|| {
        VerificationFailed(format!(
            "{}: entry 0 is not a readable genesis",
            path.display()
        ))
    })?;
    let mut trust = Trust::key(genesis_key);
    if let Some(note) = &args.trusted_checkpoint {
        trust.checkpoint = Some(
            std::fs::read_to_string(note).with_context(|| format!("reading {}", note.display()))?,
        );
    }
    let bar = progress(bundle.entries.len() as u64, "verifying the backup");
    let verified = bundle::verify_parsed(&bundle, &trust, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let verified = verified.map_err(|e| {
        VerificationFailed(format!(
            "the backup in {} did not verify against the ledger key given: {e}; nothing was \
             written",
            args.from.display()
        ))
    })?;

    if SignedCheckpoint::verify(&verified.checkpoint.note, &key.verifying_key()).is_err() {
        return Err(VerificationFailed(format!(
            "the backup's last checkpoint (size {}) is not signed by the ledger key given ({}); \
             give the ledger's current key; nothing was written",
            verified.checkpoint.checkpoint.size,
            ledger::KeyId::of_public_key(key.verifying_key().as_bytes()).short()
        ))
        .into());
    }
    let store = args.store.as_deref().map(StoreLocation::parse);
    let folder = match &store {
        Some(store) => NewFolder::start(&args.data)?.in_store(store)?,
        None => NewFolder::start(&args.data)?,
    };
    folder.write_key(&key)?;
    let imported = import_bundle(folder.engine()?, &bundle)?;
    let report = folder.verify_and_commit(&key)?;
    println!(
        "restored {} entries, {} checkpoint(s), {} artifact(s) into {}",
        report.from + report.entries,
        imported.checkpoints,
        bundle.artifacts.len(),
        args.data.display()
    );
    println!(
        "verified again after rebuilding: root {}, ends at the checkpoint of size {}",
        hex::encode(report.root),
        verified.checkpoint.checkpoint.size
    );
    println!("start it with: isms serve --data {}", args.data.display());
    Ok(())
}

/// What an import kept.
struct Imported {
    checkpoints: u64,
}

/// Rebuilds a store from a verified bundle: every entry verbatim, each checkpoint (with its
/// cosignatures) as the tree reaches its size, every artifact.
fn import_bundle(engine: Arc<dyn Engine>, bundle: &Bundle) -> anyhow::Result<Imported> {
    let mut notes = bundle.checkpoints.iter().peekable();
    let size_of = |note: &str| SignedCheckpoint::parse_unverified(note).map(|c| c.size);
    let mut import = Import::begin_in(engine, &bundle.entries[0])?;
    let bar = progress(bundle.entries.len() as u64, "rebuilding");
    for (i, raw) in bundle.entries.iter().enumerate() {
        if i > 0 {
            import.push(raw)?;
        }
        while let Some(note) = notes.next_if(|n| size_of(n).ok() == Some(import.size())) {
            import.checkpoint(note)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for (hash, content) in &bundle.artifacts {
        import.put_artifact(hash, content)?;
    }
    let checkpoints = import.checkpoints();
    import.finish()?;
    Ok(Imported { checkpoints })
}

/// Runs `isms salvage`.
pub fn run_salvage(args: SalvageArgs) -> anyhow::Result<()> {
    let key_path = args
        .ledger_key_file
        .clone()
        .unwrap_or_else(|| args.data.join(LEDGER_KEY_FILE));
    let key = read_key_file(&key_path)?;
    let folder = NewFolder::start(&args.out)?;
    folder.write_key(&key)?;
    let saved = ledger::salvage(
        &args.data.join(STORE_DIR),
        &folder.partial.join(STORE_DIR),
        &key,
        &LedgerConfig::default(),
    )
    .with_context(|| format!("salvaging {}", args.data.display()))?;
    folder.verify_and_commit(&key)?;
    println!(
        "salvaged {} entries (seq 0..={}), {} stored checkpoint(s), {} artifact(s) into {}",
        saved.entries,
        saved.entries.saturating_sub(1),
        saved.checkpoints,
        saved.artifacts,
        args.out.display()
    );
    if saved.signed_checkpoint {
        println!(
            "signed a new checkpoint of size {} (no stored one ended there)",
            saved.entries
        );
    }
    if let Some((size, why)) = &saved.dropped_checkpoint {
        println!("left out the stored checkpoint of size {size}: {why}");
    }
    if saved.damaged_artifacts > 0 {
        println!(
            "left out {} artifact(s) whose bytes no longer match their hash",
            saved.damaged_artifacts
        );
    }
    match saved.first_lost {
        None => {
            println!("every stored entry was saved");
            Ok(())
        }
        Some((seq, why)) => Err(VerificationFailed(format!(
            "entries from seq {seq} on could not be saved ({why}); recover them from a backup \
             (isms restore) or a mirror"
        ))
        .into()),
    }
}
