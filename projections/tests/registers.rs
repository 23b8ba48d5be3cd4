//! The registers beyond risks and the SoA: every one listed, assets linked to the risks that
//! name them, the scope field by field, and policies, objectives and continuity tests as
//! registers with history (as of any time, diffable).

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
    }
}

fn policy(version: &str) -> Event {
    Event::PolicyApproved {
        policy_id: PolicyId::parse("id", "POL-1").expect("id"),
        title: "Information security policy".into(),
        kind: PolicyKind::InformationSecurity,
        version: version.into(),
        published: true,
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
    let rows = table(&h, "scope");
    let statement = rows
        .iter()
        .find(|(field, _)| field == "scope_statement")
        .expect("the statement row");
    assert_eq!(
        cell(&statement.1, "value"),
        "The SaaS platform and its support desk"
    );
    assert_eq!(cell(&statement.1, "defined_by"), "owner");
    let excluded = rows
        .iter()
        .find(|(f, _)| f == "excluded")
        .expect("excluded");
    assert_eq!(cell(&excluded.1, "value"), "On-premise DC");
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
