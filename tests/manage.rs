//! The decisions managers, owners and auditors record one at a time (`isms risk accept`,
//! `isms action ...`, `isms audit complete`, `isms control approve`) and as YAML, end to end
//! against a real server on 127.0.0.1.

mod cli_util;

use std::path::Path;

use cli_util::{init_ledger, ok, repo, run, Server};

/// The genesis admin also holds the management role.
const ADMIN: &str = "data/admin.key";
const AUDITOR: &str = "auditor.key";

fn seed(name: &str) -> String {
    repo()
        .join("fixtures/seed")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A server with an auditor key, the seed's risk register, SoA and audit plan, a finding on
/// that audit and a corrective action opened for it.
fn isms_in_use(dir: &Path) -> Server {
    let server = Server::start(dir, "data");
    let url = server.url.as_str();
    cli_util::enrol_key(dir, url, AUDITOR, "auditor@example.com", "auditor");
    ok(
        dir,
        &[
            "submit",
            "--server",
            url,
            "--key",
            ADMIN,
            &seed("risk_assessment.yaml"),
            &seed("soa_template.yaml"),
            &seed("internal_audit.yaml"),
        ],
    );
    std::fs::write(
        dir.join("findings.yaml"),
        "findings:\n  - id: F-1\n    audit_id: IA-2025-Q1\n    grade: minor\n    \
         controls: [A.5.15]\n    description: access reviews late\n",
    )
    .unwrap();
    ok(
        dir,
        &["submit", "--server", url, "--key", AUDITOR, "findings.yaml"],
    );
    std::fs::write(
        dir.join("actions.yaml"),
        "corrective_actions:\n  - id: CA-1\n    finding_id: F-1\n    owner: CISO\n    \
         description: schedule reviews\n",
    )
    .unwrap();
    ok(
        dir,
        &["submit", "--server", url, "--key", ADMIN, "actions.yaml"],
    );
    server
}

fn isms(dir: &Path, server: &Server, key: &str, args: &[&str]) -> cli_util::Run {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--server", &server.url, "--key", key]);
    run(dir, &all)
}

#[test]
fn management_accepts_a_risk_above_the_appetite_only_with_a_justification() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    // RISK-003's residual score is 6: above the appetite of 1-4.
    let refused = isms(d, &server, ADMIN, &["risk", "accept", "RISK-003"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("risk_accepted.justification"),
        "{refused:?}"
    );
    let accepted = isms(
        d,
        &server,
        ADMIN,
        &[
            "risk",
            "accept",
            "RISK-003",
            "--justification",
            "second region costs more than the outage",
        ],
    );
    assert_eq!(accepted.code, 0, "{accepted:?}");
}

#[test]
fn a_risk_owner_key_cannot_record_managements_acceptance() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    let refused = isms(
        d,
        &server,
        AUDITOR,
        &["risk", "accept", "RISK-001", "--justification", "fine"],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("management"), "{refused:?}");
}

#[test]
fn a_corrective_action_moves_through_root_cause_close_and_verification() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    let steps: [(&str, Vec<&str>); 3] = [
        (
            ADMIN,
            vec![
                "action",
                "root-cause",
                "CA-1",
                "--cause",
                "no owner for reviews",
            ],
        ),
        (
            ADMIN,
            vec![
                "action",
                "close",
                "CA-1",
                "--resolution",
                "reviews owned by IT",
            ],
        ),
        (
            AUDITOR,
            vec![
                "action",
                "verify",
                "CA-1",
                "--outcome",
                "effective",
                "--note",
                "two cycles on time",
            ],
        ),
    ];
    for (key, args) in steps {
        let out = isms(d, &server, key, &args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    // Closed and verified: closing again is refused, naming why.
    let again = isms(
        d,
        &server,
        ADMIN,
        &["action", "close", "CA-1", "--resolution", "again"],
    );
    assert_eq!(again.code, 2, "{again:?}");
}

#[test]
fn only_an_auditor_verifies_a_corrective_action() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    isms(
        d,
        &server,
        ADMIN,
        &["action", "close", "CA-1", "--resolution", "done"],
    );
    let refused = isms(
        d,
        &server,
        ADMIN,
        &["action", "verify", "CA-1", "--outcome", "effective"],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("auditor"), "{refused:?}");
}

#[test]
fn an_audit_is_completed_once() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    let args = [
        "audit",
        "complete",
        "IA-2025-Q1",
        "--summary",
        "1 minor nonconformity",
    ];
    assert_eq!(isms(d, &server, AUDITOR, &args).code, 0);
    let again = isms(
        d,
        &server,
        AUDITOR,
        &["audit", "complete", "IA-2025-Q1", "--summary", "x"],
    );
    assert_eq!(again.code, 2, "{again:?}");
}

#[test]
fn management_approves_the_soa_by_version() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    let approved = isms(
        d,
        &server,
        ADMIN,
        &["control", "approve", "--soa-version", "2025.1"],
    );
    assert_eq!(approved.code, 0, "{approved:?}");
    let soa = isms(d, &server, ADMIN, &["register", "soa", "--json"]);
    assert!(soa.stdout.contains("2025.1"), "{soa:?}");
}

#[test]
fn decisions_kept_as_yaml_apply_once() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    std::fs::write(
        d.join("decisions.yaml"),
        "risk_acceptances:\n  - risk_id: RISK-001\n    justification: within appetite after controls\n",
    )
    .unwrap();
    let first = isms(d, &server, ADMIN, &["apply", "decisions.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    let again = isms(d, &server, ADMIN, &["apply", "decisions.yaml"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no changes"), "{again:?}");
}

/// RISK-004's status in `isms register risks --json`.
fn status_of_risk_004(dir: &Path, server: &Server) -> String {
    let out = isms(dir, server, ADMIN, &["register", "risks", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["risk"] == "RISK-004")
        .expect("RISK-004")["status"]
        .as_str()
        .expect("status")
        .to_string()
}

#[test]
fn a_risk_its_owner_decided_to_accept_awaits_management_acceptance_in_the_register() {
    let dir = init_ledger();
    let d = dir.path();
    let server = isms_in_use(d);
    std::fs::write(
        d.join("accept.yaml"),
        "risk_assessment:\n  example_risk_register:\n    - id: \"RISK-004\"\n      \
         asset: \"Office printer\"\n      threat: \"Paper jam\"\n      \
         vulnerability: \"Old hardware\"\n      likelihood: 1\n      impact: 2\n      \
         inherent_risk: 2\n      treatment: \"accept\"\n      controls: []\n      \
         residual_likelihood: 1\n      residual_impact: 2\n      residual_risk: 2\n      \
         risk_owner: \"Office manager\"\n",
    )
    .unwrap();
    let submitted = isms(d, &server, ADMIN, &["submit", "accept.yaml"]);
    assert_eq!(submitted.code, 0, "{submitted:?}");
    assert_eq!(status_of_risk_004(d, &server), "AwaitingAcceptance");
    let accepted = isms(d, &server, ADMIN, &["risk", "accept", "RISK-004"]);
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert_eq!(status_of_risk_004(d, &server), "Accepted");
}
