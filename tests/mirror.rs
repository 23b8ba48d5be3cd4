//! `isms mirror` end to end: a real ledger server and a real mirror process on 127.0.0.1, the
//! `isms` client against both, and a fork shown to the mirror by a second server of the same
//! ledger.

mod cli_util;

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cli_util::{init_ledger, isms, ok, repo, run, wait_with_limit, Server};

const ADMIN: &str = "data/admin.key";

fn seed(name: &str) -> String {
    repo()
        .join("fixtures/seed")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn mirror_args<'a>(from: &'a str, data: &'a str) -> Vec<&'a str> {
    vec![
        "mirror",
        "--from",
        from,
        "--key",
        ADMIN,
        "--data",
        data,
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "100ms",
    ]
}

fn start_mirror(d: &Path, from: &str, data: &str) -> Server {
    Server::spawn(d, &mirror_args(from, data), "isms mirror: serving on ")
}

fn size(d: &Path, url: &str) -> u64 {
    let out = ok(d, &["status", "--server", url, "--key", ADMIN, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["size"]
        .as_u64()
        .unwrap()
}

/// Waits until the mirror holds as many entries as the server.
fn wait_synced(d: &Path, server: &Server, mirror: &Server) {
    let start = Instant::now();
    let want = size(d, &server.url);
    while size(d, &mirror.url) != want {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mirror never caught up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A ledger server holding the seed's risk register and SoA.
fn ledger(d: &Path) -> Server {
    let server = Server::start(d, "data");
    ok(
        d,
        &[
            "submit",
            "--server",
            &server.url,
            "--key",
            ADMIN,
            &seed("risk_assessment.yaml"),
            &seed("soa_template.yaml"),
        ],
    );
    server
}

fn enrol(d: &Path, url: &str, name: &str) -> cli_util::Run {
    if !d.join(name).exists() {
        ok(d, &["key", "new", "--out", name]);
    }
    run(
        d,
        &[
            "key",
            "enroll",
            "--server",
            url,
            "--key",
            ADMIN,
            "--public-key",
            &format!("{name}.pub"),
            "--subject",
            name,
            "--role",
            "reader",
        ],
    )
}

#[test]
fn a_mirror_serves_the_same_registers_as_its_ledger_and_verifies() {
    let dir = init_ledger();
    let d = dir.path();
    let server = ledger(d);
    let mirror = start_mirror(d, &server.url, "mirror");
    wait_synced(d, &server, &mirror);
    let register = |url: &str| {
        ok(
            d,
            &[
                "register", "risks", "--server", url, "--key", ADMIN, "--json",
            ],
        )
    };
    let rows =
        |out: String| serde_json::from_str::<serde_json::Value>(&out).unwrap()["rows"].clone();
    assert_eq!(rows(register(&mirror.url)), rows(register(&server.url)));
    let verified = run(d, &["verify", "--server", &mirror.url, "--key", ADMIN]);
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn a_mirror_refuses_writes_with_failed_precondition() {
    let dir = init_ledger();
    let d = dir.path();
    let server = ledger(d);
    let mirror = start_mirror(d, &server.url, "mirror");
    wait_synced(d, &server, &mirror);
    let refused = enrol(d, &mirror.url, "reader.key");
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("read-only copy"), "{refused:?}");
    assert!(
        refused.stderr.contains("FailedPrecondition")
            || refused.stderr.contains("FAILED_PRECONDITION"),
        "{refused:?}"
    );
    assert_eq!(size(d, &mirror.url), size(d, &server.url));
}

#[test]
fn a_mirror_resumes_from_its_last_seq_after_a_restart() {
    let dir = init_ledger();
    let d = dir.path();
    let server = ledger(d);
    let mirror = start_mirror(d, &server.url, "mirror");
    wait_synced(d, &server, &mirror);
    drop(mirror);
    assert_eq!(enrol(d, &server.url, "later.key").code, 0);
    let mirror = start_mirror(d, &server.url, "mirror");
    wait_synced(d, &server, &mirror);
    let verified = run(d, &["verify", "--server", &mirror.url, "--key", ADMIN]);
    assert_eq!(verified.code, 0, "{verified:?}");
}

#[test]
fn a_mirror_alarms_on_a_fork_naming_the_seq_and_keeping_the_evidence() {
    let dir = init_ledger();
    let d = dir.path();
    let first = ledger(d);
    let common = size(d, &first.url);
    drop(first);
    // A second server of the same ledger, from a copy of its folder, with the same keys.
    copy_dir(&d.join("data"), &d.join("data-b"));
    let a = Server::start(d, "data");
    assert_eq!(enrol(d, &a.url, "mine.key").code, 0);
    let mirror = start_mirror(d, &a.url, "mirror");
    wait_synced(d, &a, &mirror);
    drop(mirror);
    let b = Server::start(d, "data-b");
    assert_eq!(enrol(d, &b.url, "theirs.key").code, 0);
    assert_eq!(enrol(d, &b.url, "theirs-2.key").code, 0);
    // The mirror, which saw the first server's entry `common`, is now shown the other one.
    let mut child = isms(d)
        .args(mirror_args(&b.url, "mirror"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mirror");
    let status = wait_with_limit(&mut child, Duration::from_secs(30)).expect("the mirror exits");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("ALARM at seq {common}")),
        "{stderr}"
    );
    let evidence = d
        .join("mirror/evidence")
        .join(format!("alarm-seq-{common}.txt"));
    let text = std::fs::read_to_string(&evidence).expect("the evidence file");
    assert!(text.contains("the server's checkpoint now"), "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

#[test]
fn a_mirror_keeps_the_evidence_files_its_entries_name() {
    let dir = init_ledger();
    let d = dir.path();
    let server = ledger(d);
    cli_util::enrol_key(d, &server.url, "agent.key", "ci/scanner", "agent");
    std::fs::write(d.join("scan.json"), b"{\"critical\":0}").unwrap();
    ok(
        d,
        &[
            "evidence",
            "add",
            "--server",
            &server.url,
            "--key",
            "agent.key",
            "--control",
            "A.8.8",
            "--summary",
            "weekly scan",
            "scan.json",
        ],
    );
    let mirror = start_mirror(d, &server.url, "mirror");
    wait_synced(d, &server, &mirror);
    let start = Instant::now();
    loop {
        ok(
            d,
            &[
                "export",
                "--server",
                &mirror.url,
                "--key",
                ADMIN,
                "--artifacts",
                "--out",
                "m.bundle",
            ],
        );
        let bundle =
            isms_cli::bundle::Bundle::from_bytes(&std::fs::read(d.join("m.bundle")).unwrap())
                .unwrap();
        if bundle.artifacts.len() == 1 {
            assert_eq!(bundle.artifacts[0].1, b"{\"critical\":0}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the mirror never kept the artifact"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many entries a stopped mirror's copy holds (0 before it has one).
fn copy_size(data: &Path) -> u64 {
    let store = data.join(isms_cli::server::STORE_DIR);
    if !store.exists() {
        return 0;
    }
    ledger::Ledger::open(&store, ledger::LedgerConfig::default(), None)
        .expect("the copy opens after kill -9")
        .head()
        .size
}

#[test]
fn a_mirror_killed_during_catch_up_resumes_and_its_copy_verifies() {
    let dir = init_ledger();
    let d = dir.path();
    cli_util::grow_store(d, ADMIN, 120_000);
    let server = Server::start(d, "data");
    let want = size(d, &server.url);
    // Killed twice, each time as soon as it has stored more than before (in the middle of
    // taking the next batch), and restarted on the same folder.
    let mut held = vec![1u64];
    for _ in 0..2 {
        let mirror = start_mirror(d, &server.url, "mirror");
        let start = Instant::now();
        let before = *held.last().expect("a size");
        loop {
            let now = size(d, &mirror.url);
            if now > before || now == want {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the mirror stored nothing more"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mirror.kill9();
        held.push(copy_size(&d.join("mirror")));
    }
    assert!(
        (2..want).contains(&held[1]),
        "the first kill did not land in the middle of the catch-up: {held:?} of {want}"
    );
    let mirror = start_mirror(d, &server.url, "mirror");
    let start = Instant::now();
    while size(d, &mirror.url) != want {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the mirror never caught up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(mirror);
    let verified = run(d, &["verify", "--data", "mirror"]);
    assert_eq!(verified.code, 0, "{verified:?}");
}
