//! End-to-end tests of `isms serve --witness`: the real ledger server and real `isms witness`
//! processes on 127.0.0.1. The server offers its checkpoints to each witness off the write
//! path, keeps the cosignatures durably and serves them as extra signature lines of the notes.
//! Waits are bounded polls of `GetStatus`; nothing asserts a timing.

mod cli_util;
mod util;

use std::time::{Duration, Instant};

use cli_util::{ok, Server};
use ed25519_dalek::SigningKey;
use isms_cli::client::{read_key, Client};
use isms_proto::v1 as pb;
use ledger::{SignedCheckpoint, WitnessVerifier};
use prost::Message as _;

/// How long a poll waits before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);
/// Offer checkpoints often, so the polls end soon.
const INTERVAL: &str = "200ms";

/// A ledger folder made by `isms init`, its admin key and its verifier key.
struct LedgerDir {
    dir: tempfile::TempDir,
    ledger_id: Vec<u8>,
    admin: SigningKey,
    ledger_key: ed25519_dalek::VerifyingKey,
    vkey: String,
}

impl LedgerDir {
    fn new() -> LedgerDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = ok(
            dir.path(),
            &["init", "--data", "data", "--name", "Example Ltd"],
        );
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("ledger ")?.split(' ').next())
            .expect("init prints the ledger id")
            .to_string();
        let ledger_key = read_key(&dir.path().join("data/ledger.key"))
            .expect("ledger key")
            .verifying_key();
        let vkey = ledger::checkpoint::verifier_key(&format!("isms-ledger/{id}"), &ledger_key);
        LedgerDir {
            admin: read_key(&dir.path().join("data/admin.key")).expect("admin key"),
            ledger_id: hex::decode(id).expect("hex ledger id"),
            ledger_key,
            vkey,
            dir,
        }
    }

    /// `isms serve` with these extra flags.
    fn serve(&self, flags: &[&str]) -> Server {
        Server::start_with(self.dir.path(), "data", flags)
    }

    /// `isms serve` asking the given witnesses (`NAME=URL,VKEY` each) every [`INTERVAL`].
    fn serve_witnessed(&self, witnesses: &[String]) -> Server {
        let mut flags = vec!["--witness-interval", INTERVAL];
        for w in witnesses {
            flags.extend(["--witness", w.as_str()]);
        }
        self.serve(&flags)
    }
}

/// A witness folder following one ledger, and the address it serves on once started.
struct WitnessDir {
    dir: tempfile::TempDir,
    verifier: WitnessVerifier,
}

impl WitnessDir {
    fn new(name: &str, ledger_vkey: &str) -> WitnessDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = ok(
            dir.path(),
            &["witness", "init", "--data", "w", "--name", name],
        );
        let verifier = WitnessVerifier::parse(out.lines().last().expect("verifier key line"))
            .expect("init prints the verifier key");
        ok(
            dir.path(),
            &[
                "witness",
                "add-ledger",
                "--data",
                "w",
                "--ledger-key",
                ledger_vkey,
            ],
        );
        WitnessDir { dir, verifier }
    }

    /// Serves on `listen` (`127.0.0.1:0` for a fresh port, or the port it had before).
    fn start_on(&self, listen: &str) -> Server {
        Server::spawn(
            self.dir.path(),
            &["witness", "serve", "--data", "w", "--listen", listen],
            "isms witness: serving on ",
        )
    }

    /// The `--witness` value for a witness served at `url`.
    fn flag(&self, name: &str, url: &str) -> String {
        format!("{name}={url},{}", self.verifier)
    }
}

/// An address on which nothing listens.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

async fn connect(server: &Server, ledger: &LedgerDir) -> Client {
    Client::connect_with(&server.url, Some(ledger.admin.clone()))
        .await
        .expect("connect")
}

/// Appends `n` key enrolments signed by the admin; each must be acknowledged.
async fn append(client: &mut Client, ledger: &LedgerDir, tag: &str, n: usize) {
    for i in 0..n {
        // A key per event: a key is enrolled once.
        let new = SigningKey::from_bytes(blake3::hash(format!("{tag}-{i}").as_bytes()).as_bytes());
        let mut body = util::enroll_body(
            &format!("{tag}-{i}"),
            &new,
            &format!("{tag}-{i}"),
            &["agent"],
        );
        body.ledger_id = ledger.ledger_id.clone();
        let receipt = client
            .append(body.encode_to_vec())
            .await
            .expect("the append is acknowledged");
        assert!(!receipt.checkpoint.is_empty());
    }
}

/// Polls GetStatus until `done` holds for it; fails after [`PATIENCE`].
async fn wait_for_status(
    client: &mut Client,
    what: &str,
    done: impl Fn(&pb::ServerStatus) -> bool,
) -> pb::ServerStatus {
    let start = Instant::now();
    loop {
        let status = client.status().await.expect("GetStatus");
        if done(&status) {
            return status;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}; status: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn witness<'a>(status: &'a pb::ServerStatus, name: &str) -> &'a pb::WitnessStatus {
    status
        .witnesses
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no witness {name} in {status:?}"))
}

/// The note verifies with the ledger key and carries a verifying cosignature of `verifier`.
fn assert_cosigned(ledger: &LedgerDir, note: &str, verifier: &WitnessVerifier) {
    SignedCheckpoint::verify(note, &ledger.ledger_key).expect("the ledger's signature verifies");
    verifier
        .verify_note(note)
        .unwrap_or_else(|e| panic!("{e}: the note is\n{note}"));
}

/// A ledger server with one witness (`w1`) up, two events appended, and the head cosigned.
struct Cosigned {
    ledger: LedgerDir,
    w: WitnessDir,
    witness_server: Server,
    server: Server,
    client: Client,
    status: pb::ServerStatus,
}

async fn cosigned_head() -> Cosigned {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/w1", &ledger.vkey);
    let witness_server = w.start_on("127.0.0.1:0");
    let server = ledger.serve_witnessed(&[w.flag("w1", &witness_server.url)]);
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 2).await;
    let status = wait_for_status(&mut client, "the head to be cosigned", |s| {
        witness(s, "w1").cosigned_size == s.size
    })
    .await;
    Cosigned {
        ledger,
        w,
        witness_server,
        server,
        client,
        status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_carry_the_witness_cosignature_once_it_has_cosigned() {
    // Every server is bound, not left to `..`, so none is stopped before the test ends.
    let Cosigned {
        ledger,
        w,
        witness_server: _witness_server,
        server: _server,
        mut client,
        status,
    } = cosigned_head().await;

    let latest = client.checkpoint(0).await.expect("GetCheckpoint");
    assert_eq!(latest.size, status.size);
    assert_cosigned(&ledger, &latest.note, &w.verifier);
    let listed = client.checkpoints(0).await.expect("ListCheckpoints");
    let last = listed.last().expect("checkpoints");
    assert_eq!(
        last.note, latest.note,
        "ListCheckpoints serves the same note"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_that_is_down_does_not_block_appends() {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/w1", &ledger.vkey);
    let server = ledger.serve_witnessed(&[w.flag("down", &dead_url())]);
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 5).await;
    let status = wait_for_status(&mut client, "a failed attempt", |s| {
        witness(s, "down").failures > 0
    })
    .await;
    // Appends go on while the witness keeps failing.
    append(&mut client, &ledger, "more", 5).await;
    let down = witness(&status, "down");
    assert_eq!(down.cosigned_size, 0);
    assert!(!down.last_error.is_empty(), "{down:?}");
    assert_eq!(client.status().await.expect("status").size, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_that_comes_back_catches_up_from_its_last_size() {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/w1", &ledger.vkey);
    let witness_server = w.start_on("127.0.0.1:0");
    let (url, addr) = (
        witness_server.url.clone(),
        witness_server.addr().to_string(),
    );
    let server = ledger.serve_witnessed(&[w.flag("w1", &url)]);
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 1).await;
    let first = wait_for_status(&mut client, "the first cosignature", |s| {
        witness(s, "w1").cosigned_size == s.size
    })
    .await;

    witness_server.kill9();
    append(&mut client, &ledger, "while-down", 3).await;
    wait_for_status(&mut client, "a failed attempt while down", |s| {
        witness(s, "w1").failures > 0
    })
    .await;

    let _back = w.start_on(&addr);
    let caught_up = wait_for_status(&mut client, "the witness to catch up", |s| {
        witness(s, "w1").cosigned_size == s.size
    })
    .await;
    assert_eq!(caught_up.size, first.size + 3);
    assert!(witness(&caught_up, "w1").last_error.is_empty());
    let latest = client.checkpoint(0).await.expect("GetCheckpoint");
    assert_cosigned(&ledger, &latest.note, &w.verifier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_witness_last_cosigned_size_and_age() {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/w1", &ledger.vkey);
    let witness_server = w.start_on("127.0.0.1:0");
    let server = ledger.serve_witnessed(&[
        w.flag("up", &witness_server.url),
        w.flag("down", &dead_url()),
    ]);
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 2).await;
    wait_for_status(&mut client, "one cosigned and one failing", |s| {
        witness(s, "up").cosigned_size == s.size && witness(s, "down").failures > 0
    })
    .await;

    let dir = ledger.dir.path();
    let json = ok(
        dir,
        &[
            "status",
            "--server",
            &server.url,
            "--key",
            "data/admin.key",
            "--json",
        ],
    );
    let status: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(status["ledger_key"], ledger.vkey.as_str());
    let up = &status["witnesses"][0];
    assert_eq!(up["name"], "up");
    assert_eq!(up["cosigned_size"], status["size"]);
    assert_eq!(up["witness_key"], w.verifier.to_string().as_str());
    let now_s = status["now_us"].as_i64().expect("now") as u64 / 1_000_000;
    let at = up["cosigned_at"].as_u64().expect("cosigned_at");
    assert!(at > 0 && at <= now_s + 1, "{up}");
    assert_eq!(up["age_seconds"].as_u64(), Some(now_s.saturating_sub(at)));
    assert_eq!(up["last_error"], "");
    let down = &status["witnesses"][1];
    assert_eq!(down["name"], "down");
    assert_eq!(down["cosigned_size"], 0);
    assert_ne!(down["last_error"], "");

    let table = ok(
        dir,
        &["status", "--server", &server.url, "--key", "data/admin.key"],
    );
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
            .to_string()
    };
    assert!(
        row("up ").contains(&format!(" {} ", status["size"])),
        "{table}"
    );
    assert!(
        row("up ").ends_with(" -"),
        "no error for the witness that is up:\n{table}"
    );
    assert!(
        !row("down ").ends_with(" -"),
        "the error of the one down:\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosignatures_survive_a_server_restart() {
    let Cosigned {
        ledger,
        w,
        witness_server,
        server,
        client: _client,
        status: cosigned,
    } = cosigned_head().await;
    let before = witness(&cosigned, "w1").clone();
    server.kill9();
    witness_server.kill9();

    // Restarted with the witness unreachable: it cannot cosign again, so whatever the server
    // shows was kept across the kill.
    let server = ledger.serve_witnessed(&[w.flag("w1", &dead_url())]);
    let mut client = connect(&server, &ledger).await;
    let status = client.status().await.expect("status");
    let after = witness(&status, "w1");
    assert_eq!(after.cosigned_size, before.cosigned_size);
    assert_eq!(after.cosigned_at, before.cosigned_at);
    let note = client
        .checkpoint(before.cosigned_size)
        .await
        .expect("GetCheckpoint")
        .note;
    assert_cosigned(&ledger, &note, &w.verifier);
    assert_no_duplicate_lines(&note);
}

fn assert_no_duplicate_lines(note: &str) {
    let lines: Vec<&str> = note.lines().collect();
    let mut unique = lines.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "{note}");
}

/// `GET /metrics` of a server's metrics address.
fn scrape(addr: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_each_witness_cosigned_size_and_age() {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/w1", &ledger.vkey);
    let witness_server = w.start_on("127.0.0.1:0");
    let metrics = dead_url().trim_start_matches("http://").to_string();
    let server = ledger.serve(&[
        "--witness-interval",
        INTERVAL,
        "--witness",
        &w.flag("w1", &witness_server.url),
        "--metrics",
        &metrics,
    ]);
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 1).await;
    let status = wait_for_status(&mut client, "the head to be cosigned", |s| {
        witness(s, "w1").cosigned_size == s.size
    })
    .await;
    let text = scrape(&metrics);
    assert!(
        text.contains(&format!(
            "isms_witness_cosigned_size{{witness=\"w1\"}} {}\n",
            status.size
        )),
        "{text}"
    );
    assert!(
        text.contains("isms_witness_cosignature_age_seconds{witness=\"w1\"} "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_run_beside_a_mirror_cosigns_the_ledgers_checkpoints() {
    let ledger = LedgerDir::new();
    let w = WitnessDir::new("witness.test/beside-mirror", &ledger.vkey);
    // The server is told of the witness before the mirror starts it.
    let url = dead_url();
    let server = ledger.serve_witnessed(&[w.flag("beside", &url)]);
    let witness_data = w.dir.path().join("w");
    let _mirror = Server::spawn(
        ledger.dir.path(),
        &[
            "mirror",
            "--from",
            &server.url,
            "--key",
            "data/admin.key",
            "--data",
            "mirror",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "100ms",
            "--witness-data",
            witness_data.to_str().expect("utf-8 path"),
            "--witness-listen",
            url.trim_start_matches("http://"),
        ],
        "isms mirror: serving on ",
    );
    let mut client = connect(&server, &ledger).await;
    append(&mut client, &ledger, "ev", 2).await;
    wait_for_status(
        &mut client,
        "the witness beside the mirror to cosign",
        |s| witness(s, "beside").cosigned_size == s.size,
    )
    .await;
    let latest = client.checkpoint(0).await.expect("GetCheckpoint");
    assert_cosigned(&ledger, &latest.note, &w.verifier);
}
