//! Who may read: a signed request header from an enrolled, non-revoked key, or an mTLS client
//! certificate signed by the configured client CA, or anyone when the operator asked for
//! anonymous reads. Writes need none of this: every event carries its own signature.
//!
//! The header signature covers `READ_REQUEST || method path || "\n" || time`, so it cannot be
//! moved to another method, and it is accepted once within the ±60 s window, so a captured
//! header cannot be replayed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::limits::Gate;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use ledger::{KeyId, Ledger, UnixMicros};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// Header carrying the hex key id.
pub const KEY_ID_HEADER: &str = "x-isms-key-id";
/// Header carrying the request time, unix microseconds, decimal.
pub const TIME_HEADER: &str = "x-isms-time";
/// Header carrying the hex ed25519 signature.
pub const SIGNATURE_HEADER: &str = "x-isms-signature";
/// How far the request time may be from the server clock, either way.
pub const WINDOW_US: i64 = 60 * 1_000_000;

/// `tag || text || "\n" || n` (decimal): the shape of every signed request and session.
pub fn tagged_message(tag: &[u8], text: &str, n: i64) -> Vec<u8> {
    let mut msg = tag.to_vec();
    msg.extend_from_slice(text.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(n.to_string().as_bytes());
    msg
}

/// The message a read-request signature covers.
pub fn read_signing_input(method: &str, time_us: i64) -> Vec<u8> {
    tagged_message(ledger::tags::READ_REQUEST, method, time_us)
}

/// Adds the three read headers for `method` (e.g. `/isms.ledger.v1.Ledger/GetEntry`), signed
/// by `key` at `time_us`. Used by clients and tests.
pub fn sign_read(metadata: &mut MetadataMap, key: &SigningKey, method: &str, time_us: i64) {
    let key_id = KeyId::of_public_key(key.verifying_key().as_bytes());
    let signature = key.sign(&read_signing_input(method, time_us));
    let put = |m: &mut MetadataMap, name: &'static str, value: String| {
        m.insert(
            name,
            value
                .parse()
                .expect("hex and digits are valid header values"),
        );
    };
    put(metadata, KEY_ID_HEADER, key_id.to_hex());
    put(metadata, TIME_HEADER, time_us.to_string());
    put(
        metadata,
        SIGNATURE_HEADER,
        hex::encode(signature.to_bytes()),
    );
}

/// The read-side gatekeeper, shared by every service.
#[derive(Debug)]
pub struct ReadAuth {
    ledger: Arc<Ledger>,
    allow_anonymous: bool,
    /// The server's limits; a read by a key is charged to that key's rate.
    gate: Arc<Gate>,
    /// Signatures accepted inside the window, with their request time, to refuse replays.
    seen: Mutex<HashMap<[u8; 64], i64>>,
}

fn unauthenticated(message: String) -> Status {
    Status::unauthenticated(message)
}

impl ReadAuth {
    /// A gatekeeper over the keys of `ledger`.
    pub fn new(ledger: Arc<Ledger>, allow_anonymous: bool, gate: Arc<Gate>) -> ReadAuth {
        ReadAuth {
            ledger,
            allow_anonymous,
            gate,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The server's limits.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Admits a read of `method` or says why not (Unauthenticated).
    pub fn check<T>(&self, request: &Request<T>, method: &str) -> Result<(), Status> {
        // rustls has already checked any client certificate against the client CA; one being
        // present means the peer holds a certificate the operator issued.
        if request.peer_certs().is_some_and(|c| !c.is_empty()) {
            return Ok(());
        }
        self.check_headers(request.metadata(), method, UnixMicros::now().0)
    }

    /// The header check alone, at server time `now_us`.
    pub fn check_headers(
        &self,
        metadata: &MetadataMap,
        method: &str,
        now_us: i64,
    ) -> Result<(), Status> {
        let header = |name: &'static str| -> Result<Option<&str>, Status> {
            match metadata.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(Some)
                    .map_err(|_| unauthenticated(format!("{name}: is not ASCII text"))),
            }
        };
        let Some(key_hex) = header(KEY_ID_HEADER)? else {
            if self.allow_anonymous {
                return Ok(());
            }
            return Err(unauthenticated(format!(
                "{KEY_ID_HEADER}: missing; reads need a signed request header \
                 ({KEY_ID_HEADER}, {TIME_HEADER}, {SIGNATURE_HEADER}) or an mTLS client \
                 certificate"
            )));
        };
        let key_id = KeyId::from_hex(key_hex)
            .ok_or_else(|| unauthenticated(format!("{KEY_ID_HEADER}: must be 64 hex digits")))?;
        let key = self.ledger.key(&key_id).ok_or_else(|| {
            unauthenticated(format!(
                "{KEY_ID_HEADER}: key {key_id} is not enrolled in this ledger"
            ))
        })?;
        if let Some(revoked) = key.revoked_at {
            return Err(unauthenticated(format!(
                "{KEY_ID_HEADER}: key {key_id} was revoked at seq {revoked}"
            )));
        }
        let time_text = header(TIME_HEADER)?
            .ok_or_else(|| unauthenticated(format!("{TIME_HEADER}: missing")))?;
        let time_us: i64 = time_text.parse().map_err(|_| {
            unauthenticated(format!(
                "{TIME_HEADER}: must be unix microseconds in decimal (got {time_text:?})"
            ))
        })?;
        let skew = now_us.saturating_sub(time_us);
        if skew.abs() > WINDOW_US {
            return Err(unauthenticated(format!(
                "{TIME_HEADER}: {time_us} is {}s from the server clock; at most {}s is allowed",
                skew / 1_000_000,
                WINDOW_US / 1_000_000
            )));
        }
        let signature_hex = header(SIGNATURE_HEADER)?
            .ok_or_else(|| unauthenticated(format!("{SIGNATURE_HEADER}: missing")))?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut signature)
            .map_err(|_| unauthenticated(format!("{SIGNATURE_HEADER}: must be 128 hex digits")))?;
        let public = VerifyingKey::from_bytes(&key.public_key)
            .map_err(|_| unauthenticated(format!("{KEY_ID_HEADER}: key {key_id} is unusable")))?;
        public
            .verify(
                &read_signing_input(method, time_us),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| {
                unauthenticated(format!(
                    "{SIGNATURE_HEADER}: does not verify with key {key_id} over {method} at {time_us}"
                ))
            })?;
        let mut seen = self.seen.lock().expect("replay cache lock");
        // Forget what has left the window: a signature that old is refused by the time check.
        if seen.len() > 1024 {
            seen.retain(|_, t| now_us.saturating_sub(*t) <= WINDOW_US);
        }
        if seen.insert(signature, time_us).is_some() {
            return Err(unauthenticated(format!(
                "{SIGNATURE_HEADER}: this request signature was already used (a replay); sign \
                 every request afresh"
            )));
        }
        drop(seen);
        self.gate.charge(&key_id, 1)
    }
}
