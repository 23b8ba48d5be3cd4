//! Which entries touched each row: derived in memory from the ledger (never stored), built in
//! the background when the console starts and brought up to the head on each request, so a
//! row's history is a map lookup rather than a scan of every entry.

use std::collections::HashMap;
use std::sync::Mutex;

use ledger::{Ledger, LedgerError};
use projections::model::Event;
use projections::wire::decode_body;

use crate::commands::log::entity_of;

/// Entries read per step while catching up, so a request never holds the lock for long
/// without making progress.
const STEP: u64 = 50_000;

/// The ids of the rows an event is about: evidence names every control it supports.
pub fn rows_of(event: &Event) -> Vec<String> {
    match event {
        Event::EvidenceSubmitted { controls, .. } => {
            controls.iter().map(ToString::to_string).collect()
        }
        other => vec![entity_of(other)],
    }
}

#[derive(Debug, Default)]
struct Index {
    /// Entries `0..indexed` are in the map.
    indexed: u64,
    by_row: HashMap<String, Vec<u64>>,
}

/// The row → seqs index.
#[derive(Debug, Default)]
pub struct HistoryIndex {
    inner: Mutex<Index>,
}

impl HistoryIndex {
    /// Reads the entries the index has not seen yet, up to the ledger's durable head.
    pub fn catch_up(&self, ledger: &Ledger) -> Result<u64, LedgerError> {
        let mut index = self.inner.lock().expect("history index lock");
        let head = ledger.head().size;
        while index.indexed < head {
            let end = (index.indexed + STEP).min(head);
            for entry in ledger.entries(index.indexed..end) {
                let entry = entry?;
                if let Ok(envelope) = decode_body(&entry.body) {
                    for row in rows_of(&envelope.event) {
                        index.by_row.entry(row).or_default().push(entry.seq.0);
                    }
                }
            }
            index.indexed = end;
        }
        Ok(index.indexed)
    }

    /// The seqs of the entries about `row`, oldest first.
    pub fn seqs(&self, row: &str) -> Vec<u64> {
        let index = self.inner.lock().expect("history index lock");
        index.by_row.get(row).cloned().unwrap_or_default()
    }
}
