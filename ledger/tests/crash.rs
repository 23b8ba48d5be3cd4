//! Crash safety: a child process appends in a loop and prints each acknowledged seq; the test
//! kills it with SIGKILL at random moments. After every kill the store reopens, holds every
//! acknowledged entry, and verifies.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, key, Fixture};
use ledger::{Ledger, Seq, SignedEvent};
use prost::Message;
use rand::{rngs::StdRng, Rng, SeedableRng};

const DIR_VAR: &str = "ISMS_CRASH_DIR";
const ROUND_VAR: &str = "ISMS_CRASH_ROUND";

/// The child: stages two batches at a time and makes them durable with one flush, until it is
/// killed, printing `ack <seq> <event id>` for every event only after that flush returned.
#[test]
#[ignore = "run as a child process by kill_9_never_loses_an_acknowledged_entry"]
fn crash_child_appender() {
    let dir = std::env::var(DIR_VAR).expect("run by the crash test");
    let round = std::env::var(ROUND_VAR).expect("run by the crash test");
    let clock = Arc::new(common::ManualClock(common::T0.into()));
    let ledger = Ledger::open(&dir, config(&clock), Some(key(1))).expect("open");
    let admin = key(2);
    let mut rng = StdRng::seed_from_u64(round.parse().unwrap());
    let mut stdout = std::io::stdout().lock();
    for n in 0.. {
        let batch = rng.gen_range(1..=64);
        let events: Vec<SignedEvent> = (0..batch)
            .map(|i| {
                let view = ledger::envelope::EnvelopeView {
                    ledger_id: ledger.ledger_id().0.to_vec(),
                    event_id: format!("r{round}-b{n}-{i}"),
                    effective_at_us: common::T0,
                    ..Default::default()
                };
                SignedEvent::sign(&admin, view.encode_to_vec())
            })
            .collect();
        let ids: Vec<String> = (0..batch).map(|i| format!("r{round}-b{n}-{i}")).collect();
        // Two batches staged, then one flush for both, as the server pipelines them.
        let half = events.len() / 2;
        let mut events = events;
        let later = events.split_off(half);
        let first = ledger.stage(ledger.prepare(events), &mut ledger::AdmitAll);
        let second = ledger.stage(ledger.prepare(later), &mut ledger::AdmitAll);
        ledger
            .make_durable(first.durable_size.max(second.durable_size))
            .expect("flush");
        for (result, id) in first.results.into_iter().chain(second.results).zip(ids) {
            let appended = result.expect("append");
            writeln!(stdout, "ack {} {id}", appended.seq).unwrap();
        }
        stdout.flush().unwrap();
    }
}

fn reopen(path: &std::path::Path, clock: &Arc<common::ManualClock>) -> Ledger {
    Ledger::open(path, config(clock), None).expect("reopen after kill")
}

#[test]
fn kill_9_never_loses_an_acknowledged_entry() {
    let f = Fixture::new();
    let Fixture {
        dir, clock, ledger, ..
    } = f;
    drop(ledger);
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(4242);
    let mut total_acks = 0usize;
    for round in 0..24 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child_appender",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .env(ROUND_VAR, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acks: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
        let reader = {
            let acks = acks.clone();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.split_whitespace();
                    if parts.next() == Some("ack") {
                        let seq = parts.next().unwrap().parse().unwrap();
                        let id = parts.next().unwrap().to_string();
                        acks.lock().unwrap().push((seq, id));
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();

        let acks = acks.lock().unwrap().clone();
        total_acks += acks.len();
        let ledger = reopen(dir.path(), &clock);
        for (seq, id) in &acks {
            let entry = ledger
                .get(Seq(*seq))
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged seq {seq} is missing"));
            let view = ledger::envelope::EnvelopeView::decode(entry.body.as_slice()).unwrap();
            assert_eq!(
                &view.event_id, id,
                "round {round}: seq {seq} holds another event"
            );
        }
        ledger
            .verify(&|_| {})
            .unwrap_or_else(|e| panic!("round {round}: verify after kill -9: {e}"));
        drop(ledger);
    }
    assert!(
        total_acks > 0,
        "the child never acknowledged anything: the test proved nothing"
    );
}
