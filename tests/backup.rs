//! `isms backup` and `isms restore` end to end: the real binary, a real server on 127.0.0.1,
//! real sled folders, `kill -9` in the middle of each.

mod cli_util;

use std::path::Path;
use std::time::Duration;

use cli_util::{init_ledger, isms, ok, repo, run, wait_with_limit, Server};

const ADMIN: &str = "data/admin.key";

fn seed(name: &str) -> String {
    repo()
        .join("fixtures/seed")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

const AGENT: &str = "agent.key";

/// An agent key, the seed's risk register and SoA, and one piece of evidence with an artifact.
fn fill(dir: &Path, server: &str) {
    cli_util::enrol_key(dir, server, AGENT, "ci/scanner", "agent");
    ok(
        dir,
        &[
            "submit",
            "--server",
            server,
            "--key",
            ADMIN,
            "--effective",
            "2025-03-03",
            &seed("risk_assessment.yaml"),
            &seed("soa_template.yaml"),
        ],
    );
    std::fs::write(dir.join("scan.json"), b"{\"critical\":0,\"high\":2}").unwrap();
    ok(
        dir,
        &[
            "evidence",
            "add",
            "--server",
            server,
            "--key",
            AGENT,
            "--control",
            "A.8.8",
            "--summary",
            "weekly scan",
            "scan.json",
        ],
    );
}

/// `isms verify --offline` of a backup folder's bundle with its verifier key; the output.
fn verify_backup(dir: &Path, backup: &str) -> cli_util::Run {
    run(
        dir,
        &[
            "verify",
            "--offline",
            &format!("{backup}/ledger.bundle"),
            "--ledger-key",
            &format!("{backup}/ledger.vkey"),
        ],
    )
}

/// The number after "verified: " in `isms verify` output.
fn verified_entries(out: &str) -> u64 {
    out.split("verified: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no entry count in {out}"))
}

fn head_size(dir: &Path, server: &str) -> u64 {
    let out = ok(
        dir,
        &["status", "--server", server, "--key", ADMIN, "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    v["size"].as_u64().expect("size")
}

#[test]
fn a_backup_of_a_live_server_verifies_offline_and_holds_its_artifacts() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    fill(d, &server.url);
    let size = head_size(d, &server.url);

    let out = ok(
        d,
        &[
            "backup",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--out",
            "bk",
        ],
    );
    assert!(out.contains("1 artifact(s)"), "{out}");
    let verified = verify_backup(d, "bk");
    assert_eq!(verified.code, 0, "{verified:?}");
    assert_eq!(verified_entries(&verified.stdout), size);
}

#[test]
fn a_backup_taken_while_appends_go_on_ends_at_a_checkpoint_and_verifies() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    fill(d, &server.url);
    let writer = {
        let (d, url) = (d.to_path_buf(), server.url.clone());
        std::thread::spawn(move || {
            for i in 0..15 {
                std::fs::write(d.join(format!("e{i}.txt")), format!("evidence {i}")).unwrap();
                ok(
                    &d,
                    &[
                        "evidence",
                        "add",
                        "--server",
                        &url,
                        "--key",
                        AGENT,
                        "--control",
                        "A.8.8",
                        "--summary",
                        "scan",
                        &format!("e{i}.txt"),
                    ],
                );
            }
        })
    };
    let mut sizes = Vec::new();
    for round in 0..3 {
        let out_dir = format!("bk{round}");
        ok(
            d,
            &[
                "backup",
                "--server",
                &server.url,
                "--key",
                ADMIN,
                "--out",
                &out_dir,
            ],
        );
        let verified = verify_backup(d, &out_dir);
        assert_eq!(verified.code, 0, "round {round}: {verified:?}");
        sizes.push(verified_entries(&verified.stdout));
    }
    writer.join().expect("writer");
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "later backups hold at least as much: {sizes:?}"
    );
}

#[test]
fn a_backup_of_a_stopped_servers_folder_equals_one_from_the_server() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    fill(d, &server.url);
    ok(
        d,
        &[
            "backup",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--out",
            "online",
        ],
    );
    drop(server);
    ok(d, &["backup", "--data", "data", "--out", "offline"]);
    let entries = |name: &str| {
        let bytes = std::fs::read(d.join(name).join("ledger.bundle")).unwrap();
        let bundle = isms_cli::bundle::Bundle::from_bytes(&bytes).expect("bundle reads");
        (bundle.entries, bundle.checkpoints, bundle.artifacts)
    };
    assert_eq!(entries("online"), entries("offline"));
}

#[test]
fn a_backup_killed_midway_leaves_the_previous_backup_whole() {
    let dir = init_ledger();
    let d = dir.path();
    let server = Server::start(d, "data");
    fill(d, &server.url);
    ok(
        d,
        &[
            "backup",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--out",
            "bk",
        ],
    );
    let first = std::fs::read(d.join("bk/ledger.bundle")).unwrap();
    for round in 0..8u64 {
        // More entries, so that the next backup differs from the one it replaces.
        std::fs::write(d.join("more.txt"), format!("round {round}")).unwrap();
        ok(
            d,
            &[
                "evidence",
                "add",
                "--server",
                &server.url,
                "--key",
                AGENT,
                "--control",
                "A.8.8",
                "--summary",
                "scan",
                "more.txt",
            ],
        );
        let mut child = isms(d)
            .args([
                "backup",
                "--server",
                &server.url,
                "--key",
                ADMIN,
                "--out",
                "bk",
            ])
            .spawn()
            .expect("spawn backup");
        std::thread::sleep(Duration::from_millis(20 * round));
        let _ = child.kill();
        let _ = wait_with_limit(&mut child, Duration::from_secs(30));
        let verified = verify_backup(d, "bk");
        assert_eq!(verified.code, 0, "round {round}: {verified:?}");
    }
    // The backups that finished replaced the first one whole; none is ever a mix.
    let last = std::fs::read(d.join("bk/ledger.bundle")).unwrap();
    assert!(last.len() >= first.len());
}

/// A backup folder `bk` and the stopped server's data folder `data`, filled by [`fill`].
fn backed_up(dir: &Path) {
    let server = Server::start(dir, "data");
    fill(dir, &server.url);
    ok(
        dir,
        &[
            "backup",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--out",
            "bk",
        ],
    );
}

fn restore(dir: &Path, into: &str) -> cli_util::Run {
    run(
        dir,
        &[
            "restore",
            "--from",
            "bk",
            "--data",
            into,
            "--ledger-key-file",
            "data/ledger.key",
        ],
    )
}

#[test]
fn a_restored_ledger_serves_the_backed_up_head_and_verifies() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    let restored = restore(d, "restored");
    assert_eq!(restored.code, 0, "{restored:?}");
    let backed = verified_entries(&verify_backup(d, "bk").stdout);
    let server = Server::start(d, "restored");
    assert_eq!(head_size(d, &server.url), backed);
    let verified = run(
        d,
        &[
            "verify",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--trusted-checkpoint",
            "bk/checkpoint.note",
        ],
    );
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn a_restored_ledger_continues_the_same_chain() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    assert_eq!(restore(d, "restored").code, 0);
    let server = Server::start(d, "restored");
    std::fs::write(d.join("after.txt"), b"after the restore").unwrap();
    ok(
        d,
        &[
            "evidence",
            "add",
            "--server",
            &server.url,
            "--key",
            AGENT,
            "--control",
            "A.8.8",
            "--summary",
            "after restore",
            "after.txt",
        ],
    );
    // The history before the restore is a prefix of the one after: the checkpoint the backup
    // ended at is consistent with the new head.
    let verified = run(
        d,
        &[
            "verify",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--trusted-checkpoint",
            "bk/checkpoint.note",
        ],
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    let backed = verified_entries(&verify_backup(d, "bk").stdout);
    assert!(verified_entries(&verified.stdout) > backed, "{verified:?}");
}

#[test]
fn restore_refuses_a_backup_not_signed_by_the_key_given_and_writes_nothing() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    ok(d, &["key", "new", "--out", "other.key"]);
    let refused = run(
        d,
        &[
            "restore",
            "--from",
            "bk",
            "--data",
            "restored",
            "--ledger-key-file",
            "other.key",
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("not signed by the ledger key given"),
        "{refused:?}"
    );
    assert!(!d.join("restored").exists());
    assert!(!d.join(".restored.partial").exists());
}

#[test]
fn restore_never_writes_into_an_existing_folder() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    let refused = restore(d, "data");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("already exists"), "{refused:?}");
}

#[test]
fn a_restore_killed_midway_leaves_no_folder_under_its_name() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    cli_util::grow_store(d, AGENT, 30_000);
    ok(d, &["backup", "--data", "data", "--out", "bk"]);
    let mut interrupted = 0;
    for round in 0..8u64 {
        let mut child = isms(d)
            .args([
                "restore",
                "--from",
                "bk",
                "--data",
                "restored",
                "--ledger-key-file",
                "data/ledger.key",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn restore");
        std::thread::sleep(Duration::from_millis(100 * round));
        if child.try_wait().expect("poll").is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = wait_with_limit(&mut child, Duration::from_secs(30));
        let restored = d.join("restored");
        if restored.exists() {
            // It finished before the kill: then it is whole.
            let verified = run(d, &["verify", "--data", "restored"]);
            assert_eq!(verified.code, 0, "round {round}: {verified:?}");
            std::fs::remove_dir_all(&restored).unwrap();
        }
    }
    assert!(
        interrupted > 0,
        "no restore was interrupted: make the ledger larger"
    );
    // An interrupted restore leaves nothing in the way of the next one.
    let finished = restore(d, "restored");
    assert_eq!(finished.code, 0, "{finished:?}");
}

#[test]
fn salvage_of_an_intact_folder_saves_every_entry() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    let size = verified_entries(&verify_backup(d, "bk").stdout);
    let saved = run(d, &["salvage", "--data", "data", "--out", "saved"]);
    assert_eq!(saved.code, 0, "{saved:?}");
    assert!(
        saved.stdout.contains(&format!("salvaged {size} entries")),
        "{saved:?}"
    );
    let verified = run(d, &["verify", "--data", "saved"]);
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn salvage_of_a_damaged_folder_names_the_first_lost_seq_and_keeps_what_verifies() {
    let dir = init_ledger();
    let d = dir.path();
    backed_up(d);
    // Entry 5's last byte changed through sled: its signature no longer holds.
    {
        let db = sled::open(d.join("data").join(isms_cli::server::STORE_DIR)).unwrap();
        let records = ledger::engine::SledSpace(db.open_tree("records").unwrap());
        let mut entry = ledger::entry_blocks::read(&records, 5).unwrap().unwrap();
        *entry.last_mut().unwrap() ^= 1;
        ledger::entry_blocks::replace(&records, 5, &entry).unwrap();
        db.flush().unwrap();
    }
    let saved = run(d, &["salvage", "--data", "data", "--out", "saved"]);
    assert_eq!(saved.code, 1, "{saved:?}");
    assert!(saved.stderr.contains("from seq 5"), "{saved:?}");
    assert!(saved.stdout.contains("salvaged 5 entries"), "{saved:?}");
    let verified = run(d, &["verify", "--data", "saved"]);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert_eq!(verified_entries(&verified.stdout), 5);
}
