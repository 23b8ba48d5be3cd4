//! `isms init`: a new ledger folder with its ledger key, a first admin key and the genesis.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use ledger::{KeyGrant, Ledger, LedgerConfig, LedgerId};

use crate::server::LEDGER_KEY_FILE;
use crate::store::{StoreLocation, WriterLease, STORE_DIR, STORE_FILE};

/// The admin key file `init` writes beside the ledger key. Move it off the server.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// What `init` made.
#[derive(Debug)]
pub struct Initialized {
    /// The new ledger's id.
    pub ledger_id: LedgerId,
    /// The ledger key file.
    pub ledger_key_path: PathBuf,
    /// The first admin's key file.
    pub admin_key_path: PathBuf,
    /// The first admin's key.
    pub admin_key: SigningKey,
}

/// Writes `text` to a new file readable by its owner only (mode 0600), refusing to overwrite.
pub fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn new_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Creates a ledger in `data_dir`: a fresh ledger key and admin key (files, mode 0600) and the
/// genesis entry enrolling the admin as `admin_subject` with the admin and management roles.
pub fn init(data_dir: &Path, name: &str, admin_subject: &str) -> anyhow::Result<Initialized> {
    init_in(data_dir, None, name, admin_subject)
}

/// Like [`init`], with the records in `store` (the folder's own sled store when `None`). A
/// PostgreSQL store is recorded in the folder's `store.url` (mode 0600: the URL may hold a
/// password) so that `isms serve --data` finds it.
pub fn init_in(
    data_dir: &Path,
    store: Option<&StoreLocation>,
    name: &str,
    admin_subject: &str,
) -> anyhow::Result<Initialized> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let ledger_key_path = data_dir.join(LEDGER_KEY_FILE);
    let admin_key_path = data_dir.join(ADMIN_KEY_FILE);
    if ledger_key_path.exists()
        || data_dir.join(STORE_DIR).exists()
        || data_dir.join(STORE_FILE).exists()
    {
        anyhow::bail!("{} already holds a ledger", data_dir.display());
    }
    let store = store
        .cloned()
        .unwrap_or_else(|| StoreLocation::Sled(data_dir.join(STORE_DIR)));
    let config = LedgerConfig::default();
    // Connect (and take the writer lease) before any key file is written, so that an
    // unreachable database or a ledger name already taken leaves the folder empty.
    let engine = store.writer_engine(&config, &WriterLease::default())?;
    let ledger_key = new_key();
    let admin_key = new_key();
    write_secret(
        &ledger_key_path,
        &format!("{}\n", hex::encode(ledger_key.to_bytes())),
    )?;
    write_secret(
        &admin_key_path,
        &format!("{}\n", hex::encode(admin_key.to_bytes())),
    )?;
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let ledger = Ledger::create_in(
        engine,
        LedgerId(id),
        name,
        ledger_key,
        vec![KeyGrant {
            public_key: admin_key.verifying_key().to_bytes(),
            subject: admin_subject.to_string(),
            roles: vec!["admin".into(), "management".into()],
        }],
        config,
    )
    .with_context(|| format!("creating the genesis in {}", store.describe()));
    let ledger = match ledger {
        Ok(ledger) => ledger,
        Err(e) => {
            // No ledger was made: leave no key behind that would claim one.
            let _ = std::fs::remove_file(&ledger_key_path);
            let _ = std::fs::remove_file(&admin_key_path);
            return Err(e);
        }
    };
    if !store.is_sled() {
        write_secret(
            &data_dir.join(STORE_FILE),
            &format!("{}\n", store.to_text()),
        )?;
    }
    Ok(Initialized {
        ledger_id: ledger.ledger_id(),
        ledger_key_path,
        admin_key_path,
        admin_key,
    })
}
