//! ISO 27001:2013 files taken in: the correspondence table itself, a 2013 SoA converted with
//! merged controls and the new ones reported, and 2013 controls in a risk register.

use std::collections::BTreeSet;

use projections::{
    catalog, iso2013,
    seed::{risk_events, soa_events_converting, RiskRow},
    ControlId, Event,
};

#[test]
fn the_table_maps_every_2013_control_once_and_reaches_every_2022_control_but_the_new_ones() {
    let old: BTreeSet<&str> = iso2013::MAPPING.iter().map(|(o, _)| *o).collect();
    assert_eq!(old.len(), 114, "each 2013 control once");
    assert!(old.iter().all(|o| iso2013::is_2013_id(o)));
    let reached: BTreeSet<ControlId> = iso2013::MAPPING
        .iter()
        .flat_map(|(_, new)| new.iter())
        .map(|n| ControlId::parse(n).expect("a 2022 control"))
        .collect();
    let new: BTreeSet<ControlId> = iso2013::NEW_IN_2022
        .iter()
        .map(|n| ControlId::parse(n).expect("a 2022 control"))
        .collect();
    assert_eq!((reached.len(), new.len()), (82, 11));
    assert!(reached.is_disjoint(&new));
    let all: BTreeSet<ControlId> = catalog().iter().map(|c| c.id).collect();
    let together: BTreeSet<ControlId> = reached.union(&new).copied().collect();
    assert_eq!(together, all);
}

const SOA_2013: &str = "soa_template:
  policies:
    A.5.1.1: {applicable: true, justification: policy set, implementation: ISMS manual}
    A.5.1.2: {applicable: true, justification: yearly review, implementation: ISMS manual}
  operations:
    A.12.6.1: {applicable: true, justification: scanning, implementation: weekly scans}
  compliance:
    A.18.2.3: {applicable: false, exclusion_justification: covered by audits}
";

fn row(events: &[Event], id: &str) -> (bool, String, String) {
    events
        .iter()
        .find_map(|e| match e {
            Event::ControlApplicabilitySet {
                control_id,
                applicable,
                justification,
                implementation,
                ..
            } if control_id.to_string() == id => {
                Some((*applicable, justification.clone(), implementation.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row for {id}"))
}

#[test]
fn a_2013_soa_becomes_2022_rows_with_merged_controls_joined() {
    let (events, _) = soa_events_converting(SOA_2013).expect("converted");
    assert_eq!(
        row(&events, "A.5.1"),
        (
            true,
            "A.5.1.1: policy set; A.5.1.2: yearly review".into(),
            "ISMS manual".into()
        )
    );
    // A.8.8 comes from A.12.6.1 (applicable) and A.18.2.3 (not): applicable.
    assert!(row(&events, "A.8.8").0);
    assert_eq!(
        row(&events, "A.5.36"),
        (false, "A.18.2.3: covered by audits".into(), String::new())
    );
    assert_eq!(events.len(), 3);
}

#[test]
fn converting_a_2013_soa_reports_the_merges_and_the_11_new_controls() {
    let (_, report) = soa_events_converting(SOA_2013).expect("converted");
    let report = report.expect("a report for a 2013 file");
    assert_eq!(report.converted, 4);
    assert_eq!(
        report.merged[&ControlId::parse("A.5.1").unwrap()],
        vec!["A.5.1.1", "A.5.1.2"]
    );
    assert_eq!(report.new_in_2022.len(), 11);
    let text = report.lines().join("\n");
    assert!(text.contains("A.5.1 <- A.5.1.1 + A.5.1.2"), "{text}");
    assert!(text.contains("A.5.7 Threat intelligence"), "{text}");
}

#[test]
fn a_2022_soa_needs_no_conversion() {
    let (_, report) = soa_events_converting(
        "soa_template:\n  x:\n    A.5.1: {applicable: true, justification: policy}\n",
    )
    .expect("read");
    assert_eq!(report, None);
}

#[test]
fn a_four_part_id_that_no_2013_control_has_is_refused_naming_it() {
    let err = soa_events_converting(
        "soa_template:\n  ops:\n    A.12.9.9: {applicable: true, justification: x}\n",
    )
    .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("A.12.9.9") && text.contains("soa_template.ops"),
        "{text}"
    );
}

#[test]
fn a_2013_control_in_a_risk_register_names_the_2022_controls_it_became() {
    let rows = vec![RiskRow {
        id: "RISK-001".into(),
        asset: "Customer database".into(),
        threat: "SQL injection".into(),
        vulnerability: "input validation".into(),
        likelihood: 3,
        impact: 4,
        inherent_risk: None,
        treatment: "mitigate".into(),
        controls: vec!["A.12.6.1".into(), "A.14.2.1".into(), "A.8.8".into()],
        risk_owner: "CTO".into(),
        residual_likelihood: None,
        residual_impact: None,
        residual_risk: None,
    }];
    let events = risk_events(rows, &|n, f| format!("rows[{n}].{f}")).expect("events");
    let controls = events
        .iter()
        .find_map(|e| match e {
            Event::RiskTreatmentDecided { controls, .. } => Some(controls.clone()),
            _ => None,
        })
        .expect("a treatment");
    let ids: Vec<String> = controls.iter().map(ToString::to_string).collect();
    assert_eq!(ids, vec!["A.8.8", "A.8.25"], "converted and not repeated");
}
