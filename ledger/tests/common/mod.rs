//! Shared set-up for the ledger's integration tests: a ledger in a temp dir with a manual
//! clock, an admin key, and builders of signed event bodies.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::envelope::{EnvelopeView, KeyEnrolledView, KeyRevokedView};
use ledger::{Clock, KeyGrant, Ledger, LedgerConfig, LedgerId, SignedEvent, UnixMicros};
use prost::Message;

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(pub AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> UnixMicros {
        UnixMicros(self.0.load(Ordering::SeqCst))
    }
}

impl ManualClock {
    pub fn advance(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

pub const T0: i64 = 1_735_689_600_000_000; // 2025-01-01T00:00:00Z

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn grant(key: &SigningKey, subject: &str, roles: &[&str]) -> KeyGrant {
    KeyGrant {
        public_key: key.verifying_key().to_bytes(),
        subject: subject.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// Opens the sled store directly. sled's background flusher can hold the file lock for a
/// moment after the last handle is dropped, so a few retries are allowed.
pub fn open_raw(path: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("open store: {e}"),
        }
    }
    panic!("store still locked after 2 s")
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
    pub ledger_key: SigningKey,
    pub admin: SigningKey,
    pub clock: Arc<ManualClock>,
}

pub fn config(clock: &Arc<ManualClock>) -> LedgerConfig {
    LedgerConfig {
        clock: clock.clone(),
        ..LedgerConfig::default()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let ledger_key = key(1);
        let admin = key(2);
        let ledger = Ledger::create_with_id(
            dir.path(),
            LedgerId([7; 16]),
            "Example Ltd",
            ledger_key.clone(),
            vec![grant(&admin, "ciso@example.com", &["admin", "management"])],
            config(&clock),
        )
        .expect("create ledger");
        Fixture {
            dir,
            ledger,
            ledger_key,
            admin,
            clock,
        }
    }

    /// Closes and reopens the ledger, as after a restart.
    pub fn restart(self) -> Fixture {
        self.reopen_after(|_| {})
    }

    /// Closes the ledger and reopens it with another ledger key (after a hand-over).
    pub fn restart_with_key(mut self, ledger_key: SigningKey) -> Fixture {
        self.ledger_key = ledger_key;
        self.restart()
    }

    /// Closes the ledger, hands its sled `records` tree to `change` (to act as a damaged disk
    /// or an older version would), flushes, and reopens the ledger.
    pub fn with_store_closed(self, change: impl FnOnce(&sled::Tree)) -> Fixture {
        self.reopen_after(|path| {
            let db = open_raw(path);
            change(&db.open_tree("records").expect("records tree"));
            db.flush().expect("flush");
        })
    }

    /// Closes the ledger, runs `between` on its folder, and reopens it.
    fn reopen_after(self, between: impl FnOnce(&std::path::Path)) -> Fixture {
        let Fixture {
            dir,
            ledger,
            ledger_key,
            admin,
            clock,
        } = self;
        // sled releases its file lock only when the last handle is dropped.
        drop(ledger);
        between(dir.path());
        let ledger =
            Ledger::open(dir.path(), config(&clock), Some(ledger_key.clone())).expect("reopen");
        Fixture {
            dir,
            ledger,
            ledger_key,
            admin,
            clock,
        }
    }

    pub fn envelope(&self, event_id: &str) -> EnvelopeView {
        EnvelopeView {
            ledger_id: self.ledger.ledger_id().0.to_vec(),
            event_id: event_id.into(),
            effective_at_us: T0,
            client_time_us: T0,
            ..EnvelopeView::default()
        }
    }

    /// A plain event body with `payload` appended as an unknown field (32, like IsmsEvent).
    pub fn body(&self, event_id: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = self.envelope(event_id).encode_to_vec();
        // Field 32, wire type 2 (length-delimited): tag varint = (32 << 3) | 2 = 258.
        body.extend_from_slice(&[0x82, 0x02]);
        prost::encoding::encode_varint(payload.len() as u64, &mut body);
        body.extend_from_slice(payload);
        body
    }

    pub fn event(&self, signer: &SigningKey, event_id: &str, payload: &[u8]) -> SignedEvent {
        SignedEvent::sign(signer, self.body(event_id, payload))
    }

    pub fn enroll(
        &self,
        event_id: &str,
        new: &SigningKey,
        subject: &str,
        roles: &[&str],
    ) -> SignedEvent {
        let mut view = self.envelope(event_id);
        view.key_enrolled = Some(KeyEnrolledView {
            public_key: new.verifying_key().to_bytes().to_vec(),
            subject: subject.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
        SignedEvent::sign(&self.admin, view.encode_to_vec())
    }

    pub fn revoke(&self, event_id: &str, old: &SigningKey) -> SignedEvent {
        let mut view = self.envelope(event_id);
        view.key_revoked = Some(KeyRevokedView {
            key_id: ledger::KeyId::of_public_key(old.verifying_key().as_bytes())
                .0
                .to_vec(),
            reason: "left the company".into(),
        });
        SignedEvent::sign(&self.admin, view.encode_to_vec())
    }
}

/// Copies a store's folder (sled writes to a store it opens, so tests work on copies).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("dir entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("file type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).expect("copy");
        }
    }
}

/// The stored bytes of entry `seq`, wherever the store keeps it (its block or, in stores of
/// layouts before 3, its own record).
pub fn raw_entry(records: &sled::Tree, seq: u64) -> Vec<u8> {
    ledger::entry_blocks::read(&ledger::engine::SledSpace(records.clone()), seq)
        .expect("read")
        .unwrap_or_else(|| panic!("entry {seq} is stored"))
}

/// Stores `raw` as entry `seq`, in place when one is stored there (a test damaging a store).
pub fn put_raw_entry(records: &sled::Tree, seq: u64, raw: &[u8]) {
    ledger::entry_blocks::insert(&ledger::engine::SledSpace(records.clone()), seq, raw)
        .expect("put");
}

/// Removes entry `seq` from the store, leaving the others where they are.
pub fn remove_raw_entry(records: &sled::Tree, seq: u64) {
    ledger::entry_blocks::remove(&ledger::engine::SledSpace(records.clone()), seq).expect("remove");
}
