//! The ledger on PostgreSQL, end to end: the real `isms` binary serving a ledger whose
//! records are in a real PostgreSQL server (Debian's packages, started by the test's own
//! helper), real signatures, real processes killed with `kill -9` and paused with SIGSTOP.
//!
//! What is promised: a ledger on PostgreSQL takes appends and verifies like one on sled; a
//! sled backup restores into PostgreSQL with the same root; a standby server takes over from
//! a writer that died and continues the same chain, losing no acknowledged event; a writer
//! paused past its lease is fenced out by the database; a read-only server follows the
//! writer; and a database stopped in the middle of a batch leaves no half-written batch.

mod cli_util;
#[path = "support/postgres.rs"]
mod pg;
mod util;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cli_util::{ok, run, Server};
use ed25519_dalek::SigningKey;
use isms_cli::server::ledger_service::method;
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_client::LedgerClient;
use ledger::{Ledger, LedgerId, Seq};
use prost::Message;
use tonic::transport::Channel;

/// The PostgreSQL server the tests of this file share (each test has its own database).
fn cluster() -> &'static pg::PgCluster {
    static CLUSTER: OnceLock<pg::PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(pg::PgCluster::start)
}

/// A new database on the shared server for one test; the store URL of ledger `acme` in it.
fn store_for(test: &str) -> String {
    cluster().create_database(test);
    format!("{}#acme", cluster().url(test))
}

/// `isms init --data data --store STORE` in `dir`; the new ledger's id.
fn init_on(dir: &Path, store: &str) -> LedgerId {
    let out = ok(
        dir,
        &[
            "init", "--data", "data", "--store", store, "--name", "Acme plc",
        ],
    );
    ledger_id_of(&out)
}

/// The ledger id in `isms init`'s first line ("ledger <id> created in ...").
fn ledger_id_of(init_output: &str) -> LedgerId {
    let hex = init_output
        .split_whitespace()
        .nth(1)
        .expect("the ledger id");
    let mut id = [0u8; 16];
    hex::decode_to_slice(hex, &mut id).expect("a hex ledger id");
    LedgerId(id)
}

/// A second data folder for the same ledger (its keys and its `store.url`), as a standby or
/// a reader on another machine would have.
fn copy_data_folder(dir: &Path, to: &str) {
    std::fs::create_dir_all(dir.join(to)).expect("create folder");
    for file in ["ledger.key", "admin.key", "store.url"] {
        std::fs::copy(dir.join("data").join(file), dir.join(to).join(file)).expect("copy");
    }
}

/// The ledger's admin key, from the data folder.
fn admin(dir: &Path) -> SigningKey {
    isms_cli::server::read_key_file(&dir.join("data/admin.key")).expect("admin key")
}

/// The ledger read straight from the database (read-only).
fn open_ledger(dir: &Path) -> Ledger {
    isms_cli::store::open_data_folder(&dir.join("data")).expect("open the ledger")
}

/// What a receipt promised.
#[derive(Clone, Debug)]
struct Acknowledged {
    event_id: String,
    seq: u64,
    entry_hash: Vec<u8>,
}

async fn connect(url: &str) -> LedgerClient<Channel> {
    LedgerClient::connect(url.to_string())
        .await
        .expect("connect")
}

/// Enrols the scanner key (agent role) through the server at `url`; returns it.
async fn enrol_agent(url: &str, id: LedgerId, admin: &SigningKey) -> SigningKey {
    let agent = SigningKey::from_bytes(&[42; 32]);
    let mut body = util::enroll_body("enroll-scanner", &agent, "scanner", &["agent"]);
    body.ledger_id = id.0.to_vec();
    connect(url)
        .await
        .append(util::sign(admin, &body))
        .await
        .expect("enrol the scanner");
    agent
}

fn evidence(id: LedgerId, agent: &SigningKey, event_id: &str) -> pb::AppendRequest {
    let mut body = util::evidence_body(event_id);
    body.ledger_id = id.0.to_vec();
    util::sign_bytes(agent, body.encode_to_vec())
}

/// Appends `prefix-0..n` from 8 concurrent clients until all are in or the server stops
/// answering; every receipt goes into `acks`.
async fn load(
    url: &str,
    id: LedgerId,
    agent: &SigningKey,
    prefix: &str,
    n: usize,
    acks: Arc<Mutex<Vec<Acknowledged>>>,
) {
    let mut tasks = Vec::new();
    for client_no in 0..8 {
        let mut client = connect(url).await;
        let (agent, acks, prefix) = (agent.clone(), acks.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            for i in (client_no..n).step_by(8) {
                let event_id = format!("{prefix}-{i}");
                match client.append(evidence(id, &agent, &event_id)).await {
                    Ok(receipt) => {
                        let receipt = receipt.into_inner();
                        acks.lock().expect("acks").push(Acknowledged {
                            event_id,
                            seq: receipt.seq,
                            entry_hash: receipt.entry_hash,
                        });
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Waits until `acks` holds at least `n` receipts (at most 60 s).
fn wait_for_acks(acks: &Mutex<Vec<Acknowledged>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.lock().expect("acks").len() < n {
        assert!(
            Instant::now() < deadline,
            "the load did not reach {n} receipts"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every acknowledged event is in `ledger` at its seq, with its entry hash and event id.
fn assert_all_kept(ledger: &Ledger, acks: &[Acknowledged]) {
    for ack in acks {
        let entry = ledger
            .get(Seq(ack.seq))
            .expect("read")
            .unwrap_or_else(|| panic!("acknowledged {} at seq {} is gone", ack.event_id, ack.seq));
        assert_eq!(
            entry.hash().0.to_vec(),
            ack.entry_hash,
            "seq {} is not the entry acknowledged for {}",
            ack.seq,
            ack.event_id
        );
    }
}

/// The root of `ledger`'s latest checkpoint.
fn latest_root(ledger: &Ledger) -> [u8; 32] {
    ledger
        .latest_checkpoint()
        .expect("checkpoint")
        .checkpoint
        .root
}

/// `isms restore` of `backup` into the data folder `restored`, with `extra` arguments.
fn restore_into(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "restore",
        "--from",
        "backup",
        "--data",
        "restored",
        "--ledger-key-file",
        "data/ledger.key",
    ];
    args.extend_from_slice(extra);
    ok(dir, &args);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[test]
fn a_ledger_on_postgres_takes_appends_and_its_chain_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let id = init_on(d, &store_for("verifies"));
    let server = Server::start(d, "data");
    let acks = Arc::new(Mutex::new(Vec::new()));
    runtime().block_on(async {
        let agent = enrol_agent(&server.url, id, &admin(d)).await;
        load(&server.url, id, &agent, "scan", 200, acks.clone()).await;
    });
    assert_eq!(acks.lock().expect("acks").len(), 200);
    let out = ok(
        d,
        &["verify", "--server", &server.url, "--key", "data/admin.key"],
    );
    assert!(out.contains("verified: 202"), "{out}");
    drop(server);
    // And offline, straight from the database, with the ledger's own checks of its indexes.
    let out = ok(d, &["verify", "--data", "data"]);
    assert!(out.contains("verified: 202"), "{out}");
}

#[test]
fn a_sled_backup_restores_into_postgres_with_the_same_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let id = ledger_id_of(&ok(d, &["init", "--data", "data", "--name", "Acme plc"]));
    {
        let server = Server::start(d, "data");
        runtime().block_on(async {
            let agent = enrol_agent(&server.url, id, &admin(d)).await;
            load(&server.url, id, &agent, "scan", 50, Arc::default()).await;
        });
    }
    ok(d, &["backup", "--data", "data", "--out", "backup"]);
    let sled_root = latest_root(
        &Ledger::open(d.join("data/store"), Default::default(), None).expect("open sled"),
    );
    restore_into(d, &["--store", &store_for("restored")]);
    let restored = isms_cli::store::open_data_folder(&d.join("restored")).expect("open");
    assert_eq!(latest_root(&restored), sled_root);
    let out = ok(d, &["verify", "--data", "restored"]);
    assert!(out.contains("verified: 52"), "{out}");
}

#[test]
fn a_postgres_ledger_backs_up_from_its_server_and_restores_into_sled_with_the_same_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let id = init_on(d, &store_for("to_sled"));
    let server = Server::start(d, "data");
    runtime().block_on(async {
        let agent = enrol_agent(&server.url, id, &admin(d)).await;
        load(&server.url, id, &agent, "scan", 50, Arc::default()).await;
    });
    ok(
        d,
        &[
            "backup",
            "--server",
            &server.url,
            "--key",
            "data/admin.key",
            "--out",
            "backup",
        ],
    );
    let postgres_root = latest_root(&open_ledger(d));
    restore_into(d, &[]);
    let restored = Ledger::open(d.join("restored/store"), Default::default(), None)
        .expect("the restored sled store");
    assert_eq!(latest_root(&restored), postgres_root);
}

#[test]
fn a_standby_takes_over_from_a_killed_writer_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_path_buf();
    let id = init_on(&d, &store_for("failover"));
    copy_data_folder(&d, "standby");
    let writer = Server::start_with(&d, "data", &["--writer-lease", "1s"]);
    // The standby waits for the writer's lease; it serves once it holds it.
    let standby = {
        let d = d.clone();
        std::thread::spawn(move || Server::start_with(&d, "standby", &["--writer-lease", "1s"]))
    };
    let acks = Arc::new(Mutex::new(Vec::new()));
    let rt = runtime();
    let agent = rt.block_on(enrol_agent(&writer.url, id, &admin(&d)));
    let load_task = {
        let (url, agent, acks) = (writer.url.clone(), agent.clone(), acks.clone());
        rt.spawn(async move { load(&url, id, &agent, "before", 100_000, acks).await })
    };
    wait_for_acks(&acks, 300);
    let killed_at = Instant::now();
    writer.kill9();
    rt.block_on(load_task).expect("load");
    let standby = standby.join().expect("the standby serves");
    let took_over = killed_at.elapsed();
    eprintln!("the standby served {took_over:?} after the writer was killed");

    let after = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(load(&standby.url, id, &agent, "after", 50, after.clone()));
    assert_eq!(
        after.lock().expect("acks").len(),
        50,
        "the standby takes appends"
    );
    let ledger = open_ledger(&d);
    assert_all_kept(&ledger, &acks.lock().expect("acks"));
    assert_all_kept(&ledger, &after.lock().expect("acks"));
    ledger
        .verify(&|_| {})
        .expect("one chain across the takeover");
}

#[test]
fn a_writer_paused_past_its_lease_is_fenced_out_by_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_path_buf();
    let id = init_on(&d, &store_for("fenced"));
    copy_data_folder(&d, "standby");
    let writer = Server::start_with(&d, "data", &["--writer-lease", "1s"]);
    let rt = runtime();
    let agent = rt.block_on(enrol_agent(&writer.url, id, &admin(&d)));
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &writer.pid().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success());
    let standby = Server::start_with(&d, "standby", &["--writer-lease", "1s"]);
    let taken = rt
        .block_on(async {
            connect(&standby.url)
                .await
                .append(evidence(id, &agent, "by-the-standby"))
                .await
        })
        .expect("the new writer appends")
        .into_inner();
    let resumed = std::process::Command::new("kill")
        .args(["-CONT", &writer.pid().to_string()])
        .status()
        .expect("kill -CONT");
    assert!(resumed.success());
    // Sent at once: the old writer has not yet seen that its lease is gone, so its batch
    // goes to the database, which refuses it. (Or it has already stepped down.)
    let late = rt.block_on(async {
        match LedgerClient::connect(writer.url.clone()).await {
            Ok(mut client) => client
                .append(evidence(id, &agent, "by-the-old-writer"))
                .await
                .map(|_| ()),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        }
    });
    let refused = late.expect_err("the old writer's batch is refused");
    assert!(
        matches!(
            refused.code(),
            tonic::Code::Unavailable | tonic::Code::FailedPrecondition
        ),
        "{refused:?}"
    );
    let mut writer = writer;
    let exited = writer
        .wait_exit(Duration::from_secs(10))
        .expect("the old writer steps down");
    assert!(
        !exited.success(),
        "it says it stopped for a reason: {exited:?}"
    );
    let ledger = open_ledger(&d);
    assert_eq!(
        ledger.head().size,
        taken.seq + 1,
        "nothing after the standby's event"
    );
    assert!(ledger
        .get_by_event_id("by-the-old-writer")
        .expect("read")
        .is_none());
    ledger.verify(&|_| {}).expect("the chain verifies");
}

#[test]
fn a_read_only_server_follows_the_writer_and_refuses_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_path_buf();
    let id = init_on(&d, &store_for("reader"));
    let writer = Server::start(&d, "data");
    let reader = Server::start_with(&d, "data", &["--read-only"]);
    let rt = runtime();
    let admin = admin(&d);
    let agent = rt.block_on(enrol_agent(&writer.url, id, &admin));
    let acks = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(load(&writer.url, id, &agent, "scan", 20, acks.clone()));
    let last = acks
        .lock()
        .expect("acks")
        .iter()
        .map(|a| a.seq)
        .max()
        .expect("acks");
    let seen = rt.block_on(async {
        let mut client = connect(&reader.url).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = client
                .get_entry(util::signed(
                    pb::GetEntryRequest {
                        by: Some(pb::get_entry_request::By::Seq(last)),
                    },
                    &admin,
                    method::GET_ENTRY,
                ))
                .await;
            if got.is_ok() || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(
        seen.is_ok(),
        "the reader serves the writer's last entry: {seen:?}"
    );
    let refused = rt
        .block_on(async {
            connect(&reader.url)
                .await
                .append(evidence(id, &agent, "to-the-reader"))
                .await
        })
        .expect_err("a reader takes no appends");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
}

#[test]
fn a_database_stopped_in_the_middle_of_a_batch_leaves_no_half_written_batch() {
    // Its own PostgreSQL server, since this test stops it.
    let mut cluster = pg::PgCluster::start();
    cluster.create_database("cut");
    let store = format!("{}#acme", cluster.url("cut"));
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_path_buf();
    let id = init_on(&d, &store);
    let writer = Server::start(&d, "data");
    let rt = runtime();
    let agent = rt.block_on(enrol_agent(&writer.url, id, &admin(&d)));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let load_task = {
        let (url, agent, acks) = (writer.url.clone(), agent.clone(), acks.clone());
        rt.spawn(async move { load(&url, id, &agent, "scan", 100_000, acks).await })
    };
    wait_for_acks(&acks, 300);
    cluster.stop();
    rt.block_on(load_task).expect("load");
    cluster.restart();
    writer.kill9();
    // What the database kept: every acknowledged event, and whole batches only (the head,
    // the Merkle node blocks and the index blocks agree with the entries).
    let ledger = open_ledger(&d);
    assert_all_kept(&ledger, &acks.lock().expect("acks"));
    ledger.verify(&|_| {}).expect("no half-written batch");
    drop(ledger);
    // And the chain goes on from there.
    let writer = Server::start(&d, "data");
    let after = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(load(&writer.url, id, &agent, "after", 20, after.clone()));
    assert_eq!(after.lock().expect("acks").len(), 20);
    let checked = run(
        &d,
        &["verify", "--server", &writer.url, "--key", "data/admin.key"],
    );
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
}
