//! Graceful shutdown of the real `isms` binary on SIGTERM while clients are appending: every
//! acknowledged event is durable, every event refused as "shutting down" is absent, and the
//! ledger verifies after the process exits.

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use isms_cli::server::{read_key_file, STORE_DIR};
use ledger::{Ledger, LedgerConfig, LedgerId};
use util::*;

/// target/debug/isms, beside the directory holding this test executable.
fn isms_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("isms{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p isms-cli` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_only_acknowledged_events_and_a_verifying_ledger() {
    let bin = isms_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let init = Command::new(&bin)
        .args(["init", "--data"])
        .arg(&data)
        .output()
        .expect("run isms init");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("admin.key"))
            .expect("admin key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key files are private");
    }
    let admin = read_key_file(&data.join("admin.key")).expect("admin key");

    let mut child = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run isms serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("serving line");
    let addr = line
        .trim()
        .strip_prefix("isms: serving on ")
        .expect("serving line")
        .to_string();
    let url = format!("http://{addr}");

    // The ledger id is in the genesis; read it back over gRPC (anonymous reads are off, so
    // sign the request with the admin key).
    let mut client = isms_proto::v1::ledger_client::LedgerClient::connect(url.clone())
        .await
        .expect("connect");
    let genesis = client
        .get_entry(signed(
            isms_proto::v1::GetEntryRequest {
                by: Some(isms_proto::v1::get_entry_request::By::Seq(0)),
            },
            &admin,
            isms_cli::server::ledger_service::method::GET_ENTRY,
        ))
        .await
        .expect("genesis")
        .into_inner();
    let ledger_id = {
        use prost::Message as _;
        let body =
            isms_proto::v1::EventBody::decode(genesis.body.as_slice()).expect("genesis body");
        LedgerId(body.ledger_id.as_slice().try_into().expect("16 bytes"))
    };
    let with_id = move |mut b: isms_proto::v1::EventBody| {
        b.ledger_id = ledger_id.0.to_vec();
        b
    };
    let agent = key(10);
    client
        .append(sign(
            &admin,
            &with_id(enroll_body(
                "enroll-agent",
                &agent,
                "ci/scanner",
                &["agent"],
            )),
        ))
        .await
        .expect("enrol agent");

    // 16 clients append as fast as they can; SIGTERM lands in the middle.
    let mut tasks = Vec::new();
    for c in 0..16 {
        let url = url.clone();
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let Ok(mut client) = isms_proto::v1::ledger_client::LedgerClient::connect(url).await
            else {
                return outcomes;
            };
            for i in 0..100_000 {
                let id = format!("sd-{c}-{i}");
                let request = sign(&agent, &with_id(evidence_body(&id)));
                let outcome = client.append(request).await;
                let stop = outcome.is_err();
                outcomes.push((id, outcome.map(|r| r.into_inner())));
                if stop {
                    break;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait");
    assert!(status.success(), "isms serve exited with {status}");

    let mut acknowledged = HashMap::new();
    let mut refused = Vec::new();
    for task in tasks {
        for (id, outcome) in task.await.expect("client") {
            match outcome {
                Ok(receipt) => {
                    acknowledged.insert(id, receipt);
                }
                Err(status) if status.message().contains("shutting down") => refused.push(id),
                Err(_) => {} // The connection closed: outcome unknown to the client.
            }
        }
    }
    assert!(
        acknowledged.len() > 10,
        "the clients got going before SIGTERM"
    );

    let ledger = Ledger::open(data.join(STORE_DIR), LedgerConfig::default(), None).expect("reopen");
    ledger
        .verify(&|_| {})
        .expect("the ledger verifies after shutdown");
    for (id, receipt) in &acknowledged {
        let entry = ledger
            .get_by_event_id(id)
            .expect("read")
            .unwrap_or_else(|| panic!("{id} was acknowledged but is missing"));
        assert_eq!(entry.seq.0, receipt.seq);
        assert_eq!(entry.hash().0.to_vec(), receipt.entry_hash);
    }
    for id in &refused {
        assert!(
            ledger.get_by_event_id(id).expect("read").is_none(),
            "{id} was refused but written"
        );
    }
}
