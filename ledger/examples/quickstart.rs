//! The record end to end on the embedded default (sled in a local folder): creates a ledger
//! in `./isms-quickstart` (or opens it on later runs), appends signed events in one durable
//! batch, retries one to show idempotency, checks a receipt with the ledger's public key
//! alone, and verifies the whole ledger.
//!
//! Run: `cargo run --release -p ledger --example quickstart [FOLDER]`

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use ledger::envelope::EnvelopeView;
use ledger::{KeyGrant, Ledger, LedgerConfig, SignedEvent, UnixMicros};
use prost::Message;
use rand::rngs::OsRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "isms-quickstart".into()),
    );
    let keys = folder.with_extension("keys");
    let (ledger, admin) = if keys.exists() {
        let bytes = std::fs::read(&keys)?;
        let ledger_key = SigningKey::from_bytes(bytes[..32].try_into()?);
        let admin = SigningKey::from_bytes(bytes[32..64].try_into()?);
        (
            Ledger::open(&folder, LedgerConfig::default(), Some(ledger_key))?,
            admin,
        )
    } else {
        let ledger_key = SigningKey::generate(&mut OsRng);
        let admin = SigningKey::generate(&mut OsRng);
        // Demo only: a real deployment keeps keys in files readable by their owner alone.
        std::fs::write(&keys, [ledger_key.to_bytes(), admin.to_bytes()].concat())?;
        let grant = KeyGrant {
            public_key: admin.verifying_key().to_bytes(),
            subject: "ciso@example.com".into(),
            roles: vec!["admin".into(), "management".into()],
        };
        let ledger = Ledger::create(
            &folder,
            "Example Ltd",
            ledger_key,
            vec![grant],
            LedgerConfig::default(),
        )?;
        println!(
            "created ledger {} in {}",
            ledger.ledger_id(),
            folder.display()
        );
        (ledger, admin)
    };

    let start = ledger.head().size;
    let now = UnixMicros::now();
    let events: Vec<SignedEvent> = (0..5)
        .map(|i| {
            let body = EnvelopeView {
                ledger_id: ledger.ledger_id().0.to_vec(),
                event_id: format!("quickstart-{}-{i}", start),
                effective_at_us: now.0,
                client_time_us: now.0,
                ..EnvelopeView::default()
            };
            SignedEvent::sign(&admin, body.encode_to_vec())
        })
        .collect();
    let appended = ledger.append(events.clone());
    for a in &appended {
        let a = a.as_ref().map_err(|e| e.to_string())?;
        println!("appended seq {:>6}  entry {}", a.seq, a.entry_hash);
    }

    let retry = ledger
        .append(vec![events[0].clone()])
        .remove(0)
        .map_err(|e| e.to_string())?;
    println!(
        "retried the first event: seq {} again (duplicate: {})",
        retry.seq, retry.duplicate
    );

    let first = appended[0].as_ref().map_err(|e| e.to_string())?;
    let receipt = ledger.receipt(first.seq)?;
    let checkpoint = receipt.verify(&events[0].body, &ledger.public_key())?;
    println!(
        "receipt of seq {} verifies against checkpoint size {}",
        receipt.seq, checkpoint.size
    );

    let report = ledger.verify(&|_| {}).map_err(|e| e.to_string())?;
    println!(
        "verified {} entries and {} checkpoints; root {}",
        report.entries,
        report.checkpoints,
        hex::encode(report.root)
    );
    println!("\nlatest checkpoint:\n{}", ledger.latest_checkpoint()?.note);
    Ok(())
}
