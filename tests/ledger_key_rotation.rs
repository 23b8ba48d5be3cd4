//! `isms key rotate-ledger-key` end to end: the real binary, a real server on 127.0.0.1, and
//! verification that follows the hand-over from the genesis's key.

mod cli_util;

use std::path::Path;

use cli_util::{init_ledger, ok, run, Server};

const ADMIN: &str = "data/admin.key";

/// Enrols a fresh key named `name` through the server at `url` (one entry).
fn enrol(dir: &Path, url: &str, name: &str) {
    cli_util::enrol_key(dir, url, name, name, "auditor");
}

/// A ledger with entries before and after a hand-over, its server running again on the new
/// key.
fn rotated(dir: &Path) -> Server {
    let server = Server::start(dir, "data");
    enrol(dir, &server.url, "before.key");
    drop(server);
    ok(dir, &["key", "new", "--out", "ledger-2026.key"]);
    let out = ok(
        dir,
        &[
            "key",
            "rotate-ledger-key",
            "--data",
            "data",
            "--key",
            ADMIN,
            "--new-ledger-key",
            "ledger-2026.key",
            "--reason",
            "yearly rotation",
        ],
    );
    assert!(out.contains("handed the ledger key over at seq"), "{out}");
    let server = Server::start(dir, "data");
    enrol(dir, &server.url, "after.key");
    server
}

#[test]
fn a_rotated_ledger_serves_appends_and_verifies_online() {
    let dir = init_ledger();
    let d = dir.path();
    let server = rotated(d);
    let verified = run(d, &["verify", "--server", &server.url, "--key", ADMIN]);
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn a_backup_of_a_rotated_ledger_verifies_offline_from_the_genesis_key_and_restores() {
    let dir = init_ledger();
    let d = dir.path();
    let server = rotated(d);
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
    drop(server);
    let verified = run(
        d,
        &[
            "verify",
            "--offline",
            "bk/ledger.bundle",
            "--ledger-key",
            "bk/ledger.vkey",
        ],
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    let restored = run(
        d,
        &[
            "restore",
            "--from",
            "bk",
            "--data",
            "restored",
            "--ledger-key-file",
            "ledger-2026.key",
        ],
    );
    assert_eq!(restored.code, 0, "{restored:?}");
}

#[test]
fn after_a_rotation_the_old_ledger_key_no_longer_starts_the_server() {
    let dir = init_ledger();
    let d = dir.path();
    std::fs::copy(d.join("data/ledger.key"), d.join("old-ledger.key")).unwrap();
    drop(rotated(d));
    std::fs::copy(d.join("old-ledger.key"), d.join("data/ledger.key")).unwrap();
    let refused = run(d, &["verify", "--data", "data"]);
    // Reading needs no key; starting the writer does.
    assert_eq!(refused.code, 0, "{refused:?}");
    let serve = run(d, &["serve", "--data", "data", "--listen", "127.0.0.1:0"]);
    assert_ne!(serve.code, 0, "{serve:?}");
    assert!(serve.stderr.contains("current checkpoint key"), "{serve:?}");
}

#[test]
fn key_list_names_the_key_that_signs_checkpoints_after_a_rotation() {
    let dir = init_ledger();
    let d = dir.path();
    let server = rotated(d);
    let out = ok(
        d,
        &[
            "key",
            "list",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let new = isms_cli::client::read_key(&d.join("ledger-2026.key")).unwrap();
    let now = v["checkpoint_key_now"]
        .as_str()
        .expect("checkpoint_key_now");
    assert!(
        now.ends_with(&base64_of(&new.verifying_key())),
        "{now} is not the new key"
    );
    assert_ne!(v["ledger_key"], v["checkpoint_key_now"]);
}

/// The base64 tail of a verifier key for `key` (type byte 0x01, then the key).
fn base64_of(key: &ed25519_dalek::VerifyingKey) -> String {
    let vkey = ledger::checkpoint::verifier_key("x", key);
    vkey.rsplit('+').next().unwrap().to_string()
}

#[test]
fn status_names_the_key_that_signs_checkpoints_after_a_rotation() {
    let dir = init_ledger();
    let d = dir.path();
    let server = rotated(d);
    let out = ok(
        d,
        &["status", "--server", &server.url, "--key", ADMIN, "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let new = isms_cli::client::read_key(&d.join("ledger-2026.key")).unwrap();
    let now = v["checkpoint_key"].as_str().expect("checkpoint_key");
    assert!(
        now.ends_with(&base64_of(&new.verifying_key())),
        "{now} is not the new key"
    );
    assert_ne!(v["ledger_key"], v["checkpoint_key"]);
}
