//! End-to-end tests of the `isms` client commands: the real binary against a real
//! `isms serve` on 127.0.0.1 (ephemeral port) in a fresh temp dir.

mod cli_util;

use std::path::Path;

use cli_util::{init_ledger, ok, repo, run, Server};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn rows(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["rows"].as_array().expect("rows")
}

fn row<'a>(v: &'a serde_json::Value, column: &str, id: &str) -> Option<&'a serde_json::Value> {
    rows(v).iter().find(|r| r[column] == id)
}

fn fixture(name: &str) -> String {
    repo()
        .join("fixtures/seed")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("writing a test file");
}

/// The subcommands `isms <path> --help` lists under "Commands:" (without `help`).
fn subcommands(dir: &Path, path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = ok(dir, &args);
    out.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command, found from `isms --help` downwards (so a new one cannot be forgotten), has
/// an example in its help.
#[test]
fn every_command_shows_an_example_in_its_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut leaves = Vec::new();
    while let Some(path) = pending.pop() {
        let children = subcommands(dir.path(), &path);
        if children.is_empty() {
            leaves.push(path);
        } else {
            for child in children {
                let mut next = path.clone();
                next.push(child);
                pending.push(next);
            }
        }
    }
    assert!(
        leaves.len() >= 20,
        "the command tree was not read: {leaves:?}"
    );
    for cmd in leaves {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let out = ok(dir.path(), &args);
        assert!(
            out.contains("Example"),
            "isms {cmd:?} --help has no example:\n{out}"
        );
    }
}

/// The seed's fixtures go in as written; findings, actions, verifications and evidence follow;
/// every register, the diff, the log and the key commands read them back.
#[test]
fn seed_fixtures_and_a_quarter_of_activity_through_the_cli() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let s = server.url.as_str();
    let admin = "data/admin.key";

    // Keys: made locally (0600), enrolled by the admin.
    let made = ok(d, &["key", "new", "--out", "auditor.key"]);
    assert!(made.contains("public key:"), "{made}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("auditor.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    ok(d, &["key", "new", "--out", "agent.key"]);
    for (file, subject, role) in [
        ("auditor.key.pub", "auditor@example.com", "auditor"),
        ("agent.key.pub", "ci/vuln-scanner", "agent"),
    ] {
        let out = ok(
            d,
            &[
                "key",
                "enroll",
                "--server",
                s,
                "--key",
                admin,
                "--public-key",
                file,
                "--subject",
                subject,
                "--role",
                role,
            ],
        );
        assert!(
            out.contains("key_enrolled") && out.contains("accepted"),
            "{out}"
        );
    }

    // The seed's own YAML, as written.
    let out = ok(
        d,
        &[
            "submit",
            "--server",
            s,
            "--key",
            admin,
            "--effective",
            "2025-03-03",
            &fixture("risk_assessment.yaml"),
            &fixture("soa_template.yaml"),
            &fixture("internal_audit.yaml"),
        ],
    );
    assert!(
        out.contains("RISK-003") && out.contains("A.8.28") && out.contains("IA-2025-Q1"),
        "{out}"
    );
    assert!(!out.contains("refused"), "{out}");

    write(
        d,
        "findings.yaml",
        "findings:\n  - id: F-1\n    audit_id: IA-2025-Q1\n    grade: minor_nonconformity\n    \
         area: Access Control (A.5.15)\n    description: Access review not evidenced\n    \
         controls: [\"A.5.15 Access control\"]\n    auditee: IT Security Team\n    date: 2025-03-14\n",
    );
    ok(
        d,
        &[
            "submit",
            "--server",
            s,
            "--key",
            "auditor.key",
            "findings.yaml",
        ],
    );
    write(
        d,
        "actions.json",
        r#"{"corrective_actions": [{"id": "CA-1", "finding_id": "F-1", "description": "Complete the reviews",
            "owner": "IT Security Team", "resolution": "Reviews completed", "date": "2025-04-02"}]}"#,
    );
    ok(
        d,
        &["submit", "--server", s, "--key", admin, "actions.json"],
    );
    write(
        d,
        "verify.yaml",
        "verifications:\n  - action_id: CA-1\n    effective: true\n    note: sampled\n",
    );
    ok(
        d,
        &[
            "submit",
            "--server",
            s,
            "--key",
            "auditor.key",
            "verify.yaml",
        ],
    );
    // Submitting the same file again is a duplicate event id with other bytes: refused, exit 2.
    let again = run(
        d,
        &[
            "submit",
            "--server",
            s,
            "--key",
            "auditor.key",
            "verify.yaml",
        ],
    );
    assert_eq!(again.code, 2, "{again:?}");

    write(d, "scan.json", "{\"critical\": 0}\n");
    let out = ok(
        d,
        &[
            "evidence",
            "add",
            "--server",
            s,
            "--key",
            "agent.key",
            "--control",
            "A.8.8",
            "--summary",
            "weekly scan",
            "scan.json",
        ],
    );
    assert!(
        out.contains("evidence_submitted") && out.contains("accepted"),
        "{out}"
    );

    // Registers.
    let risks = json(&ok(
        d,
        &["register", "risks", "--server", s, "--key", admin, "--json"],
    ));
    assert_eq!(rows(&risks).len(), 3, "{risks}");
    let r1 = row(&risks, "risk", "RISK-001").expect("RISK-001");
    assert_eq!(r1["inherent"], "3x4=12 mitigate");
    assert_eq!(r1["residual"], "1x4=4 accept");
    // Before the genesis nothing was on record: a plain refusal, not an empty register.
    let before = run(
        d,
        &[
            "register",
            "risks",
            "--server",
            s,
            "--key",
            admin,
            "--as-of",
            "2000-01-01",
        ],
    );
    assert_eq!(before.code, 2, "{}", before.stderr);
    assert!(
        before
            .stderr
            .contains("refused by the server (OUT_OF_RANGE)")
            && before.stderr.contains("before this ledger began"),
        "{}",
        before.stderr
    );
    let soa = ok(
        d,
        &["register", "soa", "--server", s, "--key", admin, "--csv"],
    );
    assert_eq!(soa.lines().count(), 94, "{soa}");
    let a71 = soa
        .lines()
        .find(|l| l.starts_with("A.7.1,"))
        .expect("A.7.1");
    assert!(
        a71.contains("false") && a71.contains("inherited from AWS"),
        "{a71}"
    );
    let findings = ok(d, &["register", "findings", "--server", s, "--key", admin]);
    assert!(
        findings.contains("F-1") && findings.contains("minor_nonconformity"),
        "{findings}"
    );
    let actions = json(&ok(
        d,
        &[
            "register", "actions", "--server", s, "--key", admin, "--json",
        ],
    ));
    assert_eq!(
        row(&actions, "action", "CA-1").expect("CA-1")["status"],
        "verified"
    );
    let evidence = ok(d, &["register", "evidence", "--server", s, "--key", admin]);
    assert!(evidence.contains("A.8.8"), "{evidence}");
    let kpis = ok(d, &["register", "kpis", "--server", s, "--key", admin]);
    assert!(kpis.lines().count() > 3, "{kpis}");
    let readiness = ok(
        d,
        &[
            "register",
            "readiness",
            "--server",
            s,
            "--key",
            admin,
            "--json",
        ],
    );
    assert!(readiness.contains("stage_1"), "{readiness}");

    let diff = ok(
        d,
        &[
            "diff",
            "--server",
            s,
            "--key",
            admin,
            "--from",
            "2000-01-01",
        ],
    );
    assert!(
        diff.contains("RISK-002") && diff.contains("added"),
        "{diff}"
    );

    // The log, filtered.
    let identified = json(&ok(
        d,
        &[
            "log",
            "--server",
            s,
            "--key",
            admin,
            "--kind",
            "risk_identified",
            "--json",
        ],
    ));
    assert_eq!(identified.as_array().unwrap().len(), 3);
    let by_auditor = ok(
        d,
        &[
            "log",
            "--server",
            s,
            "--key",
            admin,
            "--signer",
            "auditor@example.com",
        ],
    );
    assert!(by_auditor.contains("finding_raised") && !by_auditor.contains("risk_assessed"));
    let about = ok(
        d,
        &["log", "--server", s, "--key", admin, "--entity", "CA-1"],
    );
    assert!(about.contains("corrective_action_verified"), "{about}");

    // Keys: list, revoke; a revoked key can no longer read.
    let keys = json(&ok(
        d,
        &["key", "list", "--server", s, "--key", admin, "--json"],
    ));
    assert!(keys["ledger_key"]
        .as_str()
        .unwrap()
        .starts_with("isms-ledger/"));
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3);
    ok(
        d,
        &[
            "key",
            "revoke",
            "--server",
            s,
            "--key",
            admin,
            "--reason",
            "left",
            "auditor@example.com",
        ],
    );
    let refused = run(
        d,
        &["register", "risks", "--server", s, "--key", "auditor.key"],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("revoked"), "{}", refused.stderr);

    // A file in no known shape: exit 2 with the cause chain.
    write(d, "other.yaml", "something_else: 1\n");
    let bad = run(d, &["submit", "--server", s, "--key", admin, "other.yaml"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("other.yaml") && bad.stderr.contains("not a shape"),
        "{}",
        bad.stderr
    );
}

/// `isms demo` builds its year; then the auditor's tools: verify against the server, export,
/// verify the bundle offline, find one changed byte, point-in-time registers, and proofs.
#[test]
fn demo_then_export_verify_offline_prove_and_tamper() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let out = ok(d, &["demo", "--dir", "demo"]);
    assert!(out.contains("Risk register as of 2025-03-31"), "{out}");
    assert!(
        out.contains("RISK-006") && out.contains("verified: "),
        "{out}"
    );
    // Running it again replaces the earlier demo; a folder it did not make is refused.
    let again = ok(d, &["demo", "--dir", "demo"]);
    assert!(again.contains("verified: "), "{again}");
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/notes.txt"), "mine").unwrap();
    let refused = run(d, &["demo", "--dir", "mine"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    assert!(d.join("mine/notes.txt").exists());

    let server = Server::start(d, "demo/data");
    let s = server.url.as_str();
    let key = "demo/keys/auditor.key";
    let vkey = "demo/ledger.vkey";

    let verified = ok(
        d,
        &["verify", "--server", s, "--key", key, "--ledger-key", vkey],
    );
    assert!(verified.contains("verified: ") && verified.contains("rests on checkpoint"));

    // Point in time: RISK-006 was identified in July.
    let march = json(&ok(
        d,
        &[
            "register",
            "risks",
            "--server",
            s,
            "--key",
            key,
            "--as-of",
            "2025-03-31",
            "--json",
        ],
    ));
    assert!(row(&march, "risk", "RISK-006").is_none());
    assert_eq!(
        row(&march, "risk", "RISK-003").unwrap()["residual"],
        "3x2=6 mitigate"
    );
    let today = json(&ok(
        d,
        &["register", "risks", "--server", s, "--key", key, "--json"],
    ));
    assert_eq!(
        row(&today, "risk", "RISK-003").unwrap()["residual"],
        "2x2=4 accept"
    );
    assert!(row(&today, "risk", "RISK-006").is_some());
    let effective = json(&ok(
        d,
        &[
            "register",
            "risks",
            "--server",
            s,
            "--key",
            key,
            "--effective",
            "2025-03-31",
            "--json",
        ],
    ));
    assert!(row(&effective, "risk", "RISK-006").is_none());

    // Export and verify offline.
    let out = ok(
        d,
        &[
            "export",
            "--server",
            s,
            "--key",
            key,
            "--out",
            "x.bundle",
            "--artifacts",
        ],
    );
    assert!(out.contains("artifact(s)"), "{out}");
    let offline = ok(
        d,
        &[
            "verify",
            "--offline",
            "x.bundle",
            "--ledger-key",
            vkey,
            "--json",
        ],
    );
    let offline = json(&offline);
    assert_eq!(offline["ok"], true);
    assert!(offline["artifacts_checked"].as_u64().unwrap() > 40);
    // The bundle carries every checkpoint the demo's batches wrote, and each was checked.
    assert!(
        offline["checkpoints_checked"].as_u64().unwrap() > 10,
        "{offline}"
    );

    // The checkpoint this verification rested on, kept by the auditor: the server's history
    // must agree with it; a kept note that is not the ledger's is refused, naming it.
    let kept = offline["checkpoint"]["note"].as_str().unwrap().to_string();
    let size = offline["checkpoint"]["size"].as_u64().unwrap();
    std::fs::write(d.join("kept.note"), &kept).unwrap();
    let online = ok(
        d,
        &[
            "verify",
            "--server",
            s,
            "--key",
            key,
            "--ledger-key",
            vkey,
            "--trusted-checkpoint",
            "kept.note",
        ],
    );
    assert!(
        online.contains("agrees with the trusted checkpoint: root"),
        "{online}"
    );
    let forged = kept.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1000), 1);
    std::fs::write(d.join("forged.note"), forged).unwrap();
    let refused = run(
        d,
        &[
            "verify",
            "--server",
            s,
            "--key",
            key,
            "--ledger-key",
            vkey,
            "--trusted-checkpoint",
            "forged.note",
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "trusted checkpoint of size {}: BadCheckpoint",
            size + 1000
        )),
        "{}",
        refused.stderr
    );

    // Another ledger's key: exit 1.
    ok(d, &["key", "new", "--out", "other.key"]);
    let other = run(
        d,
        &[
            "verify",
            "--offline",
            "x.bundle",
            "--ledger-key",
            "other.key.pub",
        ],
    );
    assert_eq!(other.code, 1, "{other:?}");

    // One byte changed inside an entry: exit 1, naming that entry.
    let log = json(&ok(
        d,
        &[
            "log",
            "--server",
            s,
            "--key",
            key,
            "--entity",
            "RISK-001",
            "--kind",
            "risk_identified",
            "--json",
        ],
    ));
    let seq = log[0]["seq"].as_u64().expect("seq").to_string();
    let mut bytes = std::fs::read(d.join("x.bundle")).unwrap();
    let at = bytes
        .windows(20)
        .position(|w| w == b"SQL injection attack")
        .expect("the risk's text is in the bundle");
    bytes[at] ^= 0x01;
    std::fs::write(d.join("tampered.bundle"), &bytes).unwrap();
    let tampered = run(
        d,
        &[
            "verify",
            "--offline",
            "tampered.bundle",
            "--ledger-key",
            vkey,
        ],
    );
    assert_eq!(tampered.code, 1, "{tampered:?}");
    assert!(
        tampered.stderr.contains(&format!("entry {seq}:")),
        "expected entry {seq} to be named:\n{}",
        tampered.stderr
    );

    // Proofs in JSON, checked offline.
    let proof = ok(
        d,
        &[
            "prove",
            "inclusion",
            "--server",
            s,
            "--key",
            key,
            "--seq",
            &seq,
        ],
    );
    std::fs::write(d.join("p.json"), &proof).unwrap();
    let checked = ok(d, &["prove", "check", "--ledger-key", vkey, "p.json"]);
    assert!(checked.contains("inclusion proof OK"), "{checked}");
    let mut doc = json(&proof);
    let first = doc["path"][0].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if first.starts_with('0') { "1" } else { "0" },
        &first[1..]
    );
    doc["path"][0] = serde_json::Value::String(flipped);
    std::fs::write(d.join("bad.json"), doc.to_string()).unwrap();
    assert_eq!(
        run(d, &["prove", "check", "--ledger-key", vkey, "bad.json"]).code,
        1
    );
    let consistency = ok(
        d,
        &[
            "prove",
            "consistency",
            "--server",
            s,
            "--key",
            key,
            "--old",
            "10",
        ],
    );
    std::fs::write(d.join("c.json"), &consistency).unwrap();
    let checked = ok(d, &["prove", "check", "--ledger-key", vkey, "c.json"]);
    assert!(checked.contains("consistency proof OK"), "{checked}");
}

/// A SoA file whose second row excludes a control without saying why.
const SOA_WITH_ONE_BAD_ROW: &str = "soa_template:
  organizational_controls_5:
    \"A.5.1\":
      control: \"Policies for information security\"
      applicable: true
      justification: \"Required to establish security governance\"
      implementation: \"Policy approved by the CEO\"
    \"A.5.7\":
      control: \"Threat intelligence\"
      applicable: false
      justification: \"\"
      implementation: \"\"
";

#[test]
fn a_file_with_one_bad_row_stores_nothing_and_names_the_bad_row() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let s = server.url.as_str();
    write(d, "soa-edge.yaml", SOA_WITH_ONE_BAD_ROW);
    let submit = |extra: &[&str]| {
        let mut args = vec!["submit", "--server", s, "--key", "data/admin.key"];
        args.extend_from_slice(extra);
        args.push("soa-edge.yaml");
        run(d, &args)
    };
    let refused = submit(&[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("1 of 2 events were refused; nothing was stored")
            && refused.stderr.contains("justification"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.contains("not stored"), "{}", refused.stdout);
    // Had the good row been stored, submitting the file again would find it recorded.
    let partial = submit(&["--partial"]);
    assert_eq!(partial.code, 2, "the bad row is still refused");
    assert!(
        partial.stdout.contains("accepted") && !partial.stdout.contains("duplicate"),
        "{}",
        partial.stdout
    );
}

#[test]
fn an_unknown_log_kind_is_refused_naming_the_kinds() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let out = run(
        d,
        &[
            "log",
            "--server",
            &server.url,
            "--key",
            "data/admin.key",
            "--kind",
            "nosuchkind",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("\"nosuchkind\" is not an event kind"),
        "{out:?}"
    );
    assert!(out.stderr.contains("risk_rescored"), "{out:?}");
}

#[test]
fn a_diff_whose_from_is_after_its_to_is_refused_in_dates() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let out = run(
        d,
        &[
            "diff",
            "--server",
            &server.url,
            "--key",
            "data/admin.key",
            "--from",
            "2025-06-30",
            "--to",
            "2025-03-31",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("--from 2025-06-30") && out.stderr.contains("is after --to 2025-03-31"),
        "{out:?}"
    );
}

#[test]
fn a_key_the_ledger_does_not_know_is_named_by_its_flag() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    ok(d, &["key", "new", "--out", "stranger.key"]);
    let out = run(
        d,
        &["log", "--server", &server.url, "--key", "stranger.key"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--key: key"), "{out:?}");
    assert!(!out.stderr.contains("x-isms"), "{out:?}");
}

#[test]
fn register_headers_say_which_time_axis_they_show() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    let base = [
        "register",
        "risks",
        "--server",
        &server.url,
        "--key",
        "data/admin.key",
    ];
    let recorded = ok(d, &base);
    assert!(
        recorded.contains("risk_register as recorded on "),
        "{recorded}"
    );
    let bitemporal = ok(d, &[&base[..], &["--effective", "2025-12-31"]].concat());
    assert!(
        bitemporal.contains("risk_register in effect on 2025-12-31")
            && bitemporal.contains("as known on today"),
        "{bitemporal}"
    );
}

#[test]
fn register_help_gives_an_example_for_every_register() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["register", "--help"]);
    let values = out
        .split("Possible values:")
        .nth(1)
        .expect("the list of registers")
        .split("Options:")
        .next()
        .unwrap();
    let names: Vec<&str> = values
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ")?.split(':').next())
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        assert!(
            out.contains(&format!("isms register {name} ")),
            "no example for {name}:\n{out}"
        );
    }
}
