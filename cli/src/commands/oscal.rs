//! `isms oscal`: the audits or the corrective actions as of any time, as an OSCAL 1.1.3 JSON
//! document (assessment results, or a plan of action and milestones), built by the server from
//! the same state as `isms register`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use isms_proto::v1 as pb;

use super::registers::PointArgs;
use crate::client::{block_on, Client, ConnectArgs};
use crate::server::registers_service::method as rm;

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
                  isms oscal poam --out poam.json\n\n\
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
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `isms oscal`.
pub fn run(args: OscalArgs) -> anyhow::Result<()> {
    let request = pb::ExportOscalRequest {
        as_of: args.point.as_of()?,
        model: match args.model {
            OscalModelArg::AssessmentResults => pb::OscalModel::AssessmentResults,
            OscalModelArg::Poam => pb::OscalModel::Poam,
        } as i32,
    };
    let response = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.read(request, rm::EXPORT_OSCAL);
        anyhow::Ok(client.registers().export_oscal(request).await?.into_inner())
    })??;
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
