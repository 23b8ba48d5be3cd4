//! The seed guide's own YAML examples, taken in unchanged (from `fixtures/seed/`), become
//! registers with the values the guide states.

use projections::{
    model::*,
    registers::{Registers, SoaStatus},
    seed,
    testkit::{c, Actor, Harness},
    Event,
};

const RISKS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/seed/risk_assessment.yaml"
));
const SOA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/seed/soa_template.yaml"
));
const AUDIT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/seed/internal_audit.yaml"
));

#[test]
fn seed_risk_register_gives_the_guides_scores_bands_and_controls() {
    let rita = Actor::new("rita", &[Role::RiskOwner]);
    let mut h = Harness::new(&[&rita]);
    for e in seed::risk_register_events(RISKS).unwrap() {
        h.append(&rita, e).unwrap();
    }
    let rows = Registers {
        state: h.state(),
        now: h.now,
    }
    .risk_register();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.risk_id.0.as_str(),
                r.inherent.unwrap().2.get(),
                r.inherent.unwrap().3,
                r.residual.unwrap().2.get(),
                r.residual.unwrap().3,
                r.controls
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                r.treatment,
                r.owner.as_str(),
            )
        })
        .collect();
    let m = Some(Treatment::Mitigate);
    assert_eq!(
        got,
        vec![
            (
                "RISK-001",
                12,
                Band::Mitigate,
                4,
                Band::Accept,
                vec!["A.8.28".to_owned(), "A.8.8".into()],
                m,
                "CTO"
            ),
            (
                "RISK-002",
                10,
                Band::Mitigate,
                5,
                Band::Mitigate,
                vec!["A.5.15".to_owned(), "A.8.3".into()],
                m,
                "VP Engineering"
            ),
            (
                "RISK-003",
                9,
                Band::Mitigate,
                6,
                Band::Mitigate,
                vec!["A.5.30".to_owned(), "A.8.14".into()],
                m,
                "Head of Infrastructure"
            ),
        ]
    );
    // Score history: inherent then residual.
    assert_eq!(
        rows[0]
            .history
            .iter()
            .map(|h| (h.0, h.1.get()))
            .collect::<Vec<_>>(),
        vec![(false, 12), (true, 4)]
    );
}

#[test]
fn a_changed_stated_score_in_the_yaml_is_refused_with_its_field() {
    let bad = RISKS.replacen("inherent_risk: 12", "inherent_risk: 13", 1);
    let err = seed::risk_register_events(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example_risk_register[0].inherent_risk: must equal likelihood x impact = 3 x 4 = 12 (got 13)"
    );
}

#[test]
fn seed_soa_template_lands_in_the_soa_and_the_rest_are_not_yet_assessed() {
    let carl = Actor::new("carl", &[Role::ControlOwner]);
    let mut h = Harness::new(&[&carl]);
    let events = seed::soa_events(SOA).unwrap();
    assert_eq!(events.len(), 20);
    for e in events {
        h.append(&carl, e).unwrap();
    }
    let soa = Registers {
        state: h.state(),
        now: h.now,
    }
    .soa();
    assert_eq!(soa.len(), 93);
    let row = |id: &str| soa.iter().find(|r| r.control_id == c(id)).unwrap();
    let a515 = row("A.5.15");
    assert_eq!(a515.applicable, Some(true));
    assert_eq!(a515.justification, "Required for data protection");
    assert_eq!(
        a515.implementation,
        "RBAC via Okta, least-privilege IAM policies, quarterly access reviews"
    );
    let a71 = row("A.7.1");
    assert_eq!(a71.applicable, Some(false));
    assert_eq!(
        a71.justification,
        "No company-operated data centers, inherited from AWS"
    );
    assert_eq!(
        row("A.6.1").implementation,
        "Background checks for all employees before hiring"
    );
    assert_eq!(
        soa.iter()
            .filter(|r| r.status == SoaStatus::Assessed)
            .count(),
        20
    );
    assert_eq!(
        soa.iter()
            .filter(|r| r.status == SoaStatus::NotYetAssessed)
            .count(),
        73
    );
    assert_eq!(row("A.5.3").status, SoaStatus::NotYetAssessed);
}

#[test]
fn seed_audit_plan_becomes_a_plan() {
    let ada = Actor::new("ada", &[Role::Auditor]);
    let mut h = Harness::new(&[&ada]);
    let event = seed::audit_plan_event(AUDIT).unwrap();
    assert!(matches!(&event, Event::AuditPlanned { audit_id, .. } if audit_id.0 == "IA-2025-Q1"));
    h.append(&ada, event).unwrap();
    let audit = &h.state().audits[&AuditId("IA-2025-Q1".into())];
    assert_eq!(audit.scope, "Clauses 4-10, Annex A controls A.5.1-A.5.15");
    assert_eq!(
        audit.auditor,
        "Internal auditor (independent of audited area)"
    );
    assert_eq!(
        (audit.start.to_string(), audit.end.to_string()),
        ("2025-03-10".into(), "2025-03-14".into())
    );
    assert_eq!(audit.areas.len(), 2);
    assert_eq!(audit.areas[0].auditee, "IT Security Team");
    assert_eq!(
        audit.areas[1].evidence_requested[0],
        "Current risk register"
    );
}
