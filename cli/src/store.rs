//! Where a data folder's ledger is stored: the sled folder `store/` beside the keys (the
//! default), or one ledger in a PostgreSQL database (`--store postgres://…#name`).
//!
//! The data folder always holds the keys. `isms init --store URL` records the URL in the
//! folder's `store.url`, so `isms serve --data DIR` finds the database again; `--store` given
//! to `serve` overrides it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ledger::engine::{Engine, SledEngine};
use ledger::postgres::PostgresEngine;
use ledger::LedgerConfig;

/// The file in a data folder naming a PostgreSQL store (absent for sled).
pub const STORE_FILE: &str = "store.url";
/// The sled store inside the data folder.
pub const STORE_DIR: &str = "store";
/// The ledger name used in a database when the URL names none.
pub const DEFAULT_LEDGER_NAME: &str = "default";

/// Where one ledger's bytes are.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A sled folder.
    Sled(PathBuf),
    /// A ledger in a PostgreSQL database.
    Postgres {
        /// The connection URL, without the `#ledger` part.
        url: String,
        /// The ledger's name in the database.
        ledger: String,
    },
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreLocation {
    /// A `postgres://` or `postgresql://` URL (with an optional `#ledger-name`), or a folder.
    pub fn parse(text: &str) -> StoreLocation {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let (url, ledger) = match text.split_once('#') {
                Some((url, name)) if !name.is_empty() => (url, name),
                Some((url, _)) => (url, DEFAULT_LEDGER_NAME),
                None => (text, DEFAULT_LEDGER_NAME),
            };
            StoreLocation::Postgres {
                url: url.to_string(),
                ledger: ledger.to_string(),
            }
        } else {
            StoreLocation::Sled(PathBuf::from(text))
        }
    }

    /// The store of the data folder `data_dir`: `given` when there is one, else the URL its
    /// `store.url` records, else its sled folder.
    pub fn of_data_folder(data_dir: &Path, given: Option<&str>) -> anyhow::Result<StoreLocation> {
        if let Some(given) = given {
            return Ok(StoreLocation::parse(given));
        }
        let file = data_dir.join(STORE_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(StoreLocation::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(StoreLocation::Sled(data_dir.join(STORE_DIR)))
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
        }
    }

    /// Whether this is the embedded default.
    pub fn is_sled(&self) -> bool {
        matches!(self, StoreLocation::Sled(_))
    }

    /// The text `parse` reads back (with the password, if the URL has one).
    pub fn to_text(&self) -> String {
        match self {
            StoreLocation::Sled(path) => path.display().to_string(),
            StoreLocation::Postgres { url, ledger } => format!("{url}#{ledger}"),
        }
    }

    /// For messages and logs: the folder, or the URL with any password hidden.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sled(path) => path.display().to_string(),
            StoreLocation::Postgres { url, ledger } => {
                format!("{}#{ledger}", hide_password(url))
            }
        }
    }

    /// Opens the engine. A PostgreSQL engine connects and brings the schema up to date.
    pub fn engine(&self, config: &LedgerConfig) -> anyhow::Result<Arc<dyn Engine>> {
        Ok(match self {
            StoreLocation::Sled(path) => Arc::new(
                SledEngine::open(path, config.cache_bytes)
                    .with_context(|| format!("opening the store in {}", path.display()))?,
            ),
            StoreLocation::Postgres { url, ledger } => Arc::new(self.postgres(url, ledger)?),
        })
    }

    /// Opens the engine as this ledger's only writer: for PostgreSQL, takes the writer lease
    /// (waiting up to `lease.wait` for another server's to end) before anything is written.
    pub fn writer_engine(
        &self,
        config: &LedgerConfig,
        lease: &WriterLease,
    ) -> anyhow::Result<Arc<dyn Engine>> {
        match self {
            StoreLocation::Sled(_) => self.engine(config),
            StoreLocation::Postgres { url, ledger } => {
                let engine = self.postgres(url, ledger)?;
                let term = engine
                    .acquire_writer(lease.duration, lease.wait)
                    .with_context(|| format!("becoming the writer of {}", self.describe()))?;
                tracing::info!(store = %self.describe(), term, "holding the writer lease");
                Ok(Arc::new(engine))
            }
        }
    }

    /// Opens the ledger stored here: able to append with its `key` (on PostgreSQL after
    /// taking the writer lease), read-only without.
    pub fn open(
        &self,
        config: LedgerConfig,
        key: Option<ed25519_dalek::SigningKey>,
        lease: &WriterLease,
    ) -> anyhow::Result<ledger::Ledger> {
        match self {
            // `Ledger::open` names a damaged sled folder precisely.
            StoreLocation::Sled(path) => ledger::Ledger::open(path, config, key),
            StoreLocation::Postgres { .. } => {
                let engine = match key {
                    Some(_) => self.writer_engine(&config, lease)?,
                    None => self.engine(&config)?,
                };
                ledger::Ledger::open_in(engine, config, key)
            }
        }
        .with_context(|| format!("opening the ledger in {}", self.describe()))
    }

    fn postgres(&self, url: &str, ledger: &str) -> anyhow::Result<PostgresEngine> {
        PostgresEngine::connect(url, ledger)
            .with_context(|| format!("connecting to {}", self.describe()))
    }
}

/// Opens the ledger of the data folder `data_dir` (in its sled store or the database its
/// `store.url` names) read-only: for commands that read a stopped ledger's folder, or a
/// PostgreSQL ledger while its server runs.
pub fn open_data_folder(data_dir: &Path) -> anyhow::Result<ledger::Ledger> {
    StoreLocation::of_data_folder(data_dir, None)?.open(
        LedgerConfig::default(),
        None,
        &WriterLease::default(),
    )
}

/// How a server holds a PostgreSQL ledger's writer lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterLease {
    /// How long the lease lasts unless renewed; a server that dies is replaced after at most
    /// this long.
    pub duration: Duration,
    /// How long to wait for another server's lease to end before giving up.
    pub wait: Duration,
}

impl Default for WriterLease {
    fn default() -> Self {
        WriterLease {
            duration: Duration::from_secs(10),
            wait: Duration::from_secs(24 * 3600),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_names_its_ledger_after_the_hash() {
        let store = StoreLocation::parse("postgres://u@db.example:5432/isms#acme");
        assert_eq!(
            store,
            StoreLocation::Postgres {
                url: "postgres://u@db.example:5432/isms".into(),
                ledger: "acme".into()
            }
        );
    }

    #[test]
    fn a_postgres_url_without_a_ledger_name_holds_the_default_ledger() {
        let StoreLocation::Postgres { ledger, .. } = StoreLocation::parse("postgresql://h/db")
        else {
            panic!("not postgres");
        };
        assert_eq!(ledger, DEFAULT_LEDGER_NAME);
    }

    #[test]
    fn anything_else_is_a_sled_folder() {
        assert!(StoreLocation::parse("./isms-data/store").is_sled());
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        let store = StoreLocation::parse("postgres://isms:s3cret@db:5432/isms#acme");
        assert!(!store.describe().contains("s3cret"));
        assert!(!format!("{store:?}").contains("s3cret"));
        assert!(store.describe().contains("isms:***@db:5432/isms#acme"));
    }
}
