//! `isms witness init | add-ledger | serve`: run an independent witness of other ledgers
//! (docs/WITNESS.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use crate::witness;

/// The witness commands.
#[derive(Subcommand, Debug)]
pub enum WitnessCommand {
    /// Create a witness folder: its Ed25519 key (file, mode 0600) and verifier key.
    #[command(
        after_help = "Example:\n  isms witness init --data ./witness-data --name witness.auditor.example/w1"
    )]
    Init {
        /// The witness folder to create.
        #[arg(long, default_value = "./witness-data")]
        data: PathBuf,
        /// The witness name (a schema-less URL is recommended; no spaces, no '+').
        #[arg(long)]
        name: String,
    },
    /// Follow a ledger: its verifier key, as `isms export` or `isms demo` write it.
    #[command(
        after_help = "Examples:\n  isms witness add-ledger --data ./witness-data --ledger-key ledger.vkey\n  \
                      isms witness add-ledger --data ./witness-data \\\n    \
                      --ledger-key 'isms-ledger/0707...07+082fb2e3+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c'"
    )]
    AddLedger {
        /// The witness folder made by `isms witness init`.
        #[arg(long, default_value = "./witness-data")]
        data: PathBuf,
        /// The ledger's verifier key `<origin>+<key hash>+<base64 key>`, or a file holding it.
        #[arg(long)]
        ledger_key: String,
    },
    /// Serve the witness API (POST /add-checkpoint, GET /<origin hash>/checkpoint) over HTTP.
    #[command(
        after_help = "Example:\n  isms witness serve --data ./witness-data --listen 127.0.0.1:7380"
    )]
    Serve {
        /// The witness folder made by `isms witness init`.
        #[arg(long, default_value = "./witness-data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
    },
}

/// Runs one witness command.
pub fn run(command: WitnessCommand) -> anyhow::Result<()> {
    match command {
        WitnessCommand::Init { data, name } => {
            let verifier = witness::init(&data, &name)?;
            println!("witness {} created in {}", verifier.name(), data.display());
            println!(
                "witness key: {} (keep it here)",
                data.join(witness::WITNESS_KEY_FILE).display()
            );
            println!("verifier key (give it to ledger operators and auditors):");
            println!("{verifier}");
            Ok(())
        }
        WitnessCommand::AddLedger { data, ledger_key } => {
            let followed = witness::add_ledger(&data, &ledger_key)?;
            println!("following {}", followed.origin);
            Ok(())
        }
        WitnessCommand::Serve { data, listen } => serve(data, listen),
    }
}

fn serve(data: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let state = Arc::new(witness::open(&data)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let verifier = state.verifier();
        let running = witness::http::start(state, listen).await?;
        // Scripts and tests wait for this line to know the port.
        println!("isms witness: serving on {}", running.addr);
        eprintln!("isms witness: {verifier}");
        crate::commands::wait_for_signal().await?;
        eprintln!("isms witness: shutting down");
        running.shutdown().await
    })
}
