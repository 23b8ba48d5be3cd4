//! `/metrics` of a real server: the counters move with the appends, refusals and streams the
//! test makes, and the ledger's facts (entries, checkpoint age) are read at scrape time.

mod util;

use std::io::{Read as _, Write as _};

use tonic::Code;
use util::*;

async fn server_with_metrics() -> TestServer {
    TestServer::start_with(isms_cli::server::ServeOptions {
        metrics: Some("127.0.0.1:0".parse().expect("address")),
        ..options(false)
    })
    .await
}

/// The body of `GET /metrics`, over a plain HTTP/1.1 connection.
async fn scrape(t: &TestServer) -> String {
    let addr = t.server.metrics_addr.expect("metrics are served");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to /metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .expect("a body")
    })
    .await
    .expect("scrape")
}

/// The value of the sample named exactly `name` (with its labels, if any).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_appended_events_counter_moves_with_the_appends() {
    let t = server_with_metrics().await;
    let before = sample(&scrape(&t).await, "isms_events_appended_total");
    let agent = key(40);
    t.enroll(&agent, "scanner", &["agent"]).await;
    let mut client = t.client().await;
    let requests: Vec<_> = (0..3)
        .map(|i| sign(&agent, &evidence_body(&format!("ev-{i}"))))
        .collect();
    for request in &requests {
        client.append(request.clone()).await.expect("append");
    }
    // A retry of a stored event (the same bytes) is answered but not counted again.
    client.append(requests[0].clone()).await.expect("retry");
    let after = scrape(&t).await;
    assert_eq!(sample(&after, "isms_events_appended_total") - before, 4.0);
    assert_eq!(
        sample(&after, "isms_ledger_entries"),
        t.ledger.head().size as f64
    );
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_their_grpc_code() {
    let t = server_with_metrics().await;
    let stranger = key(41);
    let refused = t
        .client()
        .await
        .append(sign(&stranger, &evidence_body("ev-stranger")))
        .await
        .expect_err("an unknown key");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let text = scrape(&t).await;
    assert_eq!(
        sample(&text, "isms_refusals_total{code=\"UNAUTHENTICATED\"}"),
        1.0
    );
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_subscribe_streams_are_counted_while_they_are_open() {
    let t = server_with_metrics().await;
    let stream = t.subscribe_from(0).await.expect("subscribe").into_inner();
    assert_eq!(sample(&scrape(&t).await, "isms_subscribers"), 1.0);
    drop(stream);
    // The server notices the closed stream when it next tries to send; wait for it a while.
    let mut open = 1.0;
    for _ in 0..100 {
        open = sample(&scrape(&t).await, "isms_subscribers");
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0.0, "the closed stream is no longer counted");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_and_flush_is_observed_in_the_histograms() {
    let t = server_with_metrics().await;
    let agent = key(42);
    t.enroll(&agent, "scanner", &["agent"]).await;
    let text = scrape(&t).await;
    assert!(sample(&text, "isms_batch_events_count") >= 1.0, "{text}");
    assert!(sample(&text, "isms_flush_seconds_count") >= 1.0, "{text}");
    t.server.shutdown().await.expect("shutdown");
}
