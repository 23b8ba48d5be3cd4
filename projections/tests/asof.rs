//! Point in time: as-of answers never change when later (backdated) entries arrive, snapshots
//! change nothing (property test against the naive fold), bitemporal queries and diffs.

use projections::{
    model::*,
    query::{naive_fold, MemorySnapshots, Projector, ProjectorConfig, RawEntry},
    registers::Registers,
    testkit::{synthetic_history, Actor, Harness},
    wire::BodyHeader,
    Event,
};
use proptest::prelude::*;

fn projector(entries: &[RawEntry], k: u64) -> Projector<MemorySnapshots, &[RawEntry]> {
    Projector::new(
        entries,
        MemorySnapshots::default(),
        ProjectorConfig { snapshot_every: k },
    )
}

fn risk(id: &str) -> Event {
    Event::RiskIdentified {
        risk_id: RiskId(id.into()),
        asset: "a".into(),
        threat: "t".into(),
        vulnerability: "v".into(),
        risk_owner: "o".into(),
    }
}

fn assessed(id: &str, l: u32, i: u32) -> Event {
    Event::RiskAssessed {
        risk_id: RiskId(id.into()),
        likelihood: Likelihood::parse("l", l).unwrap(),
        impact: Impact::parse("i", i).unwrap(),
    }
}

#[test]
fn given_an_answer_as_of_t_when_backdated_entries_arrive_later_then_the_answer_as_of_t_is_unchanged(
) {
    let rita = Actor::new("rita", &[Role::RiskOwner]);
    let mut h = Harness::new(&[&rita]);
    h.append(&rita, risk("RISK-001")).unwrap();
    h.append(&rita, assessed("RISK-001", 2, 2)).unwrap();
    let t = h.now;
    let before = projector(&h.entries, 2).as_of(t).unwrap();
    // A day later, a rescoring backdated to a week before t, and a new backdated risk.
    h.advance_days(1);
    let backdated = BodyHeader {
        effective_at: t.plus_days(-7),
        ..Default::default()
    };
    h.append_with(&rita, backdated.clone(), assessed("RISK-001", 5, 5))
        .unwrap();
    h.append_with(&rita, backdated, risk("RISK-002")).unwrap();
    let p = projector(&h.entries, 2);
    let after = p.as_of(t).unwrap();
    assert_eq!(after, before);
    let rows = Registers {
        state: &after,
        now: t,
    }
    .risk_register();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].inherent.unwrap().2.get(), 4);
    // The latest answer does see them.
    assert_eq!(p.latest().unwrap().risks.len(), 2);
}

#[test]
fn an_entry_taking_effect_after_its_recording_is_left_out_before_it_takes_effect() {
    let rita = Actor::new("rita", &[Role::RiskOwner]);
    let mut h = Harness::new(&[&rita]);
    h.append(&rita, risk("RISK-001")).unwrap();
    h.append(&rita, assessed("RISK-001", 2, 2)).unwrap();
    h.advance_days(1);
    let recorded = h.now;
    // Recorded now, in effect three minutes from now (within the ledger's future skew).
    let ahead = BodyHeader {
        effective_at: Timestamp(recorded.0 + 180_000_000),
        ..Default::default()
    };
    h.append_with(&rita, ahead, assessed("RISK-001", 5, 5))
        .unwrap();
    h.advance_days(1);
    h.append(&rita, risk("RISK-002")).unwrap();
    let p = projector(&h.entries, 1);
    let score = |s: &projections::State| {
        Registers {
            state: s,
            now: recorded,
        }
        .risk_register()[0]
            .inherent
            .map(|(_, _, s, _)| s.get())
    };
    let known = h.now;
    let just_after_recording = Timestamp(recorded.0 + 60_000_000);
    assert_eq!(
        score(&p.bitemporal(just_after_recording, known).unwrap()),
        Some(4)
    );
    assert_eq!(
        score(
            &p.bitemporal(Timestamp(recorded.0 + 181_000_000), known)
                .unwrap()
        ),
        Some(25)
    );
}

#[test]
fn bitemporal_effective_at_t1_as_known_at_t2() {
    let rita = Actor::new("rita", &[Role::RiskOwner]);
    let mut h = Harness::new(&[&rita]);
    h.append(&rita, risk("RISK-001")).unwrap();
    let t_identified = h.now;
    h.advance_days(10);
    h.append(&rita, assessed("RISK-001", 2, 2)).unwrap();
    let known_1 = h.now;
    h.advance_days(1);
    // Recorded now, effective 5 days after identification.
    let header = BodyHeader {
        effective_at: t_identified.plus_days(5),
        ..Default::default()
    };
    h.append_with(&rita, header, assessed("RISK-001", 4, 4))
        .unwrap();
    let known_2 = h.now;
    let p = projector(&h.entries, 3);
    let score = |s: &State| {
        s.risks[&RiskId("RISK-001".into())]
            .inherent
            .map(|(l, i)| Score::of(l, i).get())
    };
    // Effective 6 days after identification, as known before the late entry: not assessed.
    assert_eq!(
        score(&p.bitemporal(t_identified.plus_days(6), known_1).unwrap()),
        None
    );
    // Same effective time, as known after it: the backdated 16.
    assert_eq!(
        score(&p.bitemporal(t_identified.plus_days(6), known_2).unwrap()),
        Some(16)
    );
    // Effective today, as known today: the later-effective... both applied, in recorded order.
    assert_eq!(score(&p.bitemporal(known_2, known_2).unwrap()), Some(16));
}

use projections::State;

#[test]
fn diff_between_two_times_lists_added_and_changed_rows_field_by_field() {
    let rita = Actor::new("rita", &[Role::RiskOwner]);
    let mut h = Harness::new(&[&rita]);
    h.append(&rita, risk("RISK-001")).unwrap();
    h.append(&rita, assessed("RISK-001", 2, 2)).unwrap();
    let t1 = h.now;
    h.append(&rita, assessed("RISK-001", 3, 4)).unwrap();
    h.append(&rita, risk("RISK-002")).unwrap();
    let t2 = h.now;
    let diffs = projector(&h.entries, 2).diff(t1, t2).unwrap();
    let risks = diffs
        .iter()
        .find(|d| d.register == "risk_register")
        .unwrap();
    assert_eq!(risks.added.len(), 1);
    assert_eq!(risks.added[0].0, "RISK-002");
    assert!(risks.removed.is_empty());
    let (row, changes) = &risks.changed[0];
    assert_eq!(row, "RISK-001");
    assert!(changes.contains(&("inherent", "2x2=4 accept".into(), "3x4=12 mitigate".into())));
    // Nothing changed between a time and itself.
    assert!(projector(&h.entries, 2).diff(t2, t2).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// For random histories (a quarter of their entries backdated by up to 30 days), the
    /// bitemporal state through snapshots and the late-entry index equals the fold of every
    /// entry filtered by valid time, for random (effective, known) pairs.
    #[test]
    fn every_bitemporal_answer_equals_the_fold_filtered_by_valid_time(
        n in 2usize..400,
        seed in any::<u64>(),
        k in 1u64..40,
        points in proptest::collection::vec((any::<u16>(), any::<u16>()), 1..12),
    ) {
        let entries: Vec<RawEntry> = synthetic_history(n, seed).into_iter().map(|(e, _)| e).collect();
        let p = projector(&entries, k);
        let first = entries[0].recorded_at.plus_days(-40).0;
        let span = entries[n - 1].recorded_at.plus_days(2).0 - first;
        for (e, kn) in points {
            let at = |x: u16| Timestamp(first + span / 65_536 * i64::from(x));
            let (effective, known) = (at(e), at(kn));
            let fast = p.bitemporal(effective, known).unwrap();
            let slow = p.bitemporal_by_scan(effective, known).unwrap();
            prop_assert_eq!(
                Registers { state: &fast, now: effective }.tables(),
                Registers { state: &slow, now: effective }.tables()
            );
        }
    }

    /// For random histories, the state (and every register) as of every seq, through
    /// snapshots every K entries, equals the naive fold of entries[..=seq].
    #[test]
    fn every_register_as_of_every_seq_equals_the_naive_fold(
        n in 1usize..120,
        seed in any::<u64>(),
        k in 1u64..17,
        order in proptest::collection::vec(any::<u16>(), 0..40),
    ) {
        let entries: Vec<RawEntry> = synthetic_history(n, seed).into_iter().map(|(e, _)| e).collect();
        let p = projector(&entries, k);
        // Query in a random order first (so snapshots are built out of order), then all.
        let seqs = order.iter().map(|o| u64::from(*o) % n as u64).chain(0..n as u64);
        for seq in seqs {
            let fast = p.as_of_seq(seq).unwrap();
            let naive = naive_fold(&entries, seq + 1);
            prop_assert_eq!(&fast, &naive);
            let now = entries[seq as usize].recorded_at;
            prop_assert_eq!(
                Registers { state: &fast, now }.tables(),
                Registers { state: &naive, now }.tables()
            );
        }
    }
}

/// A fresh engine over snapshots another engine wrote (a restarted server) has no score
/// history in memory: it follows the segments stored with the snapshots, and falls back to
/// replaying when a link is unreadable. Either way every answer equals the naive fold.
#[test]
fn a_restarted_engine_reads_score_history_from_stored_snapshots() {
    let entries: Vec<RawEntry> = synthetic_history(400, 11)
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let db = sled::Config::new().temporary(true).open().unwrap();
    let tree = db.open_tree("snapshots").unwrap();
    let config = ProjectorConfig { snapshot_every: 16 };
    Projector::new(entries.as_slice(), tree.clone(), config)
        .latest()
        .unwrap();
    let check = |seqs: &mut dyn Iterator<Item = u64>| {
        let p = Projector::new(entries.as_slice(), tree.clone(), config);
        for seq in seqs {
            let fast = p.as_of_seq(seq).unwrap();
            let naive = naive_fold(&entries, seq + 1);
            assert_eq!(fast, naive, "seq {seq}");
            let now = entries[seq as usize].recorded_at;
            assert_eq!(
                Registers { state: &fast, now }.tables(),
                Registers { state: &naive, now }.tables()
            );
        }
    };
    check(&mut [399, 5, 200, 17, 16, 15].into_iter());
    // Break one link in the middle of the chain: snapshots above it must not be trusted.
    tree.insert(160u64.to_be_bytes(), vec![2, 0xff]).unwrap();
    check(&mut [399, 170, 150, 161, 159].into_iter());
}
