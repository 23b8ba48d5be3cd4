//! `isms status`: the server's head and, per witness, the last checkpoint size it cosigned,
//! when, how long ago, and the last error talking to it.

use clap::Args;
use isms_proto::v1 as pb;

use crate::client::{block_on, Client, ConnectArgs};
use crate::dates;
use crate::output::{print_json, Format, FormatArgs, TextTable};

/// `isms status`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  isms status --server http://127.0.0.1:50051 --key auditor.key\n  \
                  isms status --key auditor.key --json"
)]
pub struct StatusArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    format: FormatArgs,
}

/// Fetches and prints the status.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let status = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        client.status().await
    })??;
    match args.format.format() {
        Format::Json => print_json(&status_json(&status)),
        format => {
            if format == Format::Table {
                println!("ledger      {}", status.origin);
                println!("ledger key  {}", status.ledger_key);
                if !status.checkpoint_key.is_empty() && status.checkpoint_key != status.ledger_key {
                    println!(
                        "signs now   {} (after a ledger-key hand-over)",
                        status.checkpoint_key
                    );
                }
                println!(
                    "size        {} (latest checkpoint at {})",
                    status.size,
                    dates::show_time(status.checkpoint_time_us)
                );
                if status.witnesses.is_empty() {
                    println!("witnesses   none (isms serve --witness NAME=URL,VKEY)");
                    return Ok(());
                }
                println!();
            }
            witness_table(&status).print(format);
        }
    }
    Ok(())
}

/// One row per witness.
pub fn witness_table(status: &pb::ServerStatus) -> TextTable {
    let mut table = TextTable::new([
        "witness",
        "url",
        "cosigned size",
        "cosigned at",
        "age",
        "behind",
        "failures",
        "last error",
    ]);
    for w in &status.witnesses {
        let cosigned = w.cosigned_size > 0;
        table.push(vec![
            w.name.clone(),
            w.url.clone(),
            if cosigned {
                w.cosigned_size.to_string()
            } else {
                "-".into()
            },
            if cosigned {
                dates::show_time(i64::try_from(w.cosigned_at).unwrap_or(0) * 1_000_000)
            } else {
                "-".into()
            },
            if cosigned {
                format!("{}s", w.age_seconds)
            } else {
                "-".into()
            },
            status.size.saturating_sub(w.cosigned_size).to_string(),
            w.failures.to_string(),
            if w.last_error.is_empty() {
                "-".into()
            } else {
                w.last_error.clone()
            },
        ]);
    }
    table
}

/// The status as JSON, with every field.
pub fn status_json(status: &pb::ServerStatus) -> serde_json::Value {
    serde_json::json!({
        "origin": status.origin,
        "ledger_key": status.ledger_key,
        "checkpoint_key": status.checkpoint_key,
        "size": status.size,
        "checkpoint_time_us": status.checkpoint_time_us,
        "now_us": status.now_us,
        "witnesses": status.witnesses.iter().map(|w| serde_json::json!({
            "name": w.name,
            "url": w.url,
            "witness_key": w.witness_key,
            "cosigned_size": w.cosigned_size,
            "cosigned_at": w.cosigned_at,
            "age_seconds": w.age_seconds,
            "last_error": w.last_error,
            "failures": w.failures,
        })).collect::<Vec<_>>(),
    })
}
