//! The PostgreSQL engine: many ledgers in one database, a batch per transaction, and a
//! writer lease that fences out a server that lost it.
//!
//! Every pair of every ledger is a row of `isms_kv (ledger, space, key, value)`; the schema
//! is kept in `ledger/migrations/postgres/` and brought up to date at connect. A batch is one
//! transaction, durable when the commit returns (the database's `fsync` and synchronous
//! commit). A writer holds the ledger's row of `isms_writer_lease`; every batch's transaction
//! renews it `WHERE term = <its term>` and rolls back when that matches nothing, so a writer
//! whose lease another server took cannot write, even late.
//!
//! The lease fences the ledger's *records*: the ledger writes records only through an engine
//! that took the lease ([`PostgresEngine::acquire_writer`]). An engine that never took it may
//! still apply batches, unfenced: read-only servers keep derived data (projection snapshots)
//! that way, and `create` writes a new ledger's genesis guarded by its batch's expectations.
//! Once an engine took the lease, every batch of every keyspace of it is fenced.
//!
//! The ledger's API is synchronous and is called from plain threads and from inside tokio
//! tasks of other runtimes, so the engine owns a small runtime of its own: each call runs on
//! it and the caller waits on a channel. Connections are made without TLS (`NoTls`): run the
//! database on a private network or a local socket, or put a TLS proxy in front.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::ops::Bound;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls};

use crate::engine::{Engine, KeyRange, Keyspace, Pair, Pairs, Space, WriteBatch};
use crate::LedgerError;

/// The schema migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/postgres/0001_init.sql"))];
/// The advisory lock migrations run under ("isms-led" in ASCII).
const MIGRATION_LOCK: i64 = 0x6973_6d73_2d6c_6564;
/// Rows per page of a scan.
const PAGE: i64 = 1024;
/// How long one database call may take before it is given up as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take, unless the URL says otherwise (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The lease's holder and term now, for the message of a writer that lost it.
const LEASE_NOW: &str = "SELECT term, holder FROM isms_writer_lease WHERE ledger = $1";
/// Renews the lease of ledger $1 for $3 milliseconds, if it is still of term $2.
const RENEW_LEASE: &str = "UPDATE isms_writer_lease \
     SET expires_at = now() + $3::bigint * interval '1 millisecond' \
     WHERE ledger = $1 AND term = $2";
/// Ends the lease of ledger $1 now, if it is still of term $2.
const END_LEASE: &str =
    "UPDATE isms_writer_lease SET expires_at = now() WHERE ledger = $1 AND term = $2";

/// A lease's duration as the milliseconds [`RENEW_LEASE`] takes.
fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

fn db_error(detail: impl std::fmt::Display) -> LedgerError {
    LedgerError::Database {
        engine: "postgres",
        detail: detail.to_string(),
    }
}

/// A PostgreSQL error as [`LedgerError::Database`], with its causes (tokio-postgres's own
/// message is only "db error" or "error connecting to server").
fn pg_error(e: tokio_postgres::Error) -> LedgerError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    db_error(detail)
}

/// Checks a ledger's name: 1–63 characters of `a-z`, `0-9`, `_` and `-`.
pub fn check_ledger_name(name: &str) -> Result<(), LedgerError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LedgerError::InvalidGenesis(format!(
            "ledger name {name:?}: must be 1 to 63 characters of a-z, 0-9, '_' and '-'"
        )))
    }
}

/// This host's name, for the lease's holder: `$HOSTNAME`, else `/etc/hostname`.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Why an engine that took the writer lease may no longer write.
#[derive(Clone, Debug)]
enum Fence {
    /// Another server took the lease over (the details).
    TakenOver(String),
    /// This engine released its lease (of this term).
    Released(i64),
}

impl std::fmt::Display for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fence::TakenOver(why) => f.write_str(why),
            Fence::Released(term) => write!(f, "it released its writer lease (term {term})"),
        }
    }
}

/// The lease this engine holds.
#[derive(Clone, Copy, Debug)]
struct Lease {
    term: i64,
    duration: Duration,
}

/// Write connections per database, shared by every ledger of it in this process.
const WRITE_CONNECTIONS: usize = 4;

/// What every engine of one database (one URL) in this process shares: the runtime and the
/// connections. A server hosting many ledgers of one database holds one runtime and
/// `1 + WRITE_CONNECTIONS` connections, not a set per ledger.
struct Shared {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    config: Config,
    /// Pipelined single statements (reads, lease renewals).
    reads: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Transactions (batches): a ledger always uses the same one (by its name's hash), so
    /// its batches stay in order and ledgers of one database write in parallel.
    writes: Vec<tokio::sync::Mutex<Option<Client>>>,
    /// Whether this process already brought the schema up to date.
    migrated: AtomicBool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The databases this process is connected to, by URL.
fn shared_for(url: &str, config: Config) -> Result<Arc<Shared>, LedgerError> {
    static OPEN: OnceLock<Mutex<HashMap<String, Weak<Shared>>>> = OnceLock::new();
    let mut open = OPEN
        .get_or_init(Mutex::default)
        .lock()
        .expect("databases lock");
    if let Some(shared) = open.get(url).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("isms-postgres")
        .enable_all()
        .build()
        .map_err(|e| db_error(format!("starting the engine's runtime: {e}")))?;
    let shared = Arc::new(Shared {
        runtime: Some(runtime),
        config,
        reads: tokio::sync::Mutex::new(None),
        writes: (0..WRITE_CONNECTIONS)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
        migrated: AtomicBool::new(false),
    });
    open.retain(|_, weak| weak.strong_count() > 0);
    open.insert(url.to_string(), Arc::downgrade(&shared));
    Ok(shared)
}

/// What the engine's handles share.
struct Inner {
    shared: Arc<Shared>,
    ledger: String,
    lease: Mutex<Option<Lease>>,
    /// Set when this engine found its lease taken over, or released it: every later batch
    /// is refused until it takes the lease again.
    fenced: Mutex<Option<Fence>>,
    /// This process, as the lease's holder.
    holder: String,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("ledger", &self.ledger)
            .field("lease", &self.lease.lock().ok().and_then(|l| *l))
            .finish_non_exhaustive()
    }
}

/// One ledger in a PostgreSQL database, as an [`Engine`]: its keyspaces are the ledger's
/// rows of `isms_kv`. Every engine of one database in this process shares a small tokio
/// runtime (two worker threads), one connection for reads (concurrent queries are pipelined
/// on it) and four for write transactions. Clones and keyspaces share the writer lease; the
/// lease is released (best effort) when the last of them is dropped.
#[derive(Clone, Debug)]
pub struct PostgresEngine {
    inner: Arc<Inner>,
}

/// Connects a new client, its connection driven on the current runtime.
async fn connect(config: &Config) -> Result<Client, LedgerError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Inner {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.shared.runtime.as_ref().expect("the engine's runtime")
    }

    fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The write connection of this ledger.
    fn writes(&self) -> &tokio::sync::Mutex<Option<Client>> {
        let slot = self.ledger.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.shared.writes[slot % self.shared.writes.len()]
    }

    /// Runs `work` on the engine's runtime and waits for it (at most [`CALL_TIMEOUT`]).
    fn run<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        let runtime = self.runtime();
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = match tokio::time::timeout(CALL_TIMEOUT, work).await {
                Ok(result) => result,
                Err(_) => Err(db_error(format!(
                    "no answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ))),
            };
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| db_error("the database task stopped without an answer"))?
    }

    /// The reading client, connected again if its connection was lost.
    async fn reader(self: &Arc<Self>) -> Result<Arc<Client>, LedgerError> {
        let mut slot = self.shared.reads.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(connect(self.config()).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    fn lease(&self) -> Option<Lease> {
        *self.lease.lock().expect("lease lock")
    }

    fn not_writer(&self, detail: impl Into<String>) -> LedgerError {
        LedgerError::NotWriter {
            ledger: self.ledger.clone(),
            detail: detail.into(),
        }
    }

    /// Why this engine may no longer write, once it found its lease taken over or released
    /// it.
    fn fenced(&self) -> Option<Fence> {
        self.fenced.lock().expect("fenced lock").clone()
    }

    /// Refuses every later batch of this engine, for `why`.
    fn fence(&self, why: Fence) {
        *self.fenced.lock().expect("fenced lock") = Some(why);
    }
}

/// Why the lease of `term` no longer holds, from the lease's row now ([`LEASE_NOW`]).
fn taken_over(term: i64, now: Option<tokio_postgres::Row>) -> String {
    match now {
        Some(row) => format!(
            "its lease (term {term}) was taken over by {} (term {})",
            row.get::<_, String>(1),
            row.get::<_, i64>(0)
        ),
        None => format!("its lease (term {term}) is gone"),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let (Some(lease), Some(runtime)) = (self.lease(), self.shared.runtime.as_ref()) {
            // Let the next writer in at once instead of after the lease runs out.
            let (config, ledger) = (self.shared.config.clone(), self.ledger.clone());
            let (tx, rx) = mpsc::sync_channel(1);
            runtime.spawn(async move {
                let released = async {
                    let client = connect(&config).await?;
                    client
                        .execute(END_LEASE, &[&ledger, &lease.term])
                        .await
                        .map_err(pg_error)
                };
                let _ = tx.send(tokio::time::timeout(Duration::from_secs(5), released).await);
            });
            let _ = rx.recv_timeout(Duration::from_secs(6));
        }
    }
}

impl PostgresEngine {
    /// Connects to the database at `url` (a libpq-style URL such as
    /// `postgres://user[:password]@host:port/database`, or `key=value` pairs) for the ledger
    /// called `ledger` (1 to 63 characters of `a-z`, `0-9`, `_` and `-`), and brings the
    /// schema up to date (the migrations in `ledger/migrations/postgres/`, applied in order
    /// under an advisory lock and recorded in `isms_schema_migrations`).
    ///
    /// Connections are made without TLS (`NoTls`): keep the database on a private network or
    /// a local socket, or put a TLS proxy in front. Without a `connect_timeout` in the URL,
    /// connecting gives up after 10 s; every call gives up after 30 s with
    /// [`LedgerError::Database`]. A lost connection is made again at the next call.
    pub fn connect(url: &str, ledger: &str) -> Result<PostgresEngine, LedgerError> {
        check_ledger_name(ledger)?;
        let mut config = Config::from_str(url)
            .map_err(|e| db_error(format!("the URL is not a PostgreSQL URL: {e}")))?;
        // A database that does not answer is an error, not a wait without end; a peer that
        // vanished is noticed by TCP keepalives.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            // tokio-postgres's default, two hours: far too long to notice a lost database.
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(Duration::from_secs(10));
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
        if config.get_application_name().is_none() {
            config.application_name("isms-ledger");
        }
        let shared = shared_for(url, config)?;
        let holder = format!(
            "{}/pid {}/{:08x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        );
        let inner = Arc::new(Inner {
            shared,
            ledger: ledger.to_string(),
            lease: Mutex::new(None),
            fenced: Mutex::new(None),
            holder,
        });
        let engine = PostgresEngine { inner };
        if !engine.inner.shared.migrated.load(Ordering::SeqCst) {
            engine.migrate()?;
            engine.inner.shared.migrated.store(true, Ordering::SeqCst);
        }
        Ok(engine)
    }

    /// The ledger's name in the database.
    pub fn ledger(&self) -> &str {
        &self.inner.ledger
    }

    /// Applies the schema migrations this build knows and the database lacks, in order, in
    /// one transaction under an advisory lock (servers starting together do not race).
    fn migrate(&self) -> Result<(), LedgerError> {
        let config = self.inner.config().clone();
        self.inner.run(async move {
            let mut client = connect(&config).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg_error)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS isms_schema_migrations (\
                     version int PRIMARY KEY, \
                     applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(pg_error)?;
            let applied: Vec<i32> = tx
                .query("SELECT version FROM isms_schema_migrations", &[])
                .await
                .map_err(pg_error)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if let Some(newer) = applied
                .iter()
                .max()
                .filter(|v| **v > MIGRATIONS.len() as i32)
            {
                return Err(db_error(format!(
                    "the database's schema is version {newer}, written by a newer isms; this \
                     build knows versions up to {}: upgrade isms",
                    MIGRATIONS.len()
                )));
            }
            for (version, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| db_error(format!("schema migration {version}: {e}")))?;
                tx.execute(
                    "INSERT INTO isms_schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)
        })
    }

    /// Takes this ledger's writer lease for `lease` (renewed every third of it, and by every
    /// batch), waiting up to `wait` for another server's to end; its term. The database's
    /// clock decides when a lease has run out: a free ledger gets term 1, an expired lease
    /// is taken with its term plus one, in one statement. While another server holds it, this
    /// tries again every quarter of `lease` until `wait` has passed, then fails with
    /// [`LedgerError::NotWriter`] naming the holder, its term and when its lease ends.
    ///
    /// From then on every batch of every keyspace of this engine first renews the lease in
    /// its own transaction `WHERE term = <this term>` and is rolled back with
    /// [`LedgerError::NotWriter`] when that matches nothing (another server took the lease
    /// over): a writer that lost its lease cannot write, even late. A background task renews
    /// the lease every third of `lease`; when it finds the lease taken over, the engine is
    /// fenced and every later batch fails at once.
    pub fn acquire_writer(&self, lease: Duration, wait: Duration) -> Result<u64, LedgerError> {
        let lease_ms = lease_millis(lease).max(1);
        let deadline = Instant::now() + wait;
        loop {
            let inner = self.inner.clone();
            let taken = self.inner.run(async move {
                let client = inner.reader().await?;
                let row = client
                    .query_opt(
                        "INSERT INTO isms_writer_lease (ledger, term, holder, expires_at) \
                         VALUES ($1, 1, $2, now() + $3::bigint * interval '1 millisecond') \
                         ON CONFLICT (ledger) DO UPDATE SET \
                             term = isms_writer_lease.term + 1, \
                             holder = excluded.holder, \
                             expires_at = excluded.expires_at \
                         WHERE isms_writer_lease.expires_at < now() \
                         RETURNING term",
                        &[&inner.ledger, &inner.holder, &lease_ms],
                    )
                    .await
                    .map_err(pg_error)?;
                if let Some(row) = row {
                    return Ok(Ok(row.get::<_, i64>(0)));
                }
                let held = client
                    .query_opt(
                        "SELECT holder, term, \
                         (extract(epoch FROM expires_at - now()) * 1000)::bigint, \
                         to_char(expires_at AT TIME ZONE 'UTC', \
                                 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
                         FROM isms_writer_lease WHERE ledger = $1",
                        &[&inner.ledger],
                    )
                    .await
                    .map_err(pg_error)?;
                Ok(Err(match held {
                    Some(row) => format!(
                        "{} holds its writer lease (term {}) until {} ({} ms more)",
                        row.get::<_, String>(0),
                        row.get::<_, i64>(1),
                        row.get::<_, String>(3),
                        row.get::<_, i64>(2).max(0)
                    ),
                    None => "its writer lease is being taken".to_string(),
                }))
            })?;
            match taken {
                Ok(term) => {
                    *self.inner.lease.lock().expect("lease lock") = Some(Lease {
                        term,
                        duration: lease,
                    });
                    *self.inner.fenced.lock().expect("fenced lock") = None;
                    self.start_renewal(term, lease);
                    return Ok(term as u64);
                }
                Err(held) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.inner.not_writer(held));
                    }
                    // One last try when `wait` ends.
                    std::thread::sleep(
                        (lease / 4)
                            .clamp(Duration::from_millis(10), Duration::from_millis(500))
                            .min(left),
                    );
                }
            }
        }
    }

    /// Renews the lease every third of its duration until it is released, the engine is
    /// dropped, or the renewal finds it taken over (the engine is then fenced).
    fn start_renewal(&self, term: i64, lease: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let lease_ms = lease_millis(lease);
        self.inner.runtime().spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.lease().map(|l| l.term) != Some(term) {
                    return;
                }
                let Ok(client) = inner.reader().await else {
                    continue;
                };
                let renewed = client
                    .execute(RENEW_LEASE, &[&inner.ledger, &term, &lease_ms])
                    .await;
                // A failed renewal (database unreachable) is tried again; a renewal that
                // matched no row means another server took the lease.
                if let Ok(0) = renewed {
                    let now = client
                        .query_opt(LEASE_NOW, &[&inner.ledger])
                        .await
                        .ok()
                        .flatten();
                    inner.fence(Fence::TakenOver(taken_over(term, now)));
                    return;
                }
            }
        });
    }

    /// The term of the writer lease this engine took ([`PostgresEngine::acquire_writer`]),
    /// until it is released; `None` when it never took one. The database may have given the
    /// lease to another server since: its batches are then refused.
    pub fn writer_term(&self) -> Option<u64> {
        self.inner.lease().map(|l| l.term as u64)
    }

    /// Gives the writer lease up at once (a standby can take it without waiting for it to
    /// run out): its row expires now, if it still has this engine's term. Later batches of
    /// this engine are refused ([`LedgerError::NotWriter`]) until it takes the lease again.
    /// Done on drop as well (best effort), when the last handle of the engine (a clone, a
    /// keyspace) goes.
    pub fn release_writer(&self) -> Result<(), LedgerError> {
        let Some(lease) = self.inner.lock_take_lease() else {
            return Ok(());
        };
        self.inner.fence(Fence::Released(lease.term));
        let inner = self.inner.clone();
        self.inner.run(async move {
            inner
                .reader()
                .await?
                .execute(END_LEASE, &[&inner.ledger, &lease.term])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }

    /// The names of the ledgers the database at `url` holds (that have at least one pair),
    /// sorted. Brings the schema up to date, like [`PostgresEngine::connect`].
    pub fn ledgers(url: &str) -> Result<Vec<String>, LedgerError> {
        let engine = PostgresEngine::connect(url, "default")?;
        let inner = engine.inner.clone();
        engine.inner.run(async move {
            Ok(inner
                .reader()
                .await?
                .query("SELECT DISTINCT ledger FROM isms_kv ORDER BY ledger", &[])
                .await
                .map_err(pg_error)?
                .iter()
                .map(|row| row.get(0))
                .collect())
        })
    }

    /// Removes every pair and the lease of the ledger `name` from the database at `url` (an
    /// unfinished restore's copy).
    pub fn delete_ledger(url: &str, name: &str) -> Result<(), LedgerError> {
        check_ledger_name(name)?;
        let engine = PostgresEngine::connect(url, name)?;
        let (inner, name) = (engine.inner.clone(), name.to_string());
        engine.inner.run(async move {
            let mut client = connect(inner.config()).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute("DELETE FROM isms_kv WHERE ledger = $1", &[&name])
                .await
                .map_err(pg_error)?;
            tx.execute("DELETE FROM isms_writer_lease WHERE ledger = $1", &[&name])
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    /// Renames the ledger `from` to `to` in one transaction (a restore's copy taking its
    /// name once verified). Refused when `to` already holds a ledger.
    pub fn rename_ledger(url: &str, from: &str, to: &str) -> Result<(), LedgerError> {
        check_ledger_name(from)?;
        check_ledger_name(to)?;
        let engine = PostgresEngine::connect(url, to)?;
        let (inner, from, to) = (engine.inner.clone(), from.to_string(), to.to_string());
        engine.inner.run(async move {
            let mut client = connect(inner.config()).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let taken = tx
                .query_opt("SELECT 1 FROM isms_kv WHERE ledger = $1 LIMIT 1", &[&to])
                .await
                .map_err(pg_error)?;
            if taken.is_some() {
                return Err(LedgerError::AlreadyExists(format!("ledger {to:?}")));
            }
            tx.execute(
                "UPDATE isms_kv SET ledger = $2 WHERE ledger = $1",
                &[&from, &to],
            )
            .await
            .map_err(pg_error)?;
            tx.execute("DELETE FROM isms_writer_lease WHERE ledger = $1", &[&from])
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }
}

impl Inner {
    fn lock_take_lease(&self) -> Option<Lease> {
        self.lease.lock().expect("lease lock").take()
    }
}

impl Engine for PostgresEngine {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn keyspace(&self, name: &str) -> Result<Space, LedgerError> {
        Ok(Arc::new(PostgresSpace {
            inner: self.inner.clone(),
            space: name.to_string(),
        }))
    }

    fn flush(&self) -> Result<(), LedgerError> {
        // Every batch was committed before `apply` returned.
        Ok(())
    }

    /// The bytes of the ledger's keys and values (its payload, not the table's size on disk,
    /// which the database shares between ledgers).
    fn size_bytes(&self) -> Result<u64, LedgerError> {
        let inner = self.inner.clone();
        self.inner.run(async move {
            let row = inner
                .reader()
                .await?
                .query_one(
                    "SELECT COALESCE(sum(octet_length(key) + octet_length(value)), 0)::bigint \
                     FROM isms_kv WHERE ledger = $1",
                    &[&inner.ledger],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn durable_on_apply(&self) -> bool {
        true
    }

    fn lost_writer(&self) -> Option<String> {
        match self.inner.fenced()? {
            Fence::TakenOver(why) => Some(format!(
                "another server took the writer lease of ledger {:?} ({why})",
                self.inner.ledger
            )),
            Fence::Released(_) => None,
        }
    }
}

/// One keyspace of one ledger.
#[derive(Debug)]
struct PostgresSpace {
    inner: Arc<Inner>,
    space: String,
}

/// The SQL condition and parameters of a range's bounds (parameters from `$3`).
fn range_condition(range: &KeyRange) -> (String, Vec<Vec<u8>>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    for (bound, inclusive, exclusive) in [(&range.start, ">=", ">"), (&range.end, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(k) => (inclusive, k),
            Bound::Excluded(k) => (exclusive, k),
            Bound::Unbounded => continue,
        };
        params.push(key.clone());
        sql.push_str(&format!(" AND key {op} ${}", params.len() + 2));
    }
    (sql, params)
}

impl PostgresSpace {
    /// The first `limit` pairs of `range`, in key order or reversed.
    fn page(&self, range: &KeyRange, reverse: bool, limit: i64) -> Result<Vec<Pair>, LedgerError> {
        let (condition, params) = range_condition(range);
        let sql = format!(
            "SELECT key, value FROM isms_kv WHERE ledger = $1 AND space = $2{condition} \
             ORDER BY key {} LIMIT {limit}",
            if reverse { "DESC" } else { "ASC" }
        );
        let (inner, space) = (self.inner.clone(), self.space.clone());
        self.inner.run(async move {
            let client = inner.reader().await?;
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&inner.ledger, &space];
            args.extend(params.iter().map(|p| p as &(dyn ToSql + Sync)));
            let rows = client.query(&sql, &args).await.map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|row| (row.get::<_, Vec<u8>>(0), row.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }

    fn scan_from(&self, range: KeyRange, reverse: bool) -> Pairs<'_> {
        if crate::engine::empty_range(&range) {
            return Box::new(std::iter::empty());
        }
        Box::new(PageScan {
            space: self,
            range,
            reverse,
            buffer: VecDeque::new(),
            done: false,
        })
    }
}

/// A scan read page by page as it is consumed.
struct PageScan<'a> {
    space: &'a PostgresSpace,
    range: KeyRange,
    reverse: bool,
    buffer: VecDeque<Pair>,
    done: bool,
}

impl Iterator for PageScan<'_> {
    type Item = Result<Pair, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            match self.space.page(&self.range, self.reverse, PAGE) {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(page) => {
                    self.done = page.len() < PAGE as usize;
                    if let Some((last, _)) = page.last() {
                        // The next page continues strictly after the last key read.
                        let after = Bound::Excluded(last.clone());
                        if self.reverse {
                            self.range.end = after;
                        } else {
                            self.range.start = after;
                        }
                    }
                    self.buffer.extend(page);
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

impl Keyspace for PostgresSpace {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        let (inner, space, key) = (self.inner.clone(), self.space.clone(), key.to_vec());
        self.inner.run(async move {
            let row = inner
                .reader()
                .await?
                .query_opt(
                    "SELECT value FROM isms_kv WHERE ledger = $1 AND space = $2 AND key = $3",
                    &[&inner.ledger, &space, &key],
                )
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn scan(&self, range: KeyRange) -> Pairs<'_> {
        self.scan_from(range, false)
    }

    fn scan_rev(&self, range: KeyRange) -> Pairs<'_> {
        self.scan_from(range, true)
    }

    fn first(&self, range: KeyRange) -> Result<Option<Pair>, LedgerError> {
        if crate::engine::empty_range(&range) {
            return Ok(None);
        }
        // One row, not a page: a snapshot or node block can be large.
        Ok(self.page(&range, false, 1)?.pop())
    }

    fn last(&self, range: KeyRange) -> Result<Option<Pair>, LedgerError> {
        if crate::engine::empty_range(&range) {
            return Ok(None);
        }
        Ok(self.page(&range, true, 1)?.pop())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), LedgerError> {
        if batch.is_empty() && batch.expectations().is_empty() {
            return Ok(());
        }
        if let Some(why) = self.inner.fenced() {
            return Err(self.inner.not_writer(why.to_string()));
        }
        let lease = self.inner.lease();
        let (inner, space) = (self.inner.clone(), self.space.clone());
        self.inner.run(async move {
            let mut slot = inner.writes().lock().await;
            if slot.as_ref().is_none_or(Client::is_closed) {
                *slot = Some(connect(inner.config()).await?);
            }
            let client = slot.as_mut().expect("connected");
            let tx = client.transaction().await.map_err(pg_error)?;
            if let Some(lease) = lease {
                let lease_ms = lease_millis(lease.duration);
                let renewed = tx
                    .execute(RENEW_LEASE, &[&inner.ledger, &lease.term, &lease_ms])
                    .await
                    .map_err(pg_error)?;
                if renewed == 0 {
                    let now = tx
                        .query_opt(LEASE_NOW, &[&inner.ledger])
                        .await
                        .ok()
                        .flatten();
                    let why = taken_over(lease.term, now);
                    inner.fence(Fence::TakenOver(why.clone()));
                    // Dropping the transaction rolls it back: nothing of the batch is stored.
                    return Err(inner.not_writer(why));
                }
            }
            if !batch.expectations().is_empty() {
                // Writers of one ledger check and write one after the other.
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    &[&inner.ledger],
                )
                .await
                .map_err(pg_error)?;
                let mut current = Vec::new();
                for (key, _) in batch.expectations() {
                    let row = tx
                        .query_opt(
                            "SELECT value FROM isms_kv \
                             WHERE ledger = $1 AND space = $2 AND key = $3 FOR UPDATE",
                            &[&inner.ledger, &space, key],
                        )
                        .await
                        .map_err(pg_error)?;
                    current.push((key.clone(), row.map(|r| r.get::<_, Vec<u8>>(0))));
                }
                batch.check_expectations(|key| {
                    Ok(current
                        .iter()
                        .find(|(k, _)| k.as_slice() == key)
                        .and_then(|(_, v)| v.clone()))
                })?;
            }
            let (mut put_keys, mut put_values, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
            for (key, value) in batch.last_per_key() {
                match value {
                    Some(value) => {
                        put_keys.push(key);
                        put_values.push(value);
                    }
                    None => deleted.push(key),
                }
            }
            if !deleted.is_empty() {
                tx.execute(
                    "DELETE FROM isms_kv WHERE ledger = $1 AND space = $2 AND key = ANY($3)",
                    &[&inner.ledger, &space, &deleted],
                )
                .await
                .map_err(pg_error)?;
            }
            if !put_keys.is_empty() {
                tx.execute(
                    "INSERT INTO isms_kv (ledger, space, key, value) \
                     SELECT $1, $2, k, v FROM unnest($3::bytea[], $4::bytea[]) AS t(k, v) \
                     ON CONFLICT (ledger, space, key) DO UPDATE SET value = excluded.value",
                    &[&inner.ledger, &space, &put_keys, &put_values],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_name_outside_the_rule_is_refused_naming_the_rule() {
        for bad in ["", "Acme", "acme corp", "acme/1", &"a".repeat(64)] {
            let err = check_ledger_name(bad).expect_err(bad);
            assert!(err.to_string().contains("a-z, 0-9"), "{err}");
        }
        check_ledger_name("acme-2025_eu").expect("a good name");
    }

    #[test]
    fn a_range_becomes_a_condition_with_one_parameter_per_bound() {
        let (sql, params) = range_condition(&KeyRange {
            start: Bound::Excluded(vec![1]),
            end: Bound::Included(vec![9]),
        });
        assert_eq!(sql, " AND key > $3 AND key <= $4");
        assert_eq!(params, vec![vec![1], vec![9]]);
        let (sql, params) = range_condition(&KeyRange::all());
        assert!(sql.is_empty() && params.is_empty());
    }
}
