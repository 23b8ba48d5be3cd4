//! The registers beyond risks and the SoA: every one listed, assets linked to the risks that
//! name them, the scope field by field, and policies, objectives and continuity tests as
//! registers with history (as of any time, diffable); access reviews, vulnerabilities and
//! patch compliance, and the KPIs computed from them.

use projections::{
    model::*,
    query::{MemorySnapshots, Projector, ProjectorConfig, RawEntry},
    registers::{Registers, REGISTER_NAMES},
    testkit::{c, Actor, Harness},
    Event,
};

fn world() -> (Harness, Actor) {
    let who = Actor::new("owner", &Role::ALL);
    (Harness::new(&[&who]), who)
}

fn table(h: &Harness, name: &str) -> Vec<(String, Vec<(&'static str, String)>)> {
    Registers {
        state: h.state(),
        now: h.now,
    }
    .tables()
    .into_iter()
    .find(|(n, _)| *n == name)
    .unwrap_or_else(|| panic!("no register {name}"))
    .1
    .into_iter()
    .collect()
}

/// The cells of the row `id` of a register.
fn row_of(h: &Harness, register: &str, id: &str) -> Vec<(&'static str, String)> {
    let rows = table(h, register);
    rows.iter()
        .find(|(r, _)| r == id)
        .map(|(_, cells)| cells.clone())
        .unwrap_or_else(|| panic!("no {id} in {register}: {rows:?}"))
}

fn cell<'a>(row: &'a [(&'static str, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no cell {name} in {row:?}"))
}

fn asset(id: &str, name: &str) -> Event {
    Event::AssetRegistered {
        asset_id: AssetId::parse("id", id).expect("id"),
        name: name.into(),
        asset_type: "data".into(),
        owner: "CTO".into(),
        classification: "confidential".into(),
        location: "AWS eu-west-1".into(),
        retired: false,
    }
}

fn policy(version: &str) -> Event {
    Event::PolicyApproved {
        policy_id: PolicyId::parse("id", "POL-1").expect("id"),
        title: "Information security policy".into(),
        kind: PolicyKind::InformationSecurity,
        version: version.into(),
        published: true,
        next_review: None,
    }
}

#[test]
fn the_engine_produces_exactly_the_registers_it_names() {
    let (h, _) = world();
    let names: Vec<&str> = Registers {
        state: h.state(),
        now: h.now,
    }
    .tables()
    .into_iter()
    .map(|(n, _)| n)
    .collect();
    assert_eq!(names, REGISTER_NAMES);
}

#[test]
fn an_asset_no_risk_names_shows_as_not_risk_assessed() {
    let (mut h, who) = world();
    h.append(&who, asset("AS-1", "Customer database")).unwrap();
    h.append(&who, asset("AS-2", "Laptops")).unwrap();
    h.append(
        &who,
        Event::RiskIdentified {
            risk_id: RiskId("RISK-001".into()),
            asset: "Customer database".into(),
            threat: "SQL injection".into(),
            vulnerability: "input validation".into(),
            risk_owner: "CTO".into(),
        },
    )
    .unwrap();
    let assets = table(&h, "assets");
    assert_eq!(cell(&assets[0].1, "risks"), "RISK-001");
    assert_eq!(cell(&assets[0].1, "risk_assessed"), "yes");
    assert_eq!(assets[1].0, "AS-2");
    assert_eq!(cell(&assets[1].1, "risk_assessed"), "no");
}

#[test]
fn the_scope_register_shows_each_field_of_the_latest_scope_and_who_defined_it() {
    let (mut h, who) = world();
    let scope = |statement: &str| {
        Event::ScopeDefined(Scope {
            organization: "Acme".into(),
            scope_statement: statement.into(),
            excluded: vec!["On-premise DC".into()],
            exclusion_justification: "hosted on AWS".into(),
            ..Default::default()
        })
    };
    h.append(&who, scope("The SaaS platform")).unwrap();
    h.append(&who, scope("The SaaS platform and its support desk"))
        .unwrap();
    let statement = row_of(&h, "scope", "scope_statement");
    assert_eq!(
        cell(&statement, "value"),
        "The SaaS platform and its support desk"
    );
    assert_eq!(cell(&statement, "defined_by"), "owner");
    let excluded = row_of(&h, "scope", "excluded");
    assert_eq!(cell(&excluded, "value"), "On-premise DC");
}

#[test]
fn a_new_policy_version_shows_in_the_diff_between_two_times() {
    let (mut h, who) = world();
    h.append(&who, policy("1.0")).unwrap();
    let before = h.now;
    h.advance_days(30);
    h.append(&who, policy("1.1")).unwrap();
    let entries: &[RawEntry] = &h.entries;
    let p = Projector::new(
        entries,
        MemorySnapshots::default(),
        ProjectorConfig { snapshot_every: 2 },
    );
    let diff = p.diff(before, h.now).unwrap();
    let policies = diff
        .iter()
        .find(|d| d.register == "policies")
        .expect("the policies register changed");
    assert_eq!(policies.changed.len(), 1);
    let (id, changes) = &policies.changed[0];
    assert_eq!(id, "POL-1");
    assert!(
        changes
            .iter()
            .any(|(field, was, now)| *field == "version" && was == "1.0" && now == "1.1"),
        "{changes:?}"
    );
}

#[test]
fn continuity_tests_and_objectives_are_registers() {
    let (mut h, who) = world();
    h.append(
        &who,
        Event::ContinuityTestHeld {
            test_id: TestId::parse("id", "BCP-1").expect("id"),
            plan: "failover".into(),
            result: CheckResult::Fail,
            controls: vec![c("A.5.30")],
        },
    )
    .unwrap();
    h.append(
        &who,
        Event::ObjectiveSet {
            objective_id: ObjectiveId::parse("id", "OBJ-1").expect("id"),
            description: "Patch fast".into(),
            metric: "critical patch age".into(),
            target: "< 30 days".into(),
        },
    )
    .unwrap();
    let tests = table(&h, "continuity_tests");
    assert_eq!(
        (cell(&tests[0].1, "result"), cell(&tests[0].1, "controls")),
        ("Fail", "A.5.30")
    );
    let objectives = table(&h, "objectives");
    assert_eq!(cell(&objectives[0].1, "target"), "< 30 days");
}

#[test]
fn clause_references_are_read_from_audit_scopes() {
    use projections::registers::clauses_named;
    assert_eq!(clauses_named("Clauses 4-10"), vec![4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(clauses_named("Clause 9 and clause 10"), vec![9, 10]);
    assert_eq!(
        clauses_named("clauses 4, 5 & 6 of ISO 27001"),
        vec![4, 5, 6]
    );
    assert_eq!(clauses_named("Access Control (A.5.15)"), Vec::<u8>::new());
}

fn coverage(h: &Harness) -> Vec<(String, bool, Option<String>)> {
    Registers {
        state: h.state(),
        now: h.now,
    }
    .audit_coverage()
    .into_iter()
    .map(|c| (c.item, c.in_last_12_months, c.last.map(|(id, _)| id.0)))
    .collect()
}

fn covered(rows: &[(String, bool, Option<String>)], item: &str) -> (bool, Option<String>) {
    rows.iter()
        .find(|(i, _, _)| i == item)
        .map(|(_, recent, last)| (*recent, last.clone()))
        .unwrap_or_else(|| panic!("no coverage row {item} in {rows:?}"))
}

/// An applicable SoA of two controls and a completed audit of clauses 4-10 and A.5.15.
fn audited_world() -> (Harness, Actor) {
    let (mut h, who) = world();
    for control in ["A.5.15", "A.8.8", "A.8.28"] {
        h.append(
            &who,
            Event::ControlApplicabilitySet {
                control_id: c(control),
                applicable: true,
                justification: "needed".into(),
                implementation: String::new(),
                owner: "carl".into(),
            },
        )
        .unwrap();
    }
    let now = h.now;
    h.append(
        &who,
        Event::AuditPlanned {
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            scope: "Clauses 4-10".into(),
            auditor: "ada".into(),
            start: now,
            end: now.plus_days(2),
            areas: vec![AuditArea {
                area: "Access Control (A.5.15)".into(),
                auditee: "IT".into(),
                evidence_requested: vec![],
            }],
        },
    )
    .unwrap();
    h.append(
        &who,
        Event::FindingRaised {
            finding_id: FindingId::parse("id", "F-1").unwrap(),
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            grade: FindingGrade::Observation,
            area: "Vulnerability management".into(),
            description: "scan reports not reviewed".into(),
            controls: vec![c("A.8.8")],
            auditee: "IT".into(),
        },
    )
    .unwrap();
    h.append(
        &who,
        Event::AuditCompleted {
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            summary: "done".into(),
        },
    )
    .unwrap();
    (h, who)
}

#[test]
fn a_completed_audit_covers_the_clauses_and_controls_it_names_or_its_findings_cite() {
    let (h, _) = audited_world();
    let rows = coverage(&h);
    for clause in 4..=10 {
        assert_eq!(
            covered(&rows, &format!("Clause {clause}")),
            (true, Some("IA-1".into()))
        );
    }
    assert_eq!(covered(&rows, "A.5.15"), (true, Some("IA-1".into())));
    assert_eq!(
        covered(&rows, "A.8.8"),
        (true, Some("IA-1".into())),
        "cited by a finding"
    );
    assert_eq!(covered(&rows, "A.8.28"), (false, None), "never audited");
    assert_eq!(
        rows.len(),
        7 + 3,
        "clauses 4-10 and the applicable controls"
    );
}

#[test]
fn coverage_lapses_twelve_months_after_the_audit() {
    let (mut h, _) = audited_world();
    h.advance_days(400);
    let rows = coverage(&h);
    assert_eq!(covered(&rows, "Clause 9"), (false, Some("IA-1".into())));
    assert_eq!(covered(&rows, "A.5.15"), (false, Some("IA-1".into())));
}

fn incident(id: &str, nonconformity: bool, near_miss: bool) -> Event {
    Event::IncidentRecorded {
        incident_id: IncidentId::parse("id", id).unwrap(),
        title: "Phishing".into(),
        severity: Severity::High,
        controls: vec![c("A.6.3")],
        detected_at: None,
        assets: vec!["AS-1".into()],
        nonconformity,
        near_miss,
    }
}

fn close(id: &str, actions: &[&str]) -> Event {
    Event::IncidentClosed {
        incident_id: IncidentId::parse("id", id).unwrap(),
        resolution: "contained".into(),
        corrective_actions: actions
            .iter()
            .map(|a| ActionId::parse("id", a).unwrap())
            .collect(),
    }
}

/// An audit finding with corrective action CA-1 opened, for incidents to link to.
fn with_action(h: &mut Harness, who: &Actor) {
    let now = h.now;
    for event in [
        Event::AuditPlanned {
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            scope: "Clauses 4-10".into(),
            auditor: "ada".into(),
            start: now,
            end: now.plus_days(1),
            areas: vec![],
        },
        Event::FindingRaised {
            finding_id: FindingId::parse("id", "F-1").unwrap(),
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            grade: FindingGrade::MinorNonconformity,
            area: "Awareness".into(),
            description: "phishing training overdue".into(),
            controls: vec![c("A.6.3")],
            auditee: "HR".into(),
        },
        Event::CorrectiveActionOpened {
            action_id: ActionId::parse("id", "CA-1").unwrap(),
            finding_id: FindingId::parse("id", "F-1").unwrap(),
            description: "retrain".into(),
            owner: "HR".into(),
        },
    ] {
        h.append(who, event).unwrap();
    }
}

#[test]
fn a_nonconformity_incident_cannot_be_closed_without_a_corrective_action() {
    let (mut h, who) = world();
    h.append(&who, incident("INC-1", true, false)).unwrap();
    let refused = h.append(&who, close("INC-1", &[])).expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("incident_closed.corrective_action_ids")
            && refused.to_string().contains("nonconformity"),
        "{refused}"
    );
}

#[test]
fn an_incident_can_only_name_corrective_actions_that_were_opened() {
    let (mut h, who) = world();
    h.append(&who, incident("INC-1", true, false)).unwrap();
    let refused = h
        .append(&who, close("INC-1", &["CA-9"]))
        .expect_err("refused");
    assert!(refused.to_string().contains("CA-9"), "{refused}");
    with_action(&mut h, &who);
    h.append(&who, close("INC-1", &["CA-1"])).unwrap();
    let incidents = table(&h, "incidents");
    assert_eq!(cell(&incidents[0].1, "corrective_actions"), "CA-1 (open)");
    assert_eq!(cell(&incidents[0].1, "nonconformity"), "true");
    assert_eq!(cell(&incidents[0].1, "assets"), "AS-1");
}

#[test]
fn near_misses_are_counted_apart_from_incidents() {
    let (mut h, who) = world();
    h.append(&who, incident("INC-1", false, false)).unwrap();
    h.append(&who, incident("NM-1", false, true)).unwrap();
    let kpis = Registers {
        state: h.state(),
        now: h.now,
    }
    .kpis();
    let incidents = kpis
        .iter()
        .find(|k| k.name == "Number and severity of security incidents")
        .expect("the incident KPI");
    assert_eq!(incidents.value, "1 (1 high or critical); 1 near misses");
    let rows = table(&h, "incidents");
    assert_eq!(cell(&rows[1].1, "kind"), "near miss");
}

#[test]
fn a_policy_lists_the_versions_it_superseded_and_is_overdue_past_its_review_date() {
    let (mut h, who) = world();
    h.append(&who, policy("1.0")).unwrap();
    let review = h.now.plus_days(365);
    h.append(
        &who,
        Event::PolicyApproved {
            policy_id: PolicyId::parse("id", "POL-1").unwrap(),
            title: "Information security policy".into(),
            kind: PolicyKind::InformationSecurity,
            version: "1.1".into(),
            published: true,
            next_review: Some(review),
        },
    )
    .unwrap();
    let rows = table(&h, "policies");
    assert_eq!(cell(&rows[0].1, "superseded"), "1.0");
    assert_eq!(cell(&rows[0].1, "review_overdue"), "false");
    h.advance_days(400);
    assert_eq!(cell(&table(&h, "policies")[0].1, "review_overdue"), "true");
}

#[test]
fn training_not_completed_by_its_due_date_is_overdue() {
    let (mut h, who) = world();
    let due = h.now.plus_days(30);
    for (id, completed) in [("TR-1", true), ("TR-2", false)] {
        h.append(
            &who,
            Event::TrainingRecorded {
                training_id: TrainingId::parse("id", id).unwrap(),
                person: id.into(),
                course: "awareness".into(),
                completed,
                campaign: "2025".into(),
                due: Some(due),
            },
        )
        .unwrap();
    }
    h.advance_days(31);
    let rows = table(&h, "training");
    assert_eq!(
        (cell(&rows[0].1, "overdue"), cell(&rows[1].1, "overdue")),
        ("false", "true")
    );
    assert_eq!(cell(&rows[1].1, "campaign"), "2025");
}

#[test]
fn a_supplier_shows_its_criticality_and_when_its_next_assessment_falls_due() {
    let (mut h, who) = world();
    let next = h.now.plus_days(180);
    h.append(
        &who,
        Event::SupplierAssessed {
            supplier_id: SupplierId::parse("id", "SUP-1").unwrap(),
            name: "Payroll SaaS".into(),
            result: CheckResult::Pass,
            notes: "SOC 2".into(),
            criticality: Some(Severity::High),
            next_assessment: Some(next),
        },
    )
    .unwrap();
    let rows = table(&h, "suppliers");
    assert_eq!(cell(&rows[0].1, "criticality"), "High");
    assert_eq!(cell(&rows[0].1, "assessment_overdue"), "false");
    h.advance_days(181);
    assert_eq!(
        cell(&table(&h, "suppliers")[0].1, "assessment_overdue"),
        "true"
    );
}

#[test]
fn targets_are_read_as_comparisons() {
    use projections::registers::meets_target;
    assert_eq!(meets_target("< 5%", "3.9%"), Some(true));
    assert_eq!(meets_target("< 5%", "6.1%"), Some(false));
    assert_eq!(meets_target(">= 95%", "95%"), Some(true));
    assert_eq!(meets_target("at most 30 days", "31 days"), Some(false));
    assert_eq!(meets_target("as low as possible", "3%"), None);
}

fn measured(id: &str, value: &str) -> Event {
    Event::ObjectiveMeasured {
        objective_id: ObjectiveId::parse("id", id).unwrap(),
        value: value.into(),
        note: String::new(),
    }
}

#[test]
fn an_objective_shows_its_latest_measurement_and_whether_it_meets_the_target() {
    let (mut h, who) = world();
    h.append(
        &who,
        Event::ObjectiveSet {
            objective_id: ObjectiveId::parse("id", "OBJ-1").unwrap(),
            description: "Phishing".into(),
            metric: "click rate".into(),
            target: "< 5%".into(),
        },
    )
    .unwrap();
    h.append(&who, measured("OBJ-1", "6.1%")).unwrap();
    assert_eq!(cell(&table(&h, "objectives")[0].1, "meets_target"), "no");
    h.append(&who, measured("OBJ-1", "3.9%")).unwrap();
    let rows = table(&h, "objectives");
    assert_eq!(
        (
            cell(&rows[0].1, "latest_value"),
            cell(&rows[0].1, "measurements"),
            cell(&rows[0].1, "meets_target")
        ),
        ("3.9%", "2", "yes")
    );
}

#[test]
fn measuring_an_objective_never_set_is_refused() {
    let (mut h, who) = world();
    let refused = h
        .append(&who, measured("OBJ-9", "1%"))
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("objective_measured.objective_id"),
        "{refused}"
    );
}

fn review(id: &str, previous_actions: bool) -> Event {
    let inputs: Vec<ReviewInput> = ReviewInput::ALL
        .iter()
        .map(|(i, _)| *i)
        .filter(|i| previous_actions || *i != ReviewInput::PreviousActions)
        .collect();
    Event::ManagementReviewHeld {
        review_id: ReviewId::parse("id", id).unwrap(),
        attendees: vec!["CEO".into(), "CISO".into(), "CTO".into()],
        inputs_covered: inputs,
        decisions: vec![
            (ReviewOutput::Resources, "hire an engineer".into()),
            (ReviewOutput::Improvement, "security champions".into()),
        ],
        references: vec![InputReference {
            input: ReviewInput::AuditResults,
            reference: "IA-1 report".into(),
        }],
    }
}

fn close_decision(id: &str, decision: u32) -> Event {
    Event::ReviewDecisionClosed {
        review_id: ReviewId::parse("id", id).unwrap(),
        decision,
        resolution: "done".into(),
    }
}

#[test]
fn review_decisions_are_tracked_to_closure_and_reported_at_the_next_review() {
    let (mut h, who) = world();
    h.append(&who, review("MR-1", true)).unwrap();
    h.advance_days(30);
    h.append(&who, close_decision("MR-1", 1)).unwrap();
    h.advance_days(60);
    h.append(&who, review("MR-2", true)).unwrap();
    let row = |id: &str| row_of(&h, "review_actions", id);
    assert_eq!(
        (
            cell(&row("MR-1 #1"), "status"),
            cell(&row("MR-1 #2"), "status")
        ),
        ("Closed", "Open")
    );
    assert_eq!(cell(&row("MR-1 #1"), "next_review"), "MR-2");
    assert_eq!(cell(&row("MR-1 #1"), "reported_at_next_review"), "yes");
    assert_eq!(cell(&row("MR-2 #1"), "next_review"), "");
}

#[test]
fn a_next_review_that_skips_previous_actions_does_not_report_them() {
    let (mut h, who) = world();
    h.append(&who, review("MR-1", true)).unwrap();
    h.advance_days(90);
    h.append(&who, review("MR-2", false)).unwrap();
    let first = row_of(&h, "review_actions", "MR-1 #1");
    assert_eq!(cell(&first, "reported_at_next_review"), "no");
}

#[test]
fn closing_a_decision_the_review_did_not_record_is_refused() {
    let (mut h, who) = world();
    h.append(&who, review("MR-1", true)).unwrap();
    let refused = h
        .append(&who, close_decision("MR-1", 3))
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("review_decision_closed.decision")
            && refused.to_string().contains("2 decisions"),
        "{refused}"
    );
    h.append(&who, close_decision("MR-1", 2)).unwrap();
    let again = h
        .append(&who, close_decision("MR-1", 2))
        .expect_err("refused");
    assert!(again.to_string().contains("already closed"), "{again}");
}

fn external(id: &str, kind: ExternalAuditKind, start: Timestamp, certified: bool) -> Event {
    Event::ExternalAuditHeld {
        audit_id: AuditId::parse("id", id).unwrap(),
        kind,
        body: "Cert Body".into(),
        start,
        end: start.plus_days(2),
        major_nonconformities: 0,
        minor_nonconformities: 1,
        certified,
        summary: String::new(),
    }
}

fn cycle_status(h: &Harness, row: &str) -> (String, String) {
    let cells = row_of(h, "certification_cycle", row);
    (
        cell(&cells, "status").to_string(),
        cell(&cells, "due").to_string(),
    )
}

#[test]
fn a_certification_starts_the_three_year_cycle_of_surveillance_and_recertification() {
    let (mut h, who) = world();
    let start = h.now;
    h.append(
        &who,
        external("CB-1", ExternalAuditKind::Stage2, start, true),
    )
    .unwrap();
    let (status, due) = cycle_status(&h, "cycle: surveillance 1");
    assert_eq!(status, "due");
    assert!(
        due.starts_with(&start.plus_days(2 + 365).to_string()[..10]),
        "{due}"
    );
    h.advance_days(300);
    let surveilled = h.now;
    h.append(
        &who,
        external("CB-2", ExternalAuditKind::Surveillance, surveilled, true),
    )
    .unwrap();
    assert_eq!(cycle_status(&h, "cycle: surveillance 1").0, "held (CB-2)");
    h.advance_days(500);
    assert_eq!(cycle_status(&h, "cycle: surveillance 2").0, "overdue");
    assert!(cycle_status(&h, "cycle: certificate").0.contains("CB-1"));
}

#[test]
fn without_a_certification_the_cycle_says_so() {
    let (mut h, who) = world();
    let now = h.now;
    h.append(
        &who,
        external("CB-1", ExternalAuditKind::Stage1, now, false),
    )
    .unwrap();
    assert_eq!(cycle_status(&h, "cycle").0, "not certified");
}

#[test]
fn an_external_audit_id_is_recorded_once() {
    let (mut h, who) = world();
    let now = h.now;
    h.append(
        &who,
        external("CB-1", ExternalAuditKind::Stage1, now, false),
    )
    .unwrap();
    let refused = h
        .append(&who, external("CB-1", ExternalAuditKind::Stage2, now, true))
        .expect_err("refused");
    assert!(
        refused.to_string().contains("already recorded"),
        "{refused}"
    );
}

fn requirement(id: &str) -> Event {
    Event::LegalRequirementRecorded {
        requirement_id: RequirementId::parse("id", id).unwrap(),
        title: "GDPR".into(),
        jurisdiction: "EU".into(),
        owner: "DPO".into(),
        controls: vec![c("A.5.34")],
    }
}

#[test]
fn a_legal_requirement_shows_its_latest_compliance_review_and_when_the_next_is_overdue() {
    let (mut h, who) = world();
    h.append(&who, requirement("LEG-1")).unwrap();
    assert_eq!(
        cell(&table(&h, "legal_requirements")[0].1, "review_overdue"),
        "never reviewed"
    );
    let next = h.now.plus_days(365);
    h.append(
        &who,
        Event::ComplianceReviewed {
            requirement_id: RequirementId::parse("id", "LEG-1").unwrap(),
            result: CheckResult::Pass,
            note: "up to date".into(),
            next_review: Some(next),
        },
    )
    .unwrap();
    let rows = table(&h, "legal_requirements");
    assert_eq!(
        (
            cell(&rows[0].1, "compliance"),
            cell(&rows[0].1, "review_overdue")
        ),
        ("Pass", "false")
    );
    h.advance_days(366);
    assert_eq!(
        cell(&table(&h, "legal_requirements")[0].1, "review_overdue"),
        "true"
    );
}

#[test]
fn reviewing_compliance_with_an_unrecorded_requirement_is_refused() {
    let (mut h, who) = world();
    let refused = h
        .append(
            &who,
            Event::ComplianceReviewed {
                requirement_id: RequirementId::parse("id", "LEG-9").unwrap(),
                result: CheckResult::Fail,
                note: String::new(),
                next_review: None,
            },
        )
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("compliance_reviewed.requirement_id"),
        "{refused}"
    );
}

fn access_review(h: &Harness, id: &str, due_in: i64, completed_in: Option<i64>) -> Event {
    Event::AccessReviewRecorded {
        review_id: AccessReviewId::parse("id", id).unwrap(),
        system: "ERP".into(),
        reviewer: "CISO".into(),
        due: h.now.plus_days(due_in),
        completed: completed_in.map(|d| h.now.plus_days(d)),
        accounts_reviewed: 10,
        accounts_removed: 1,
    }
}

#[test]
fn an_access_review_is_done_done_late_overdue_or_open_by_its_due_day() {
    let (mut h, who) = world();
    for event in [
        access_review(&h, "AR-ON-TIME", 10, Some(10)),
        access_review(&h, "AR-LATE", 5, Some(8)),
        access_review(&h, "AR-MISSED", 5, None),
        access_review(&h, "AR-LATER", 30, None),
    ] {
        h.append(&who, event).unwrap();
    }
    h.advance_days(12);
    let status = |id: &str| cell(&row_of(&h, "access_reviews", id), "status").to_string();
    assert_eq!(
        [
            status("AR-ON-TIME"),
            status("AR-LATE"),
            status("AR-MISSED"),
            status("AR-LATER")
        ],
        ["done", "done late", "overdue", "open"]
    );
}

#[test]
fn the_latest_record_of_an_access_review_is_its_state() {
    let (mut h, who) = world();
    h.append(&who, access_review(&h, "AR-1", 5, None)).unwrap();
    h.advance_days(3);
    h.append(&who, access_review(&h, "AR-1", 2, Some(0)))
        .unwrap();
    let row = row_of(&h, "access_reviews", "AR-1");
    assert_eq!(cell(&row, "status"), "done");
    assert_eq!(table(&h, "access_reviews").len(), 1);
}

fn vulnerability(h: &Harness, id: &str, severity: Severity, remediated_in: Option<i64>) -> Event {
    Event::VulnerabilityRecorded {
        vulnerability_id: VulnerabilityId::parse("id", id).unwrap(),
        title: "flaw".into(),
        severity,
        asset: None,
        detected: h.now,
        remediated: remediated_in.map(|d| h.now.plus_days(d)),
        due: None,
    }
}

#[test]
fn a_vulnerability_without_a_deadline_gets_the_sla_of_its_severity() {
    let (mut h, who) = world();
    let mut expected = Vec::new();
    for (id, severity, days) in [
        ("V-CRIT", Severity::Critical, 15),
        ("V-HIGH", Severity::High, 30),
        ("V-MED", Severity::Medium, 90),
        ("V-LOW", Severity::Low, 180),
    ] {
        // Detected at the harness's clock, which moves with every append.
        expected.push((id, h.now.plus_days(days).to_string()));
        h.append(&who, vulnerability(&h, id, severity, None))
            .unwrap();
    }
    for (id, due) in expected {
        assert_eq!(cell(&row_of(&h, "vulnerabilities", id), "due"), due, "{id}");
    }
}

#[test]
fn an_open_vulnerability_past_its_deadline_is_overdue() {
    let (mut h, who) = world();
    h.append(&who, vulnerability(&h, "V-1", Severity::Critical, None))
        .unwrap();
    h.advance_days(14);
    assert_eq!(
        cell(&row_of(&h, "vulnerabilities", "V-1"), "status"),
        "open"
    );
    h.advance_days(2);
    assert_eq!(
        cell(&row_of(&h, "vulnerabilities", "V-1"), "status"),
        "overdue"
    );
}

#[test]
fn a_vulnerability_on_an_asset_never_registered_is_refused() {
    let (mut h, who) = world();
    let on_as_404 = |h: &Harness| {
        let mut event = vulnerability(h, "V-1", Severity::High, None);
        if let Event::VulnerabilityRecorded { asset, .. } = &mut event {
            *asset = Some(AssetId::parse("id", "AS-404").unwrap());
        }
        event
    };
    let err = h.append(&who, on_as_404(&h)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("vulnerability_recorded.asset_id:"),
        "{err}"
    );
    h.append(&who, asset("AS-404", "now registered")).unwrap();
    h.append(&who, on_as_404(&h)).unwrap();
}

fn kpi(h: &Harness, name: &str) -> String {
    Registers {
        state: h.state(),
        now: h.now,
    }
    .kpis()
    .into_iter()
    .find(|k| k.name == name)
    .unwrap_or_else(|| panic!("no KPI {name}"))
    .value
}

#[test]
fn vulnerability_sla_compliance_counts_fixes_within_the_deadline_among_those_due_or_fixed() {
    let (mut h, who) = world();
    h.append(
        &who,
        vulnerability(&h, "V-FAST", Severity::Critical, Some(3)),
    )
    .unwrap();
    h.append(
        &who,
        vulnerability(&h, "V-SLOW", Severity::Critical, Some(20)),
    )
    .unwrap();
    h.append(&who, vulnerability(&h, "V-OPEN", Severity::Critical, None))
        .unwrap();
    h.append(&who, vulnerability(&h, "V-NOT-DUE", Severity::Low, None))
        .unwrap();
    h.advance_days(25);
    // Judged: the two fixed and the open one past its 15 days; not the low one, not yet due.
    assert_eq!(kpi(&h, "Vulnerability remediation SLA compliance"), "33.3%");
}

#[test]
fn access_review_completion_counts_reviews_done_among_those_due() {
    let (mut h, who) = world();
    for event in [
        access_review(&h, "AR-1", 5, Some(4)),
        access_review(&h, "AR-2", 5, None),
        access_review(&h, "AR-3", 60, None),
    ] {
        h.append(&who, event).unwrap();
    }
    h.advance_days(10);
    assert_eq!(kpi(&h, "Access review completion rate"), "50.0%");
}

#[test]
fn patch_compliance_is_the_latest_measurement_of_each_population_together() {
    let (mut h, who) = world();
    for (scope, total, compliant) in [("servers", 10, 5), ("laptops", 30, 27), ("servers", 10, 9)] {
        h.append(
            &who,
            Event::PatchComplianceMeasured {
                scope: scope.into(),
                devices_total: total,
                devices_compliant: compliant,
            },
        )
        .unwrap();
        h.advance_days(1);
    }
    // servers 9/10 (the earlier 5/10 is replaced) and laptops 27/30: 36/40.
    assert_eq!(kpi(&h, "Patch compliance percentage"), "90.0%");
    assert_eq!(
        cell(&row_of(&h, "patch_compliance", "servers"), "compliance"),
        "90.0%"
    );
}

#[test]
fn without_patch_records_the_kpi_is_computed_from_patching_evidence_until_one_is_kept() {
    let (mut h, who) = world();
    for (id, result) in [("EV-1", CheckResult::Pass), ("EV-2", CheckResult::Fail)] {
        h.append(
            &who,
            Event::EvidenceSubmitted {
                evidence_id: EvidenceId::parse("id", id).unwrap(),
                controls: vec![c("A.8.8")],
                artifact_blake3: None,
                result,
                collected_at: h.now,
                summary: "patch scan".into(),
            },
        )
        .unwrap();
    }
    assert_eq!(kpi(&h, "Patch compliance percentage"), "50.0%");
    h.append(
        &who,
        Event::PatchComplianceMeasured {
            scope: "servers".into(),
            devices_total: 4,
            devices_compliant: 3,
        },
    )
    .unwrap();
    assert_eq!(kpi(&h, "Patch compliance percentage"), "75.0%");
}

fn finding_in(audit: &str, id: &str) -> Event {
    Event::FindingRaised {
        finding_id: FindingId::parse("id", id).unwrap(),
        audit_id: AuditId::parse("id", audit).unwrap(),
        grade: FindingGrade::MinorNonconformity,
        area: "Logging (A.8.15)".into(),
        description: "retention too short".into(),
        controls: vec![c("A.8.15")],
        auditee: "Infra".into(),
    }
}

#[test]
fn a_certification_bodys_nonconformity_is_recorded_against_its_external_audit() {
    let (mut h, who) = world();
    let start = h.now;
    h.append(
        &who,
        external("CB-1", ExternalAuditKind::Stage2, start, true),
    )
    .unwrap();
    let cells = row_of(&h, "certification_cycle", "CB-1");
    assert_eq!(cell(&cells, "nonconformities_recorded"), "0 of 1");
    h.append(&who, finding_in("CB-1", "F-CB-1")).unwrap();
    let cells = row_of(&h, "certification_cycle", "CB-1");
    assert_eq!(cell(&cells, "nonconformities_recorded"), "1 of 1");
    assert_eq!(cell(&row_of(&h, "findings", "F-CB-1"), "audit"), "CB-1");
}

#[test]
fn a_finding_in_an_audit_neither_planned_nor_held_is_refused() {
    let (mut h, who) = world();
    let err = h.append(&who, finding_in("CB-404", "F-1")).unwrap_err();
    assert!(
        err.to_string().starts_with("finding_raised.audit_id:")
            && err.to_string().contains("neither planned nor recorded"),
        "{err}"
    );
}

/// An internal audit whose one area requests two items.
fn audit_requesting_evidence(h: &mut Harness, who: &Actor) {
    let now = h.now;
    h.append(
        who,
        Event::AuditPlanned {
            audit_id: AuditId::parse("id", "IA-1").unwrap(),
            scope: "Clauses 4-10".into(),
            auditor: "ada".into(),
            start: now,
            end: now.plus_days(2),
            areas: vec![AuditArea {
                area: "Access Control (A.5.15)".into(),
                auditee: "IT".into(),
                evidence_requested: vec!["access review records".into(), "JML tickets".into()],
            }],
        },
    )
    .unwrap();
}

fn received(area: &str, item: &str) -> Event {
    Event::AuditEvidenceReceived {
        audit_id: AuditId::parse("id", "IA-1").unwrap(),
        area: area.into(),
        item: item.into(),
        reference: "EV-1".into(),
    }
}

#[test]
fn an_audit_shows_the_evidence_requested_and_not_yet_received() {
    let (mut h, who) = world();
    audit_requesting_evidence(&mut h, &who);
    let audit = row_of(&h, "audits", "IA-1");
    assert_eq!(cell(&audit, "evidence_received"), "0 of 2");
    h.append(&who, received("Access Control (A.5.15)", "JML tickets"))
        .unwrap();
    let audit = row_of(&h, "audits", "IA-1");
    assert_eq!(cell(&audit, "evidence_received"), "1 of 2");
    assert_eq!(
        cell(&audit, "evidence_outstanding"),
        "Access Control (A.5.15): access review records"
    );
}

#[test]
fn evidence_an_area_never_requested_is_refused_naming_what_it_did_request() {
    let (mut h, who) = world();
    audit_requesting_evidence(&mut h, &who);
    let err = h
        .append(&who, received("Access Control (A.5.15)", "payroll"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("audit_evidence_received.item:") && err.contains("\"JML tickets\""),
        "{err}"
    );
    let err = h
        .append(&who, received("Physical security", "JML tickets"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("audit_evidence_received.area:"), "{err}");
}

#[test]
fn a_retired_asset_whose_risk_is_still_open_is_flagged() {
    let (mut h, who) = world();
    h.append(&who, asset("AS-1", "Old file server")).unwrap();
    h.append(
        &who,
        Event::RiskIdentified {
            risk_id: RiskId("RISK-001".into()),
            asset: "AS-1".into(),
            threat: "disk theft".into(),
            vulnerability: "unencrypted disks".into(),
            risk_owner: "CTO".into(),
        },
    )
    .unwrap();
    let flagged = |h: &Harness| {
        let row = row_of(h, "assets", "AS-1");
        (
            cell(&row, "status").to_string(),
            cell(&row, "open_risks_on_retired_asset").to_string(),
        )
    };
    assert_eq!(flagged(&h), ("in use".into(), String::new()));
    let mut retired = asset("AS-1", "Old file server");
    if let Event::AssetRegistered { retired: r, .. } = &mut retired {
        *r = true;
    }
    h.append(&who, retired).unwrap();
    assert_eq!(flagged(&h), ("retired".into(), "RISK-001".into()));
}

#[test]
fn a_management_review_names_the_inputs_it_covered_without_saying_where() {
    let (mut h, who) = world();
    h.append(&who, review("MR-1", true)).unwrap();
    let row = row_of(&h, "management_reviews", "MR-1");
    let unreferenced = cell(&row, "inputs_without_reference");
    // Audit results were referenced; every other covered input was not.
    assert!(!unreferenced.contains("Audit results"), "{unreferenced}");
    assert_eq!(
        unreferenced.split("; ").count(),
        ReviewInput::ALL.len() - 1,
        "{unreferenced}"
    );
}

#[test]
fn an_internal_and_an_external_audit_cannot_share_an_id() {
    let (mut h, who) = world();
    let start = h.now;
    h.append(
        &who,
        external("AUD-1", ExternalAuditKind::Stage1, start, false),
    )
    .unwrap();
    let err = h
        .append(
            &who,
            Event::AuditPlanned {
                audit_id: AuditId::parse("id", "AUD-1").unwrap(),
                scope: "Clauses 4-10".into(),
                auditor: "ada".into(),
                start,
                end: start.plus_days(1),
                areas: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().starts_with("audit_planned.audit_id:")
            && err.to_string().contains("external audit has that id"),
        "{err}"
    );
}

#[test]
fn registering_an_asset_again_keeps_the_fields_it_leaves_empty() {
    let (mut h, who) = world();
    h.append(&who, asset("AS-1", "Old file server")).unwrap();
    h.append(
        &who,
        Event::AssetRegistered {
            asset_id: AssetId::parse("id", "AS-1").unwrap(),
            name: String::new(),
            asset_type: String::new(),
            owner: "Head of IT".into(),
            classification: String::new(),
            location: String::new(),
            retired: true,
        },
    )
    .unwrap();
    let row = row_of(&h, "assets", "AS-1");
    assert_eq!(
        [
            cell(&row, "name"),
            cell(&row, "owner"),
            cell(&row, "classification"),
            cell(&row, "location"),
            cell(&row, "status"),
        ],
        [
            "Old file server",
            "Head of IT",
            "confidential",
            "AWS eu-west-1",
            "retired"
        ]
    );
}
