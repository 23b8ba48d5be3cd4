//! What standard gRPC clients and careless or hostile callers get from a real server:
//! reflection in both versions, `INVALID_ARGUMENT` for bytes that are not protobuf,
//! checkpoint listings read by range, and register questions about times the ledger cannot
//! answer for refused instead of answered for another date.

mod util;

use futures_util::StreamExt;
use isms_cli::server::ledger_service::method;
use isms_cli::server::registers_service::method as reg;
use isms_proto::codec::IsmsCodec;
use isms_proto::v1 as pb;
use tonic::transport::Channel;
use tonic::Code;
use util::*;

/// Appends `n` evidence events one at a time, so the ledger holds one checkpoint per event.
async fn append_one_by_one(t: &TestServer, n: usize) {
    let agent = key(30);
    t.enroll(&agent, "scanner", &["agent"]).await;
    let mut client = t.client().await;
    for i in 0..n {
        client
            .append(sign(&agent, &evidence_body(&format!("ev-{i}"))))
            .await
            .expect("append");
    }
}

async fn channel(t: &TestServer) -> Channel {
    Channel::from_shared(t.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_the_services_for_older_clients() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let t = TestServer::start().await;
    let mut reflection = ServerReflectionClient::new(channel(&t).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let answer = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection is served")
        .into_inner()
        .next()
        .await
        .expect("an answer")
        .expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"isms.ledger.v1.Ledger"), "{names:?}");
    t.server.shutdown().await.expect("shutdown");
}

/// A message whose field 1 is a fixed64 where `AppendRequest.body` is bytes: valid protobuf
/// framing, but not an `AppendRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAnAppendRequest {
    #[prost(fixed64, tag = "1")]
    body: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_request_is_invalid_argument_naming_the_message() {
    let t = TestServer::start().await;
    let head = t.ledger.head();
    let mut grpc = tonic::client::Grpc::new(channel(&t).await);
    grpc.ready().await.expect("ready");
    let refused = grpc
        .unary::<NotAnAppendRequest, pb::Receipt, _>(
            tonic::Request::new(NotAnAppendRequest { body: 7 }),
            "/isms.ledger.v1.Ledger/Append".parse().expect("path"),
            IsmsCodec::default(),
        )
        .await
        .expect_err("not an AppendRequest");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("AppendRequest"),
        "{}",
        refused.message()
    );
    assert_eq!(t.ledger.head(), head, "nothing was stored");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_checkpoints_sends_only_the_sizes_asked_for() {
    let t = TestServer::start().await;
    append_one_by_one(&t, 5).await;
    let sizes: Vec<u64> = t
        .client()
        .await
        .list_checkpoints(signed(
            pb::ListCheckpointsRequest {
                from_size: 3,
                to_size: 5,
            },
            &t.admin,
            method::LIST_CHECKPOINTS,
        ))
        .await
        .expect("list")
        .into_inner()
        .map(|c| c.expect("checkpoint").size)
        .collect()
        .await;
    assert_eq!(sizes, vec![3, 4, 5]);
    t.server.shutdown().await.expect("shutdown");
}

async fn risks_as_of(
    t: &TestServer,
    recorded_at_us: i64,
) -> Result<pb::RegistersResponse, tonic::Status> {
    t.registers()
        .await
        .get_registers(signed(
            pb::GetRegistersRequest {
                as_of: Some(pb::AsOf {
                    point: Some(pb::as_of::Point::RecordedAtUs(recorded_at_us)),
                }),
                registers: vec!["risk_register".into()],
            },
            &t.admin,
            reg::GET_REGISTERS,
        ))
        .await
        .map(|r| r.into_inner())
}

const DAY_US: i64 = 86_400_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_as_of_a_future_date_is_refused_not_answered_with_today() {
    let t = TestServer::start().await;
    let refused = risks_as_of(&t, now_us() + 30 * DAY_US)
        .await
        .expect_err("the future is not on record");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused.message().contains("in the future"),
        "{}",
        refused.message()
    );
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_as_of_a_date_before_the_genesis_is_refused_saying_when_the_ledger_began() {
    let t = TestServer::start().await;
    let refused = risks_as_of(&t, now_us() - 400 * DAY_US)
        .await
        .expect_err("nothing was recorded then");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused.message().contains("before this ledger began"),
        "{}",
        refused.message()
    );
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_as_of_the_end_of_today_is_answered_as_of_now_and_says_so() {
    let t = TestServer::start().await;
    let now = now_us();
    let end_of_today = now - now.rem_euclid(DAY_US) + DAY_US - 1;
    let answer = risks_as_of(&t, end_of_today)
        .await
        .expect("today is answered");
    assert!(
        answer.now_us < end_of_today && answer.now_us >= now,
        "the answer is labelled with the time it covers ({}), not {end_of_today}",
        answer.now_us
    );
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_as_of_a_time_outside_1970_to_9999_is_invalid_argument() {
    let t = TestServer::start().await;
    let refused = risks_as_of(&t, i64::MIN).await.expect_err("year -290308");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("as_of.recorded_at_us:"),
        "{}",
        refused.message()
    );
    t.server.shutdown().await.expect("shutdown");
}

fn with_limits(limits: isms_cli::server::limits::Limits) -> isms_cli::server::ServeOptions {
    isms_cli::server::ServeOptions {
        limits,
        ..options(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_resource_exhausted_naming_the_limit_and_its_flag() {
    let t = TestServer::start_with(with_limits(isms_cli::server::limits::Limits {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    }))
    .await;
    let head = t.ledger.head();
    let refused = t
        .client()
        .await
        .append(sign_bytes(&t.admin, vec![0u8; 100 * 1024]))
        .await
        .expect_err("over the message limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("65536 bytes")
            && refused.message().contains("--max-message-bytes"),
        "{}",
        refused.message()
    );
    assert_eq!(t.ledger.head(), head);
    t.server.shutdown().await.expect("shutdown");
}

async fn read_entry_0(
    t: &TestServer,
    reader: &ed25519_dalek::SigningKey,
) -> Result<(), tonic::Status> {
    t.client()
        .await
        .get_entry(signed(
            pb::GetEntryRequest {
                by: Some(pb::get_entry_request::By::Seq(0)),
            },
            reader,
            method::GET_ENTRY,
        ))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_request_rate_is_refused_while_another_key_still_reads() {
    let t = TestServer::start_with(with_limits(isms_cli::server::limits::Limits {
        requests_per_key_per_second: std::num::NonZeroU32::new(3),
        ..Default::default()
    }))
    .await;
    let other = key(31);
    t.enroll(&other, "auditor@example.com", &["auditor"]).await;
    // The burst is one second's worth (3); a fourth read at once is over the rate. The test
    // sends them back to back, well inside a second of refill, and allows one refilled token.
    let mut refused = None;
    for _ in 0..5 {
        if let Err(status) = read_entry_0(&t, &t.admin).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("five reads at once exceed 3 per second");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("--rate-per-key"),
        "{}",
        refused.message()
    );
    read_entry_0(&t, &other)
        .await
        .expect("another key has its own rate");
    t.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limit_are_refused_naming_the_limit() {
    let t = TestServer::start_with(with_limits(isms_cli::server::limits::Limits {
        max_streams: 1,
        ..Default::default()
    }))
    .await;
    let first = t.subscribe_from(0).await.expect("the first stream");
    let refused = t
        .subscribe_from(0)
        .await
        .expect_err("the limit is one stream");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("--max-streams"),
        "{}",
        refused.message()
    );
    drop(first);
    t.server.shutdown().await.expect("shutdown");
}
