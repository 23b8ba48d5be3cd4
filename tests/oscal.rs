//! `isms oscal`: the demo's audits and corrective actions as OSCAL 1.1.3 documents, validated
//! against NIST's published JSON schemas (tests/fixtures/oscal-1.1.3, see its README), with the
//! ledger seq and entry hash of every item matching what `isms prove` proves.

mod cli_util;

use std::path::Path;

use cli_util::{ok, Server};
use isms_proto::v1 as pb;
use isms_proto::v1::registers_client::RegistersClient;
use serde_json::Value;

/// The demo's ledger served on 127.0.0.1.
struct Demo {
    dir: tempfile::TempDir,
    server: Server,
}

fn demo() -> Demo {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(dir.path(), &["demo", "--dir", "demo"]);
    let server = Server::start(dir.path(), "demo/data");
    Demo { dir, server }
}

impl Demo {
    /// `isms oscal MODEL [flags]` as JSON.
    fn oscal(&self, model: &str, flags: &[&str]) -> Value {
        let mut args = vec![
            "oscal",
            model,
            "--server",
            &self.server.url,
            "--key",
            "demo/keys/auditor.key",
        ];
        args.extend_from_slice(flags);
        serde_json::from_str(&ok(self.dir.path(), &args)).expect("the document is JSON")
    }
}

/// The schema errors of `document` against the NIST schema of `model`, as text.
fn schema_errors(model: &str, document: &Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oscal-1.1.3")
        .join(format!("oscal_{model}_schema.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema"))
        .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the NIST schema compiles");
    validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Every object in `v` (at any depth) that has a `props` array, with that array.
fn items_with_props(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            if map.get("props").is_some_and(Value::is_array) {
                out.push(v.clone());
            }
            map.values().for_each(|x| items_with_props(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| items_with_props(x, out)),
        _ => {}
    }
}

/// The value of an item's prop `name` (in the ledger's namespace).
fn prop<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item["props"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["ns"] == "urn:isms-ledger:oscal")
        .and_then(|p| p["value"].as_str())
}

fn findings(ar: &Value) -> Vec<Value> {
    ar["assessment-results"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn the_demos_assessment_results_are_valid_oscal_1_1_3() {
    let demo = demo();
    let ar = demo.oscal("assessment-results", &[]);
    assert_eq!(
        schema_errors("assessment-results", &ar),
        Vec::<String>::new()
    );
    assert!(
        findings(&ar).len() >= 3,
        "the demo's audit findings are all there: {ar}"
    );
}

#[test]
fn the_demos_plan_of_action_and_milestones_is_valid_oscal_1_1_3() {
    let demo = demo();
    let poam = demo.oscal("poam", &[]);
    assert_eq!(schema_errors("poam", &poam), Vec::<String>::new());
    let items = poam["plan-of-action-and-milestones"]["poam-items"]
        .as_array()
        .expect("poam-items");
    assert!(!items.is_empty(), "{poam}");
}

#[test]
fn the_schema_check_refuses_a_finding_without_its_target() {
    let demo = demo();
    let mut ar = demo.oscal("assessment-results", &[]);
    let finding = ar["assessment-results"]["results"]
        .as_array_mut()
        .expect("results")
        .iter_mut()
        .find_map(|r| r["findings"].as_array_mut()?.first_mut())
        .expect("a finding");
    finding.as_object_mut().expect("object").remove("target");
    let errors = schema_errors("assessment-results", &ar);
    assert!(
        errors.iter().any(|e| e.contains("\"target\"")),
        "{errors:?}"
    );
}

#[test]
fn every_item_carries_the_seq_and_entry_hash_that_isms_prove_proves() {
    let demo = demo();
    let mut items = Vec::new();
    items_with_props(&demo.oscal("assessment-results", &[]), &mut items);
    items_with_props(&demo.oscal("poam", &[]), &mut items);
    let mut checked = 0;
    for item in &items {
        let (Some(seq), Some(hash)) = (prop(item, "ledger-seq"), prop(item, "entry-hash")) else {
            continue;
        };
        let proof = ok(
            demo.dir.path(),
            &[
                "prove",
                "inclusion",
                "--server",
                &demo.server.url,
                "--key",
                "demo/keys/auditor.key",
                "--seq",
                seq,
            ],
        );
        let proof: Value = serde_json::from_str(&proof).expect("proof JSON");
        assert_eq!(proof["entry_hash"], hash, "seq {seq} in {item}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} items carried a seq and hash");
}

#[test]
fn every_finding_and_poam_item_names_its_ledger_entry() {
    let demo = demo();
    let ar = demo.oscal("assessment-results", &[]);
    let poam = demo.oscal("poam", &[]);
    let poam_items = poam["plan-of-action-and-milestones"]["poam-items"]
        .as_array()
        .expect("poam-items")
        .clone();
    for item in findings(&ar).iter().chain(&poam_items) {
        assert!(prop(item, "ledger-seq").is_some(), "{item}");
        assert!(prop(item, "entry-hash").is_some(), "{item}");
    }
}

#[test]
fn assessment_results_as_of_a_past_date_leave_out_what_came_later() {
    let demo = demo();
    let now = findings(&demo.oscal("assessment-results", &[]));
    let january = demo.oscal("assessment-results", &["--as-of", "2025-01-31"]);
    assert_eq!(
        schema_errors("assessment-results", &january),
        Vec::<String>::new()
    );
    assert!(
        findings(&january).len() < now.len(),
        "January shows {} findings, today {}",
        findings(&january).len(),
        now.len()
    );
}

#[test]
fn the_same_finding_keeps_its_uuid_from_one_export_to_the_next() {
    let demo = demo();
    let uuids = |v: &Value| -> Vec<(String, String)> {
        findings(v)
            .iter()
            .map(|f| {
                (
                    prop(f, "finding-id").expect("finding-id").to_string(),
                    f["uuid"].as_str().expect("uuid").to_string(),
                )
            })
            .collect()
    };
    let first = demo.oscal("assessment-results", &[]);
    let second = demo.oscal("assessment-results", &[]);
    assert_eq!(uuids(&first), uuids(&second));
    let poam = demo.oscal("poam", &[]);
    let poam_findings = poam["plan-of-action-and-milestones"]["findings"]
        .as_array()
        .expect("findings");
    for f in poam_findings {
        let id = prop(f, "finding-id").expect("finding-id");
        assert!(
            uuids(&first)
                .iter()
                .any(|(fid, uuid)| fid == id && f["uuid"] == uuid.as_str()),
            "finding {id} has another uuid in the POA&M"
        );
    }
}

#[test]
fn a_verified_corrective_action_is_closed_and_an_open_one_is_not() {
    let demo = demo();
    let poam = demo.oscal("poam", &[]);
    let risks = poam["plan-of-action-and-milestones"]["risks"]
        .as_array()
        .expect("risks");
    let status_of = |action_status: &str| -> Vec<&str> {
        risks
            .iter()
            .filter(|r| prop(r, "action-status") == Some(action_status))
            .map(|r| r["status"].as_str().expect("status"))
            .collect()
    };
    let verified = status_of("verified");
    assert!(!verified.is_empty(), "the demo verifies an action: {poam}");
    assert!(verified.iter().all(|s| *s == "closed"), "{verified:?}");
    assert!(
        status_of("open").iter().all(|s| *s != "closed"),
        "{:?}",
        status_of("open")
    );
}

#[test]
fn export_oscal_without_a_model_is_invalid_argument_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(dir.path(), &["demo", "--dir", "demo"]);
    let server = Server::start_with(dir.path(), "demo/data", &["--allow-anonymous-reads"]);
    let status = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut client = RegistersClient::connect(server.url.clone())
                .await
                .expect("connect");
            client
                .export_oscal(pb::ExportOscalRequest {
                    as_of: None,
                    model: pb::OscalModel::Unspecified as i32,
                })
                .await
        })
        .expect_err("a request without a model is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("model:"), "{status:?}");
}

#[test]
fn oscal_written_to_a_file_is_the_same_document() {
    let demo = demo();
    let said = ok(
        demo.dir.path(),
        &[
            "oscal",
            "poam",
            "--server",
            &demo.server.url,
            "--key",
            "demo/keys/auditor.key",
            "--as-of",
            "2025-12-31",
            "--out",
            "poam.json",
        ],
    );
    assert!(said.contains("poam.json"), "{said}");
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(demo.dir.path().join("poam.json")).expect("written"),
    )
    .expect("JSON");
    assert_eq!(
        written,
        demo.oscal("poam", &["--as-of", "2025-12-31"]),
        "the file and the printed document differ"
    );
}

#[test]
fn a_certification_audits_result_carries_the_nonconformities_recorded_against_it() {
    let demo = demo();
    let ar = demo.oscal("assessment-results", &[]);
    let stage2 = ar["assessment-results"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| prop(r, "audit-id") == Some("CB-2025-S2"))
        .expect("the stage 2 audit's result")
        .clone();
    assert_eq!(prop(&stage2, "audit-kind"), Some("stage_2"));
    let ids: Vec<&str> = stage2["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| prop(f, "finding-id"))
        .collect();
    assert_eq!(ids, ["F-CB-2025-01", "F-CB-2025-02"]);
    assert!(
        stage2.get("remarks").is_none(),
        "all stated NCs are recorded: {stage2}"
    );
}

#[test]
fn an_auditor_builds_the_same_document_offline_from_the_verified_bundle() {
    let demo = demo();
    for model in ["assessment-results", "poam"] {
        let offline: Value = serde_json::from_str(&ok(
            demo.dir.path(),
            &[
                "oscal",
                model,
                "--offline",
                "demo/ledger.bundle",
                "--ledger-key",
                "demo/ledger.vkey",
                "--as-of",
                "2025-12-31",
            ],
        ))
        .expect("JSON");
        let online = demo.oscal(model, &["--as-of", "2025-12-31"]);
        assert_eq!(offline, online, "{model}");
    }
}

#[test]
fn a_bundle_that_does_not_verify_gives_no_document() {
    let demo = demo();
    let path = demo.dir.path().join("demo/ledger.bundle");
    let mut bytes = std::fs::read(&path).expect("bundle");
    // Flip one byte in the middle of the entries.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(demo.dir.path().join("tampered.bundle"), bytes).expect("write");
    let r = cli_util::run(
        demo.dir.path(),
        &[
            "oscal",
            "poam",
            "--offline",
            "tampered.bundle",
            "--ledger-key",
            "demo/ledger.vkey",
        ],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.is_empty(), "no document: {}", r.stdout);
}

#[test]
fn a_poam_before_any_corrective_action_is_still_valid_oscal() {
    let demo = demo();
    let poam = demo.oscal("poam", &["--as-of", "2025-01-31"]);
    assert_eq!(schema_errors("poam", &poam), Vec::<String>::new());
    let items = poam["plan-of-action-and-milestones"]["poam-items"]
        .as_array()
        .expect("poam-items");
    assert_eq!(items.len(), 1, "{poam}");
    assert_eq!(items[0]["title"], "No corrective action recorded");
}
