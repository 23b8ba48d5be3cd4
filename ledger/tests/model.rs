//! Model-based property test: random sequences of appends, batch appends (with retries and
//! conflicting ids) and restarts, checked against a plain in-memory model of the ledger.

mod common;

use std::collections::HashMap;

use common::Fixture;
use ledger::{AppendError, Seq};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Append one batch; each item is (event id number, payload byte).
    Batch(Vec<(u8, u8)>),
    /// Close and reopen the store.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..40, 0u8..3), 1..12).prop_map(Op::Batch),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_model(ops in prop::collection::vec(op(), 1..16)) {
        let mut f = Fixture::new();
        // The model: entries after the genesis in order, and event id -> index.
        let mut model: Vec<(String, Vec<u8>)> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for op in ops {
            match op {
                Op::Restart => f = f.restart(),
                Op::Batch(items) => {
                    let events: Vec<_> = items
                        .iter()
                        .map(|(id, payload)| f.event(&f.admin, &format!("ev-{id}"), &[*payload]))
                        .collect();
                    let results = f.ledger.append(events.clone());
                    prop_assert_eq!(results.len(), items.len());
                    for (event, result) in events.iter().zip(results) {
                        let view = <ledger::envelope::EnvelopeView as prost::Message>::decode(event.body.as_slice()).unwrap();
                        match by_id.get(&view.event_id) {
                            Some(&i) if model[i].1 == event.body => {
                                let a = result.unwrap();
                                prop_assert!(a.duplicate);
                                prop_assert_eq!(a.seq, Seq(i as u64 + 1));
                            }
                            Some(&i) => {
                                let is_conflict = matches!(result, Err(AppendError::EventIdConflict { seq, .. }) if seq == Seq(i as u64 + 1));
                                prop_assert!(is_conflict);
                            }
                            None => {
                                let a = result.unwrap();
                                prop_assert!(!a.duplicate);
                                prop_assert_eq!(a.seq, Seq(model.len() as u64 + 1));
                                by_id.insert(view.event_id.clone(), model.len());
                                model.push((view.event_id, event.body.clone()));
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(f.ledger.head().size, model.len() as u64 + 1);
        }
        let stored: Vec<_> = f.ledger.entries(1..u64::MAX).map(Result::unwrap).collect();
        prop_assert_eq!(stored.len(), model.len());
        for (entry, (id, body)) in stored.iter().zip(&model) {
            prop_assert_eq!(&entry.body, body);
            prop_assert_eq!(f.ledger.get_by_event_id(id).unwrap().unwrap().seq, entry.seq);
        }
        let report = f.ledger.verify(&|_| {}).unwrap();
        prop_assert_eq!(report.entries, model.len() as u64 + 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a body, a signature or an entry never panic and never write.
    #[test]
    fn garbage_is_refused_without_a_panic_or_a_write(
        body in prop::collection::vec(any::<u8>(), 0..400),
        signature in prop::collection::vec(any::<u8>(), 64),
    ) {
        let f = Fixture::new();
        let head = f.ledger.head();
        let mut signed = ledger::SignedEvent::sign(&f.admin, body.clone());
        let forged = ledger::SignedEvent {
            signature: signature.clone().try_into().unwrap(),
            ..signed.clone()
        };
        // A valid signature over garbage is still refused by the envelope rules, unless the
        // garbage happens to decode as a body naming this ledger (it cannot: the ledger id is
        // 16 bytes of 0x07 that random input does not produce in practice).
        for result in f.ledger.append(vec![forged, signed.clone()]) {
            prop_assert!(result.is_err());
        }
        signed.body.truncate(signed.body.len() / 2);
        prop_assert!(f.ledger.append(vec![signed]).remove(0).is_err());
        prop_assert_eq!(f.ledger.head(), head);
        prop_assert!(ledger::Entry::decode(&body).is_err() || body.len() >= 149);
    }
}
