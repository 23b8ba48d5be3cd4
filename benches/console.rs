//! The auditor's console under a large ledger: a real sled ledger of CONSOLE_ENTRIES (default
//! 1,000,000) signed ISMS events spread over years (the projections' synthetic history: risks,
//! SoA, evidence, audits, findings, actions), served by `isms serve --http` in-process; then
//! each page fetched over HTTP/1.1 for random dates, one request at a time, and the latency
//! of each page reported as p50 / p99 / max over CONSOLE_REQUESTS (default 200) requests.
//!
//! `cargo bench --bench console`. The target: any page for any date under 100 ms p99 at
//! 1,000,000 entries on 2 cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use http_body_util::BodyExt as _;
use isms_cli::commands::demo::DemoClock;
use ledger::{KeyGrant, Ledger, LedgerConfig, SignedEvent};
use projections::model::Event;
use projections::testkit::{synthetic_actors, synthetic_history, Rng};
use projections::wire::{encode_to_vec, BodyHeader};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A real key per synthetic actor, with the actor's subject and roles.
fn keys() -> Vec<(SigningKey, KeyGrant)> {
    synthetic_actors()
        .into_iter()
        .map(|actor| {
            let key = SigningKey::from_bytes(blake3::hash(actor.subject.0.as_bytes()).as_bytes());
            let grant = KeyGrant {
                public_key: key.verifying_key().to_bytes(),
                subject: actor.subject.0.clone(),
                roles: actor.roles.iter().map(|r| r.name().to_string()).collect(),
            };
            (key, grant)
        })
        .collect()
}

/// Builds the ledger; returns it with the first and last recorded times.
fn build(dir: &std::path::Path, entries: usize, clock: Arc<DemoClock>) -> (Arc<Ledger>, i64, i64) {
    let keys = keys();
    let actors = synthetic_actors();
    let history = synthetic_history(entries, 11);
    let first = history[1].0.recorded_at.0;
    clock.set(first - 1_000_000);
    let config = LedgerConfig {
        clock: clock.clone(),
        cache_bytes: 64 * 1024 * 1024,
        ..LedgerConfig::default()
    };
    let ledger = Ledger::create(
        dir.join("store"),
        "Console bench Ltd",
        SigningKey::from_bytes(&[1; 32]),
        vec![keys[0].1.clone()],
        config,
    )
    .expect("create");
    let ledger_id = ledger.ledger_id().0.to_vec();
    // The other actors' keys, enrolled by the admin.
    let enrolments = actors
        .iter()
        .zip(&keys)
        .skip(1)
        .map(|(actor, (key, _))| {
            let header = BodyHeader {
                ledger_id: ledger_id.clone(),
                event_id: format!("enrol-{}", actor.subject.0),
                effective_at: projections::Timestamp(first - 1_000_000),
                client_time: projections::Timestamp(first - 1_000_000),
                ..BodyHeader::default()
            };
            let event = Event::KeyEnrolled(projections::model::KeyEnrolment {
                public_key: key.verifying_key().to_bytes(),
                subject: actor.subject.clone(),
                roles: actor.roles.clone(),
            });
            SignedEvent::sign(&keys[0].0, encode_to_vec(&header, &event))
        })
        .collect();
    for result in ledger.append(enrolments) {
        result.expect("enrol");
    }
    let started = Instant::now();
    let mut last = first;
    for chunk in history[1..].chunks(1_000) {
        let mut batch = Vec::with_capacity(chunk.len());
        for (raw, envelope) in chunk {
            // Key changes name the synthetic actors' made-up keys: left out.
            if matches!(
                envelope.event,
                Event::Genesis { .. } | Event::KeyEnrolled(_) | Event::KeyRevoked { .. }
            ) {
                continue;
            }
            let signer = actors
                .iter()
                .position(|a| a.key_id() == raw.key_id)
                .unwrap_or(0);
            let header = BodyHeader {
                ledger_id: ledger_id.clone(),
                event_id: envelope.event_id.clone(),
                effective_at: envelope.effective_at,
                client_time: raw.recorded_at,
                ..BodyHeader::default()
            };
            batch.push(SignedEvent::sign(
                &keys[signer].0,
                encode_to_vec(&header, &envelope.event),
            ));
            last = raw.recorded_at.0;
        }
        clock.set(last);
        for result in ledger.append(batch) {
            result.expect("append");
        }
    }
    println!(
        "ledger: {} entries built in {:.1} s",
        ledger.head().size,
        started.elapsed().as_secs_f64()
    );
    (Arc::new(ledger), first, last)
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<bytes::Bytes>,
>;

async fn fetch(client: &HttpClient, url: &str) -> (u16, usize) {
    let response = client
        .get(url.parse().expect("a URL"))
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body.len())
}

fn date(us: i64) -> String {
    isms_cli::dates::show(us)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let entries = env("CONSOLE_ENTRIES", 1_000_000) as usize;
    let requests = env("CONSOLE_REQUESTS", 200) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(DemoClock::default());
    let (ledger, first, last) = build(dir.path(), entries, clock);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let options = isms_cli::server::ServeOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            allow_anonymous_reads: true,
            tls: None,
            limits: isms_cli::server::limits::Limits::default(),
            metrics: None,
            http: Some("127.0.0.1:0".parse().expect("address")),
            witnessing: isms_cli::server::Witnessing::default(),
        };
        let running = isms_cli::server::start(ledger.clone(), options)
            .await
            .expect("server");
        let base = format!("http://{}", running.http_addr.expect("console address"));
        let client: HttpClient =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        // Warm-up: the console builds the projection snapshots, the row index and the
        // valid-time index in the background when it starts; the first requests wait for
        // them. One-off costs, timed apart.
        for (what, path) in [
            ("first overview (snapshots built)", "/".to_string()),
            (
                "first history (row index built)",
                "/history?id=RISK-001".to_string(),
            ),
            (
                "first bitemporal (valid-time index built)",
                format!("/registers/risk_register?effective={}", date(first)),
            ),
        ] {
            let started = Instant::now();
            let (status, _) = fetch(&client, &format!("{base}{path}")).await;
            assert_eq!(status, 200, "{path}");
            println!("{what}: {:.2} s", started.elapsed().as_secs_f64());
        }
        let mut rng = Rng::new(3);
        let span = (last - first).max(1) as u64;
        let random_date = move |rng: &mut Rng| date(first + rng.below(span) as i64);
        type PathOf = Box<dyn FnMut(&mut Rng) -> String>;
        let size = ledger.head().size;
        let pages: Vec<(&str, PathOf)> = vec![
            (
                "overview",
                Box::new(move |r: &mut Rng| format!("/?as_of={}", random_date(r))),
            ),
            (
                "risk register",
                Box::new(move |r: &mut Rng| {
                    format!("/registers/risk_register?as_of={}", random_date(r))
                }),
            ),
            (
                "soa, sorted and filtered",
                Box::new(move |r: &mut Rng| {
                    format!(
                        "/registers/soa?as_of={}&q=true&sort=status&desc=1",
                        random_date(r)
                    )
                }),
            ),
            (
                "evidence as csv",
                Box::new(move |r: &mut Rng| {
                    format!("/registers/evidence?as_of={}&format=csv", random_date(r))
                }),
            ),
            (
                "bitemporal actions",
                Box::new(move |r: &mut Rng| {
                    format!(
                        "/registers/corrective_actions?effective={}&known_at={}",
                        random_date(r),
                        date(last)
                    )
                }),
            ),
            (
                "diff",
                Box::new(move |r: &mut Rng| {
                    let (a, b) = (first + r.below(span) as i64, first + r.below(span) as i64);
                    format!("/diff?from={}&to={}", date(a.min(b)), date(a.max(b)))
                }),
            ),
            (
                "row history",
                Box::new(move |r: &mut Rng| format!("/history?id=RISK-{:03}", r.below(200))),
            ),
            (
                "entry with proof",
                Box::new(move |r: &mut Rng| format!("/entry/{}", 1 + r.below(size - 1))),
            ),
        ];
        println!("\n{entries} entries, {requests} requests per page, one at a time");
        println!("| page | p50 | p99 | max |");
        println!("|---|---|---|---|");
        for (name, mut path_of) in pages {
            let mut times = Vec::with_capacity(requests);
            for _ in 0..requests {
                let path = path_of(&mut rng);
                let started = Instant::now();
                let (status, _) = fetch(&client, &format!("{base}{path}")).await;
                times.push(started.elapsed());
                assert_eq!(status, 200, "{path}");
            }
            times.sort();
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            println!(
                "| {name} | {} | {} | {} |",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(*times.last().expect("requests"))
            );
        }
        running.shutdown().await.expect("shutdown");
    });
}
