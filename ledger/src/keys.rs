//! Enrolled keys: who may sign, since when, until when, with which roles.
//!
//! The key index is derived data: it is rebuilt from the genesis and the key entries by
//! `verify`, which never trusts it. The store keeps a copy so that opening a ledger does not
//! replay history.

use crate::{KeyId, Seq};

/// The role that may enrol and revoke keys and erase artifacts.
pub const ADMIN_ROLE: &str = "admin";

/// An enrolled key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyRecord {
    /// Its id.
    pub key_id: KeyId,
    /// ed25519 public key.
    pub public_key: [u8; 32],
    /// Who holds it.
    pub subject: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Seq of the entry that enrolled it (0 for the genesis admins and the ledger key).
    pub enrolled_at: Seq,
    /// Seq of the entry that revoked it; it signs nothing from then on.
    pub revoked_at: Option<Seq>,
}

impl KeyRecord {
    /// Whether the key holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the key may sign the entry at `seq`: enrolled before it and not revoked at or
    /// before it. (The revocation entry itself is signed by an admin, never by the key.)
    pub fn valid_at(&self, seq: Seq) -> bool {
        let enrolled = self.enrolled_at < seq || self.enrolled_at == Seq(0);
        enrolled && self.revoked_at.is_none_or(|r| seq < r)
    }

    /// Internal encoding for the key index (not part of the permanent record).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.subject.len());
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.enrolled_at.0.to_be_bytes());
        out.extend_from_slice(&self.revoked_at.map_or(u64::MAX, |s| s.0).to_be_bytes());
        put_str(&mut out, &self.subject);
        out.extend_from_slice(&(self.roles.len() as u16).to_be_bytes());
        for role in &self.roles {
            put_str(&mut out, role);
        }
        out
    }

    /// Reads the key index encoding; `None` if it is damaged.
    pub(crate) fn decode(key_id: KeyId, bytes: &[u8]) -> Option<KeyRecord> {
        let mut r = Reader(bytes);
        let public_key = r.take(32)?.try_into().ok()?;
        let enrolled_at = Seq(u64::from_be_bytes(r.take(8)?.try_into().ok()?));
        let revoked = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let subject = r.string()?;
        let count = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        let roles = (0..count).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
        Some(KeyRecord {
            key_id,
            public_key,
            subject,
            roles,
            enrolled_at,
            revoked_at: (revoked != u64::MAX).then_some(Seq(revoked)),
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}
