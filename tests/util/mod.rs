//! Shared set-up for the end-to-end gRPC tests: a real ledger in a temp dir, a real tonic
//! server on 127.0.0.1 with an ephemeral port, real keys, and builders of signed events.
#![allow(dead_code)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use isms_cli::server::{self, RunningServer, ServeOptions};
use isms_proto::v1 as pb;
use isms_proto::v1::event_body::Payload;
use isms_proto::v1::isms_event::Kind;
use isms_proto::v1::ledger_client::LedgerClient;
use isms_proto::v1::registers_client::RegistersClient;
use ledger::{KeyGrant, KeyId, Ledger, LedgerConfig, LedgerId, SignedEvent, UnixMicros};
use prost::Message;
use tonic::transport::Channel;

pub const LEDGER_ID: LedgerId = LedgerId([7; 16]);

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn key_id(key: &SigningKey) -> KeyId {
    KeyId::of_public_key(key.verifying_key().as_bytes())
}

pub fn now_us() -> i64 {
    UnixMicros::now().0
}

/// A running server over a fresh ledger whose genesis admin is `admin`.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub ledger: Arc<Ledger>,
    pub server: RunningServer,
    pub admin: SigningKey,
    pub url: String,
}

pub fn options(allow_anonymous_reads: bool) -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        allow_anonymous_reads,
        tls: None,
        limits: isms_cli::server::limits::Limits::default(),
        metrics: None,
        http: None,
        witnessing: Default::default(),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(options(false)).await
    }

    pub async fn start_with(options: ServeOptions) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = key(2);
        let ledger = Ledger::create_with_id(
            dir.path().join(server::STORE_DIR),
            LEDGER_ID,
            "Example Ltd",
            key(1),
            vec![KeyGrant {
                public_key: admin.verifying_key().to_bytes(),
                subject: "ciso@example.com".into(),
                roles: vec!["admin".into(), "management".into()],
            }],
            LedgerConfig::default(),
        )
        .expect("create ledger");
        let ledger = Arc::new(ledger);
        let tls = options.tls.is_some();
        let server = server::start(ledger.clone(), options)
            .await
            .expect("start server");
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", server.addr);
        TestServer {
            dir,
            ledger,
            server,
            admin,
            url,
        }
    }

    pub async fn client(&self) -> LedgerClient<Channel> {
        LedgerClient::connect(self.url.clone())
            .await
            .expect("connect")
            .max_decoding_message_size(16 * 1024 * 1024)
            .max_encoding_message_size(16 * 1024 * 1024)
    }

    pub async fn registers(&self) -> RegistersClient<Channel> {
        RegistersClient::connect(self.url.clone())
            .await
            .expect("connect")
    }

    /// An EventBody for this ledger, effective now.
    pub fn body(&self, event_id: &str, payload: Payload) -> pb::EventBody {
        body(event_id, payload)
    }

    /// A Subscribe stream from `from_seq`, read with the admin's key.
    pub async fn subscribe_from(
        &self,
        from_seq: u64,
    ) -> Result<tonic::Response<tonic::Streaming<pb::Entry>>, tonic::Status> {
        self.client()
            .await
            .subscribe(signed(
                pb::SubscribeRequest { from_seq },
                &self.admin,
                isms_cli::server::ledger_service::method::SUBSCRIBE,
            ))
            .await
    }

    /// Enrols `new` with `roles`, signed by the admin, and waits for the receipt.
    pub async fn enroll(&self, new: &SigningKey, subject: &str, roles: &[&str]) -> pb::Receipt {
        let body = enroll_body(&format!("enroll-{subject}"), new, subject, roles);
        self.client()
            .await
            .append(sign(&self.admin, &body))
            .await
            .expect("enrol")
            .into_inner()
    }
}

pub fn body(event_id: &str, payload: Payload) -> pb::EventBody {
    let now = now_us();
    pb::EventBody {
        ledger_id: LEDGER_ID.0.to_vec(),
        event_id: event_id.into(),
        effective_at_us: now,
        client_time_us: now,
        expected_version: None,
        artifacts: Vec::new(),
        payload: Some(payload),
    }
}

pub fn isms(kind: Kind) -> Payload {
    Payload::Isms(pb::IsmsEvent { kind: Some(kind) })
}

pub fn enroll_body(
    event_id: &str,
    new: &SigningKey,
    subject: &str,
    roles: &[&str],
) -> pb::EventBody {
    body(
        event_id,
        Payload::KeyEnrolled(pb::KeyEnrolled {
            public_key: new.verifying_key().to_bytes().to_vec(),
            subject: subject.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }),
    )
}

pub fn revoke_body(event_id: &str, old: &SigningKey) -> pb::EventBody {
    body(
        event_id,
        Payload::KeyRevoked(pb::KeyRevoked {
            key_id: key_id(old).0.to_vec(),
            reason: "left".into(),
        }),
    )
}

/// An evidence submission for control A.8.8, as a scanner would send it.
pub fn evidence_body(event_id: &str) -> pb::EventBody {
    body(
        event_id,
        isms(Kind::EvidenceSubmitted(pb::EvidenceSubmitted {
            evidence_id: event_id.into(),
            controls: vec!["A.8.8".into()],
            artifact_blake3: Vec::new(),
            result: pb::CheckResult::Pass as i32,
            collected_at_us: now_us(),
            summary: "weekly vulnerability scan".into(),
        })),
    )
}

/// Signs raw body bytes.
pub fn sign_bytes(key: &SigningKey, bytes: Vec<u8>) -> pb::AppendRequest {
    let signed = SignedEvent::sign(key, bytes);
    pb::AppendRequest {
        body: signed.body,
        key_id: signed.key_id.0.to_vec(),
        signature: signed.signature.to_vec(),
    }
}

pub fn sign(key: &SigningKey, body: &pb::EventBody) -> pb::AppendRequest {
    sign_bytes(key, body.encode_to_vec())
}

/// A request carrying a fresh signed read header for `method`.
pub fn signed<T>(message: T, key: &SigningKey, method: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    isms_cli::sign_read(request.metadata_mut(), key, method, now_us());
    request
}

/// A ledger history in its own temp dir: the genesis (ledger key `key(1)`, id [`LEDGER_ID`],
/// admin `key(admin_seed)`) and one evidence entry per batch, so a checkpoint exists at every
/// size. Two histories with different admins share origin and ledger key but differ from
/// entry 0 on: a split view.
pub struct History {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
}

impl History {
    /// A history of `size` entries signed with the ledger key `key(ledger_key_seed)`.
    pub fn new(ledger_key_seed: u8, admin_seed: u8, size: u64) -> History {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = key(admin_seed);
        let ledger = Ledger::create_with_id(
            dir.path().join("store"),
            LEDGER_ID,
            "Example Ltd",
            key(ledger_key_seed),
            vec![KeyGrant {
                public_key: admin.verifying_key().to_bytes(),
                subject: format!("admin-{admin_seed}@example.com"),
                roles: vec!["admin".into()],
            }],
            LedgerConfig::default(),
        )
        .expect("create ledger");
        for i in 1..size {
            let body = evidence_body(&format!("ev-{admin_seed}-{i}")).encode_to_vec();
            let appended = ledger.append(vec![SignedEvent::sign(&admin, body)]);
            appended[0].as_ref().expect("append");
        }
        assert_eq!(ledger.head().size, size.max(1));
        History { dir, ledger }
    }

    /// The ledger's verifier key string (what a witness is configured with).
    pub fn vkey(&self) -> String {
        ledger::checkpoint::verifier_key(self.ledger.origin(), &self.ledger.public_key())
    }

    /// The signed checkpoint note of exactly `size` entries.
    pub fn note(&self, size: u64) -> String {
        self.ledger
            .checkpoint_at(size)
            .expect("read checkpoint")
            .unwrap_or_else(|| panic!("no checkpoint of size {size}"))
            .note
    }

    /// The root of the tree of `size` entries.
    pub fn root(&self, size: u64) -> [u8; 32] {
        self.ledger.root_at(size).expect("root")
    }

    /// The consistency proof from `old` to `new` entries.
    pub fn proof(&self, old: u64, new: u64) -> Vec<[u8; 32]> {
        self.ledger.consistency_proof(old, new).expect("proof")
    }
}
