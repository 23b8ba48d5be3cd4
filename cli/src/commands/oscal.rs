//! `isms oscal`: the audits or the corrective actions as of any time, as an OSCAL 1.1.3 JSON
//! document (assessment results, or a plan of action and milestones), built by the server from
//! the same state as `isms register` — or, with `--offline`, here from an exported bundle
//! verified with the ledger's public key, with no server at all.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use isms_proto::v1 as pb;

use super::registers::PointArgs;
use crate::bundle::{self, Bundle};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::server::registers_service::method as rm;
use projections::oscal;

/// The OSCAL models `isms oscal` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OscalModelArg {
    /// Internal and external audits, their findings and observations.
    AssessmentResults,
    /// Corrective actions with their due dates and status (plan of action and milestones).
    Poam,
}

/// `isms oscal`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  isms oscal assessment-results --as-of 2025-06-30 --out ar.json\n  \
                  isms oscal poam --out poam.json\n  \
                  isms oscal poam --offline isms-2025.bundle --ledger-key ledger.vkey --as-of 2025-12-31\n\n\
                  Every finding, observation, risk and POA&M item carries the ledger-seq and \
                  entry-hash props\n(namespace urn:isms-ledger:oscal) of the entry that \
                  recorded it: `isms prove inclusion --seq N` proves it."
)]
pub struct OscalArgs {
    /// Which OSCAL model.
    #[arg(value_enum)]
    model: OscalModelArg,
    #[command(flatten)]
    point: PointArgs,
    /// Write the document here instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Build the document here from a bundle (`isms export`), verified first with
    /// --ledger-key, instead of asking a server. Recorded time only (no --effective).
    #[arg(
        long,
        value_name = "BUNDLE",
        requires = "ledger_key",
        conflicts_with = "effective"
    )]
    offline: Option<PathBuf>,
    /// The ledger's public key (verifier key, hex, or a file holding either), for --offline.
    #[arg(long, value_name = "VKEY_OR_FILE")]
    ledger_key: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `isms oscal`.
pub fn run(args: OscalArgs) -> anyhow::Result<()> {
    let model = match args.model {
        OscalModelArg::AssessmentResults => oscal::Model::AssessmentResults,
        OscalModelArg::Poam => oscal::Model::Poam,
    };
    let response = match &args.offline {
        Some(path) => from_bundle(path, args.ledger_key.as_deref(), &args.point, model)?,
        None => from_server(&args)?,
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, format!("{}\n", response.json))
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "OSCAL {} ({}; {} entries) written to {}",
                match args.model {
                    OscalModelArg::AssessmentResults => "assessment results",
                    OscalModelArg::Poam => "plan of action and milestones",
                },
                args.point.axis(response.now_us)?,
                response.entries,
                path.display()
            );
        }
        None => println!("{}", response.json),
    }
    Ok(())
}

/// The document as the server builds it.
fn from_server(args: &OscalArgs) -> anyhow::Result<pb::ExportOscalResponse> {
    let request = pb::ExportOscalRequest {
        as_of: args.point.as_of()?,
        model: match args.model {
            OscalModelArg::AssessmentResults => pb::OscalModel::AssessmentResults,
            OscalModelArg::Poam => pb::OscalModel::Poam,
        } as i32,
    };
    block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.read(request, rm::EXPORT_OSCAL);
        anyhow::Ok(client.registers().export_oscal(request).await?.into_inner())
    })?
}

/// The document built here from a verified bundle: the entries recorded by `--as-of` (the end
/// of the day for a date), judged at that time, or all of them judged now.
fn from_bundle(
    path: &Path,
    ledger_key: Option<&str>,
    point: &PointArgs,
    model: oscal::Model,
) -> anyhow::Result<pb::ExportOscalResponse> {
    let key = bundle::parse_ledger_key(ledger_key.context("--offline needs --ledger-key")?)
        .context("--ledger-key")?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = Bundle::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    bundle::verify_parsed(&parsed, &bundle::Trust::key(key), &|_| {})
        .map_err(|e| super::VerificationFailed(format!("the bundle did not verify: {e}")))?;
    let entries = parsed
        .entries
        .iter()
        .map(|raw| ledger::Entry::decode(raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("an entry of the bundle: {e}"))?;
    let now = match &point.as_of {
        Some(t) => dates::parse(t, BareDate::EndOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let shown: Vec<&ledger::Entry> = entries
        .iter()
        .take_while(|e| e.recorded_at.0 <= now)
        .collect();
    let state = projections::ledger_glue::state_of(shown.iter().copied());
    let organisation = match entries
        .first()
        .map(|genesis| projections::wire::decode_body(&genesis.body))
    {
        Some(Ok(envelope)) => match envelope.event {
            projections::Event::Genesis { name, .. } => name,
            _ => String::new(),
        },
        _ => String::new(),
    };
    let entry_hash = |seq: u64| shown.get(seq as usize).map(|e| e.hash().0);
    let source = oscal::Source {
        origin: &parsed.manifest.origin,
        organisation: &organisation,
        entry_hash: &entry_hash,
    };
    let document = oscal::document(model, &state, projections::Timestamp(now), &source)?;
    Ok(pb::ExportOscalResponse {
        entries: state.applied,
        now_us: now,
        json: serde_json::to_string_pretty(&document)?,
    })
}
