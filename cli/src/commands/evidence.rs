//! `isms evidence add`: uploads an artifact (content-addressed by blake3) and records an
//! `evidence_submitted` event that refers to it by hash, so the chain commits to the content
//! without holding it (it can later be erased without breaking verification).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use projections::model::{ArtifactRef, CheckResult, Event, EvidenceId, Timestamp};
use projections::ControlId;

use super::submit::{append_events, report, Pending};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::output::FormatArgs;

/// `isms evidence ...`.
#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// Upload FILE and record it as evidence for one or more controls.
    #[command(
        after_help = "Example:\n  isms evidence add --key scanner.key --control A.8.8 \
                            --summary \"weekly vulnerability scan\" scan-2025-03-03.json"
    )]
    Add(AddArgs),
}

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResultArg {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
}

/// `isms evidence add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The Annex A control(s) the evidence is for (repeatable).
    #[arg(long = "control", required = true)]
    controls: Vec<String>,
    /// The check's result.
    #[arg(long, value_enum, default_value = "pass")]
    result: ResultArg,
    /// A one-line summary.
    #[arg(long, default_value = "")]
    summary: String,
    /// The evidence id (default: EV- and the first 12 hex of the file's hash).
    #[arg(long)]
    id: Option<String>,
    /// When the evidence was collected (default now).
    #[arg(long)]
    collected: Option<String>,
    /// The media type (default from the file extension).
    #[arg(long)]
    media_type: Option<String>,
    /// The artifact.
    file: PathBuf,
    #[command(flatten)]
    format: FormatArgs,
}

/// A media type from a file name.
pub fn media_type_of(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_lowercase()
        .as_str()
    {
        "json" => "application/json",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "yaml" | "yml" => "application/yaml",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

/// Runs `isms evidence add`.
pub fn run(command: EvidenceCommand) -> anyhow::Result<()> {
    let EvidenceCommand::Add(args) = command;
    let controls = args
        .controls
        .iter()
        .map(|c| {
            ControlId::parse(c).map_err(|p| anyhow::anyhow!("--control {c:?}: {}", p.explain()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let max = crate::server::ledger_service::MAX_ARTIFACT_BYTES;
    anyhow::ensure!(
        size <= max,
        "{}: {size} bytes is larger than the {max} bytes an artifact may have",
        args.file.display()
    );
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = *blake3::hash(&bytes).as_bytes();
    let collected = match &args.collected {
        Some(t) => dates::parse(t, BareDate::StartOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let evidence_id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("EV-{}", &hex::encode(hash)[..12]));
    let artifact = ArtifactRef {
        blake3: hash,
        size: bytes.len() as u64,
        media_type: args
            .media_type
            .clone()
            .unwrap_or_else(|| media_type_of(&name).to_string()),
        name,
    };
    let pending = Pending {
        expected_version: None,
        event_id: format!("evidence-{evidence_id}"),
        effective_at: collected,
        event: Event::EvidenceSubmitted {
            evidence_id: EvidenceId::parse("--id", &evidence_id)?,
            controls,
            artifact_blake3: Some(hash),
            result: match args.result {
                ResultArg::Pass => CheckResult::Pass,
                ResultArg::Fail => CheckResult::Fail,
            },
            collected_at: Timestamp(collected),
            summary: args.summary.clone(),
        },
        artifacts: vec![artifact],
    };
    let outcomes = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        client.key()?;
        client.put_artifact(bytes).await?;
        let ledger_id = client.ledger_id().await?;
        append_events(&mut client, &ledger_id, vec![pending]).await
    })??;
    eprintln!("artifact {} uploaded", hex::encode(hash));
    report(&outcomes, args.format.format())
}
