//! `isms serve`: the tonic server over one ledger — the Ledger and Registers services, gRPC
//! health and reflection, TLS and mTLS, and graceful shutdown.
//!
//! Shutdown order matters for durability: stop taking new events (the sequencer refuses them
//! with Unavailable), let the server finish the requests in flight, let the writer commit
//! everything it already took, then flush and drop the ledger. An append is therefore either
//! acknowledged after its flush or refused; nothing is half-written (sled batches are atomic).

pub mod admission;
pub mod auth;
pub mod hosting;
pub mod ledger_service;
pub mod limits;
pub mod metrics;
pub mod registers_service;
pub mod sequencer;
pub mod status;
pub mod witnesses;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use isms_proto::v1::ledger_server::LedgerServer;
use isms_proto::v1::registers_server::RegistersServer;
use ledger::{Ledger, LedgerConfig};
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use self::admission::IsmsAdmission;
use self::auth::ReadAuth;
use self::hosting::ByLedger;
pub use self::hosting::LEDGER_HEADER;
use self::ledger_service::LedgerService;
use self::limits::{Gate, Limits};
use self::metrics::Metrics;
use self::registers_service::RegistersService;
use self::sequencer::{Sequencer, WriterThread};
use self::witnesses::{WitnessConfig, WitnessSchedule, Witnesses};

/// The file in the data folder holding the ledger's checkpoint-signing key (hex seed).
pub const LEDGER_KEY_FILE: &str = "ledger.key";
pub use crate::store::DEFAULT_LEDGER_NAME;
pub use crate::store::STORE_DIR;
use crate::store::{StoreLocation, WriterLease};
/// How long shutdown waits for open streams before closing them.
const GRACE: Duration = Duration::from_secs(10);

/// PEM material for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Server private key (PEM).
    pub key_pem: Vec<u8>,
    /// CA whose client certificates authorize reads (turns on mTLS).
    pub client_ca_pem: Option<Vec<u8>>,
}

/// How the server listens and whom it lets read.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Let unauthenticated callers read (for demos only).
    pub allow_anonymous_reads: bool,
    /// TLS (and mTLS) material; plaintext HTTP/2 when absent.
    pub tls: Option<TlsFiles>,
    /// Message size, open streams and per-key request rate.
    pub limits: Limits,
    /// Where to serve Prometheus metrics (`/metrics`); none when absent.
    pub metrics: Option<SocketAddr>,
    /// Where to serve the auditor's console; none when absent.
    pub http: Option<SocketAddr>,
    /// The witnesses to ask for cosignatures, and when.
    pub witnessing: Witnessing,
}

/// The witnesses a server asks for cosignatures (none by default) and when it asks them.
#[derive(Clone, Debug, Default)]
pub struct Witnessing {
    /// One per `--witness`.
    pub witnesses: Vec<WitnessConfig>,
    /// `--witness-interval`, `--witness-step` and the timeouts.
    pub schedule: WitnessSchedule,
}

/// Binds `addr` and serves `app` over HTTP/1.1 in the background until `shutdown` turns
/// true; returns the bound address. `what` names the endpoint in errors and logs.
pub async fn serve_http(
    addr: SocketAddr,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the {what} endpoint stopped");
        }
    });
    Ok(bound)
}

/// Reads a hex-encoded 32-byte ed25519 seed from `path`.
pub fn read_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).with_context(|| {
        format!(
            "{}: expected 64 hex digits (an ed25519 seed)",
            path.display()
        )
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Opens the ledger in a data folder made by `isms init`, able to append: in the folder's
/// sled store, or in the database its `store.url` names.
pub fn open_ledger(data_dir: &Path, config: LedgerConfig) -> anyhow::Result<Ledger> {
    let store = StoreLocation::of_data_folder(data_dir, None)?;
    open_ledger_in(data_dir, &store, config, &WriterLease::default())
}

/// Opens the ledger whose keys are in `data_dir` and whose records are in `store`, able to
/// append. On PostgreSQL this first takes the ledger's writer lease (see [`WriterLease`]).
pub fn open_ledger_in(
    data_dir: &Path,
    store: &StoreLocation,
    config: LedgerConfig,
    lease: &WriterLease,
) -> anyhow::Result<Ledger> {
    let key = read_key_file(&data_dir.join(LEDGER_KEY_FILE))?;
    store.open(config, Some(key), lease)
}

/// What a server does with its ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Appends (the only writer; on PostgreSQL, under the writer lease).
    Writer(WriterLease),
    /// Serves reads from a store another server writes, following its head.
    Reader,
}

/// Opens the ledger of a data folder for `role`: a reader needs no key and opens the store
/// read-only.
pub fn open_role(data_dir: &Path, store: &StoreLocation, role: Role) -> anyhow::Result<Ledger> {
    let config = LedgerConfig::default();
    match role {
        Role::Writer(lease) => open_ledger_in(data_dir, store, config, &lease),
        Role::Reader if store.is_sled() => anyhow::bail!(
            "--read-only follows a store another server writes, which needs a shared \
             database (--store postgres://…); a sled folder has one process at a time (use \
             `isms mirror` for a read-only copy)"
        ),
        Role::Reader => store.open(config, None, &WriterLease::default()),
    }
}

/// The data folders directly inside `root` (those holding a ledger key or a store), each
/// with its folder name, sorted by name: what `isms serve --ledgers ROOT` hosts.
pub fn data_folders(root: &Path) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let mut found = Vec::new();
    for item in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = item?.path();
        let holds_ledger = path.join(LEDGER_KEY_FILE).is_file()
            || path.join(STORE_DIR).is_dir()
            || path.join(crate::store::STORE_FILE).is_file();
        if !holds_ledger {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: the folder name is not UTF-8", path.display()))?
            .to_string();
        found.push((name, path));
    }
    found.sort();
    anyhow::ensure!(
        !found.is_empty(),
        "{} holds no data folder (make one with `isms init --data {}/NAME`)",
        root.display(),
        root.display()
    );
    Ok(found)
}

/// How often a reader looks for what the writer appended.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Keeps a read-only ledger up with its store's head in the background (see
/// [`Ledger::refresh`]), for as long as the ledger is alive.
pub fn follow(ledger: Arc<Ledger>) {
    let weak = Arc::downgrade(&ledger);
    drop(ledger);
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
            let Some(ledger) = weak.upgrade() else { return };
            match tokio::task::spawn_blocking(move || ledger.refresh()).await {
                Ok(Ok(_)) => failing = false,
                Ok(Err(e)) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the writer's head; retrying");
                    }
                    failing = true;
                }
                Err(_) => return,
            }
        }
    });
}

/// A server that is running; dropping it does not stop it, [`RunningServer::shutdown`] does.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if it was asked for.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the console is served, if it was asked for.
    pub http_addr: Option<SocketAddr>,
    /// The gRPC health reporter (a mirror reports NOT_SERVING when it alarms).
    pub health: tonic_health::server::HealthReporter,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Asks the server to stop (as SIGTERM does) without waiting.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops the server gracefully and waits until the ledger is flushed and closed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.trigger_shutdown();
        self.wait().await
    }

    /// Waits until the server stops (after a shutdown was triggered).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Reports every service NOT_SERVING on gRPC health (a mirror that alarmed).
pub async fn set_not_serving(health: &tonic_health::server::HealthReporter) {
    health
        .set_not_serving::<LedgerServer<LedgerService>>()
        .await;
    health
        .set_not_serving::<RegistersServer<RegistersService>>()
        .await;
}

/// Binds `options.listen` and serves `ledger` until shutdown is triggered.
pub async fn start(ledger: Arc<Ledger>, options: ServeOptions) -> anyhow::Result<RunningServer> {
    start_many(vec![(DEFAULT_LEDGER_NAME.to_string(), ledger)], options).await
}

/// One ledger served by a server: its writer, witnesses and services.
struct Host {
    ledger: Arc<Ledger>,
    sequencer: Sequencer,
    writer: WriterThread,
    witnesses: Witnesses,
    metrics: Arc<Metrics>,
    ledger_service: LedgerService,
    registers_service: RegistersService,
}

impl Host {
    async fn start(
        ledger: Arc<Ledger>,
        options: &ServeOptions,
        shutdown_rx: &watch::Receiver<bool>,
    ) -> anyhow::Result<Host> {
        let admission = {
            let ledger = ledger.clone();
            tokio::task::spawn_blocking(move || IsmsAdmission::rebuild(&ledger))
                .await
                .context("rebuilding the rules state")??
        };
        let metrics = Arc::new(Metrics::new());
        let (sequencer, writer) = Sequencer::start(ledger.clone(), admission, metrics.clone())?;
        let gate = Arc::new(Gate::new(options.limits.clone()));
        let auth = Arc::new(ReadAuth::new(
            ledger.clone(),
            options.allow_anonymous_reads,
            gate,
        ));
        // Off the write path: the tasks read the durable head and nothing waits on them.
        let witnesses = Witnesses::start(
            ledger.clone(),
            options.witnessing.witnesses.clone(),
            options.witnessing.schedule,
            shutdown_rx.clone(),
        )
        .await?;
        let ledger_service = LedgerService::new(
            ledger.clone(),
            sequencer.clone(),
            auth.clone(),
            shutdown_rx.clone(),
            metrics.clone(),
            witnesses.clone(),
        );
        let registers_service = RegistersService::new(ledger.clone(), auth)?;
        Ok(Host {
            ledger,
            sequencer,
            writer,
            witnesses,
            metrics,
            ledger_service,
            registers_service,
        })
    }

    /// Stops taking events, writes what was taken, stops the witnesses and flushes.
    async fn stop(self) -> anyhow::Result<()> {
        self.sequencer.close();
        drop(self.sequencer);
        self.witnesses.stop().await;
        let (writer, ledger) = (self.writer, self.ledger);
        tokio::task::spawn_blocking(move || {
            writer.join();
            ledger.flush()
        })
        .await
        .context("joining the sequencer")??;
        Ok(())
    }
}

/// Binds `options.listen` and serves every ledger of `ledgers` (by name) until shutdown is
/// triggered. A request names its ledger in the `x-isms-ledger` metadata ([`LEDGER_HEADER`]);
/// with a single ledger it may name none. Each ledger has its own writer, keys, rules state
/// and projections, and a request reaches only the ledger it names, whose own keys
/// authenticate it. With several ledgers, the metrics endpoint, the console, witnesses and
/// mTLS client certificates (which would admit a reader to every ledger) are refused.
pub async fn start_many(
    ledgers: Vec<(String, Arc<Ledger>)>,
    options: ServeOptions,
) -> anyhow::Result<RunningServer> {
    anyhow::ensure!(!ledgers.is_empty(), "no ledger to serve");
    if ledgers.len() > 1 {
        let refused = [
            (options.metrics.is_some(), "--metrics"),
            (options.http.is_some(), "--http"),
            (!options.witnessing.witnesses.is_empty(), "--witness"),
            (
                options
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.client_ca_pem.is_some()),
                "--client-ca",
            ),
        ];
        if let Some((_, flag)) = refused.iter().find(|(on, _)| *on) {
            anyhow::bail!(
                "{flag} serves one ledger; this server hosts {} (serve them one per process to \
                 use {flag})",
                ledgers.len()
            );
        }
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut hosts = Vec::with_capacity(ledgers.len());
    let mut names = Vec::with_capacity(ledgers.len());
    for (name, ledger) in ledgers {
        anyhow::ensure!(
            !names.contains(&name),
            "two ledgers are named {name:?}; each needs its own name"
        );
        hosts.push(Host::start(ledger, &options, &shutdown_rx).await?);
        names.push(name);
    }
    let max_message_bytes = options.limits.max_message_bytes;
    let first = &hosts[0];
    let metrics_addr = match options.metrics {
        Some(addr) => {
            let queue = first.sequencer.clone();
            Some(
                metrics::serve(
                    addr,
                    first.metrics.clone(),
                    first.ledger.clone(),
                    move || queue.queue_depth(),
                    first.witnesses.clone(),
                    shutdown_rx.clone(),
                )
                .await?,
            )
        }
        None => None,
    };
    let http_addr = match options.http {
        Some(addr) => Some(
            crate::console::serve(
                addr,
                crate::console::Console::new(
                    first.ledger.clone(),
                    first.registers_service.clone(),
                    first.witnesses.clone(),
                    options.allow_anonymous_reads,
                ),
                shutdown_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let ledger_servers = ByLedger::new(names.iter().cloned().zip(hosts.iter().map(|h| {
        LedgerServer::new(h.ledger_service.clone()).max_decoding_message_size(max_message_bytes)
    })));
    let registers_servers = ByLedger::new(names.iter().cloned().zip(hosts.iter().map(|h| {
        RegistersServer::new(h.registers_service.clone())
            .max_decoding_message_size(max_message_bytes)
    })));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<LedgerServer<LedgerService>>()
        .await;
    health_reporter
        .set_serving::<RegistersServer<RegistersService>>()
        .await;
    // Both reflection versions: grpcurl and current clients ask v1, while Python's
    // grpcio-reflection, older grpcurl, Postman and evans still ask v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(isms_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(isms_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building the v1alpha reflection service")?;

    // Every RPC runs in a span carrying its method and a fresh request id, so its log lines
    // (and the one written when it is answered) can be told apart.
    let mut builder = tonic::transport::Server::builder().trace_fn(|request| {
        tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            request_id = %metrics::next_request_id()
        )
    });
    if let Some(tls) = &options.tls {
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            // Optional: writers authenticate by their event signatures and readers may use a
            // signed header instead, so a client without a certificate is still let in.
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(true);
        }
        builder = builder.tls_config(config).context("configuring TLS")?;
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    let addr = listener.local_addr()?;
    // tonic refuses an oversized unary request before any handler runs, as OUT_OF_RANGE
    // naming no flag; this layer turns that answer into RESOURCE_EXHAUSTED naming the limit.
    let router = builder
        .layer(tower::util::MapResponseLayer::new(
            limits::remap_response::<tonic::body::Body>,
        ))
        .add_service(ledger_servers)
        .add_service(registers_servers)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha);

    let health = health_reporter.clone();
    let mut signal = shutdown_rx.clone();
    let closers: Vec<Sequencer> = hosts.iter().map(|h| h.sequencer.clone()).collect();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = signal.wait_for(|stop| *stop).await;
            // From here on, new events are refused; queued ones are still written.
            for closer in &closers {
                closer.close();
            }
            health_reporter
                .set_not_serving::<LedgerServer<LedgerService>>()
                .await;
        };
        // Without TCP_NODELAY a small response waits for the peer's delayed ACK (about 40 ms
        // here): every unary append took that long no matter how fast it was written.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let serve = router.serve_with_incoming_shutdown(incoming, stop);
        let mut serve = std::pin::pin!(serve);
        let mut waiting = shutdown_rx.clone();
        let served = tokio::select! {
            r = &mut serve => r.map_err(anyhow::Error::from),
            _ = async {
                let _ = waiting.wait_for(|stop| *stop).await;
                tokio::time::sleep(GRACE).await;
            } => Ok(()), // Streams still open after the grace period are cut.
        };
        let mut stopped = Ok(());
        for host in hosts {
            // Every ledger is flushed and closed even when one fails.
            let result = host.stop().await;
            if stopped.is_ok() {
                stopped = result;
            }
        }
        stopped?;
        served
    });
    Ok(RunningServer {
        addr,
        metrics_addr,
        http_addr,
        health,
        shutdown: shutdown_tx,
        task,
    })
}
