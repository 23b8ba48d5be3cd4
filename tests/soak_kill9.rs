//! `kill -9` of the real `isms serve` under unary, all-or-nothing group and stream load at once,
//! round after round: every acknowledged event is in the ledger at the seq and with the entry
//! hash its receipt gave, every group sent is there whole or not at all, and the whole chain
//! verifies, after every round.
//!
//! 20 rounds in the test suite; `ISMS_SOAK_ROUNDS=500 cargo test --release --test soak_kill9`
//! runs a long soak (docs/PERFORMANCE.md records the longest run).

mod cli_util;
mod util;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_client::LedgerClient;
use ledger::{EntryHash, Ledger, LedgerConfig, LedgerId};
use prost::Message;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

/// One acknowledged event: what its receipt promised.
#[derive(Clone, Debug)]
struct Acknowledged {
    event_id: String,
    seq: u64,
    entry_hash: [u8; 32],
}

fn rounds() -> usize {
    std::env::var("ISMS_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

fn open_read_only(data: &Path) -> Ledger {
    Ledger::open(
        data.join(isms_cli::server::STORE_DIR),
        LedgerConfig::default(),
        None,
    )
    .expect("the ledger opens after kill -9")
}

/// An evidence event for this ledger.
fn evidence(ledger_id: LedgerId, agent: &SigningKey, event_id: &str) -> pb::AppendRequest {
    let mut body = util::evidence_body(event_id);
    body.ledger_id = ledger_id.0.to_vec();
    util::sign_bytes(agent, body.encode_to_vec())
}

async fn connect(url: &str) -> LedgerClient<Channel> {
    LedgerClient::connect(url.to_string())
        .await
        .expect("connect")
}

/// What one round's clients share: where to send, as whom, and where receipts go.
#[derive(Clone)]
struct Load {
    url: String,
    ledger_id: LedgerId,
    agent: SigningKey,
    round: usize,
    acks: Arc<Mutex<Vec<Acknowledged>>>,
    /// Every all-or-nothing group sent, acknowledged or not: its event ids.
    groups: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Load {
    fn request(&self, event_id: &str) -> pb::AppendRequest {
        evidence(self.ledger_id, &self.agent, event_id)
    }

    fn acknowledged(&self, event_id: String, receipt: &pb::Receipt) {
        self.acks.lock().expect("acks").push(Acknowledged {
            event_id,
            seq: receipt.seq,
            entry_hash: receipt.entry_hash.as_slice().try_into().expect("32 bytes"),
        });
    }
}

/// Appends one event at a time until the connection breaks, recording each receipt.
async fn unary_load(load: Load) {
    let mut client = connect(&load.url).await;
    for i in 0.. {
        let event_id = format!("r{}-unary-{i}", load.round);
        match client.append(load.request(&event_id)).await {
            Ok(receipt) => load.acknowledged(event_id, receipt.get_ref()),
            Err(_) => return,
        }
    }
}

/// Sends all-or-nothing groups of four until the connection breaks, recording every group
/// sent and the receipts of those acknowledged.
async fn atomic_load(load: Load) {
    let mut client = connect(&load.url).await;
    for g in 0.. {
        let ids: Vec<String> = (0..4)
            .map(|k| format!("r{}-group-{g}-{k}", load.round))
            .collect();
        load.groups.lock().expect("groups").push(ids.clone());
        let events = ids.iter().map(|id| load.request(id)).collect();
        match client
            .append_atomic(pb::AppendAtomicRequest { events })
            .await
        {
            Ok(response) => {
                for (id, receipt) in ids.into_iter().zip(&response.get_ref().receipts) {
                    load.acknowledged(id, receipt);
                }
            }
            Err(_) => return,
        }
    }
}

/// Streams events until the stream breaks, recording each receipt in order.
async fn stream_load(load: Load) {
    let mut client = connect(&load.url).await;
    let round = load.round;
    let id = move |i: usize| format!("r{round}-stream-{i}");
    // Signed as the stream is read, so the load starts at once and never ends by itself.
    let requests = {
        let load = load.clone();
        futures_util::stream::iter(0..).map(move |i| load.request(&id(i)))
    };
    let Ok(response) = client.append_stream(requests).await else {
        return;
    };
    let mut results = response.into_inner();
    let mut index = 0;
    while let Some(Ok(result)) = results.next().await {
        if let Some(pb::append_result::Result::Receipt(receipt)) = result.result {
            load.acknowledged(id(index), &receipt);
        }
        index += 1;
    }
}

/// Every group sent is in the ledger whole or not at all.
fn assert_groups_whole_or_absent(ledger: &Ledger, groups: &[Vec<String>], round: usize) {
    for ids in groups {
        let present = ids
            .iter()
            .filter(|id| ledger.get_by_event_id(id).expect("read").is_some())
            .count();
        assert!(
            present == 0 || present == ids.len(),
            "round {round}: {present} of the {} events of group {} are stored",
            ids.len(),
            ids[0]
        );
    }
}

/// Every acknowledged event is at the seq, with the hash, its receipt gave.
fn assert_all_present(ledger: &Ledger, acks: &[Acknowledged], round: usize) {
    for ack in acks {
        let entry = ledger
            .get_by_event_id(&ack.event_id)
            .expect("read")
            .unwrap_or_else(|| panic!("round {round}: acknowledged {} is lost", ack.event_id));
        assert_eq!(
            entry.seq.0, ack.seq,
            "round {round}: {} moved",
            ack.event_id
        );
        assert_eq!(
            entry.hash(),
            EntryHash(ack.entry_hash),
            "round {round}: {} changed",
            ack.event_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_never_loses_an_acknowledged_event_nor_splits_a_group() {
    let dir = cli_util::init_ledger();
    let data = dir.path().join("data");
    let admin = isms_cli::server::read_key_file(&data.join("admin.key")).expect("admin key");
    let ledger_id = open_read_only(&data).ledger_id();
    let agent = util::key(50);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut all: Vec<Acknowledged> = Vec::new();
    for round in 0..rounds() {
        let server = cli_util::Server::start(dir.path(), "data");
        if round == 0 {
            let mut enroll = util::enroll_body("enroll-agent", &agent, "scanner", &["agent"]);
            enroll.ledger_id = ledger_id.0.to_vec();
            connect(&server.url)
                .await
                .append(util::sign_bytes(&admin, enroll.encode_to_vec()))
                .await
                .expect("enrol the agent");
        }
        let acks = Arc::new(Mutex::new(Vec::new()));
        let groups = Arc::new(Mutex::new(Vec::new()));
        let load = Load {
            url: server.url.clone(),
            ledger_id,
            agent: agent.clone(),
            round,
            acks: acks.clone(),
            groups: groups.clone(),
        };
        let unary = tokio::spawn(unary_load(load.clone()));
        let atomic = tokio::spawn(atomic_load(load.clone()));
        let stream = tokio::spawn(stream_load(load));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..600))).await;
        server.kill9();
        let _ = tokio::time::timeout(Duration::from_secs(30), unary).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), atomic).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), stream).await;
        all.extend(acks.lock().expect("acks").drain(..));

        let ledger = open_read_only(&data);
        assert_all_present(&ledger, &all, round);
        assert_groups_whole_or_absent(&ledger, &groups.lock().expect("groups"), round);
        ledger
            .verify(&|_| {})
            .unwrap_or_else(|e| panic!("round {round}: the chain does not verify: {e}"));
    }
    let count = |kind: &str| all.iter().filter(|a| a.event_id.contains(kind)).count();
    let (unary, grouped) = (count("-unary-"), count("-group-"));
    let streamed = all.len() - unary - grouped;
    eprintln!(
        "{} rounds: {unary} unary, {grouped} grouped and {streamed} streamed events \
         acknowledged, all present; every group whole or absent",
        rounds()
    );
    assert!(
        unary > 0 && grouped > 0 && streamed > 0,
        "every kind of client must have been acknowledged: {unary} unary, {grouped} grouped, \
         {streamed} streamed"
    );
}
