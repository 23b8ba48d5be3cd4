//! The record-level rules every body must pass before it can become an entry. They know the
//! envelope only (envelope.proto fields 1..=19); the ISMS rules run afterwards through the
//! [`Admission`](crate::Admission) hook.

use ed25519_dalek::VerifyingKey;
use prost::Message;

use crate::envelope::{EnvelopeView, Genesis, Handover, KeyEnrolledView, KeyGrant, RecordAction};
use crate::{AppendError, ArtifactHash, KeyId, LedgerId, UnixMicros};

/// The roles a key may hold.
pub const KNOWN_ROLES: &[&str] = &[
    "admin",
    "agent",
    "risk_owner",
    "control_owner",
    "auditor",
    "management",
    "reader",
];

/// Longest event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest key subject, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

fn malformed(field: &'static str, rule: impl Into<String>) -> AppendError {
    AppendError::Malformed {
        field,
        rule: rule.into(),
    }
}

/// Decodes the envelope and checks every record-level rule that needs no ledger state.
pub fn check_body(
    body: &[u8],
    ledger_id: &LedgerId,
    max_body_bytes: usize,
) -> Result<(EnvelopeView, RecordAction), AppendError> {
    if body.len() > max_body_bytes {
        return Err(AppendError::BodyTooLarge {
            size: body.len(),
            max: max_body_bytes,
        });
    }
    let view = EnvelopeView::decode(body)
        .map_err(|e| malformed("body", format!("is not a protobuf EventBody: {e}")))?;
    check_wire(body)?;
    if view.ledger_id.as_slice() != ledger_id.0 {
        return Err(AppendError::WrongLedger {
            expected: ledger_id.to_hex(),
            found: hex::encode(&view.ledger_id),
        });
    }
    check_event_id(&view.event_id)?;
    for (i, artifact) in view.artifacts.iter().enumerate() {
        if artifact.blake3.len() != 32 {
            return Err(malformed(
                "artifacts.blake3",
                format!(
                    "artifacts[{i}]: must be 32 bytes (got {})",
                    artifact.blake3.len()
                ),
            ));
        }
    }
    let action = record_action(&view)?;
    if matches!(action, RecordAction::Genesis(_)) {
        return Err(malformed("genesis", "only entry 0 may be a genesis"));
    }
    Ok((view, action))
}

fn check_event_id(event_id: &str) -> Result<(), AppendError> {
    if event_id.is_empty() {
        return Err(malformed("event_id", "must not be empty"));
    }
    if event_id.len() > MAX_EVENT_ID_BYTES {
        return Err(malformed(
            "event_id",
            format!(
                "must be at most {MAX_EVENT_ID_BYTES} bytes (got {})",
                event_id.len()
            ),
        ));
    }
    if event_id.chars().any(char::is_control) {
        return Err(malformed("event_id", "must not contain control characters"));
    }
    Ok(())
}

/// What the record layer must do for this body; errors if its record payload is invalid.
pub fn record_action(view: &EnvelopeView) -> Result<RecordAction, AppendError> {
    let present = [
        view.genesis.is_some(),
        view.key_enrolled.is_some(),
        view.key_revoked.is_some(),
        view.artifact_erased.is_some(),
        view.ledger_key_rotated.is_some(),
    ]
    .iter()
    .filter(|p| **p)
    .count();
    if present > 1 {
        return Err(malformed("payload", "carries more than one record payload"));
    }
    if let Some(genesis) = &view.genesis {
        let ledger_id = LedgerId(
            view.ledger_id
                .as_slice()
                .try_into()
                .map_err(|_| malformed("ledger_id", "must be 16 bytes"))?,
        );
        let ledger_public_key =
            public_key(&genesis.ledger_public_key, "genesis.ledger_public_key")?;
        if genesis.admins.is_empty() {
            return Err(malformed("genesis.admins", "needs at least one admin key"));
        }
        let admins = genesis
            .admins
            .iter()
            .map(|a| grant(a, "genesis.admins"))
            .collect::<Result<Vec<_>, _>>()?;
        if admins.iter().any(|a| !a.roles.iter().any(|r| r == "admin")) {
            return Err(malformed(
                "genesis.admins.roles",
                "every genesis admin needs the admin role",
            ));
        }
        return Ok(RecordAction::Genesis(Genesis {
            ledger_id,
            origin: genesis.origin.clone(),
            ledger_public_key,
            admins,
            name: genesis.name.clone(),
            effective_at: UnixMicros(view.effective_at_us),
        }));
    }
    if let Some(enrolled) = &view.key_enrolled {
        return Ok(RecordAction::KeyEnrolled(grant(enrolled, "key_enrolled")?));
    }
    if let Some(revoked) = &view.key_revoked {
        let key_id = KeyId::from_slice(&revoked.key_id)
            .ok_or_else(|| malformed("key_revoked.key_id", "must be 32 bytes"))?;
        return Ok(RecordAction::KeyRevoked(key_id));
    }
    if let Some(erased) = &view.artifact_erased {
        let hash = ArtifactHash::from_slice(&erased.blake3)
            .ok_or_else(|| malformed("artifact_erased.blake3", "must be 32 bytes"))?;
        return Ok(RecordAction::ArtifactErased(hash));
    }
    if let Some(rotated) = &view.ledger_key_rotated {
        let new_public_key =
            public_key(&rotated.new_public_key, "ledger_key_rotated.new_public_key")?;
        let signature = |bytes: &[u8], field: &'static str| -> Result<[u8; 64], AppendError> {
            bytes
                .try_into()
                .map_err(|_| malformed(field, format!("must be 64 bytes (got {})", bytes.len())))
        };
        return Ok(RecordAction::LedgerKeyRotated(Handover {
            new_public_key,
            old_key_signature: signature(
                &rotated.old_key_signature,
                "ledger_key_rotated.old_key_signature",
            )?,
            new_key_signature: signature(
                &rotated.new_key_signature,
                "ledger_key_rotated.new_key_signature",
            )?,
        }));
    }
    Ok(RecordAction::None)
}

fn public_key(bytes: &[u8], field: &'static str) -> Result<[u8; 32], AppendError> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| malformed(field, format!("must be 32 bytes (got {})", bytes.len())))?;
    let key = VerifyingKey::from_bytes(&raw)
        .map_err(|_| malformed(field, "is not a valid Ed25519 public key"))?;
    if key.is_weak() {
        return Err(malformed(field, "is a weak (small-order) Ed25519 key"));
    }
    Ok(raw)
}

fn grant(view: &KeyEnrolledView, field: &'static str) -> Result<KeyGrant, AppendError> {
    let public_key = public_key(&view.public_key, field)?;
    if view.subject.trim().is_empty() {
        return Err(malformed(field, "subject must not be empty"));
    }
    if view.subject.len() > MAX_SUBJECT_BYTES {
        return Err(malformed(
            field,
            format!("subject must be at most {MAX_SUBJECT_BYTES} bytes"),
        ));
    }
    if view.roles.is_empty() {
        return Err(malformed(field, "needs at least one role"));
    }
    if let Some(role) = view
        .roles
        .iter()
        .find(|r| !KNOWN_ROLES.contains(&r.as_str()))
    {
        return Err(malformed(
            field,
            format!(
                "unknown role {role:?} (roles are {})",
                KNOWN_ROLES.join(", ")
            ),
        ));
    }
    Ok(KeyGrant {
        public_key,
        subject: view.subject.clone(),
        roles: view.roles.clone(),
    })
}

/// How a field of a record-layer message may occur.
enum Occurs {
    /// At most once (a scalar, string, bytes or message field that is not repeated).
    Once,
    /// Any number of times (a repeated scalar or string).
    Many,
    /// Any number of times, each one this message.
    ManyMsg(&'static Schema),
    /// A member of `EventBody`'s `payload` oneof: at most one member per body; `None` for
    /// `isms` (32), whose content the record layer does not read.
    Payload(Option<&'static Schema>),
}

/// The fields of one message that the record layer reads; others are skipped.
struct Schema(&'static [(u32, &'static str, Occurs)]);

static KEY_ENROLLED: Schema = Schema(&[
    (1, "key_enrolled.public_key", Occurs::Once),
    (2, "key_enrolled.subject", Occurs::Once),
    (3, "key_enrolled.roles", Occurs::Many),
]);
static GENESIS_ADMIN: Schema = Schema(&[
    (1, "genesis.admins.public_key", Occurs::Once),
    (2, "genesis.admins.subject", Occurs::Once),
    (3, "genesis.admins.roles", Occurs::Many),
]);
static GENESIS: Schema = Schema(&[
    (1, "genesis.origin", Occurs::Once),
    (2, "genesis.ledger_public_key", Occurs::Once),
    (3, "genesis.admins", Occurs::ManyMsg(&GENESIS_ADMIN)),
    (4, "genesis.name", Occurs::Once),
]);
static KEY_REVOKED: Schema = Schema(&[
    (1, "key_revoked.key_id", Occurs::Once),
    (2, "key_revoked.reason", Occurs::Once),
]);
static ARTIFACT_ERASED: Schema = Schema(&[
    (1, "artifact_erased.blake3", Occurs::Once),
    (2, "artifact_erased.reason", Occurs::Once),
]);
static LEDGER_KEY_ROTATED: Schema = Schema(&[
    (1, "ledger_key_rotated.new_public_key", Occurs::Once),
    (2, "ledger_key_rotated.old_key_signature", Occurs::Once),
    (3, "ledger_key_rotated.new_key_signature", Occurs::Once),
    (4, "ledger_key_rotated.reason", Occurs::Once),
]);
static ARTIFACT_REF: Schema = Schema(&[
    (1, "artifacts.blake3", Occurs::Once),
    (2, "artifacts.size", Occurs::Once),
    (3, "artifacts.media_type", Occurs::Once),
    (4, "artifacts.name", Occurs::Once),
]);
static EVENT_BODY: Schema = Schema(&[
    (1, "ledger_id", Occurs::Once),
    (2, "event_id", Occurs::Once),
    (3, "effective_at_us", Occurs::Once),
    (4, "client_time_us", Occurs::Once),
    (5, "expected_version", Occurs::Once),
    (6, "artifacts", Occurs::ManyMsg(&ARTIFACT_REF)),
    (16, "genesis", Occurs::Payload(Some(&GENESIS))),
    (17, "key_enrolled", Occurs::Payload(Some(&KEY_ENROLLED))),
    (18, "key_revoked", Occurs::Payload(Some(&KEY_REVOKED))),
    (
        19,
        "artifact_erased",
        Occurs::Payload(Some(&ARTIFACT_ERASED)),
    ),
    (
        20,
        "ledger_key_rotated",
        Occurs::Payload(Some(&LEDGER_KEY_ROTATED)),
    ),
    (32, "isms", Occurs::Payload(None)),
]);

/// Refuses bodies whose meaning would depend on the decoder. Protobuf lets a field that is not
/// repeated appear several times (the last value wins, or messages merge) and a oneof carry
/// several members (the last wins); a verifier written from docs/FORMAT.md with another
/// decoder could then read another value than the ledger did. So, in every message the record
/// layer reads: a field that is not repeated appears at most once, `EventBody` carries at most
/// one of fields 16..=20 and 32 (together, not each), and groups (wire types 3 and 4) are
/// refused. Fields the record layer does not know are skipped, and the content of `isms` (32)
/// is not read here.
pub fn check_wire(body: &[u8]) -> Result<(), AppendError> {
    scan(body, &EVENT_BODY, "body")
}

fn scan(mut buf: &[u8], schema: &Schema, name: &'static str) -> Result<(), AppendError> {
    use prost::encoding::decode_varint;
    let torn = |name: &'static str| malformed(name, "is not valid protobuf wire format");
    let mut seen: Vec<u32> = Vec::new();
    let mut payload: Option<&'static str> = None;
    while !buf.is_empty() {
        let key = decode_varint(&mut buf).map_err(|_| torn(name))?;
        let (number, wire_type) = ((key >> 3) as u32, key & 7);
        let content: Option<&[u8]> = match wire_type {
            0 => {
                decode_varint(&mut buf).map_err(|_| torn(name))?;
                None
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                buf = buf.get(width..).ok_or_else(|| torn(name))?;
                None
            }
            2 => {
                let len = decode_varint(&mut buf).map_err(|_| torn(name))?;
                let len = usize::try_from(len).map_err(|_| torn(name))?;
                let content = buf.get(..len).ok_or_else(|| torn(name))?;
                buf = &buf[len..];
                Some(content)
            }
            _ => {
                return Err(malformed(
                    name,
                    format!("field {number} uses wire type {wire_type} (groups are refused)"),
                ))
            }
        };
        let Some((_, field, occurs)) = schema.0.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let inner = match occurs {
            Occurs::Once => {
                if seen.contains(&number) {
                    return Err(malformed(
                        field,
                        "appears more than once (a field that is not repeated must appear at \
                         most once)",
                    ));
                }
                seen.push(number);
                None
            }
            Occurs::Many => None,
            Occurs::ManyMsg(inner) => Some(*inner),
            Occurs::Payload(inner) => {
                if let Some(other) = payload {
                    return Err(malformed(
                        "payload",
                        format!(
                            "carries both {other} and {field}; a body carries at most one of \
                             fields 16..=19 and 32"
                        ),
                    ));
                }
                payload = Some(field);
                *inner
            }
        };
        if let (Some(inner), Some(content)) = (inner, content) {
            scan(content, inner, field)?;
        }
    }
    Ok(())
}
