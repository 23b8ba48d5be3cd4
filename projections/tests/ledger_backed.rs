//! The projections over a real sled ledger in a temp dir: the `Validator` as the writer's
//! admission hook (refused events are not written) and as-of queries with sled snapshots.

use ed25519_dalek::SigningKey;
use ledger::{KeyGrant, Ledger, LedgerConfig, SignedEvent};
use projections::{
    ledger_glue::projector,
    model::*,
    query::ProjectorConfig,
    registers::Registers,
    wire::{encode_to_vec, BodyHeader},
    Error, ErrorCode, Event,
};

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[test]
fn validator_admits_through_the_ledger_and_registers_read_back_as_of() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SigningKey::from_bytes(&[1; 32]);
    let rita = SigningKey::from_bytes(&[2; 32]);
    let ledger = Ledger::create(
        dir.path().join("db"),
        "test",
        SigningKey::from_bytes(&[9; 32]),
        vec![KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "admin".into(),
            roles: vec!["admin".into()],
        }],
        LedgerConfig::default(),
    )
    .unwrap();
    let p = projector(&ledger, ProjectorConfig { snapshot_every: 2 }).unwrap();
    let mut validator = p.validator().unwrap();
    let mut n = 0;
    let mut body = |event: Event| {
        n += 1;
        let header = BodyHeader {
            ledger_id: ledger.ledger_id().0.to_vec(),
            event_id: format!("ev-{n}"),
            effective_at: Timestamp(now_us()),
            client_time: Timestamp(now_us()),
            ..Default::default()
        };
        encode_to_vec(&header, &event)
    };
    let rita_key = KeyEnrolment {
        public_key: rita.verifying_key().to_bytes(),
        subject: Subject("rita".into()),
        roles: vec![Role::RiskOwner],
    };
    let risk_id = RiskId("RISK-001".into());
    let events = vec![
        SignedEvent::sign(&admin, body(Event::KeyEnrolled(rita_key))),
        SignedEvent::sign(
            &rita,
            body(Event::RiskIdentified {
                risk_id: risk_id.clone(),
                asset: "db".into(),
                threat: "sqli".into(),
                vulnerability: "input".into(),
                risk_owner: "CTO".into(),
            }),
        ),
        SignedEvent::sign(
            &rita,
            body(Event::RiskAssessed {
                risk_id: risk_id.clone(),
                likelihood: Likelihood::parse("l", 3).unwrap(),
                impact: Impact::parse("i", 4).unwrap(),
            }),
        ),
        // Refused: a risk owner may not accept a risk.
        SignedEvent::sign(
            &rita,
            body(Event::RiskAccepted {
                risk_id: risk_id.clone(),
                justification: "ok".into(),
            }),
        ),
    ];
    let results = ledger.append_with(events, &mut validator);
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    let refusal = results[3].as_ref().unwrap_err();
    let ledger::AppendError::Rejected(rejection) = refusal else {
        panic!("expected a rejection, got {refusal:?}");
    };
    let err = rejection.downcast_ref::<Error>().unwrap();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    assert_eq!(
        ledger.head().size,
        4,
        "genesis + 3 accepted; the refused event left nothing"
    );

    let state = p.latest().unwrap();
    assert_eq!(&state, validator.state());
    let rows = Registers {
        state: &state,
        now: Timestamp(now_us()),
    }
    .risk_register();
    assert_eq!(rows[0].inherent.unwrap().2.get(), 12);
    assert_eq!(
        state.risks[&risk_id].updated.subject,
        Subject("rita".into())
    );
    // As of the genesis: no risks.
    assert!(p.as_of_seq(0).unwrap().risks.is_empty());
    assert_eq!(p.as_of_seq(2).unwrap().risks[&risk_id].inherent, None);
}
