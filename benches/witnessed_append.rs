//! AppendStream throughput of `isms serve` with three witnesses attached, beside the same
//! server with none, measured in one run.
//!
//! Each round starts a fresh ledger and a server in a child process (this executable re-run
//! with `WA_SERVE=<data dir>`); in the witnessed rounds three real `isms witness` HTTP servers
//! run in their own child processes (`WA_WITNESS=<dir>`) and the server offers them each new
//! checkpoint every `WA_INTERVAL_MS` (default 200 ms, far more often than the 10 s default, so
//! the witnesses are busy for the whole phase). Rounds alternate none / three and three /
//! none, so drift of the machine falls on both alike; the report gives each round and the
//! median of each configuration, and checks afterwards that every witness did cosign.
//!
//! `cargo bench --bench witnessed_append`. Knobs: WA_EVENTS (events per round, default
//! 100,000), WA_ROUNDS (rounds per configuration, default 3), WA_INTERVAL_MS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use isms_cli::server::witnesses::{WitnessConfig, WitnessSchedule};
use isms_cli::server::Witnessing;
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_client::LedgerClient;

#[path = "support/load.rs"]
mod load;
use load::{env, presign, stream_all};

const WITNESSES: usize = 3;
const STREAMS: usize = 4;

/// The ledger server: `WA_SERVE=<data>`, witnesses from `WA_WITNESS_SPECS` (`;`-separated
/// `NAME=URL,VKEY`). Prints its address, then runs until killed.
fn serve(data: &str) {
    let specs = std::env::var("WA_WITNESS_SPECS").unwrap_or_default();
    let witnesses = specs
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| WitnessConfig::parse(s).expect("witness spec"))
        .collect();
    let schedule = WitnessSchedule {
        interval: Duration::from_millis(env("WA_INTERVAL_MS", 200)),
        step: 1,
        ..Default::default()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ledger =
            isms_cli::server::open_ledger(data.as_ref(), Default::default()).expect("open ledger");
        let options = isms_cli::server::ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            allow_anonymous_reads: true,
            tls: None,
            limits: Default::default(),
            metrics: None,
            http: None,
            witnessing: Witnessing {
                witnesses,
                schedule,
            },
        };
        let running = isms_cli::server::start(Arc::new(ledger), options)
            .await
            .expect("start");
        println!("{}", running.addr);
        std::future::pending::<()>().await;
    });
}

/// A witness: `WA_WITNESS=<dir>`. Prints its address, then runs until killed.
fn witness(dir: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let state = Arc::new(isms_cli::witness::open(dir.as_ref()).expect("open witness"));
        let running = isms_cli::witness::http::start(state, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("start witness");
        println!("{}", running.addr);
        std::future::pending::<()>().await;
    });
}

/// A child process of this executable in one of the modes above; returns it and the address
/// it printed.
fn spawn(mode: &str, value: &Path, extra: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(std::env::current_exe().expect("exe"));
    command.env(mode, value).stdout(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    (child, line.trim().to_string())
}

struct Round {
    rate: f64,
    cosigned: Vec<u64>,
}

/// One fresh ledger with `witnesses` witnesses: enrols an agent, streams `events` events over
/// four AppendStreams, and reports the rate and what each witness cosigned by the end.
fn round(work: &Path, index: usize, witnesses: usize, events: usize) -> Round {
    let data = work.join(format!("ledger-{index}"));
    let made = isms_cli::init::init(&data, "bench", "admin").expect("init");
    let vkey = {
        let ledger = isms_cli::server::open_ledger(&data, Default::default()).expect("open");
        ledger::checkpoint::verifier_key(ledger.origin(), &ledger.public_key())
    };
    let mut children = Vec::new();
    let mut specs = Vec::new();
    let mut witness_dirs = Vec::new();
    for w in 0..witnesses {
        let dir = work.join(format!("witness-{index}-{w}"));
        isms_cli::witness::init(&dir, &format!("witness.example/w{w}")).expect("witness init");
        isms_cli::witness::add_ledger(&dir, &vkey).expect("add ledger");
        let (child, addr) = spawn("WA_WITNESS", &dir, &[]);
        children.push(child);
        specs.push(format!(
            "w{w}=http://{addr},{}",
            std::fs::read_to_string(dir.join("witness.vkey"))
                .expect("witness.vkey")
                .trim()
        ));
        witness_dirs.push(dir);
    }
    let (server, addr) = spawn("WA_SERVE", &data, &[("WA_WITNESS_SPECS", specs.join(";"))]);
    children.push(server);
    let url = format!("http://{addr}");

    let agent = SigningKey::from_bytes(&[10; 32]);
    let ledger_id = made.ledger_id;
    let requests = presign(ledger_id, &agent, "e", events);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (rate, cosigned) = runtime.block_on(async {
        load::enrol_agent(&url, ledger_id, &made.admin_key, &agent).await;
        let took = stream_all(&url, requests, STREAMS).await;
        let rate = events as f64 / took.as_secs_f64();

        // Give the witnesses one more interval, then read what each cosigned.
        tokio::time::sleep(Duration::from_millis(2 * env("WA_INTERVAL_MS", 200) + 500)).await;
        let status = LedgerClient::connect(url.clone())
            .await
            .expect("connect")
            .get_status(pb::GetStatusRequest::default())
            .await
            .map(|r| r.into_inner());
        let cosigned = match status {
            Ok(status) => status.witnesses.iter().map(|w| w.cosigned_size).collect(),
            Err(e) => panic!("status: {e}"),
        };
        (rate, cosigned)
    });
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&data);
    for dir in witness_dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    Round { rate, cosigned }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if let Ok(data) = std::env::var("WA_SERVE") {
        serve(&data);
        return;
    }
    if let Ok(dir) = std::env::var("WA_WITNESS") {
        witness(&dir);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events = env("WA_EVENTS", 100_000) as usize;
    let rounds = env("WA_ROUNDS", 3) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = tempfile::tempdir().expect("temp dir");

    let mut none = Vec::new();
    let mut three = Vec::new();
    println!("AppendStream, {STREAMS} streams, {events} events per round ({cores} cores)");
    for r in 0..rounds {
        // Even rounds run none first, odd rounds three first (ABBA), so that a machine that
        // slows or speeds up through the run weighs on both configurations alike.
        let order = if r % 2 == 0 {
            [0, WITNESSES]
        } else {
            [WITNESSES, 0]
        };
        for witnesses in order {
            let result = round(
                work.path(),
                r * 2 + usize::from(witnesses > 0),
                witnesses,
                events,
            );
            println!(
                "  round {r}, {witnesses} witness(es): {:>9.0} events/s; cosigned sizes {:?}",
                result.rate, result.cosigned
            );
            if witnesses > 0 {
                assert!(
                    result.cosigned.iter().all(|&s| s > 1),
                    "every witness cosigned during the round: {:?}",
                    result.cosigned
                );
                three.push(result.rate);
            } else {
                none.push(result.rate);
            }
        }
    }
    let (none, three) = (median(&mut none), median(&mut three));
    println!("{:<52} {:>12.0}", "median, no witness (events/s)", none);
    println!(
        "{:<52} {:>12.0}",
        "median, three witnesses (events/s)", three
    );
    println!(
        "{:<52} {:>+12.1}",
        "three witnesses vs none (%)",
        (three / none - 1.0) * 100.0
    );
}
