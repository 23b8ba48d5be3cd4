//! `isms evidence add` stores its record and its artifact together: a refused record leaves no
//! artifact behind. The real binary against a real server on 127.0.0.1.

mod cli_util;

use std::path::Path;

use cli_util::{init_ledger, run, Server};

const ADMIN: &str = "data/admin.key";

/// A scanner key with the agent role.
fn scanner(dir: &Path, url: &str) {
    cli_util::enrol_key(dir, url, "scanner.key", "ci/scanner", "agent");
}

fn add(dir: &Path, url: &str, key: &str, file: &str) -> cli_util::Run {
    run(
        dir,
        &[
            "evidence",
            "add",
            "--server",
            url,
            "--key",
            key,
            "--control",
            "A.8.8",
            "--summary",
            "weekly scan",
            file,
        ],
    )
}

/// Whether the stopped server's store holds the bytes of `file`.
fn stored(dir: &Path, file: &str) -> ledger::ArtifactState {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let store = ledger::Ledger::open(
        dir.join("data").join(isms_cli::server::STORE_DIR),
        ledger::LedgerConfig::default(),
        None,
    )
    .expect("open the store");
    store
        .artifact_state(&ledger::ArtifactHash::of(&bytes))
        .expect("artifact state")
}

#[test]
fn a_refused_evidence_record_leaves_no_artifact() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    std::fs::write(d.join("scan.json"), b"{\"critical\":1}").unwrap();
    // The admin key holds no role that may submit evidence.
    let refused = add(d, &server.url, ADMIN, "scan.json");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("was not uploaded"), "{refused:?}");
    drop(server);
    assert_eq!(stored(d, "scan.json"), ledger::ArtifactState::Unknown);
}

#[test]
fn an_accepted_evidence_record_has_its_artifact_stored() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    scanner(d, &server.url);
    std::fs::write(d.join("scan.json"), b"{\"critical\":0}").unwrap();
    let added = add(d, &server.url, "scanner.key", "scan.json");
    assert_eq!(added.code, 0, "{added:?}");
    drop(server);
    assert_eq!(stored(d, "scan.json"), ledger::ArtifactState::Present);
}
