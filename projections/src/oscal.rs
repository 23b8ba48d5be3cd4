//! The registers as NIST OSCAL 1.1.3 JSON: the audits with their findings and observations as
//! an *assessment-results* document, and the corrective actions as a *plan of action and
//! milestones* (POA&M).
//!
//! Every item carries the ledger seq and entry hash of the entry that recorded it (props in
//! the [`NS`] namespace), so an OSCAL consumer can ask the ledger for its inclusion proof.
//! UUIDs are name-based (version 5) under a namespace derived from the ledger's origin: the
//! same finding has the same UUID in every export, and a document's own UUID changes with the
//! state it shows. docs/OSCAL.md gives the mapping field by field.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::{ExternalAuditKind, FindingGrade};
use crate::registers::{clauses_named, controls_named, Registers};
use crate::state::{ActionStatus, Audit, CorrectiveAction, ExternalAudit, Finding, Meta};
use crate::{ControlId, State, Timestamp};

/// The OSCAL version the documents follow.
pub const OSCAL_VERSION: &str = "1.1.3";
/// The namespace of the props the ledger adds (`ledger-seq`, `entry-hash`, ...).
pub const NS: &str = "urn:isms-ledger:oscal";

/// Which OSCAL model to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// `assessment-results`: internal and external audits, findings, observations.
    AssessmentResults,
    /// `plan-of-action-and-milestones`: corrective actions, due dates, status.
    Poam,
}

impl Model {
    /// `assessment-results` or `poam`.
    pub fn name(self) -> &'static str {
        match self {
            Model::AssessmentResults => "assessment-results",
            Model::Poam => "poam",
        }
    }
}

/// What a document needs besides the state: the ledger it comes from and each entry's hash.
pub struct Source<'a> {
    /// The checkpoint origin, `isms-ledger/<ledger id hex>`.
    pub origin: &'a str,
    /// The organisation's name from the genesis.
    pub organisation: &'a str,
    /// The entry hash of a seq the state has applied.
    pub entry_hash: &'a dyn Fn(u64) -> Option<[u8; 32]>,
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OscalError {
    /// The state names an entry the source does not hold.
    #[error("entry {0} is not in the ledger this state was folded from")]
    MissingEntry(u64),
    /// A date OSCAL's date-time type cannot carry.
    #[error("{0}: OSCAL date-times take the years 1900 to 2999 only")]
    DateOutOfRange(String),
}

/// The document of `model` for `state`, judged at `now` (due dates, "overdue").
pub fn document(
    model: Model,
    state: &State,
    now: Timestamp,
    source: &Source<'_>,
) -> Result<Value, OscalError> {
    let writer = Writer {
        state,
        now,
        source,
        namespace: Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("urn:isms-ledger:{}", source.origin).as_bytes(),
        ),
    };
    match model {
        Model::AssessmentResults => writer.assessment_results(),
        Model::Poam => writer.poam(),
    }
}

struct Writer<'a> {
    state: &'a State,
    now: Timestamp,
    source: &'a Source<'a>,
    namespace: Uuid,
}

impl Writer<'_> {
    fn uuid(&self, name: &str) -> String {
        Uuid::new_v5(&self.namespace, name.as_bytes()).to_string()
    }

    /// The props naming the entry that recorded an item: `ledger-seq` and `entry-hash`, with
    /// `class` telling which step of the item's life it was when there are several.
    fn entry_props(&self, meta: &Meta, class: Option<&str>) -> Result<Vec<Value>, OscalError> {
        let hash = (self.source.entry_hash)(meta.seq).ok_or(OscalError::MissingEntry(meta.seq))?;
        let mut props = vec![
            ns_prop("ledger-seq", &meta.seq.to_string()),
            ns_prop("entry-hash", &hex::encode(hash)),
        ];
        if let Some(class) = class {
            for p in &mut props {
                p["class"] = json!(class);
            }
        }
        Ok(props)
    }

    fn metadata(&self, title: &str) -> Result<Value, OscalError> {
        let mut props = vec![
            ns_prop("ledger-origin", self.source.origin),
            ns_prop("ledger-entries", &self.state.applied.to_string()),
            ns_prop("as-of", &rfc3339(self.now)?),
        ];
        props.retain(|p| p["value"] != "");
        Ok(json!({
            "title": format!("{}: {title}", self.source.organisation),
            "last-modified": rfc3339(self.now)?,
            "version": format!("ledger entries 0..{}", self.state.applied),
            "oscal-version": OSCAL_VERSION,
            "props": props,
            "parties": [{
                "uuid": self.uuid("party/organisation"),
                "type": "organization",
                "name": match one_line(self.source.organisation) {
                    name if name.is_empty() => self.source.origin.to_string(),
                    name => name,
                },
            }],
        }))
    }

    /// The document's own UUID: the same for the same state, a new one when it changes.
    fn document_uuid(&self, model: Model) -> String {
        self.uuid(&format!(
            "{}@{}@{}",
            model.name(),
            self.state.applied,
            self.now.0
        ))
    }

    fn assessment_results(&self) -> Result<Value, OscalError> {
        let mut results = Vec::new();
        for (id, audit) in &self.state.audits {
            results.push(self.internal_result(&id.0, audit)?);
        }
        for (id, audit) in &self.state.external_audits {
            results.push(self.external_result(&id.0, audit)?);
        }
        if results.is_empty() {
            // OSCAL requires at least one result: say, as one, that none was recorded.
            results.push(json!({
                "uuid": self.uuid("result/none"),
                "title": "No audit recorded",
                "description": "The ledger holds no internal or external audit at this time.",
                "start": rfc3339(self.now)?,
                "reviewed-controls": {"control-selections": [{"include-all": {}}]},
            }));
        }
        let programme = self.uuid("resource/audit-programme");
        Ok(json!({
            "assessment-results": {
                "uuid": self.document_uuid(Model::AssessmentResults),
                "metadata": self.metadata("ISMS audit results")?,
                "import-ap": {"href": format!("#{programme}")},
                "results": results,
                "back-matter": {"resources": [{
                    "uuid": programme,
                    "title": "The internal audit programme",
                    "description": "The audits planned in the ledger (`isms register audits`); \
                                    each result below is one of them or an external audit.",
                    "props": [ns_prop("ledger-origin", self.source.origin)],
                }]},
            }
        }))
    }

    /// The findings raised in one audit, internal or external.
    fn findings_of(&self, audit_id: &str) -> Vec<(&str, &Finding)> {
        self.state
            .findings
            .iter()
            .filter(|(_, f)| f.audit_id.0 == audit_id)
            .map(|(fid, f)| (fid.0.as_str(), f))
            .collect()
    }

    /// A finding and the observation it rests on.
    fn finding_and_observation(
        &self,
        fid: &str,
        finding: &Finding,
    ) -> Result<(Value, Value), OscalError> {
        let observation = self.uuid(&format!("observation/finding/{fid}"));
        let mut props = vec![
            ns_prop("finding-id", fid),
            ns_prop("grade", finding.grade.name()),
            ns_prop("area", &finding.area),
            ns_prop("auditee", &finding.auditee),
        ];
        // The raising entry, looked up once for the finding and its observation.
        let raised = self.entry_props(&finding.raised, None)?;
        props.extend(raised.iter().cloned());
        props.retain(|p| p["value"] != "");
        Ok((
            json!({
                "uuid": self.finding_uuid(fid),
                "title": format!("{fid} ({})", grade_words(finding.grade)),
                "description": finding.description,
                "props": props,
                "target": finding_target(finding),
                "related-observations": [{"observation-uuid": observation}],
            }),
            json!({
                "uuid": observation,
                "title": format!("{fid}: {}", finding.area),
                "description": finding.description,
                "props": raised,
                "methods": ["EXAMINE"],
                "types": ["finding"],
                "collected": rfc3339(finding.raised.effective_at)?,
            }),
        ))
    }

    fn internal_result(&self, id: &str, audit: &Audit) -> Result<Value, OscalError> {
        let findings = self.findings_of(id);
        let mut texts = vec![audit.scope.as_str()];
        texts.extend(audit.areas.iter().map(|a| a.area.as_str()));
        let mut controls: BTreeSet<ControlId> =
            texts.iter().flat_map(|t| controls_named(t)).collect();
        controls.extend(
            findings
                .iter()
                .flat_map(|(_, f)| f.controls.iter().copied()),
        );
        let clauses: BTreeSet<u8> = texts.iter().flat_map(|t| clauses_named(t)).collect();

        let mut props = vec![
            ns_prop("audit-id", id),
            ns_prop("audit-kind", "internal"),
            ns_prop("auditor", &audit.auditor),
            ns_prop(
                "status",
                if audit.completed.is_some() {
                    "completed"
                } else {
                    "planned"
                },
            ),
        ];
        for clause in &clauses {
            props.push(ns_prop("clause", &clause.to_string()));
        }
        // The planning entry: the result's and every area observation's.
        let planned = self.entry_props(&audit.planned, Some("planned"))?;
        props.extend(planned.iter().cloned());
        if let Some((_, done)) = &audit.completed {
            props.extend(self.entry_props(done, Some("completed"))?);
        }
        props.retain(|p| p["value"] != "");

        let mut observations = Vec::new();
        for (n, area) in audit.areas.iter().enumerate() {
            let mut description =
                format!("Area audited: {}. Auditee: {}.", area.area, area.auditee);
            if !area.evidence_requested.is_empty() {
                description.push_str(&format!(
                    " Evidence requested: {}.",
                    area.evidence_requested.join("; ")
                ));
            }
            let received: Vec<String> = audit
                .received
                .iter()
                .filter(|r| r.area == area.area)
                .map(|r| match r.reference.trim() {
                    "" => r.item.clone(),
                    reference => format!("{} ({reference})", r.item),
                })
                .collect();
            if !received.is_empty() {
                description.push_str(&format!(" Evidence received: {}.", received.join("; ")));
            }
            let mut props = vec![
                ns_prop("area", &area.area),
                ns_prop("auditee", &area.auditee),
            ];
            props.extend(planned.iter().cloned());
            props.retain(|p| p["value"] != "");
            observations.push(json!({
                "uuid": self.uuid(&format!("observation/{id}/area/{n}")),
                "title": format!("{id}: {}", area.area),
                "description": description,
                "props": props,
                "methods": ["EXAMINE", "INTERVIEW"],
                "types": ["control-objective"],
                "collected": rfc3339(audit.start)?,
            }));
        }
        let mut oscal_findings = Vec::new();
        for (fid, finding) in &findings {
            let (finding, observation) = self.finding_and_observation(fid, finding)?;
            oscal_findings.push(finding);
            observations.push(observation);
        }

        let mut result = Map::new();
        result.insert("uuid".into(), json!(self.uuid(&format!("result/{id}"))));
        result.insert("title".into(), json!(format!("Internal audit {id}")));
        result.insert(
            "description".into(),
            json!(format!("{} (auditor: {})", audit.scope, audit.auditor)),
        );
        result.insert("start".into(), json!(rfc3339(audit.start)?));
        if audit.completed.is_some() {
            result.insert("end".into(), json!(rfc3339(audit.end)?));
        }
        result.insert("props".into(), json!(props));
        result.insert("reviewed-controls".into(), reviewed_controls(&controls));
        if !observations.is_empty() {
            result.insert("observations".into(), json!(observations));
        }
        if !oscal_findings.is_empty() {
            result.insert("findings".into(), json!(oscal_findings));
        }
        if let Some((summary, _)) = &audit.completed {
            if !summary.trim().is_empty() {
                result.insert("remarks".into(), json!(summary));
            }
        }
        Ok(Value::Object(result))
    }

    fn external_result(&self, id: &str, audit: &ExternalAudit) -> Result<Value, OscalError> {
        let mut props = vec![
            ns_prop("audit-id", id),
            ns_prop("audit-kind", audit.kind.name()),
            ns_prop("certification-body", &audit.body),
            ns_prop(
                "major-nonconformities",
                &audit.major_nonconformities.to_string(),
            ),
            ns_prop(
                "minor-nonconformities",
                &audit.minor_nonconformities.to_string(),
            ),
            ns_prop("certified", if audit.certified { "yes" } else { "no" }),
        ];
        props.extend(self.entry_props(&audit.held, None)?);
        props.retain(|p| p["value"] != "");
        let mut result = json!({
            "uuid": self.uuid(&format!("result/external/{id}")),
            "title": format!("{} by {} ({id})", external_words(audit.kind), audit.body),
            "description": if audit.summary.trim().is_empty() {
                format!("{} held {} to {}.", external_words(audit.kind), audit.start, audit.end)
            } else {
                audit.summary.clone()
            },
            "start": rfc3339(audit.start)?,
            "end": rfc3339(audit.end)?,
            "props": props,
            "reviewed-controls": {"control-selections": [{"include-all": {}}]},
        });
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        for (fid, finding) in self.findings_of(id) {
            let (finding, observation) = self.finding_and_observation(fid, finding)?;
            findings.push(finding);
            observations.push(observation);
        }
        let stated =
            u64::from(audit.major_nonconformities) + u64::from(audit.minor_nonconformities);
        let recorded = findings
            .iter()
            .filter(|f| f["target"]["status"]["state"] == "not-satisfied")
            .count() as u64;
        if stated > recorded {
            result["remarks"] = json!(format!(
                "The certification body raised {} major and {} minor nonconformities; {} of \
                 them are recorded one by one in the ledger.",
                audit.major_nonconformities, audit.minor_nonconformities, recorded
            ));
        }
        if !observations.is_empty() {
            result["observations"] = json!(observations);
        }
        if !findings.is_empty() {
            result["findings"] = json!(findings);
        }
        Ok(result)
    }

    fn finding_uuid(&self, finding_id: &str) -> String {
        self.uuid(&format!("finding/{finding_id}"))
    }

    fn poam(&self) -> Result<Value, OscalError> {
        let registers = Registers {
            state: self.state,
            now: self.now,
        };
        let rows = registers.corrective_actions();
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        let mut risks = Vec::new();
        let mut items = Vec::new();
        let mut findings_listed = BTreeSet::new();
        for row in &rows {
            let Some(action) = self.state.actions.get(&row.action_id) else {
                continue;
            };
            let aid = &row.action_id.0;
            let fid = &action.finding_id.0;
            let finding = self.state.findings.get(&action.finding_id);
            if let Some(finding) = finding {
                if findings_listed.insert(fid.clone()) {
                    let (finding, observation) = self.finding_and_observation(fid, finding)?;
                    findings.push(finding);
                    observations.push(observation);
                }
            }
            let risk_uuid = self.uuid(&format!("risk/action/{aid}"));
            let mut props = vec![
                ns_prop("action-id", aid),
                ns_prop("action-status", action.status.name()),
                ns_prop("owner", &action.owner),
            ];
            if !row.overdue.is_empty() {
                props.push(ns_prop("overdue", &row.overdue.join(" ")));
            }
            props.extend(self.entry_props(&action.opened, Some("opened"))?);
            props.retain(|p| p["value"] != "");
            let mut risk = json!({
                "uuid": risk_uuid,
                "title": format!("Corrective action {aid} for finding {fid}"),
                "description": action.description,
                "statement": finding.map_or_else(
                    || format!("Finding {fid}."),
                    |f| f.description.clone()),
                "props": props.clone(),
                "status": risk_status(action),
            });
            if let Some(due) = row.action_due {
                risk["deadline"] = json!(rfc3339(due)?);
            }
            let log = self.risk_log(aid, action)?;
            if !log.is_empty() {
                risk["risk-log"] = json!({"entries": log});
            }
            risks.push(risk);
            let mut item = json!({
                "uuid": self.uuid(&format!("poam-item/{aid}")),
                "title": format!("{aid}: {}", action.description),
                "description": action.description,
                "props": props,
                "related-risks": [{"risk-uuid": risk_uuid}],
            });
            if finding.is_some() {
                item["related-findings"] = json!([{"finding-uuid": self.finding_uuid(fid)}]);
            }
            items.push(item);
        }
        if items.is_empty() {
            // OSCAL requires at least one item: say, as one, that there is no action.
            items.push(json!({
                "uuid": self.uuid("poam-item/none"),
                "title": "No corrective action recorded",
                "description": "The ledger holds no corrective action at this time.",
            }));
        }
        let mut poam = json!({
            "uuid": self.document_uuid(Model::Poam),
            "metadata": self.metadata("ISMS corrective actions (plan of action and milestones)")?,
            "system-id": {"identifier-type": "urn:isms-ledger:origin", "id": self.source.origin},
            "poam-items": items,
        });
        if !risks.is_empty() {
            poam["risks"] = json!(risks);
        }
        if !observations.is_empty() {
            poam["observations"] = json!(observations);
        }
        if !findings.is_empty() {
            poam["findings"] = json!(findings);
        }
        Ok(json!({"plan-of-action-and-milestones": poam}))
    }

    /// A corrective action's steps after it was opened: root cause, closure, verification,
    /// each with the entry that recorded it.
    fn risk_log(&self, aid: &str, action: &CorrectiveAction) -> Result<Vec<Value>, OscalError> {
        let mut steps: Vec<(&str, &str, String, &Meta)> = Vec::new();
        if let Some((cause, meta)) = &action.root_cause {
            steps.push(("root-cause", "Root cause recorded", cause.clone(), meta));
        }
        if let Some((how, meta)) = &action.closed {
            steps.push(("closed", "Action closed", how.clone(), meta));
        }
        if let Some((effective, note, meta)) = &action.verified {
            let title = if *effective {
                "Verified effective"
            } else {
                "Verified not effective (reopened)"
            };
            steps.push(("verified", title, note.clone(), meta));
        }
        steps
            .into_iter()
            .map(|(step, title, text, meta)| {
                let mut entry = json!({
                    "uuid": self.uuid(&format!("risk-log/{aid}/{step}")),
                    "title": title,
                    "start": rfc3339(meta.effective_at)?,
                    "props": self.entry_props(meta, Some(step))?,
                });
                if !text.trim().is_empty() {
                    entry["description"] = json!(text);
                }
                Ok(entry)
            })
            .collect()
    }
}

/// A prop in the ledger's namespace. OSCAL's string type allows no line breaks and no
/// leading or trailing space: runs of white space become one space.
fn ns_prop(name: &str, value: &str) -> Value {
    json!({"name": name, "ns": NS, "value": one_line(value)})
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Which control (or the ISMS as a whole) a finding is about, and whether it was met.
fn finding_target(finding: &Finding) -> Value {
    // A control the finding cites, else the clause its area names, else the ISMS as a whole.
    let target = match (
        finding.controls.first(),
        clauses_named(&finding.area).first(),
    ) {
        (Some(control), _) => control.to_string(),
        (None, Some(clause)) => format!("clause-{clause}"),
        (None, None) => "isms".to_string(),
    };
    let (state, reason) = match finding.grade {
        FindingGrade::MajorNonconformity | FindingGrade::MinorNonconformity => {
            ("not-satisfied", "fail")
        }
        FindingGrade::Observation | FindingGrade::PositiveFinding => ("satisfied", "pass"),
    };
    json!({
        "type": "objective-id",
        "target-id": target,
        "status": {"state": state, "reason": reason},
    })
}

fn reviewed_controls(controls: &BTreeSet<ControlId>) -> Value {
    if controls.is_empty() {
        return json!({"control-selections": [{"include-all": {}}]});
    }
    let include: Vec<Value> = controls
        .iter()
        .map(|c| json!({"control-id": c.to_string()}))
        .collect();
    json!({"control-selections": [{"include-controls": include}]})
}

/// A corrective action's state in OSCAL's risk vocabulary.
fn risk_status(action: &CorrectiveAction) -> &'static str {
    match action.status {
        ActionStatus::Open if action.root_cause.is_none() => "investigating",
        ActionStatus::Open | ActionStatus::Closed => "remediating",
        ActionStatus::Verified => "closed",
    }
}

fn grade_words(grade: FindingGrade) -> &'static str {
    match grade {
        FindingGrade::MajorNonconformity => "major nonconformity",
        FindingGrade::MinorNonconformity => "minor nonconformity",
        FindingGrade::Observation => "observation",
        FindingGrade::PositiveFinding => "positive finding",
    }
}

fn external_words(kind: ExternalAuditKind) -> &'static str {
    match kind {
        ExternalAuditKind::Stage1 => "Stage 1 certification audit",
        ExternalAuditKind::Stage2 => "Stage 2 certification audit",
        ExternalAuditKind::Surveillance => "Surveillance audit",
        ExternalAuditKind::Recertification => "Recertification audit",
    }
}

/// `2025-03-10T00:00:00Z`: the full date-time OSCAL requires, always with seconds and zone.
/// OSCAL's date-time type takes only the years 1900 to 2999: a later date (which the ledger
/// takes, up to 9999) is refused rather than written into an invalid document.
pub fn rfc3339(t: Timestamp) -> Result<String, OscalError> {
    let date = Timestamp(t.0.div_euclid(Timestamp::DAY) * Timestamp::DAY).to_string();
    if !date.starts_with('1') && !date.starts_with('2') {
        return Err(OscalError::DateOutOfRange(date));
    }
    let secs = t.0.rem_euclid(Timestamp::DAY) / 1_000_000;
    Ok(format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_time_is_written_in_full_with_its_zone() {
        let t = Timestamp::from_date(2025, 3, 10).0 + 3_723_000_000;
        assert_eq!(rfc3339(Timestamp(t)).unwrap(), "2025-03-10T01:02:03Z");
    }

    #[test]
    fn a_date_after_2999_is_refused_rather_than_written_invalid() {
        let err = rfc3339(Timestamp::from_date(3000, 1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3000-01-01: OSCAL date-times take the years 1900 to 2999 only"
        );
    }
}
