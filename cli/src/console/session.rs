//! Console sessions: a token signed by an enrolled key, expiring, bound to one ledger.
//!
//! The token is `v1.<key id hex>.<expires unix µs>.<signature hex>`, where the ed25519
//! signature covers `CONSOLE_SESSION || origin || "\n" || expires` (decimal). `isms console
//! link` makes one with a key file; the console checks it on every request (the key must be
//! enrolled in this ledger and not revoked, the token unexpired and not longer-lived than
//! [`MAX_LIFETIME_US`]), so revoking a key ends its sessions at once. The server keeps no
//! session state: the token is the session, carried in an HttpOnly cookie.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use ledger::{KeyId, Ledger};

/// The cookie that carries the token.
pub const COOKIE: &str = "isms_session";
/// The longest a session may last: a working day and a half.
pub const MAX_LIFETIME_US: i64 = 36 * 3600 * 1_000_000;

/// Who a checked session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The key that signed it.
    pub key_id: KeyId,
    /// Who holds that key.
    pub subject: String,
    /// When it ends, unix µs.
    pub expires_us: i64,
}

/// The message a session signature covers.
pub fn signing_input(origin: &str, expires_us: i64) -> Vec<u8> {
    crate::server::auth::tagged_message(ledger::tags::CONSOLE_SESSION, origin, expires_us)
}

/// A token for the ledger `origin`, signed by `key`, valid until `expires_us`.
pub fn token(key: &SigningKey, origin: &str, expires_us: i64) -> String {
    let key_id = KeyId::of_public_key(key.verifying_key().as_bytes());
    let signature = key.sign(&signing_input(origin, expires_us));
    format!(
        "v1.{}.{expires_us}.{}",
        key_id.to_hex(),
        hex::encode(signature.to_bytes())
    )
}

/// Checks `token` against the keys of `ledger` at time `now_us`; the error says which rule it
/// broke, in words an auditor can act on.
pub fn check(ledger: &Ledger, token: &str, now_us: i64) -> Result<Session, String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [version, key_hex, expires, signature_hex] = parts[..] else {
        return Err("session: expected v1.<key id>.<expires>.<signature>".into());
    };
    if version != "v1" {
        return Err(format!("session: unknown token version {version:?}"));
    }
    let key_id = KeyId::from_hex(key_hex)
        .ok_or_else(|| "session: the key id must be 64 hex digits".to_string())?;
    let expires_us: i64 = expires
        .parse()
        .map_err(|_| "session: the expiry must be unix microseconds".to_string())?;
    if expires_us <= now_us {
        return Err(format!(
            "session: expired at {}; make a new link with `isms console link`",
            crate::dates::show_time(expires_us)
        ));
    }
    if expires_us - now_us > MAX_LIFETIME_US {
        return Err(format!(
            "session: lasts until {}, longer than the {} hours a session may last",
            crate::dates::show_time(expires_us),
            MAX_LIFETIME_US / 3_600_000_000
        ));
    }
    let key = ledger
        .key(&key_id)
        .ok_or_else(|| format!("session: key {key_id} is not enrolled in this ledger"))?;
    if let Some(revoked) = key.revoked_at {
        return Err(format!(
            "session: key {key_id} was revoked at seq {revoked}"
        ));
    }
    let mut signature = [0u8; 64];
    hex::decode_to_slice(signature_hex, &mut signature)
        .map_err(|_| "session: the signature must be 128 hex digits".to_string())?;
    let public = VerifyingKey::from_bytes(&key.public_key)
        .map_err(|_| format!("session: key {key_id} is unusable"))?;
    public
        .verify(
            &signing_input(ledger.origin(), expires_us),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            format!(
                "session: the signature does not verify with key {key_id} for this ledger ({})",
                ledger.origin()
            )
        })?;
    Ok(Session {
        key_id,
        subject: key.subject,
        expires_us,
    })
}
