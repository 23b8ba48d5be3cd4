//! The witness's memory and its one decision: per followed ledger, the last checkpoint it
//! cosigned, and whether a new checkpoint may be cosigned after it.
//!
//! # Storage and why
//!
//! One small file per ledger, `state/<hex SHA-256 of the origin>`, holding the last cosigned
//! checkpoint note (the ledger's signature and ours). It is replaced the classic atomic way:
//! write `<name>.tmp`, fsync it, rename it over the old file, fsync the directory. A rename is
//! atomic on POSIX file systems, so after a crash (or `kill -9`) the file is wholly the old
//! note or wholly the new one, and the new one is on disk before any answer leaves. sled would
//! do as well, but it adds a process-wide lock on the folder, a background flusher and a
//! log-structured file nobody can read with `cat`; for one record per ledger a plain file that
//! is itself the cosigned checkpoint (what the monitoring endpoint serves) is simpler to trust.
//!
//! # The rule
//!
//! Updates of one ledger run under that ledger's mutex, from the size check to the fsync, so
//! two racing requests cannot roll the state back (the race the spec describes). A checkpoint
//! is cosigned only if its consistency proof leads from the held (size, root) to it, so the
//! witness never cosigns two inconsistent checkpoints of one ledger nor a smaller tree after a
//! larger one, and this holds across restarts because the held state is reloaded from the file
//! (and its ledger signature checked again) before the first request. A failed write poisons
//! that ledger until restart: what reached the disk is then unknown.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use ledger::checkpoint::CheckpointError;
use ledger::merkle::{verify_consistency, Blake3Hasher, Hash, MerkleHasher as _};
use ledger::{cosignature, SignedCheckpoint, WitnessKey, WitnessVerifier};
use sha2::{Digest as _, Sha256};

use super::protocol::AddCheckpoint;

/// The folder of the per-ledger state files inside the witness's data folder.
pub const STATE_DIR: &str = "state";

/// A ledger the witness follows: its origin and the public key that signs its checkpoints.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FollowedLedger {
    /// The checkpoint origin line, also the ledger key's name.
    pub origin: String,
    /// The ledger's checkpoint-signing key.
    pub key: VerifyingKey,
}

impl FollowedLedger {
    /// From the ledger's verifier key string (`<origin>+<key hash>+<base64(0x01 || key)>`, as
    /// `isms export` and `isms demo` write it).
    pub fn from_vkey(vkey: &str) -> Result<FollowedLedger, CheckpointError> {
        let (origin, key) = ledger::checkpoint::parse_verifier_key(vkey)?;
        Ok(FollowedLedger { origin, key })
    }
}

/// What the witness holds for one ledger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Held {
    /// Size of the last cosigned checkpoint (0 before the first).
    pub size: u64,
    /// Its root (the empty tree's before the first).
    pub root: Hash,
    /// The cosigned note, the ledger's signature and ours, as stored.
    pub note: Option<String>,
    /// The timestamp of our cosignature in `note` (0 before the first). A later cosignature
    /// never carries an earlier time, even if the clock steps back: "as of T the largest tree
    /// was N" must not be contradicted by "as of T' < T it was M > N".
    pub time: u64,
}

impl Held {
    fn empty() -> Held {
        Held {
            size: 0,
            root: Blake3Hasher::empty_root(),
            note: None,
            time: 0,
        }
    }
}

/// Why the witness does not cosign; each maps to the HTTP status C2SP tlog-witness fixes.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The request or its checkpoint note is not in the expected shape (400).
    #[error("malformed: {0}")]
    Malformed(String),
    /// The witness does not follow this origin (404).
    #[error("unknown origin {0}")]
    UnknownOrigin(String),
    /// No valid signature by the ledger key the witness holds for the origin (403).
    #[error("{0}")]
    NotSignedByLedger(String),
    /// The old size is above the checkpoint's size (400).
    #[error("old size {old_size} is above the checkpoint size {size}")]
    OldSizeAboveSize {
        /// The request's old size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The old size is not the size the witness holds (409; the body is `held`).
    #[error("the witness holds size {held}")]
    Conflict {
        /// The size of the last checkpoint the witness cosigned for this origin.
        held: u64,
    },
    /// The checkpoint is not consistent with what the witness holds: a bad proof, a different
    /// root at the same size, a non-empty proof from size 0 (422).
    #[error("not consistent with the checkpoint the witness holds: {0}")]
    Inconsistent(String),
    /// The witness could not make its new state durable, or an earlier failure left it
    /// unsure of what is on disk (500).
    #[error("witness storage failure: {0}")]
    Storage(String),
}

impl Refusal {
    /// The HTTP status code of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::OldSizeAboveSize { .. } => 400,
            Refusal::NotSignedByLedger(_) => 403,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::Conflict { .. } => 409,
            Refusal::Inconsistent(_) => 422,
            Refusal::Storage(_) => 500,
        }
    }
}

/// Why the witness state cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or creating the state folder failed.
    #[error("witness state {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A state file does not hold a checkpoint signed by the ledger's key: it was changed, or
    /// the ledger key configured for that origin is not the one the witness followed before.
    #[error("witness state {path}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Two followed ledgers share an origin.
    #[error("ledger {0} is configured twice")]
    DuplicateOrigin(String),
}

struct Followed {
    key: VerifyingKey,
    file: PathBuf,
    /// `None` once a write failed: what is on disk is unknown until a restart reloads it.
    held: Mutex<Option<Held>>,
}

/// The witness: its key, the ledgers it follows and what it holds for each.
pub struct WitnessState {
    key: WitnessKey,
    dir: PathBuf,
    ledgers: HashMap<String, Followed>,
}

impl std::fmt::Debug for WitnessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessState")
            .field("witness", &self.key.verifier().to_string())
            .field("dir", &self.dir)
            .field("ledgers", &self.ledgers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The lower-case hex SHA-256 of an origin: the state file name, and the `<origin hash>` of the
/// monitoring URL `GET /<origin hash>/checkpoint`.
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl WitnessState {
    /// Opens the state in `data_dir/state` for `ledgers`, reloading and re-checking what the
    /// witness holds for each.
    pub fn open(
        data_dir: &Path,
        key: WitnessKey,
        ledgers: Vec<FollowedLedger>,
    ) -> Result<WitnessState, StateError> {
        let dir = data_dir.join(STATE_DIR);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        // The folder's own entry must be durable too, or a power cut could lose every state
        // file at once and the witness would start again from nothing.
        File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(data_dir))?;
        let mut followed = HashMap::new();
        for ledger in ledgers {
            let file = dir.join(origin_hash(&ledger.origin));
            let held = match std::fs::read_to_string(&file) {
                Ok(note) => {
                    let checked = SignedCheckpoint::verify(&note, &ledger.key).map_err(|e| {
                        StateError::Corrupt {
                            path: file.clone(),
                            why: e.to_string(),
                        }
                    })?;
                    if checked.checkpoint.origin != ledger.origin {
                        return Err(StateError::Corrupt {
                            path: file,
                            why: format!("holds a checkpoint of {}", checked.checkpoint.origin),
                        });
                    }
                    Held {
                        size: checked.checkpoint.size,
                        root: checked.checkpoint.root,
                        // A note cosigned under an earlier witness key has no time of ours.
                        time: key.verifier().verify_note(&note).unwrap_or(0),
                        note: Some(note),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Held::empty(),
                Err(e) => return Err(io_error(&file)(e)),
            };
            let entry = Followed {
                key: ledger.key,
                file,
                held: Mutex::new(Some(held)),
            };
            if followed.insert(ledger.origin.clone(), entry).is_some() {
                return Err(StateError::DuplicateOrigin(ledger.origin));
            }
        }
        Ok(WitnessState {
            key,
            dir,
            ledgers: followed,
        })
    }

    /// The witness's public identity.
    pub fn verifier(&self) -> WitnessVerifier {
        self.key.verifier()
    }

    /// What the witness holds for `origin` (`None` if it does not follow it or is poisoned).
    pub fn held(&self, origin: &str) -> Option<Held> {
        let followed = self.ledgers.get(origin)?;
        followed.held.lock().ok()?.clone()
    }

    /// What the witness holds for the origin whose SHA-256 is `hash` (hex).
    pub fn held_by_origin_hash(&self, hash: &str) -> Option<Held> {
        let origin = self.ledgers.keys().find(|o| origin_hash(o) == hash)?;
        self.held(origin)
    }

    /// Checks an `add-checkpoint` request and, if every C2SP tlog-witness check passes,
    /// persists the new state (fsynced) and returns the cosignature line(s). Blocking: it
    /// writes and fsyncs a file, so async callers run it on a blocking thread.
    pub fn add_checkpoint(&self, request: &AddCheckpoint) -> Result<String, Refusal> {
        let claimed = SignedCheckpoint::parse_unverified(&request.note)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        let followed = self
            .ledgers
            .get(&claimed.origin)
            .ok_or_else(|| Refusal::UnknownOrigin(claimed.origin.clone()))?;
        let checkpoint = match SignedCheckpoint::verify(&request.note, &followed.key) {
            Ok(signed) => signed.checkpoint,
            Err(e @ CheckpointError::Malformed(_)) => {
                return Err(Refusal::Malformed(e.to_string()))
            }
            Err(e) => return Err(Refusal::NotSignedByLedger(e.to_string())),
        };
        if request.old_size > checkpoint.size {
            return Err(Refusal::OldSizeAboveSize {
                old_size: request.old_size,
                size: checkpoint.size,
            });
        }
        let body =
            cosignature::note_body(&request.note).map_err(|e| Refusal::Malformed(e.to_string()))?;

        // From here to the fsync, one request per ledger at a time.
        let mut guard = followed
            .held
            .lock()
            .map_err(|_| Refusal::Storage("an earlier request panicked".into()))?;
        let Some(held) = guard.as_ref() else {
            return Err(Refusal::Storage(
                "an earlier write failed; restart the witness".into(),
            ));
        };
        if request.old_size != held.size {
            return Err(Refusal::Conflict { held: held.size });
        }
        if held.size == 0 && !request.proof.is_empty() {
            return Err(Refusal::Inconsistent(
                "the proof from size 0 must be empty".into(),
            ));
        }
        verify_consistency::<Blake3Hasher>(
            held.size,
            checkpoint.size,
            &held.root,
            &checkpoint.root,
            &request.proof,
        )
        .map_err(|e| Refusal::Inconsistent(e.to_string()))?;

        let time = unix_seconds().max(held.time);
        let line = self
            .key
            .cosign(body, time)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        if checkpoint.size == held.size && held.note.is_some() {
            // Same tree again: what is on disk already says so. The newer time is kept in
            // memory only; it guards against a clock stepping back while the witness runs.
            if let Some(held) = guard.as_mut() {
                held.time = time;
            }
            return Ok(line);
        }
        let note = cosignature::add_cosignatures(&request.note, &line)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        if let Err(e) = write_durably(&self.dir, &followed.file, &note) {
            *guard = None;
            return Err(Refusal::Storage(e.to_string()));
        }
        *guard = Some(Held {
            size: checkpoint.size,
            root: checkpoint.root,
            note: Some(note),
            time,
        });
        Ok(line)
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Replaces `file` with `text`: temp file, fsync, rename, fsync of the folder.
fn write_durably(dir: &Path, file: &Path, text: &str) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, file)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use ledger::merkle::{consistency_proof, MemoryNodes};
    use ledger::{Checkpoint, UnixMicros};

    use super::*;

    const ORIGIN: &str = "isms-ledger/07070707070707070707070707070707";

    /// A tree over `n` made-up leaves of history `tag`; its checkpoints are signed by the ledger
    /// key.
    struct Tree {
        nodes: MemoryNodes,
        tag: u8,
    }

    impl Tree {
        fn new(tag: u8, n: u64) -> Tree {
            let leaves = (0..n).map(|i| [tag, i as u8]);
            Tree {
                nodes: MemoryNodes::from_leaves::<Blake3Hasher, _>(leaves).0,
                tag,
            }
        }

        fn note(&self, size: u64) -> String {
            let root = ledger::merkle::root_at::<Blake3Hasher, _>(&self.nodes, size).unwrap();
            Checkpoint {
                origin: ORIGIN.into(),
                size,
                root,
                time: UnixMicros(i64::from(self.tag)),
            }
            .sign(&ledger_key())
            .note
        }

        fn request(&self, old: u64, size: u64) -> AddCheckpoint {
            AddCheckpoint {
                old_size: old,
                proof: consistency_proof::<Blake3Hasher, _>(&self.nodes, old, size).unwrap(),
                note: self.note(size),
            }
        }
    }

    fn ledger_key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn open(dir: &Path) -> WitnessState {
        let key = WitnessKey::new("witness.test/w1", SigningKey::from_bytes(&[4; 32])).unwrap();
        let followed = FollowedLedger {
            origin: ORIGIN.into(),
            key: ledger_key().verifying_key(),
        };
        WitnessState::open(dir, key, vec![followed]).unwrap()
    }

    fn timestamp(line: &str) -> u64 {
        let line = cosignature::SignatureLine::parse(line).unwrap();
        u64::from_be_bytes(line.signature[..8].try_into().unwrap())
    }

    #[test]
    fn a_cosignature_time_never_goes_back_even_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::new(1, 8);
        let state = open(dir.path());
        state.add_checkpoint(&tree.request(0, 3)).unwrap();
        // A note cosigned an hour ahead of this clock, as if the clock had since stepped back.
        let ahead = unix_seconds() + 3600;
        let mut note = tree.note(5);
        note.push_str(
            &state
                .key
                .cosign(cosignature::note_body(&note).unwrap(), ahead)
                .unwrap(),
        );
        std::fs::write(dir.path().join(STATE_DIR).join(origin_hash(ORIGIN)), note).unwrap();
        drop(state);

        let state = open(dir.path());
        assert_eq!(state.held(ORIGIN).unwrap().time, ahead);
        let line = state.add_checkpoint(&tree.request(5, 8)).unwrap();
        assert_eq!(timestamp(&line), ahead);
    }

    #[test]
    fn refusals_leave_the_held_state_and_the_file_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, fork) = (Tree::new(1, 8), Tree::new(2, 8));
        let state = open(dir.path());
        state.add_checkpoint(&tree.request(0, 4)).unwrap();
        let file = dir.path().join(STATE_DIR).join(origin_hash(ORIGIN));
        let (held, on_disk) = (state.held(ORIGIN).unwrap(), std::fs::read(&file).unwrap());
        let mut forged = tree.request(4, 8);
        forged.proof[0][0] ^= 1;
        let mut from_zero = tree.request(0, 8);
        from_zero.proof = tree.request(4, 8).proof;
        for (request, status) in [
            (fork.request(4, 4), 422),
            (fork.request(4, 8), 422),
            (forged, 422),
            (from_zero, 409),
            (tree.request(2, 8), 409),
            (tree.request(3, 3), 409),
        ] {
            assert_eq!(state.add_checkpoint(&request).unwrap_err().status(), status);
            assert_eq!(state.held(ORIGIN).unwrap(), held);
            assert_eq!(std::fs::read(&file).unwrap(), on_disk);
        }
    }

    #[test]
    fn a_state_file_not_signed_by_the_ledger_key_stops_the_witness_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::new(1, 4);
        let state = open(dir.path());
        state.add_checkpoint(&tree.request(0, 4)).unwrap();
        drop(state);
        let file = dir.path().join(STATE_DIR).join(origin_hash(ORIGIN));
        let changed = std::fs::read_to_string(&file)
            .unwrap()
            .replacen("\n4\n", "\n9\n", 1);
        std::fs::write(&file, changed).unwrap();
        let key = WitnessKey::new("witness.test/w1", SigningKey::from_bytes(&[4; 32])).unwrap();
        let followed = FollowedLedger {
            origin: ORIGIN.into(),
            key: ledger_key().verifying_key(),
        };
        assert!(matches!(
            WitnessState::open(dir.path(), key, vec![followed]),
            Err(StateError::Corrupt { .. })
        ));
    }
}
