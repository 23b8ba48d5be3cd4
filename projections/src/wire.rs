//! The protobuf edge: decodes `EventBody` bytes into the domain `Envelope` (parsing ids,
//! scores and control ids, so a malformed field is refused with its name and the rule) and
//! encodes domain events into `isms_proto::v1::EventBody` for clients that build bodies.
//! This is the only module that touches `isms_proto`.

use isms_proto::v1 as pb;
use prost::Message;

use crate::{
    catalog::ControlId,
    error::Error,
    model::{self, *},
};

/// Decodes signed body bytes into an `Envelope`, refusing anything malformed.
/// A stated time (0: not stated), in the ledger's window.
fn optional_time(field: &str, us: i64) -> Result<Option<Timestamp>, Error> {
    if us == 0 {
        return Ok(None);
    }
    let t = Timestamp(us);
    if !t.in_window() {
        return Err(Error::malformed(
            field,
            format!("{us} µs lies outside {}", Timestamp::WINDOW),
        ));
    }
    Ok(Some(t))
}

fn severity_of(field: &str, raw: i32) -> Result<Severity, Error> {
    Ok(match enum_value::<pb::Severity>(field, raw)? {
        pb::Severity::Low => Severity::Low,
        pb::Severity::Medium => Severity::Medium,
        pb::Severity::High => Severity::High,
        _ => Severity::Critical,
    })
}

fn severity_pb(severity: Severity) -> i32 {
    let wire = match severity {
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    };
    wire as i32
}

pub fn decode_body(bytes: &[u8]) -> Result<Envelope, Error> {
    let body = pb::EventBody::decode(bytes)
        .map_err(|e| Error::malformed("body", format!("not a valid EventBody ({e})")))?;
    decode(body)
}

/// Converts a decoded protobuf `EventBody` into an `Envelope`.
pub fn decode(body: pb::EventBody) -> Result<Envelope, Error> {
    let artifacts = body
        .artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            Ok(ArtifactRef {
                blake3: hash32(&format!("artifacts[{i}].blake3"), &a.blake3)?,
                size: a.size,
                media_type: a.media_type.clone(),
                name: a.name.clone(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let payload = body
        .payload
        .ok_or_else(|| Error::missing("payload", "an event body must carry a payload"))?;
    use pb::event_body::Payload;
    let event = match payload {
        Payload::Genesis(g) => Event::Genesis {
            name: g.name,
            admins: g
                .admins
                .iter()
                .enumerate()
                .map(|(i, k)| enrolment(&format!("genesis.admins[{i}]"), k))
                .collect::<Result<_, _>>()?,
        },
        Payload::KeyEnrolled(k) => Event::KeyEnrolled(enrolment("key_enrolled", &k)?),
        Payload::KeyRevoked(k) => Event::KeyRevoked {
            key_id: hash32("key_revoked.key_id", &k.key_id)?,
            reason: k.reason,
        },
        Payload::ArtifactErased(a) => Event::ArtifactErased {
            blake3: hash32("artifact_erased.blake3", &a.blake3)?,
            reason: a.reason,
        },
        Payload::LedgerKeyRotated(r) => Event::LedgerKeyRotated {
            new_public_key: hash32("ledger_key_rotated.new_public_key", &r.new_public_key)?,
            old_key_signature: r.old_key_signature,
            new_key_signature: r.new_key_signature,
            reason: r.reason,
        },
        Payload::Isms(e) => isms(e)?,
    };
    Ok(Envelope {
        event_id: body.event_id,
        effective_at: Timestamp(body.effective_at_us),
        expected_version: body.expected_version,
        artifacts,
        event,
    })
}

fn hash32(field: &str, bytes: &[u8]) -> Result<[u8; 32], Error> {
    bytes
        .try_into()
        .map_err(|_| Error::malformed(field, format!("must be 32 bytes (got {})", bytes.len())))
}

fn enrolment(field: &str, k: &pb::KeyEnrolled) -> Result<KeyEnrolment, Error> {
    let roles = k
        .roles
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Role::parse(r).ok_or_else(|| {
                Error::malformed(
                    format!("{field}.roles[{i}]"),
                    format!(
                        "{r:?} is not a role (roles are admin, agent, risk_owner, control_owner, auditor, management, reader)"
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if k.subject.trim().is_empty() {
        return Err(Error::missing(
            format!("{field}.subject"),
            "a key needs a subject",
        ));
    }
    Ok(KeyEnrolment {
        public_key: hash32(&format!("{field}.public_key"), &k.public_key)?,
        subject: Subject(k.subject.trim().to_owned()),
        roles,
    })
}

fn control(field: &str, raw: &str) -> Result<ControlId, Error> {
    ControlId::parse(raw).map_err(|p| Error::UnknownControl {
        field: field.to_owned(),
        id: raw.to_owned(),
        explanation: p.explain(),
    })
}

fn controls(field: &str, raw: &[String]) -> Result<Vec<ControlId>, Error> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| control(&format!("{field}[{i}]"), c))
        .collect()
}

fn stated_score(field: &str, stated: Option<u32>, l: Likelihood, i: Impact) -> Result<(), Error> {
    let Some(stated) = stated else { return Ok(()) };
    let score = Score::of(l, i).get();
    if stated != u32::from(score) {
        return Err(Error::OutOfRange {
            field: field.to_owned(),
            rule: format!(
                "must equal likelihood x impact = {} x {} = {score}",
                l.get(),
                i.get()
            ),
            got: i64::from(stated),
        });
    }
    Ok(())
}

fn enum_value<T: TryFrom<i32>>(field: &str, raw: i32) -> Result<T, Error> {
    if raw == 0 {
        return Err(Error::missing(field, "must be set (0 is UNSPECIFIED)"));
    }
    T::try_from(raw).map_err(|_| Error::malformed(field, format!("unknown enum value {raw}")))
}

/// A review input's number on the wire (the domain lists them in proto order, from 1).
fn review_input_pb(input: ReviewInput) -> i32 {
    1 + model::ReviewInput::ALL
        .iter()
        .position(|(x, _)| *x == input)
        .unwrap_or(0) as i32
}

/// A text that must say something.
fn required_text(field: &str, text: String) -> Result<String, Error> {
    match text.trim() {
        "" => Err(Error::missing(field, "must not be empty")),
        trimmed => Ok(trimmed.to_owned()),
    }
}

fn check_result(field: &str, raw: i32) -> Result<CheckResult, Error> {
    Ok(match enum_value::<pb::CheckResult>(field, raw)? {
        pb::CheckResult::Pass => CheckResult::Pass,
        _ => CheckResult::Fail,
    })
}

fn isms(e: pb::IsmsEvent) -> Result<Event, Error> {
    use pb::isms_event::Kind as K;
    let kind = e
        .kind
        .ok_or_else(|| Error::missing("isms.kind", "an ISMS event must name its kind"))?;
    Ok(match kind {
        K::ScopeDefined(s) => {
            if s.organization.trim().is_empty() {
                return Err(Error::missing(
                    "scope_defined.organization",
                    "a scope names its organization",
                ));
            }
            if !s.excluded.is_empty() && s.exclusion_justification.trim().is_empty() {
                return Err(Error::missing(
                    "scope_defined.exclusion_justification",
                    "excluding anything from the scope needs a justification",
                ));
            }
            Event::ScopeDefined(Scope {
                organization: s.organization,
                scope_statement: s.scope_statement,
                locations: s.locations,
                business_processes: s.business_processes,
                information_assets: s.information_assets,
                technology: s.technology,
                excluded: s.excluded,
                exclusion_justification: s.exclusion_justification,
                interfaces: s.interfaces,
            })
        }
        K::PolicyApproved(p) => Event::PolicyApproved {
            policy_id: PolicyId::parse("policy_approved.policy_id", &p.policy_id)?,
            next_review: optional_time("policy_approved.next_review_us", p.next_review_us)?,
            kind: match enum_value::<pb::PolicyKind>("policy_approved.kind", p.kind)? {
                pb::PolicyKind::InformationSecurity => PolicyKind::InformationSecurity,
                pb::PolicyKind::RiskMethodology => PolicyKind::RiskMethodology,
                pb::PolicyKind::DocumentControl => PolicyKind::DocumentControl,
                pb::PolicyKind::IncidentManagement => PolicyKind::IncidentManagement,
                pb::PolicyKind::BusinessContinuity => PolicyKind::BusinessContinuity,
                pb::PolicyKind::SupplierSecurity => PolicyKind::SupplierSecurity,
                _ => PolicyKind::Other,
            },
            title: p.title,
            version: p.version,
            published: p.published,
        },
        K::ObjectiveSet(o) => {
            if o.metric.trim().is_empty() || o.target.trim().is_empty() {
                let field = if o.metric.trim().is_empty() {
                    "metric"
                } else {
                    "target"
                };
                return Err(Error::missing(
                    format!("objective_set.{field}"),
                    "ISMS objectives must be measurable (clause 6.2): a metric and a target",
                ));
            }
            Event::ObjectiveSet {
                objective_id: ObjectiveId::parse("objective_set.objective_id", &o.objective_id)?,
                description: o.description,
                metric: o.metric,
                target: o.target,
            }
        }
        K::LegalRequirementRecorded(r) => Event::LegalRequirementRecorded {
            requirement_id: RequirementId::parse(
                "legal_requirement_recorded.requirement_id",
                &r.requirement_id,
            )?,
            title: r.title,
            jurisdiction: r.jurisdiction,
            owner: r.owner,
            controls: controls("legal_requirement_recorded.controls", &r.controls)?,
        },
        K::ComplianceReviewed(c) => Event::ComplianceReviewed {
            requirement_id: RequirementId::parse(
                "compliance_reviewed.requirement_id",
                &c.requirement_id,
            )?,
            result: check_result("compliance_reviewed.result", c.result)?,
            note: c.note,
            next_review: optional_time("compliance_reviewed.next_review_us", c.next_review_us)?,
        },
        K::ExternalAuditHeld(a) => {
            let start = optional_time("external_audit_held.start_us", a.start_us)?
                .ok_or_else(|| Error::missing("external_audit_held.start_us", "when it began"))?;
            let end = optional_time("external_audit_held.end_us", a.end_us)?
                .ok_or_else(|| Error::missing("external_audit_held.end_us", "when it ended"))?;
            if end < start {
                return Err(Error::malformed(
                    "external_audit_held.end_us",
                    "an audit cannot end before it begins",
                ));
            }
            Event::ExternalAuditHeld {
                audit_id: AuditId::parse("external_audit_held.audit_id", &a.audit_id)?,
                kind: match enum_value::<pb::ExternalAuditKind>("external_audit_held.kind", a.kind)?
                {
                    pb::ExternalAuditKind::Stage1 => ExternalAuditKind::Stage1,
                    pb::ExternalAuditKind::Stage2 => ExternalAuditKind::Stage2,
                    pb::ExternalAuditKind::Surveillance => ExternalAuditKind::Surveillance,
                    pb::ExternalAuditKind::Recertification => ExternalAuditKind::Recertification,
                    pb::ExternalAuditKind::Unspecified => {
                        return Err(Error::missing(
                            "external_audit_held.kind",
                            "stage 1, stage 2, surveillance or recertification",
                        ))
                    }
                },
                body: a.body,
                start,
                end,
                major_nonconformities: a.major_nonconformities,
                minor_nonconformities: a.minor_nonconformities,
                certified: a.certified,
                summary: a.summary,
            }
        }
        K::ReviewDecisionClosed(d) => Event::ReviewDecisionClosed {
            review_id: ReviewId::parse("review_decision_closed.review_id", &d.review_id)?,
            decision: d.decision,
            resolution: d.resolution,
        },
        K::ObjectiveMeasured(m) => {
            if m.value.trim().is_empty() {
                return Err(Error::missing(
                    "objective_measured.value",
                    "a measurement states the value measured",
                ));
            }
            Event::ObjectiveMeasured {
                objective_id: ObjectiveId::parse(
                    "objective_measured.objective_id",
                    &m.objective_id,
                )?,
                value: m.value,
                note: m.note,
            }
        }
        K::AssetRegistered(a) => Event::AssetRegistered {
            asset_id: AssetId::parse("asset_registered.asset_id", &a.asset_id)?,
            name: a.name,
            asset_type: a.asset_type,
            owner: a.owner,
            classification: a.classification,
            location: a.location,
            retired: a.retired,
        },
        K::RiskIdentified(r) => Event::RiskIdentified {
            risk_id: RiskId::parse("risk_identified.risk_id", &r.risk_id)?,
            asset: r.asset,
            threat: r.threat,
            vulnerability: r.vulnerability,
            risk_owner: r.risk_owner,
        },
        K::RiskAssessed(r) => {
            let likelihood = Likelihood::parse("risk_assessed.likelihood", r.likelihood)?;
            let impact = Impact::parse("risk_assessed.impact", r.impact)?;
            stated_score(
                "risk_assessed.inherent_risk",
                r.inherent_risk,
                likelihood,
                impact,
            )?;
            Event::RiskAssessed {
                risk_id: RiskId::parse("risk_assessed.risk_id", &r.risk_id)?,
                likelihood,
                impact,
            }
        }
        K::RiskRescored(r) => {
            let likelihood =
                Likelihood::parse("risk_rescored.residual_likelihood", r.residual_likelihood)?;
            let impact = Impact::parse("risk_rescored.residual_impact", r.residual_impact)?;
            stated_score(
                "risk_rescored.residual_risk",
                r.residual_risk,
                likelihood,
                impact,
            )?;
            Event::RiskRescored {
                risk_id: RiskId::parse("risk_rescored.risk_id", &r.risk_id)?,
                likelihood,
                impact,
                reason: r.reason,
            }
        }
        K::RiskTreatmentDecided(r) => Event::RiskTreatmentDecided {
            risk_id: RiskId::parse("risk_treatment_decided.risk_id", &r.risk_id)?,
            treatment: match enum_value::<pb::Treatment>(
                "risk_treatment_decided.treatment",
                r.treatment,
            )? {
                pb::Treatment::Mitigate => Treatment::Mitigate,
                pb::Treatment::Transfer => Treatment::Transfer,
                pb::Treatment::Avoid => Treatment::Avoid,
                _ => Treatment::Accept,
            },
            controls: controls("risk_treatment_decided.controls", &r.controls)?,
            plan: r.plan,
        },
        K::RiskAccepted(r) => Event::RiskAccepted {
            risk_id: RiskId::parse("risk_accepted.risk_id", &r.risk_id)?,
            justification: r.justification.trim().to_owned(),
        },
        K::RiskClosed(r) => Event::RiskClosed {
            risk_id: RiskId::parse("risk_closed.risk_id", &r.risk_id)?,
            reason: r.reason,
        },
        K::RiskDetailsChanged(r) => Event::RiskDetailsChanged {
            risk_id: RiskId::parse("risk_details_changed.risk_id", &r.risk_id)?,
            asset: r.asset,
            threat: r.threat,
            vulnerability: r.vulnerability,
            risk_owner: r.risk_owner,
            reason: r.reason,
        },
        K::ControlApplicabilitySet(c) => {
            // The seed writes `justification` for included controls and
            // `exclusion_justification` for excluded ones; the domain keeps one field.
            let justification = if c.applicable || c.exclusion_justification.trim().is_empty() {
                c.justification.trim().to_owned()
            } else {
                c.exclusion_justification.trim().to_owned()
            };
            Event::ControlApplicabilitySet {
                control_id: control("control_applicability_set.control_id", &c.control_id)?,
                applicable: c.applicable,
                justification,
                implementation: c.implementation,
                owner: c.owner.trim().to_owned(),
            }
        }
        K::ControlApproved(c) => Event::ControlApproved {
            control_ids: controls("control_approved.control_ids", &c.control_ids)?,
            soa_version: c.soa_version,
        },
        K::ImplementationStatusChanged(c) => Event::ImplementationStatusChanged {
            control_id: control("implementation_status_changed.control_id", &c.control_id)?,
            status: match enum_value::<pb::ImplementationStatus>(
                "implementation_status_changed.status",
                c.status,
            )? {
                pb::ImplementationStatus::NotStarted => ImplementationStatus::NotStarted,
                pb::ImplementationStatus::Planned => ImplementationStatus::Planned,
                pb::ImplementationStatus::InProgress => ImplementationStatus::InProgress,
                _ => ImplementationStatus::Implemented,
            },
            note: c.note,
        },
        K::EvidenceSubmitted(e) => {
            if e.controls.is_empty() {
                return Err(Error::missing(
                    "evidence_submitted.controls",
                    "evidence must name at least one Annex A control",
                ));
            }
            Event::EvidenceSubmitted {
                evidence_id: EvidenceId::parse("evidence_submitted.evidence_id", &e.evidence_id)?,
                controls: controls("evidence_submitted.controls", &e.controls)?,
                artifact_blake3: if e.artifact_blake3.is_empty() {
                    None
                } else {
                    Some(hash32(
                        "evidence_submitted.artifact_blake3",
                        &e.artifact_blake3,
                    )?)
                },
                result: check_result("evidence_submitted.result", e.result)?,
                collected_at: Timestamp(e.collected_at_us),
                summary: e.summary,
            }
        }
        K::AuditPlanned(a) => {
            if a.end_us < a.start_us {
                return Err(Error::OutOfRange {
                    field: "audit_planned.end_us".into(),
                    rule: format!("must not be before start_us ({})", a.start_us),
                    got: a.end_us,
                });
            }
            Event::AuditPlanned {
                audit_id: AuditId::parse("audit_planned.audit_id", &a.audit_id)?,
                scope: a.scope,
                auditor: a.auditor,
                start: Timestamp(a.start_us),
                end: Timestamp(a.end_us),
                areas: a
                    .areas
                    .into_iter()
                    .map(|x| AuditArea {
                        area: x.area,
                        auditee: x.auditee,
                        evidence_requested: x.evidence_requested,
                    })
                    .collect(),
            }
        }
        K::AuditEvidenceReceived(r) => Event::AuditEvidenceReceived {
            audit_id: AuditId::parse("audit_evidence_received.audit_id", &r.audit_id)?,
            area: required_text("audit_evidence_received.area", r.area)?,
            item: required_text("audit_evidence_received.item", r.item)?,
            reference: r.reference,
        },
        K::AuditCompleted(a) => Event::AuditCompleted {
            audit_id: AuditId::parse("audit_completed.audit_id", &a.audit_id)?,
            summary: a.summary,
        },
        K::FindingRaised(f) => Event::FindingRaised {
            finding_id: FindingId::parse("finding_raised.finding_id", &f.finding_id)?,
            audit_id: AuditId::parse("finding_raised.audit_id", &f.audit_id)?,
            grade: match enum_value::<pb::FindingGrade>("finding_raised.grade", f.grade)? {
                pb::FindingGrade::MajorNonconformity => FindingGrade::MajorNonconformity,
                pb::FindingGrade::MinorNonconformity => FindingGrade::MinorNonconformity,
                pb::FindingGrade::Observation => FindingGrade::Observation,
                _ => FindingGrade::PositiveFinding,
            },
            area: f.area,
            description: f.description,
            controls: controls("finding_raised.controls", &f.controls)?,
            auditee: f.auditee.trim().to_owned(),
        },
        K::CorrectiveActionOpened(a) => Event::CorrectiveActionOpened {
            action_id: ActionId::parse("corrective_action_opened.action_id", &a.action_id)?,
            finding_id: FindingId::parse("corrective_action_opened.finding_id", &a.finding_id)?,
            description: a.description,
            owner: a.owner,
        },
        K::RootCauseRecorded(a) => {
            if a.root_cause.trim().is_empty() {
                return Err(Error::missing(
                    "root_cause_recorded.root_cause",
                    "a root cause must say what it is",
                ));
            }
            Event::RootCauseRecorded {
                action_id: ActionId::parse("root_cause_recorded.action_id", &a.action_id)?,
                root_cause: a.root_cause,
            }
        }
        K::CorrectiveActionClosed(a) => Event::CorrectiveActionClosed {
            action_id: ActionId::parse("corrective_action_closed.action_id", &a.action_id)?,
            resolution: a.resolution,
        },
        K::CorrectiveActionVerified(a) => Event::CorrectiveActionVerified {
            action_id: ActionId::parse("corrective_action_verified.action_id", &a.action_id)?,
            effective: a.effective,
            note: a.note,
        },
        K::ManagementReviewHeld(m) => Event::ManagementReviewHeld {
            review_id: ReviewId::parse("management_review_held.review_id", &m.review_id)?,
            attendees: m.attendees,
            inputs_covered: m
                .inputs_covered
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let field = format!("management_review_held.inputs_covered[{i}]");
                    let input = enum_value::<pb::ReviewInput>(&field, *x)?;
                    Ok(model::ReviewInput::ALL[(input as usize) - 1].0)
                })
                .collect::<Result<_, Error>>()?,
            decisions: m
                .decisions
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let field = format!("management_review_held.decisions[{i}].output");
                    let output = enum_value::<pb::ReviewOutput>(&field, d.output)?;
                    Ok((
                        model::ReviewOutput::ALL[(output as usize) - 1].0,
                        d.decision,
                    ))
                })
                .collect::<Result<_, Error>>()?,
            references: m
                .input_references
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let field = format!("management_review_held.input_references[{i}].input");
                    let input = enum_value::<pb::ReviewInput>(&field, r.input)?;
                    let input = model::ReviewInput::ALL[(input as usize) - 1].0;
                    if !m.inputs_covered.contains(&r.input) {
                        return Err(Error::malformed(
                            &field,
                            "an input referenced must be among inputs_covered",
                        ));
                    }
                    Ok(InputReference {
                        input,
                        reference: r.reference,
                    })
                })
                .collect::<Result<_, Error>>()?,
        },
        K::TrainingRecorded(t) => Event::TrainingRecorded {
            training_id: TrainingId::parse("training_recorded.training_id", &t.training_id)?,
            person: t.person,
            course: t.course,
            completed: t.completed,
            campaign: t.campaign,
            due: optional_time("training_recorded.due_us", t.due_us)?,
        },
        K::IncidentRecorded(i) => Event::IncidentRecorded {
            incident_id: IncidentId::parse("incident_recorded.incident_id", &i.incident_id)?,
            title: i.title,
            severity: severity_of("incident_recorded.severity", i.severity)?,
            controls: controls("incident_recorded.controls", &i.controls)?,
            detected_at: optional_time("incident_recorded.detected_at_us", i.detected_at_us)?,
            assets: i.assets,
            nonconformity: i.nonconformity,
            near_miss: i.near_miss,
        },
        K::IncidentClosed(i) => Event::IncidentClosed {
            incident_id: IncidentId::parse("incident_closed.incident_id", &i.incident_id)?,
            resolution: i.resolution,
            corrective_actions: i
                .corrective_action_ids
                .iter()
                .enumerate()
                .map(|(n, a)| {
                    ActionId::parse(&format!("incident_closed.corrective_action_ids[{n}]"), a)
                })
                .collect::<Result<_, Error>>()?,
        },
        K::SupplierAssessed(s) => Event::SupplierAssessed {
            supplier_id: SupplierId::parse("supplier_assessed.supplier_id", &s.supplier_id)?,
            name: s.name,
            result: check_result("supplier_assessed.result", s.result)?,
            notes: s.notes,
            criticality: match s.criticality {
                0 => None,
                raw => Some(severity_of("supplier_assessed.criticality", raw)?),
            },
            next_assessment: optional_time(
                "supplier_assessed.next_assessment_us",
                s.next_assessment_us,
            )?,
        },
        K::ContinuityTestHeld(c) => Event::ContinuityTestHeld {
            test_id: TestId::parse("continuity_test_held.test_id", &c.test_id)?,
            plan: c.plan,
            result: check_result("continuity_test_held.result", c.result)?,
            controls: controls("continuity_test_held.controls", &c.controls)?,
        },
        K::AccessReviewRecorded(r) => {
            field_rules::accounts_removed(r.accounts_reviewed, r.accounts_removed).map_err(
                |rule| Error::malformed("access_review_recorded.accounts_removed", rule),
            )?;
            Event::AccessReviewRecorded {
                review_id: AccessReviewId::parse("access_review_recorded.review_id", &r.review_id)?,
                system: required_text("access_review_recorded.system", r.system)?,
                reviewer: r.reviewer,
                due: optional_time("access_review_recorded.due_us", r.due_us)?.ok_or_else(
                    || Error::missing("access_review_recorded.due_us", "when the review is due"),
                )?,
                completed: optional_time("access_review_recorded.completed_us", r.completed_us)?,
                accounts_reviewed: r.accounts_reviewed,
                accounts_removed: r.accounts_removed,
            }
        }
        K::VulnerabilityRecorded(v) => {
            let detected = optional_time("vulnerability_recorded.detected_us", v.detected_us)?
                .ok_or_else(|| {
                    Error::missing("vulnerability_recorded.detected_us", "when it was found")
                })?;
            let remediated =
                optional_time("vulnerability_recorded.remediated_us", v.remediated_us)?;
            field_rules::remediated(detected, remediated)
                .map_err(|rule| Error::malformed("vulnerability_recorded.remediated_us", rule))?;
            Event::VulnerabilityRecorded {
                vulnerability_id: VulnerabilityId::parse(
                    "vulnerability_recorded.vulnerability_id",
                    &v.vulnerability_id,
                )?,
                title: v.title,
                severity: severity_of("vulnerability_recorded.severity", v.severity)?,
                asset: match v.asset_id.trim() {
                    "" => None,
                    a => Some(AssetId::parse("vulnerability_recorded.asset_id", a)?),
                },
                detected,
                remediated,
                due: optional_time("vulnerability_recorded.due_us", v.due_us)?,
            }
        }
        K::PatchComplianceMeasured(p) => {
            field_rules::devices_total(p.devices_total).map_err(|rule| {
                Error::malformed("patch_compliance_measured.devices_total", rule)
            })?;
            field_rules::devices_compliant(p.devices_total, p.devices_compliant).map_err(
                |rule| Error::malformed("patch_compliance_measured.devices_compliant", rule),
            )?;
            Event::PatchComplianceMeasured {
                scope: required_text("patch_compliance_measured.scope", p.scope)?,
                devices_total: p.devices_total,
                devices_compliant: p.devices_compliant,
            }
        }
    })
}

/// What a client needs besides the event to build a body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyHeader {
    /// The 16-byte ledger id.
    pub ledger_id: Vec<u8>,
    /// The idempotency key.
    pub event_id: String,
    /// When the thing happened.
    pub effective_at: Timestamp,
    /// The submitter's clock.
    pub client_time: Timestamp,
    /// Optimistic concurrency.
    pub expected_version: Option<u64>,
    /// Artifacts referred to.
    pub artifacts: Vec<ArtifactRef>,
}

/// Encodes a domain event into the protobuf body a client signs.
pub fn encode(header: &BodyHeader, event: &Event) -> pb::EventBody {
    use pb::event_body::Payload;
    let payload = match event {
        Event::Genesis { name, admins } => Payload::Genesis(pb::Genesis {
            origin: String::new(),
            ledger_public_key: Vec::new(),
            admins: admins.iter().map(enrolment_pb).collect(),
            name: name.clone(),
        }),
        Event::KeyEnrolled(k) => Payload::KeyEnrolled(enrolment_pb(k)),
        Event::KeyRevoked { key_id, reason } => Payload::KeyRevoked(pb::KeyRevoked {
            key_id: key_id.to_vec(),
            reason: reason.clone(),
        }),
        Event::ArtifactErased { blake3, reason } => Payload::ArtifactErased(pb::ArtifactErased {
            blake3: blake3.to_vec(),
            reason: reason.clone(),
        }),
        Event::LedgerKeyRotated {
            new_public_key,
            old_key_signature,
            new_key_signature,
            reason,
        } => Payload::LedgerKeyRotated(pb::LedgerKeyRotated {
            new_public_key: new_public_key.to_vec(),
            old_key_signature: old_key_signature.clone(),
            new_key_signature: new_key_signature.clone(),
            reason: reason.clone(),
        }),
        other => Payload::Isms(pb::IsmsEvent {
            kind: Some(isms_pb(other)),
        }),
    };
    pb::EventBody {
        ledger_id: header.ledger_id.clone(),
        event_id: header.event_id.clone(),
        effective_at_us: header.effective_at.0,
        client_time_us: header.client_time.0,
        expected_version: header.expected_version,
        artifacts: header
            .artifacts
            .iter()
            .map(|a| pb::ArtifactRef {
                blake3: a.blake3.to_vec(),
                size: a.size,
                media_type: a.media_type.clone(),
                name: a.name.clone(),
            })
            .collect(),
        payload: Some(payload),
    }
}

/// Encodes a domain event into body bytes (what a client signs and submits).
pub fn encode_to_vec(header: &BodyHeader, event: &Event) -> Vec<u8> {
    encode(header, event).encode_to_vec()
}

fn enrolment_pb(k: &KeyEnrolment) -> pb::KeyEnrolled {
    pb::KeyEnrolled {
        public_key: k.public_key.to_vec(),
        subject: k.subject.0.clone(),
        roles: k.roles.iter().map(|r| r.name().to_owned()).collect(),
    }
}

fn ids(c: &[ControlId]) -> Vec<String> {
    c.iter().map(ToString::to_string).collect()
}

fn result_pb(r: CheckResult) -> i32 {
    match r {
        CheckResult::Pass => pb::CheckResult::Pass as i32,
        CheckResult::Fail => pb::CheckResult::Fail as i32,
    }
}

fn isms_pb(event: &Event) -> pb::isms_event::Kind {
    use pb::isms_event::Kind as K;
    match event.clone() {
        Event::Genesis { .. }
        | Event::KeyEnrolled(_)
        | Event::KeyRevoked { .. }
        | Event::ArtifactErased { .. }
        | Event::LedgerKeyRotated { .. } => unreachable!("ledger payloads are encoded by encode()"),
        Event::ScopeDefined(s) => K::ScopeDefined(pb::ScopeDefined {
            organization: s.organization,
            scope_statement: s.scope_statement,
            locations: s.locations,
            business_processes: s.business_processes,
            information_assets: s.information_assets,
            technology: s.technology,
            excluded: s.excluded,
            exclusion_justification: s.exclusion_justification,
            interfaces: s.interfaces,
        }),
        Event::PolicyApproved {
            policy_id,
            title,
            kind,
            version,
            published,
            next_review,
        } => K::PolicyApproved(pb::PolicyApproved {
            policy_id: policy_id.0,
            next_review_us: next_review.map_or(0, |t| t.0),
            title,
            kind: match kind {
                PolicyKind::InformationSecurity => pb::PolicyKind::InformationSecurity,
                PolicyKind::RiskMethodology => pb::PolicyKind::RiskMethodology,
                PolicyKind::DocumentControl => pb::PolicyKind::DocumentControl,
                PolicyKind::IncidentManagement => pb::PolicyKind::IncidentManagement,
                PolicyKind::BusinessContinuity => pb::PolicyKind::BusinessContinuity,
                PolicyKind::SupplierSecurity => pb::PolicyKind::SupplierSecurity,
                PolicyKind::Other => pb::PolicyKind::Other,
            } as i32,
            version,
            published,
        }),
        Event::ObjectiveSet {
            objective_id,
            description,
            metric,
            target,
        } => K::ObjectiveSet(pb::ObjectiveSet {
            objective_id: objective_id.0,
            description,
            metric,
            target,
        }),
        Event::LegalRequirementRecorded {
            requirement_id,
            title,
            jurisdiction,
            owner,
            controls,
        } => K::LegalRequirementRecorded(pb::LegalRequirementRecorded {
            requirement_id: requirement_id.0,
            title,
            jurisdiction,
            owner,
            controls: ids(&controls),
        }),
        Event::ComplianceReviewed {
            requirement_id,
            result,
            note,
            next_review,
        } => K::ComplianceReviewed(pb::ComplianceReviewed {
            requirement_id: requirement_id.0,
            result: result_pb(result),
            note,
            next_review_us: next_review.map_or(0, |t| t.0),
        }),
        Event::ExternalAuditHeld {
            audit_id,
            kind,
            body,
            start,
            end,
            major_nonconformities,
            minor_nonconformities,
            certified,
            summary,
        } => K::ExternalAuditHeld(pb::ExternalAuditHeld {
            audit_id: audit_id.0,
            kind: match kind {
                ExternalAuditKind::Stage1 => pb::ExternalAuditKind::Stage1,
                ExternalAuditKind::Stage2 => pb::ExternalAuditKind::Stage2,
                ExternalAuditKind::Surveillance => pb::ExternalAuditKind::Surveillance,
                ExternalAuditKind::Recertification => pb::ExternalAuditKind::Recertification,
            } as i32,
            body,
            start_us: start.0,
            end_us: end.0,
            major_nonconformities,
            minor_nonconformities,
            certified,
            summary,
        }),
        Event::ReviewDecisionClosed {
            review_id,
            decision,
            resolution,
        } => K::ReviewDecisionClosed(pb::ReviewDecisionClosed {
            review_id: review_id.0,
            decision,
            resolution,
        }),
        Event::ObjectiveMeasured {
            objective_id,
            value,
            note,
        } => K::ObjectiveMeasured(pb::ObjectiveMeasured {
            objective_id: objective_id.0,
            value,
            note,
        }),
        Event::AssetRegistered {
            asset_id,
            name,
            asset_type,
            owner,
            classification,
            location,
            retired,
        } => K::AssetRegistered(pb::AssetRegistered {
            asset_id: asset_id.0,
            name,
            asset_type,
            owner,
            classification,
            location,
            retired,
        }),
        Event::RiskIdentified {
            risk_id,
            asset,
            threat,
            vulnerability,
            risk_owner,
        } => K::RiskIdentified(pb::RiskIdentified {
            risk_id: risk_id.0,
            asset,
            threat,
            vulnerability,
            risk_owner,
        }),
        Event::RiskAssessed {
            risk_id,
            likelihood,
            impact,
        } => K::RiskAssessed(pb::RiskAssessed {
            risk_id: risk_id.0,
            likelihood: likelihood.get().into(),
            impact: impact.get().into(),
            inherent_risk: Some(Score::of(likelihood, impact).get().into()),
        }),
        Event::RiskRescored {
            risk_id,
            likelihood,
            impact,
            reason,
        } => K::RiskRescored(pb::RiskRescored {
            risk_id: risk_id.0,
            residual_likelihood: likelihood.get().into(),
            residual_impact: impact.get().into(),
            residual_risk: Some(Score::of(likelihood, impact).get().into()),
            reason,
        }),
        Event::RiskTreatmentDecided {
            risk_id,
            treatment,
            controls,
            plan,
        } => K::RiskTreatmentDecided(pb::RiskTreatmentDecided {
            risk_id: risk_id.0,
            treatment: match treatment {
                Treatment::Mitigate => pb::Treatment::Mitigate,
                Treatment::Transfer => pb::Treatment::Transfer,
                Treatment::Avoid => pb::Treatment::Avoid,
                Treatment::Accept => pb::Treatment::Accept,
            } as i32,
            controls: ids(&controls),
            plan,
        }),
        Event::RiskAccepted {
            risk_id,
            justification,
        } => K::RiskAccepted(pb::RiskAccepted {
            risk_id: risk_id.0,
            justification,
        }),
        Event::RiskClosed { risk_id, reason } => K::RiskClosed(pb::RiskClosed {
            risk_id: risk_id.0,
            reason,
        }),
        Event::RiskDetailsChanged {
            risk_id,
            asset,
            threat,
            vulnerability,
            risk_owner,
            reason,
        } => K::RiskDetailsChanged(pb::RiskDetailsChanged {
            risk_id: risk_id.0,
            asset,
            threat,
            vulnerability,
            risk_owner,
            reason,
        }),
        Event::ControlApplicabilitySet {
            control_id,
            applicable,
            justification,
            implementation,
            owner,
        } => K::ControlApplicabilitySet(pb::ControlApplicabilitySet {
            control_id: control_id.to_string(),
            applicable,
            justification: if applicable {
                justification.clone()
            } else {
                String::new()
            },
            exclusion_justification: if applicable {
                String::new()
            } else {
                justification
            },
            implementation,
            owner,
        }),
        Event::ControlApproved {
            control_ids,
            soa_version,
        } => K::ControlApproved(pb::ControlApproved {
            control_ids: ids(&control_ids),
            soa_version,
        }),
        Event::ImplementationStatusChanged {
            control_id,
            status,
            note,
        } => K::ImplementationStatusChanged(pb::ImplementationStatusChanged {
            control_id: control_id.to_string(),
            status: match status {
                ImplementationStatus::NotStarted => pb::ImplementationStatus::NotStarted,
                ImplementationStatus::Planned => pb::ImplementationStatus::Planned,
                ImplementationStatus::InProgress => pb::ImplementationStatus::InProgress,
                ImplementationStatus::Implemented => pb::ImplementationStatus::Implemented,
            } as i32,
            note,
        }),
        Event::EvidenceSubmitted {
            evidence_id,
            controls,
            artifact_blake3,
            result,
            collected_at,
            summary,
        } => K::EvidenceSubmitted(pb::EvidenceSubmitted {
            evidence_id: evidence_id.0,
            controls: ids(&controls),
            artifact_blake3: artifact_blake3.map(|h| h.to_vec()).unwrap_or_default(),
            result: result_pb(result),
            collected_at_us: collected_at.0,
            summary,
        }),
        Event::AuditPlanned {
            audit_id,
            scope,
            auditor,
            start,
            end,
            areas,
        } => K::AuditPlanned(pb::AuditPlanned {
            audit_id: audit_id.0,
            scope,
            auditor,
            start_us: start.0,
            end_us: end.0,
            areas: areas
                .into_iter()
                .map(|a| pb::AuditArea {
                    area: a.area,
                    auditee: a.auditee,
                    evidence_requested: a.evidence_requested,
                })
                .collect(),
        }),
        Event::AuditEvidenceReceived {
            audit_id,
            area,
            item,
            reference,
        } => K::AuditEvidenceReceived(pb::AuditEvidenceReceived {
            audit_id: audit_id.0,
            area,
            item,
            reference,
        }),
        Event::AuditCompleted { audit_id, summary } => K::AuditCompleted(pb::AuditCompleted {
            audit_id: audit_id.0,
            summary,
        }),
        Event::FindingRaised {
            finding_id,
            audit_id,
            grade,
            area,
            description,
            controls,
            auditee,
        } => K::FindingRaised(pb::FindingRaised {
            finding_id: finding_id.0,
            audit_id: audit_id.0,
            grade: match grade {
                FindingGrade::MajorNonconformity => pb::FindingGrade::MajorNonconformity,
                FindingGrade::MinorNonconformity => pb::FindingGrade::MinorNonconformity,
                FindingGrade::Observation => pb::FindingGrade::Observation,
                FindingGrade::PositiveFinding => pb::FindingGrade::PositiveFinding,
            } as i32,
            area,
            description,
            controls: ids(&controls),
            auditee,
        }),
        Event::CorrectiveActionOpened {
            action_id,
            finding_id,
            description,
            owner,
        } => K::CorrectiveActionOpened(pb::CorrectiveActionOpened {
            action_id: action_id.0,
            finding_id: finding_id.0,
            description,
            owner,
        }),
        Event::RootCauseRecorded {
            action_id,
            root_cause,
        } => K::RootCauseRecorded(pb::RootCauseRecorded {
            action_id: action_id.0,
            root_cause,
        }),
        Event::CorrectiveActionClosed {
            action_id,
            resolution,
        } => K::CorrectiveActionClosed(pb::CorrectiveActionClosed {
            action_id: action_id.0,
            resolution,
        }),
        Event::CorrectiveActionVerified {
            action_id,
            effective,
            note,
        } => K::CorrectiveActionVerified(pb::CorrectiveActionVerified {
            action_id: action_id.0,
            effective,
            note,
        }),
        Event::ManagementReviewHeld {
            review_id,
            attendees,
            inputs_covered,
            decisions,
            references,
        } => K::ManagementReviewHeld(pb::ManagementReviewHeld {
            review_id: review_id.0,
            attendees,
            // The domain enums list the inputs and outputs in proto order, from 1.
            inputs_covered: inputs_covered.iter().map(|i| review_input_pb(*i)).collect(),
            input_references: references
                .into_iter()
                .map(|r| pb::InputReference {
                    input: review_input_pb(r.input),
                    reference: r.reference,
                })
                .collect(),
            decisions: decisions
                .into_iter()
                .map(|(o, decision)| pb::ReviewDecision {
                    output: 1 + model::ReviewOutput::ALL
                        .iter()
                        .position(|(x, _)| *x == o)
                        .unwrap_or(0) as i32,
                    decision,
                })
                .collect(),
        }),
        Event::TrainingRecorded {
            training_id,
            person,
            course,
            completed,
            campaign,
            due,
        } => K::TrainingRecorded(pb::TrainingRecorded {
            training_id: training_id.0,
            person,
            course,
            completed,
            campaign,
            due_us: due.map_or(0, |t| t.0),
        }),
        Event::IncidentRecorded {
            incident_id,
            title,
            severity,
            controls,
            detected_at,
            assets,
            nonconformity,
            near_miss,
        } => K::IncidentRecorded(pb::IncidentRecorded {
            incident_id: incident_id.0,
            title,
            severity: severity_pb(severity),
            controls: ids(&controls),
            detected_at_us: detected_at.map_or(0, |t| t.0),
            assets,
            nonconformity,
            near_miss,
        }),
        Event::IncidentClosed {
            incident_id,
            resolution,
            corrective_actions,
        } => K::IncidentClosed(pb::IncidentClosed {
            incident_id: incident_id.0,
            resolution,
            corrective_action_ids: corrective_actions.into_iter().map(|a| a.0).collect(),
        }),
        Event::SupplierAssessed {
            supplier_id,
            name,
            result,
            notes,
            criticality,
            next_assessment,
        } => K::SupplierAssessed(pb::SupplierAssessed {
            supplier_id: supplier_id.0,
            name,
            result: result_pb(result),
            notes,
            criticality: criticality.map_or(0, severity_pb),
            next_assessment_us: next_assessment.map_or(0, |t| t.0),
        }),
        Event::ContinuityTestHeld {
            test_id,
            plan,
            result,
            controls,
        } => K::ContinuityTestHeld(pb::ContinuityTestHeld {
            test_id: test_id.0,
            plan,
            result: result_pb(result),
            controls: ids(&controls),
        }),
        Event::AccessReviewRecorded {
            review_id,
            system,
            reviewer,
            due,
            completed,
            accounts_reviewed,
            accounts_removed,
        } => K::AccessReviewRecorded(pb::AccessReviewRecorded {
            review_id: review_id.0,
            system,
            reviewer,
            due_us: due.0,
            completed_us: completed.map_or(0, |t| t.0),
            accounts_reviewed,
            accounts_removed,
        }),
        Event::VulnerabilityRecorded {
            vulnerability_id,
            title,
            severity,
            asset,
            detected,
            remediated,
            due,
        } => K::VulnerabilityRecorded(pb::VulnerabilityRecorded {
            vulnerability_id: vulnerability_id.0,
            title,
            severity: severity_pb(severity),
            asset_id: asset.map(|a| a.0).unwrap_or_default(),
            detected_us: detected.0,
            remediated_us: remediated.map_or(0, |t| t.0),
            due_us: due.map_or(0, |t| t.0),
        }),
        Event::PatchComplianceMeasured {
            scope,
            devices_total,
            devices_compliant,
        } => K::PatchComplianceMeasured(pb::PatchComplianceMeasured {
            scope,
            devices_total,
            devices_compliant,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Given/when/then for the rules enforced while decoding (shape, ranges, catalog).
    use super::*;
    use crate::error::ErrorCode;

    fn body(kind: pb::isms_event::Kind) -> Vec<u8> {
        pb::EventBody {
            event_id: "e1".into(),
            payload: Some(pb::event_body::Payload::Isms(pb::IsmsEvent {
                kind: Some(kind),
            })),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn assessed(l: u32, i: u32, stated: Option<u32>) -> Vec<u8> {
        body(pb::isms_event::Kind::RiskAssessed(pb::RiskAssessed {
            risk_id: "RISK-001".into(),
            likelihood: l,
            impact: i,
            inherent_risk: stated,
        }))
    }

    /// The message of decoding `kind`, which must be refused as an invalid argument.
    fn refusal(kind: pb::isms_event::Kind) -> String {
        let err = decode_body(&body(kind)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
        err.to_string()
    }

    fn access_review(reviewed: u32, removed: u32) -> pb::isms_event::Kind {
        pb::isms_event::Kind::AccessReviewRecorded(pb::AccessReviewRecorded {
            review_id: "AR-1".into(),
            system: "ERP".into(),
            reviewer: "CISO".into(),
            due_us: Timestamp::from_date(2025, 3, 31).0,
            completed_us: 0,
            accounts_reviewed: reviewed,
            accounts_removed: removed,
        })
    }

    #[test]
    fn given_more_accounts_removed_than_reviewed_when_decoded_then_refused() {
        assert_eq!(
            refusal(access_review(3, 4)),
            "access_review_recorded.accounts_removed: cannot exceed accounts_reviewed"
        );
        assert!(decode_body(&body(access_review(4, 4))).is_ok());
    }

    #[test]
    fn given_an_access_review_without_a_due_date_when_decoded_then_refused() {
        let mut kind = access_review(1, 0);
        if let pb::isms_event::Kind::AccessReviewRecorded(r) = &mut kind {
            r.due_us = 0;
        }
        assert!(refusal(kind).starts_with("access_review_recorded.due_us:"));
    }

    #[test]
    fn given_a_vulnerability_remediated_before_it_was_detected_when_decoded_then_refused() {
        let vulnerability = |remediated_us: i64| {
            pb::isms_event::Kind::VulnerabilityRecorded(pb::VulnerabilityRecorded {
                vulnerability_id: "V-1".into(),
                title: "OpenSSL".into(),
                severity: pb::Severity::High as i32,
                asset_id: String::new(),
                detected_us: Timestamp::from_date(2025, 3, 10).0,
                remediated_us,
                due_us: 0,
            })
        };
        assert!(refusal(vulnerability(Timestamp::from_date(2025, 3, 9).0))
            .starts_with("vulnerability_recorded.remediated_us:"));
        assert!(decode_body(&body(vulnerability(Timestamp::from_date(2025, 3, 10).0))).is_ok());
    }

    #[test]
    fn given_more_compliant_devices_than_devices_when_decoded_then_refused() {
        let measured = |total: u32, compliant: u32| {
            pb::isms_event::Kind::PatchComplianceMeasured(pb::PatchComplianceMeasured {
                scope: "servers".into(),
                devices_total: total,
                devices_compliant: compliant,
            })
        };
        assert_eq!(
            refusal(measured(10, 11)),
            "patch_compliance_measured.devices_compliant: cannot exceed devices_total"
        );
        assert_eq!(
            refusal(measured(0, 0)),
            "patch_compliance_measured.devices_total: must be at least 1"
        );
        assert!(decode_body(&body(measured(10, 10))).is_ok());
    }

    #[test]
    fn given_a_reference_to_an_input_not_covered_when_decoded_then_refused() {
        let review = |covered: Vec<i32>| {
            pb::isms_event::Kind::ManagementReviewHeld(pb::ManagementReviewHeld {
                review_id: "MR-1".into(),
                attendees: vec!["CEO".into()],
                inputs_covered: covered,
                decisions: Vec::new(),
                input_references: vec![pb::InputReference {
                    input: 1,
                    reference: "minutes".into(),
                }],
            })
        };
        assert!(refusal(review(vec![2]))
            .starts_with("management_review_held.input_references[0].input:"));
        assert!(decode_body(&body(review(vec![1, 2]))).is_ok());
    }

    #[test]
    fn given_likelihood_7_when_decoded_then_out_of_range_names_the_field() {
        let err = decode_body(&assessed(7, 3, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "risk_assessed.likelihood: must be 1..=5 (got 7)"
        );
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        let err = decode_body(&assessed(3, 0, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "risk_assessed.impact: must be 1..=5 (got 0)"
        );
    }

    #[test]
    fn given_a_stated_score_when_it_is_not_l_times_i_then_refused() {
        let err = decode_body(&assessed(3, 4, Some(11))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "risk_assessed.inherent_risk: must equal likelihood x impact = 3 x 4 = 12 (got 11)"
        );
        assert!(decode_body(&assessed(3, 4, Some(12))).is_ok());
    }

    #[test]
    fn given_a_2013_control_id_when_decoded_then_the_error_says_so() {
        let b = body(pb::isms_event::Kind::RiskTreatmentDecided(
            pb::RiskTreatmentDecided {
                risk_id: "RISK-001".into(),
                treatment: pb::Treatment::Mitigate as i32,
                controls: vec!["A.8.8".into(), "A.12.6.1".into()],
                plan: String::new(),
            },
        ));
        let err = decode_body(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "risk_treatment_decided.controls[1]: \"A.12.6.1\" has three parts, as ISO \
             27001:2013 control ids did; Annex A:2022 ids have two (A.5.1-A.5.37, A.6.1-A.6.8, \
             A.7.1-A.7.14, A.8.1-A.8.34)"
        );
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn given_an_unknown_2022_style_id_when_decoded_then_refused() {
        let b = body(pb::isms_event::Kind::EvidenceSubmitted(
            pb::EvidenceSubmitted {
                evidence_id: "EV-1".into(),
                controls: vec!["A.5.38".into()],
                result: pb::CheckResult::Pass as i32,
                ..Default::default()
            },
        ));
        let err = decode_body(&b).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("evidence_submitted.controls[0]: \"A.5.38\" is not in Annex A:2022"));
    }

    #[test]
    fn given_no_payload_or_garbage_when_decoded_then_malformed() {
        let empty = pb::EventBody::default().encode_to_vec();
        assert_eq!(
            decode_body(&empty).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert!(decode_body(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn every_domain_event_round_trips_through_the_wire() {
        for event in crate::testkit::sample_events() {
            let header = BodyHeader {
                event_id: "x".into(),
                effective_at: Timestamp(42),
                ..Default::default()
            };
            let decoded = decode_body(&encode_to_vec(&header, &event)).unwrap();
            assert_eq!(decoded.event, event);
            assert_eq!(decoded.effective_at, Timestamp(42));
        }
    }
}
