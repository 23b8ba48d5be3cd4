//! `isms serve`: the tonic server over one ledger — the Ledger and Registers services, gRPC
//! health and reflection, TLS and mTLS, and graceful shutdown.
//!
//! Shutdown order matters for durability: stop taking new events (the sequencer refuses them
//! with Unavailable), let the server finish the requests in flight, let the writer commit
//! everything it already took, then flush and drop the ledger. An append is therefore either
//! acknowledged after its flush or refused; nothing is half-written (sled batches are atomic).

pub mod admission;
pub mod auth;
pub mod ledger_service;
pub mod limits;
pub mod metrics;
pub mod registers_service;
pub mod sequencer;
pub mod status;
pub mod witnesses;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
use self::ledger_service::LedgerService;
use self::limits::{Gate, Limits};
use self::metrics::Metrics;
use self::registers_service::RegistersService;
use self::sequencer::Sequencer;
use self::witnesses::{WitnessConfig, WitnessSchedule, Witnesses};

/// The file in the data folder holding the ledger's checkpoint-signing key (hex seed).
pub const LEDGER_KEY_FILE: &str = "ledger.key";
/// The sled store inside the data folder.
pub const STORE_DIR: &str = "store";
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

/// Opens the ledger in a data folder made by `isms init`, able to append.
pub fn open_ledger(data_dir: &Path, config: LedgerConfig) -> anyhow::Result<Ledger> {
    let key = read_key_file(&data_dir.join(LEDGER_KEY_FILE))?;
    let store: PathBuf = data_dir.join(STORE_DIR);
    Ledger::open(&store, config, Some(key))
        .with_context(|| format!("opening the ledger in {}", store.display()))
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
    let admission = {
        let ledger = ledger.clone();
        tokio::task::spawn_blocking(move || IsmsAdmission::rebuild(&ledger))
            .await
            .context("rebuilding the rules state")??
    };
    let metrics = Arc::new(Metrics::new());
    let (sequencer, writer) = Sequencer::start(ledger.clone(), admission, metrics.clone())?;
    let gate = Arc::new(Gate::new(options.limits.clone()));
    let max_message_bytes = options.limits.max_message_bytes;
    let auth = Arc::new(ReadAuth::new(
        ledger.clone(),
        options.allow_anonymous_reads,
        gate,
    ));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
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
    let metrics_addr = match options.metrics {
        Some(addr) => {
            let queue = sequencer.clone();
            Some(
                metrics::serve(
                    addr,
                    metrics.clone(),
                    ledger.clone(),
                    move || queue.queue_depth(),
                    witnesses.clone(),
                    shutdown_rx.clone(),
                )
                .await?,
            )
        }
        None => None,
    };
    let registers_service = RegistersService::new(ledger.clone(), auth)?;
    let http_addr = match options.http {
        Some(addr) => Some(
            crate::console::serve(
                addr,
                crate::console::Console::new(
                    ledger.clone(),
                    registers_service.clone(),
                    witnesses.clone(),
                    options.allow_anonymous_reads,
                ),
                shutdown_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
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
        .add_service(LedgerServer::new(ledger_service).max_decoding_message_size(max_message_bytes))
        .add_service(
            RegistersServer::new(registers_service).max_decoding_message_size(max_message_bytes),
        )
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha);

    let health = health_reporter.clone();
    let mut signal = shutdown_rx.clone();
    let closer = sequencer.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = signal.wait_for(|stop| *stop).await;
            // From here on, new events are refused; queued ones are still written.
            closer.close();
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
        sequencer.close();
        drop(sequencer);
        witnesses.stop().await;
        tokio::task::spawn_blocking(move || {
            writer.join();
            ledger.flush()
        })
        .await
        .context("joining the sequencer")??;
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
