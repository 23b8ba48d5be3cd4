//! The `add-checkpoint` request body of C2SP tlog-witness, parsed and built: `old <size>\n`,
//! zero to 63 consistency-proof hashes (one base64 per line), a blank line, the checkpoint note.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ledger::merkle::Hash;

/// Most consistency-proof lines a request may carry (the spec's client limit).
pub const MAX_PROOF_LINES: usize = 63;

/// Largest request body the witness reads (a checkpoint note with many cosignatures is a few
/// KiB; this leaves room and still bounds memory).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A parsed `add-checkpoint` request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddCheckpoint {
    /// The size the caller believes the witness holds for this ledger.
    pub old_size: u64,
    /// RFC 9162 consistency proof (blake3 tree) from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint as a signed note, every signature line included.
    pub note: String,
}

/// Why a request body is not an `add-checkpoint` request (answered with 400).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not UTF-8.
    #[error("request body is not UTF-8")]
    NotUtf8,
    /// The first line is not `old <decimal, no leading zeros>`.
    #[error("the first line must be `old <size>` in decimal without leading zeros")]
    BadOldSize,
    /// A proof line is not the base64 of 32 bytes; `line` counts from 1 for the first proof line.
    #[error("consistency proof line {line} is not a base64 32-byte hash")]
    BadProofLine {
        /// Which proof line.
        line: usize,
    },
    /// More than [`MAX_PROOF_LINES`] proof lines.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// No blank line ends the proof.
    #[error("no blank line before the checkpoint")]
    NoBlankLine,
}

impl AddCheckpoint {
    /// Parses a request body. The note itself is checked later, by the ledger's checkpoint code.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
        let text = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
        let (first, mut rest) = text.split_once('\n').ok_or(RequestError::BadOldSize)?;
        let old_size = parse_decimal(first.strip_prefix("old ").ok_or(RequestError::BadOldSize)?)
            .ok_or(RequestError::BadOldSize)?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest.split_once('\n').ok_or(RequestError::NoBlankLine)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError::TooManyProofLines);
            }
            let hash: Hash = B64
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or(RequestError::BadProofLine {
                    line: proof.len() + 1,
                })?;
            proof.push(hash);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: rest.to_string(),
        })
    }

    /// The request body, byte for byte as the spec lays it out.
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }
}

/// A decimal u64 with no leading zeros (`0` itself allowed), no sign, no spaces.
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let request = AddCheckpoint {
            old_size: 20,
            proof: vec![[1; 32], [2; 32]],
            note: "origin\n21\nroot\n\n— origin sig\n".into(),
        };
        let body = request.encode();
        assert!(body.starts_with("old 20\nAQEB"));
        assert_eq!(AddCheckpoint::parse(body.as_bytes()), Ok(request));
    }

    #[test]
    fn malformed_requests_are_named() {
        for (body, want) in [
            (&b"old 01\n\nx"[..], RequestError::BadOldSize),
            (b"old -1\n\nx", RequestError::BadOldSize),
            (b"old 1", RequestError::BadOldSize),
            (b"new 1\n\nx", RequestError::BadOldSize),
            (b"old 1\nAAAA\n\nx", RequestError::BadProofLine { line: 1 }),
            (b"old 1\n", RequestError::NoBlankLine),
            (b"old 1\xff\n\n", RequestError::NotUtf8),
        ] {
            assert_eq!(AddCheckpoint::parse(body), Err(want), "{body:?}");
        }
        let too_long = AddCheckpoint {
            old_size: 1,
            proof: vec![[0; 32]; MAX_PROOF_LINES + 1],
            note: String::new(),
        };
        assert_eq!(
            AddCheckpoint::parse(too_long.encode().as_bytes()),
            Err(RequestError::TooManyProofLines)
        );
    }
}
