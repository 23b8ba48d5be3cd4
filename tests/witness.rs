//! End-to-end tests of `isms witness`: the real binary on 127.0.0.1 (ephemeral port), real
//! ledgers with real checkpoints and consistency proofs, asked through the library's own
//! witness client (and raw HTTP where the client would refuse to send something).

mod cli_util;
mod util;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use cli_util::{ok, run, Server};
use isms_cli::witness::{add_checkpoint, state::origin_hash, AddCheckpointOutcome};
use ledger::cosignature::{add_cosignatures, note_body};
use ledger::WitnessVerifier;
use util::History;

/// A witness folder (`isms witness init` + `add-ledger`) following `ledger_vkey`.
struct WitnessDir {
    dir: tempfile::TempDir,
    verifier: WitnessVerifier,
}

impl WitnessDir {
    fn new(ledger_vkey: &str) -> WitnessDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = ok(
            dir.path(),
            &[
                "witness",
                "init",
                "--data",
                "w",
                "--name",
                "witness.test/w1",
            ],
        );
        let vkey = out.lines().last().expect("verifier key line");
        let verifier = WitnessVerifier::parse(vkey).expect("init prints the verifier key");
        let out = ok(
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
        assert!(out.contains("following isms-ledger/"), "{out}");
        WitnessDir { dir, verifier }
    }

    fn start(&self) -> Server {
        Server::start_witness(self.dir.path(), "w")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("w")
    }
}

/// One `add-checkpoint` through the library client.
fn post(server: &Server, old: u64, proof: &[[u8; 32]], note: &str) -> AddCheckpointOutcome {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(add_checkpoint(&server.url, old, proof, note))
        .expect("the witness answers")
}

/// Asks for the checkpoint of `size` from `old` and insists on a cosignature; returns the
/// cosigned note.
fn cosign(server: &Server, history: &History, old: u64, size: u64) -> String {
    let note = history.note(size);
    match post(server, old, &history.proof(old, size), &note) {
        AddCheckpointOutcome::Cosigned { lines } => {
            add_cosignatures(&note, &lines.concat()).expect("cosignature lines")
        }
        other => panic!("size {size} from {old}: {other:?}"),
    }
}

fn refused_status(outcome: AddCheckpointOutcome) -> u16 {
    match outcome {
        AddCheckpointOutcome::Refused { status, .. } => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A raw HTTP/1.1 exchange: (status, content type, body).
fn raw(addr: &str, head: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!(
        "{head} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send head");
    // A witness may answer (413) and close before reading a large body; the answer still
    // arrives, so a failed write is not the test's verdict.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// The size the witness holds, learnt the way a ledger learns it: a request from the old size
/// `largest` for the checkpoint of `largest` entries gets 409 with the held size, unless the
/// witness holds exactly that checkpoint, which it then cosigns again.
fn held_size(server: &Server, history: &History, largest: u64) -> u64 {
    match post(server, largest, &[], &history.note(largest)) {
        AddCheckpointOutcome::Conflict { size } => size,
        AddCheckpointOutcome::Cosigned { .. } => largest,
        other => panic!("expected 409 or 200, got {other:?}"),
    }
}

/// The text of `note(size)` with the signature line of `other` (a checkpoint of another size):
/// the right key name and key ID, a signature that does not verify.
fn with_signature_of(history: &History, size: u64, other: u64) -> String {
    let other = history.note(other);
    let line = other.split_once("\n\n").expect("signature block").1;
    format!("{}\n{line}", note_body(&history.note(size)).expect("body"))
}

fn state_files(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("state"))
        .expect("state folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_witness_cosigns_a_consistent_checkpoint_and_the_cosignature_verifies() {
    let a = History::new(1, 2, 5);
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let first = cosign(&server, &a, 0, 3);
    let time = witness
        .verifier
        .verify_note(&first)
        .expect("cosignature verifies");
    assert!(
        time >= before,
        "timestamp {time} is before the request ({before})"
    );
    let second = cosign(&server, &a, 3, 5);
    witness
        .verifier
        .verify_note(&second)
        .expect("cosignature verifies");
    // The ledger's own signature still verifies with the cosignature lines added.
    ledger::SignedCheckpoint::verify(&second, &a.ledger.public_key()).expect("ledger signature");
    // A cosignature is over its own checkpoint only.
    let moved = format!(
        "{}{}",
        a.note(4),
        second.lines().last().expect("cosignature line")
    ) + "\n";
    assert!(witness.verifier.verify_note(&moved).is_err());
}

#[test]
fn the_monitoring_endpoint_serves_the_last_cosigned_checkpoint() {
    let a = History::new(1, 2, 4);
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    let path = format!("GET /{}/checkpoint", origin_hash(a.ledger.origin()));
    assert_eq!(
        raw(server.addr(), &path, b"").0,
        404,
        "nothing cosigned yet"
    );
    let cosigned = cosign(&server, &a, 0, 4);
    let (status, _, body) = raw(server.addr(), &path, b"");
    assert_eq!(status, 200);
    assert_eq!(body, cosigned);
    assert_eq!(
        state_files(&witness.data()),
        vec![origin_hash(a.ledger.origin())]
    );
}

#[test]
fn a_stale_old_size_gets_409_with_the_size_the_witness_holds() {
    let a = History::new(1, 2, 6);
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    cosign(&server, &a, 0, 4);
    let body = isms_cli::witness::protocol::AddCheckpoint {
        old_size: 2,
        proof: a.proof(2, 6),
        note: a.note(6),
    }
    .encode();
    let (status, content_type, answer) =
        raw(server.addr(), "POST /add-checkpoint", body.as_bytes());
    assert_eq!(
        (status, content_type.as_str(), answer.as_str()),
        (409, "text/x.tlog.size", "4\n")
    );
    assert_eq!(
        post(&server, 0, &[], &a.note(6)),
        AddCheckpointOutcome::Conflict { size: 4 }
    );
    // With the right old size the same checkpoint is cosigned.
    cosign(&server, &a, 4, 6);
}

#[test]
fn a_witness_refuses_a_split_view_checkpoint_of_the_same_size() {
    let a = History::new(1, 2, 6);
    let b = History::new(1, 3, 6); // same origin, same ledger key, another history
    assert_eq!(a.ledger.origin(), b.ledger.origin());
    assert_ne!(a.root(4), b.root(4));
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    cosign(&server, &a, 0, 4);

    assert_eq!(refused_status(post(&server, 4, &[], &b.note(4))), 422);
    assert_eq!(
        refused_status(post(&server, 4, &b.proof(4, 6), &b.note(6))),
        422
    );
    // The same checkpoint again is cosigned again (a retry), and A goes on.
    cosign(&server, &a, 4, 4);
    cosign(&server, &a, 4, 6);
}

#[test]
fn a_witness_never_cosigns_a_smaller_tree_after_a_larger_one_across_restarts() {
    let a = History::new(1, 2, 8);
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    cosign(&server, &a, 0, 6);
    server.kill9();

    let server = witness.start();
    assert_eq!(held_size(&server, &a, 8), 6);
    for old in [0, 3] {
        assert_eq!(
            post(&server, old, &a.proof(old, 3), &a.note(3)),
            AddCheckpointOutcome::Conflict { size: 6 },
            "a smaller tree from old size {old}"
        );
    }
    assert_eq!(refused_status(post(&server, 6, &[], &a.note(3))), 400);
    drop(server);

    let server = witness.start();
    cosign(&server, &a, 6, 8);
}

#[test]
fn a_witness_refuses_unknown_origin_bad_signature_forged_proof_huge_body_with_4xx_and_keeps_its_state(
) {
    let a = History::new(1, 2, 6);
    let witness = WitnessDir::new(&a.vkey());
    let server = witness.start();
    cosign(&server, &a, 0, 3);

    // Another ledger key over the same origin: its notes carry no signature the witness trusts.
    let other_key = History::new(9, 2, 6);
    // Another origin altogether.
    let unknown = {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = util::key(2);
        let ledger = ledger::Ledger::create(
            dir.path(),
            "Other Ltd",
            util::key(1),
            vec![ledger::KeyGrant {
                public_key: admin.verifying_key().to_bytes(),
                subject: "admin@example.com".into(),
                roles: vec!["admin".into()],
            }],
            ledger::LedgerConfig::default(),
        )
        .expect("ledger");
        (dir, ledger.latest_checkpoint().expect("checkpoint").note)
    };
    let mut forged = a.proof(3, 6);
    forged[0][0] ^= 1;
    let with_proof = |old: u64, proof: Vec<[u8; 32]>, note: String| {
        isms_cli::witness::protocol::AddCheckpoint {
            old_size: old,
            proof,
            note,
        }
        .encode()
        .into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "unknown origin",
            with_proof(0, vec![], unknown.1.clone()),
            404,
        ),
        (
            "signed by another key",
            with_proof(3, other_key.proof(3, 6), other_key.note(6)),
            403,
        ),
        (
            "ledger signature does not verify",
            with_proof(3, a.proof(3, 5), with_signature_of(&a, 5, 6)),
            403,
        ),
        ("forged proof", with_proof(3, forged, a.note(6)), 422),
        (
            "old size 0 while holding 3",
            with_proof(0, vec![], a.note(6)),
            409,
        ),
        ("old size above size", with_proof(6, vec![], a.note(3)), 400),
        (
            "too many proof lines",
            with_proof(3, vec![[0; 32]; 64], a.note(6)),
            400,
        ),
        ("no old line", b"\n\nhello\n".to_vec(), 400),
        (
            "not a note",
            with_proof(3, a.proof(3, 6), "hello\n".into()),
            400,
        ),
        (
            "huge body",
            with_proof(3, a.proof(3, 6), a.note(6) + &"x".repeat(2 << 20)),
            413,
        ),
    ];
    for (what, body, want) in cases {
        let (status, _, answer) = raw(server.addr(), "POST /add-checkpoint", &body);
        assert_eq!(status, want, "{what}: {answer}");
        assert_eq!(held_size(&server, &a, 6), 3, "{what} changed the state");
    }
    assert_eq!(raw(server.addr(), "GET /add-checkpoint", b"").0, 405);
    cosign(&server, &a, 3, 6);
    drop(unknown);
}

#[test]
fn witness_commands_refuse_bad_names_and_conflicting_ledger_keys() {
    let a = History::new(1, 2, 1);
    let other_key = History::new(9, 2, 1);
    let witness = WitnessDir::new(&a.vkey());
    let d = witness.dir.path();
    let again = run(d, &["witness", "init", "--data", "w", "--name", "x"]);
    assert_eq!(again.code, 2, "a second init must not replace the key");
    let bad = run(
        d,
        &["witness", "init", "--data", "v", "--name", "two words"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let conflicting = run(
        d,
        &[
            "witness",
            "add-ledger",
            "--data",
            "w",
            "--ledger-key",
            &other_key.vkey(),
        ],
    );
    assert_eq!(conflicting.code, 2, "{}", conflicting.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(witness.data().join("witness.key"))
            .expect("witness key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the witness key is private");
    }
    for cmd in [
        ["witness", "init"],
        ["witness", "add-ledger"],
        ["witness", "serve"],
    ] {
        let out = ok(d, &[cmd[0], cmd[1], "--help"]);
        assert!(
            out.contains("Example"),
            "isms {cmd:?} --help has no example"
        );
    }
}

#[test]
fn the_client_gives_up_on_a_witness_that_never_answers() {
    use isms_cli::witness::client::WitnessClientError;
    use isms_cli::witness::{Timeouts, WitnessClient};
    // Accepts the connection, reads nothing, answers nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let _held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let client = WitnessClient::new(
        &format!("http://{addr}"),
        Timeouts {
            connect: std::time::Duration::from_secs(2),
            request: std::time::Duration::from_millis(300),
        },
    )
    .expect("client");
    let a = History::new(1, 2, 1);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(client.add_checkpoint(0, &[], &a.note(1)));
    assert!(
        matches!(outcome, Err(WitnessClientError::Timeout { .. })),
        "{outcome:?}"
    );
}

#[test]
fn the_client_takes_only_plain_http_witness_urls() {
    use isms_cli::witness::{Timeouts, WitnessClient};
    for url in ["https://witness.example", "witness.example:7380", "http://"] {
        assert!(
            WitnessClient::new(url, Timeouts::default()).is_err(),
            "{url} was taken"
        );
    }
    assert!(WitnessClient::new("http://127.0.0.1:7380/prefix/", Timeouts::default()).is_ok());
}

mod kill9 {
    //! The durability promise under SIGKILL at random moments, with requests in flight.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use isms_cli::witness::{AddCheckpointOutcome, Timeouts, WitnessClient};
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    const SIZE: u64 = 288;
    /// How far the clients may grow the tree in one round, so every round has growth left.
    const STEP: u64 = SIZE / ROUNDS;
    const ROUNDS: u64 = 24;
    const CLIENTS: usize = 3;

    /// A 200 the witness gave: which history, which size, and the cosigned note.
    #[derive(Debug)]
    struct Cosigned {
        history: usize,
        size: u64,
        note: String,
    }

    #[derive(Default)]
    struct Log {
        cosigned: Vec<Cosigned>,
        /// (held size answered by a 409, the largest size acknowledged before the request).
        conflicts: Vec<(u64, u64)>,
        /// (old size of a 200, the largest size acknowledged before the request).
        accepted_from: Vec<(u64, u64)>,
    }

    async fn client_loop(
        url: String,
        histories: Arc<[History; 2]>,
        acked: Arc<AtomicU64>,
        log: Arc<Mutex<Log>>,
        ceiling: u64,
        seed: u64,
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let client = WitnessClient::new(
            &url,
            Timeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(5),
            },
        )
        .expect("client");
        let mut known = 0;
        loop {
            // Mostly the main history; sometimes the split view, sometimes a smaller tree.
            let history = usize::from(rng.gen_bool(0.2));
            // Small steps, so the witness is still growing when the last round ends.
            let size = if rng.gen_bool(0.1) {
                rng.gen_range(1..=SIZE)
            } else {
                (known + rng.gen_range(0..=3)).clamp(1, ceiling.max(known))
            };
            let proof = if known <= size {
                histories[history].proof(known, size)
            } else {
                Vec::new()
            };
            let note = histories[history].note(size);
            let before = acked.load(Ordering::SeqCst);
            let Ok(outcome) = client.add_checkpoint(known, &proof, &note).await else {
                return; // killed: the answer, if any, is lost
            };
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..4))).await;
            let mut log = log.lock().expect("log");
            match outcome {
                AddCheckpointOutcome::Cosigned { lines } => {
                    acked.fetch_max(size, Ordering::SeqCst);
                    log.accepted_from.push((known, before));
                    log.cosigned.push(Cosigned {
                        history,
                        size,
                        note: add_cosignatures(&note, &lines.concat()).expect("lines"),
                    });
                    known = size;
                }
                AddCheckpointOutcome::Conflict { size: held } => {
                    log.conflicts.push((held, before));
                    known = held;
                }
                AddCheckpointOutcome::Refused { status, message } => {
                    assert!(
                        [400, 422].contains(&status),
                        "unexpected refusal {status}: {message}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_witness_never_cosigns_a_fork_across_kill_9() {
        let histories = Arc::new([History::new(1, 2, SIZE), History::new(1, 3, SIZE)]);
        let witness = WitnessDir::new(&histories[0].vkey());
        let acked = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Log::default()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut rng = rand::rngs::StdRng::seed_from_u64(27001);
        for round in 0..ROUNDS {
            let server = witness.start();
            let tasks: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    runtime.spawn(client_loop(
                        server.url.clone(),
                        histories.clone(),
                        acked.clone(),
                        log.clone(),
                        (round + 1) * STEP,
                        round * 100 + c as u64,
                    ))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(rng.gen_range(5..80)));
            server.kill9();
            for task in tasks {
                runtime.block_on(task).expect("client task");
            }
        }

        let log = log.lock().expect("log");
        eprintln!(
            "kill -9 rounds: {} cosignatures, {} conflicts, largest acknowledged {}",
            log.cosigned.len(),
            log.conflicts.len(),
            acked.load(Ordering::SeqCst)
        );
        assert!(
            log.cosigned.len() >= ROUNDS as usize,
            "the witness cosigned only {} times; the test did not exercise it",
            log.cosigned.len()
        );
        // One history only: whichever the witness cosigned first, it never cosigned the other.
        let first = log.cosigned[0].history;
        for c in log.cosigned.iter() {
            assert_eq!(
                c.history, first,
                "cosigned size {} of another history",
                c.size
            );
            let body = note_body(&c.note).expect("note");
            assert!(body.contains(&format!("\n{}\n", c.size)));
            witness
                .verifier
                .verify_note(&c.note)
                .expect("every returned cosignature verifies");
        }
        // Never below an acknowledged size: every 409 and every accepted old size is at least
        // the largest size acknowledged before that request left.
        for (held, before) in &log.conflicts {
            assert!(held >= before, "held {held} after acknowledging {before}");
        }
        for (old, before) in &log.accepted_from {
            assert!(
                old >= before,
                "accepted from {old} after acknowledging {before}"
            );
        }
        let server = witness.start();
        let largest = acked.load(Ordering::SeqCst);
        let held = held_size(&server, &histories[first], SIZE);
        assert!(held >= largest, "held {held} after acknowledging {largest}");
        let path = format!(
            "GET /{}/checkpoint",
            origin_hash(histories[0].ledger.origin())
        );
        let (status, _, note) = raw(server.addr(), &path, b"");
        assert_eq!(status, 200);
        assert!(note.starts_with(&histories[first].note(held)));
        witness
            .verifier
            .verify_note(&note)
            .expect("held note is cosigned");
    }
}
