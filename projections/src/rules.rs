//! Deciding: the rules an event must pass before it is accepted, checked against the current
//! state. `validate` never changes anything, so a refused event leaves nothing behind. Shape
//! rules (ranges, catalog ids) are enforced earlier, while decoding (`wire`).

use crate::{
    error::Error,
    model::*,
    state::{ActionStatus, RiskStatus, State},
};

/// Who is appending: the key's subject and roles (from the ledger's key record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitter {
    /// The person or system holding the key.
    pub subject: Subject,
    /// The key's roles.
    pub roles: Vec<Role>,
}

/// How far in the future `effective_at` and `collected_at` may lie (clock skew).
pub const MAX_FUTURE_SKEW_US: i64 = 5 * 60 * 1_000_000;

/// Every time an event carries lies in [`Timestamp::EARLIEST`] ..= [`Timestamp::LATEST`]: a
/// date of -2^63 µs (year -290308) is a client's bug, not a fact about an ISMS.
fn check_time_window(envelope: &Envelope) -> Result<(), Error> {
    let mut times = vec![("effective_at_us", envelope.effective_at)];
    match &envelope.event {
        Event::EvidenceSubmitted { collected_at, .. } => {
            times.push(("evidence_submitted.collected_at_us", *collected_at));
        }
        Event::AuditPlanned { start, end, .. } => {
            times.push(("audit_planned.start_us", *start));
            times.push(("audit_planned.end_us", *end));
        }
        _ => {}
    }
    match times.into_iter().find(|(_, t)| !t.in_window()) {
        Some((field, t)) => Err(Error::OutOfRange {
            field: field.into(),
            rule: format!("must lie from {} in unix microseconds", Timestamp::WINDOW),
            got: t.0,
        }),
        None => Ok(()),
    }
}

/// Checks every rule for `envelope` appended by `who` at `recorded_at`, given `state`.
pub fn validate(
    state: &State,
    who: &Submitter,
    recorded_at: Timestamp,
    envelope: &Envelope,
) -> Result<(), Error> {
    let event = &envelope.event;
    let kind = event.kind();
    check_role(kind, who)?;
    check_time_window(envelope)?;
    if envelope.effective_at.0 > recorded_at.0 + MAX_FUTURE_SKEW_US {
        return Err(Error::OutOfRange {
            field: "effective_at_us".into(),
            rule: format!("must not lie in the future (recorded at {recorded_at})"),
            got: envelope.effective_at.0,
        });
    }
    if let Some(expected) = envelope.expected_version {
        match state.version_of(event) {
            Some((entity, found)) if found != expected => {
                return Err(Error::VersionMismatch {
                    entity,
                    expected,
                    found,
                })
            }
            Some(_) => {}
            None => {
                return Err(Error::malformed(
                    "expected_version",
                    format!("{} events target no versioned entity", kind.name()),
                ))
            }
        }
    }
    check_event(state, who, recorded_at, event)
}

fn check_role(kind: EventKind, who: &Submitter) -> Result<(), Error> {
    let allowed = kind.allowed_roles();
    if who.roles.iter().any(|r| allowed.contains(r)) {
        return Ok(());
    }
    let names = |roles: &[Role]| roles.iter().map(|r| r.name()).collect::<Vec<_>>();
    Err(Error::RoleNotAllowed {
        kind: kind.name(),
        allowed: names(allowed).join(" or "),
        subject: who.subject.0.clone(),
        held: names(&who.roles).join(", "),
    })
}

fn transition(field: &str, action: &'static str, entity: String, rule: impl Into<String>) -> Error {
    Error::InvalidTransition {
        field: field.to_owned(),
        action,
        entity,
        rule: rule.into(),
    }
}

/// The risk an event names, refusing missing and closed risks.
fn open_risk<'s>(
    state: &'s State,
    field: &str,
    action: &'static str,
    id: &RiskId,
) -> Result<&'s crate::state::Risk, Error> {
    let entity = format!("risk {id}");
    let risk = state
        .risks
        .get(id)
        .ok_or_else(|| transition(field, action, entity.clone(), "it was never identified"))?;
    if risk.status == RiskStatus::Closed {
        return Err(transition(field, action, entity, "it is closed"));
    }
    Ok(risk)
}

fn check_event(
    state: &State,
    who: &Submitter,
    recorded_at: Timestamp,
    event: &Event,
) -> Result<(), Error> {
    use Event as E;
    match event {
        E::RiskIdentified { risk_id, .. } => {
            if state.risks.contains_key(risk_id) {
                return Err(transition(
                    "risk_identified.risk_id",
                    "identify",
                    format!("risk {risk_id}"),
                    "it already exists (use risk_assessed or risk_rescored to change it)",
                ));
            }
        }
        E::RiskAssessed { risk_id, .. } => {
            open_risk(state, "risk_assessed.risk_id", "assess", risk_id)?;
        }
        E::RiskRescored { risk_id, .. } => {
            let risk = open_risk(state, "risk_rescored.risk_id", "rescore", risk_id)?;
            if risk.inherent.is_none() {
                return Err(transition(
                    "risk_rescored.risk_id",
                    "rescore",
                    format!("risk {risk_id}"),
                    "it has no inherent assessment yet (risk_assessed comes first)",
                ));
            }
        }
        E::RiskTreatmentDecided {
            risk_id,
            treatment,
            controls,
            plan,
        } => {
            let risk = open_risk(state, "risk_treatment_decided.risk_id", "treat", risk_id)?;
            if risk.inherent.is_none() {
                return Err(transition(
                    "risk_treatment_decided.risk_id",
                    "treat",
                    format!("risk {risk_id}"),
                    "it has not been assessed yet",
                ));
            }
            if *treatment == Treatment::Mitigate && controls.is_empty() {
                return Err(Error::missing(
                    "risk_treatment_decided.controls",
                    "mitigating a risk names at least one Annex A control",
                ));
            }
            // "Accept with documented management approval": in the escalate band the decision
            // states why, and management's risk_accepted still has to follow.
            if let (Treatment::Accept, Some(score)) = (treatment, risk.current_score()) {
                if score.band() == Band::Escalate && plan.trim().is_empty() {
                    return Err(Error::missing(
                        "risk_treatment_decided.plan",
                        format!(
                            "accepting risk {risk_id}, scored {} (escalate band, above the \
                             appetite of 1-4), needs a justification; management then records \
                             its acceptance (isms risk accept)",
                            score.get()
                        ),
                    ));
                }
            }
        }
        E::RiskAccepted {
            risk_id,
            justification,
        } => {
            let risk = open_risk(state, "risk_accepted.risk_id", "accept", risk_id)?;
            let Some(score) = risk.current_score() else {
                return Err(transition(
                    "risk_accepted.risk_id",
                    "accept",
                    format!("risk {risk_id}"),
                    "it has not been assessed yet",
                ));
            };
            if score.band() != Band::Accept && justification.is_empty() {
                return Err(Error::missing(
                    "risk_accepted.justification",
                    format!(
                        "risk {risk_id} scores {} (band {}), above the appetite (accept 1-4)",
                        score.get(),
                        score.band().name()
                    ),
                ));
            }
        }
        E::RiskClosed { risk_id, .. } => {
            open_risk(state, "risk_closed.risk_id", "close", risk_id)?;
        }
        E::RiskDetailsChanged { risk_id, .. } => {
            open_risk(
                state,
                "risk_details_changed.risk_id",
                "change the details of",
                risk_id,
            )?;
        }
        E::ControlApplicabilitySet {
            control_id,
            applicable,
            justification,
            ..
        } => {
            if !applicable && justification.is_empty() {
                return Err(Error::missing(
                    "control_applicability_set.exclusion_justification",
                    format!("excluding {control_id} from the SoA needs a justification"),
                ));
            }
        }
        E::ControlApproved { control_ids, .. } => {
            if control_ids.is_empty() && state.soa.is_empty() {
                return Err(transition(
                    "control_approved.control_ids",
                    "approve",
                    "the SoA".into(),
                    "no control has been assessed yet",
                ));
            }
            for (i, id) in control_ids.iter().enumerate() {
                let assessed = state.soa.get(id).is_some_and(|r| r.applicable.is_some());
                if !assessed {
                    return Err(transition(
                        &format!("control_approved.control_ids[{i}]"),
                        "approve",
                        format!("control {id}"),
                        "its applicability was never set",
                    ));
                }
            }
        }
        E::ImplementationStatusChanged { control_id, .. } => {
            let applicable = state.soa.get(control_id).and_then(|r| r.applicable);
            if applicable != Some(true) {
                let why = match applicable {
                    Some(false) => "it is excluded from the SoA",
                    _ => "its applicability was never set",
                };
                return Err(transition(
                    "implementation_status_changed.control_id",
                    "change the implementation status of",
                    format!("control {control_id}"),
                    why,
                ));
            }
        }
        E::EvidenceSubmitted { collected_at, .. } => {
            if collected_at.0 > recorded_at.0 + MAX_FUTURE_SKEW_US {
                return Err(Error::OutOfRange {
                    field: "evidence_submitted.collected_at_us".into(),
                    rule: format!("must not lie in the future (recorded at {recorded_at})"),
                    got: collected_at.0,
                });
            }
        }
        E::AuditPlanned { audit_id, .. } => {
            if state
                .audits
                .get(audit_id)
                .is_some_and(|a| a.completed.is_some())
            {
                return Err(transition(
                    "audit_planned.audit_id",
                    "re-plan",
                    format!("audit {audit_id}"),
                    "it is completed",
                ));
            }
            if state.external_audits.contains_key(audit_id) {
                return Err(transition(
                    "audit_planned.audit_id",
                    "plan",
                    format!("audit {audit_id}"),
                    "an external audit has that id",
                ));
            }
        }
        E::AuditEvidenceReceived {
            audit_id,
            area,
            item,
            ..
        } => {
            let audit = state.audits.get(audit_id).ok_or_else(|| {
                transition(
                    "audit_evidence_received.audit_id",
                    "receive evidence for",
                    format!("audit {audit_id}"),
                    "it was never planned",
                )
            })?;
            let planned = audit
                .areas
                .iter()
                .find(|a| a.area == *area)
                .ok_or_else(|| {
                    transition(
                        "audit_evidence_received.area",
                        "receive evidence for",
                        format!("area {area:?} of audit {audit_id}"),
                        format!(
                            "the audit plans only {}",
                            audit
                                .areas
                                .iter()
                                .map(|a| format!("{:?}", a.area))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            if !planned.evidence_requested.iter().any(|r| r == item) {
                return Err(transition(
                    "audit_evidence_received.item",
                    "receive",
                    format!("{item:?} for area {area:?}"),
                    format!(
                        "the area requested only {}",
                        planned
                            .evidence_requested
                            .iter()
                            .map(|r| format!("{r:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        E::AuditCompleted { audit_id, .. } => {
            let audit = state.audits.get(audit_id).ok_or_else(|| {
                transition(
                    "audit_completed.audit_id",
                    "complete",
                    format!("audit {audit_id}"),
                    "it was never planned",
                )
            })?;
            if audit.completed.is_some() {
                return Err(transition(
                    "audit_completed.audit_id",
                    "complete",
                    format!("audit {audit_id}"),
                    "it is already completed",
                ));
            }
        }
        E::FindingRaised {
            finding_id,
            audit_id,
            area,
            controls,
            auditee,
            ..
        } => {
            if state.findings.contains_key(finding_id) {
                return Err(transition(
                    "finding_raised.finding_id",
                    "raise",
                    format!("finding {finding_id}"),
                    "it already exists",
                ));
            }
            // A certification body's finding names its external audit: the body is
            // independent by definition, so only internal audits check the auditor.
            match state.audits.get(audit_id) {
                Some(audit) => {
                    check_auditor_independence(state, who, audit, area, controls, auditee)?;
                }
                None if state.external_audits.contains_key(audit_id) => {}
                None => {
                    return Err(transition(
                        "finding_raised.audit_id",
                        "raise a finding in",
                        format!("audit {audit_id}"),
                        "it was neither planned nor recorded as an external audit",
                    ))
                }
            }
        }
        E::CorrectiveActionOpened {
            action_id,
            finding_id,
            ..
        } => {
            if state.actions.contains_key(action_id) {
                return Err(transition(
                    "corrective_action_opened.action_id",
                    "open",
                    format!("corrective action {action_id}"),
                    "it already exists",
                ));
            }
            let finding = state.findings.get(finding_id).ok_or_else(|| {
                transition(
                    "corrective_action_opened.finding_id",
                    "open an action on",
                    format!("finding {finding_id}"),
                    "it was never raised",
                )
            })?;
            if finding.grade == FindingGrade::PositiveFinding {
                return Err(transition(
                    "corrective_action_opened.finding_id",
                    "open an action on",
                    format!("finding {finding_id}"),
                    "it is a positive finding",
                ));
            }
        }
        E::RootCauseRecorded { action_id, .. } => {
            expect_action(
                state,
                "root_cause_recorded.action_id",
                "record a root cause for",
                action_id,
                ActionStatus::Open,
            )?;
        }
        E::CorrectiveActionClosed { action_id, .. } => {
            let action = expect_action(
                state,
                "corrective_action_closed.action_id",
                "close",
                action_id,
                ActionStatus::Open,
            )?;
            if action.grade == Some(FindingGrade::MajorNonconformity) && action.root_cause.is_none()
            {
                return Err(transition(
                    "corrective_action_closed.action_id",
                    "close",
                    format!("corrective action {action_id}"),
                    "a major nonconformity needs its root cause recorded first",
                ));
            }
        }
        E::CorrectiveActionVerified { action_id, .. } => {
            let action = expect_action(
                state,
                "corrective_action_verified.action_id",
                "verify",
                action_id,
                ActionStatus::Closed,
            )?;
            if let Some((_, closed)) = &action.closed {
                if closed.subject == who.subject {
                    return Err(Error::DutyConflict {
                        rule: format!(
                            "{} closed corrective action {action_id} and so cannot verify it",
                            who.subject
                        ),
                    });
                }
            }
        }
        E::ComplianceReviewed { requirement_id, .. } => {
            if !state.legal.contains_key(requirement_id) {
                return Err(transition(
                    "compliance_reviewed.requirement_id",
                    "review",
                    format!("requirement {requirement_id}"),
                    "it was never recorded",
                ));
            }
        }
        E::ExternalAuditHeld { audit_id, .. } => {
            if state.external_audits.contains_key(audit_id) {
                return Err(transition(
                    "external_audit_held.audit_id",
                    "record",
                    format!("external audit {audit_id}"),
                    "it is already recorded",
                ));
            }
            if state.audits.contains_key(audit_id) {
                return Err(transition(
                    "external_audit_held.audit_id",
                    "record",
                    format!("external audit {audit_id}"),
                    "an internal audit has that id",
                ));
            }
        }
        E::ReviewDecisionClosed {
            review_id,
            decision,
            ..
        } => {
            let entity = format!("management review {review_id}");
            let Some(review) = state.reviews.get(review_id) else {
                return Err(transition(
                    "review_decision_closed.review_id",
                    "close a decision of",
                    entity,
                    "it was never held",
                ));
            };
            let count = review.decisions.len();
            if *decision == 0 || *decision as usize > count {
                return Err(transition(
                    "review_decision_closed.decision",
                    "close a decision of",
                    entity,
                    format!(
                        "it recorded {count} decisions, numbered from 1; there is no {decision}"
                    ),
                ));
            }
            if review.closed.contains_key(decision) {
                return Err(transition(
                    "review_decision_closed.decision",
                    "close a decision of",
                    entity,
                    format!("decision {decision} is already closed"),
                ));
            }
        }
        E::ObjectiveMeasured { objective_id, .. } => {
            if !state.objectives.contains_key(objective_id) {
                return Err(transition(
                    "objective_measured.objective_id",
                    "measure",
                    format!("objective {objective_id}"),
                    "it was never set",
                ));
            }
        }
        E::IncidentRecorded { incident_id, .. } => {
            if state.incidents.contains_key(incident_id) {
                return Err(transition(
                    "incident_recorded.incident_id",
                    "record",
                    format!("incident {incident_id}"),
                    "it already exists",
                ));
            }
        }
        E::IncidentClosed {
            incident_id,
            corrective_actions,
            ..
        } => {
            let entity = format!("incident {incident_id}");
            if let Some((n, unknown)) = corrective_actions
                .iter()
                .enumerate()
                .find(|(_, a)| !state.actions.contains_key(*a))
            {
                return Err(transition(
                    &format!("incident_closed.corrective_action_ids[{n}]"),
                    "close",
                    entity,
                    format!("corrective action {unknown} was never opened"),
                ));
            }
            if corrective_actions.is_empty()
                && state
                    .incidents
                    .get(incident_id)
                    .is_some_and(|i| i.nonconformity)
            {
                return Err(transition(
                    "incident_closed.corrective_action_ids",
                    "close",
                    entity,
                    "it is a nonconformity: name the corrective action opened for it (clause \
                     10.2)",
                ));
            }
            match state.incidents.get(incident_id) {
                None => {
                    return Err(transition(
                        "incident_closed.incident_id",
                        "close",
                        entity,
                        "it was never recorded",
                    ))
                }
                Some(i) if i.closed.is_some() => {
                    return Err(transition(
                        "incident_closed.incident_id",
                        "close",
                        entity,
                        "it is already closed",
                    ))
                }
                Some(_) => {}
            }
        }
        E::Genesis { .. }
        | E::KeyEnrolled(_)
        | E::KeyRevoked { .. }
        | E::ArtifactErased { .. }
        | E::LedgerKeyRotated { .. }
        | E::ScopeDefined(_)
        | E::PolicyApproved { .. }
        | E::ObjectiveSet { .. }
        | E::AssetRegistered { .. }
        | E::ManagementReviewHeld { .. }
        | E::TrainingRecorded { .. }
        | E::SupplierAssessed { .. }
        | E::ContinuityTestHeld { .. }
        | E::AccessReviewRecorded { .. }
        | E::PatchComplianceMeasured { .. }
        | E::LegalRequirementRecorded { .. } => {}
        E::VulnerabilityRecorded { asset, .. } => {
            if let Some(asset) = asset {
                if !state.assets.contains_key(asset) {
                    return Err(transition(
                        "vulnerability_recorded.asset_id",
                        "record a vulnerability on",
                        format!("asset {asset}"),
                        "it was never registered",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn expect_action<'s>(
    state: &'s State,
    field: &str,
    action: &'static str,
    id: &ActionId,
    want: ActionStatus,
) -> Result<&'s crate::state::CorrectiveAction, Error> {
    let entity = format!("corrective action {id}");
    let a = state
        .actions
        .get(id)
        .ok_or_else(|| transition(field, action, entity.clone(), "it was never opened"))?;
    if a.status != want {
        return Err(transition(
            field,
            action,
            entity,
            format!("it is {}, not {}", a.status.name(), want.name()),
        ));
    }
    Ok(a)
}

/// An auditor may not raise findings on an area they own: an area whose auditee they are (on
/// the finding or the plan), or a control whose SoA owner they are.
fn check_auditor_independence(
    state: &State,
    who: &Submitter,
    audit: &crate::state::Audit,
    area: &str,
    controls: &[crate::catalog::ControlId],
    auditee: &str,
) -> Result<(), Error> {
    let me = who.subject.0.as_str();
    let conflict = |what: String| {
        Err(Error::DutyConflict {
            rule: format!("an auditor cannot raise findings on an area they own: {me} {what}"),
        })
    };
    if auditee == me {
        return conflict(format!("is the auditee of area {area:?}"));
    }
    if audit
        .areas
        .iter()
        .any(|a| a.area == area && a.auditee == me)
    {
        return conflict(format!("is the auditee of area {area:?} in audit plan"));
    }
    for c in controls {
        if state.soa.get(c).is_some_and(|r| r.owner == me) {
            return conflict(format!("owns control {c}"));
        }
    }
    Ok(())
}
