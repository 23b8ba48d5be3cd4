//! Load: 64 concurrent clients x 2,000 unary appends against the real server. Seqs come out
//! gapless with no duplicates, the ledger verifies, and a retried event gets its original
//! receipt back.

mod util;

use std::collections::BTreeSet;

use isms_proto::v1 as pb;
use util::*;

const CLIENTS: usize = 64;
const PER_CLIENT: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_append_gapless_and_verify() {
    let t = TestServer::start().await;
    let agent = key(10);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    let start = t.ledger.head().size;

    // Sign everything before the clients start.
    let batches: Vec<Vec<pb::AppendRequest>> = (0..CLIENTS)
        .map(|c| {
            (0..PER_CLIENT)
                .map(|i| sign(&agent, &evidence_body(&format!("load-{c}-{i}"))))
                .collect()
        })
        .collect();
    let first_request = batches[0][0].clone();

    let mut tasks = Vec::new();
    for requests in batches {
        let mut client = t.client().await;
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(requests.len());
            for r in requests {
                let receipt = client.append(r).await.expect("append").into_inner();
                assert!(!receipt.duplicate);
                seqs.push(receipt.seq);
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for seq in task.await.expect("client task") {
            assert!(all.insert(seq), "seq {seq} was handed out twice");
        }
    }
    let expected: BTreeSet<u64> = (start..start + (CLIENTS * PER_CLIENT) as u64).collect();
    assert_eq!(all, expected, "seqs are not gapless");
    assert_eq!(t.ledger.head().size, start + (CLIENTS * PER_CLIENT) as u64);

    // A retry returns the original receipt, flagged as a duplicate, and appends nothing.
    let mut client = t.client().await;
    let original = client
        .get_entry(signed(
            pb::GetEntryRequest {
                by: Some(pb::get_entry_request::By::EventId("load-0-0".into())),
            },
            &t.admin,
            isms_cli::server::ledger_service::method::GET_ENTRY,
        ))
        .await
        .expect("get entry")
        .into_inner();
    let size = t.ledger.head().size;
    let retried = client
        .append(first_request)
        .await
        .expect("retry")
        .into_inner();
    assert!(retried.duplicate);
    assert_eq!(retried.seq, original.seq);
    assert_eq!(retried.entry_hash, original.entry_hash);
    assert_eq!(retried.recorded_at_us, original.recorded_at_us);
    assert_eq!(t.ledger.head().size, size);

    let ledger = t.ledger.clone();
    let report = tokio::task::spawn_blocking(move || ledger.verify(&|_| {}))
        .await
        .expect("verify task");
    report.expect("the ledger verifies");
    t.server.shutdown().await.expect("shutdown");
}
