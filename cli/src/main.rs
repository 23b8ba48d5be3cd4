//! The `isms` binary: a thin dispatcher from clap subcommands to the library. Exit codes: 0
//! ok, 1 verification failed, 2 error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use isms_cli::server::limits::Limits;
use isms_cli::server::witnesses::{parse_duration, WitnessConfig, WitnessSchedule};
use isms_cli::server::{self, ServeOptions, TlsFiles, Witnessing};
use isms_cli::store::{StoreLocation, WriterLease};

#[derive(Parser, Debug)]
#[command(
    name = "isms",
    version,
    about = "Tamper-evident evidence ledger for ISO/IEC 27001:2022"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a ledger folder: ledger key, first admin key (files, mode 0600) and genesis.
    #[command(
        after_help = "Examples:\n  isms init --data ./isms-data --name 'Example Ltd' --admin-subject ciso@example.com\n  \
                      isms init --data ./acme --name 'Acme plc' \\\n    \
                      --store 'postgres://isms@db.example.org:5432/isms#acme'"
    )]
    Init {
        /// The data folder to create (it holds the keys, and the sled store by default).
        #[arg(long, default_value = "./isms-data")]
        data: PathBuf,
        /// Keep the records in PostgreSQL instead of the folder's sled store:
        /// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE#LEDGER` (LEDGER names this ledger
        /// among the database's; `default` when absent). Recorded in the folder's `store.url`.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// The organisation's name, recorded in the genesis.
        #[arg(long, default_value = "ISMS")]
        name: String,
        /// Who holds the first admin key.
        #[arg(long, default_value = "admin")]
        admin_subject: String,
    },
    /// Serve the ledger over gRPC.
    #[command(
        after_help = "Examples:\n  isms serve --data ./isms-data\n  isms serve --data ./isms-data --listen 0.0.0.0:50051 \\\n    --tls-cert server.pem --tls-key server.key --client-ca auditors-ca.pem\n  \
                      isms serve --data ./isms-data \\\n    \
                      --witness 'w1=http://witness.example.org:7380,witness.example.org/w1+07be827a+BMqTrBcFGHBx1nuDx/8O/oEI6OxFMFdddyaHkzPb2r58' \\\n    \
                      --witness-interval 30s --witness-step 100\n  \
                      isms serve --data ./acme --writer-lease 10s      # on PostgreSQL: a second server with a copy of ./acme waits, then takes over\n  \
                      isms serve --data ./acme --read-only --listen 0.0.0.0:50052\n  \
                      isms serve --ledgers ./orgs                      # every data folder in ./orgs, chosen by `isms --ledger NAME`"
    )]
    Serve {
        /// The data folder made by `isms init`.
        #[arg(long, default_value = "./isms-data")]
        data: PathBuf,
        /// Host many ledgers: every data folder directly inside ROOT (each made by `isms init
        /// --data ROOT/NAME`, on sled or PostgreSQL), served under its folder's NAME. A
        /// request names its ledger in the `x-isms-ledger` metadata (`isms --ledger NAME`).
        #[arg(long, value_name = "ROOT", conflicts_with_all = ["data", "store"])]
        ledgers: Option<PathBuf>,
        /// The store, when not the one `isms init` recorded in the data folder: a sled folder
        /// or `postgres://USER@HOST:PORT/DATABASE#LEDGER`.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// On PostgreSQL: how long this server's writer lease lasts unless renewed (renewed
        /// every third of it, and by every batch). A server that dies is replaced by a waiting
        /// one after at most this long.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        writer_lease: Duration,
        /// On PostgreSQL: how long to wait for another server's writer lease to end before
        /// giving up. A standby server waits here, then takes over.
        #[arg(long, default_value = "1440m", value_parser = parse_duration)]
        writer_wait: Duration,
        /// Serve reads only, from a store another server writes (PostgreSQL): entries, proofs,
        /// checkpoints and registers as of any time, following the writer's head. Appends are
        /// refused with FAILED_PRECONDITION. Needs no ledger key.
        #[arg(long)]
        read_only: bool,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Let unauthenticated callers read (demos only).
        #[arg(long)]
        allow_anonymous_reads: bool,
        /// Server certificate chain (PEM); with --tls-key turns on TLS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Server private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// CA (PEM) whose client certificates authorize reads (mTLS).
        #[arg(long, requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// Largest gRPC message taken, in bytes; larger ones get RESOURCE_EXHAUSTED.
        #[arg(long, default_value_t = Limits::default().max_message_bytes)]
        max_message_bytes: usize,
        /// Streaming calls open at once across all clients (Subscribe, AppendStream,
        /// ListCheckpoints, artifact transfers); more get RESOURCE_EXHAUSTED.
        #[arg(long, default_value_t = Limits::default().max_streams)]
        max_streams: usize,
        /// Requests per second one key may make, with a burst of one second's worth; each
        /// appended event counts as one. Unlimited when not given.
        #[arg(long)]
        rate_per_key: Option<std::num::NonZeroU32>,
        /// Serve Prometheus metrics at http://ADDR/metrics (off when not given).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Serve the read-only auditor's console at http://ADDR/ (off when not given). It
        /// admits a session signed by an enrolled key (`isms console link`), or anyone with
        /// --allow-anonymous-reads.
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
        /// A witness to ask for cosignatures, as NAME=URL,VKEY: a local name (for status and
        /// metrics), the witness's URL (`http://host:port`, no comma) and its verifier key as
        /// `isms witness init` prints it, or a file holding it. Repeatable.
        #[arg(long = "witness", value_name = "NAME=URL,VKEY", value_parser = WitnessConfig::parse)]
        witnesses: Vec<WitnessConfig>,
        /// How often each witness is offered the latest checkpoint (ms, s or m).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        witness_interval: Duration,
        /// Offer a checkpoint only once the ledger grew by at least this many entries since
        /// the witness last cosigned (1: any growth).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        witness_step: u64,
        /// Log lines on standard error as `text` or `json` (one object a line); the level
        /// comes from RUST_LOG (default `info`).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Follow a ledger's server as a verifying, read-only replica and serve its reads.
    #[command(
        after_help = "Examples:\n  isms mirror --from http://ledger.example.org:50051 --key mirror.key \\\n    \
                      --data ./isms-mirror --listen 0.0.0.0:50052\n\n\
                      Every entry and checkpoint is checked against the mirror's own copy. On a \
                      history that contradicts it (a fork, a rewritten entry, a tree cut back) \
                      the mirror stops, writes the evidence of both sides to DATA/evidence/, \
                      reports NOT_SERVING and exits with status 1 naming the seq. A witness \
                      can run beside it: `isms witness serve` with the ledger's verifier key."
    )]
    Mirror {
        /// The ledger server to follow (`http://host:port`).
        #[arg(long)]
        from: String,
        /// The key the mirror reads with (an enrolled key, for example with the reader role);
        /// none: the server must allow anonymous reads.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The mirror's own data folder (created on first run).
        #[arg(long, default_value = "./isms-mirror")]
        data: PathBuf,
        /// Address the mirror serves its reads on.
        #[arg(long, default_value = "127.0.0.1:50052")]
        listen: SocketAddr,
        /// Let unauthenticated callers read from the mirror (demos only).
        #[arg(long)]
        allow_anonymous_reads: bool,
        /// How often the server is asked for its latest checkpoint (ms, s or m); while the
        /// mirror is behind it asks again at once.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// sled's cache for the mirror's copy, in MiB (a larger cache keeps catch-up of a
        /// long history fast).
        #[arg(long, default_value_t = 256)]
        cache_mb: u64,
        /// Run a witness beside the mirror, in the same process: its folder, made by
        /// `isms witness init` and `isms witness add-ledger`.
        #[arg(long, requires = "witness_listen")]
        witness_data: Option<PathBuf>,
        /// Address the witness beside the mirror listens on.
        #[arg(long, requires = "witness_data")]
        witness_listen: Option<SocketAddr>,
    },
    /// Run an independent witness that cosigns other ledgers' consistent checkpoints.
    #[command(subcommand)]
    Witness(isms_cli::commands::witness::WitnessCommand),
    #[command(flatten)]
    Client(isms_cli::commands::ClientCommand),
}

/// A failure with the exit code it means.
enum Failure {
    /// Something did not verify (exit 1).
    Verification(anyhow::Error),
    /// Anything else (exit 2).
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Verification(e)) => {
            eprintln!("isms: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            match e.chain().find_map(|c| c.downcast_ref::<tonic::Status>()) {
                // A refusal by the server: its code as gRPC names it and its message whole,
                // rather than tonic's "code: 'Operation was attempted past the valid range'".
                Some(status) => eprintln!(
                    "isms: refused by the server ({}): {}",
                    isms_cli::server::metrics::code_name(status.code()),
                    isms_cli::client::for_people(status.message())
                ),
                None => eprintln!("isms: error: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Init {
            data,
            store,
            name,
            admin_subject,
        } => {
            let store = store.as_deref().map(StoreLocation::parse);
            let made = isms_cli::init::init_in(&data, store.as_ref(), &name, &admin_subject)?;
            match &store {
                Some(store) if !store.is_sled() => println!(
                    "ledger {} created in {} (keys in {})",
                    made.ledger_id,
                    store.describe(),
                    data.display()
                ),
                _ => println!("ledger {} created in {}", made.ledger_id, data.display()),
            }
            println!("ledger key: {}", made.ledger_key_path.display());
            println!(
                "admin key:  {} (move it off the server)",
                made.admin_key_path.display()
            );
            Ok(())
        }
        Command::Witness(command) => {
            isms_cli::commands::witness::run(command).map_err(Failure::Error)
        }
        Command::Client(command) => isms_cli::commands::run(command).map_err(|e| {
            if isms_cli::commands::is_verification_failure(&e) {
                Failure::Verification(e)
            } else {
                Failure::Error(e)
            }
        }),
        Command::Serve {
            data,
            ledgers,
            store,
            writer_lease,
            writer_wait,
            read_only,
            listen,
            allow_anonymous_reads,
            tls_cert,
            tls_key,
            client_ca,
            max_message_bytes,
            max_streams,
            rate_per_key,
            metrics,
            http,
            witnesses,
            witness_interval,
            witness_step,
            log_format,
        } => {
            init_logging(&log_format);
            let read =
                |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert_pem: read(&cert)?,
                    key_pem: read(&key)?,
                    client_ca_pem: client_ca.as_ref().map(read).transpose()?,
                }),
                _ => None,
            };
            let options = ServeOptions {
                listen,
                allow_anonymous_reads,
                tls,
                limits: Limits {
                    max_message_bytes,
                    max_streams,
                    requests_per_key_per_second: rate_per_key,
                },
                metrics,
                http,
                witnessing: Witnessing {
                    witnesses,
                    schedule: WitnessSchedule {
                        interval: witness_interval,
                        step: witness_step,
                        ..WitnessSchedule::default()
                    },
                },
            };
            let role = if read_only {
                server::Role::Reader
            } else {
                server::Role::Writer(WriterLease {
                    duration: writer_lease,
                    wait: writer_wait,
                })
            };
            let folders = match ledgers {
                Some(root) => server::data_folders(&root).map_err(Failure::Error)?,
                None => vec![(server::DEFAULT_LEDGER_NAME.to_string(), data)],
            };
            serve(folders, store.as_deref(), role, options).map_err(Failure::Error)
        }
        Command::Mirror {
            from,
            key,
            data,
            listen,
            allow_anonymous_reads,
            interval,
            cache_mb,
            witness_data,
            witness_listen,
        } => {
            let key = key
                .as_deref()
                .map(isms_cli::client::read_key)
                .transpose()
                .map_err(Failure::Error)?;
            let options = isms_cli::mirror::MirrorOptions {
                from,
                key,
                data,
                interval,
                cache_bytes: cache_mb.saturating_mul(1024 * 1024),
                witness: witness_data.zip(witness_listen),
                serve: ServeOptions {
                    listen,
                    allow_anonymous_reads,
                    tls: None,
                    limits: Limits::default(),
                    metrics: None,
                    http: None,
                    witnessing: Witnessing::default(),
                },
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")
                .map_err(Failure::Error)?;
            runtime
                .block_on(isms_cli::mirror::run(options))
                .map_err(|e| {
                    if isms_cli::commands::is_verification_failure(&e) {
                        Failure::Verification(e)
                    } else {
                        Failure::Error(e)
                    }
                })
        }
    }
}

/// Structured logs on standard error: one line per event, `json` for log collectors. Each
/// RPC's lines carry its method and request id (the span the server opens for it).
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn serve(
    folders: Vec<(String, PathBuf)>,
    store: Option<&str>,
    role: server::Role,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut ledgers = Vec::with_capacity(folders.len());
        for (name, data) in folders {
            let store = StoreLocation::of_data_folder(&data, store)?;
            if !store.is_sled() && matches!(role, server::Role::Writer(_)) {
                println!("isms: waiting to become the writer of {}", store.describe());
            }
            let ledger =
                tokio::task::spawn_blocking(move || server::open_role(&data, &store, role))
                    .await??;
            let ledger = Arc::new(ledger);
            if ledger.is_read_only() {
                server::follow(ledger.clone());
            }
            ledgers.push((name, ledger));
        }
        let count = ledgers.len();
        let engines: Vec<_> = ledgers.iter().map(|(_, l)| l.engine().clone()).collect();
        let running = server::start_many(ledgers, options).await?;
        if count > 1 {
            println!("isms: hosting {count} ledgers");
        }
        // Scripts and tests wait for this line to know the port.
        println!("isms: serving on {}", running.addr);
        if let Some(addr) = running.metrics_addr {
            println!("isms: metrics on http://{addr}/metrics");
        }
        if let Some(addr) = running.http_addr {
            println!("isms: console on http://{addr}/");
        }
        // A writer whose lease another server took steps down: the database already refuses
        // its batches, and a server that refuses every append helps no one.
        let lost = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Some(why) = engines.iter().find_map(|e| e.lost_writer()) {
                    return why;
                }
            }
        };
        let stepping_down = tokio::select! {
            signal = isms_cli::commands::wait_for_signal() => { signal?; None }
            why = lost => Some(why),
        };
        eprintln!("isms: shutting down");
        running.shutdown().await?;
        eprintln!("isms: stopped; the ledger is flushed");
        match stepping_down {
            Some(why) => Err(anyhow::anyhow!(
                "{why}; this server stopped (start it again to wait as a standby)"
            )),
            None => Ok(()),
        }
    })
}
