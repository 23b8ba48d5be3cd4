//! Verification with a witness policy (`--witness-key`, repeatable, and `--witness-quorum N`):
//! which entries independent witnesses saw by when, and a refusal when a checkpoint carries a
//! witness's cosignature that does not verify over it — the checkpoint is then not the one the
//! witness cosigned, so the history departs from what the witness saw.
//!
//! This runs after the chain itself verified (every checkpoint's root recomputed from the
//! entries): it adds what the ledger's own key cannot prove, that these checkpoints existed no
//! later than the witnesses' timestamps.

use std::path::Path;

use anyhow::Context as _;
use ledger::cosignature::signature_lines;
use ledger::{SignedCheckpoint, WitnessVerifier};
use prost::Message as _;

use crate::dates;

/// The witnesses an auditor trusts and how many of them must have cosigned.
#[derive(Clone, Debug)]
pub struct WitnessPolicy {
    /// The trusted witnesses.
    pub witnesses: Vec<WitnessVerifier>,
    /// How many of them a checkpoint needs.
    pub quorum: usize,
}

impl WitnessPolicy {
    /// The policy the flags give: none without `--witness-key`; the quorum defaults to every
    /// key given and must lie in 1..=keys.
    pub fn from_flags(keys: &[String], quorum: Option<usize>) -> anyhow::Result<Option<Self>> {
        if keys.is_empty() {
            anyhow::ensure!(
                quorum.is_none(),
                "--witness-quorum needs at least one --witness-key"
            );
            return Ok(None);
        }
        let witnesses = keys
            .iter()
            .map(|k| {
                let text = if Path::new(k).is_file() {
                    std::fs::read_to_string(k)
                        .with_context(|| format!("--witness-key: reading {k}"))?
                } else {
                    k.clone()
                };
                WitnessVerifier::parse(text.trim())
                    .map_err(|e| anyhow::anyhow!("--witness-key {k:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let quorum = quorum.unwrap_or(witnesses.len());
        anyhow::ensure!(
            (1..=witnesses.len()).contains(&quorum),
            "--witness-quorum {quorum}: must be between 1 and the {} witness key(s) given",
            witnesses.len()
        );
        Ok(Some(WitnessPolicy { witnesses, quorum }))
    }
}

/// Entries a quorum of witnesses saw by a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// First seq of the range.
    pub first: u64,
    /// Last seq of the range.
    pub last: u64,
    /// The checkpoint size whose cosignatures cover the range.
    pub checkpoint_size: u64,
    /// The quorum-th earliest witness timestamp (unix seconds): the range existed no later.
    pub no_later_than: u64,
    /// The witnesses whose cosignatures verified on that checkpoint.
    pub witnesses: Vec<String>,
}

impl Coverage {
    /// [`Coverage::no_later_than`] in unix microseconds.
    pub fn no_later_than_us(&self) -> i64 {
        dates::from_unix_seconds(self.no_later_than)
    }

    /// "entries 0..=S existed no later than T, witnessed by W1, W2".
    pub fn sentence(&self) -> String {
        format!(
            "entries {}..={} existed no later than {}, witnessed by {}",
            self.first,
            self.last,
            dates::show_time(self.no_later_than_us()),
            self.witnesses.join(", ")
        )
    }
}

/// Checks every checkpoint note against the policy; the ranges a quorum covers, in order.
/// Errors name the checkpoint and witness of a cosignature that does not verify (and the
/// range where the history departs from what that witness saw), or say that no checkpoint
/// reaches the quorum.
pub fn coverage(policy: &WitnessPolicy, notes: &[String]) -> Result<Vec<Coverage>, String> {
    let mut sized: Vec<(u64, &String)> = notes
        .iter()
        .filter_map(|n| {
            SignedCheckpoint::parse_unverified(n)
                .ok()
                .map(|c| (c.size, n))
        })
        .collect();
    sized.sort_by_key(|(size, _)| *size);
    // The largest size each witness's cosignature verified on so far.
    let mut agreed: Vec<u64> = vec![0; policy.witnesses.len()];
    let mut out: Vec<Coverage> = Vec::new();
    let mut covered = 0u64;
    for (size, note) in sized {
        let lines = signature_lines(note).unwrap_or_default();
        let mut stamps: Vec<(u64, String)> = Vec::new();
        for (i, w) in policy.witnesses.iter().enumerate() {
            if !lines.iter().any(|l| w.names(l)) {
                continue;
            }
            match w.verify_note(note) {
                Ok(timestamp) => {
                    agreed[i] = size;
                    stamps.push((timestamp, w.name().to_string()));
                }
                Err(e) => {
                    let from = match agreed[i] {
                        0 => "at or after seq 0".to_string(),
                        n => format!("after seq {}", n - 1),
                    };
                    return Err(format!(
                        "checkpoint of size {size}: the cosignature of witness {} does not \
                         verify over it ({e}); this is not the checkpoint the witness cosigned, \
                         so the history departs from what it saw {from} and at or before seq {}",
                        w.name(),
                        size - 1
                    ));
                }
            }
        }
        if stamps.len() < policy.quorum || size <= covered {
            continue;
        }
        stamps.sort();
        out.push(Coverage {
            first: covered,
            last: size - 1,
            checkpoint_size: size,
            no_later_than: stamps[policy.quorum - 1].0,
            witnesses: stamps.into_iter().map(|(_, name)| name).collect(),
        });
        covered = size;
    }
    if out.is_empty() {
        return Err(format!(
            "no checkpoint is cosigned by {} of the {} witness(es) given: nothing shows that \
             this history existed before it was shown to you",
            policy.quorum,
            policy.witnesses.len()
        ));
    }
    Ok(out)
}

/// The coverage as text: the first ranges and a summary when there are many.
pub fn coverage_text(ranges: &[Coverage], verified_size: u64) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = ranges.iter().take(SHOWN).map(Coverage::sentence).collect();
    if ranges.len() > SHOWN {
        let last = ranges.last().expect("more than SHOWN");
        out.push(format!(
            "... {} more range(s) (--json lists all); the last: {}",
            ranges.len() - SHOWN,
            last.sentence()
        ));
    }
    let witnessed_to = ranges.last().map_or(0, |c| c.last + 1);
    if witnessed_to < verified_size {
        out.push(format!(
            "entries {witnessed_to}..={} are not yet cosigned by the quorum",
            verified_size - 1
        ));
    }
    out.join("\n")
}

/// The coverage as JSON.
pub fn coverage_json(ranges: &[Coverage]) -> serde_json::Value {
    serde_json::Value::Array(
        ranges
            .iter()
            .map(|c| {
                serde_json::json!({
                    "first": c.first,
                    "last": c.last,
                    "checkpoint_size": c.checkpoint_size,
                    "no_later_than": dates::show_time(c.no_later_than_us()),
                    "witnesses": c.witnesses,
                })
            })
            .collect(),
    )
}

/// A checkpoint of an earlier copy that a trusted witness cosigned.
#[derive(Clone, Debug)]
struct WitnessedRoot {
    size: u64,
    root: [u8; 32],
    /// The earliest cosignature's witness and timestamp (unix seconds).
    witness: String,
    time: u64,
}

impl WitnessedRoot {
    fn cosigned(&self) -> String {
        format!(
            "witness {} cosigned its checkpoint of size {} on {}",
            self.witness,
            self.size,
            dates::show_time(dates::from_unix_seconds(self.time))
        )
    }
}

/// The checkpoints of `notes` that at least one witness of the policy cosigned (its
/// cosignature verifies), by size. One trusted witness is enough: its signature is the
/// evidence that this root was shown to it.
fn witnessed_roots(policy: &WitnessPolicy, notes: &[String]) -> Vec<WitnessedRoot> {
    let mut out: Vec<WitnessedRoot> = notes
        .iter()
        .filter_map(|note| {
            let checkpoint = SignedCheckpoint::parse_unverified(note).ok()?;
            let (time, witness) = policy
                .witnesses
                .iter()
                .filter_map(|w| Some((w.verify_note(note).ok()?, w.name().to_string())))
                .min()?;
            Some(WitnessedRoot {
                size: checkpoint.size,
                root: checkpoint.root,
                witness,
                time,
            })
        })
        .collect();
    out.sort_by_key(|w| w.size);
    out
}

/// The event id an encoded entry carries, for messages.
fn event_id(raw: &[u8]) -> String {
    ledger::Entry::decode(raw)
        .ok()
        .and_then(|e| ledger::envelope::EnvelopeView::decode(e.body.as_slice()).ok())
        .map_or_else(
            || "(undecodable)".to_string(),
            |v| format!("{:?}", v.event_id),
        )
}

/// Holds `presented` (the encoded entries of the history being verified) against an earlier
/// copy of the ledger (`copy_entries` and `copy_notes`, already verified under the ledger key)
/// whose checkpoints trusted witnesses cosigned. Every witnessed root must be the presented
/// history's root at that size. Where one is not, the first seq whose entry differs from the
/// copy's is named, with the event there in both; a history shorter than a witnessed size was
/// cut back. `Ok` says how far the copy's witnessed checkpoints agree.
pub fn compare_with_copy(
    policy: &WitnessPolicy,
    presented: &[Vec<u8>],
    copy_entries: &[Vec<u8>],
    copy_notes: &[String],
) -> Result<String, String> {
    let witnessed = witnessed_roots(policy, copy_notes);
    let Some(largest) = witnessed.last() else {
        return Err(format!(
            "the earlier copy holds no checkpoint cosigned by any of the {} witness(es) given: \
             it cannot show what they saw",
            policy.witnesses.len()
        ));
    };
    let hashes = |raw: &[Vec<u8>]| -> Vec<ledger::EntryHash> {
        raw.iter().map(|e| ledger::entry::hash_encoded(e)).collect()
    };
    let (ours, theirs) = (hashes(presented), hashes(copy_entries));
    let first_difference = || {
        ours.iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len())) as u64
    };
    let mut frontier = ledger::merkle::Frontier::default();
    let mut pushed = 0u64;
    for w in &witnessed {
        if w.size > ours.len() as u64 {
            let at = first_difference();
            if at < ours.len() as u64 {
                return Err(departure(at, w, presented, copy_entries));
            }
            return Err(format!(
                "the history holds {} entries, but {} (the earlier copy holds it): \
                 the entries from seq {} on were cut from the history",
                ours.len(),
                w.cosigned(),
                ours.len()
            ));
        }
        while pushed < w.size {
            frontier.push::<ledger::merkle::Blake3Hasher>(&ours[pushed as usize].0);
            pushed += 1;
        }
        if frontier.root::<ledger::merkle::Blake3Hasher>() != w.root {
            return Err(departure(first_difference(), w, presented, copy_entries));
        }
    }
    Ok(format!(
        "the history agrees with the {} witnessed checkpoint(s) of the earlier copy, up to \
         size {} ({})",
        witnessed.len(),
        largest.size,
        largest.cosigned()
    ))
}

fn departure(at: u64, w: &WitnessedRoot, presented: &[Vec<u8>], copy: &[Vec<u8>]) -> String {
    let at_index = usize::try_from(at).unwrap_or(usize::MAX);
    let event = |entries: &[Vec<u8>]| {
        entries
            .get(at_index)
            .map_or_else(|| "(none)".to_string(), |raw| event_id(raw))
    };
    let (ours, theirs) = (event(presented), event(copy));
    format!(
        "the history departs at seq {at} from what {}: entry {at} here is event {}, in the \
         witnessed copy event {}{}",
        w.cosigned(),
        ours,
        theirs,
        if ours == theirs {
            " (the same event id, with other content)"
        } else {
            ""
        }
    )
}
