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
    // The record first, then the bytes: a refused record leaves no artifact behind. A record
    // already there (a retry after a failed upload) is not stored again; its bytes are.
    let (outcomes, uploaded) = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        client.key()?;
        let ledger_id = client.ledger_id().await?;
        let outcomes = append_events(&mut client, &ledger_id, vec![pending]).await?;
        let recorded = match &outcomes[0].result {
            Ok(_) => true,
            // The same evidence id recorded before: the bytes belong to it only if that record
            // names this very artifact.
            Err(e) if e.code == tonic::Code::AlreadyExists as i32 => {
                let earlier = client.entry_by_event_id(&outcomes[0].event_id).await?;
                projections::wire::decode_body(&earlier.body)
                    .is_ok_and(|env| env.artifacts.iter().any(|a| a.blake3 == hash))
            }
            Err(_) => false,
        };
        if !recorded {
            return anyhow::Ok((outcomes, false));
        }
        let mut last_error = None;
        for _ in 0..3 {
            match client.put_artifact(bytes.clone()).await {
                Ok(_) => return anyhow::Ok((outcomes, true)),
                Err(e) => last_error = Some(e),
            }
        }
        let seq = outcomes[0]
            .result
            .as_ref()
            .map_or("an earlier entry".to_string(), |r| format!("seq {}", r.seq));
        Err(last_error.expect("three attempts failed").context(format!(
            "evidence {evidence_id} is recorded ({seq}) but its artifact {} could not be \
             uploaded; run the same command again to upload it",
            hex::encode(hash)
        )))
    })??;
    if uploaded {
        eprintln!("artifact {} uploaded", hex::encode(hash));
    } else {
        eprintln!(
            "the record was refused, so the artifact {} was not uploaded",
            hex::encode(hash)
        );
    }
    if uploaded
        && matches!(&outcomes[0].result, Err(e) if e.code == tonic::Code::AlreadyExists as i32)
    {
        eprintln!("evidence {evidence_id} was already recorded; its artifact is now stored");
        return Ok(());
    }
    report(&outcomes, args.format.format())
}
