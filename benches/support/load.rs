//! What the load benchmarks share: signed evidence events, a gRPC client, and AppendStream
//! over several streams. Included with `#[path]` by each bench that needs it.
#![allow(dead_code)] // each bench uses its own part of it

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use isms_proto::v1 as pb;
use isms_proto::v1::event_body::Payload;
use isms_proto::v1::isms_event::Kind;
use isms_proto::v1::ledger_client::LedgerClient;
use ledger::{LedgerId, SignedEvent};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn now_us() -> i64 {
    ledger::UnixMicros::now().0
}

pub fn evidence(ledger_id: LedgerId, agent: &SigningKey, id: &str) -> pb::AppendRequest {
    let now = now_us();
    let body = pb::EventBody {
        ledger_id: ledger_id.0.to_vec(),
        event_id: id.into(),
        effective_at_us: now,
        client_time_us: now,
        expected_version: None,
        artifacts: Vec::new(),
        payload: Some(Payload::Isms(pb::IsmsEvent {
            kind: Some(Kind::EvidenceSubmitted(pb::EvidenceSubmitted {
                evidence_id: id.into(),
                controls: vec!["A.8.8".into()],
                artifact_blake3: Vec::new(),
                result: pb::CheckResult::Pass as i32,
                collected_at_us: now,
                summary: "weekly vulnerability scan: 0 critical, 2 high".into(),
            })),
        })),
    };
    let signed = SignedEvent::sign(agent, body.encode_to_vec());
    pb::AppendRequest {
        body: signed.body,
        key_id: signed.key_id.0.to_vec(),
        signature: signed.signature.to_vec(),
    }
}

/// Signs `n` events named `prefix-i` on every core.
pub fn presign(
    ledger_id: LedgerId,
    agent: &SigningKey,
    prefix: &str,
    n: usize,
) -> Vec<pb::AppendRequest> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(n))
                        .map(|i| evidence(ledger_id, agent, &format!("{prefix}-{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signer"))
            .collect()
    })
}

pub async fn connect(url: &str) -> LedgerClient<Channel> {
    LedgerClient::connect(url.to_string())
        .await
        .expect("connect")
}

/// How the benches serve: 127.0.0.1 on a free port, default limits, nothing else.
pub fn serve_options() -> isms_cli::server::ServeOptions {
    isms_cli::server::ServeOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_anonymous_reads: false,
        tls: None,
        limits: isms_cli::server::limits::Limits::default(),
        metrics: None,
        http: None,
        witnessing: Default::default(),
    }
}

/// `request` for the ledger `name` on a server hosting several.
pub fn to_ledger<T>(name: &str, request: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        isms_cli::server::LEDGER_HEADER,
        name.parse().expect("an ASCII ledger name"),
    );
    request
}

pub async fn stream_all(url: &str, requests: Vec<pb::AppendRequest>, streams: usize) -> Duration {
    stream_all_in(url, "", requests, streams).await
}

/// [`stream_all`] to the ledger `name` of a server hosting several (`""`: the only one).
pub async fn stream_all_in(
    url: &str,
    name: &str,
    requests: Vec<pb::AppendRequest>,
    streams: usize,
) -> Duration {
    let per = requests.len().div_ceil(streams);
    let mut chunks: Vec<Vec<pb::AppendRequest>> = Vec::new();
    let mut it = requests.into_iter();
    for _ in 0..streams {
        chunks.push(it.by_ref().take(per).collect());
    }
    let mut clients = Vec::new();
    for _ in 0..streams {
        clients.push(connect(url).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(chunks)
        .map(|(mut client, chunk)| {
            let name = name.to_string();
            tokio::spawn(async move {
                let n = chunk.len();
                let stream = tokio_stream::iter(chunk);
                let request = if name.is_empty() {
                    tonic::Request::new(stream)
                } else {
                    to_ledger(&name, stream)
                };
                let mut results = client
                    .append_stream(request)
                    .await
                    .expect("stream")
                    .into_inner();
                let mut got = 0;
                while let Some(r) = results.next().await {
                    let r = r.expect("result");
                    if let Some(pb::append_result::Result::Error(e)) = r.result {
                        panic!("refused: {}", e.message);
                    }
                    got += 1;
                }
                assert_eq!(got, n);
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("stream task");
    }
    start.elapsed()
}

/// Enrols `agent` with the agent role, signed by `admin`, and waits for it to be durable.
pub async fn enrol_agent(url: &str, ledger_id: LedgerId, admin: &SigningKey, agent: &SigningKey) {
    enrol_agent_in(url, "", ledger_id, admin, agent).await
}

/// [`enrol_agent`] in the ledger `name` of a server hosting several (`""`: the only one).
pub async fn enrol_agent_in(
    url: &str,
    name: &str,
    ledger_id: LedgerId,
    admin: &SigningKey,
    agent: &SigningKey,
) {
    let now = now_us();
    let body = pb::EventBody {
        ledger_id: ledger_id.0.to_vec(),
        event_id: "enroll-agent".into(),
        effective_at_us: now,
        client_time_us: now,
        payload: Some(Payload::KeyEnrolled(pb::KeyEnrolled {
            public_key: agent.verifying_key().to_bytes().to_vec(),
            subject: "ci/scanner".into(),
            roles: vec!["agent".into()],
        })),
        ..Default::default()
    };
    let signed = SignedEvent::sign(admin, body.encode_to_vec());
    let request = pb::AppendRequest {
        body: signed.body,
        key_id: signed.key_id.0.to_vec(),
        signature: signed.signature.to_vec(),
    };
    let request = if name.is_empty() {
        tonic::Request::new(request)
    } else {
        to_ledger(name, request)
    };
    connect(url)
        .await
        .append(request)
        .await
        .expect("enrol agent");
}

/// Sends `requests` as unary Appends from `clients` concurrent clients; the time taken.
pub async fn unary_all(url: &str, requests: Vec<pb::AppendRequest>, clients: usize) -> Duration {
    let per = requests.len().div_ceil(clients);
    let mut work = requests.into_iter();
    let mut jobs = Vec::new();
    for _ in 0..clients {
        jobs.push((
            connect(url).await,
            work.by_ref().take(per).collect::<Vec<_>>(),
        ));
    }
    let start = Instant::now();
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(mut client, requests)| {
            tokio::spawn(async move {
                for r in requests {
                    client.append(r).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    start.elapsed()
}
