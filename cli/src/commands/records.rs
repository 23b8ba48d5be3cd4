//! The rest of the ISMS as YAML lists `isms submit` and `isms apply` take (and, through
//! `spreadsheet.rs`, as sheets): the guide's `isms_scope`, and `policies`, `objectives`,
//! `assets`, `incidents`, `training`, `suppliers`, `continuity_tests`, `access_reviews`,
//! `vulnerabilities`, `patch_compliance`, `audit_evidence_received` and `management_reviews`. Every error names the list, the item and the field
//! (`incidents[2].severity`).

use anyhow::Context as _;
use projections::model::*;
use projections::{ControlId, Event};
use serde::Deserialize;

use crate::dates::{self, BareDate};

/// Events, each with the effective time its item states (if any).
pub type Dated = Vec<(Event, Option<i64>)>;

/// The top-level keys this module reads.
pub const KINDS: [&str; 18] = [
    "isms_scope",
    "policies",
    "objectives",
    "objective_measurements",
    "assets",
    "incidents",
    "training",
    "suppliers",
    "continuity_tests",
    "management_reviews",
    "review_decisions_closed",
    "external_audits",
    "legal_requirements",
    "compliance_reviews",
    "access_reviews",
    "vulnerabilities",
    "patch_compliance",
    "audit_evidence_received",
];

#[derive(Deserialize)]
struct ScopeDoc {
    isms_scope: ScopeSection,
}

/// The guide nests the scope under `template:`; a file may also give the fields directly.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeSection {
    Template { template: ScopeYaml },
    Direct(ScopeYaml),
}

#[derive(Deserialize)]
struct ScopeYaml {
    organization: String,
    scope_statement: String,
    #[serde(default)]
    included: Included,
    #[serde(default)]
    excluded: Vec<String>,
    #[serde(default)]
    exclusion_justification: String,
    #[serde(default)]
    interfaces: Vec<String>,
    date: Option<String>,
}

#[derive(Default, Deserialize)]
struct Included {
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default)]
    business_processes: Vec<String>,
    #[serde(default)]
    information_assets: Vec<String>,
    #[serde(default)]
    technology: Vec<String>,
}

#[derive(Deserialize)]
struct PolicyYaml {
    id: String,
    title: String,
    kind: String,
    version: String,
    #[serde(default)]
    published: bool,
    /// When it is next due for review.
    next_review: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ObjectiveYaml {
    id: String,
    description: String,
    metric: String,
    target: String,
    date: Option<String>,
}

#[derive(Deserialize)]
struct MeasurementYaml {
    objective_id: String,
    value: String,
    #[serde(default)]
    note: String,
    /// When it was measured.
    date: Option<String>,
}

#[derive(Deserialize)]
struct AssetYaml {
    id: String,
    name: String,
    #[serde(rename = "type", default)]
    asset_type: String,
    owner: String,
    #[serde(default)]
    classification: String,
    #[serde(default)]
    location: String,
    /// No longer in use.
    #[serde(default)]
    retired: bool,
    date: Option<String>,
}

#[derive(Deserialize)]
struct IncidentYaml {
    id: String,
    title: String,
    severity: String,
    #[serde(default)]
    controls: Vec<String>,
    /// When it was detected.
    detected: Option<String>,
    /// The assets it affected.
    #[serde(default)]
    assets: Vec<String>,
    #[serde(default)]
    nonconformity: bool,
    #[serde(default)]
    near_miss: bool,
    /// Set when the incident is closed: how.
    resolution: Option<String>,
    /// With the resolution: the corrective actions opened for it.
    #[serde(default)]
    corrective_actions: Vec<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct TrainingYaml {
    id: String,
    person: String,
    course: String,
    #[serde(default)]
    completed: bool,
    #[serde(default)]
    campaign: String,
    /// When it must be completed by.
    due: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct SupplierYaml {
    id: String,
    name: String,
    result: String,
    #[serde(default)]
    notes: String,
    /// low, medium, high or critical.
    criticality: Option<String>,
    /// When it is next due for assessment.
    next_assessment: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ContinuityTestYaml {
    id: String,
    plan: String,
    result: String,
    #[serde(default)]
    controls: Vec<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct AccessReviewYaml {
    id: String,
    system: String,
    #[serde(default)]
    reviewer: String,
    due: String,
    /// When it was done; absent while it is still to do.
    completed: Option<String>,
    #[serde(default)]
    accounts_reviewed: u32,
    #[serde(default)]
    accounts_removed: u32,
    date: Option<String>,
}

#[derive(Deserialize)]
struct VulnerabilityYaml {
    id: String,
    title: String,
    /// low, medium, high or critical.
    severity: String,
    asset: Option<String>,
    detected: String,
    /// When it was fixed; absent while it is open.
    remediated: Option<String>,
    /// The deadline; absent: the SLA of its severity.
    due: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct PatchComplianceYaml {
    scope: String,
    devices_total: u32,
    devices_compliant: u32,
    date: Option<String>,
}

#[derive(Deserialize)]
struct EvidenceReceivedYaml {
    audit_id: String,
    area: String,
    item: String,
    #[serde(default)]
    reference: String,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ReviewYaml {
    id: String,
    #[serde(default)]
    attendees: Vec<String>,
    /// Each an input's name, or `{input, reference}`.
    #[serde(default)]
    inputs_covered: Vec<serde_norway::Value>,
    #[serde(default)]
    decisions: Vec<DecisionYaml>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ClosedDecisionYaml {
    review_id: String,
    /// The decision's number in its review, from 1.
    decision: u32,
    resolution: String,
    date: Option<String>,
}

#[derive(Deserialize)]
struct RequirementYaml {
    id: String,
    title: String,
    #[serde(default)]
    jurisdiction: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    controls: Vec<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ComplianceReviewYaml {
    requirement_id: String,
    result: String,
    #[serde(default)]
    note: String,
    next_review: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
struct ExternalAuditYaml {
    id: String,
    /// stage_1, stage_2, surveillance or recertification.
    kind: String,
    body: String,
    start: String,
    end: String,
    #[serde(default)]
    major_nonconformities: u32,
    #[serde(default)]
    minor_nonconformities: u32,
    #[serde(default)]
    certified: bool,
    #[serde(default)]
    summary: String,
}

#[derive(Deserialize)]
struct DecisionYaml {
    output: String,
    decision: String,
}

/// Lower case with spaces and dashes as underscores: how a kind or result may be written.
pub(crate) fn key(raw: &str) -> String {
    raw.trim().to_lowercase().replace([' ', '-'], "_")
}

fn policy_kind(field: &str, raw: &str) -> anyhow::Result<PolicyKind> {
    Ok(match key(raw).as_str() {
        "information_security" => PolicyKind::InformationSecurity,
        "risk_methodology" => PolicyKind::RiskMethodology,
        "document_control" => PolicyKind::DocumentControl,
        "incident_management" => PolicyKind::IncidentManagement,
        "business_continuity" => PolicyKind::BusinessContinuity,
        "supplier_security" => PolicyKind::SupplierSecurity,
        "other" => PolicyKind::Other,
        _ => anyhow::bail!(
            "{field}: {raw:?} is not a policy kind (information_security, risk_methodology, \
             document_control, incident_management, business_continuity, supplier_security, \
             other)"
        ),
    })
}

fn severity(field: &str, raw: &str) -> anyhow::Result<Severity> {
    Ok(match key(raw).as_str() {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => anyhow::bail!("{field}: {raw:?} is not a severity (low, medium, high, critical)"),
    })
}

fn result(field: &str, raw: &str) -> anyhow::Result<CheckResult> {
    Ok(match key(raw).as_str() {
        "pass" | "passed" => CheckResult::Pass,
        "fail" | "failed" => CheckResult::Fail,
        _ => anyhow::bail!("{field}: {raw:?} is not a result (pass, fail)"),
    })
}

/// One of a fixed list of `(value, the guide's wording)`, named by its variant
/// (`audit_results`) or by the wording; the error lists the wordings.
fn one_of<T: Copy + std::fmt::Debug>(
    field: &str,
    raw: &str,
    all: &[(T, &'static str)],
    what: &str,
) -> anyhow::Result<T> {
    let wanted = key(raw).replace('_', "");
    all.iter()
        .find(|(value, text)| {
            key(&format!("{value:?}")).replace('_', "") == wanted
                || text.eq_ignore_ascii_case(raw.trim())
        })
        .map(|(value, _)| *value)
        .with_context(|| {
            let names: Vec<&str> = all.iter().map(|(_, t)| *t).collect();
            format!(
                "{field}: {raw:?} is not a {what}; they are: {}",
                names.join("; ")
            )
        })
}

fn review_input(field: &str, raw: &str) -> anyhow::Result<ReviewInput> {
    one_of(field, raw, &ReviewInput::ALL, "mandatory input")
}

/// A mandatory input covered: its name, or `{input, reference}` (where it was presented).
fn covered_input(
    field: &str,
    covered: &serde_norway::Value,
) -> anyhow::Result<(ReviewInput, Option<String>)> {
    let text = |v: Option<&serde_norway::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(name) = covered.as_str() {
        return Ok((review_input(field, name)?, None));
    }
    let (Some(name), Some(_)) = (text(covered.get("input")), covered.as_mapping()) else {
        anyhow::bail!(
            "{field}: give the input's name, or {{input: NAME, reference: WHERE IT WAS PRESENTED}}"
        );
    };
    let input = review_input(&format!("{field}.input"), &name)?;
    Ok((input, text(covered.get("reference"))))
}

fn review_output(field: &str, raw: &str) -> anyhow::Result<ReviewOutput> {
    one_of(field, raw, &ReviewOutput::ALL, "mandatory output")
}

/// Control ids from a list, each error naming `field[i]`.
pub(crate) fn controls(field: &str, raw: &[String]) -> anyhow::Result<Vec<ControlId>> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| {
            ControlId::parse(c).map_err(|p| anyhow::anyhow!("{field}[{i}]: {c:?}: {}", p.explain()))
        })
        .collect()
}

/// An item's stated date (its start), if any; errors name `field`.
pub(crate) fn date(raw: &Option<String>, field: String) -> anyhow::Result<Option<i64>> {
    raw.as_deref()
        .map(|d| dates::parse(d, BareDate::StartOfDay).context(field))
        .transpose()
}

/// A date the item must give.
fn required_date(raw: &str, field: String) -> anyhow::Result<i64> {
    dates::parse(raw, BareDate::StartOfDay).context(field)
}

/// Reads the list under `kind` and turns each item into events, naming `kind[n]` in errors.
fn list<T: serde::de::DeserializeOwned>(
    value: &serde_norway::Value,
    kind: &str,
    mut events: impl FnMut(T, &dyn Fn(&str) -> String) -> anyhow::Result<Dated>,
) -> anyhow::Result<Dated> {
    let items = value
        .get(kind)
        .and_then(|v| v.as_sequence())
        .with_context(|| format!("{kind}: must be a list"))?;
    let mut out = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let at = |field: &str| format!("{kind}[{n}].{field}");
        let parsed: T =
            serde_norway::from_value(item.clone()).with_context(|| format!("{kind}[{n}]"))?;
        out.extend(events(parsed, &at)?);
    }
    Ok(out)
}

/// The events of a document whose top-level key is one of [`KINDS`]; None for any other.
pub fn events_of(value: &serde_norway::Value, text: &str) -> anyhow::Result<Option<Dated>> {
    let Some(kind) = KINDS.iter().find(|k| value.get(**k).is_some()) else {
        return Ok(None);
    };
    let events = match *kind {
        "isms_scope" => {
            let doc: ScopeDoc = serde_norway::from_str(text).context("isms_scope")?;
            let s = match doc.isms_scope {
                ScopeSection::Template { template } => template,
                ScopeSection::Direct(s) => s,
            };
            let when = date(&s.date, "isms_scope.date".into())?;
            vec![(
                Event::ScopeDefined(Scope {
                    organization: s.organization,
                    scope_statement: s.scope_statement.trim().to_string(),
                    locations: s.included.locations,
                    business_processes: s.included.business_processes,
                    information_assets: s.included.information_assets,
                    technology: s.included.technology,
                    excluded: s.excluded,
                    exclusion_justification: s.exclusion_justification,
                    interfaces: s.interfaces,
                }),
                when,
            )]
        }
        "policies" => list(value, kind, |p: PolicyYaml, at| {
            Ok(vec![(
                Event::PolicyApproved {
                    policy_id: PolicyId::parse(&at("id"), &p.id)?,
                    title: p.title,
                    kind: policy_kind(&at("kind"), &p.kind)?,
                    version: p.version,
                    published: p.published,
                    next_review: date(&p.next_review, at("next_review"))?.map(Timestamp),
                },
                date(&p.date, at("date"))?,
            )])
        })?,
        "objectives" => list(value, kind, |o: ObjectiveYaml, at| {
            Ok(vec![(
                Event::ObjectiveSet {
                    objective_id: ObjectiveId::parse(&at("id"), &o.id)?,
                    description: o.description,
                    metric: o.metric,
                    target: o.target,
                },
                date(&o.date, at("date"))?,
            )])
        })?,
        "objective_measurements" => list(value, kind, |m: MeasurementYaml, at| {
            Ok(vec![(
                Event::ObjectiveMeasured {
                    objective_id: ObjectiveId::parse(&at("objective_id"), &m.objective_id)?,
                    value: m.value,
                    note: m.note,
                },
                date(&m.date, at("date"))?,
            )])
        })?,
        "assets" => list(value, kind, |a: AssetYaml, at| {
            Ok(vec![(
                Event::AssetRegistered {
                    asset_id: AssetId::parse(&at("id"), &a.id)?,
                    name: a.name,
                    asset_type: a.asset_type,
                    owner: a.owner,
                    classification: a.classification,
                    location: a.location,
                    retired: a.retired,
                },
                date(&a.date, at("date"))?,
            )])
        })?,
        "incidents" => list(value, kind, |i: IncidentYaml, at| {
            let incident_id = IncidentId::parse(&at("id"), &i.id)?;
            let when = date(&i.date, at("date"))?;
            let mut events = vec![(
                Event::IncidentRecorded {
                    incident_id: incident_id.clone(),
                    title: i.title,
                    severity: severity(&at("severity"), &i.severity)?,
                    controls: controls(&at("controls"), &i.controls)?,
                    detected_at: date(&i.detected, at("detected"))?.map(Timestamp),
                    assets: i.assets,
                    nonconformity: i.nonconformity,
                    near_miss: i.near_miss,
                },
                when,
            )];
            if let Some(resolution) = i.resolution {
                let corrective_actions = i
                    .corrective_actions
                    .iter()
                    .enumerate()
                    .map(|(n, a)| ActionId::parse(&at(&format!("corrective_actions[{n}]")), a))
                    .collect::<Result<Vec<_>, _>>()?;
                events.push((
                    Event::IncidentClosed {
                        incident_id,
                        resolution,
                        corrective_actions,
                    },
                    when,
                ));
            } else {
                anyhow::ensure!(
                    i.corrective_actions.is_empty(),
                    "{}: corrective actions are named when the incident is closed (give a \
                     resolution)",
                    at("corrective_actions")
                );
            }
            Ok(events)
        })?,
        "training" => list(value, kind, |t: TrainingYaml, at| {
            Ok(vec![(
                Event::TrainingRecorded {
                    training_id: TrainingId::parse(&at("id"), &t.id)?,
                    person: t.person,
                    course: t.course,
                    completed: t.completed,
                    campaign: t.campaign,
                    due: date(&t.due, at("due"))?.map(Timestamp),
                },
                date(&t.date, at("date"))?,
            )])
        })?,
        "suppliers" => list(value, kind, |s: SupplierYaml, at| {
            Ok(vec![(
                Event::SupplierAssessed {
                    supplier_id: SupplierId::parse(&at("id"), &s.id)?,
                    name: s.name,
                    result: result(&at("result"), &s.result)?,
                    notes: s.notes,
                    criticality: s
                        .criticality
                        .as_deref()
                        .map(|c| severity(&at("criticality"), c))
                        .transpose()?,
                    next_assessment: date(&s.next_assessment, at("next_assessment"))?
                        .map(Timestamp),
                },
                date(&s.date, at("date"))?,
            )])
        })?,
        "continuity_tests" => list(value, kind, |t: ContinuityTestYaml, at| {
            Ok(vec![(
                Event::ContinuityTestHeld {
                    test_id: TestId::parse(&at("id"), &t.id)?,
                    plan: t.plan,
                    result: result(&at("result"), &t.result)?,
                    controls: controls(&at("controls"), &t.controls)?,
                },
                date(&t.date, at("date"))?,
            )])
        })?,
        "access_reviews" => list(value, kind, |r: AccessReviewYaml, at| {
            field_rules::accounts_removed(r.accounts_reviewed, r.accounts_removed).map_err(
                |rule| {
                    anyhow::anyhow!(
                        "{}: {rule} ({} > {})",
                        at("accounts_removed"),
                        r.accounts_removed,
                        r.accounts_reviewed
                    )
                },
            )?;
            let completed = date(&r.completed, at("completed"))?.map(Timestamp);
            Ok(vec![(
                Event::AccessReviewRecorded {
                    review_id: AccessReviewId::parse(&at("id"), &r.id)?,
                    system: r.system,
                    reviewer: r.reviewer,
                    due: Timestamp(required_date(&r.due, at("due"))?),
                    completed,
                    accounts_reviewed: r.accounts_reviewed,
                    accounts_removed: r.accounts_removed,
                },
                // Recorded as of its completion when done, else as of the date given.
                date(&r.date, at("date"))?.or(completed.map(|t| t.0)),
            )])
        })?,
        "vulnerabilities" => list(value, kind, |v: VulnerabilityYaml, at| {
            let detected = Timestamp(required_date(&v.detected, at("detected"))?);
            let remediated = date(&v.remediated, at("remediated"))?.map(Timestamp);
            field_rules::remediated(detected, remediated)
                .map_err(|rule| anyhow::anyhow!("{}: {rule} ({})", at("remediated"), v.detected))?;
            Ok(vec![(
                Event::VulnerabilityRecorded {
                    vulnerability_id: VulnerabilityId::parse(&at("id"), &v.id)?,
                    title: v.title,
                    severity: severity(&at("severity"), &v.severity)?,
                    asset: v
                        .asset
                        .as_deref()
                        .map(|a| AssetId::parse(&at("asset"), a))
                        .transpose()?,
                    detected,
                    remediated,
                    due: date(&v.due, at("due"))?.map(Timestamp),
                },
                date(&v.date, at("date"))?.or(Some(remediated.unwrap_or(detected).0)),
            )])
        })?,
        "patch_compliance" => list(value, kind, |p: PatchComplianceYaml, at| {
            field_rules::devices_total(p.devices_total)
                .map_err(|rule| anyhow::anyhow!("{}: {rule}", at("devices_total")))?;
            field_rules::devices_compliant(p.devices_total, p.devices_compliant).map_err(
                |rule| {
                    anyhow::anyhow!(
                        "{}: {rule} ({} > {})",
                        at("devices_compliant"),
                        p.devices_compliant,
                        p.devices_total
                    )
                },
            )?;
            Ok(vec![(
                Event::PatchComplianceMeasured {
                    scope: p.scope,
                    devices_total: p.devices_total,
                    devices_compliant: p.devices_compliant,
                },
                date(&p.date, at("date"))?,
            )])
        })?,
        "audit_evidence_received" => list(value, kind, |r: EvidenceReceivedYaml, at| {
            Ok(vec![(
                Event::AuditEvidenceReceived {
                    audit_id: AuditId::parse(&at("audit_id"), &r.audit_id)?,
                    area: r.area,
                    item: r.item,
                    reference: r.reference,
                },
                date(&r.date, at("date"))?,
            )])
        })?,
        "management_reviews" => list(value, kind, |r: ReviewYaml, at| {
            let inputs_covered = r
                .inputs_covered
                .iter()
                .enumerate()
                .map(|(i, covered)| covered_input(&at(&format!("inputs_covered[{i}]")), covered))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let references: Vec<InputReference> = inputs_covered
                .iter()
                .filter_map(|(input, reference)| {
                    reference.clone().map(|reference| InputReference {
                        input: *input,
                        reference,
                    })
                })
                .collect();
            let inputs_covered: Vec<ReviewInput> =
                inputs_covered.into_iter().map(|(input, _)| input).collect();
            let decisions = r
                .decisions
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    Ok((
                        review_output(&at(&format!("decisions[{i}].output")), &d.output)?,
                        d.decision,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(vec![(
                Event::ManagementReviewHeld {
                    review_id: ReviewId::parse(&at("id"), &r.id)?,
                    attendees: r.attendees,
                    inputs_covered,
                    decisions,
                    references,
                },
                date(&r.date, at("date"))?,
            )])
        })?,
        "legal_requirements" => list(value, kind, |r: RequirementYaml, at| {
            Ok(vec![(
                Event::LegalRequirementRecorded {
                    requirement_id: RequirementId::parse(&at("id"), &r.id)?,
                    title: r.title,
                    jurisdiction: r.jurisdiction,
                    owner: r.owner,
                    controls: controls(&at("controls"), &r.controls)?,
                },
                date(&r.date, at("date"))?,
            )])
        })?,
        "compliance_reviews" => list(value, kind, |c: ComplianceReviewYaml, at| {
            Ok(vec![(
                Event::ComplianceReviewed {
                    requirement_id: RequirementId::parse(&at("requirement_id"), &c.requirement_id)?,
                    result: result(&at("result"), &c.result)?,
                    note: c.note,
                    next_review: date(&c.next_review, at("next_review"))?.map(Timestamp),
                },
                date(&c.date, at("date"))?,
            )])
        })?,
        "external_audits" => list(value, kind, |a: ExternalAuditYaml, at| {
            let kind = match key(&a.kind).as_str() {
                "stage_1" | "stage1" => ExternalAuditKind::Stage1,
                "stage_2" | "stage2" | "certification" => ExternalAuditKind::Stage2,
                "surveillance" => ExternalAuditKind::Surveillance,
                "recertification" => ExternalAuditKind::Recertification,
                _ => anyhow::bail!(
                    "{}: {:?} is not an external audit kind (stage_1, stage_2, surveillance, \
                     recertification)",
                    at("kind"),
                    a.kind
                ),
            };
            let start = dates::parse(&a.start, BareDate::StartOfDay).context(at("start"))?;
            let end = dates::parse(&a.end, BareDate::EndOfDay).context(at("end"))?;
            Ok(vec![(
                Event::ExternalAuditHeld {
                    audit_id: AuditId::parse(&at("id"), &a.id)?,
                    kind,
                    body: a.body,
                    start: Timestamp(start),
                    end: Timestamp(end),
                    major_nonconformities: a.major_nonconformities,
                    minor_nonconformities: a.minor_nonconformities,
                    certified: a.certified,
                    summary: a.summary,
                },
                // In effect from the day it ended.
                Some(dates::parse(&a.end, BareDate::StartOfDay).context(at("end"))?),
            )])
        })?,
        "review_decisions_closed" => list(value, kind, |d: ClosedDecisionYaml, at| {
            Ok(vec![(
                Event::ReviewDecisionClosed {
                    review_id: ReviewId::parse(&at("review_id"), &d.review_id)?,
                    decision: d.decision,
                    resolution: d.resolution,
                },
                date(&d.date, at("date"))?,
            )])
        })?,
        _ => unreachable!("KINDS lists only the kinds above"),
    };
    Ok(Some(events))
}
