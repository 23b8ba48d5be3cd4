//! Imports the seed guide's YAML examples, unchanged, as domain events: the example risk
//! register (`risk_assessment.example_risk_register`), the SoA template (`soa_template`) and
//! the audit plan (`internal_audit.audit_plan_template`). Stated scores (`inherent_risk`,
//! `residual_risk`) are checked against likelihood x impact, as on the wire.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{catalog::ControlId, error::Error, model::*};

fn yaml_error(field: &str, e: impl std::fmt::Display) -> Error {
    Error::malformed(field, format!("not valid YAML for this document ({e})"))
}

#[derive(Deserialize)]
struct RiskDoc {
    risk_assessment: RiskAssessment,
}

#[derive(Deserialize)]
struct RiskAssessment {
    example_risk_register: Vec<RiskRow>,
}

/// One row of a risk register, from the guide's YAML or from a spreadsheet.
#[derive(Clone, Debug, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RiskRow {
    pub id: String,
    pub asset: String,
    pub threat: String,
    pub vulnerability: String,
    pub likelihood: u32,
    pub impact: u32,
    pub inherent_risk: Option<u32>,
    pub treatment: String,
    #[serde(default)]
    pub controls: Vec<String>,
    pub residual_likelihood: Option<u32>,
    pub residual_impact: Option<u32>,
    pub residual_risk: Option<u32>,
    pub risk_owner: String,
}

fn check_stated(field: String, stated: Option<u32>, l: Likelihood, i: Impact) -> Result<(), Error> {
    match stated {
        Some(s) if s != u32::from(Score::of(l, i).get()) => Err(Error::OutOfRange {
            field,
            rule: format!(
                "must equal likelihood x impact = {} x {} = {}",
                l.get(),
                i.get(),
                Score::of(l, i).get()
            ),
            got: i64::from(s),
        }),
        _ => Ok(()),
    }
}

/// The events that build the seed's example risk register: for each risk, identified,
/// assessed, treatment decided and (if residual scores are given) rescored.
pub fn risk_register_events(yaml: &str) -> Result<Vec<Event>, Error> {
    risk_events(risk_register_rows(yaml)?, &|n, f| {
        format!("example_risk_register[{n}].{f}")
    })
}

#[derive(Deserialize)]
struct RiskSection {
    example_risk_register: Vec<RiskRow>,
}

/// The rows of the guide's example risk register: inside `risk_assessment:` as the guide has
/// it, or the `example_risk_register:` section cut out on its own.
pub fn risk_register_rows(yaml: &str) -> Result<Vec<RiskRow>, Error> {
    let cut_out = serde_norway::from_str::<serde_norway::Value>(yaml)
        .is_ok_and(|v| v.get("example_risk_register").is_some());
    if cut_out {
        return serde_norway::from_str::<RiskSection>(yaml)
            .map(|section| section.example_risk_register)
            .map_err(|e| yaml_error("example_risk_register", e));
    }
    serde_norway::from_str::<RiskDoc>(yaml)
        .map(|doc| doc.risk_assessment.example_risk_register)
        .map_err(|e| yaml_error("risk_assessment", e))
}

/// The events of risk register rows (see [`risk_register_events`]); `at(n, field)` names
/// where row `n`'s field is in the source, for errors.
pub fn risk_events(
    rows: Vec<RiskRow>,
    at: &dyn Fn(usize, &str) -> String,
) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    for (n, row) in rows.into_iter().enumerate() {
        let at = |f: &str| at(n, f);
        let risk_id = RiskId::parse(&at("id"), &row.id)?;
        let likelihood = Likelihood::parse(&at("likelihood"), row.likelihood)?;
        let impact = Impact::parse(&at("impact"), row.impact)?;
        check_stated(at("inherent_risk"), row.inherent_risk, likelihood, impact)?;
        let treatment = Treatment::parse(&row.treatment).ok_or_else(|| {
            Error::malformed(
                at("treatment"),
                "must be mitigate, transfer, avoid or accept",
            )
        })?;
        let controls = row
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| match crate::iso2013::to_2022(c) {
                // A 2013 control names the 2022 controls it became.
                Some(became) => Ok(became),
                None => ControlId::parse(c)
                    .map(|id| vec![id])
                    .map_err(|p| Error::UnknownControl {
                        field: at(&format!("controls[{i}]")),
                        id: c.clone(),
                        explanation: p.explain(),
                    }),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .fold(Vec::new(), |mut all, id| {
                if !all.contains(&id) {
                    all.push(id);
                }
                all
            });
        events.push(Event::RiskIdentified {
            risk_id: risk_id.clone(),
            asset: row.asset,
            threat: row.threat,
            vulnerability: row.vulnerability,
            risk_owner: row.risk_owner,
        });
        events.push(Event::RiskAssessed {
            risk_id: risk_id.clone(),
            likelihood,
            impact,
        });
        events.push(Event::RiskTreatmentDecided {
            risk_id: risk_id.clone(),
            treatment,
            controls,
            plan: String::new(),
        });
        if let (Some(rl), Some(ri)) = (row.residual_likelihood, row.residual_impact) {
            let likelihood = Likelihood::parse(&at("residual_likelihood"), rl)?;
            let impact = Impact::parse(&at("residual_impact"), ri)?;
            check_stated(at("residual_risk"), row.residual_risk, likelihood, impact)?;
            events.push(Event::RiskRescored {
                risk_id,
                likelihood,
                impact,
                reason: "residual risk after treatment".into(),
            });
        }
    }
    Ok(events)
}

#[derive(Deserialize)]
struct SoaDoc {
    soa_template: BTreeMap<String, BTreeMap<String, SoaRow>>,
}

#[derive(Deserialize)]
struct SoaRow {
    #[serde(default)]
    applicable: bool,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    exclusion_justification: String,
    #[serde(default)]
    implementation: String,
}

/// One `control_applicability_set` per control of the seed's SoA template, in control order.
pub fn soa_events(yaml: &str) -> Result<Vec<Event>, Error> {
    soa_events_converting(yaml).map(|(events, _)| events)
}

/// The 2022 rows several 2013 rows became.
#[derive(Default)]
struct Merged {
    from: Vec<String>,
    applicable: bool,
    justifications: Vec<String>,
    exclusions: Vec<String>,
    implementations: Vec<String>,
}

/// As [`soa_events`]; a SoA written against ISO 27001:2013 (`A.12.6.1`) is converted to the
/// 2022 controls (see [`crate::iso2013`]) and the report says what was merged and which new
/// controls it leaves undecided. A control of 2022 that several 2013 controls became is
/// applicable if any of them was, with their justifications and implementations joined and
/// each named by its 2013 id; a row already written with the 2022 id wins over converted ones.
pub fn soa_events_converting(
    yaml: &str,
) -> Result<(Vec<Event>, Option<crate::iso2013::ConversionReport>), Error> {
    let doc: SoaDoc = serde_norway::from_str(yaml).map_err(|e| yaml_error("soa_template", e))?;
    let mut rows = Vec::new();
    let mut merged: BTreeMap<ControlId, Merged> = BTreeMap::new();
    let mut converted = 0;
    for (section, controls) in doc.soa_template {
        for (id, row) in controls {
            if crate::iso2013::is_2013_id(&id) {
                let targets =
                    crate::iso2013::to_2022(&id).ok_or_else(|| Error::UnknownControl {
                        field: format!("soa_template.{section}"),
                        id: id.clone(),
                        explanation: "not a control of ISO 27001:2013 Annex A (A.5.1.1 to \
                                      A.18.2.3)"
                            .into(),
                    })?;
                converted += 1;
                let old = id.split_whitespace().next().unwrap_or("").to_string();
                for target in targets {
                    let m = merged.entry(target).or_default();
                    m.from.push(old.clone());
                    m.applicable |= row.applicable;
                    let note = |text: &str| (!text.is_empty()).then(|| format!("{old}: {text}"));
                    if row.applicable {
                        m.justifications.extend(note(&row.justification));
                    } else {
                        m.exclusions.extend(note(&row.exclusion_justification));
                    }
                    if !row.implementation.is_empty()
                        && !m.implementations.contains(&row.implementation)
                    {
                        m.implementations.push(row.implementation.clone());
                    }
                }
                continue;
            }
            let control_id = ControlId::parse(&id).map_err(|p| Error::UnknownControl {
                field: format!("soa_template.{section}"),
                id: id.clone(),
                explanation: p.explain(),
            })?;
            let justification = if row.applicable {
                row.justification
            } else {
                row.exclusion_justification
            };
            rows.push(Event::ControlApplicabilitySet {
                control_id,
                applicable: row.applicable,
                justification,
                implementation: row.implementation,
                owner: String::new(),
            });
        }
    }
    let written = |c: &ControlId| {
        rows.iter().any(
            |e| matches!(e, Event::ControlApplicabilitySet { control_id, .. } if control_id == c),
        )
    };
    let report = (converted > 0).then(|| crate::iso2013::ConversionReport {
        converted,
        merged: merged.iter().map(|(to, m)| (*to, m.from.clone())).collect(),
        new_in_2022: crate::iso2013::NEW_IN_2022
            .iter()
            .filter_map(|id| ControlId::parse(id).ok())
            .filter(|c| !merged.contains_key(c) && !written(c))
            .collect(),
    });
    let converted_rows: Vec<Event> = merged
        .into_iter()
        .filter(|(to, _)| !written(to))
        .map(|(control_id, m)| Event::ControlApplicabilitySet {
            control_id,
            applicable: m.applicable,
            justification: if m.applicable {
                m.justifications.join("; ")
            } else {
                m.exclusions.join("; ")
            },
            implementation: m.implementations.join("; "),
            owner: String::new(),
        })
        .collect();
    rows.extend(converted_rows);
    rows.sort_by_key(|e| match e {
        Event::ControlApplicabilitySet { control_id, .. } => Some(*control_id),
        _ => None,
    });
    Ok((rows, report))
}

#[derive(Deserialize)]
struct AuditDoc {
    internal_audit: InternalAudit,
}

#[derive(Deserialize)]
struct InternalAudit {
    audit_plan_template: AuditPlan,
}

#[derive(Deserialize)]
struct AuditPlan {
    audit_id: String,
    scope: String,
    auditor: String,
    audit_dates: String,
    #[serde(default)]
    areas: Vec<AuditAreaYaml>,
}

#[derive(Deserialize)]
struct AuditAreaYaml {
    area: String,
    #[serde(default)]
    auditee: String,
    #[serde(default)]
    evidence_requested: Vec<String>,
}

/// The seed's audit plan template as an `audit_planned` event. `audit_dates` is
/// `"2025-03-10 to 2025-03-14"`.
pub fn audit_plan_event(yaml: &str) -> Result<Event, Error> {
    let doc: AuditDoc =
        serde_norway::from_str(yaml).map_err(|e| yaml_error("internal_audit", e))?;
    let plan = doc.internal_audit.audit_plan_template;
    let field = "audit_plan_template.audit_dates";
    let (start, end) = plan
        .audit_dates
        .split_once(" to ")
        .and_then(|(a, b)| Some((Timestamp::parse_date(a)?, Timestamp::parse_date(b)?)))
        .ok_or_else(|| Error::malformed(field, "must be \"YYYY-MM-DD to YYYY-MM-DD\""))?;
    if end < start {
        return Err(Error::malformed(
            field,
            "the end date is before the start date",
        ));
    }
    Ok(Event::AuditPlanned {
        audit_id: AuditId::parse("audit_plan_template.audit_id", &plan.audit_id)?,
        scope: plan.scope,
        auditor: plan.auditor,
        start,
        end,
        areas: plan
            .areas
            .into_iter()
            .map(|a| AuditArea {
                area: a.area,
                auditee: a.auditee,
                evidence_requested: a.evidence_requested,
            })
            .collect(),
    })
}
