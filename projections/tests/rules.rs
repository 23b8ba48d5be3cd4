//! Given/when/then tests for every rule an event must pass: given these entries, when this
//! event, then this register or this error (and a refused event leaves nothing behind).

use projections::{
    model::*,
    registers::{Registers, SoaStatus},
    state::ActionStatus,
    testkit::{c, Actor, Harness},
    wire::BodyHeader,
    Error, ErrorCode, Event,
};

struct Cast {
    rita: Actor,
    carl: Actor,
    ada: Actor,
    mona: Actor,
    scanner: Actor,
    reader: Actor,
}

fn cast() -> Cast {
    Cast {
        rita: Actor::new("rita", &[Role::RiskOwner]),
        carl: Actor::new("carl", &[Role::ControlOwner]),
        ada: Actor::new("ada", &[Role::Auditor]),
        mona: Actor::new("mona", &[Role::Management]),
        scanner: Actor::new("ci/scanner", &[Role::Agent]),
        reader: Actor::new("rob", &[Role::Reader]),
    }
}

fn world(c: &Cast) -> Harness {
    Harness::new(&[&c.rita, &c.carl, &c.ada, &c.mona, &c.scanner, &c.reader])
}

fn rid() -> RiskId {
    RiskId("RISK-001".into())
}

fn identified() -> Event {
    Event::RiskIdentified {
        risk_id: rid(),
        asset: "Customer database".into(),
        threat: "SQL injection attack".into(),
        vulnerability: "Insufficient input validation".into(),
        risk_owner: "CTO".into(),
    }
}

fn assessed(l: u32, i: u32) -> Event {
    Event::RiskAssessed {
        risk_id: rid(),
        likelihood: Likelihood::parse("l", l).unwrap(),
        impact: Impact::parse("i", i).unwrap(),
    }
}

fn accepted(justification: &str) -> Event {
    Event::RiskAccepted {
        risk_id: rid(),
        justification: justification.into(),
    }
}

/// Asserts the append is refused with `code` and a message containing `text`, and that the
/// state is unchanged.
fn refused(h: &mut Harness, who: &Actor, event: Event, code: ErrorCode, text: &str) -> Error {
    let before = h.state().clone();
    let err = h.append(who, event).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert!(
        err.to_string().contains(text),
        "message {:?} lacks {text:?}",
        err.to_string()
    );
    assert_eq!(h.state(), &before, "a refused event must leave nothing");
    err
}

#[test]
fn given_an_assessed_risk_then_score_is_l_times_i_with_its_band() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(3, 4)).unwrap();
    let rows = Registers {
        state: h.state(),
        now: h.now,
    }
    .risk_register();
    let (_, _, score, band) = rows[0].inherent.unwrap();
    assert_eq!((score.get(), band), (12, Band::Mitigate));
}

#[test]
fn appetite_bands_are_accept_1_4_mitigate_5_14_escalate_15_25() {
    let band = |l, i| {
        Score::of(
            Likelihood::parse("l", l).unwrap(),
            Impact::parse("i", i).unwrap(),
        )
        .band()
    };
    assert_eq!(band(1, 4), Band::Accept);
    assert_eq!(band(1, 5), Band::Mitigate);
    assert_eq!(band(2, 5), Band::Mitigate);
    assert_eq!(band(3, 5), Band::Escalate);
    assert_eq!(band(5, 5), Band::Escalate);
}

#[test]
fn given_a_risk_within_appetite_when_management_accepts_without_justification_then_accepted() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 4)).unwrap();
    h.append(&c.mona, accepted("")).unwrap();
}

#[test]
fn given_a_risk_above_appetite_when_accepted_without_justification_then_refused() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(3, 4)).unwrap();
    refused(
        &mut h,
        &c.mona,
        accepted(""),
        ErrorCode::InvalidArgument,
        "risk_accepted.justification: required (risk RISK-001 scores 12 (band mitigate), above the appetite (accept 1-4))",
    );
    h.append(&c.mona, accepted("cost of WAF exceeds impact"))
        .unwrap();
}

#[test]
fn given_a_risk_when_a_risk_owner_accepts_it_then_a_management_key_is_required() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 2)).unwrap();
    refused(
        &mut h,
        &c.rita,
        accepted("fine"),
        ErrorCode::PermissionDenied,
        "role: risk_accepted may be appended only by a key with role management; the key of \"rita\" holds [risk_owner]",
    );
}

#[test]
fn given_an_excluded_control_without_justification_then_refused() {
    let c = cast();
    let mut h = world(&c);
    let event = |j: &str| Event::ControlApplicabilitySet {
        control_id: projections::testkit::c("A.7.1"),
        applicable: false,
        justification: j.into(),
        implementation: String::new(),
        owner: "carl".into(),
    };
    refused(
        &mut h,
        &c.carl,
        event(""),
        ErrorCode::InvalidArgument,
        "control_applicability_set.exclusion_justification: required (excluding A.7.1 from the SoA needs a justification)",
    );
    h.append(&c.carl, event("No company-operated data centers"))
        .unwrap();
    let soa = Registers {
        state: h.state(),
        now: h.now,
    }
    .soa();
    let row = soa
        .iter()
        .find(|r| r.control_id == projections::testkit::c("A.7.1"))
        .unwrap();
    assert_eq!(
        (row.applicable, row.status),
        (Some(false), SoaStatus::Assessed)
    );
}

fn finding_and_action(c: &Cast, h: &mut Harness, grade: FindingGrade) {
    h.append(
        &c.ada,
        Event::AuditPlanned {
            audit_id: AuditId("IA-1".into()),
            scope: "Annex A".into(),
            auditor: "ada".into(),
            start: h.now,
            end: h.now.plus_days(1),
            areas: vec![AuditArea {
                area: "Access Control (A.5.15)".into(),
                auditee: "carl".into(),
                evidence_requested: vec![],
            }],
        },
    )
    .unwrap();
    h.append(
        &c.ada,
        Event::FindingRaised {
            finding_id: FindingId("F-1".into()),
            audit_id: AuditId("IA-1".into()),
            grade,
            area: "Logging".into(),
            description: "no log review".into(),
            controls: vec![projections::testkit::c("A.8.15")],
            auditee: "IT".into(),
        },
    )
    .unwrap();
    h.append(
        &c.carl,
        Event::CorrectiveActionOpened {
            action_id: ActionId("CA-1".into()),
            finding_id: FindingId("F-1".into()),
            description: "weekly log review".into(),
            owner: "carl".into(),
        },
    )
    .unwrap();
}

fn close() -> Event {
    Event::CorrectiveActionClosed {
        action_id: ActionId("CA-1".into()),
        resolution: "done".into(),
    }
}

fn verify() -> Event {
    Event::CorrectiveActionVerified {
        action_id: ActionId("CA-1".into()),
        effective: true,
        note: String::new(),
    }
}

#[test]
fn given_an_open_action_when_verified_before_closing_then_refused() {
    let c = cast();
    let mut h = world(&c);
    finding_and_action(&c, &mut h, FindingGrade::MinorNonconformity);
    refused(
        &mut h,
        &c.ada,
        verify(),
        ErrorCode::FailedPrecondition,
        "corrective_action_verified.action_id: cannot verify corrective action CA-1: it is open, not closed",
    );
}

#[test]
fn given_a_closed_action_when_closed_again_then_refused() {
    let c = cast();
    let mut h = world(&c);
    finding_and_action(&c, &mut h, FindingGrade::MinorNonconformity);
    h.append(&c.carl, close()).unwrap();
    refused(
        &mut h,
        &c.carl,
        close(),
        ErrorCode::FailedPrecondition,
        "cannot close corrective action CA-1: it is closed, not open",
    );
    h.append(&c.ada, verify()).unwrap();
    let rows = Registers {
        state: h.state(),
        now: h.now,
    }
    .corrective_actions();
    assert_eq!(rows[0].status, ActionStatus::Verified);
}

#[test]
fn given_a_major_nonconformity_when_closed_without_root_cause_then_refused() {
    let c = cast();
    let mut h = world(&c);
    finding_and_action(&c, &mut h, FindingGrade::MajorNonconformity);
    refused(
        &mut h,
        &c.carl,
        close(),
        ErrorCode::FailedPrecondition,
        "a major nonconformity needs its root cause recorded first",
    );
}

#[test]
fn given_a_person_closed_an_action_when_the_same_person_verifies_with_another_key_then_refused() {
    let c = cast();
    let mut h = world(&c);
    // Carl holds a second key with the auditor role.
    let carl_auditor = Actor {
        public_key: [9; 32],
        subject: Subject("carl".into()),
        roles: vec![Role::Auditor],
    };
    h.append(
        &Actor::new("admin", &[Role::Admin]),
        Event::KeyEnrolled(carl_auditor.enrolment()),
    )
    .unwrap();
    finding_and_action(&c, &mut h, FindingGrade::MinorNonconformity);
    h.append(&c.carl, close()).unwrap();
    refused(
        &mut h,
        &carl_auditor,
        verify(),
        ErrorCode::PermissionDenied,
        "separation of duties: carl closed corrective action CA-1 and so cannot verify it",
    );
}

#[test]
fn given_an_auditor_owns_a_control_when_raising_a_finding_on_it_then_refused() {
    let c = cast();
    let both = Actor::new("ada", &[Role::Auditor, Role::ControlOwner]);
    let mut h = Harness::new(&[&both, &c.carl]);
    h.append(
        &both,
        Event::ControlApplicabilitySet {
            control_id: projections::testkit::c("A.8.15"),
            applicable: true,
            justification: "needed".into(),
            implementation: "SIEM".into(),
            owner: "ada".into(),
        },
    )
    .unwrap();
    h.append(
        &both,
        Event::AuditPlanned {
            audit_id: AuditId("IA-1".into()),
            scope: "all".into(),
            auditor: "ada".into(),
            start: h.now,
            end: h.now,
            areas: vec![],
        },
    )
    .unwrap();
    let finding = |controls: Vec<projections::ControlId>, auditee: &str| Event::FindingRaised {
        finding_id: FindingId("F-1".into()),
        audit_id: AuditId("IA-1".into()),
        grade: FindingGrade::Observation,
        area: "Logging".into(),
        description: String::new(),
        controls,
        auditee: auditee.into(),
    };
    refused(
        &mut h,
        &both,
        finding(vec![projections::testkit::c("A.8.15")], "IT"),
        ErrorCode::PermissionDenied,
        "an auditor cannot raise findings on an area they own: ada owns control A.8.15",
    );
    refused(
        &mut h,
        &both,
        finding(vec![], "ada"),
        ErrorCode::PermissionDenied,
        "ada is the auditee",
    );
    h.append(
        &both,
        finding(vec![projections::testkit::c("A.5.15")], "IT"),
    )
    .unwrap();
}

#[test]
fn given_roles_when_appending_each_kind_then_only_listed_roles_may() {
    let c = cast();
    let mut h = world(&c);
    let now = h.now;
    refused(
        &mut h,
        &c.scanner,
        identified(),
        ErrorCode::PermissionDenied,
        "role: risk_identified",
    );
    refused(
        &mut h,
        &c.reader,
        identified(),
        ErrorCode::PermissionDenied,
        "role: risk_identified",
    );
    refused(
        &mut h,
        &c.rita,
        Event::EvidenceSubmitted {
            evidence_id: EvidenceId("EV-1".into()),
            controls: vec![projections::testkit::c("A.8.8")],
            artifact_blake3: None,
            result: CheckResult::Pass,
            collected_at: now,
            summary: String::new(),
        },
        ErrorCode::PermissionDenied,
        "evidence_submitted may be appended only by a key with role agent or control_owner or auditor",
    );
    // Every kind names at least one role, and readers may append nothing.
    for e in projections::testkit::sample_events() {
        let roles = e.kind().allowed_roles();
        assert!(!roles.is_empty());
        assert!(!roles.contains(&Role::Reader));
    }
    h.append(&c.rita, identified()).unwrap();
}

#[test]
fn given_a_risk_at_version_2_when_expected_version_is_1_then_refused() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(2, 2)).unwrap();
    let header = |v| BodyHeader {
        expected_version: Some(v),
        ..Default::default()
    };
    let before = h.state().clone();
    let err = h
        .append_with(&c.rita, header(1), assessed(3, 3))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition);
    assert_eq!(
        err.to_string(),
        "expected_version: risk RISK-001 is at version 2, not 1"
    );
    assert_eq!(h.state(), &before);
    h.append_with(&c.rita, header(2), assessed(3, 3)).unwrap();
}

#[test]
fn given_no_risk_when_assessed_or_identified_twice_then_invalid_transition() {
    let c = cast();
    let mut h = world(&c);
    refused(
        &mut h,
        &c.rita,
        assessed(1, 1),
        ErrorCode::FailedPrecondition,
        "risk_assessed.risk_id: cannot assess risk RISK-001: it was never identified",
    );
    h.append(&c.rita, identified()).unwrap();
    refused(
        &mut h,
        &c.rita,
        identified(),
        ErrorCode::FailedPrecondition,
        "it already exists",
    );
}

#[test]
fn given_a_control_never_assessed_when_approved_or_implemented_then_refused() {
    let c = cast();
    let mut h = world(&c);
    refused(
        &mut h,
        &c.mona,
        Event::ControlApproved {
            control_ids: vec![projections::testkit::c("A.5.1")],
            soa_version: "1".into(),
        },
        ErrorCode::FailedPrecondition,
        "control_approved.control_ids[0]: cannot approve control A.5.1: its applicability was never set",
    );
    refused(
        &mut h,
        &c.carl,
        Event::ImplementationStatusChanged {
            control_id: projections::testkit::c("A.5.1"),
            status: ImplementationStatus::Implemented,
            note: String::new(),
        },
        ErrorCode::FailedPrecondition,
        "its applicability was never set",
    );
}

#[test]
fn given_evidence_collected_in_the_future_then_refused() {
    let c = cast();
    let mut h = world(&c);
    let now = h.now;
    refused(
        &mut h,
        &c.scanner,
        Event::EvidenceSubmitted {
            evidence_id: EvidenceId("EV-1".into()),
            controls: vec![projections::testkit::c("A.8.8")],
            artifact_blake3: None,
            result: CheckResult::Pass,
            collected_at: now.plus_days(2),
            summary: String::new(),
        },
        ErrorCode::InvalidArgument,
        "evidence_submitted.collected_at_us: must not lie in the future",
    );
}

#[test]
fn given_evidence_collected_before_1970_then_refused_naming_the_field_and_the_window() {
    let c = cast();
    let mut h = world(&c);
    refused(
        &mut h,
        &c.scanner,
        Event::EvidenceSubmitted {
            evidence_id: EvidenceId("EV-1".into()),
            controls: vec![projections::testkit::c("A.8.8")],
            artifact_blake3: None,
            result: CheckResult::Pass,
            collected_at: Timestamp(i64::MIN),
            summary: String::new(),
        },
        ErrorCode::InvalidArgument,
        "evidence_submitted.collected_at_us: must lie from 1970-01-01 to 9999-12-31",
    );
}

#[test]
fn given_an_effective_time_before_1970_then_refused_naming_the_field() {
    let c = cast();
    let mut h = world(&c);
    let before = h.state().clone();
    let header = BodyHeader {
        effective_at: Timestamp(-1),
        ..Default::default()
    };
    let err = h
        .append_with(&c.rita, header, identified())
        .expect_err("effective before 1970");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(
        err.to_string()
            .starts_with("effective_at_us: must lie from 1970-01-01"),
        "{err}"
    );
    assert_eq!(h.state(), &before);
}

#[test]
fn given_a_major_finding_then_due_dates_follow_the_sla_and_overdue_is_judged_at_query_time() {
    let c = cast();
    let mut h = world(&c);
    finding_and_action(&c, &mut h, FindingGrade::MajorNonconformity);
    let raised = h.state().findings[&FindingId("F-1".into())]
        .raised
        .effective_at;
    let at = |days| {
        let now = raised.plus_days(days);
        Registers {
            state: h.state(),
            now,
        }
        .corrective_actions()
        .remove(0)
    };
    let row = at(5);
    assert_eq!(row.root_cause_due, Some(raised.plus_days(10)));
    assert_eq!(row.action_due, Some(raised.plus_days(30)));
    assert!(row.overdue.is_empty());
    assert_eq!(at(11).overdue, vec!["root_cause"]);
    assert_eq!(at(31).overdue, vec!["root_cause", "action"]);
}

#[test]
fn given_a_minor_finding_then_the_action_is_due_in_60_days() {
    let c = cast();
    let mut h = world(&c);
    finding_and_action(&c, &mut h, FindingGrade::MinorNonconformity);
    let row = Registers {
        state: h.state(),
        now: h.now,
    }
    .corrective_actions()
    .remove(0);
    let raised = h.state().findings[&FindingId("F-1".into())]
        .raised
        .effective_at;
    assert_eq!(
        (row.root_cause_due, row.action_due),
        (None, Some(raised.plus_days(60)))
    );
}

#[test]
fn given_a_positive_finding_when_an_action_is_opened_then_refused() {
    let cast = cast();
    let mut h = world(&cast);
    h.append(
        &cast.ada,
        Event::AuditPlanned {
            audit_id: AuditId("IA-1".into()),
            scope: String::new(),
            auditor: "ada".into(),
            start: h.now,
            end: h.now,
            areas: vec![],
        },
    )
    .unwrap();
    h.append(
        &cast.ada,
        Event::FindingRaised {
            finding_id: FindingId("F-9".into()),
            audit_id: AuditId("IA-1".into()),
            grade: FindingGrade::PositiveFinding,
            area: "HR".into(),
            description: String::new(),
            controls: vec![],
            auditee: "HR".into(),
        },
    )
    .unwrap();
    refused(
        &mut h,
        &cast.carl,
        Event::CorrectiveActionOpened {
            action_id: ActionId("CA-9".into()),
            finding_id: FindingId("F-9".into()),
            description: String::new(),
            owner: String::new(),
        },
        ErrorCode::FailedPrecondition,
        "it is a positive finding",
    );
}

#[test]
fn evidence_register_counts_and_covers_the_trailing_three_months() {
    let cast = cast();
    let mut h = world(&cast);
    let start = h.now;
    for week in 0..20 {
        h.advance_days(7);
        let collected_at = h.now;
        h.append(
            &cast.scanner,
            Event::EvidenceSubmitted {
                evidence_id: EvidenceId(format!("EV-{week}")),
                controls: vec![c("A.8.8")],
                artifact_blake3: None,
                result: if week == 3 {
                    CheckResult::Fail
                } else {
                    CheckResult::Pass
                },
                collected_at,
                summary: String::new(),
            },
        )
        .unwrap();
    }
    let rows = Registers {
        state: h.state(),
        now: h.now,
    }
    .evidence();
    assert_eq!((rows[0].count, rows[0].passed, rows[0].failed), (20, 19, 1));
    assert!((rows[0].coverage_3_months - 1.0).abs() < 1e-9);
    assert_eq!(
        rows[0].latest.as_ref().unwrap().0,
        EvidenceId("EV-19".into())
    );
    // Half a year later nothing falls in the window.
    let later = Registers {
        state: h.state(),
        now: h.now.plus_days(200),
    }
    .evidence();
    assert_eq!(later[0].coverage_3_months, 0.0);
    assert!(start < h.now);
}

fn treated_accept(plan: &str) -> Event {
    Event::RiskTreatmentDecided {
        risk_id: rid(),
        treatment: Treatment::Accept,
        controls: Vec::new(),
        plan: plan.into(),
    }
}

#[test]
fn given_a_risk_in_the_escalate_band_when_its_owner_decides_to_accept_without_justification_then_refused(
) {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(5, 5)).unwrap();
    refused(
        &mut h,
        &c.rita,
        treated_accept(""),
        ErrorCode::InvalidArgument,
        "risk_treatment_decided.plan: required (accepting risk RISK-001, scored 25 (escalate band",
    );
    h.append(&c.rita, treated_accept("legacy system retired in Q3"))
        .unwrap();
}

#[test]
fn given_a_risk_within_the_mitigate_band_when_its_owner_decides_to_accept_then_no_justification_is_needed(
) {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(2, 3)).unwrap();
    h.append(&c.rita, treated_accept("")).unwrap();
}

fn risk_status(h: &Harness) -> projections::state::RiskStatus {
    Registers {
        state: h.state(),
        now: h.now,
    }
    .risk_register()[0]
        .status
}

fn treatment_plan_item(h: &Harness) -> projections::registers::ReadinessItem {
    Registers {
        state: h.state(),
        now: h.now,
    }
    .readiness()
    .into_iter()
    .find(|i| i.item == "Risk treatment plan developed")
    .expect("the treatment plan item")
}

#[test]
fn given_its_owner_decides_to_accept_a_risk_then_it_awaits_management_acceptance() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 4)).unwrap();
    h.append(&c.rita, treated_accept("")).unwrap();
    assert_eq!(
        risk_status(&h),
        projections::state::RiskStatus::AwaitingAcceptance
    );
}

#[test]
fn given_a_risk_awaiting_acceptance_when_management_accepts_it_then_it_is_accepted() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 4)).unwrap();
    h.append(&c.rita, treated_accept("")).unwrap();
    h.append(&c.mona, accepted("")).unwrap();
    assert_eq!(risk_status(&h), projections::state::RiskStatus::Accepted);
}

#[test]
fn given_a_risk_awaiting_acceptance_when_its_treatment_becomes_mitigate_then_it_is_treated() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 4)).unwrap();
    h.append(&c.rita, treated_accept("")).unwrap();
    h.append(
        &c.rita,
        Event::RiskTreatmentDecided {
            risk_id: rid(),
            treatment: Treatment::Mitigate,
            controls: vec![projections::testkit::c("A.8.28")],
            plan: "input validation".into(),
        },
    )
    .unwrap();
    assert_eq!(risk_status(&h), projections::state::RiskStatus::Treated);
}

#[test]
fn given_a_risk_awaiting_acceptance_then_the_treatment_plan_is_not_met_until_management_accepts() {
    let c = cast();
    let mut h = world(&c);
    h.append(&c.rita, identified()).unwrap();
    h.append(&c.rita, assessed(1, 4)).unwrap();
    h.append(&c.rita, treated_accept("")).unwrap();
    let item = treatment_plan_item(&h);
    assert_eq!(
        item.status,
        projections::registers::Readiness::NotMet,
        "{item:?}"
    );
    assert!(
        item.reason
            .contains("1 to be accepted await management acceptance"),
        "{item:?}"
    );
    h.append(&c.mona, accepted("")).unwrap();
    assert_eq!(
        treatment_plan_item(&h).status,
        projections::registers::Readiness::Met
    );
}
