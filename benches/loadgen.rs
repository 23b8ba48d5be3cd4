//! Load generator for `isms serve`: unary appends from 64 concurrent clients, AppendStream,
//! p99 latency at 1,000 events/s offered, and server memory while taking in many events, next
//! to this machine's ed25519 verify limit measured in the same run.
//!
//! `cargo bench --bench loadgen`. Environment knobs for quick runs:
//! LOADGEN_TOTAL (events for the memory phase, default 1,000,000), LOADGEN_PER_CLIENT (unary
//! appends per client, default 2,000), LOADGEN_STREAM (AppendStream events, default 200,000),
//! LOADGEN_LATENCY_SECS (default 10).
//!
//! The server runs in a child process (this same executable, re-run with
//! `LOADGEN_SERVE=<data dir>`), so its memory is measured apart from the generator's. Every
//! event is signed before its phase's clock starts.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey, Verifier};
use ledger::SignedEvent;

#[path = "support/load.rs"]
mod load;
use load::{connect, env, presign, stream_all};

fn server_mode(data: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ledger = isms_cli::server::open_ledger(data.as_ref(), ledger::LedgerConfig::default())
            .expect("open ledger");
        let options = load::serve_options();
        let running = isms_cli::server::start(Arc::new(ledger), options)
            .await
            .expect("start");
        println!("{}", running.addr);
        // Runs until the generator kills it.
        std::future::pending::<()>().await;
    });
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Single-core ed25519 verification rate: one by one, in ed25519-dalek's batches of 256, and
/// in the ledger's own batches of 256 (terms of the same key summed).
fn verify_limit() -> (f64, f64, f64) {
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    let messages: Vec<Vec<u8>> = (0..20_000u32).map(|i| format!("event {i} with a body of typical length, about two hundred bytes of protobuf .................................................................................................").into_bytes()).collect();
    let signatures: Vec<_> = messages.iter().map(|m| key.sign(m)).collect();
    let start = Instant::now();
    for (m, s) in messages.iter().zip(&signatures) {
        public.verify(m, s).expect("verifies");
    }
    let single = messages.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for (ms, ss) in messages.chunks(256).zip(signatures.chunks(256)) {
        let refs: Vec<&[u8]> = ms.iter().map(Vec::as_slice).collect();
        let keys = vec![public; ms.len()];
        ed25519_dalek::verify_batch(&refs, ss, &keys).expect("batch verifies");
    }
    let batch = messages.len() as f64 / start.elapsed().as_secs_f64();
    // The ledger's own batch check (key terms summed), on event bodies from one key.
    let events: Vec<SignedEvent> = messages
        .iter()
        .map(|m| SignedEvent::sign(&key, m.clone()))
        .collect();
    let public_bytes = public.to_bytes();
    let start = Instant::now();
    for chunk in events.chunks(256) {
        let items: Vec<ledger::sig::Item<'_>> = chunk
            .iter()
            .map(|e| ledger::sig::Item {
                public_key: &public_bytes,
                signature: &e.signature,
                body: &e.body,
            })
            .collect();
        assert!(ledger::sig::verify_batch(&items), "batch verifies");
    }
    let keyed = events.len() as f64 / start.elapsed().as_secs_f64();
    (single, batch, keyed)
}

fn main() {
    if let Ok(data) = std::env::var("LOADGEN_SERVE") {
        server_mode(&data);
        return;
    }
    // `cargo bench` passes --bench; there is nothing to filter.
    let total = env("LOADGEN_TOTAL", 1_000_000) as usize;
    let per_client = env("LOADGEN_PER_CLIENT", 2_000) as usize;
    let stream_n = env("LOADGEN_STREAM", 200_000) as usize;
    let latency_secs = env("LOADGEN_LATENCY_SECS", 10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let (verify_single, verify_batch, verify_keyed) = verify_limit();

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let made = isms_cli::init::init(&data, "loadgen", "admin").expect("init");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("LOADGEN_SERVE", &data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    let url = format!("http://{}", line.trim());

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let agent = SigningKey::from_bytes(&[10; 32]);
    let ledger_id = made.ledger_id;
    let report = runtime.block_on(async {
        load::enrol_agent(&url, ledger_id, &made.admin_key, &agent).await;
        let mut sent = 1usize;

        // Unary, 64 concurrent clients.
        let unary = presign(ledger_id, &agent, "unary", 64 * per_client);
        let took = load::unary_all(&url, unary, 64).await;
        let unary_rate = (64 * per_client) as f64 / took.as_secs_f64();
        sent += 64 * per_client;

        // AppendStream over 4 streams.
        let streamed = presign(ledger_id, &agent, "stream", stream_n);
        let took = stream_all(&url, streamed, 4).await;
        let stream_rate = stream_n as f64 / took.as_secs_f64();
        sent += stream_n;

        // Latency at 1,000 events/s offered (open loop), 64 connections.
        let offered = 1_000 * latency_secs as usize;
        let requests = presign(ledger_id, &agent, "latency", offered);
        let mut pool = Vec::new();
        for _ in 0..64 {
            pool.push(connect(&url).await);
        }
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(offered);
        for (i, r) in requests.into_iter().enumerate() {
            interval.tick().await;
            let mut c = pool[i % 64].clone();
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                c.append(r).await.expect("append");
                start.elapsed()
            }));
        }
        let mut latencies = Vec::with_capacity(offered);
        for t in tasks {
            latencies.push(t.await.expect("latency task"));
        }
        latencies.sort();
        let p =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let (p50, p99) = (p(0.50), p(0.99));
        sent += offered;

        // Memory: keep streaming until the ledger holds `total` events.
        let mut round = 0;
        while sent < total {
            let n = (total - sent).min(200_000);
            let batch = presign(ledger_id, &agent, &format!("mem{round}"), n);
            stream_all(&url, batch, 4).await;
            sent += n;
            round += 1;
        }
        (unary_rate, stream_rate, p50, p99, sent)
    });
    let (unary_rate, stream_rate, p50, p99, sent) = report;
    let hwm = status_kib(pid, "VmHWM:");
    let rss = status_kib(pid, "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();

    println!();
    println!("isms serve load generator ({cores} cores; server in a child process)");
    println!("{:<58} {:>14}", "measure", "value");
    println!(
        "{:<58} {:>14.0}",
        "ed25519 verify, one core, one by one (sig/s)", verify_single
    );
    println!(
        "{:<58} {:>14.0}",
        "ed25519-dalek verify_batch, one core, 256 (sig/s)", verify_batch
    );
    println!(
        "{:<58} {:>14.0}",
        format!("  x {cores} cores, batched (sig/s)"),
        verify_batch * cores as f64
    );
    println!(
        "{:<58} {:>14.0}",
        "ledger batch check, one core, 256 from one key (sig/s)", verify_keyed
    );
    println!(
        "{:<58} {:>14.0}",
        format!("  x {cores} cores (sig/s)"),
        verify_keyed * cores as f64
    );
    println!(
        "{:<58} {:>14.0}",
        format!("unary Append, 64 clients x {per_client} (events/s, durable)"),
        unary_rate
    );
    println!(
        "{:<58} {:>14.0}",
        format!("AppendStream, 4 streams, {stream_n} events (events/s, durable)"),
        stream_rate
    );
    println!(
        "{:<58} {:>14.2}",
        "unary latency p50 at 1,000 events/s offered (ms)",
        p50.as_secs_f64() * 1e3
    );
    println!(
        "{:<58} {:>14.2}",
        "unary latency p99 at 1,000 events/s offered (ms)",
        p99.as_secs_f64() * 1e3
    );
    println!("{:<58} {:>14}", "events in the ledger", sent + 1);
    println!(
        "{:<58} {:>14.1}",
        "server peak RSS, VmHWM (MiB)",
        hwm as f64 / 1024.0
    );
    println!(
        "{:<58} {:>14.1}",
        "server RSS at the end (MiB)",
        rss as f64 / 1024.0
    );
}
