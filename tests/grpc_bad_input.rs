//! Bad input against the real server: every refusal gets the status DESIGN.md gives and a
//! message naming the field or rule; the ledger's head and root do not move; the server keeps
//! serving.

mod util;

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use isms_cli::server::ledger_service::method;
use isms_proto::v1 as pb;
use isms_proto::v1::event_body::Payload;
use isms_proto::v1::isms_event::Kind;
use tonic::Code;
use util::*;

enum Auth {
    Anonymous,
    Key(SigningKey),
    /// Signed at this offset from now (microseconds).
    Skewed(SigningKey, i64),
    /// Signed for another method than the one called.
    ForMethod(SigningKey, &'static str),
}

enum Op {
    Append(pb::AppendRequest),
    Stream(pb::AppendRequest),
    GetEntry(pb::GetEntryRequest, Auth),
    Registers(Auth),
    Inclusion(pb::GetInclusionProofRequest),
    Consistency(pb::GetConsistencyProofRequest),
    PutArtifact {
        data: Vec<u8>,
        claimed: [u8; 32],
        auth: Auth,
    },
    GetArtifact([u8; 32]),
    /// The same signed read header sent twice; the second must be refused.
    Replay(SigningKey),
}

fn with_auth<T>(message: T, auth: &Auth, method: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let md = request.metadata_mut();
    match auth {
        Auth::Anonymous => {}
        Auth::Key(k) => isms_cli::sign_read(md, k, method, now_us()),
        Auth::Skewed(k, off) => isms_cli::sign_read(md, k, method, now_us() + off),
        Auth::ForMethod(k, other) => isms_cli::sign_read(md, k, other, now_us()),
    }
    request
}

async fn run(t: &TestServer, reader: &SigningKey, op: Op) -> Result<(), tonic::Status> {
    let mut client = t.client().await;
    match op {
        Op::Append(r) => client.append(r).await.map(|_| ()),
        Op::Stream(r) => {
            let mut results = client
                .append_stream(tokio_stream::iter(vec![r]))
                .await?
                .into_inner();
            let first = results.next().await.expect("one result")?;
            assert!(results.next().await.is_none(), "exactly one result");
            match first.result.expect("a result") {
                pb::append_result::Result::Receipt(_) => Ok(()),
                pb::append_result::Result::Error(e) => {
                    Err(tonic::Status::new(Code::from(e.code), e.message))
                }
            }
        }
        Op::GetEntry(r, auth) => client
            .get_entry(with_auth(r, &auth, method::GET_ENTRY))
            .await
            .map(|_| ()),
        Op::Registers(auth) => t
            .registers()
            .await
            .get_registers(with_auth(
                pb::GetRegistersRequest::default(),
                &auth,
                isms_cli::server::registers_service::method::GET_REGISTERS,
            ))
            .await
            .map(|_| ()),
        Op::Inclusion(r) => client
            .get_inclusion_proof(signed(r, reader, method::GET_INCLUSION_PROOF))
            .await
            .map(|_| ()),
        Op::Consistency(r) => client
            .get_consistency_proof(signed(r, reader, method::GET_CONSISTENCY_PROOF))
            .await
            .map(|_| ()),
        Op::PutArtifact {
            data,
            claimed,
            auth,
        } => {
            let chunks = vec![
                pb::ArtifactChunk {
                    blake3: claimed.to_vec(),
                    size: data.len() as u64,
                    data: data[..data.len() / 2].to_vec(),
                },
                pb::ArtifactChunk {
                    blake3: Vec::new(),
                    size: 0,
                    data: data[data.len() / 2..].to_vec(),
                },
            ];
            client
                .put_artifact(with_auth(
                    tokio_stream::iter(chunks),
                    &auth,
                    method::PUT_ARTIFACT,
                ))
                .await
                .map(|_| ())
        }
        Op::GetArtifact(hash) => client
            .get_artifact(signed(
                pb::GetArtifactRequest {
                    blake3: hash.to_vec(),
                },
                reader,
                method::GET_ARTIFACT,
            ))
            .await
            .map(|_| ()),
        Op::Replay(k) => {
            let first = signed(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                &k,
                method::GET_ENTRY,
            );
            let headers = first.metadata().clone();
            client
                .get_entry(first)
                .await
                .expect("the first use is accepted");
            let mut again = tonic::Request::new(pb::GetEntryRequest {
                by: Some(pb::get_entry_request::By::Seq(0)),
            });
            *again.metadata_mut() = headers;
            client.get_entry(again).await.map(|_| ())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let t = TestServer::start().await;
    let agent = key(10);
    let risk_owner = key(11);
    let auditor = key(12);
    let control_owner = key(13);
    let reader = key(14);
    let old = key(15);
    let stranger = key(99);
    t.enroll(&agent, "ci/scanner", &["agent"]).await;
    t.enroll(&risk_owner, "cto@example.com", &["risk_owner"])
        .await;
    t.enroll(&auditor, "auditor@example.com", &["auditor"])
        .await;
    t.enroll(&control_owner, "ops@example.com", &["control_owner"])
        .await;
    t.enroll(&reader, "reader@example.com", &["reader"]).await;
    t.enroll(&old, "old@example.com", &["agent"]).await;
    let mut client = t.client().await;
    let ok = |r: Result<tonic::Response<pb::Receipt>, tonic::Status>| {
        r.expect("set-up event accepted");
    };
    ok(client
        .append(sign(&t.admin, &revoke_body("revoke-old", &old)))
        .await);
    let risk = |id: &str, l: u32, i: u32| {
        isms(Kind::RiskAssessed(pb::RiskAssessed {
            risk_id: id.into(),
            likelihood: l,
            impact: i,
            inherent_risk: None,
        }))
    };
    let identified = isms(Kind::RiskIdentified(pb::RiskIdentified {
        risk_id: "RISK-001".into(),
        asset: "Customer database".into(),
        threat: "SQL injection".into(),
        vulnerability: "Input validation".into(),
        risk_owner: "CTO".into(),
    }));
    ok(client
        .append(sign(&risk_owner, &body("risk-1", identified.clone())))
        .await);
    ok(client
        .append(sign(
            &risk_owner,
            &body("risk-1-assessed", risk("RISK-001", 3, 4)),
        ))
        .await);
    let now = now_us();
    ok(client
        .append(sign(
            &auditor,
            &body(
                "audit-1",
                isms(Kind::AuditPlanned(pb::AuditPlanned {
                    audit_id: "IA-2025-Q1".into(),
                    scope: "ISMS".into(),
                    auditor: "auditor@example.com".into(),
                    start_us: now,
                    end_us: now + 86_400_000_000,
                    areas: Vec::new(),
                })),
            ),
        ))
        .await);
    ok(client.append(sign(&agent, &evidence_body("ev-1"))).await);

    let with = |f: &dyn Fn(&mut pb::EventBody)| {
        let mut b = evidence_body("ev-new");
        f(&mut b);
        b
    };
    let mut bad_signature = sign(&agent, &evidence_body("ev-badsig"));
    bad_signature.signature[0] ^= 1;
    let mut duplicate = evidence_body("ev-1");
    duplicate.client_time_us += 1;
    let finding_on_own_area = isms(Kind::FindingRaised(pb::FindingRaised {
        finding_id: "F-1".into(),
        audit_id: "IA-2025-Q1".into(),
        grade: pb::FindingGrade::MinorNonconformity as i32,
        area: "Internal audit".into(),
        description: "Audit programme not documented".into(),
        controls: vec!["A.5.35".into()],
        auditee: "auditor@example.com".into(),
    }));
    let evidence_for = |controls: &[&str], collected: i64| {
        isms(Kind::EvidenceSubmitted(pb::EvidenceSubmitted {
            evidence_id: "ev-x".into(),
            controls: controls.iter().map(|c| c.to_string()).collect(),
            artifact_blake3: Vec::new(),
            result: pb::CheckResult::Pass as i32,
            collected_at_us: collected,
            summary: "scan".into(),
        }))
    };
    let artifact = b"a scan report".to_vec();
    let artifact_hash = *blake3::hash(&artifact).as_bytes();
    let mut other_hash = artifact_hash;
    other_hash[0] ^= 1;
    let future = now_us() + 86_400_000_000;

    let cases: Vec<(&str, Op, Code, &str)> = vec![
        (
            "malformed protobuf body",
            Op::Append(sign_bytes(&agent, vec![0xff, 0xff, 0xff, 0xff])),
            Code::InvalidArgument,
            "body",
        ),
        (
            "wrong ledger id",
            Op::Append(sign(&agent, &with(&|b| b.ledger_id = vec![9; 16]))),
            Code::InvalidArgument,
            "ledger_id",
        ),
        (
            "bad signature",
            Op::Append(bad_signature),
            Code::Unauthenticated,
            "signature",
        ),
        (
            "unknown key",
            Op::Append(sign(&stranger, &evidence_body("ev-stranger"))),
            Code::Unauthenticated,
            "not enrolled",
        ),
        (
            "revoked key",
            Op::Append(sign(&old, &evidence_body("ev-old"))),
            Code::Unauthenticated,
            "revoked",
        ),
        (
            "wrong role (agent identifies a risk)",
            Op::Append(sign(
                &agent,
                &body(
                    "risk-2",
                    isms(Kind::RiskIdentified(pb::RiskIdentified {
                        risk_id: "RISK-002".into(),
                        asset: "a".into(),
                        threat: "t".into(),
                        vulnerability: "v".into(),
                        risk_owner: "o".into(),
                    })),
                ),
            )),
            Code::PermissionDenied,
            "role",
        ),
        (
            "reader submits evidence",
            Op::Append(sign(&reader, &evidence_body("ev-reader"))),
            Code::PermissionDenied,
            "role",
        ),
        (
            "non-admin enrols a key",
            Op::Append(sign(
                &agent,
                &enroll_body("enroll-x", &stranger, "x", &["agent"]),
            )),
            Code::PermissionDenied,
            "admin",
        ),
        (
            "duty conflict (auditor audits own area)",
            Op::Append(sign(&auditor, &body("finding-1", finding_on_own_area))),
            Code::PermissionDenied,
            "separation of duties",
        ),
        (
            "duplicate id, different bytes",
            Op::Append(sign(&agent, &duplicate)),
            Code::AlreadyExists,
            "event_id",
        ),
        (
            "score out of range",
            Op::Append(sign(
                &risk_owner,
                &body("risk-1-bad", risk("RISK-001", 6, 4)),
            )),
            Code::InvalidArgument,
            "likelihood",
        ),
        (
            "unknown control",
            Op::Append(sign(
                &agent,
                &body("ev-ctl", evidence_for(&["A.99.1"], now_us())),
            )),
            Code::InvalidArgument,
            "A.99.1",
        ),
        (
            "2013-style control id",
            Op::Append(sign(
                &agent,
                &body("ev-2013", evidence_for(&["A.12.6.1"], now_us())),
            )),
            Code::InvalidArgument,
            "A.12.6.1",
        ),
        (
            "invalid transition (identify twice)",
            Op::Append(sign(&risk_owner, &body("risk-1-again", identified.clone()))),
            Code::FailedPrecondition,
            "risk_identified.risk_id",
        ),
        (
            "invalid transition (close unknown action)",
            Op::Append(sign(
                &control_owner,
                &body(
                    "ca-close",
                    isms(Kind::CorrectiveActionClosed(pb::CorrectiveActionClosed {
                        action_id: "CA-404".into(),
                        resolution: "done".into(),
                    })),
                ),
            )),
            Code::FailedPrecondition,
            "CA-404",
        ),
        (
            "expected version mismatch",
            Op::Append(sign(&risk_owner, &{
                let mut b = body("risk-1-v", risk("RISK-001", 2, 2));
                b.expected_version = Some(99);
                b
            })),
            Code::FailedPrecondition,
            "expected_version",
        ),
        (
            "effective time far in the future",
            Op::Append(sign(&agent, &with(&|b| b.effective_at_us = future))),
            Code::InvalidArgument,
            "effective_at_us",
        ),
        (
            "evidence collected in the future",
            Op::Append(sign(
                &agent,
                &body("ev-fut", evidence_for(&["A.8.8"], future)),
            )),
            Code::InvalidArgument,
            "collected_at_us",
        ),
        (
            "oversized body",
            Op::Append(sign(
                &agent,
                &body(
                    "ev-big",
                    isms(Kind::EvidenceSubmitted(pb::EvidenceSubmitted {
                        evidence_id: "ev-big".into(),
                        controls: vec!["A.8.8".into()],
                        artifact_blake3: Vec::new(),
                        result: 1,
                        collected_at_us: now_us(),
                        summary: "x".repeat(70_000),
                    })),
                ),
            )),
            Code::InvalidArgument,
            "larger than the limit",
        ),
        (
            "key id of the wrong length",
            Op::Append(pb::AppendRequest {
                key_id: vec![1; 5],
                ..sign(&agent, &evidence_body("ev-kid"))
            }),
            Code::InvalidArgument,
            "key_id",
        ),
        (
            "signature of the wrong length",
            Op::Append(pb::AppendRequest {
                signature: vec![1; 10],
                ..sign(&agent, &evidence_body("ev-sig"))
            }),
            Code::InvalidArgument,
            "signature",
        ),
        (
            "empty event id",
            Op::Append(sign(&agent, &with(&|b| b.event_id.clear()))),
            Code::InvalidArgument,
            "event_id",
        ),
        (
            "event id too long",
            Op::Append(sign(&agent, &with(&|b| b.event_id = "e".repeat(200)))),
            Code::InvalidArgument,
            "event_id",
        ),
        (
            "no payload",
            Op::Append(sign(&agent, &with(&|b| b.payload = None))),
            Code::InvalidArgument,
            "payload",
        ),
        (
            "a second genesis",
            Op::Append(sign(
                &t.admin,
                &with(&|b| {
                    b.payload = Some(Payload::Genesis(pb::Genesis {
                        origin: "x".into(),
                        ledger_public_key: t.admin.verifying_key().to_bytes().to_vec(),
                        admins: vec![pb::KeyEnrolled {
                            public_key: t.admin.verifying_key().to_bytes().to_vec(),
                            subject: "a".into(),
                            roles: vec!["admin".into()],
                        }],
                        name: "x".into(),
                    }))
                }),
            )),
            Code::InvalidArgument,
            "genesis",
        ),
        (
            "enrol with an unknown role",
            Op::Append(sign(
                &t.admin,
                &enroll_body("enroll-y", &stranger, "y", &["superuser"]),
            )),
            Code::InvalidArgument,
            "unknown role",
        ),
        (
            "revoke a key never enrolled",
            Op::Append(sign(&t.admin, &revoke_body("revoke-x", &stranger))),
            Code::InvalidArgument,
            "key_revoked.key_id",
        ),
        (
            "excluded control without justification",
            Op::Append(sign(
                &control_owner,
                &body(
                    "soa-1",
                    isms(Kind::ControlApplicabilitySet(pb::ControlApplicabilitySet {
                        control_id: "A.5.1".into(),
                        applicable: false,
                        ..Default::default()
                    })),
                ),
            )),
            Code::InvalidArgument,
            "justification",
        ),
        (
            "risk accepted without management",
            Op::Append(sign(
                &risk_owner,
                &body(
                    "accept-1",
                    isms(Kind::RiskAccepted(pb::RiskAccepted {
                        risk_id: "RISK-001".into(),
                        justification: "cheap".into(),
                    })),
                ),
            )),
            Code::PermissionDenied,
            "management",
        ),
        (
            "unknown treatment value",
            Op::Append(sign(
                &risk_owner,
                &body(
                    "treat-1",
                    isms(Kind::RiskTreatmentDecided(pb::RiskTreatmentDecided {
                        risk_id: "RISK-001".into(),
                        treatment: 99,
                        controls: vec!["A.8.8".into()],
                        plan: "p".into(),
                    })),
                ),
            )),
            Code::InvalidArgument,
            "treatment",
        ),
        (
            "unknown key via AppendStream",
            Op::Stream(sign(&stranger, &evidence_body("ev-stream"))),
            Code::Unauthenticated,
            "not enrolled",
        ),
        (
            "wrong role via AppendStream",
            Op::Stream(sign(&reader, &evidence_body("ev-stream-2"))),
            Code::PermissionDenied,
            "role",
        ),
        (
            "artifact hash mismatch",
            Op::PutArtifact {
                data: artifact.clone(),
                claimed: other_hash,
                auth: Auth::Key(reader.clone()),
            },
            Code::InvalidArgument,
            "blake3",
        ),
        (
            "artifact upload without identity",
            Op::PutArtifact {
                data: artifact.clone(),
                claimed: artifact_hash,
                auth: Auth::Anonymous,
            },
            Code::Unauthenticated,
            "x-isms-key-id",
        ),
        (
            "unknown artifact",
            Op::GetArtifact(other_hash),
            Code::NotFound,
            "blake3",
        ),
        (
            "unauthenticated read",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                Auth::Anonymous,
            ),
            Code::Unauthenticated,
            "x-isms-key-id",
        ),
        (
            "unauthenticated register read",
            Op::Registers(Auth::Anonymous),
            Code::Unauthenticated,
            "x-isms-key-id",
        ),
        (
            "replayed read header",
            Op::Replay(reader.clone()),
            Code::Unauthenticated,
            "already used",
        ),
        (
            "stale read header",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                Auth::Skewed(reader.clone(), -120_000_000),
            ),
            Code::Unauthenticated,
            "x-isms-time",
        ),
        (
            "read header signed for another method",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                Auth::ForMethod(reader.clone(), method::SUBSCRIBE),
            ),
            Code::Unauthenticated,
            "x-isms-signature",
        ),
        (
            "read by an unknown key",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                Auth::Key(stranger.clone()),
            ),
            Code::Unauthenticated,
            "not enrolled",
        ),
        (
            "read by a revoked key",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                Auth::Key(old.clone()),
            ),
            Code::Unauthenticated,
            "revoked",
        ),
        (
            "entry beyond the head",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(1_000_000)),
                },
                Auth::Key(reader.clone()),
            ),
            Code::NotFound,
            "seq",
        ),
        (
            "entry by unknown event id",
            Op::GetEntry(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::EventId("nope".into())),
                },
                Auth::Key(reader.clone()),
            ),
            Code::NotFound,
            "event_id",
        ),
        (
            "inclusion proof beyond the tree",
            Op::Inclusion(pb::GetInclusionProofRequest {
                seq: 1,
                tree_size: 1_000_000,
            }),
            Code::InvalidArgument,
            "tree size",
        ),
        (
            "consistency proof backwards",
            Op::Consistency(pb::GetConsistencyProofRequest {
                old_size: 5,
                new_size: 2,
            }),
            Code::InvalidArgument,
            "old size",
        ),
    ];
    assert!(cases.len() >= 30);

    let head = t.ledger.head();
    let mut failures = Vec::new();
    for (name, op, code, needle) in cases {
        match run(&t, &reader, op).await {
            Ok(()) => failures.push(format!("{name}: accepted, expected {code:?}")),
            Err(status) => {
                if status.code() != code || !status.message().contains(needle) {
                    failures.push(format!(
                        "{name}: got {:?} {:?}, expected {code:?} containing {needle:?}",
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
        assert_eq!(t.ledger.head(), head, "{name}: the head moved");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Still serving: healthy, and a good event goes through.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Channel::from_shared(t.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect"),
    );
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "isms.ledger.v1.Ledger".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let receipt = client
        .append(sign(&agent, &evidence_body("ev-after")))
        .await
        .expect("a good event after the bad ones")
        .into_inner();
    assert_eq!(receipt.seq, head.size);
    t.server.shutdown().await.expect("shutdown");
}
