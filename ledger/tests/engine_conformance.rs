//! The storage engines' conformance suite: every behaviour the ledger relies on, written once
//! and run against both engines — sled in a temp folder, and a real PostgreSQL server from
//! Debian's packages started by `tests/support/postgres.rs` — then what only PostgreSQL has
//! (many ledgers in one database, the writer lease and its fencing, a database that stops),
//! and the promise that both store the same bytes.

mod common;
#[path = "../../tests/support/postgres.rs"]
mod pg;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Bound;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{config, grant, key, ManualClock, T0};
use ledger::engine::{Engine, KeyRange, SledEngine, WriteBatch};
use ledger::postgres::PostgresEngine;
use ledger::{Ledger, LedgerError, LedgerId};
use rand::{Rng, SeedableRng};

/// The PostgreSQL server this test binary shares; each test uses its own ledger name.
fn cluster() -> &'static pg::PgCluster {
    static CLUSTER: OnceLock<pg::PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = pg::PgCluster::start();
        cluster.create_database("conformance");
        cluster
    })
}

fn url() -> String {
    cluster().url("conformance")
}

fn postgres(ledger: &str) -> Arc<dyn Engine> {
    Arc::new(PostgresEngine::connect(&url(), &ledger.replace('_', "-")).expect("connect"))
}

fn sled() -> (tempfile::TempDir, Arc<dyn Engine>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = SledEngine::open(dir.path(), 8 << 20).expect("open sled");
    (dir, Arc::new(engine))
}

fn put(pairs: &[(&[u8], &[u8])]) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for (k, v) in pairs {
        batch.insert(k, v.to_vec());
    }
    batch
}

fn keys_of(pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), LedgerError>>) -> Vec<Vec<u8>> {
    pairs.map(|p| p.expect("read").0).collect()
}

// ---- The behaviours, each written once. ----

fn a_batch_is_applied_whole(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    space
        .apply(put(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
        .expect("apply");
    for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
        assert_eq!(space.get(k).expect("get"), Some(v.to_vec()));
    }
}

fn the_last_write_to_a_key_in_a_batch_wins(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let mut batch = put(&[(b"k", b"first"), (b"k", b"second")]);
    batch.insert(b"gone", b"x".to_vec());
    batch.remove(b"gone");
    space.apply(batch).expect("apply");
    assert_eq!(space.get(b"k").expect("get"), Some(b"second".to_vec()));
    assert_eq!(space.get(b"gone").expect("get"), None);
}

fn a_deleted_key_is_gone(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    space.insert(b"k", b"v").expect("insert");
    space.remove(b"k").expect("remove");
    assert_eq!(space.get(b"k").expect("get"), None);
    assert!(!space.contains(b"k").expect("contains"));
}

fn a_scan_returns_keys_in_unsigned_byte_order(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let keys: Vec<&[u8]> = vec![
        b"\xff",
        b"\x00",
        b"a",
        b"a\x00",
        b"\x7f\xff",
        b"\x80",
        b"ab",
        b"",
    ];
    let mut batch = WriteBatch::default();
    for k in &keys {
        batch.insert(k, b"v".to_vec());
    }
    space.apply(batch).expect("apply");
    let mut expected: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    expected.sort();
    assert_eq!(keys_of(space.scan(KeyRange::all())), expected);
}

fn a_reverse_scan_is_the_exact_reverse(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let mut batch = WriteBatch::default();
    for i in 0u16..300 {
        batch.insert(i.to_be_bytes(), vec![1]);
    }
    space.apply(batch).expect("apply");
    let range = KeyRange::half_open(10u16.to_be_bytes(), 290u16.to_be_bytes());
    let mut forward = keys_of(space.scan(range.clone()));
    forward.reverse();
    assert_eq!(keys_of(space.scan_rev(range)), forward);
    assert_eq!(forward.len(), 280);
}

fn every_bound_returns_exactly_the_keys_its_range_contains(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = BTreeMap::new();
    let mut batch = WriteBatch::default();
    let random_key = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
        let len = rng.gen_range(0..4);
        (0..len)
            .map(|_| {
                *[0u8, 1, 0x7f, 0x80, 0xfe, 0xff]
                    .get(rng.gen_range(0..6))
                    .expect("byte")
            })
            .collect()
    };
    for _ in 0..300 {
        let k = random_key(&mut rng);
        model.insert(k.clone(), ());
        batch.insert(&k, vec![0]);
    }
    space.apply(batch).expect("apply");
    let bound = |rng: &mut rand::rngs::StdRng, k: Vec<u8>| match rng.gen_range(0..3) {
        0 => Bound::Included(k),
        1 => Bound::Excluded(k),
        _ => Bound::Unbounded,
    };
    for _ in 0..60 {
        let (a, b) = (random_key(&mut rng), random_key(&mut rng));
        let range = KeyRange {
            start: bound(&mut rng, a.min(b.clone())),
            end: bound(&mut rng, b),
        };
        let expected: Vec<Vec<u8>> = model
            .keys()
            .filter(|k| range.contains(k))
            .cloned()
            .collect();
        assert_eq!(keys_of(space.scan(range.clone())), expected, "{range:?}");
        let first = space.first(range.clone()).expect("first").map(|p| p.0);
        let last = space.last(range.clone()).expect("last").map(|p| p.0);
        assert_eq!(first.as_ref(), expected.first(), "first of {range:?}");
        assert_eq!(last.as_ref(), expected.last(), "last of {range:?}");
        let mut reversed = expected;
        reversed.reverse();
        assert_eq!(
            keys_of(space.scan_rev(range.clone())),
            reversed,
            "{range:?}"
        );
    }
}

fn a_scan_reads_past_many_pages(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let mut batch = WriteBatch::default();
    for i in 0u32..5_000 {
        batch.insert(i.to_be_bytes(), i.to_le_bytes().to_vec());
    }
    space.apply(batch).expect("apply");
    let read: Vec<u32> = space
        .scan(KeyRange::all())
        .map(|p| u32::from_be_bytes(p.expect("read").0.try_into().expect("4 bytes")))
        .collect();
    assert_eq!(read, (0..5_000).collect::<Vec<_>>());
    assert_eq!(space.scan_rev(KeyRange::all()).count(), 5_000);
}

fn keyspaces_are_separate(engine: &Arc<dyn Engine>) {
    let records = engine.keyspace("records").expect("keyspace");
    let artifacts = engine.keyspace("artifacts").expect("keyspace");
    records.insert(b"k", b"record").expect("insert");
    artifacts.insert(b"k", b"artifact").expect("insert");
    assert_eq!(records.get(b"k").expect("get"), Some(b"record".to_vec()));
    assert_eq!(
        artifacts.get(b"k").expect("get"),
        Some(b"artifact".to_vec())
    );
    assert_eq!(artifacts.scan(KeyRange::all()).count(), 1);
}

fn an_empty_or_inverted_range_yields_nothing(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    space
        .apply(put(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
        .expect("apply");
    let b = || b"b".to_vec();
    let empty = [
        KeyRange::half_open(b"b", b"b"),
        KeyRange::half_open(b"c", b"a"),
        KeyRange::inclusive(b"c", b"a"),
        KeyRange {
            start: Bound::Excluded(b()),
            end: Bound::Included(b()),
        },
        KeyRange {
            start: Bound::Excluded(b()),
            end: Bound::Excluded(b()),
        },
        KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Excluded(b()),
        },
    ];
    for range in empty {
        assert_eq!(
            keys_of(space.scan(range.clone())),
            Vec::<Vec<u8>>::new(),
            "{range:?}"
        );
        assert_eq!(
            keys_of(space.scan_rev(range.clone())),
            Vec::<Vec<u8>>::new(),
            "{range:?}"
        );
        assert_eq!(
            space.first(range.clone()).expect("first"),
            None,
            "{range:?}"
        );
        assert_eq!(space.last(range.clone()).expect("last"), None, "{range:?}");
    }
    assert_eq!(
        keys_of(space.scan(KeyRange::inclusive(b"b", b"b"))),
        vec![b()]
    );
}

fn an_empty_batch_changes_nothing(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    space.insert(b"k", b"v").expect("insert");
    space.apply(WriteBatch::default()).expect("an empty batch");
    assert_eq!(space.get(b"k").expect("get"), Some(b"v".to_vec()));
    assert_eq!(space.scan(KeyRange::all()).count(), 1);
}

fn an_engine_answers_from_inside_another_runtime(engine: &Arc<dyn Engine>) {
    // The ledger's API is synchronous and servers call it from their own tokio tasks.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let space = engine.keyspace("records").expect("keyspace");
    current.block_on(async {
        space.insert(b"k", b"1").expect("insert");
        assert_eq!(space.get(b"k").expect("get"), Some(b"1".to_vec()));
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    multi.block_on(async {
        let tasks: Vec<_> = (0u8..6)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let space = engine.keyspace("records").expect("keyspace");
                    space.insert(&[i], &[i]).expect("insert");
                    space.get(&[i]).expect("get")
                })
            })
            .collect();
        for (i, task) in (0u8..).zip(tasks) {
            assert_eq!(task.await.expect("task"), Some(vec![i]));
        }
    });
}

fn a_batch_whose_expectation_fails_writes_nothing(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    space.insert(b"h", b"head-1").expect("insert");
    let mut batch = put(&[(b"e1", b"entry"), (b"h", b"head-2")]);
    batch.expect(b"h", Some(b"head-0".to_vec()));
    let err = space
        .apply(batch)
        .expect_err("the head is not the one expected");
    assert!(matches!(err, LedgerError::Conflict(_)), "{err}");
    assert_eq!(space.get(b"e1").expect("get"), None);
    assert_eq!(space.get(b"h").expect("get"), Some(b"head-1".to_vec()));
}

fn an_expectation_of_absence_holds_only_once(engine: &Arc<dyn Engine>) {
    let space = engine.keyspace("records").expect("keyspace");
    let genesis = |v: &[u8]| {
        let mut batch = put(&[(b"h", v)]);
        batch.expect(b"h", None);
        batch
    };
    space.apply(genesis(b"first")).expect("the first genesis");
    let err = space
        .apply(genesis(b"second"))
        .expect_err("a second genesis");
    assert!(matches!(err, LedgerError::Conflict(_)), "{err}");
    assert_eq!(space.get(b"h").expect("get"), Some(b"first".to_vec()));
}

/// The example ledger (fixed id, keys and clock) created in `engine`: the ledger, its
/// admin key and its clock.
fn example_ledger(
    engine: Arc<dyn Engine>,
) -> (Ledger, ed25519_dalek::SigningKey, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let admin = key(2);
    let ledger = Ledger::create_in(
        engine,
        LedgerId([7; 16]),
        "Example Ltd",
        key(1),
        vec![grant(&admin, "ciso@example.com", &["admin"])],
        config(&clock),
    )
    .expect("create");
    (ledger, admin, clock)
}

fn a_ledger_appends_and_verifies(engine: &Arc<dyn Engine>) {
    let (ledger, admin, clock) = example_ledger(engine.clone());
    append_some(&ledger, &admin, &clock, 40);
    assert_eq!(ledger.head().size, 41);
    let report = ledger.verify(&|_| {}).expect("verifies");
    assert_eq!(report.entries, 41, "the genesis and the 40 appended");
    let proof = ledger.inclusion_proof(ledger::Seq(17), 41).expect("proof");
    assert!(!proof.is_empty());
}

/// Appends `n` enrolments of fresh keys, one per second, in batches of 10.
fn append_some(ledger: &Ledger, admin: &ed25519_dalek::SigningKey, clock: &ManualClock, n: u8) {
    use prost::Message as _;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let events = chunk
            .iter()
            .map(|i| {
                let new = key(100 + i);
                let view = ledger::envelope::EnvelopeView {
                    ledger_id: ledger.ledger_id().0.to_vec(),
                    event_id: format!("enroll-{i}"),
                    effective_at_us: T0,
                    client_time_us: T0,
                    key_enrolled: Some(ledger::envelope::KeyEnrolledView {
                        public_key: new.verifying_key().to_bytes().to_vec(),
                        subject: format!("agent-{i}"),
                        roles: vec!["agent".into()],
                    }),
                    ..Default::default()
                };
                ledger::SignedEvent::sign(admin, view.encode_to_vec())
            })
            .collect();
        for result in ledger.append(events) {
            result.expect("append");
        }
        clock.advance(1_000_000);
    }
}

macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[test]
                fn $name() {
                    let (_dir, engine) = super::sled();
                    super::$name(&engine);
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    let engine = super::postgres(stringify!($name));
                    super::$name(&engine);
                }
            )*
        }
    };
}

on_every_engine!(
    a_batch_is_applied_whole,
    the_last_write_to_a_key_in_a_batch_wins,
    a_deleted_key_is_gone,
    a_scan_returns_keys_in_unsigned_byte_order,
    a_reverse_scan_is_the_exact_reverse,
    every_bound_returns_exactly_the_keys_its_range_contains,
    a_scan_reads_past_many_pages,
    keyspaces_are_separate,
    an_empty_or_inverted_range_yields_nothing,
    an_empty_batch_changes_nothing,
    an_engine_answers_from_inside_another_runtime,
    a_batch_whose_expectation_fails_writes_nothing,
    an_expectation_of_absence_holds_only_once,
    a_ledger_appends_and_verifies,
);

// ---- Both engines, one history. ----

#[test]
fn the_same_appends_store_the_same_bytes_on_both_engines() {
    let (_dir, on_sled) = sled();
    let on_postgres = postgres("same-bytes");
    let build = |engine: Arc<dyn Engine>| {
        let (ledger, admin, clock) = example_ledger(engine.clone());
        append_some(&ledger, &admin, &clock, 30);
        let records: Vec<(Vec<u8>, Vec<u8>)> = engine
            .keyspace("records")
            .expect("records")
            .scan(KeyRange::all())
            .map(|p| p.expect("read"))
            .collect();
        records
    };
    let sled_records = build(on_sled);
    let postgres_records = build(on_postgres);
    let blocks = sled_records
        .iter()
        .filter(|(key, _)| key[0] == b'b')
        .count();
    assert!(
        blocks >= 1 && sled_records.len() > 40,
        "entry blocks, checkpoints, node and index blocks: {} records",
        sled_records.len()
    );
    assert_eq!(sled_records, postgres_records);
}

// ---- What only PostgreSQL has. ----

#[test]
fn two_ledgers_in_one_database_are_separate() {
    let a = postgres("separate-a");
    let b = postgres("separate-b");
    a.keyspace("records")
        .expect("a")
        .insert(b"k", b"a")
        .expect("insert");
    assert_eq!(
        b.keyspace("records").expect("b").get(b"k").expect("get"),
        None
    );
    b.keyspace("records")
        .expect("b")
        .insert(b"k", b"b")
        .expect("insert");
    assert_eq!(
        a.keyspace("records").expect("a").get(b"k").expect("get"),
        Some(b"a".to_vec())
    );
    let names = PostgresEngine::ledgers(&url()).expect("ledgers");
    assert!(names.contains(&"separate-a".to_string()) && names.contains(&"separate-b".to_string()));
}

#[test]
fn a_second_writer_cannot_take_a_held_lease() {
    let first = PostgresEngine::connect(&url(), "held").expect("connect");
    let second = PostgresEngine::connect(&url(), "held").expect("connect");
    let term = first
        .acquire_writer(Duration::from_secs(30), Duration::ZERO)
        .expect("the first takes it");
    let started = Instant::now();
    let err = second
        .acquire_writer(Duration::from_secs(30), Duration::from_millis(300))
        .expect_err("held");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited {:?}, not the 300 ms asked",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(matches!(err, LedgerError::NotWriter { .. }), "{text}");
    assert!(
        text.contains(&format!("term {term}")),
        "names the holder's term: {text}"
    );
    assert!(
        text.contains(&format!("pid {}", std::process::id())) && text.contains(" until "),
        "names the holder and when its lease ends: {text}"
    );
    assert_eq!(first.writer_term(), Some(term));
    assert_eq!(second.writer_term(), None);
}

/// A TCP proxy in front of the shared server that can cut every connection through it and
/// refuse new ones: a network partition between one server and the database.
struct Partition {
    port: u16,
    /// Whether the network is cut, and the sockets of the connections made through it.
    state: Arc<Mutex<(bool, Vec<TcpStream>)>>,
}

impl Partition {
    fn to(upstream: u16) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state: Arc<Mutex<(bool, Vec<TcpStream>)>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut state = shared.lock().expect("state");
                if state.0 {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (
                        from.try_clone().expect("clone"),
                        to.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.flush();
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                state.1.extend([client, server]);
            }
        });
        Partition { port, state }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Cuts every connection and refuses new ones.
    fn cut(&self) {
        let mut state = self.state.lock().expect("state");
        state.0 = true;
        for stream in state.1.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets new connections through again.
    fn heal(&self) {
        self.state.lock().expect("state").0 = false;
    }
}

#[test]
fn a_lapsed_lease_is_taken_over_with_a_higher_term_and_the_old_writers_late_batch_is_refused() {
    let lease = Duration::from_millis(500);
    let partition = Partition::to(cluster().port());
    let old = PostgresEngine::connect(&partition.url("conformance"), "lapsed").expect("connect");
    let old_space = old.keyspace("records").expect("records");
    let old_term = old.acquire_writer(lease, Duration::ZERO).expect("take");
    old_space.insert(b"old", b"1").expect("the writer writes");
    let new = PostgresEngine::connect(&url(), "lapsed").expect("connect");
    // Longer than the lease: the old writer's renewals keep it.
    std::thread::sleep(lease * 2);
    let err = new
        .acquire_writer(lease, Duration::ZERO)
        .expect_err("the old writer renews its lease");
    assert!(matches!(err, LedgerError::NotWriter { .. }), "{err}");

    // The old writer loses the database: it cannot renew, and its lease runs out.
    partition.cut();
    let err = old_space
        .apply(put(&[(b"cut", b"off")]))
        .expect_err("no database");
    assert!(matches!(err, LedgerError::Database { .. }), "{err}");
    let new_term = new
        .acquire_writer(lease, Duration::from_secs(20))
        .expect("taken over once the old lease ran out");
    assert!(new_term > old_term, "term {new_term} after {old_term}");
    let new_space = new.keyspace("records").expect("records");
    new_space
        .insert(b"new", b"2")
        .expect("the new writer writes");

    // The old writer comes back, unaware: the database refuses its late batch.
    partition.heal();
    assert_eq!(old.writer_term(), Some(old_term));
    for attempt in 0..2 {
        let err = old_space
            .apply(put(&[(b"late", b"batch"), (b"new", b"overwritten")]))
            .expect_err("the old writer's late batch");
        assert!(
            matches!(err, LedgerError::NotWriter { .. }),
            "attempt {attempt}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("term {new_term}")),
            "names the term that fenced it out: {err}"
        );
    }
    assert_eq!(new_space.get(b"late").expect("get"), None);
    assert_eq!(new_space.get(b"cut").expect("get"), None);
    assert_eq!(new_space.get(b"new").expect("get"), Some(b"2".to_vec()));
    assert_eq!(new_space.get(b"old").expect("get"), Some(b"1".to_vec()));
    let lost = old
        .lost_writer()
        .expect("the old writer knows it lost the lease");
    assert!(lost.contains(&format!("term {new_term}")), "{lost}");
    assert_eq!(new.lost_writer(), None);
    // The new writer keeps its lease: the old one's renewals do not take it back.
    std::thread::sleep(lease);
    new_space.insert(b"newer", b"3").expect("still the writer");
}

#[test]
fn a_released_writer_cannot_write_until_it_takes_the_lease_again() {
    let engine = PostgresEngine::connect(&url(), "release-fence").expect("connect");
    let space = engine.keyspace("records").expect("records");
    let term = engine
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("take");
    engine.release_writer().expect("release");
    assert_eq!(engine.writer_term(), None);
    assert_eq!(engine.lost_writer(), None, "released, not taken over");
    let err = space.insert(b"k", b"v").expect_err("released");
    assert!(matches!(err, LedgerError::NotWriter { .. }), "{err}");
    let again = engine
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("take again");
    assert_eq!(again, term + 1);
    space.insert(b"k", b"v").expect("the writer again");
}

#[test]
fn a_writer_whose_lease_was_taken_over_is_fenced_by_the_database() {
    let old = PostgresEngine::connect(&url(), "fenced").expect("connect");
    let old_term = old
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("take");
    // As if the old writer had been paused past its lease: it ran out.
    cluster().query(
        "conformance",
        "UPDATE isms_writer_lease SET expires_at = now() - interval '1 second' \
         WHERE ledger = 'fenced'",
    );
    let new = PostgresEngine::connect(&url(), "fenced").expect("connect");
    let new_term = new
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("the new writer takes the lease");
    assert_eq!(new_term, old_term + 1);
    let err = old
        .keyspace("records")
        .expect("records")
        .apply(put(&[(b"late", b"batch")]))
        .expect_err("the old writer's late batch");
    assert!(matches!(err, LedgerError::NotWriter { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("term {new_term}")),
        "{err}"
    );
    assert_eq!(
        new.keyspace("records")
            .expect("records")
            .get(b"late")
            .expect("get"),
        None
    );
}

#[test]
fn a_released_lease_is_taken_at_once() {
    let first = PostgresEngine::connect(&url(), "released").expect("connect");
    first
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("take");
    first.release_writer().expect("release");
    let second = PostgresEngine::connect(&url(), "released").expect("connect");
    second
        .acquire_writer(Duration::from_secs(60), Duration::ZERO)
        .expect("taken without waiting for the old lease to run out");
}

#[test]
fn a_connection_cut_by_the_server_is_made_again() {
    cluster().create_database("cut");
    let engine = PostgresEngine::connect(&cluster().url("cut"), "cut").expect("connect");
    let space = engine.keyspace("records").expect("records");
    space.insert(b"k", b"v").expect("insert");
    assert_eq!(space.get(b"k").expect("get"), Some(b"v".to_vec()));
    let cut = cluster().query(
        "cut",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = 'cut' AND pid <> pg_backend_pid()",
    );
    assert!(cut.parse::<u32>().expect("a count") >= 2, "{cut}");
    // A call on a cut connection fails as a database error (never a panic or a hang); the
    // next one connects again.
    let mut read = None;
    for _ in 0..3 {
        match space.get(b"k") {
            Ok(value) => {
                read = Some(value);
                break;
            }
            Err(e) => assert!(matches!(e, LedgerError::Database { .. }), "{e}"),
        }
    }
    assert_eq!(read, Some(Some(b"v".to_vec())), "read again");
    let mut written = false;
    for i in 0u8..3 {
        match space.insert(&[i], b"w") {
            Ok(()) => {
                written = true;
                break;
            }
            Err(e) => assert!(matches!(e, LedgerError::Database { .. }), "{e}"),
        }
    }
    assert!(written, "wrote again");
}

#[test]
fn servers_starting_together_migrate_the_schema_once() {
    cluster().create_database("fresh");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let url = cluster().url("fresh");
            std::thread::spawn(move || PostgresEngine::connect(&url, &format!("l{i}")).map(drop))
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread").expect("connect");
    }
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    let expected: Vec<String> = (1..=files).map(|v| v.to_string()).collect();
    assert_eq!(
        cluster().query(
            "fresh",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM isms_schema_migrations"
        ),
        expected.join(",")
    );
    PostgresEngine::connect(&cluster().url("fresh"), "again")
        .expect("connects to a current schema");
}

#[test]
fn the_size_is_the_payload_of_this_ledger() {
    let a = postgres("size-a");
    let b = postgres("size-b");
    a.keyspace("records")
        .expect("records")
        .apply(put(&[(b"k1", b"value"), (b"key-2", b"")]))
        .expect("apply");
    a.keyspace("artifacts")
        .expect("artifacts")
        .insert(b"blob", &[0; 1000])
        .expect("insert");
    b.keyspace("records")
        .expect("records")
        .insert(b"other", &[0; 5000])
        .expect("insert");
    assert_eq!(a.size_bytes().expect("size"), 2 + 5 + 5 + 4 + 1000);
    assert_eq!(a.kind(), "postgres");
    assert!(a.durable_on_apply());
    assert!(a.folder().is_none());
    a.flush().expect("flush");
}

#[test]
fn a_database_stopped_mid_batch_keeps_each_batch_whole_or_not_at_all() {
    const PER_BATCH: u32 = 2_000;
    let mut cluster = pg::PgCluster::start();
    cluster.create_database("midway");
    let url = cluster.url("midway");
    let engine = PostgresEngine::connect(&url, "midway").expect("connect");
    let acknowledged = Arc::new(AtomicU32::new(0));
    let writer = {
        let acknowledged = acknowledged.clone();
        std::thread::spawn(move || {
            let space = engine.keyspace("records").expect("records");
            for n in 0u32.. {
                let mut batch = WriteBatch::default();
                for i in 0..PER_BATCH {
                    batch.insert([n.to_be_bytes(), i.to_be_bytes()].concat(), vec![7; 100]);
                }
                if let Err(e) = space.apply(batch) {
                    return (n, e);
                }
                acknowledged.store(n + 1, Ordering::SeqCst);
            }
            unreachable!()
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster.stop();
    let (failed, err) = writer.join().expect("writer");
    assert!(matches!(err, LedgerError::Database { .. }), "{err}");
    let acknowledged = acknowledged.load(Ordering::SeqCst);
    assert_eq!(
        failed, acknowledged,
        "the batches before the failed one were acknowledged"
    );
    cluster.restart();
    let engine = PostgresEngine::connect(&url, "midway").expect("connect again");
    let mut per_batch = BTreeMap::<u32, u32>::new();
    for pair in engine
        .keyspace("records")
        .expect("records")
        .scan(KeyRange::all())
    {
        let (key, _) = pair.expect("read");
        let n = u32::from_be_bytes(key[..4].try_into().expect("4 bytes"));
        *per_batch.entry(n).or_default() += 1;
    }
    for n in 0..acknowledged {
        assert_eq!(
            per_batch.get(&n),
            Some(&PER_BATCH),
            "acknowledged batch {n}"
        );
    }
    // The batch cut mid-way: committed whole (its answer lost) or not at all.
    let cut = per_batch.get(&failed).copied().unwrap_or(0);
    assert!(
        cut == 0 || cut == PER_BATCH,
        "batch {failed} has {cut} keys"
    );
    assert!(per_batch.keys().all(|n| *n <= failed), "{per_batch:?}");
}

#[test]
fn a_batch_against_a_stopped_database_fails_and_stores_nothing() {
    let mut cluster = pg::PgCluster::start();
    cluster.create_database("stopped");
    let engine = PostgresEngine::connect(&cluster.url("stopped"), "stopped").expect("connect");
    let space = engine.keyspace("records").expect("records");
    space.insert(b"before", b"1").expect("insert");
    cluster.stop();
    let err = space
        .apply(put(&[(b"during", b"2")]))
        .expect_err("no database");
    assert!(matches!(err, LedgerError::Database { .. }), "{err}");
    cluster.restart();
    assert_eq!(space.get(b"during").expect("read after restart"), None);
    assert_eq!(space.get(b"before").expect("read"), Some(b"1".to_vec()));
    space
        .insert(b"after", b"3")
        .expect("the engine connects again");
}

#[test]
fn a_read_only_ledger_follows_what_another_writes() {
    let (writer, admin, clock) = example_ledger(postgres("follow"));
    let reader = Ledger::open_in(postgres("follow"), config(&clock), None).expect("open");
    append_some(&writer, &admin, &clock, 20);
    assert_eq!(reader.head().size, 1, "not yet refreshed");
    assert_eq!(reader.refresh().expect("refresh"), 21);
    assert_eq!(reader.head(), writer.head());
    assert!(reader.get_by_event_id("enroll-19").expect("read").is_some());
    assert_eq!(
        reader.latest_checkpoint().expect("checkpoint"),
        writer.latest_checkpoint().expect("checkpoint")
    );
}

#[test]
fn fifty_ledgers_of_one_database_share_a_handful_of_connections() {
    cluster().create_database("many");
    let url = cluster().url("many");
    let engines: Vec<PostgresEngine> = (0..50)
        .map(|i| PostgresEngine::connect(&url, &format!("org-{i}")).expect("connect"))
        .collect();
    for engine in &engines {
        let space = engine.keyspace("records").expect("records");
        space
            .insert(b"k", engine.ledger().as_bytes())
            .expect("write");
        assert_eq!(
            space.get(b"k").expect("read"),
            Some(engine.ledger().as_bytes().to_vec()),
            "each ledger reads its own"
        );
    }
    let open: u32 = cluster()
        .query(
            "many",
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = 'many' AND application_name = 'isms-ledger'",
        )
        .parse()
        .expect("a count");
    // One reading connection and at most four writing ones, whatever the number of ledgers.
    assert!((1..=5).contains(&open), "{open} connections for 50 ledgers");
}
