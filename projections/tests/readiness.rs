//! The 26 readiness items of the seed's checklists, one test each: every item is judged from
//! the records (not typed in), and each test drives it through the verdicts it can take —
//! not met, partly met (where the item has a partial state) and met — checking the entries
//! the verdict cites.

use projections::{
    model::*,
    registers::{Readiness, Registers},
    testkit::{c, Actor, Harness},
    Event,
};

use Readiness::{Met, NotMet, PartlyMet};

/// One key holding every role, so each test is about the readiness rule, not permissions.
fn owner() -> Actor {
    Actor::new("owner", &Role::ALL)
}

fn world() -> (Harness, Actor) {
    let who = owner();
    (Harness::new(&[&who]), who)
}

/// The verdict on `item` now, and the entries it cites.
fn verdict(h: &Harness, item: &str) -> (Readiness, Vec<u64>) {
    let found = Registers {
        state: h.state(),
        now: h.now,
    }
    .readiness()
    .into_iter()
    .find(|i| i.item == item)
    .unwrap_or_else(|| panic!("no readiness item {item:?}"));
    (found.status, found.entries)
}

fn status(h: &Harness, item: &str) -> Readiness {
    verdict(h, item).0
}

/// Appends and returns the new entry's seq.
fn add(h: &mut Harness, who: &Actor, event: Event) -> u64 {
    h.append(who, event).expect("the event is accepted");
    h.entries.len() as u64 - 1
}

fn scope() -> Event {
    Event::ScopeDefined(Scope {
        organization: "Acme".into(),
        scope_statement: "The SaaS platform".into(),
        ..Default::default()
    })
}

fn policy(id: &str, kind: PolicyKind, published: bool) -> Event {
    Event::PolicyApproved {
        policy_id: PolicyId::parse("id", id).expect("id"),
        title: format!("{id} policy"),
        kind,
        version: "1.0".into(),
        published,
        next_review: None,
    }
}

fn objective(id: &str) -> Event {
    Event::ObjectiveSet {
        objective_id: ObjectiveId::parse("id", id).expect("id"),
        description: "Patch fast".into(),
        metric: "critical patch age".into(),
        target: "< 30 days".into(),
    }
}

fn risk(id: &str) -> Event {
    Event::RiskIdentified {
        risk_id: RiskId(id.into()),
        asset: "Customer database".into(),
        threat: "SQL injection".into(),
        vulnerability: "input validation".into(),
        risk_owner: "CTO".into(),
    }
}

fn assessed(id: &str) -> Event {
    Event::RiskAssessed {
        risk_id: RiskId(id.into()),
        likelihood: Likelihood::parse("l", 3).expect("1..=5"),
        impact: Impact::parse("i", 4).expect("1..=5"),
    }
}

fn mitigated(id: &str) -> Event {
    Event::RiskTreatmentDecided {
        risk_id: RiskId(id.into()),
        treatment: Treatment::Mitigate,
        controls: vec![c("A.8.28")],
        plan: "WAF".into(),
    }
}

fn applicable(control: &str, yes: bool) -> Event {
    Event::ControlApplicabilitySet {
        control_id: c(control),
        applicable: yes,
        justification: "risk treatment".into(),
        implementation: if yes {
            "in place".into()
        } else {
            String::new()
        },
        owner: "carl".into(),
    }
}

fn implemented(control: &str) -> Event {
    Event::ImplementationStatusChanged {
        control_id: c(control),
        status: ImplementationStatus::Implemented,
        note: String::new(),
    }
}

fn evidence(id: &str, control: &str, collected_at: Timestamp) -> Event {
    Event::EvidenceSubmitted {
        evidence_id: EvidenceId::parse("id", id).expect("id"),
        controls: vec![c(control)],
        artifact_blake3: None,
        result: CheckResult::Pass,
        collected_at,
        summary: "scan".into(),
    }
}

fn audit(id: &str, start: Timestamp) -> Event {
    Event::AuditPlanned {
        audit_id: AuditId::parse("id", id).expect("id"),
        scope: "Clauses 4-10".into(),
        auditor: "ada".into(),
        start,
        end: start.plus_days(2),
        areas: vec![AuditArea {
            area: "Access Control (A.5.15)".into(),
            auditee: "IT".into(),
            evidence_requested: vec!["records".into()],
        }],
    }
}

fn audit_completed(id: &str) -> Event {
    Event::AuditCompleted {
        audit_id: AuditId::parse("id", id).expect("id"),
        summary: "done".into(),
    }
}

fn finding(id: &str, audit_id: &str) -> Event {
    Event::FindingRaised {
        finding_id: FindingId::parse("id", id).expect("id"),
        audit_id: AuditId::parse("id", audit_id).expect("id"),
        grade: FindingGrade::MinorNonconformity,
        area: "Access Control (A.5.15)".into(),
        description: "reviews late".into(),
        controls: vec![c("A.5.15")],
        auditee: "IT".into(),
    }
}

fn action(id: &str, finding_id: &str) -> Event {
    Event::CorrectiveActionOpened {
        action_id: ActionId::parse("id", id).expect("id"),
        finding_id: FindingId::parse("id", finding_id).expect("id"),
        description: "run the reviews".into(),
        owner: "carl".into(),
    }
}

fn closed(id: &str) -> Event {
    Event::CorrectiveActionClosed {
        action_id: ActionId::parse("id", id).expect("id"),
        resolution: "done".into(),
    }
}

fn review(id: &str, inputs: &[ReviewInput], outputs: &[ReviewOutput]) -> Event {
    Event::ManagementReviewHeld {
        review_id: ReviewId::parse("id", id).expect("id"),
        attendees: vec!["CEO".into(), "CISO".into(), "Head of Engineering".into()],
        inputs_covered: inputs.to_vec(),
        decisions: outputs.iter().map(|o| (*o, "decided".into())).collect(),
        references: Vec::new(),
    }
}

fn full_review(id: &str) -> Event {
    let inputs: Vec<ReviewInput> = ReviewInput::ALL.iter().map(|(i, _)| *i).collect();
    let outputs: Vec<ReviewOutput> = ReviewOutput::ALL.iter().map(|(o, _)| *o).collect();
    review(id, &inputs, &outputs)
}

fn training(id: &str, completed: bool) -> Event {
    Event::TrainingRecorded {
        training_id: TrainingId::parse("id", id).expect("id"),
        person: format!("person {id}"),
        course: "security awareness".into(),
        completed,
        campaign: String::new(),
        due: None,
    }
}

fn incident(id: &str) -> Event {
    Event::IncidentRecorded {
        incident_id: IncidentId::parse("id", id).expect("id"),
        title: "phishing".into(),
        severity: Severity::Medium,
        controls: vec![c("A.6.3")],
        detected_at: None,
        assets: vec![],
        nonconformity: false,
        near_miss: false,
    }
}

fn supplier(id: &str) -> Event {
    Event::SupplierAssessed {
        supplier_id: SupplierId::parse("id", id).expect("id"),
        name: "AWS".into(),
        result: CheckResult::Pass,
        notes: "ISO certificate".into(),
        criticality: None,
        next_assessment: None,
    }
}

fn continuity_test(id: &str, result: CheckResult) -> Event {
    Event::ContinuityTestHeld {
        test_id: TestId::parse("id", id).expect("id"),
        plan: "failover".into(),
        result,
        controls: vec![c("A.5.30")],
    }
}

/// Risk, assessment and treatment for `id`.
fn treated_risk(h: &mut Harness, who: &Actor, id: &str) {
    add(h, who, risk(id));
    add(h, who, assessed(id));
    add(h, who, mitigated(id));
}

/// An audit with one finding and one corrective action opened for it.
fn audit_with_action(h: &mut Harness, who: &Actor, n: u32) -> String {
    let (audit_id, finding_id, action_id) =
        (format!("IA-{n}"), format!("F-{n}"), format!("CA-{n}"));
    let now = h.now;
    add(h, who, audit(&audit_id, now));
    add(h, who, finding(&finding_id, &audit_id));
    add(h, who, audit_completed(&audit_id));
    add(h, who, action(&action_id, &finding_id));
    action_id
}

// Stage 1.

#[test]
fn scope_documented_is_met_by_a_scope_defined_entry() {
    let item = "ISMS scope documented and approved";
    let (mut h, who) = world();
    assert_eq!(verdict(&h, item), (NotMet, vec![]));
    let seq = add(&mut h, &who, scope());
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn information_security_policy_is_partly_met_until_published() {
    let item = "Information security policy published";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(
        &mut h,
        &who,
        policy("POL-1", PolicyKind::InformationSecurity, false),
    );
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(
        &mut h,
        &who,
        policy("POL-1", PolicyKind::InformationSecurity, true),
    );
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn risk_methodology_is_partly_met_when_risks_are_scored_without_a_methodology_policy() {
    let item = "Risk assessment methodology defined";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, risk("RISK-001"));
    add(&mut h, &who, assessed("RISK-001"));
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(
        &mut h,
        &who,
        policy("POL-2", PolicyKind::RiskMethodology, true),
    );
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn risk_assessment_is_met_when_every_identified_risk_is_scored() {
    let item = "Risk assessment completed with risk register";
    let (mut h, who) = world();
    add(&mut h, &who, risk("RISK-001"));
    add(&mut h, &who, risk("RISK-002"));
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, assessed("RISK-001"));
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, assessed("RISK-002"));
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!(verdict_now, Met);
    assert_eq!(entries.len(), 2, "both risks cited: {entries:?}");
}

#[test]
fn risk_treatment_plan_is_met_when_every_assessed_risk_has_a_treatment() {
    let item = "Risk treatment plan developed";
    let (mut h, who) = world();
    for id in ["RISK-001", "RISK-002"] {
        add(&mut h, &who, risk(id));
        add(&mut h, &who, assessed(id));
    }
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, mitigated("RISK-001"));
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(&mut h, &who, mitigated("RISK-002"));
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!(verdict_now, Met);
    assert!(entries.contains(&seq), "{entries:?}");
}

#[test]
fn soa_is_met_only_when_all_93_controls_are_decided() {
    let item = "Statement of Applicability completed";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let all = projections::catalog();
    assert_eq!(all.len(), 93);
    add(&mut h, &who, applicable(&all[0].id.to_string(), true));
    assert_eq!(status(&h, item), PartlyMet);
    for control in &all[1..] {
        add(&mut h, &who, applicable(&control.id.to_string(), true));
    }
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!(verdict_now, Met);
    assert_eq!(entries.len(), 93);
}

#[test]
fn objectives_are_met_by_an_objective_with_metric_and_target() {
    let item = "ISMS objectives defined with measurable targets";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let seq = add(&mut h, &who, objective("OBJ-1"));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn audit_programme_is_met_by_a_planned_audit() {
    let item = "Internal audit program established";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let now = h.now;
    let seq = add(&mut h, &who, audit("IA-1", now.plus_days(30)));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn a_completed_internal_audit_is_partly_met_while_audits_are_only_planned() {
    let item = "At least one full internal audit completed";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let now = h.now;
    add(&mut h, &who, audit("IA-1", now));
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(&mut h, &who, audit_completed("IA-1"));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn management_review_is_partly_met_when_mandatory_inputs_are_missing() {
    let item = "Management review conducted with minutes documented";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(
        &mut h,
        &who,
        review(
            "MR-1",
            &[ReviewInput::AuditResults],
            &[ReviewOutput::Resources],
        ),
    );
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, full_review("MR-2"));
    assert_eq!(status(&h, item), Met);
}

#[test]
fn a_management_review_without_its_required_attendees_is_partly_met() {
    let item = "Management review conducted with minutes documented";
    let (mut h, who) = world();
    let inputs: Vec<ReviewInput> = ReviewInput::ALL.iter().map(|(i, _)| *i).collect();
    let outputs: Vec<ReviewOutput> = ReviewOutput::ALL.iter().map(|(o, _)| *o).collect();
    let mut without_ceo = review("MR-1", &inputs, &outputs);
    if let Event::ManagementReviewHeld { attendees, .. } = &mut without_ceo {
        *attendees = vec!["CISO".into(), "Head of Engineering".into()];
    }
    add(&mut h, &who, without_ceo);
    assert_eq!(status(&h, item), PartlyMet);
    let missing = Registers {
        state: h.state(),
        now: h.now,
    }
    .management_reviews()[0]
        .attendees_missing
        .clone();
    assert_eq!(missing, vec!["CEO or Managing Director"]);
}

#[test]
fn document_control_is_met_by_a_document_control_policy() {
    let item = "Document control process in place";
    let (mut h, who) = world();
    add(
        &mut h,
        &who,
        policy("POL-1", PolicyKind::InformationSecurity, true),
    );
    assert_eq!(
        status(&h, item),
        NotMet,
        "another kind of policy does not count"
    );
    let seq = add(
        &mut h,
        &who,
        policy("POL-3", PolicyKind::DocumentControl, true),
    );
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

// Stage 2.

#[test]
fn controls_implemented_is_met_when_every_applicable_control_is_implemented() {
    let item = "All Annex A controls implemented per SoA";
    let (mut h, who) = world();
    add(&mut h, &who, applicable("A.5.15", true));
    add(&mut h, &who, applicable("A.8.8", true));
    add(&mut h, &who, applicable("A.7.1", false));
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, implemented("A.5.15"));
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, implemented("A.8.8"));
    assert_eq!(
        status(&h, item),
        Met,
        "a control not applicable is not required"
    );
}

#[test]
fn evidence_of_operation_needs_90_days_of_evidence_per_applicable_control() {
    let item = "Evidence of control operation for 3+ months";
    let (mut h, who) = world();
    add(&mut h, &who, applicable("A.5.15", true));
    add(&mut h, &who, applicable("A.8.8", true));
    let start = h.now;
    add(&mut h, &who, evidence("EV-1", "A.5.15", start));
    add(&mut h, &who, evidence("EV-2", "A.8.8", start));
    h.advance_days(100);
    assert_eq!(
        status(&h, item),
        NotMet,
        "one day of evidence is not 3 months"
    );
    add(
        &mut h,
        &who,
        evidence("EV-3", "A.5.15", start.plus_days(95)),
    );
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(&mut h, &who, evidence("EV-4", "A.8.8", start.plus_days(92)));
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!(verdict_now, Met);
    assert!(entries.contains(&seq), "{entries:?}");
}

#[test]
fn corrective_actions_tracked_are_met_when_every_action_is_closed() {
    let item = "Corrective actions from internal audit tracked and closed";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet, "no audit, no actions");
    let first = audit_with_action(&mut h, &who, 1);
    let second = audit_with_action(&mut h, &who, 2);
    add(&mut h, &who, closed(&first));
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, closed(&second));
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!((verdict_now, entries.len()), (Met, 2));
}

#[test]
fn training_is_met_when_every_training_record_is_completed() {
    let item = "Security awareness training delivered and recorded";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, training("TR-1", true));
    add(&mut h, &who, training("TR-2", false));
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, training("TR-2", true));
    assert_eq!(status(&h, item), Met);
}

#[test]
fn incident_management_needs_both_a_policy_and_incident_records() {
    let item = "Incident management process operational with records";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let policy_seq = add(
        &mut h,
        &who,
        policy("POL-4", PolicyKind::IncidentManagement, true),
    );
    assert_eq!(status(&h, item), PartlyMet);
    let incident_seq = add(&mut h, &who, incident("INC-1"));
    let (verdict_now, mut entries) = verdict(&h, item);
    entries.sort();
    assert_eq!(
        (verdict_now, entries),
        (Met, vec![policy_seq, incident_seq])
    );
}

#[test]
fn supplier_assessments_are_met_by_an_assessed_supplier() {
    let item = "Supplier security assessments performed";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let seq = add(&mut h, &who, supplier("SUP-1"));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn continuity_testing_is_partly_met_while_no_test_has_passed() {
    let item = "Business continuity plan tested";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, continuity_test("BCP-1", CheckResult::Fail));
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, continuity_test("BCP-2", CheckResult::Pass));
    assert_eq!(status(&h, item), Met);
}

#[test]
fn mandatory_documents_are_met_when_all_eight_exist() {
    let item = "All mandatory documented information available";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, scope());
    add(
        &mut h,
        &who,
        policy("POL-1", PolicyKind::InformationSecurity, true),
    );
    assert_eq!(status(&h, item), PartlyMet);
    add(
        &mut h,
        &who,
        policy("POL-2", PolicyKind::RiskMethodology, true),
    );
    add(
        &mut h,
        &who,
        policy("POL-3", PolicyKind::DocumentControl, true),
    );
    add(&mut h, &who, objective("OBJ-1"));
    let now = h.now;
    add(&mut h, &who, audit("IA-1", now));
    add(&mut h, &who, audit_completed("IA-1"));
    add(&mut h, &who, full_review("MR-1"));
    for control in projections::catalog() {
        add(&mut h, &who, applicable(&control.id.to_string(), true));
    }
    assert_eq!(status(&h, item), Met);
}

#[test]
fn awareness_needs_a_published_policy_and_completed_training() {
    let item = "Employees aware of security policy and their responsibilities";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(
        &mut h,
        &who,
        policy("POL-1", PolicyKind::InformationSecurity, true),
    );
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, training("TR-1", true));
    assert_eq!(status(&h, item), Met);
}

// Surveillance.

#[test]
fn certification_audit_actions_are_closed_cites_the_actions_still_open() {
    let item = "All corrective actions from certification audit closed";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let first = audit_with_action(&mut h, &who, 1);
    let second = audit_with_action(&mut h, &who, 2);
    add(&mut h, &who, closed(&first));
    let (verdict_now, open) = verdict(&h, item);
    assert_eq!(
        (verdict_now, open.len()),
        (PartlyMet, 1),
        "the open action is cited"
    );
    add(&mut h, &who, closed(&second));
    assert_eq!(verdict(&h, item), (Met, vec![]));
}

#[test]
fn audit_schedule_is_partly_met_when_the_last_audit_is_over_a_year_old() {
    let item = "Continuous internal audit schedule maintained";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let now = h.now;
    add(&mut h, &who, audit("IA-1", now));
    h.advance_days(400);
    assert_eq!(status(&h, item), PartlyMet);
    let now = h.now;
    let seq = add(&mut h, &who, audit("IA-2", now));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn management_reviews_are_partly_met_when_the_last_is_over_a_year_old() {
    let item = "Management reviews conducted per schedule";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, full_review("MR-1"));
    h.advance_days(400);
    assert_eq!(status(&h, item), PartlyMet);
    add(&mut h, &who, full_review("MR-2"));
    assert_eq!(status(&h, item), Met);
}

#[test]
fn risk_register_updates_are_partly_met_when_no_open_risk_changed_this_year() {
    let item = "Risk register updated with new threats and changes";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    treated_risk(&mut h, &who, "RISK-001");
    h.advance_days(400);
    assert_eq!(status(&h, item), PartlyMet);
    let seq = add(&mut h, &who, risk("RISK-002"));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn effectiveness_metrics_need_objectives_and_recent_evidence() {
    let item = "Metrics demonstrate ISMS effectiveness";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    let seq = add(&mut h, &who, objective("OBJ-1"));
    assert_eq!(status(&h, item), PartlyMet);
    let now = h.now;
    add(&mut h, &who, evidence("EV-1", "A.8.8", now));
    assert_eq!(verdict(&h, item), (Met, vec![seq]));
}

#[test]
fn effectiveness_metrics_are_met_by_a_recent_measurement_of_an_objective() {
    let item = "Metrics demonstrate ISMS effectiveness";
    let (mut h, who) = world();
    let set = add(&mut h, &who, objective("OBJ-1"));
    assert_eq!(status(&h, item), PartlyMet);
    let measured = add(
        &mut h,
        &who,
        Event::ObjectiveMeasured {
            objective_id: ObjectiveId::parse("id", "OBJ-1").expect("id"),
            value: "12 days".into(),
            note: String::new(),
        },
    );
    assert_eq!(verdict(&h, item), (Met, vec![set, measured]));
    h.advance_days(120);
    assert_eq!(
        status(&h, item),
        PartlyMet,
        "a measurement goes stale after 3 months"
    );
}

#[test]
fn scope_changes_are_documented_by_the_latest_scope_entry() {
    let item = "Changes to ISMS scope documented";
    let (mut h, who) = world();
    assert_eq!(status(&h, item), NotMet);
    add(&mut h, &who, scope());
    let seq = add(&mut h, &who, scope());
    let (verdict_now, entries) = verdict(&h, item);
    assert_eq!(verdict_now, Met);
    assert!(
        entries.contains(&seq),
        "the latest scope entry is cited: {entries:?}"
    );
}

#[test]
fn the_checklists_hold_the_26_items_these_tests_name() {
    let (h, _) = world();
    let items = Registers {
        state: h.state(),
        now: h.now,
    }
    .readiness();
    assert_eq!(items.len(), 26);
}
