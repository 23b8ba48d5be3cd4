//! `isms backup`: a consistent copy of a ledger — of a live server, or of a data folder — as an
//! export bundle with every artifact (docs/BUNDLE.md), written so that a crash never leaves a
//! half-written backup where a whole one is expected.
//!
//! A backup folder holds:
//!
//! - `ledger.bundle`: the entries up to one checkpoint, every checkpoint up to it with the
//!   witnesses' cosignatures, the keys, and the artifacts;
//! - `ledger.vkey`: the ledger's verifier key, as the genesis states it;
//! - `checkpoint.note`: the checkpoint the bundle ends at (a copy, for people and scripts).
//!
//! The bundle is written beside its final name, flushed to disk, and renamed over it; the
//! folder is then flushed too. A backup interrupted at any point leaves the previous
//! `ledger.bundle` (if any) whole, and at worst a `.partial` file the next backup replaces.
//! A backup never holds the ledger's private key: keep `ledger.key` apart (`isms restore`
//! asks for it).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use ledger::Entry;

use super::log::keys_of;
use super::verify::build_bundle;
use crate::bundle::{ledger_vkey, Bundle, Manifest};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates;
use crate::output::progress;

/// The bundle's file name in a backup folder.
pub const BACKUP_BUNDLE: &str = "ledger.bundle";
/// The verifier key's file name in a backup folder.
pub const BACKUP_VKEY: &str = "ledger.vkey";
/// The last checkpoint's file name in a backup folder.
pub const BACKUP_NOTE: &str = "checkpoint.note";

/// `isms backup`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    isms backup --key auditor.key --out /backups/isms-$(date +%F)   # from the running server\n  \
    isms backup --data ./isms-data --out /backups/isms-offline      # from a stopped server's folder\n  \
    isms restore --from /backups/isms-2025-12-01 --data ./isms-restored --ledger-key-file ledger.key\n\n\
    The backup holds everything up to the latest checkpoint when it started; appends go on \
    meanwhile. It never holds the ledger's private key (ledger.key): keep that apart.")]
pub struct BackupArgs {
    /// The backup folder (created if missing; a backup already there is replaced whole).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Back up this data folder directly instead of asking a server (stop its server first).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `isms backup`.
pub fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let bundle = match &args.data {
        Some(dir) => bundle_of_store(dir)?,
        None => block_on(async {
            let mut client = Client::connect(&args.connect).await?;
            build_bundle(&mut client, true).await
        })??,
    };
    let written = write_backup(&args.out, &bundle)?;
    let last = bundle.checkpoints.last().map(String::as_str).unwrap_or("");
    println!(
        "backed up {} entries, {} checkpoint(s), {} artifact(s) to {} ({} bytes)",
        bundle.manifest.entries,
        bundle.checkpoints.len(),
        bundle.artifacts.len(),
        written.display(),
        std::fs::metadata(&written).map(|m| m.len()).unwrap_or(0)
    );
    println!("ends at checkpoint:\n{}", last.trim_end());
    println!("ledger key: {}", bundle.manifest.ledger_key);
    println!(
        "restore with: isms restore --from {} --data DIR --ledger-key-file ledger.key",
        args.out.display()
    );
    Ok(())
}

/// A bundle of everything a stopped ledger's data folder holds, as `isms export --artifacts`
/// would give it from its server.
pub fn bundle_of_store(data_dir: &Path) -> anyhow::Result<Bundle> {
    let ledger = crate::store::open_data_folder(data_dir)?;
    let latest = ledger.latest_checkpoint()?;
    let size = latest.checkpoint.size;
    let bar = progress(size, "reading");
    let entries: Vec<Entry> = ledger
        .entries(0..size)
        .inspect(|_| bar.inc(1))
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    let checkpoints: Vec<String> = ledger
        .cosigned_checkpoints_in(0..=size)
        .map(|c| Ok(c?.note))
        .collect::<Result<_, ledger::LedgerError>>()?;
    let hashes: BTreeSet<[u8; 32]> = entries
        .iter()
        .flat_map(|e| {
            projections::wire::decode_body(&e.body)
                .map(|env| env.artifacts.iter().map(|a| a.blake3).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    let mut artifacts = Vec::new();
    for hash in hashes {
        match ledger.get_artifact(&ledger::ArtifactHash(hash))? {
            Some(content) => artifacts.push((hash, content)),
            None => eprintln!(
                "isms: artifact {} is not in the store (erased?); left out",
                hex::encode(hash)
            ),
        }
    }
    let genesis = ledger.genesis();
    Ok(Bundle {
        manifest: Manifest {
            ledger_id: genesis.ledger_id.to_hex(),
            origin: genesis.origin.clone(),
            ledger_key: ledger_vkey(&genesis.origin, &ledger.public_key()),
            entries: entries.len() as u64,
            checkpoints: checkpoints.len() as u64,
            artifacts: artifacts.len() as u64,
            exported_at: dates::show_time(ledger::UnixMicros::now().0),
        },
        keys: keys_of(&entries),
        entries: entries.iter().map(Entry::encode).collect(),
        checkpoints,
        artifacts,
    })
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`:
/// a sibling `.partial` file, flushed, renamed over `path`, and the folder flushed.
pub fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("a file name is needed")?
        .to_string_lossy();
    let partial = dir.join(format!(".{name}.partial"));
    let mut file =
        File::create(&partial).with_context(|| format!("writing {}", partial.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    drop(file);
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    sync_dir(dir)
}

/// Flushes a folder's entries (renames and new files) to disk.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing {}", dir.display()))
}

/// Writes a backup folder; returns the bundle's path.
pub fn write_backup(out: &Path, bundle: &Bundle) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(BACKUP_BUNDLE);
    write_whole(&path, &bundle.to_bytes())?;
    write_whole(
        &out.join(BACKUP_VKEY),
        format!("{}\n", bundle.manifest.ledger_key).as_bytes(),
    )?;
    if let Some(note) = bundle.checkpoints.last() {
        write_whole(&out.join(BACKUP_NOTE), note.as_bytes())?;
    }
    Ok(path)
}
