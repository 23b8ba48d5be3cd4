//! The rest of the ISMS taken in from the files people keep: the guide's `isms_scope`
//! template, and policies, incidents, management reviews, training, access reviews,
//! vulnerabilities and patch compliance as YAML lists or
//! sheets, each read back from its register; errors name the item and the field.

mod cli_util;

use std::path::Path;

use cli_util::{enrol_key, init_ledger, register_rows, repo, row_with, run, Server};

const ADMIN: &str = "data/admin.key";

fn submit(d: &Path, url: &str, file: &str) -> cli_util::Run {
    run(d, &["submit", "--server", url, "--key", ADMIN, file])
}

/// Incidents are recorded by control or risk owners: a control owner's key, enrolled.
fn submit_as_control_owner(d: &Path, url: &str, file: &str) -> cli_util::Run {
    enrol_key(d, url, "owner.key", "carl@example.com", "control_owner");
    run(d, &["submit", "--server", url, "--key", "owner.key", file])
}

/// A register read back as JSON rows.
fn rows(d: &Path, url: &str, register: &str) -> Vec<serde_json::Value> {
    register_rows(d, url, ADMIN, register)
}

#[test]
fn the_guides_isms_scope_template_is_taken_in_field_by_field() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::copy(
        repo().join("fixtures/seed/isms_scope.yaml"),
        d.join("scope.yaml"),
    )
    .unwrap();
    let out = submit(d, &server.url, "scope.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let scope = rows(d, &server.url, "scope");
    assert_eq!(
        row_with(&scope, "field", "organization")["value"],
        "Company Name, Ltd."
    );
    let excluded = row_with(&scope, "field", "excluded")["value"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(
        excluded.contains("Physical data center operations"),
        "{excluded}"
    );
    let locations = row_with(&scope, "field", "locations")["value"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(locations.contains("AWS us-east-1"), "{locations}");
}

#[test]
fn policies_in_yaml_become_the_policy_register() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("policies.yaml"),
        "policies:\n  - {id: POL-IS, title: Information security policy, kind: information security, version: '2.0', published: true, date: 2025-01-09}\n  - {id: POL-DOC, title: Control of documented information, kind: document_control, version: '1.0'}\n",
    )
    .unwrap();
    let out = submit(d, &server.url, "policies.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let policies = rows(d, &server.url, "policies");
    let is = row_with(&policies, "policy", "POL-IS");
    assert_eq!(
        (&is["kind"], &is["version"], &is["published"]),
        (&"InformationSecurity".into(), &"2.0".into(), &true.into())
    );
    assert_eq!(row_with(&policies, "policy", "POL-DOC")["published"], false);
}

#[test]
fn an_incident_with_a_resolution_is_recorded_and_closed() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("incidents.yaml"),
        "incidents:\n  - {id: INC-1, title: Phishing, severity: high, controls: [A.6.3], detected: 2025-08-04, assets: [AS-004], resolution: passwords reset}\n  - {id: INC-2, title: Tailgating attempt stopped, severity: low, near_miss: true}\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "incidents.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let incidents = rows(d, &server.url, "incidents");
    let first = row_with(&incidents, "incident", "INC-1");
    assert_eq!(first["closed"], true);
    assert_eq!(first["assets"], "AS-004");
    assert!(
        first["detected_at"]
            .as_str()
            .expect("text")
            .starts_with("2025-08-04"),
        "{first}"
    );
    let second = row_with(&incidents, "incident", "INC-2");
    assert_eq!(
        (&second["closed"], &second["kind"]),
        (&false.into(), &"near miss".into())
    );
}

#[test]
fn a_bad_item_is_refused_naming_the_list_item_and_field_and_nothing_is_stored() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("incidents.yaml"),
        "incidents:\n  - {id: INC-1, title: Phishing, severity: high}\n  - {id: INC-2, title: Outage, severity: apocalyptic}\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "incidents.yaml");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("incidents[1].severity") && out.stderr.contains("apocalyptic"),
        "{}",
        out.stderr
    );
    assert!(
        rows(d, &server.url, "incidents").is_empty(),
        "nothing stored"
    );
}

#[test]
fn a_management_review_names_its_inputs_in_the_guides_words() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("reviews.yaml"),
        "management_reviews:\n  - id: MR-1\n    attendees: [CEO, CISO]\n    inputs_covered: [\"Audit results (internal and external)\", risk_results]\n    decisions:\n      - {output: Resource allocation decisions, decision: hire a security engineer}\n",
    )
    .unwrap();
    let out = submit(d, &server.url, "reviews.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let reviews = rows(d, &server.url, "reviews");
    let missing = row_with(&reviews, "review", "MR-1")["inputs_missing"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(
        !missing.contains("Audit results") && missing.contains("Interested party feedback"),
        "{missing}"
    );
}

#[test]
fn training_kept_as_a_sheet_goes_in_like_the_yaml_list() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("training.csv"),
        "id,person,course,completed\nTR-1,Erin,Security awareness 2025,yes\nTR-2,Frank,Security awareness 2025,no\n",
    )
    .unwrap();
    let out = submit(d, &server.url, "training.csv");
    assert_eq!(out.code, 0, "{out:?}");
    let training = rows(d, &server.url, "training");
    assert_eq!(row_with(&training, "training", "TR-1")["completed"], true);
    assert_eq!(row_with(&training, "training", "TR-2")["completed"], false);
}

#[test]
fn objective_measurements_show_the_latest_value_against_the_target() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    enrol_key(d, &server.url, "ceo.key", "ceo@example.com", "management");
    std::fs::write(
        d.join("objectives.yaml"),
        "objectives:\n  - {id: OBJ-1, description: Patch on time, metric: patch compliance, target: '>= 95%'}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("measured.yaml"),
        "objective_measurements:\n  - {objective_id: OBJ-1, value: 92%, date: 2025-03-31}\n  - {objective_id: OBJ-1, value: 97%, date: 2025-06-30}\n",
    )
    .unwrap();
    for file in ["objectives.yaml", "measured.yaml"] {
        let out = run(
            d,
            &["submit", "--server", &server.url, "--key", "ceo.key", file],
        );
        assert_eq!(out.code, 0, "{file}: {out:?}");
    }
    let objectives = rows(d, &server.url, "objectives");
    let obj = row_with(&objectives, "objective", "OBJ-1");
    assert_eq!(
        (&obj["latest_value"], &obj["meets_target"]),
        (&"97%".into(), &"yes".into())
    );
}

#[test]
fn external_audits_in_yaml_make_the_certification_cycle() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    enrol_key(d, &server.url, "ceo.key", "ceo@example.com", "management");
    std::fs::write(
        d.join("external.yaml"),
        "external_audits:\n  - {id: CB-S1, kind: stage 1, body: Cert Body, start: 2025-10-20, end: 2025-10-21}\n  - {id: CB-S2, kind: stage_2, body: Cert Body, start: 2025-11-17, end: 2025-11-19, minor_nonconformities: 2, certified: true}\n",
    )
    .unwrap();
    let out = run(
        d,
        &[
            "submit",
            "--server",
            &server.url,
            "--key",
            "ceo.key",
            "external.yaml",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let cycle = rows(d, &server.url, "certification");
    assert_eq!(
        row_with(&cycle, "audit", "CB-S2")["minor_nonconformities"],
        2
    );
    let first = row_with(&cycle, "audit", "cycle: surveillance 1");
    assert!(
        first["due"]
            .as_str()
            .expect("text")
            .starts_with("2026-11-19"),
        "{first}"
    );
}

#[test]
fn legal_requirements_kept_as_a_sheet_and_reviewed_in_yaml() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    enrol_key(d, &server.url, "ceo.key", "ceo@example.com", "management");
    std::fs::write(
        d.join("legal.csv"),
        "id,title,jurisdiction,owner,controls\nLEG-GDPR,GDPR,EU,DPO,A.5.34\nLEG-NIS2,NIS2,EU,CISO,A.5.31;A.5.24\n",
    )
    .unwrap();
    std::fs::write(
        d.join("reviews.yaml"),
        "compliance_reviews:\n  - {requirement_id: LEG-GDPR, result: pass, next_review: 2026-06-30, date: 2025-06-30}\n",
    )
    .unwrap();
    for file in ["legal.csv", "reviews.yaml"] {
        let out = run(
            d,
            &["submit", "--server", &server.url, "--key", "ceo.key", file],
        );
        assert_eq!(out.code, 0, "{file}: {out:?}");
    }
    let legal = rows(d, &server.url, "legal");
    assert_eq!(
        row_with(&legal, "requirement", "LEG-GDPR")["compliance"],
        "Pass"
    );
    assert_eq!(
        row_with(&legal, "requirement", "LEG-NIS2")["controls"],
        "A.5.31 A.5.24"
    );
    assert_eq!(
        row_with(&legal, "requirement", "LEG-NIS2")["review_overdue"],
        "never reviewed"
    );
}

#[test]
fn access_reviews_in_yaml_show_which_were_done_on_time_late_or_not_at_all() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("access.yaml"),
        "access_reviews:\n  \
         - {id: AR-1, system: ERP, reviewer: CISO, due: 2025-03-31, completed: 2025-03-31, accounts_reviewed: 40, accounts_removed: 3}\n  \
         - {id: AR-2, system: HR, reviewer: CISO, due: 2025-06-30, completed: 2025-07-09, accounts_reviewed: 12}\n  \
         - {id: AR-3, system: CRM, reviewer: CISO, due: 2025-09-30, date: 2025-01-15}\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "access.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let reviews = rows(d, &server.url, "access-reviews");
    let status = |id: &str| row_with(&reviews, "review", id)["status"].clone();
    assert_eq!(
        [status("AR-1"), status("AR-2"), status("AR-3")],
        ["done", "done late", "overdue"]
    );
}

#[test]
fn vulnerabilities_kept_as_a_sheet_are_open_until_their_remediated_cell_is_filled() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("scan.csv"),
        "id,title,severity,detected,remediated\n\
         V-1,OpenSSL flaw,critical,2025-02-10,2025-02-14\n\
         V-2,Old TLS,high,2025-04-02,\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "scan.csv");
    assert_eq!(out.code, 0, "{out:?}");
    let vulnerabilities = rows(d, &server.url, "vulnerabilities");
    let v1 = row_with(&vulnerabilities, "vulnerability", "V-1");
    assert_eq!(
        (v1["status"].clone(), v1["due"].clone()),
        ("done".into(), "2025-02-25".into())
    );
    let v2 = row_with(&vulnerabilities, "vulnerability", "V-2");
    assert_eq!(v2["status"], "overdue", "{v2}");
}

#[test]
fn a_vulnerability_fixed_before_it_was_found_is_refused_and_nothing_is_stored() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("vulns.yaml"),
        "vulnerabilities:\n  \
         - {id: V-1, title: ok, severity: low, detected: 2025-02-10}\n  \
         - {id: V-2, title: bad, severity: low, detected: 2025-02-10, remediated: 2025-02-01}\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "vulns.yaml");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("vulnerabilities[1].remediated")
            && out.stderr.contains("before it was detected"),
        "{}",
        out.stderr
    );
    assert!(rows(d, &server.url, "vulnerabilities").is_empty());
}

#[test]
fn patch_compliance_keeps_the_latest_measurement_of_each_population() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("patch.yaml"),
        "patch_compliance:\n  \
         - {scope: servers, devices_total: 40, devices_compliant: 30, date: 2025-03-31}\n  \
         - {scope: servers, devices_total: 40, devices_compliant: 38, date: 2025-06-30}\n  \
         - {scope: laptops, devices_total: 10, devices_compliant: 10, date: 2025-06-30}\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "patch.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let patch = rows(d, &server.url, "patch-compliance");
    assert_eq!(patch.len(), 2, "{patch:?}");
    assert_eq!(row_with(&patch, "scope", "servers")["compliance"], "95.0%");
    let kpis = rows(d, &server.url, "kpis");
    assert_eq!(
        row_with(&kpis, "kpi", "Patch compliance percentage")["value"],
        "96.0%"
    );
}

#[test]
fn audit_evidence_received_in_yaml_leaves_the_rest_outstanding() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::copy(
        repo().join("fixtures/seed/internal_audit.yaml"),
        d.join("audit.yaml"),
    )
    .unwrap();
    enrol_key(d, &server.url, "auditor.key", "ada@example.com", "auditor");
    let auditor = |file: &str| {
        run(
            d,
            &[
                "submit",
                "--server",
                &server.url,
                "--key",
                "auditor.key",
                file,
            ],
        )
    };
    let out = auditor("audit.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    std::fs::write(
        d.join("received.yaml"),
        "audit_evidence_received:\n  \
         - {audit_id: IA-2025-Q1, area: Access Control (A.5.15), item: Joiner/mover/leaver process records, reference: JML-1..118, date: 2025-03-11}\n",
    )
    .unwrap();
    let out = auditor("received.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let audits = rows(d, &server.url, "audits");
    let audit = row_with(&audits, "audit", "IA-2025-Q1");
    assert_eq!(audit["evidence_received"], "1 of 6", "{audit}");
    let outstanding = audit["evidence_outstanding"].as_str().expect("text");
    assert!(
        outstanding.contains("Access review records from last quarter")
            && !outstanding.contains("Joiner/mover/leaver"),
        "{outstanding}"
    );
}

#[test]
fn a_management_review_input_can_say_where_it_was_presented() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("reviews.yaml"),
        "management_reviews:\n  - id: MR-1\n    attendees: [CEO, CISO]\n    inputs_covered:\n      - {input: audit_results, reference: IA-2025-Q1 report}\n      - risk_results\n",
    )
    .unwrap();
    let out = submit(d, &server.url, "reviews.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let reviews = rows(d, &server.url, "reviews");
    let unreferenced = row_with(&reviews, "review", "MR-1")["inputs_without_reference"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(
        unreferenced.to_lowercase().contains("risk"),
        "{unreferenced}"
    );
    assert!(!unreferenced.contains("Audit results"), "{unreferenced}");
}

#[test]
fn a_sheet_of_open_vulnerabilities_without_a_remediated_column_is_not_read_as_incidents() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("open.csv"),
        "id,title,severity,detected,due\nV-9,Old TLS,high,2025-04-02,2025-04-20\n",
    )
    .unwrap();
    let out = submit_as_control_owner(d, &server.url, "open.csv");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(rows(d, &server.url, "incidents").is_empty());
    let vulnerabilities = rows(d, &server.url, "vulnerabilities");
    assert_eq!(
        row_with(&vulnerabilities, "vulnerability", "V-9")["due"],
        "2025-04-20"
    );
}

#[test]
fn a_covered_input_without_its_name_is_refused_saying_the_shapes_taken() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("reviews.yaml"),
        "management_reviews:\n  - id: MR-1\n    attendees: [CEO]\n    inputs_covered:\n      - {reference: Q3 report}\n",
    )
    .unwrap();
    let out = submit(d, &server.url, "reviews.yaml");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("management_reviews[0].inputs_covered[0]")
            && out.stderr.contains("{input: NAME, reference:"),
        "{}",
        out.stderr
    );
}
