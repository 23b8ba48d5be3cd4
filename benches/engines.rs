//! The two storage engines side by side, in one run on one machine: sled (a folder on local
//! disk, the default) and PostgreSQL (a real server from Debian's packages, started by this
//! bench in a temporary folder with `fsync=on`).
//!
//! For each engine, a real `isms serve` (in this process, on 127.0.0.1) over a fresh ledger:
//! 1. durable AppendStream throughput (4 streams, ENGINES_STREAM events, default 100,000);
//! 2. durable unary Append throughput (64 clients, ENGINES_UNARY events, default 32,000);
//! 3. the ledger is filled to ENGINES_ENTRIES entries (default 1,000,000) over AppendStream,
//!    then the risk register and SoA are built as of 200 random recorded times through the
//!    projections (snapshots every 1,000 entries, built once first, as a running server has
//!    them): p50 and p99.
//!
//! Then the cost of hosting many ledgers on one server (sled, `start_many`): 1, 10 and 100
//! ledgers, ENGINES_HOSTED events (default 100,000) spread evenly over them through
//! AppendStream (4 streams per ledger, up to 64 streams at once), and the resident memory the
//! process gained.
//!
//! `cargo bench --bench engines`. Every event is signed before its phase's clock starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use isms_cli::store::StoreLocation;
use projections::query::ProjectorConfig;
use projections::registers::Registers;
use projections::Timestamp;

#[path = "support/load.rs"]
mod load;
#[path = "../tests/support/postgres.rs"]
mod pg;

use load::{env, presign, stream_all};

struct Figures {
    stream_rate: f64,
    unary_rate: f64,
    fill_rate: f64,
    entries: u64,
    as_of_p50: Duration,
    as_of_p99: Duration,
}

fn run(store: Option<StoreLocation>, stream_n: usize, unary_n: usize, entries: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let made =
        isms_cli::init::init_in(&data, store.as_ref(), "engines", "admin").expect("init ledger");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let agent = SigningKey::from_bytes(&[10; 32]);
    let ledger_id = made.ledger_id;
    let (ledger, figures) = runtime.block_on(async {
        let ledger = Arc::new(
            isms_cli::server::open_ledger(&data, ledger::LedgerConfig::default())
                .expect("open ledger"),
        );
        let options = load::serve_options();
        let running = isms_cli::server::start(ledger.clone(), options)
            .await
            .expect("start server");
        let url = format!("http://{}", running.addr);
        load::enrol_agent(&url, ledger_id, &made.admin_key, &agent).await;

        let streamed = presign(ledger_id, &agent, "stream", stream_n);
        let stream_rate = stream_n as f64 / stream_all(&url, streamed, 4).await.as_secs_f64();

        let unary = presign(ledger_id, &agent, "unary", unary_n);
        let unary_rate = unary_n as f64 / load::unary_all(&url, unary, 64).await.as_secs_f64();

        let mut filled = 2 + stream_n + unary_n;
        let (mut fill_time, mut fill_n, mut round) = (Duration::ZERO, 0, 0);
        while filled < entries {
            let n = (entries - filled).min(100_000);
            let batch = presign(ledger_id, &agent, &format!("fill{round}"), n);
            fill_time += stream_all(&url, batch, 4).await;
            filled += n;
            fill_n += n;
            round += 1;
        }
        running.shutdown().await.expect("shutdown");
        let fill_rate = fill_n as f64 / fill_time.as_secs_f64().max(1e-9);
        (ledger, (stream_rate, unary_rate, fill_rate, filled as u64))
    });
    let (stream_rate, unary_rate, fill_rate, filled) = figures;

    let projector = projections::ledger_glue::projector(
        &ledger,
        ProjectorConfig {
            snapshot_every: 1_000,
        },
    )
    .expect("projector");
    projector.latest().expect("build the snapshots");
    let first = ledger
        .get(ledger::Seq(0))
        .expect("genesis")
        .expect("genesis");
    let last = ledger
        .get(ledger::Seq(ledger.head().size - 1))
        .expect("last entry")
        .expect("last entry");
    let (t0, t1) = (
        first.recorded_at.0,
        last.recorded_at.0.max(first.recorded_at.0 + 1),
    );
    let mut rng = projections::testkit::Rng::new(7);
    let mut samples: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Timestamp(t0 + (rng.next_u64() % (t1 - t0) as u64) as i64);
            let start = Instant::now();
            let state = projector.as_of(t).expect("as of");
            let registers = Registers {
                state: &state,
                now: t,
            };
            std::hint::black_box((registers.risk_register().len(), registers.soa().len()));
            start.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Figures {
        stream_rate,
        unary_rate,
        fill_rate,
        entries: filled,
        as_of_p50: at(0.50),
        as_of_p99: at(0.99),
    }
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Hosts `n` fresh sled ledgers on one server and streams `events` spread over them:
/// (events/s, MiB of resident memory gained).
fn hosted(n: usize, events: usize) -> (f64, f64) {
    let before = rss_kib();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let agent = SigningKey::from_bytes(&[10; 32]);
    let (rate, after) = runtime.block_on(async {
        let mut ledgers = Vec::new();
        let mut made = Vec::new();
        for i in 0..n {
            let data = dir.path().join(format!("org-{i}"));
            let init = isms_cli::init::init(&data, "hosted", "admin").expect("init");
            let ledger = isms_cli::server::open_ledger(&data, ledger::LedgerConfig::default())
                .expect("open");
            ledgers.push((format!("org-{i}"), Arc::new(ledger)));
            made.push(init);
        }
        let options = load::serve_options();
        let running = isms_cli::server::start_many(ledgers, options)
            .await
            .expect("start");
        let url = format!("http://{}", running.addr);
        let per = events / n;
        let mut work = Vec::new();
        for (i, init) in made.iter().enumerate() {
            let name = format!("org-{i}");
            load::enrol_agent_in(&url, &name, init.ledger_id, &init.admin_key, &agent).await;
            work.push((name, presign(init.ledger_id, &agent, "hosted", per)));
        }
        let start = Instant::now();
        let streams_each = (64 / n).clamp(1, 4);
        let mut tasks = Vec::new();
        for (name, requests) in work {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                load::stream_all_in(&url, &name, requests, streams_each).await;
            }));
        }
        for task in tasks {
            task.await.expect("stream");
        }
        let rate = (per * n) as f64 / start.elapsed().as_secs_f64();
        let after = rss_kib();
        running.shutdown().await.expect("shutdown");
        (rate, after)
    });
    (rate, after.saturating_sub(before) as f64 / 1024.0)
}

fn main() {
    let stream_n = env("ENGINES_STREAM", 100_000) as usize;
    let unary_n = env("ENGINES_UNARY", 32_000) as usize;
    let entries = env("ENGINES_ENTRIES", 1_000_000) as usize;
    let hosted_events = env("ENGINES_HOSTED", 100_000) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let sled = run(None, stream_n, unary_n, entries);
    let cluster = pg::PgCluster::start();
    cluster.create_database("bench");
    let store = StoreLocation::parse(&format!("{}#bench", cluster.url("bench")));
    let postgres = run(Some(store), stream_n, unary_n, entries);

    println!();
    println!("storage engines side by side ({cores} cores; server and PostgreSQL on this machine)");
    println!("{:<52} {:>12} {:>12}", "measure", "sled", "postgres");
    let row = |name: String, a: f64, b: f64, digits: usize| {
        println!("{name:<52} {a:>12.digits$} {b:>12.digits$}");
    };
    row(
        format!("AppendStream, 4 streams, {stream_n} events (events/s)"),
        sled.stream_rate,
        postgres.stream_rate,
        0,
    );
    row(
        format!("unary Append, 64 clients, {unary_n} events (events/s)"),
        sled.unary_rate,
        postgres.unary_rate,
        0,
    );
    row(
        "AppendStream while filling (events/s)".into(),
        sled.fill_rate,
        postgres.fill_rate,
        0,
    );
    println!(
        "{:<52} {:>12} {:>12}",
        "entries in the ledger", sled.entries, postgres.entries
    );
    row(
        "risk register + SoA as of a random time, p50 (ms)".into(),
        sled.as_of_p50.as_secs_f64() * 1e3,
        postgres.as_of_p50.as_secs_f64() * 1e3,
        2,
    );
    row(
        "risk register + SoA as of a random time, p99 (ms)".into(),
        sled.as_of_p99.as_secs_f64() * 1e3,
        postgres.as_of_p99.as_secs_f64() * 1e3,
        2,
    );
    println!(
        "{:<52} {:>25.0} %",
        "PostgreSQL stream ingest as a share of sled's",
        100.0 * postgres.stream_rate / sled.stream_rate
    );

    println!();
    println!("ledgers hosted by one server (sled; {hosted_events} events spread evenly)");
    println!(
        "{:<12} {:>16} {:>22}",
        "ledgers", "events/s", "memory gained (MiB)"
    );
    for n in [1, 10, 100] {
        let (rate, mib) = hosted(n, hosted_events);
        println!("{n:<12} {rate:>16.0} {mib:>22.1}");
    }
}
