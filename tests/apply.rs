//! `isms apply` end to end: the real binary against a real server on 127.0.0.1, with the
//! seed guide's risk register and SoA as the files a team keeps in its repository.

mod cli_util;

use std::path::Path;

use cli_util::{init_ledger, ok, register_rows, repo, row_with, run, Server};

const ADMIN: &str = "data/admin.key";

/// Copies a seed fixture into `dir` as `name`, with `edits` (from, to) applied.
fn register(dir: &Path, fixture: &str, name: &str, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(repo().join("fixtures/seed").join(fixture)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the fixture holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(dir.join(name), text).unwrap();
}

fn head_size(dir: &Path, url: &str) -> u64 {
    let out = ok(dir, &["status", "--server", url, "--key", ADMIN, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    v["size"].as_u64().expect("size")
}

fn apply(dir: &Path, url: &str, extra: &[&str]) -> cli_util::Run {
    let mut args = vec!["apply", "--server", url, "--key", ADMIN];
    args.extend_from_slice(extra);
    run(dir, &args)
}

/// The plan `isms apply --dry-run --json` prints.
fn planned(dir: &Path, url: &str, files: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["--dry-run", "--json"];
    args.extend_from_slice(files);
    let out = apply(dir, url, &args);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    v["changes"].as_array().expect("changes").clone()
}

/// A server whose ledger holds the seed's risk register and SoA, applied once.
fn applied(dir: &Path) -> Server {
    let server = Server::start(dir, "data");
    register(dir, "risk_assessment.yaml", "risks.yaml", &[]);
    register(dir, "soa_template.yaml", "soa.yaml", &[]);
    let first = apply(dir, &server.url, &["risks.yaml", "soa.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    server
}

#[test]
fn applying_an_unchanged_register_appends_nothing_and_says_so() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    let before = head_size(d, &server.url);
    let again = apply(d, &server.url, &["risks.yaml", "soa.yaml"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no changes"), "{again:?}");
    assert_eq!(head_size(d, &server.url), before);
}

#[test]
fn an_edited_residual_score_plans_exactly_one_rescoring() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    register(
        d,
        "risk_assessment.yaml",
        "risks.yaml",
        &[(
            "residual_impact: 2\n      residual_risk: 6",
            "residual_impact: 3\n      residual_risk: 9",
        )],
    );
    let plan = planned(d, &server.url, &["risks.yaml"]);
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0]["kind"], "risk_rescored");
    assert_eq!(plan[0]["entity"], "RISK-003");
    assert_eq!(plan[0]["fields"][0]["from"], "3x2");
    assert_eq!(plan[0]["fields"][0]["to"], "3x3");
}

#[test]
fn the_plan_is_what_apply_appends() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    register(
        d,
        "risk_assessment.yaml",
        "risks.yaml",
        &[
            ("risk_owner: \"CTO\"", "risk_owner: \"Head of Platform\""),
            (
                "residual_impact: 2\n      residual_risk: 6",
                "residual_impact: 3\n      residual_risk: 9",
            ),
        ],
    );
    let plan = planned(d, &server.url, &["risks.yaml"]);
    let before = head_size(d, &server.url);
    let applied = apply(d, &server.url, &["risks.yaml"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    assert_eq!(head_size(d, &server.url), before + plan.len() as u64);
    let log = ok(
        d,
        &["log", "--server", &server.url, "--key", ADMIN, "--json"],
    );
    for change in &plan {
        let id = change["event_id"].as_str().expect("event id");
        assert!(log.contains(id), "{id} planned but not appended");
    }
    let kinds: Vec<&str> = plan.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["risk_details_changed", "risk_rescored"]);
}

#[test]
fn a_file_with_one_bad_row_leaves_the_head_unchanged() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    // Excluding a control without a justification is refused by the SoA rules.
    register(
        d,
        "soa_template.yaml",
        "soa.yaml",
        &[(
            "applicable: true\n      justification: \"Required for accountability\"",
            "applicable: false\n      justification: \"\"",
        )],
    );
    register(
        d,
        "risk_assessment.yaml",
        "risks.yaml",
        &[("risk_owner: \"CTO\"", "risk_owner: \"Head of Platform\"")],
    );
    let before = head_size(d, &server.url);
    let refused = apply(d, &server.url, &["risks.yaml", "soa.yaml"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("nothing was stored"), "{refused:?}");
    assert_eq!(head_size(d, &server.url), before);
}

#[test]
fn prune_closes_the_risks_the_file_no_longer_lists() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    let text = std::fs::read_to_string(d.join("risks.yaml")).unwrap();
    let cut = text.find("    - id: \"RISK-003\"").expect("RISK-003");
    std::fs::write(d.join("risks.yaml"), &text[..cut]).unwrap();
    assert!(planned(d, &server.url, &["risks.yaml"]).is_empty());
    let pruned = planned(d, &server.url, &["--prune", "risks.yaml"]);
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert_eq!(pruned[0]["kind"], "risk_closed");
    assert_eq!(pruned[0]["entity"], "RISK-003");
}

/// The seed's three risks as a spreadsheet would export them: other column order, spaced and
/// capitalised headers, controls separated by `;` in one quoted cell.
const RISKS_CSV: &str = "Risk ID,Owner,Asset,Threat,Vulnerability,Likelihood,Impact,\
Inherent Score,Treatment,Controls,Residual Likelihood,Residual Impact,Residual Score\n\
RISK-001,CTO,Customer database,SQL injection attack,Insufficient input validation,3,4,12,\
mitigate,\"A.8.28 Secure coding; A.8.8 Vulnerability management\",1,4,4\n\
RISK-002,CISO,Source code repository,Insider theft of intellectual property,\
Excessive access permissions,2,5,10,mitigate,\"A.5.15; A.8.3\",1,5,5\n";

#[test]
fn a_risk_register_kept_as_csv_applies_once_and_again_appends_nothing() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("risks.csv"), RISKS_CSV).unwrap();
    let plan = planned(d, &server.url, &["risks.csv"]);
    assert_eq!(plan.len(), 8, "two risks, four events each: {plan:?}");
    let first = apply(d, &server.url, &["risks.csv"]);
    assert_eq!(first.code, 0, "{first:?}");
    let after_first = head_size(d, &server.url);
    let again = apply(d, &server.url, &["risks.csv"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no changes"), "{again:?}");
    assert_eq!(head_size(d, &server.url), after_first);
}

#[test]
fn a_bad_csv_cell_is_named_by_file_row_and_column_and_nothing_is_stored() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    // Row 3 (the second risk) has likelihood 7: outside 1-5.
    std::fs::write(
        d.join("risks.csv"),
        RISKS_CSV.replacen(",2,5,10,", ",7,5,35,", 1),
    )
    .unwrap();
    let before = head_size(d, &server.url);
    let out = apply(d, &server.url, &["risks.csv"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("risks.csv row 3, column F (likelihood)"),
        "{out:?}"
    );
    assert_eq!(head_size(d, &server.url), before);
}

#[test]
fn a_csv_column_that_is_not_a_risk_register_column_is_named() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("risks.csv"),
        RISKS_CSV.replacen("Inherent Score", "Colour", 1),
    )
    .unwrap();
    let out = apply(d, &server.url, &["risks.csv"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("risks.csv row 1, column H (\"Colour\"): not a risk register column"),
        "{out:?}"
    );
}

#[test]
fn skip_bad_leaves_out_the_refused_csv_row_names_it_and_applies_the_rest() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("risks.csv"),
        RISKS_CSV.replacen(",2,5,10,", ",7,5,35,", 1),
    )
    .unwrap();
    let out = apply(d, &server.url, &["--skip-bad", "risks.csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("left out (--skip-bad): risks.csv row 3, column F (likelihood)"),
        "{out:?}"
    );
    let risks = ok(
        d,
        &[
            "register",
            "risks",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&risks).expect("JSON");
    let ids: Vec<&str> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["risk"].as_str())
        .collect();
    assert_eq!(ids, ["RISK-001"], "{risks}");
}

/// Writes the rows of `csv` to an Excel workbook at `path`, numbers as numbers (as a person
/// typing them into Excel would have them).
fn write_xlsx(path: &Path, csv: &str) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    for (r, record) in reader.records().enumerate() {
        for (c, cell) in record.expect("CSV").iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell.parse::<f64>() {
                Ok(n) => sheet.write_number(r, c, n).map(|_| ()),
                Err(_) => sheet.write_string(r, c, cell).map(|_| ()),
            }
            .expect("write a cell");
        }
    }
    workbook.save(path).expect("save the workbook");
}

#[test]
fn a_risk_register_kept_as_an_excel_workbook_plans_the_same_events_as_its_csv() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("risks.csv"), RISKS_CSV).unwrap();
    write_xlsx(&d.join("risks.xlsx"), RISKS_CSV);
    let from_csv = planned(d, &server.url, &["risks.csv"]);
    let from_xlsx = planned(d, &server.url, &["risks.xlsx"]);
    assert_eq!(from_xlsx.len(), 8, "{from_xlsx:?}");
    // An event id is derived from the entity, its version and the event's content.
    let events = |plan: &[serde_json::Value]| {
        plan.iter()
            .map(|c| c["event_id"].as_str().expect("event_id").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&from_xlsx), events(&from_csv));
}

#[test]
fn a_bad_excel_cell_is_named_by_file_row_and_column() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    write_xlsx(
        &d.join("risks.xlsx"),
        &RISKS_CSV.replacen(",2,5,10,", ",2,9,18,", 1),
    );
    let out = apply(d, &server.url, &["risks.xlsx"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("risks.xlsx row 3, column G (impact)"),
        "{out:?}"
    );
}

#[test]
fn every_refused_row_of_a_yaml_register_is_named_in_one_run() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    register(
        d,
        "risk_assessment.yaml",
        "risks.yaml",
        &[
            ("likelihood: 3", "likelihood: 9"),
            ("impact: 5", "impact: 0"),
        ],
    );
    let before = head_size(d, &server.url);
    let out = apply(d, &server.url, &["risks.yaml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("2 risk row(s) refused"), "{out:?}");
    assert!(
        out.stderr.contains("example_risk_register[0].likelihood")
            && out.stderr.contains("example_risk_register[1].impact"),
        "{out:?}"
    );
    assert_eq!(head_size(d, &server.url), before);
}

#[test]
fn every_refused_row_of_a_spreadsheet_is_named_in_one_run() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(
        d.join("risks.csv"),
        RISKS_CSV
            .replacen(",3,4,12,", ",3,x,12,", 1)
            .replacen(",2,5,10,", ",7,5,35,", 1),
    )
    .unwrap();
    let out = apply(d, &server.url, &["risks.csv"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("2 row(s) refused")
            && out.stderr.contains("risks.csv row 2, column G (impact)")
            && out
                .stderr
                .contains("risks.csv row 3, column F (likelihood)"),
        "{out:?}"
    );
}

#[test]
fn a_risk_register_section_cut_out_of_the_guide_is_taken_in_like_the_whole_document() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    register(d, "risk_assessment.yaml", "whole.yaml", &[]);
    let whole = std::fs::read_to_string(d.join("whole.yaml")).unwrap();
    // The `example_risk_register:` section alone, unindented.
    let start = whole.find("  example_risk_register:").expect("the section");
    let section: String = whole[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("  "))
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    std::fs::write(d.join("section.yaml"), section).unwrap();
    let from_whole = planned(d, &server.url, &["whole.yaml"]);
    let from_section = planned(d, &server.url, &["section.yaml"]);
    assert!(!from_section.is_empty());
    assert_eq!(from_section, from_whole);
}

#[test]
fn an_audit_plan_section_cut_out_of_the_guide_is_submitted_like_the_whole_document() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let whole = std::fs::read_to_string(repo().join("fixtures/seed/internal_audit.yaml")).unwrap();
    let start = whole.find("  audit_plan_template:").expect("the section");
    let section: String = whole[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("  "))
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    std::fs::write(d.join("plan.yaml"), section).unwrap();
    let out = run(
        d,
        &[
            "submit",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--json",
            "plan.yaml",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("audit_planned") && out.stdout.contains("IA-2025-Q1"),
        "{out:?}"
    );
}

#[test]
fn a_register_is_written_to_an_excel_workbook_with_what_it_shows() {
    use calamine::Reader as _;
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    let out = run(
        d,
        &[
            "register",
            "risks",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--xlsx",
            "risks.xlsx",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook(d.join("risks.xlsx")).expect("a workbook");
    let sheet = workbook
        .worksheet_range("risk_register")
        .expect("the register's sheet");
    let rows: Vec<&[calamine::Data]> = sheet.rows().collect();
    assert_eq!(rows[0][0], calamine::Data::String("risk".into()));
    let version_column = rows[0]
        .iter()
        .position(|c| *c == calamine::Data::String("version".into()))
        .expect("a version column");
    let risk_001 = rows
        .iter()
        .find(|r| r[0] == calamine::Data::String("RISK-001".into()))
        .expect("RISK-001");
    assert!(
        matches!(risk_001[version_column], calamine::Data::Float(v) if v >= 1.0),
        "the version is a number: {:?}",
        risk_001[version_column]
    );
    let about = workbook.worksheet_range("about").expect("the about sheet");
    assert!(
        about
            .rows()
            .any(|r| r[0] == calamine::Data::String("shows".into())),
        "{about:?}"
    );
}

/// The seed's audit plan submitted and an auditor key enrolled, then `submit FILE` with the
/// auditor's key (findings are the auditor's to raise).
fn submit_to_a_ledger_in_use(d: &Path, server: &Server, file: &str) -> cli_util::Run {
    register(d, "internal_audit.yaml", "audit.yaml", &[]);
    let url = server.url.as_str();
    ok(
        d,
        &["submit", "--server", url, "--key", ADMIN, "audit.yaml"],
    );
    cli_util::enrol_key(d, url, "auditor.key", "auditor@example.com", "auditor");
    run(
        d,
        &["submit", "--server", url, "--key", "auditor.key", file],
    )
}

const FINDINGS_CSV: &str = "Finding ID,Audit ID,Grade,Area,Description,Controls\n\
F-1,IA-2025-Q1,minor,Access control,access reviews late,A.5.15\n\
F-2,IA-2025-Q1,observation,Logging,log retention not documented,A.8.15; A.8.16\n";

#[test]
fn findings_kept_as_a_spreadsheet_are_submitted_like_their_yaml() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    std::fs::write(d.join("audit-results.csv"), FINDINGS_CSV).unwrap();
    let out = submit_to_a_ledger_in_use(d, &server, "audit-results.csv");
    assert_eq!(out.code, 0, "{out:?}");
    let findings = ok(
        d,
        &[
            "register",
            "findings",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&findings).expect("JSON");
    let ids: Vec<&str> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["finding"].as_str())
        .collect();
    assert_eq!(ids, ["F-1", "F-2"], "{findings}");
}

#[test]
fn a_bad_cell_of_a_findings_sheet_is_named_by_row_and_column() {
    let dir = init_ledger();
    let d = dir.path();
    let server = applied(d);
    std::fs::write(
        d.join("findings.csv"),
        FINDINGS_CSV.replacen("observation", "catastrophe", 1),
    )
    .unwrap();
    let out = submit_to_a_ledger_in_use(d, &server, "findings.csv");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "findings.csv row 3: column C (grade): \"catastrophe\" is not a finding grade"
        ),
        "{out:?}"
    );
}

const SOA_CSV: &str = "Control ID,Title,Applicable,Justification,Exclusion Justification,Implementation\n\
A.5.1,Policies for information security,yes,Required to establish security governance,,Policy approved by the CEO\n\
A.7.4,Physical security monitoring,no,,No premises of our own: fully remote,\n";

#[test]
fn a_statement_of_applicability_kept_as_a_spreadsheet_applies_and_reads_back() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("soa.csv"), SOA_CSV).unwrap();
    let out = apply(d, &server.url, &["soa.csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    let soa = register_rows(d, &server.url, ADMIN, "soa");
    let row = |id: &str| row_with(&soa, "control", id).clone();
    assert_eq!(row("A.5.1")["applicable"], true, "{soa:?}");
    assert_eq!(row("A.7.4")["applicable"], false, "{soa:?}");
}

#[test]
fn an_unknown_control_in_a_soa_sheet_is_named_by_row_and_column() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("soa.csv"), SOA_CSV.replacen("A.7.4", "A.7.99", 1)).unwrap();
    let out = apply(d, &server.url, &["soa.csv"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("soa.csv row 3: column A (control_id)"),
        "{out:?}"
    );
}

const SOA_2013_CSV: &str =
    "Control ID,Applicable,Justification,Exclusion Justification,Implementation\n\
A.5.1.1,yes,Policy set,,ISMS manual\n\
A.5.1.2,yes,Yearly review,,ISMS manual\n\
A.11.1.1,no,,Fully remote,\n";

#[test]
fn a_2013_soa_sheet_is_converted_to_2022_controls_with_a_report() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("soa2013.csv"), SOA_2013_CSV).unwrap();
    let out = apply(d, &server.url, &["soa2013.csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("converted 3 ISO 27001:2013 controls")
            && out.stderr.contains("A.5.1 <- A.5.1.1 + A.5.1.2")
            && out.stderr.contains("new in 2022"),
        "{}",
        out.stderr
    );
    let soa = register_rows(d, &server.url, ADMIN, "soa");
    let row = |id: &str| row_with(&soa, "control", id).clone();
    assert_eq!(row("A.5.1")["applicable"], true, "{soa:?}");
    assert_eq!(
        row("A.5.1")["justification"],
        "A.5.1.1: Policy set; A.5.1.2: Yearly review"
    );
    assert_eq!(row("A.7.1")["applicable"], false, "{soa:?}");
}
