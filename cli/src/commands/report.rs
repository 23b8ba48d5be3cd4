//! `isms report`: fetches the registers as of a date and verifies the ledger, then writes the
//! self-contained HTML report (`crate::report`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::registers::{fetch, PointArgs, RegisterName};
use super::verify::{verified_text, verify_server};
use crate::client::{block_on, Client, ConnectArgs};
use crate::dates;
use crate::report::{render, ReportData};

/// `isms report`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  isms report --key auditor.key --as-of 2025-03-31 --out report.html"
)]
pub struct ReportArgs {
    /// The HTML file to write.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// The ledger's public key to verify against (default: the one the genesis names).
    #[arg(long)]
    ledger_key: Option<String>,
    #[command(flatten)]
    point: PointArgs,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Fetches everything and renders the report.
pub async fn build(
    client: &mut Client,
    point: &PointArgs,
    ledger_key: Option<ed25519_dalek::VerifyingKey>,
) -> anyhow::Result<String> {
    let as_of = point.as_of()?;
    let risks = fetch(client, RegisterName::Risks, as_of).await?;
    let soa = fetch(client, RegisterName::Soa, as_of).await?;
    let findings = fetch(client, RegisterName::Findings, as_of).await?;
    let actions = fetch(client, RegisterName::Actions, as_of).await?;
    let readiness = fetch(client, RegisterName::Readiness, as_of).await?;
    let mut more = Vec::new();
    for (title, register) in [
        ("ISMS scope", RegisterName::Scope),
        (
            "Policies and documented information",
            RegisterName::Policies,
        ),
        ("ISMS objectives", RegisterName::Objectives),
        ("Information assets", RegisterName::Assets),
        ("Internal audits", RegisterName::Audits),
        (
            "Certification audits and cycle",
            RegisterName::Certification,
        ),
        (
            "Audit programme coverage (last 12 months)",
            RegisterName::Coverage,
        ),
        ("Management reviews", RegisterName::Reviews),
        ("Management review actions", RegisterName::ReviewActions),
        ("Incidents", RegisterName::Incidents),
        ("Awareness training", RegisterName::Training),
        ("Suppliers", RegisterName::Suppliers),
        ("Business continuity tests", RegisterName::ContinuityTests),
        ("Legal and regulatory requirements", RegisterName::Legal),
        ("Access reviews", RegisterName::AccessReviews),
        ("Vulnerabilities", RegisterName::Vulnerabilities),
        ("Patch compliance", RegisterName::PatchCompliance),
    ] {
        more.push((
            title.to_string(),
            fetch(client, register, as_of).await?.table,
        ));
    }
    let genesis = client.entry(0).await?;
    let ledger = match projections::wire::decode_body(&genesis.body).map(|e| e.event) {
        Ok(projections::model::Event::Genesis { name, .. }) if !name.is_empty() => name,
        _ => "ISMS ledger".to_string(),
    };
    let (verified, trusted) = verify_server(client, ledger_key).await?;
    let verification = verified
        .map(|v| {
            let mut summary = verified_text(&v)
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join("; ");
            if !trusted {
                summary.push_str(" (against the ledger key named by the genesis)");
            }
            (summary, v.checkpoint.note.clone())
        })
        .map_err(|e| e.to_string());
    let witnessed = witnessed_lines(client).await;
    let covered = covered_line(client, risks.entries, verification.is_ok()).await?;
    Ok(render(&ReportData {
        ledger,
        as_of: dates::show_time(risks.now_us),
        generated: dates::show_time(ledger::UnixMicros::now().0),
        entries: risks.entries,
        risks: risks.table,
        soa: soa.table,
        findings: findings.table,
        actions: actions.table,
        readiness: readiness.table,
        more,
        verification,
        witnessed,
        covered,
    }))
}

/// What the registers as of the date rest on: entries 0..=S and the first checkpoint that
/// covers them (which the full verification checked when it passed).
async fn covered_line(
    client: &mut Client,
    entries: u64,
    verified: bool,
) -> anyhow::Result<Option<String>> {
    if entries == 0 {
        return Ok(None);
    }
    let Some(c) = client.covering_checkpoint(entries).await? else {
        return Ok(None);
    };
    Ok(Some(format!(
        "The registers as of this date rest on entries 0..={}, covered by the checkpoint of \
         size {} signed at {}{}.",
        entries - 1,
        c.size,
        dates::show_time(c.time_us),
        if verified {
            ", which the verification above checked"
        } else {
            " (not verified: see above)"
        }
    )))
}

/// One sentence per witness that cosigned a checkpoint, from the server's status: which
/// entries existed no later than when, by whom.
pub async fn witnessed_lines(client: &mut Client) -> Vec<String> {
    let Ok(status) = client.status().await else {
        return Vec::new();
    };
    status
        .witnesses
        .iter()
        .filter(|w| w.cosigned_size > 0)
        .map(|w| {
            let at = dates::from_unix_seconds(w.cosigned_at);
            format!(
                "entries 0..={} existed no later than {}: cosigned by witness {} ({})",
                w.cosigned_size - 1,
                dates::show_time(at),
                w.name,
                w.witness_key
            )
        })
        .collect()
}

/// Runs `isms report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let ledger_key = args
        .ledger_key
        .as_deref()
        .map(crate::bundle::parse_ledger_key)
        .transpose()
        .context("--ledger-key")?;
    let html = block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        build(&mut client, &args.point, ledger_key).await
    })??;
    std::fs::write(&args.out, &html).with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(at) = html.find("<p class=\"covered\">") {
        let rest = &html[at + "<p class=\"covered\">".len()..];
        println!("{}", rest.split("</p>").next().unwrap_or_default());
    }
    println!("wrote {} ({} bytes)", args.out.display(), html.len());
    Ok(())
}
