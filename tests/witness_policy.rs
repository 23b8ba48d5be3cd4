//! `isms verify --witness-key ... --witness-quorum N`: which entries independent witnesses saw
//! by when, and a history rewritten under the ledger key refused where it departs from what a
//! witness cosigned. Real processes on 127.0.0.1: a witness, a ledger server sending it
//! checkpoints, the `isms` client.

mod cli_util;

use std::path::Path;
use std::time::{Duration, Instant};

use cli_util::{init_ledger, ok, run, Server};
use isms_cli::bundle::Bundle;
use isms_proto::v1 as pb;
use ledger::{Checkpoint, Entry, SignedCheckpoint};
use prost::Message as _;

const ADMIN: &str = "data/admin.key";

/// A witness initialised in `dir/<folder>` following the ledger of `dir/data`; its verifier
/// key.
fn witness(dir: &Path, folder: &str, name: &str) -> String {
    let out = ok(dir, &["witness", "init", "--data", folder, "--name", name]);
    let witness_vkey = out.lines().last().expect("verifier key").trim().to_string();
    let ledger_vkey = std::fs::read_to_string(dir.join("ledger.vkey")).unwrap();
    ok(
        dir,
        &[
            "witness",
            "add-ledger",
            "--data",
            folder,
            "--ledger-key",
            ledger_vkey.trim(),
        ],
    );
    witness_vkey
}

/// A ledger with `events` key enrolments, served with one witness (`w1`) that has cosigned
/// its head; the witness's verifier key.
struct Witnessed {
    dir: tempfile::TempDir,
    server: Server,
    witness_server: Server,
    w1: String,
}

/// Waits until the witness has cosigned the server's head.
fn wait_cosigned(d: &Path, url: &str) {
    let start = Instant::now();
    loop {
        let status: serde_json::Value = serde_json::from_str(&ok(
            d,
            &["status", "--server", url, "--key", ADMIN, "--json"],
        ))
        .unwrap();
        let size = status["size"].as_u64().unwrap();
        let cosigned = status["witnesses"][0]["cosigned_size"]
            .as_u64()
            .unwrap_or(0);
        if cosigned == size {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never cosigned: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn witnessed(events: usize) -> Witnessed {
    let dir = init_ledger();
    let d = dir.path();
    // The ledger's verifier key, from the key the data folder holds.
    let key = isms_cli::client::read_key(&d.join("data/ledger.key")).unwrap();
    let id = std::fs::read_dir(d.join("data")).unwrap().count();
    let _ = id;
    let genesis = {
        let store = ledger::Ledger::open(
            d.join("data").join(isms_cli::server::STORE_DIR),
            ledger::LedgerConfig::default(),
            None,
        )
        .unwrap();
        store.origin().to_string()
    };
    std::fs::write(
        d.join("ledger.vkey"),
        ledger::checkpoint::verifier_key(&genesis, &key.verifying_key()),
    )
    .unwrap();
    let w1 = witness(d, "w1", "witness.test/w1");
    let witness_server = Server::spawn(
        d,
        &[
            "witness",
            "serve",
            "--data",
            "w1",
            "--listen",
            "127.0.0.1:0",
        ],
        "isms witness: serving on ",
    );
    let server = Server::start_with(
        d,
        "data",
        &[
            "--witness-interval",
            "100ms",
            "--witness",
            &format!("w1={},{w1}", witness_server.url),
        ],
    );
    for i in 0..events {
        let name = format!("k{i}.key");
        cli_util::enrol_key(d, &server.url, &name, &format!("agent-{i}"), "agent");
        // Let the witness see a few intermediate checkpoints.
        std::thread::sleep(Duration::from_millis(120));
    }
    wait_cosigned(d, &server.url);
    Witnessed {
        dir,
        server,
        witness_server,
        w1,
    }
}

#[test]
fn verify_with_a_witness_key_says_which_entries_were_witnessed_by_when() {
    let w = witnessed(3);
    let d = w.dir.path();
    let out = run(
        d,
        &[
            "verify",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--witness-key",
            &w.w1,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("entries 0..="), "{out:?}");
    assert!(
        out.stdout.contains("existed no later than")
            && out.stdout.contains("witnessed by witness.test/w1"),
        "{out:?}"
    );
}

#[test]
fn a_quorum_no_checkpoint_reaches_is_refused() {
    let w = witnessed(1);
    let d = w.dir.path();
    // A second witness that never saw this ledger.
    let w2 = witness(d, "w2", "witness.test/w2");
    let out = run(
        d,
        &[
            "verify",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--witness-key",
            &w.w1,
            "--witness-key",
            &w2,
            "--witness-quorum",
            "2",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("no checkpoint is cosigned by 2"),
        "{out:?}"
    );
}

/// What a rewritten history does with the witnesses' cosignature lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cosignatures {
    /// Carried over as they were (they no longer verify).
    Kept,
    /// Dropped, as an operator hiding the rewrite would.
    Stripped,
}

/// The bundle with entry `seq` changed (its subject) and every later entry, and every
/// checkpoint, rebuilt and re-signed with the ledger and admin keys.
fn rewritten(d: &Path, bundle: &Bundle, seq: usize, cosignatures: Cosignatures) -> Bundle {
    let ledger_key = isms_cli::client::read_key(&d.join("data/ledger.key")).unwrap();
    let admin = isms_cli::client::read_key(&d.join(ADMIN)).unwrap();
    let mut entries: Vec<Entry> = bundle
        .entries
        .iter()
        .map(|e| Entry::decode(e).unwrap())
        .collect();
    let mut body = pb::EventBody::decode(entries[seq].body.as_slice()).unwrap();
    if let Some(pb::event_body::Payload::KeyEnrolled(k)) = &mut body.payload {
        k.subject = "someone else".into();
    } else {
        panic!("entry {seq} is a key enrolment");
    }
    let signed = ledger::SignedEvent::sign(&admin, body.encode_to_vec());
    entries[seq].body = signed.body;
    entries[seq].signature = signed.signature;
    for i in 1..entries.len() {
        entries[i].prev_hash = entries[i - 1].hash();
    }
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.hash().0).collect();
    let checkpoints = bundle
        .checkpoints
        .iter()
        .map(|note| {
            let old = SignedCheckpoint::parse_unverified(note).unwrap();
            let leaves: Vec<&[u8]> = hashes[..old.size as usize].iter().map(|h| &h[..]).collect();
            let new = Checkpoint {
                root: ledger::merkle::root_from_leaves::<ledger::merkle::Blake3Hasher>(&leaves),
                ..old
            }
            .sign(&ledger_key);
            if cosignatures == Cosignatures::Stripped {
                return new.note;
            }
            let witnesses: String = ledger::cosignature::signature_lines(note)
                .unwrap()
                .iter()
                .skip(1)
                .map(|l| l.to_line())
                .collect();
            ledger::cosignature::add_cosignatures(&new.note, &witnesses).unwrap()
        })
        .collect();
    let mut out = bundle.clone();
    out.entries = entries.iter().map(Entry::encode).collect();
    out.checkpoints = checkpoints;
    out.keys = isms_cli::commands::log::keys_of(&entries);
    out
}

#[test]
fn a_rewritten_past_is_refused_naming_where_it_departs_from_the_witnessed_history() {
    let w = witnessed(4);
    let d = w.dir.path();
    let genuine = export(&w, "genuine.bundle");
    let changed_seq = 2;
    std::fs::write(
        d.join("rewritten.bundle"),
        rewritten(d, &genuine, changed_seq, Cosignatures::Kept).to_bytes(),
    )
    .unwrap();
    // Under the ledger key alone, the rewritten history verifies: that is the threat.
    let alone = run(
        d,
        &[
            "verify",
            "--offline",
            "rewritten.bundle",
            "--ledger-key",
            "ledger.vkey",
        ],
    );
    assert_eq!(alone.code, 0, "{alone:?}");
    let out = run(
        d,
        &[
            "verify",
            "--offline",
            "rewritten.bundle",
            "--ledger-key",
            "ledger.vkey",
            "--witness-key",
            &w.w1,
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not verify over it"), "{out:?}");
    // "... departs from what it saw after seq A and at or before seq B": A < changed <= B.
    let tail = out
        .stderr
        .split("departs from what it saw ")
        .nth(1)
        .expect("a range");
    let numbers: Vec<u64> = tail
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (after, upto) = match tail.starts_with("after") {
        true => (Some(numbers[0]), numbers[1]),
        false => (None, numbers[1]),
    };
    assert!(after.is_none_or(|a| a < changed_seq as u64), "{out:?}");
    assert!(upto >= changed_seq as u64, "{out:?}");
}

#[test]
fn a_proof_checked_with_a_witness_key_says_when_its_entry_existed() {
    let w = witnessed(2);
    let d = w.dir.path();
    let doc = ok(
        d,
        &[
            "prove",
            "inclusion",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--seq",
            "1",
        ],
    );
    std::fs::write(d.join("p.json"), doc).unwrap();
    let out = run(
        d,
        &[
            "prove",
            "check",
            "--ledger-key",
            "ledger.vkey",
            "--witness-key",
            &w.w1,
            "p.json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("inclusion proof OK"), "{out:?}");
    assert!(
        out.stdout.contains("witnessed by witness.test/w1"),
        "{out:?}"
    );
}

#[test]
fn a_proof_whose_checkpoint_the_witness_never_cosigned_is_refused() {
    let w = witnessed(1);
    let d = w.dir.path();
    let doc = ok(
        d,
        &[
            "prove",
            "inclusion",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--seq",
            "1",
        ],
    );
    std::fs::write(d.join("p.json"), doc).unwrap();
    let w2 = witness(d, "w2", "witness.test/w2");
    let out = run(
        d,
        &[
            "prove",
            "check",
            "--ledger-key",
            "ledger.vkey",
            "--witness-key",
            &w2,
            "p.json",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no checkpoint is cosigned"), "{out:?}");
}

/// A register row's cell, from `isms register ... --json`.
fn cell(out: &str, id: &str, column: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(out).expect("register JSON");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["risk"] == id)
        .unwrap_or_else(|| panic!("no {id} in {out}"))[column]
        .clone()
}

#[test]
fn register_witnessed_answers_only_from_the_cosigned_part() {
    let w = witnessed(0);
    let d = w.dir.path();
    let seed = cli_util::repo().join("fixtures/seed/risk_assessment.yaml");
    let seed = seed.to_string_lossy();
    ok(
        d,
        &["apply", "--server", &w.server.url, "--key", ADMIN, &seed],
    );
    wait_cosigned(d, &w.server.url);
    // The witness goes away; a rescoring after that is recorded but never witnessed.
    drop(w.witness_server);
    let edited = std::fs::read_to_string(seed.as_ref()).unwrap().replacen(
        "residual_impact: 2\n      residual_risk: 6",
        "residual_impact: 3\n      residual_risk: 9",
        1,
    );
    std::fs::write(d.join("risks.yaml"), edited).unwrap();
    ok(
        d,
        &[
            "apply",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "risks.yaml",
        ],
    );
    // Today (its end): answered as of now.
    let now = isms_cli::dates::show_time(ledger::UnixMicros::now().0)[..10].to_string();
    let base = [
        "register",
        "risks",
        "--server",
        &w.server.url,
        "--key",
        ADMIN,
        "--json",
        "--as-of",
        &now,
    ];
    let recorded = ok(d, &base);
    let witnessed = ok(
        d,
        &[&base[..], &["--witnessed", "--witness-key", &w.w1]].concat(),
    );
    assert_ne!(
        cell(&recorded, "RISK-003", "residual"),
        cell(&witnessed, "RISK-003", "residual"),
        "the unwitnessed rescoring shows only in the recorded register"
    );
    let entries =
        |out: &str| serde_json::from_str::<serde_json::Value>(out).unwrap()["entries"].as_u64();
    assert!(entries(&witnessed) < entries(&recorded), "{witnessed}");
}

/// The ledger of `w` exported to `name`, parsed.
fn export(w: &Witnessed, name: &str) -> Bundle {
    let d = w.dir.path();
    ok(
        d,
        &[
            "export",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--out",
            name,
        ],
    );
    Bundle::from_bytes(&std::fs::read(d.join(name)).unwrap()).unwrap()
}

/// `isms verify --offline BUNDLE --witness-key W1 --compare-with COPY`.
fn verify_against_copy(w: &Witnessed, bundle: &str, copy: &str) -> cli_util::Run {
    run(
        w.dir.path(),
        &[
            "verify",
            "--offline",
            bundle,
            "--ledger-key",
            "ledger.vkey",
            "--witness-key",
            &w.w1,
            "--compare-with",
            copy,
        ],
    )
}

#[test]
fn a_rewritten_past_with_its_cosignatures_stripped_is_named_at_the_exact_seq_by_an_earlier_copy() {
    let w = witnessed(4);
    let d = w.dir.path();
    let genuine = export(&w, "genuine.bundle");
    let changed_seq = 3;
    let forged = rewritten(d, &genuine, changed_seq, Cosignatures::Stripped);
    std::fs::write(d.join("rewritten.bundle"), forged.to_bytes()).unwrap();
    let out = verify_against_copy(&w, "rewritten.bundle", "genuine.bundle");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the history departs at seq {changed_seq} from what witness"
        )),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("(the same event id, with other content)"),
        "{out:?}"
    );
}

#[test]
fn a_history_cut_back_is_named_where_it_ends_by_an_earlier_witnessed_copy() {
    let w = witnessed(3);
    let d = w.dir.path();
    let genuine = export(&w, "genuine.bundle");
    // The history as it stood at its second checkpoint, with that checkpoint's note.
    let mut cut = genuine.clone();
    let keep = SignedCheckpoint::parse_unverified(&genuine.checkpoints[1])
        .unwrap()
        .size;
    cut.entries.truncate(keep as usize);
    cut.checkpoints.truncate(2);
    cut.manifest.entries = keep;
    cut.manifest.checkpoints = 2;
    cut.keys = isms_cli::commands::log::keys_of(
        &cut.entries
            .iter()
            .map(|e| Entry::decode(e).unwrap())
            .collect::<Vec<_>>(),
    );
    std::fs::write(d.join("cut.bundle"), cut.to_bytes()).unwrap();
    let out = verify_against_copy(&w, "cut.bundle", "genuine.bundle");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the entries from seq {keep} on were cut from the history"
        )),
        "{out:?}"
    );
}

#[test]
fn a_server_whose_history_grew_since_agrees_with_an_earlier_witnessed_copy() {
    let w = witnessed(2);
    let d = w.dir.path();
    export(&w, "earlier.bundle");
    cli_util::enrol_key(d, &w.server.url, "later.key", "later", "agent");
    wait_cosigned(d, &w.server.url);
    // The server's history now, verified online against the earlier export.
    let out = run(
        d,
        &[
            "verify",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--witness-key",
            &w.w1,
            "--compare-with",
            "earlier.bundle",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("the history agrees with the"),
        "{out:?}"
    );
}

/// Submits the seed's risk register to `w`'s server keeping receipts in `receipts.jsonl`.
fn submit_with_receipts(w: &Witnessed) {
    let seed = cli_util::repo().join("fixtures/seed/risk_assessment.yaml");
    ok(
        w.dir.path(),
        &[
            "submit",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--receipts",
            "receipts.jsonl",
            seed.to_str().expect("utf-8 path"),
        ],
    );
}

fn check_receipts(w: &Witnessed, extra: &[&str]) -> cli_util::Run {
    let mut args = vec![
        "receipt",
        "check",
        "--ledger-key",
        "ledger.vkey",
        "receipts.jsonl",
    ];
    args.extend_from_slice(extra);
    run(w.dir.path(), &args)
}

#[test]
fn kept_receipts_check_offline_against_the_ledger_key() {
    let w = witnessed(1);
    submit_with_receipts(&w);
    let kept = std::fs::read_to_string(w.dir.path().join("receipts.jsonl")).unwrap();
    assert!(kept.lines().count() > 1, "{kept}");
    let out = check_receipts(&w, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.matches("receipt OK").count(),
        kept.lines().count(),
        "{out:?}"
    );
}

#[test]
fn a_receipt_whose_body_was_changed_is_refused_naming_its_event() {
    let w = witnessed(1);
    submit_with_receipts(&w);
    let path = w.dir.path().join("receipts.jsonl");
    let kept = std::fs::read_to_string(&path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(kept.lines().next().unwrap()).unwrap();
    let mut body = hex::decode(doc["body"].as_str().unwrap()).unwrap();
    let last = body.len() - 1;
    body[last] ^= 1;
    doc["body"] = hex::encode(body).into();
    std::fs::write(&path, format!("{doc}\n")).unwrap();
    let out = check_receipts(&w, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let event_id = doc["event_id"].as_str().unwrap();
    assert!(
        out.stderr.contains(&format!("receipt of {event_id:?}"))
            && out.stderr.contains("entry hash"),
        "{out:?}"
    );
}

#[test]
fn a_receipt_checked_with_a_witness_key_says_when_a_later_cosigned_checkpoint_included_it() {
    let w = witnessed(1);
    submit_with_receipts(&w);
    wait_cosigned(w.dir.path(), &w.server.url);
    let out = check_receipts(
        &w,
        &[
            "--witness-key",
            &w.w1,
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("existed no later than") && out.stdout.contains("is a prefix of it"),
        "{out:?}"
    );
}

#[test]
fn a_receipt_whose_checkpoint_no_witness_cosigned_is_refused_offline() {
    let w = witnessed(1);
    submit_with_receipts(&w);
    let out = check_receipts(&w, &["--witness-key", &w.w1, "--offline"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("carries no cosignatures"), "{out:?}");
}

#[test]
fn a_receipt_the_witnessed_history_no_longer_holds_is_refused() {
    let w = witnessed(1);
    let d = w.dir.path();
    // A second server of the same ledger, from a copy of it as it is now.
    ok(
        d,
        &[
            "backup",
            "--server",
            &w.server.url,
            "--key",
            ADMIN,
            "--out",
            "copy",
        ],
    );
    ok(
        d,
        &[
            "restore",
            "--from",
            "copy",
            "--data",
            "other",
            "--ledger-key-file",
            "data/ledger.key",
        ],
    );
    // The first server gives receipts for the risk register ...
    submit_with_receipts(&w);
    // ... the other records something else in their place, and a second witness cosigns it.
    let w2 = witness(d, "w2", "witness.test/w2");
    let w2_server = Server::start_witness(d, "w2");
    let other = Server::start_with(
        d,
        "other",
        &[
            "--witness-interval",
            "100ms",
            "--witness",
            &format!("w2={},{w2}", w2_server.url),
        ],
    );
    let soa = cli_util::repo().join("fixtures/seed/soa_template.yaml");
    ok(
        d,
        &[
            "submit",
            "--server",
            &other.url,
            "--key",
            ADMIN,
            soa.to_str().expect("utf-8 path"),
        ],
    );
    wait_cosigned(d, &other.url);
    let out = check_receipts(
        &w,
        &["--witness-key", &w2, "--server", &other.url, "--key", ADMIN],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("is not a prefix of the checkpoint"),
        "{out:?}"
    );
}
