//! AppendAtomic against a real server: a group of events is written all together or not at
//! all, each event checked against the state the earlier ones produce, and a refused group
//! leaves neither entries nor rules state behind.

mod util;

use ed25519_dalek::SigningKey;
use isms_proto::v1 as pb;
use isms_proto::v1::isms_event::Kind;
use tonic::Code;
use util::*;

fn identified(risk_id: &str) -> pb::event_body::Payload {
    isms(Kind::RiskIdentified(pb::RiskIdentified {
        risk_id: risk_id.into(),
        asset: "Customer database".into(),
        threat: "SQL injection".into(),
        vulnerability: "Input validation".into(),
        risk_owner: "CTO".into(),
    }))
}

fn assessed(risk_id: &str, likelihood: u32, impact: u32) -> pb::event_body::Payload {
    isms(Kind::RiskAssessed(pb::RiskAssessed {
        risk_id: risk_id.into(),
        likelihood,
        impact,
        inherent_risk: None,
    }))
}

/// A server with a risk owner enrolled.
async fn with_risk_owner() -> (TestServer, SigningKey) {
    let t = TestServer::start().await;
    let owner = key(60);
    t.enroll(&owner, "cto@example.com", &["risk_owner"]).await;
    (t, owner)
}

async fn append_atomic(
    t: &TestServer,
    events: Vec<pb::AppendRequest>,
) -> Result<pb::AppendAtomicResponse, tonic::Status> {
    t.client()
        .await
        .append_atomic(pb::AppendAtomicRequest { events })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_checked_against_the_state_its_earlier_events_produce() {
    let (t, owner) = with_risk_owner().await;
    // The assessment is valid only because the identification before it in the group is.
    let receipts = append_atomic(
        &t,
        vec![
            sign(&owner, &body("r1-identified", identified("RISK-001"))),
            sign(&owner, &body("r1-assessed", assessed("RISK-001", 3, 4))),
        ],
    )
    .await
    .expect("the group is accepted")
    .receipts;
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[1].seq, receipts[0].seq + 1);
    assert_eq!(t.ledger.head().size, receipts[1].seq + 1);
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_one_bad_event_stores_nothing_and_names_every_bad_event() {
    let (t, owner) = with_risk_owner().await;
    let head = t.ledger.head();
    let refused = append_atomic(
        &t,
        vec![
            sign(&owner, &body("r1-identified", identified("RISK-001"))),
            sign(&owner, &body("r1-assessed", assessed("RISK-001", 9, 4))),
            sign(&owner, &body("r2-assessed", assessed("RISK-404", 2, 2))),
        ],
    )
    .await
    .expect_err("likelihood 9 and an unknown risk");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let message = refused.message();
    assert!(
        message.starts_with("nothing was stored: 2 of the 3 events"),
        "{message}"
    );
    assert!(
        message.contains("event 1: risk_assessed.likelihood"),
        "{message}"
    );
    assert!(message.contains("event 2: "), "{message}");
    assert_eq!(t.ledger.head(), head, "nothing of the group was written");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_group_leaves_the_rules_state_as_it_was() {
    let (t, owner) = with_risk_owner().await;
    append_atomic(
        &t,
        vec![
            sign(&owner, &body("r1-identified", identified("RISK-001"))),
            sign(&owner, &body("r1-assessed", assessed("RISK-001", 9, 4))),
        ],
    )
    .await
    .expect_err("likelihood 9");
    // Had the refused group's identification stayed in the rules state, identifying the same
    // risk again would be refused as a second identification.
    t.client()
        .await
        .append(sign(&owner, &body("r1-again", identified("RISK-001"))))
        .await
        .expect("RISK-001 was never identified");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_group_is_answered_with_the_original_receipts() {
    let (t, owner) = with_risk_owner().await;
    let group = vec![
        sign(&owner, &body("r1-identified", identified("RISK-001"))),
        sign(&owner, &body("r1-assessed", assessed("RISK-001", 3, 4))),
    ];
    let first = append_atomic(&t, group.clone()).await.expect("first");
    let head = t.ledger.head();
    let again = append_atomic(&t, group).await.expect("retry");
    assert_eq!(t.ledger.head(), head, "the retry wrote nothing");
    let seqs = |r: &pb::AppendAtomicResponse| r.receipts.iter().map(|x| x.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&again), seqs(&first));
    assert!(again.receipts.iter().all(|r| r.duplicate));
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_oversized_group_is_invalid_argument_naming_the_limit() {
    let (t, owner) = with_risk_owner().await;
    let empty = append_atomic(&t, Vec::new()).await.expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let many: Vec<pb::AppendRequest> = (0..1025)
        .map(|i| {
            sign(
                &owner,
                &body(&format!("e{i}"), identified(&format!("R-{i}"))),
            )
        })
        .collect();
    let oversized = append_atomic(&t, many).await.expect_err("1,025 events");
    assert_eq!(oversized.code(), Code::InvalidArgument);
    assert!(
        oversized.message().contains("1024"),
        "{}",
        oversized.message()
    );
    t.server.shutdown().await.expect("shutdown");
}
