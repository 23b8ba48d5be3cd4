//! `isms submit FILE...`: YAML or JSON in the seed guide's own shapes — the example risk
//! register, the SoA template, the audit plan — and the project's shapes for what the seed
//! only describes (findings, corrective actions, verifications; see `--help`), turned into
//! domain events, signed with the caller's key and appended in one stream.
//!
//! Event ids are `<file stem>-<first 8 hex of the file's blake3>-<n>`: submitting the same
//! file twice is refused as a duplicate instead of recording everything a second time.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use isms_proto::v1 as pb;
use projections::model::{
    ActionId, ArtifactRef, AuditId, Event, FindingGrade, FindingId, RiskId, Timestamp,
};
use projections::seed;
use projections::wire::{encode_to_vec, BodyHeader};
use serde::Deserialize;

use super::records::{controls, date};
use crate::client::{block_on, describe_refusal, Client, ConnectArgs};
use crate::dates::{self, BareDate};
use crate::output::{progress, Format, FormatArgs, TextTable};

/// Events sent per AppendStream call by `isms submit`.
const IMPORT_SLICE: usize = 256;

/// `isms submit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Shapes (YAML or JSON, detected by their top-level key):\n  \
  risk_assessment.example_risk_register   the seed's risk register (a list of risks)\n  \
  soa_template                            the seed's Statement of Applicability (a map)\n  \
  internal_audit.audit_plan_template      the seed's audit plan\n  \
  findings: [{id, audit_id, grade, area, description, controls, auditee, date}]\n  \
  corrective_actions: [{id, finding_id, description, owner, root_cause, resolution, date}]\n  \
  verifications: [{action_id, effective, note, date}]\n  \
  risk_acceptances: [{risk_id, justification, date}]     (management)\n  \
  audit_completions: [{audit_id, summary, date}]         (auditor)\n  \
  soa_approvals: [{soa_version, controls, date}]         (management; no controls: all)\n  \
  isms_scope.template                     the seed's ISMS scope (included, excluded, interfaces)\n  \
  policies: [{id, title, kind, version, published, next_review, date}]\n  \
  objectives: [{id, description, metric, target, date}]\n  \
  objective_measurements: [{objective_id, value, note, date}]   (the date it was measured)\n  \
  assets: [{id, name, type, owner, classification, date}]\n  \
  incidents: [{id, title, severity, controls, detected, assets, nonconformity, near_miss,\n  \
              resolution, corrective_actions, date}]   (control or risk owner)\n  \
  training: [{id, person, course, campaign, completed, due, date}]\n  \
  suppliers: [{id, name, result, notes, criticality, next_assessment, date}]\n  \
  continuity_tests: [{id, plan, result, controls, date}]\n  \
  access_reviews: [{id, system, reviewer, due, completed, accounts_reviewed, accounts_removed}]\n  \
  vulnerabilities: [{id, title, severity, asset, detected, remediated, due}]   (due: SLA by severity)\n  \
  patch_compliance: [{scope, devices_total, devices_compliant, date}]\n  \
  audit_evidence_received: [{audit_id, area, item, reference, date}]   (auditor; an item the area requested)\n  \
  management_reviews: [{id, attendees, inputs_covered, decisions: [{output, decision}], date}]\n  \
                      (an input covered may be {input, reference}: where it was presented)\n  \
  review_decisions_closed: [{review_id, decision, resolution, date}]   (management; decision from 1)\n  \
  legal_requirements: [{id, title, jurisdiction, owner, controls, date}]\n  \
  compliance_reviews: [{requirement_id, result, note, next_review, date}]\n  \
  external_audits: [{id, kind, body, start, end, major_nonconformities, minor_nonconformities,\n  \
                     certified, summary}]   (stage_1, stage_2, surveillance, recertification)\n  \
  *.csv, *.xlsx   a risk register kept as a spreadsheet (XLSX: its first sheet): a header row \
naming the guide's columns \
(id, asset, threat, vulnerability, likelihood, impact, inherent_risk, treatment, controls \
separated by ;, residual_likelihood, residual_impact, residual_risk, risk_owner) in any order, or one of the \
lists above (named by the file, findings.csv, or by a column only it has: grade, finding_id, \
effective, justification, summary, soa_version, published, metric, classification, severity, \
course, notes, plan, inputs_covered), or a Statement of Applicability (soa.csv, or \
any sheet with an applicable column: control_id, applicable, justification, \
exclusion_justification, implementation); lists in a cell separated by ;\n\n\
All the files' events are stored together or not at all (at most 1,024): one bad row stores \
nothing and every bad row is named. --partial stores each event that passes on its own.\n\n\
Examples:\n  isms submit --key admin.key fixtures/seed/risk_assessment.yaml \
fixtures/seed/soa_template.yaml\n  isms submit --key auditor.key --effective 2025-03-14 findings.yaml\n  \
isms submit --key agent.key --partial evidence-batch.yaml"
)]
pub struct SubmitArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// When the submitted things happened (a date or RFC 3339); default now. Items with their
    /// own `date` keep it.
    #[arg(long)]
    effective: Option<String>,
    /// The files to submit, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Store each event that passes on its own, instead of all or nothing.
    #[arg(long)]
    partial: bool,
    /// A spreadsheet's rows that are refused are left out (and named) instead of stopping the
    /// submission.
    #[arg(long)]
    skip_bad: bool,
    /// Append a receipt for every stored event to this file (JSON lines: the ledger's receipt
    /// and the signed body), to check later with `isms receipt check`.
    #[arg(long, value_name = "FILE")]
    receipts: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
}

/// An event ready to be signed: its id, when it happened, what it is and what it refers to.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The idempotency key.
    pub event_id: String,
    /// When it happened (unix us).
    pub effective_at: i64,
    /// The event.
    pub event: Event,
    /// Artifacts it refers to.
    pub artifacts: Vec<ArtifactRef>,
    /// The version its entity must have for it to be admitted (optimistic concurrency).
    pub expected_version: Option<u64>,
}

/// What became of one submitted event.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The event id.
    pub event_id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its entity.
    pub entity: String,
    /// The receipt, or why it was refused.
    pub result: Result<pb::Receipt, pb::AppendError>,
    /// The signed body that was sent.
    pub body: Vec<u8>,
}

/// The bodies of `pending`, for this ledger, signed at client time `now`.
fn bodies_of(ledger_id: &[u8], pending: &[Pending]) -> Vec<Vec<u8>> {
    let now = ledger::UnixMicros::now().0;
    pending
        .iter()
        .map(|p| {
            let header = BodyHeader {
                ledger_id: ledger_id.to_vec(),
                event_id: p.event_id.clone(),
                effective_at: Timestamp(p.effective_at),
                client_time: Timestamp(now),
                expected_version: p.expected_version,
                artifacts: p.artifacts.clone(),
            };
            encode_to_vec(&header, &p.event)
        })
        .collect()
}

/// Most events one all-or-nothing submission holds (the server's AppendAtomic limit).
const MAX_ATOMIC_EVENTS: usize = 1024;

/// Submits every pending event as one all-or-nothing group and reports each.
pub fn submit_all_or_nothing(
    connect: &ConnectArgs,
    format: Format,
    pending: Vec<Pending>,
) -> anyhow::Result<()> {
    report(&append_all_or_nothing(connect, pending)?, format)
}

/// Submits every pending event as one all-or-nothing group; what became of each.
fn append_all_or_nothing(
    connect: &ConnectArgs,
    pending: Vec<Pending>,
) -> anyhow::Result<Vec<Outcome>> {
    anyhow::ensure!(
        pending.len() <= MAX_ATOMIC_EVENTS,
        "{} events are more than the {MAX_ATOMIC_EVENTS} one all-or-nothing submission may \
         hold; submit the files separately, or with --partial",
        pending.len()
    );
    let (bodies, answer) = block_on(async {
        let mut client = Client::connect(connect).await?;
        client.key()?;
        let ledger_id = client.ledger_id().await?;
        let bodies = bodies_of(&ledger_id, &pending);
        let answer = client.append_atomic(bodies.clone()).await?;
        anyhow::Ok((bodies, answer))
    })??;
    let refused_at: std::collections::HashMap<usize, pb::AppendError> = match &answer {
        Ok(_) => Default::default(),
        Err(refused) => refused
            .iter()
            .filter_map(|r| Some((r.index as usize, r.error.clone()?)))
            .collect(),
    };
    let mut receipts = answer
        .as_ref()
        .ok()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    Ok(pending
        .into_iter()
        .zip(bodies)
        .enumerate()
        .map(|(i, (p, body))| Outcome {
            body,
            kind: p.event.kind().name(),
            entity: super::log::entity_of(&p.event),
            event_id: p.event_id,
            result: match (receipts.next(), refused_at.get(&i)) {
                (Some(receipt), _) => Ok(receipt),
                (None, Some(error)) => Err(error.clone()),
                (None, None) => Err(pb::AppendError {
                    code: tonic::Code::Aborted as i32,
                    message: NOT_STORED.into(),
                }),
            },
        })
        .collect())
}

/// What an event that passed, in a refused all-or-nothing submission, reports.
const NOT_STORED: &str = "not stored: another event of this all-or-nothing submission was refused";

/// Signs and appends `pending` over one stream.
pub async fn append_events(
    client: &mut Client,
    ledger_id: &[u8],
    pending: Vec<Pending>,
) -> anyhow::Result<Vec<Outcome>> {
    let bodies = bodies_of(ledger_id, &pending);
    let results = client.append_many(bodies.clone()).await?;
    Ok(pending
        .into_iter()
        .zip(results)
        .zip(bodies)
        .map(|((p, result), body)| Outcome {
            body,
            kind: p.event.kind().name(),
            entity: super::log::entity_of(&p.event),
            event_id: p.event_id,
            result,
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingYaml {
    #[serde(alias = "finding_id")]
    id: String,
    audit_id: String,
    grade: String,
    #[serde(default)]
    area: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    auditee: String,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionYaml {
    #[serde(alias = "action_id")]
    id: String,
    finding_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    root_cause: Option<String>,
    resolution: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationYaml {
    action_id: String,
    effective: bool,
    #[serde(default)]
    note: String,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptanceYaml {
    risk_id: String,
    #[serde(default)]
    justification: String,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionYaml {
    audit_id: String,
    summary: String,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalYaml {
    soa_version: String,
    #[serde(default)]
    controls: Vec<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct AcceptancesDoc {
    risk_acceptances: Vec<AcceptanceYaml>,
}

#[derive(Deserialize)]
struct CompletionsDoc {
    audit_completions: Vec<CompletionYaml>,
}

#[derive(Deserialize)]
struct ApprovalsDoc {
    soa_approvals: Vec<ApprovalYaml>,
}

#[derive(Deserialize)]
struct FindingsDoc {
    findings: Vec<FindingYaml>,
}

#[derive(Deserialize)]
struct ActionsDoc {
    corrective_actions: Vec<ActionYaml>,
}

#[derive(Deserialize)]
struct VerificationsDoc {
    verifications: Vec<VerificationYaml>,
}

fn grade(field: &str, raw: &str) -> anyhow::Result<FindingGrade> {
    Ok(match super::records::key(raw).as_str() {
        "major" | "major_nonconformity" => FindingGrade::MajorNonconformity,
        "minor" | "minor_nonconformity" => FindingGrade::MinorNonconformity,
        "observation" => FindingGrade::Observation,
        "positive" | "positive_finding" => FindingGrade::PositiveFinding,
        _ => anyhow::bail!(
            "{field}: {raw:?} is not a finding grade (major_nonconformity, \
             minor_nonconformity, observation, positive_finding)"
        ),
    })
}

/// The events a document holds, each with its own effective time if it states one.
pub fn events_of(text: &str, file: &str) -> anyhow::Result<Vec<(Event, Option<i64>)>> {
    let value: serde_norway::Value =
        serde_norway::from_str(text).with_context(|| format!("{file}: not YAML or JSON"))?;
    let has = |key: &str| value.get(key).is_some();
    let plain = |events: Vec<Event>| events.into_iter().map(|e| (e, None)).collect();
    if has("example_risk_register")
        || value
            .get("risk_assessment")
            .is_some_and(|r| r.get("example_risk_register").is_some())
    {
        // Every refused row is named, not only the first.
        let mut events = Vec::new();
        let mut refused = Vec::new();
        for (n, row) in seed::risk_register_rows(text)?.into_iter().enumerate() {
            match seed::risk_events(vec![row], &|_, f| format!("example_risk_register[{n}].{f}")) {
                Ok(row_events) => events.extend(row_events),
                Err(e) => refused.push(e.to_string()),
            }
        }
        anyhow::ensure!(
            refused.is_empty(),
            "{} risk row(s) refused:\n  {}",
            refused.len(),
            refused.join("\n  ")
        );
        return Ok(plain(events));
    }
    if has("soa_template") {
        let (events, report) = seed::soa_events_converting(text)?;
        if let Some(report) = report {
            for line in report.lines() {
                eprintln!("isms: {line}");
            }
        }
        return Ok(plain(events));
    }
    if has("audit_plan_template")
        || value
            .get("internal_audit")
            .is_some_and(|r| r.get("audit_plan_template").is_some())
    {
        // The section cut out on its own is read as the guide has it, inside internal_audit.
        let whole = if has("audit_plan_template") {
            let mut doc = serde_norway::Mapping::new();
            doc.insert("internal_audit".into(), value.clone());
            serde_norway::to_string(&doc).context("audit_plan_template")?
        } else {
            text.to_string()
        };
        let event = seed::audit_plan_event(&whole)?;
        // The plan is recorded when it was made; its dates are inside the event.
        return Ok(vec![(event, None)]);
    }
    if has("findings") {
        let doc: FindingsDoc = serde_norway::from_str(text).context("findings")?;
        return doc
            .findings
            .into_iter()
            .enumerate()
            .map(|(n, f)| {
                let at = |x: &str| format!("findings[{n}].{x}");
                Ok((
                    Event::FindingRaised {
                        finding_id: FindingId::parse(&at("id"), &f.id)?,
                        audit_id: AuditId::parse(&at("audit_id"), &f.audit_id)?,
                        grade: grade(&at("grade"), &f.grade)?,
                        area: f.area,
                        description: f.description,
                        controls: controls(&at("controls"), &f.controls)?,
                        auditee: f.auditee,
                    },
                    date(&f.date, at("date"))?,
                ))
            })
            .collect();
    }
    if has("corrective_actions") {
        let doc: ActionsDoc = serde_norway::from_str(text).context("corrective_actions")?;
        let mut out = Vec::new();
        for (n, a) in doc.corrective_actions.into_iter().enumerate() {
            let at = |x: &str| format!("corrective_actions[{n}].{x}");
            let action_id = ActionId::parse(&at("id"), &a.id)?;
            let when = date(&a.date, at("date"))?;
            out.push((
                Event::CorrectiveActionOpened {
                    action_id: action_id.clone(),
                    finding_id: FindingId::parse(&at("finding_id"), &a.finding_id)?,
                    description: a.description,
                    owner: a.owner,
                },
                when,
            ));
            if let Some(root_cause) = a.root_cause {
                out.push((
                    Event::RootCauseRecorded {
                        action_id: action_id.clone(),
                        root_cause,
                    },
                    when,
                ));
            }
            if let Some(resolution) = a.resolution {
                out.push((
                    Event::CorrectiveActionClosed {
                        action_id,
                        resolution,
                    },
                    when,
                ));
            }
        }
        return Ok(out);
    }
    if has("verifications") {
        let doc: VerificationsDoc = serde_norway::from_str(text).context("verifications")?;
        return doc
            .verifications
            .into_iter()
            .enumerate()
            .map(|(n, v)| {
                let at = |x: &str| format!("verifications[{n}].{x}");
                Ok((
                    Event::CorrectiveActionVerified {
                        action_id: ActionId::parse(&at("action_id"), &v.action_id)?,
                        effective: v.effective,
                        note: v.note,
                    },
                    date(&v.date, at("date"))?,
                ))
            })
            .collect();
    }
    if has("risk_acceptances") {
        let doc: AcceptancesDoc = serde_norway::from_str(text).context("risk_acceptances")?;
        return doc
            .risk_acceptances
            .into_iter()
            .enumerate()
            .map(|(n, a)| {
                let at = |x: &str| format!("risk_acceptances[{n}].{x}");
                Ok((
                    Event::RiskAccepted {
                        risk_id: RiskId::parse(&at("risk_id"), &a.risk_id)?,
                        justification: a.justification,
                    },
                    date(&a.date, at("date"))?,
                ))
            })
            .collect();
    }
    if has("audit_completions") {
        let doc: CompletionsDoc = serde_norway::from_str(text).context("audit_completions")?;
        return doc
            .audit_completions
            .into_iter()
            .enumerate()
            .map(|(n, a)| {
                let at = |x: &str| format!("audit_completions[{n}].{x}");
                Ok((
                    Event::AuditCompleted {
                        audit_id: AuditId::parse(&at("audit_id"), &a.audit_id)?,
                        summary: a.summary,
                    },
                    date(&a.date, at("date"))?,
                ))
            })
            .collect();
    }
    if has("soa_approvals") {
        let doc: ApprovalsDoc = serde_norway::from_str(text).context("soa_approvals")?;
        return doc
            .soa_approvals
            .into_iter()
            .enumerate()
            .map(|(n, a)| {
                let at = |x: &str| format!("soa_approvals[{n}].{x}");
                Ok((
                    Event::ControlApproved {
                        control_ids: controls(&at("controls"), &a.controls)?,
                        soa_version: a.soa_version,
                    },
                    date(&a.date, at("date"))?,
                ))
            })
            .collect();
    }
    if let Some(events) = super::records::events_of(&value, text)? {
        return Ok(events);
    }
    anyhow::bail!(
        "{file}: not a shape isms knows (risk_assessment.example_risk_register, soa_template, \
         internal_audit.audit_plan_template, findings, corrective_actions, verifications, \
         risk_acceptances, audit_completions, soa_approvals, {}); see `isms submit --help`",
        super::records::KINDS.join(", ")
    )
}

/// Largest YAML or JSON file `isms submit` reads: far above any register people keep, and a
/// bound on what a damaged or hostile file can make it parse.
pub const MAX_INTAKE_BYTES: u64 = 8 * 1024 * 1024;

/// A file of the intake, read within its size bound.
fn read_intake(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_INTAKE_BYTES,
        "{}: {size} bytes is larger than the {MAX_INTAKE_BYTES} bytes isms submit reads",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The events a file describes, each with its own effective time if it states one.
pub fn desired_of(path: &Path, skip_bad: bool) -> anyhow::Result<Vec<(Event, Option<i64>)>> {
    file_events(path, &read_intake(path)?, skip_bad)
}

/// The events of a file of the intake: a risk register kept as a spreadsheet (CSV or XLSX), or
/// YAML/JSON in the shapes [`events_of`] knows. With `skip_bad`, a spreadsheet's refused rows
/// are left out and named on standard error.
fn file_events(
    path: &Path,
    bytes: &[u8],
    skip_bad: bool,
) -> anyhow::Result<Vec<(Event, Option<i64>)>> {
    let file = path.display().to_string();
    if super::spreadsheet::is_spreadsheet(path) {
        let (events, left_out) = super::spreadsheet::sheet_events(path, bytes, skip_bad)?;
        for why in &left_out {
            eprintln!("left out (--skip-bad): {why}");
        }
        if !left_out.is_empty() {
            eprintln!("{}: {} row(s) left out", file, left_out.len());
        }
        return Ok(events);
    }
    let text = std::str::from_utf8(bytes).with_context(|| format!("{file}: not UTF-8 text"))?;
    events_of(text, &file).with_context(|| format!("reading {file}"))
}

/// The pending events of one file.
pub fn pending_of(
    path: &Path,
    default_effective: i64,
    skip_bad: bool,
) -> anyhow::Result<Vec<Pending>> {
    let bytes = read_intake(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "submit".into());
    let hash = blake3::hash(&bytes).to_hex();
    let events = file_events(path, &bytes, skip_bad)?;
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(n, (event, effective))| Pending {
            expected_version: None,
            event_id: format!("{stem}-{}-{n:03}", &hash[..8]),
            effective_at: effective.unwrap_or(default_effective),
            event,
            artifacts: Vec::new(),
        })
        .collect())
}

/// Prints outcomes; errors if any event was refused.
pub fn report(outcomes: &[Outcome], format: Format) -> anyhow::Result<()> {
    let mut table = TextTable::new(["event_id", "kind", "entity", "seq", "result"]);
    let mut refused = Vec::new();
    for o in outcomes {
        let (seq, result) = match &o.result {
            Ok(r) if r.duplicate => (
                r.seq.to_string(),
                "duplicate (already recorded)".to_string(),
            ),
            Ok(r) => (r.seq.to_string(), "accepted".to_string()),
            Err(e) if e.message == NOT_STORED => (String::new(), "not stored".to_string()),
            Err(e) => {
                let why = describe_refusal(e.code, &e.message);
                refused.push(format!("{}: {why}", o.event_id));
                (String::new(), format!("refused: {why}"))
            }
        };
        table.push(vec![
            o.event_id.clone(),
            o.kind.into(),
            o.entity.clone(),
            seq,
            result,
        ]);
    }
    table.print(format);
    if !refused.is_empty() {
        let stored = outcomes.iter().any(|o| o.result.is_ok());
        anyhow::bail!(
            "{} of {} events were refused{}:\n  {}",
            refused.len(),
            outcomes.len(),
            if stored { "" } else { "; nothing was stored" },
            refused.join("\n  ")
        );
    }
    Ok(())
}

/// Runs `isms submit`.
pub fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let effective = match &args.effective {
        Some(t) => dates::parse(t, BareDate::StartOfDay)?,
        None => ledger::UnixMicros::now().0,
    };
    let mut pending = Vec::new();
    for file in &args.files {
        pending.extend(pending_of(file, effective, args.skip_bad)?);
    }
    let outcomes = if args.partial {
        append_partial(&args.connect, pending)?
    } else {
        append_all_or_nothing(&args.connect, pending)?
    };
    if let Some(path) = &args.receipts {
        let written = super::receipt::append_receipts(path, &outcomes)?;
        eprintln!("{written} receipt(s) appended to {}", path.display());
    }
    report(&outcomes, args.format.format())
}

/// Appends each event that passes on its own, in slices of [`IMPORT_SLICE`].
fn append_partial(connect: &ConnectArgs, pending: Vec<Pending>) -> anyhow::Result<Vec<Outcome>> {
    block_on(async {
        let mut client = Client::connect(connect).await?;
        client.key()?;
        let ledger_id = client.ledger_id().await?;
        // Large imports go in slices so the bar moves; each slice is one stream.
        let bar = progress(pending.len() as u64, "submitting");
        let mut outcomes = Vec::with_capacity(pending.len());
        let mut rest = pending;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(IMPORT_SLICE));
            outcomes.extend(append_events(&mut client, &ledger_id, rest).await?);
            bar.set_position(outcomes.len() as u64);
            rest = tail;
        }
        bar.finish_and_clear();
        anyhow::Ok(outcomes)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_larger_than_the_intake_limit_is_refused_before_it_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yaml");
        let line = "# padding\n".repeat(1024);
        let mut text = String::new();
        while text.len() as u64 <= MAX_INTAKE_BYTES {
            text.push_str(&line);
        }
        std::fs::write(&path, text).unwrap();
        let error = pending_of(&path, 0, false).expect_err("over the limit");
        assert!(
            error.to_string().contains("larger than the 8388608 bytes"),
            "{error:#}"
        );
    }

    const RISKS: &str = include_str!("../../../fixtures/seed/risk_assessment.yaml");
    const SOA: &str = include_str!("../../../fixtures/seed/soa_template.yaml");
    const AUDIT: &str = include_str!("../../../fixtures/seed/internal_audit.yaml");

    #[test]
    fn the_seed_fixtures_are_recognised_as_written() {
        // Three risks, each identified, assessed, treated and rescored.
        assert_eq!(events_of(RISKS, "r").unwrap().len(), 12);
        assert_eq!(events_of(SOA, "s").unwrap().len(), 20);
        let audit = events_of(AUDIT, "a").unwrap();
        assert!(matches!(audit[..], [(Event::AuditPlanned { .. }, None)]));
    }

    #[test]
    fn findings_actions_and_verifications_take_their_own_dates() {
        let findings = "findings:\n  - id: F-1\n    audit_id: IA-1\n    grade: major\n    \
                        controls: [A.8.8]\n    date: 2025-03-14\n";
        let events = events_of(findings, "f").unwrap();
        assert_eq!(
            events[0].1,
            Some(Timestamp::parse_date("2025-03-14").unwrap().0)
        );
        let actions = r#"{"corrective_actions": [{"id": "CA-1", "finding_id": "F-1",
            "root_cause": "no owner", "resolution": "owner named"}]}"#;
        let kinds: Vec<_> = events_of(actions, "a")
            .unwrap()
            .iter()
            .map(|(e, _)| e.kind().name())
            .collect();
        assert_eq!(
            kinds,
            [
                "corrective_action_opened",
                "root_cause_recorded",
                "corrective_action_closed"
            ]
        );
    }

    #[test]
    fn unknown_shapes_and_bad_fields_are_named() {
        let e = events_of("other: 1\n", "x.yaml").unwrap_err();
        assert!(format!("{e:#}").contains("not a shape"));
        let bad = "findings:\n  - id: F-1\n    audit_id: IA-1\n    grade: terrible\n";
        let e = events_of(bad, "f").unwrap_err();
        assert!(format!("{e:#}").contains("findings[0].grade"), "{e:#}");
        let bad = "findings:\n  - id: F-1\n    audit_id: IA-1\n    grade: minor\n    \
                   controls: [A.9.9]\n";
        let e = events_of(bad, "f").unwrap_err();
        assert!(
            format!("{e:#}").contains("findings[0].controls[0]"),
            "{e:#}"
        );
    }
}
