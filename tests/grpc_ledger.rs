//! The Ledger and Registers services end to end: receipts that verify offline, AppendStream
//! order, GetEntry, Subscribe's seamless catch-up, checkpoints and proofs, artifacts, registers
//! as of a time, reflection, anonymous reads, TLS and mTLS.

mod util;

use std::time::Duration;

use futures_util::StreamExt;
use isms_cli::server::ledger_service::method;
use isms_cli::server::registers_service::method as reg;
use isms_cli::server::TlsFiles;
use isms_proto::v1 as pb;
use isms_proto::v1::isms_event::Kind;
use isms_proto::v1::ledger_client::LedgerClient;
use ledger::merkle::{self, Blake3Hasher, MerkleHasher};
use ledger::{EntryHash, KeyId, Receipt, Seq, SignedCheckpoint, UnixMicros};
use prost::Message;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;
use util::*;

fn hash32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32 bytes")
}

fn to_receipt(r: &pb::Receipt) -> Receipt {
    Receipt {
        seq: Seq(r.seq),
        recorded_at: UnixMicros(r.recorded_at_us),
        prev_hash: EntryHash(hash32(&r.prev_hash)),
        key_id: KeyId(hash32(&r.key_id)),
        signature: r.signature.as_slice().try_into().expect("64 bytes"),
        entry_hash: EntryHash(hash32(&r.entry_hash)),
        checkpoint: r.checkpoint.clone(),
        inclusion_path: r.inclusion_path.iter().map(|h| hash32(h)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_entries_checkpoints_and_proofs_verify_offline() {
    let t = TestServer::start().await;
    let agent = key(10);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    let mut client = t.client().await;
    let body = evidence_body("ev-1").encode_to_vec();
    let receipt = client
        .append(sign_bytes(&agent, body.clone()))
        .await
        .expect("append")
        .into_inner();
    assert!(!receipt.duplicate);
    let public = t.ledger.public_key();
    let checkpoint = to_receipt(&receipt)
        .verify(&body, &public)
        .expect("the receipt verifies with the ledger key alone");
    assert_eq!(checkpoint.size, receipt.checkpoint_size);

    let by_id = client
        .get_entry(signed(
            pb::GetEntryRequest {
                by: Some(pb::get_entry_request::By::EventId("ev-1".into())),
            },
            &agent,
            method::GET_ENTRY,
        ))
        .await
        .expect("get by id")
        .into_inner();
    assert_eq!(by_id.seq, receipt.seq);
    assert_eq!(by_id.body, body);
    assert_eq!(by_id.entry_hash, receipt.entry_hash);

    // Append more, then prove the old entry is in the new tree and the trees are consistent.
    for i in 0..5 {
        client
            .append(sign(&agent, &evidence_body(&format!("ev-more-{i}"))))
            .await
            .expect("append");
    }
    let latest = client
        .get_checkpoint(signed(
            pb::GetCheckpointRequest { size: 0 },
            &agent,
            method::GET_CHECKPOINT,
        ))
        .await
        .expect("checkpoint")
        .into_inner();
    assert_eq!(latest.size, t.ledger.head().size);
    let verified = SignedCheckpoint::verify(&latest.note, &public).expect("signed by the ledger");
    let proof = client
        .get_inclusion_proof(signed(
            pb::GetInclusionProofRequest {
                seq: receipt.seq,
                tree_size: 0,
            },
            &agent,
            method::GET_INCLUSION_PROOF,
        ))
        .await
        .expect("inclusion")
        .into_inner();
    let path: Vec<[u8; 32]> = proof.path.iter().map(|h| hash32(h)).collect();
    merkle::verify_inclusion::<Blake3Hasher>(
        &Blake3Hasher::hash_leaf(&receipt.entry_hash),
        receipt.seq,
        verified.checkpoint.size,
        &path,
        &verified.checkpoint.root,
    )
    .expect("inclusion proof verifies");
    let consistency = client
        .get_consistency_proof(signed(
            pb::GetConsistencyProofRequest {
                old_size: receipt.checkpoint_size,
                new_size: 0,
            },
            &agent,
            method::GET_CONSISTENCY_PROOF,
        ))
        .await
        .expect("consistency")
        .into_inner();
    let old = SignedCheckpoint::verify(&consistency.old_checkpoint, &public).expect("old");
    let new = SignedCheckpoint::verify(&consistency.new_checkpoint, &public).expect("new");
    let path: Vec<[u8; 32]> = consistency.path.iter().map(|h| hash32(h)).collect();
    merkle::verify_consistency::<Blake3Hasher>(
        old.checkpoint.size,
        new.checkpoint.size,
        &old.checkpoint.root,
        &new.checkpoint.root,
        &path,
    )
    .expect("consistency proof verifies");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_stream_answers_every_event_in_order() {
    let t = TestServer::start().await;
    let agent = key(10);
    let reader = key(14);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    t.enroll(&reader, "reader@example.com", &["reader"]).await;
    let start = t.ledger.head().size;
    let mut requests: Vec<pb::AppendRequest> = (0..3000)
        .map(|i| sign(&agent, &evidence_body(&format!("s-{i}"))))
        .collect();
    // A refusal in the middle, and a retry of an earlier event near the end.
    requests[1500] = sign(&reader, &evidence_body("s-refused"));
    let retry = requests[10].clone();
    requests.push(retry);
    let mut client = t.client().await;
    let results: Vec<pb::AppendResult> = client
        .append_stream(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner()
        .map(|r| r.expect("result"))
        .collect()
        .await;
    assert_eq!(results.len(), 3001);
    let mut next = start;
    for (i, r) in results.iter().enumerate() {
        match (i, r.result.as_ref().expect("result")) {
            (1500, pb::append_result::Result::Error(e)) => {
                assert_eq!(e.code, Code::PermissionDenied as i32, "{}", e.message);
            }
            (3000, pb::append_result::Result::Receipt(receipt)) => {
                assert!(receipt.duplicate);
                assert_eq!(receipt.seq, start + 10);
            }
            (_, pb::append_result::Result::Receipt(receipt)) => {
                assert_eq!(receipt.seq, next, "result {i} out of order");
                next += 1;
            }
            (_, other) => panic!("result {i}: {other:?}"),
        }
    }
    assert_eq!(t.ledger.head().size, start + 2999);
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_catches_up_then_goes_live_without_gap_or_duplicate() {
    let t = TestServer::start().await;
    let agent = key(10);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    let mut client = t.client().await;
    for i in 0..100 {
        client
            .append(sign(&agent, &evidence_body(&format!("before-{i}"))))
            .await
            .expect("append");
    }
    let mut entries = client
        .subscribe(signed(
            pb::SubscribeRequest { from_seq: 5 },
            &agent,
            method::SUBSCRIBE,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    // Appends keep coming while the subscriber catches up.
    let mut writer = t.client().await;
    let appends = tokio::spawn(async move {
        for i in 0..200 {
            writer
                .append(sign(&agent, &evidence_body(&format!("during-{i}"))))
                .await
                .expect("append");
        }
    });
    let last = 2 + 100 + 200 - 1;
    let mut expected = 5;
    while expected <= last {
        let entry = tokio::time::timeout(Duration::from_secs(30), entries.next())
            .await
            .expect("an entry in time")
            .expect("stream open")
            .expect("entry");
        assert_eq!(entry.seq, expected, "gap or duplicate");
        expected += 1;
    }
    appends.await.expect("appends");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_round_trip_in_chunks() {
    let t = TestServer::start().await;
    let agent = key(10);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let hash = *blake3::hash(&data).as_bytes();
    let chunks: Vec<pb::ArtifactChunk> = data
        .chunks(100_000)
        .enumerate()
        .map(|(i, c)| pb::ArtifactChunk {
            blake3: if i == 0 { hash.to_vec() } else { Vec::new() },
            size: if i == 0 { data.len() as u64 } else { 0 },
            data: c.to_vec(),
        })
        .collect();
    let mut client = t.client().await;
    let stored = client
        .put_artifact(signed(
            tokio_stream::iter(chunks),
            &agent,
            method::PUT_ARTIFACT,
        ))
        .await
        .expect("put")
        .into_inner();
    assert_eq!(stored.blake3, hash.to_vec());
    assert_eq!(stored.size, data.len() as u64);
    let mut back = Vec::new();
    let mut stream = client
        .get_artifact(signed(
            pb::GetArtifactRequest {
                blake3: hash.to_vec(),
            },
            &agent,
            method::GET_ARTIFACT,
        ))
        .await
        .expect("get")
        .into_inner();
    while let Some(chunk) = stream.next().await {
        back.extend(chunk.expect("chunk").data);
    }
    assert_eq!(back, data);
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_answer_as_of_a_recorded_time() {
    let t = TestServer::start().await;
    let risk_owner = key(11);
    t.enroll(&risk_owner, "cto@example.com", &["risk_owner"])
        .await;
    let before = now_us();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut client = t.client().await;
    for (id, kind) in [
        (
            "risk-1",
            Kind::RiskIdentified(pb::RiskIdentified {
                risk_id: "RISK-001".into(),
                asset: "Customer database".into(),
                threat: "SQL injection".into(),
                vulnerability: "Input validation".into(),
                risk_owner: "CTO".into(),
            }),
        ),
        (
            "risk-1-assessed",
            Kind::RiskAssessed(pb::RiskAssessed {
                risk_id: "RISK-001".into(),
                likelihood: 3,
                impact: 4,
                inherent_risk: None,
            }),
        ),
    ] {
        client
            .append(sign(&risk_owner, &body(id, isms(kind))))
            .await
            .expect("append");
    }
    let after = now_us();
    let mut registers = t.registers().await;
    let ask = |as_of: Option<pb::as_of::Point>| pb::GetRegistersRequest {
        as_of: Some(pb::AsOf { point: as_of }),
        registers: vec!["risk_register".into()],
    };
    let latest = registers
        .get_registers(signed(ask(None), &risk_owner, reg::GET_REGISTERS))
        .await
        .expect("latest")
        .into_inner();
    let risks = &latest.tables[0];
    assert_eq!(risks.name, "risk_register");
    assert_eq!(risks.rows.len(), 1);
    assert_eq!(risks.rows[0].id, "RISK-001");
    let past = registers
        .get_registers(signed(
            ask(Some(pb::as_of::Point::RecordedAtUs(before))),
            &risk_owner,
            reg::GET_REGISTERS,
        ))
        .await
        .expect("as of before")
        .into_inner();
    assert!(past.tables[0].rows.is_empty(), "the risk did not exist yet");
    let diff = registers
        .diff(signed(
            pb::DiffRequest {
                from_us: before,
                to_us: after,
            },
            &risk_owner,
            reg::DIFF,
        ))
        .await
        .expect("diff")
        .into_inner();
    let risk_diff = diff
        .registers
        .iter()
        .find(|d| d.register == "risk_register")
        .expect("risk diff");
    assert_eq!(risk_diff.added.len(), 1);
    let readiness = registers
        .readiness(signed(
            pb::ReadinessRequest { as_of: None },
            &risk_owner,
            reg::READINESS,
        ))
        .await
        .expect("readiness")
        .into_inner();
    assert!(!readiness.items.is_empty());
    let unknown = registers
        .get_registers(signed(
            pb::GetRegistersRequest {
                as_of: None,
                registers: vec!["nope".into()],
            },
            &risk_owner,
            reg::GET_REGISTERS,
        ))
        .await
        .expect_err("unknown register");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_anonymous_reads_need_the_flag() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let t = TestServer::start_with(options(true)).await;
    let channel = Channel::from_shared(t.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    else {
        panic!("not a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "isms.ledger.v1.Ledger",
        "isms.ledger.v1.Registers",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&expected), "{names:?} lacks {expected}");
    }
    // This server was started with anonymous reads on.
    let entry = t
        .client()
        .await
        .get_entry(pb::GetEntryRequest {
            by: Some(pb::get_entry_request::By::Seq(0)),
        })
        .await
        .expect("anonymous read")
        .into_inner();
    assert_eq!(entry.seq, 0);
    t.server.shutdown().await.expect("shutdown");
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issue = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = issue("auditor-laptop", ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_authorizes_reads() {
    let pki = pki();
    let mut opts = options(false);
    opts.tls = Some(TlsFiles {
        cert_pem: pki.server_cert.clone().into_bytes(),
        key_pem: pki.server_key.clone().into_bytes(),
        client_ca_pem: Some(pki.ca.clone().into_bytes()),
    });
    let t = TestServer::start_with(opts).await;
    let url = format!("https://localhost:{}", t.server.addr.port());
    let connect = |identity: Option<Identity>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca))
            .domain_name("localhost");
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        let url = url.clone();
        async move {
            let channel = Channel::from_shared(url)
                .expect("url")
                .tls_config(tls)
                .expect("tls")
                .connect()
                .await
                .expect("connect over TLS");
            LedgerClient::new(channel)
        }
    };
    let seq0 = || pb::GetEntryRequest {
        by: Some(pb::get_entry_request::By::Seq(0)),
    };
    let mut with_cert = connect(Some(Identity::from_pem(&pki.client_cert, &pki.client_key))).await;
    with_cert
        .get_entry(seq0())
        .await
        .expect("a client certificate authorizes reads");
    let mut without = connect(None).await;
    let refused = without
        .get_entry(seq0())
        .await
        .expect_err("no certificate, no header");
    assert_eq!(refused.code(), Code::Unauthenticated);
    without
        .get_entry(signed(seq0(), &t.admin, method::GET_ENTRY))
        .await
        .expect("a signed header still works over TLS");
    // Writes need no certificate: the event signature is the identity.
    let agent = key(10);
    without
        .append(sign(
            &t.admin,
            &enroll_body("enroll-agent", &agent, "ci/scanner", &["agent"]),
        ))
        .await
        .expect("append over TLS without a client certificate");
    t.server.shutdown().await.expect("shutdown");
}
