//! One `isms serve` hosting many ledgers: each request reaches the ledger its `x-isms-ledger`
//! metadata names, and a key of one ledger can neither write to nor read another. A real
//! gRPC server on 127.0.0.1 over real sled stores, real keys and signatures.

mod cli_util;
mod util;

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use isms_cli::server::ledger_service::method;
use isms_cli::server::{self, RunningServer, LEDGER_HEADER};
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_client::LedgerClient;
use ledger::{KeyGrant, Ledger, LedgerConfig, LedgerId};
use prost::Message as _;
use tonic::transport::Channel;

/// A hosted ledger: its name on the server, id and admin key.
struct Tenant {
    name: String,
    id: LedgerId,
    admin: SigningKey,
}

/// A server hosting `n` fresh ledgers named `org-000`, `org-001`, ...
struct Hosting {
    _dirs: Vec<tempfile::TempDir>,
    tenants: Vec<Tenant>,
    server: RunningServer,
    url: String,
}

async fn host(n: usize) -> Hosting {
    let mut dirs = Vec::new();
    let mut tenants = Vec::new();
    let mut ledgers = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().expect("temp dir");
        let id = LedgerId([i as u8 + 1; 16]);
        let admin = SigningKey::from_bytes(&[i as u8 + 1; 32]);
        let ledger = Ledger::create_with_id(
            dir.path().join("store"),
            id,
            &format!("Organisation {i}"),
            SigningKey::from_bytes(&[255 - i as u8; 32]),
            vec![KeyGrant {
                public_key: admin.verifying_key().to_bytes(),
                subject: format!("admin@org{i}.example"),
                roles: vec!["admin".into()],
            }],
            LedgerConfig::default(),
        )
        .expect("create ledger");
        let name = format!("org-{i:03}");
        ledgers.push((name.clone(), Arc::new(ledger)));
        tenants.push(Tenant { name, id, admin });
        dirs.push(dir);
    }
    let server = server::start_many(ledgers, util::options(false))
        .await
        .expect("start the server");
    let url = format!("http://{}", server.addr);
    Hosting {
        _dirs: dirs,
        tenants,
        server,
        url,
    }
}

/// A request for the ledger named `ledger`.
fn to<T>(mut request: tonic::Request<T>, ledger: &str) -> tonic::Request<T> {
    request
        .metadata_mut()
        .insert(LEDGER_HEADER, ledger.parse().expect("ASCII name"));
    request
}

/// A key enrolment for ledger `id`, signed by `signer`.
fn enrolment(id: LedgerId, signer: &SigningKey, event_id: &str) -> pb::AppendRequest {
    // Neither an admin key (seeds 1..=100) nor a ledger key (156..=255).
    let new = SigningKey::from_bytes(&[150; 32]);
    let mut body = util::enroll_body(event_id, &new, "scanner", &["agent"]);
    body.ledger_id = id.0.to_vec();
    util::sign(signer, &body)
}

async fn client(url: &str) -> LedgerClient<Channel> {
    LedgerClient::connect(url.to_string())
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_server_hosting_a_hundred_ledgers_writes_each_event_to_the_ledger_it_names() {
    let hosting = host(100).await;
    let mut client = client(&hosting.url).await;
    for tenant in &hosting.tenants {
        let receipt = client
            .append(to(
                tonic::Request::new(enrolment(tenant.id, &tenant.admin, &tenant.name)),
                &tenant.name,
            ))
            .await
            .unwrap_or_else(|e| panic!("append to {}: {e}", tenant.name))
            .into_inner();
        assert_eq!(
            receipt.seq, 1,
            "{}: the first event after the genesis",
            tenant.name
        );
    }
    for tenant in &hosting.tenants {
        let entry = client
            .get_entry(to(
                util::signed(
                    pb::GetEntryRequest {
                        by: Some(pb::get_entry_request::By::Seq(1)),
                    },
                    &tenant.admin,
                    method::GET_ENTRY,
                ),
                &tenant.name,
            ))
            .await
            .unwrap_or_else(|e| panic!("read {}: {e}", tenant.name))
            .into_inner();
        let body = pb::EventBody::decode(entry.body.as_slice()).expect("body");
        assert_eq!(
            body.event_id, tenant.name,
            "{} holds its own event",
            tenant.name
        );
    }
    hosting.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_key_of_one_hosted_ledger_cannot_write_to_another() {
    let hosting = host(2).await;
    let (a, b) = (&hosting.tenants[0], &hosting.tenants[1]);
    let mut client = client(&hosting.url).await;
    // A's admin signs an event for B's ledger and sends it to B: B does not know the key.
    let refused = client
        .append(to(
            tonic::Request::new(enrolment(b.id, &a.admin, "intruder")),
            &b.name,
        ))
        .await
        .expect_err("B refuses a key it never enrolled");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // A's own event, sent to B, names A's ledger id: refused too.
    let refused = client
        .append(to(
            tonic::Request::new(enrolment(a.id, &a.admin, "misrouted")),
            &b.name,
        ))
        .await
        .expect_err("B refuses an event for another ledger");
    assert!(
        refused.message().contains("ledger_id"),
        "the refusal names the field: {refused:?}"
    );
    let head = client
        .get_status(to(
            util::signed(pb::GetStatusRequest {}, &b.admin, method::GET_STATUS),
            &b.name,
        ))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(head.size, 1, "B holds only its genesis");
}

#[tokio::test]
async fn a_key_of_one_hosted_ledger_cannot_read_another() {
    let hosting = host(2).await;
    let (a, b) = (&hosting.tenants[0], &hosting.tenants[1]);
    let refused = client(&hosting.url)
        .await
        .get_entry(to(
            util::signed(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                &a.admin,
                method::GET_ENTRY,
            ),
            &b.name,
        ))
        .await
        .expect_err("B refuses a reader it never enrolled");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
}

#[tokio::test]
async fn a_request_naming_no_ledger_is_refused_when_several_are_hosted() {
    let hosting = host(2).await;
    let a = &hosting.tenants[0];
    let refused = client(&hosting.url)
        .await
        .get_entry(util::signed(
            pb::GetEntryRequest {
                by: Some(pb::get_entry_request::By::Seq(0)),
            },
            &a.admin,
            method::GET_ENTRY,
        ))
        .await
        .expect_err("no ledger named");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains(LEDGER_HEADER), "{refused:?}");
}

#[tokio::test]
async fn a_request_naming_an_unknown_ledger_is_not_found() {
    let hosting = host(2).await;
    let a = &hosting.tenants[0];
    let refused = client(&hosting.url)
        .await
        .get_entry(to(
            util::signed(
                pb::GetEntryRequest {
                    by: Some(pb::get_entry_request::By::Seq(0)),
                },
                &a.admin,
                method::GET_ENTRY,
            ),
            "org-999",
        ))
        .await
        .expect_err("no such ledger");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert!(refused.message().contains("org-999"), "{refused:?}");
}

#[test]
fn isms_serve_ledgers_hosts_every_data_folder_under_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let mut ids: Vec<(&str, String)> = Vec::new();
    for name in ["acme", "globex"] {
        let out = cli_util::ok(
            d,
            &["init", "--data", &format!("orgs/{name}"), "--name", name],
        );
        // "ledger <id> created in ..."
        let id = out
            .split_whitespace()
            .nth(1)
            .expect("the ledger id")
            .to_string();
        ids.push((name, id));
    }
    let server = cli_util::Server::spawn(
        d,
        &["serve", "--ledgers", "orgs", "--listen", "127.0.0.1:0"],
        "isms: serving on ",
    );
    for &(name, ref id) in &ids {
        let out = cli_util::ok(
            d,
            &[
                "status",
                "--server",
                &server.url,
                "--key",
                &format!("orgs/{name}/admin.key"),
                "--ledger",
                name,
            ],
        );
        assert!(
            out.contains(&format!("isms-ledger/{id}")),
            "status asked of {name} is {name}'s ledger {id}: {out}"
        );
    }
    let other = cli_util::run(
        d,
        &[
            "status",
            "--server",
            &server.url,
            "--key",
            "orgs/acme/admin.key",
            "--ledger",
            "globex",
        ],
    );
    assert_ne!(other.code, 0, "acme's key reads globex: {}", other.stdout);
}
