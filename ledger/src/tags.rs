//! Domain-separation tags: every hash and signature input in the record starts with one.
//!
//! Each tag is ASCII and ends in a NUL byte, which no tag contains elsewhere, so no input of
//! one kind can be read as an input of another. The Merkle tree instead uses RFC 9162's own
//! 0x00 (leaf) and 0x01 (node) prefixes, and checkpoints use the C2SP signed-note format.

/// Prefix of the message an event signature covers: `EVENT_SIGNATURE || body`.
pub const EVENT_SIGNATURE: &[u8] = b"isms-ledger/v1/event\0";
/// Prefix of the blake3 input of an entry hash: `ENTRY || encoded entry`.
pub const ENTRY: &[u8] = b"isms-ledger/v1/entry\0";
/// Prefix of the blake3 input of a key id: `KEY_ID || public key`.
pub const KEY_ID: &[u8] = b"isms-ledger/v1/key-id\0";
/// Prefix of the message a read-request header signature covers.
pub const READ_REQUEST: &[u8] = b"isms-ledger/v1/read-request\0";
/// Prefix of a console session token's signed message (`isms console link`).
pub const CONSOLE_SESSION: &[u8] = b"isms-ledger/v1/console-session\0";
/// Prefix of the statement both ledger keys sign when the checkpoint key is handed over:
/// `LEDGER_KEY_HANDOVER || ledger_id (16) || old public key (32) || new public key (32)`.
pub const LEDGER_KEY_HANDOVER: &[u8] = b"isms-ledger/v1/ledger-key-handover\0";
