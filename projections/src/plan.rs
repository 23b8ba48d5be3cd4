//! `isms apply`'s planner: the events that bring the registers from the state the ledger holds
//! to the state a set of files describes.
//!
//! The files are read by the same intake as `isms submit` (each row becomes the events that
//! would create it); the planner walks those events in order against a copy of the current
//! state and keeps only the ones that change something, field by field: a new risk is
//! identified, assessed and treated; a risk whose scores changed is reassessed or rescored; a
//! changed asset, threat, vulnerability or owner is recorded as `risk_details_changed`; an SoA
//! row is set again only when one of its fields differs; a corrective action moves only
//! forward through its lifecycle. Applying the same files twice plans nothing.

use std::collections::BTreeSet;

use crate::model::{Event, RiskId, Timestamp};
use crate::state::{apply, ActionStatus, Meta, RiskStatus, State};

/// One field that an event changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's name, as the register shows it.
    pub field: &'static str,
    /// Its value now ("—" when unset).
    pub from: String,
    /// Its value after the event.
    pub to: String,
}

/// One planned event, with what it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The event to append.
    pub event: Event,
    /// When it takes effect, if the file says (else the caller's default).
    pub effective: Option<i64>,
    /// The version of its entity before it (0 when the entity is new; `None` for events that
    /// target no versioned entity): sent as the event's expected version, so that a change
    /// made by someone else between plan and append refuses the whole plan, and part of the
    /// event id, which makes it unique and repeatable.
    pub base_version: Option<u64>,
    /// The fields it changes (empty for an event that only creates or moves a lifecycle).
    pub fields: Vec<FieldChange>,
}

/// A row of the files that the plan leaves as it is, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The entity.
    pub entity: String,
    /// Why nothing is planned for it although the file differs.
    pub why: String,
}

/// What applying the files would append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The events, in the order they must be appended.
    pub changes: Vec<Change>,
    /// Rows that differ from the ledger but that the plan cannot change (a raised finding is
    /// never edited; a closed risk is not reopened).
    pub kept: Vec<Kept>,
}

const UNSET: &str = "—";

fn differs(fields: &mut Vec<FieldChange>, field: &'static str, from: String, to: String) {
    if from != to {
        fields.push(FieldChange { field, from, to });
    }
}

fn score(l: crate::model::Likelihood, i: crate::model::Impact) -> String {
    format!("{}x{}", l.get(), i.get())
}

fn opt_score(s: Option<(crate::model::Likelihood, crate::model::Impact)>) -> String {
    s.map_or(UNSET.to_string(), |(l, i)| score(l, i))
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return UNSET.to_string();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan for `desired` (events from the intake, each with its own effective time if the
/// file gives one) against `current`. With `prune`, every open risk that no
/// `risk_identified` of the files names is closed (never deleted) — only when the files hold
/// a risk register at all.
pub fn plan(current: &State, desired: Vec<(Event, Option<i64>)>, prune: bool) -> Plan {
    let mut state = current.clone();
    let mut out = Plan::default();
    let mut named_risks: BTreeSet<RiskId> = BTreeSet::new();
    let mut has_risks = false;
    for (event, effective) in desired {
        if let Event::RiskIdentified { risk_id, .. } = &event {
            has_risks = true;
            named_risks.insert(risk_id.clone());
        }
        let (events, kept) = changes_for(&state, event);
        if let Some(kept) = kept {
            out.kept.push(kept);
        }
        for (event, fields) in events {
            let base_version = state.version_of(&event).map(|(_, v)| v);
            let meta = planned_meta(&state);
            apply(&mut state, meta, &event);
            out.changes.push(Change {
                event,
                effective,
                base_version,
                fields,
            });
        }
    }
    if prune && has_risks {
        let gone: Vec<RiskId> = state
            .risks
            .iter()
            .filter(|(id, r)| r.status != RiskStatus::Closed && !named_risks.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for risk_id in gone {
            let event = Event::RiskClosed {
                risk_id,
                reason: "no longer in the applied register (isms apply --prune)".into(),
            };
            let base_version = state.version_of(&event).map(|(_, v)| v);
            let meta = planned_meta(&state);
            apply(&mut state, meta, &event);
            out.changes.push(Change {
                event,
                effective: None,
                base_version,
                fields: vec![FieldChange {
                    field: "status",
                    from: "open".into(),
                    to: "closed".into(),
                }],
            });
        }
    }
    out
}

/// A placeholder position for a planned event: the plan's own state needs one to apply it.
fn planned_meta(state: &State) -> Meta {
    Meta {
        seq: state.applied,
        recorded_at: Timestamp(0),
        effective_at: Timestamp(0),
        subject: crate::model::Subject("isms apply".into()),
    }
}

type Planned = Vec<(Event, Vec<FieldChange>)>;

/// The events (zero or one, with the fields each changes) that make `state` hold what `event`
/// states, and a note when the file differs but nothing may be planned.
fn changes_for(state: &State, event: Event) -> (Planned, Option<Kept>) {
    use Event as E;
    let one = |event: Event, fields: Vec<FieldChange>| (vec![(event, fields)], None);
    let none = || (Vec::new(), None);
    match event {
        E::RiskIdentified {
            risk_id,
            asset,
            threat,
            vulnerability,
            risk_owner,
        } => match state.risks.get(&risk_id) {
            None => one(
                E::RiskIdentified {
                    risk_id,
                    asset,
                    threat,
                    vulnerability,
                    risk_owner,
                },
                Vec::new(),
            ),
            Some(r) => {
                let mut fields = Vec::new();
                differs(&mut fields, "asset", r.asset.clone(), asset.clone());
                differs(&mut fields, "threat", r.threat.clone(), threat.clone());
                differs(
                    &mut fields,
                    "vulnerability",
                    r.vulnerability.clone(),
                    vulnerability.clone(),
                );
                differs(&mut fields, "owner", r.owner.clone(), risk_owner.clone());
                if fields.is_empty() {
                    return none();
                }
                if r.status == RiskStatus::Closed {
                    return (
                        Vec::new(),
                        Some(Kept {
                            entity: risk_id.to_string(),
                            why: "the risk is closed; a closed risk is not reopened".into(),
                        }),
                    );
                }
                one(
                    E::RiskDetailsChanged {
                        risk_id,
                        asset,
                        threat,
                        vulnerability,
                        risk_owner,
                        reason: "applied from the register file".into(),
                    },
                    fields,
                )
            }
        },
        E::RiskAssessed {
            risk_id,
            likelihood,
            impact,
        } => {
            let from = state.risks.get(&risk_id).and_then(|r| r.inherent);
            if from == Some((likelihood, impact)) || closed(state, &risk_id) {
                return none();
            }
            let fields = vec![FieldChange {
                field: "inherent",
                from: opt_score(from),
                to: score(likelihood, impact),
            }];
            one(
                E::RiskAssessed {
                    risk_id,
                    likelihood,
                    impact,
                },
                fields,
            )
        }
        E::RiskRescored {
            risk_id,
            likelihood,
            impact,
            reason,
        } => {
            let from = state.risks.get(&risk_id).and_then(|r| r.residual);
            if from == Some((likelihood, impact)) || closed(state, &risk_id) {
                return none();
            }
            let fields = vec![FieldChange {
                field: "residual",
                from: opt_score(from),
                to: score(likelihood, impact),
            }];
            one(
                E::RiskRescored {
                    risk_id,
                    likelihood,
                    impact,
                    reason,
                },
                fields,
            )
        }
        E::RiskTreatmentDecided {
            risk_id,
            treatment,
            controls,
            plan,
        } => {
            let Some(r) = state.risks.get(&risk_id) else {
                return one(
                    E::RiskTreatmentDecided {
                        risk_id,
                        treatment,
                        controls,
                        plan,
                    },
                    Vec::new(),
                );
            };
            if r.status == RiskStatus::Closed {
                return none();
            }
            let mut fields = Vec::new();
            differs(
                &mut fields,
                "treatment",
                r.treatment.map_or(UNSET.into(), |t| t.name().to_string()),
                treatment.name().to_string(),
            );
            differs(&mut fields, "controls", list(&r.controls), list(&controls));
            differs(&mut fields, "plan", r.plan.clone(), plan.clone());
            if fields.is_empty() {
                return none();
            }
            one(
                E::RiskTreatmentDecided {
                    risk_id,
                    treatment,
                    controls,
                    plan,
                },
                fields,
            )
        }
        E::ControlApplicabilitySet {
            control_id,
            applicable,
            justification,
            implementation,
            owner,
        } => {
            let row = state.soa.get(&control_id);
            let mut fields = Vec::new();
            let yes_no = |b: Option<bool>| match b {
                None => UNSET.to_string(),
                Some(true) => "applicable".into(),
                Some(false) => "excluded".into(),
            };
            differs(
                &mut fields,
                "applicable",
                yes_no(row.and_then(|r| r.applicable)),
                yes_no(Some(applicable)),
            );
            let text = |f: fn(&crate::state::SoaEntry) -> &String| {
                row.map_or(String::new(), |r| f(r).clone())
            };
            differs(
                &mut fields,
                "justification",
                text(|r| &r.justification),
                justification.clone(),
            );
            differs(
                &mut fields,
                "implementation",
                text(|r| &r.implementation),
                implementation.clone(),
            );
            differs(&mut fields, "owner", text(|r| &r.owner), owner.clone());
            if fields.is_empty() {
                return none();
            }
            one(
                E::ControlApplicabilitySet {
                    control_id,
                    applicable,
                    justification,
                    implementation,
                    owner,
                },
                fields,
            )
        }
        E::FindingRaised {
            finding_id,
            audit_id,
            grade,
            area,
            description,
            controls,
            auditee,
        } => match state.findings.get(&finding_id) {
            None => one(
                E::FindingRaised {
                    finding_id,
                    audit_id,
                    grade,
                    area,
                    description,
                    controls,
                    auditee,
                },
                Vec::new(),
            ),
            Some(f)
                if f.audit_id == audit_id
                    && f.grade == grade
                    && f.area == area
                    && f.description == description
                    && f.controls == controls
                    && f.auditee == auditee =>
            {
                none()
            }
            Some(_) => (
                Vec::new(),
                Some(Kept {
                    entity: finding_id.to_string(),
                    why: "the file differs from the raised finding; a finding is never edited \
                          (raise a new one)"
                        .into(),
                }),
            ),
        },
        E::CorrectiveActionOpened {
            action_id,
            finding_id,
            description,
            owner,
        } => match state.actions.get(&action_id) {
            None => one(
                E::CorrectiveActionOpened {
                    action_id,
                    finding_id,
                    description,
                    owner,
                },
                Vec::new(),
            ),
            Some(_) => none(),
        },
        E::RootCauseRecorded {
            action_id,
            root_cause,
        } => {
            let Some(a) = state.actions.get(&action_id) else {
                return one(
                    E::RootCauseRecorded {
                        action_id,
                        root_cause,
                    },
                    Vec::new(),
                );
            };
            let from = a.root_cause.as_ref().map(|(c, _)| c.clone());
            if from.as_deref() == Some(root_cause.as_str()) || a.status != ActionStatus::Open {
                return none();
            }
            let fields = vec![FieldChange {
                field: "root_cause",
                from: from.unwrap_or_else(|| UNSET.into()),
                to: root_cause.clone(),
            }];
            one(
                E::RootCauseRecorded {
                    action_id,
                    root_cause,
                },
                fields,
            )
        }
        E::CorrectiveActionClosed {
            action_id,
            resolution,
        } => match state.actions.get(&action_id) {
            Some(a) if a.status != ActionStatus::Open => none(),
            _ => one(
                E::CorrectiveActionClosed {
                    action_id,
                    resolution: resolution.clone(),
                },
                vec![FieldChange {
                    field: "status",
                    from: "open".into(),
                    to: "closed".into(),
                }],
            ),
        },
        E::CorrectiveActionVerified {
            action_id,
            effective,
            note,
        } => match state.actions.get(&action_id) {
            Some(a) if a.verified.is_some() || a.status != ActionStatus::Closed => none(),
            _ => one(
                E::CorrectiveActionVerified {
                    action_id,
                    effective,
                    note,
                },
                vec![FieldChange {
                    field: "status",
                    from: "closed".into(),
                    to: if effective { "verified" } else { "reopened" }.into(),
                }],
            ),
        },
        E::AuditPlanned {
            audit_id,
            scope,
            auditor,
            start,
            end,
            areas,
        } => match state.audits.get(&audit_id) {
            Some(a)
                if a.completed.is_some()
                    || (a.scope == scope
                        && a.auditor == auditor
                        && a.start == start
                        && a.end == end
                        && a.areas == areas) =>
            {
                none()
            }
            _ => one(
                E::AuditPlanned {
                    audit_id,
                    scope,
                    auditor,
                    start,
                    end,
                    areas,
                },
                Vec::new(),
            ),
        },
        E::RiskAccepted {
            risk_id,
            justification,
        } => match state.risks.get(&risk_id) {
            Some(r) if r.acceptance.is_some() || r.status == RiskStatus::Closed => none(),
            _ => one(
                E::RiskAccepted {
                    risk_id,
                    justification,
                },
                Vec::new(),
            ),
        },
        E::AuditCompleted { audit_id, summary } => match state.audits.get(&audit_id) {
            Some(a) if a.completed.is_some() => none(),
            _ => one(E::AuditCompleted { audit_id, summary }, Vec::new()),
        },
        E::ControlApproved {
            control_ids,
            soa_version,
        } => {
            let approved = |row: &crate::state::SoaEntry| {
                row.approval
                    .as_ref()
                    .is_some_and(|(version, _)| *version == soa_version)
            };
            let done = if control_ids.is_empty() {
                !state.soa.is_empty() && state.soa.values().all(approved)
            } else {
                control_ids
                    .iter()
                    .all(|c| state.soa.get(c).is_some_and(approved))
            };
            if done {
                return none();
            }
            one(
                E::ControlApproved {
                    control_ids,
                    soa_version,
                },
                Vec::new(),
            )
        }
        other => one(other, Vec::new()),
    }
}

fn closed(state: &State, risk_id: &RiskId) -> bool {
    state
        .risks
        .get(risk_id)
        .is_some_and(|r| r.status == RiskStatus::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    const RISKS: &str = include_str!("../../fixtures/seed/risk_assessment.yaml");
    const SOA: &str = include_str!("../../fixtures/seed/soa_template.yaml");

    fn desired(text: &str) -> Vec<(Event, Option<i64>)> {
        seed::risk_register_events(text)
            .or_else(|_| seed::soa_events(text))
            .expect("a seed file")
            .into_iter()
            .map(|e| (e, None))
            .collect()
    }

    /// The state after applying every change of `plan` to `state`.
    fn after(state: &State, plan: &Plan) -> State {
        let mut state = state.clone();
        for c in &plan.changes {
            let meta = planned_meta(&state);
            apply(&mut state, meta, &c.event);
        }
        state
    }

    #[test]
    fn a_new_register_plans_every_event_the_intake_makes() {
        let plan = plan(&State::default(), desired(RISKS), false);
        assert_eq!(plan.changes.len(), desired(RISKS).len());
    }

    #[test]
    fn applying_the_same_register_twice_plans_nothing() {
        let first = plan(&State::default(), desired(RISKS), false);
        let state = after(&State::default(), &first);
        assert_eq!(plan(&state, desired(RISKS), false), Plan::default());
        let soa = after(&state, &plan(&state, desired(SOA), false));
        assert!(plan(&soa, desired(SOA), false).changes.is_empty());
    }

    #[test]
    fn a_changed_residual_score_plans_exactly_one_rescoring() {
        let state = after(
            &State::default(),
            &plan(&State::default(), desired(RISKS), false),
        );
        let mut edited = desired(RISKS);
        let Some((Event::RiskRescored { likelihood, .. }, _)) = edited
            .iter_mut()
            .find(|(e, _)| matches!(e, Event::RiskRescored { .. }))
        else {
            panic!("the seed register rescores a risk");
        };
        let new = if likelihood.get() == 1 { 2 } else { 1 };
        *likelihood = crate::model::Likelihood::parse("l", new).expect("1..=5");
        let plan = plan(&state, edited, false);
        assert_eq!(plan.changes.len(), 1, "{plan:?}");
        assert!(matches!(plan.changes[0].event, Event::RiskRescored { .. }));
        assert_eq!(plan.changes[0].fields[0].field, "residual");
    }

    #[test]
    fn a_changed_owner_is_recorded_as_changed_details() {
        let state = after(
            &State::default(),
            &plan(&State::default(), desired(RISKS), false),
        );
        let mut edited = desired(RISKS);
        if let (Event::RiskIdentified { risk_owner, .. }, _) = &mut edited[0] {
            *risk_owner = "Head of Platform".into();
        }
        let plan = plan(&state, edited, false);
        assert_eq!(plan.changes.len(), 1, "{plan:?}");
        assert!(matches!(
            plan.changes[0].event,
            Event::RiskDetailsChanged { .. }
        ));
        assert_eq!(plan.changes[0].fields[0].to, "Head of Platform");
    }

    #[test]
    fn rows_missing_from_the_file_are_closed_only_with_prune() {
        let state = after(
            &State::default(),
            &plan(&State::default(), desired(RISKS), false),
        );
        let without_first: Vec<_> = desired(RISKS)
            .into_iter()
            .filter(|(e, _)| {
                let id = match e {
                    Event::RiskIdentified { risk_id, .. }
                    | Event::RiskAssessed { risk_id, .. }
                    | Event::RiskRescored { risk_id, .. }
                    | Event::RiskTreatmentDecided { risk_id, .. } => risk_id.to_string(),
                    _ => String::new(),
                };
                id != "RISK-001"
            })
            .collect();
        assert!(plan(&state, without_first.clone(), false)
            .changes
            .is_empty());
        let pruned = plan(&state, without_first, true);
        assert_eq!(pruned.changes.len(), 1);
        assert!(matches!(
            &pruned.changes[0].event,
            Event::RiskClosed { risk_id, .. } if risk_id.to_string() == "RISK-001"
        ));
    }
}
