//! `isms witness`: an independent witness that cosigns a ledger's checkpoints only if they are
//! consistent with the last one it cosigned (C2SP tlog-witness API, tlog-cosignature format,
//! the ledger's blake3 tree; docs/WITNESS.md).
//!
//! The data folder holds `witness.key` (the Ed25519 seed, hex, mode 0600), `witness.vkey` (its
//! verifier key, which also fixes the witness name), `ledgers` (one followed ledger's verifier
//! key per line) and `state/` (what the witness holds per ledger, see [`state`]).

pub mod client;
pub mod http;
pub mod protocol;
pub mod state;

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use ledger::{WitnessKey, WitnessVerifier};

pub use self::client::{add_checkpoint, AddCheckpointOutcome, Timeouts, WitnessClient};
pub use self::state::{FollowedLedger, Held, Refusal, WitnessState};

/// The witness's signing key (hex Ed25519 seed, mode 0600).
pub const WITNESS_KEY_FILE: &str = "witness.key";
/// The witness's verifier key `<name>+<key ID>+<base64(0x04 || key)>`.
pub const WITNESS_VKEY_FILE: &str = "witness.vkey";
/// The followed ledgers: one ledger verifier key per line; `#` starts a comment.
pub const LEDGERS_FILE: &str = "ledgers";

/// Creates a witness folder: a new key named `name` (mode 0600), its verifier key and an
/// empty list of followed ledgers. Returns the verifier key to hand to ledger operators and
/// auditors.
pub fn init(data_dir: &Path, name: &str) -> anyhow::Result<WitnessVerifier> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let key_path = data_dir.join(WITNESS_KEY_FILE);
    if key_path.exists() {
        anyhow::bail!("{} already holds a witness key", data_dir.display());
    }
    let key = WitnessKey::new(name, SigningKey::generate(&mut rand::rngs::OsRng))
        .context("the witness name")?;
    crate::init::write_secret(
        &key_path,
        &format!("{}\n", hex::encode(key.signing_key().to_bytes())),
    )?;
    let verifier = key.verifier();
    std::fs::write(data_dir.join(WITNESS_VKEY_FILE), format!("{verifier}\n"))
        .context("writing the verifier key")?;
    let ledgers = data_dir.join(LEDGERS_FILE);
    if !ledgers.exists() {
        std::fs::write(
            &ledgers,
            "# Ledgers this witness follows: one verifier key per line (isms witness add-ledger).\n",
        )
        .with_context(|| format!("writing {}", ledgers.display()))?;
    }
    Ok(verifier)
}

/// Reads the witness key of a folder made by [`init`].
pub fn load_key(data_dir: &Path) -> anyhow::Result<WitnessKey> {
    let key = crate::server::read_key_file(&data_dir.join(WITNESS_KEY_FILE))?;
    let vkey_path = data_dir.join(WITNESS_VKEY_FILE);
    let text = std::fs::read_to_string(&vkey_path)
        .with_context(|| format!("reading {}", vkey_path.display()))?;
    let verifier = WitnessVerifier::parse(&text)
        .with_context(|| format!("reading {}", vkey_path.display()))?;
    if verifier.public_key() != &key.verifying_key() {
        anyhow::bail!(
            "{} does not belong to the key in {}",
            vkey_path.display(),
            WITNESS_KEY_FILE
        );
    }
    Ok(WitnessKey::new(verifier.name(), key)?)
}

/// Reads the followed ledgers.
pub fn load_ledgers(data_dir: &Path) -> anyhow::Result<Vec<FollowedLedger>> {
    let path = data_dir.join(LEDGERS_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            FollowedLedger::from_vkey(line)
                .with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// Adds a ledger to follow, from its verifier key (the string, or a file holding it).
pub fn add_ledger(data_dir: &Path, vkey_or_file: &str) -> anyhow::Result<FollowedLedger> {
    let text = match std::fs::read_to_string(vkey_or_file) {
        Ok(content) => content,
        Err(_) => vkey_or_file.to_string(),
    };
    let ledger = FollowedLedger::from_vkey(text.trim())
        .context("expected a ledger verifier key <origin>+<key hash>+<base64 key>")?;
    let followed = load_ledgers(data_dir)?;
    if let Some(known) = followed.iter().find(|l| l.origin == ledger.origin) {
        if known.key == ledger.key {
            return Ok(ledger);
        }
        anyhow::bail!(
            "{} is already followed with another key; a ledger key does not change",
            ledger.origin
        );
    }
    let path = data_dir.join(LEDGERS_FILE);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(
        file,
        "{}",
        ledger::checkpoint::verifier_key(&ledger.origin, &ledger.key)
    )?;
    file.sync_all()?;
    Ok(ledger)
}

/// Opens the witness of a data folder: key, followed ledgers, held state.
pub fn open(data_dir: &Path) -> anyhow::Result<WitnessState> {
    let key = load_key(data_dir)?;
    let ledgers = load_ledgers(data_dir)?;
    Ok(WitnessState::open(data_dir, key, ledgers)?)
}
