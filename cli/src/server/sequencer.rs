//! The sequencer: the one writer of the ledger, pipelined in three stages.
//!
//! 1. Submissions are *prepared* before the writer sees them (body checks and batched
//!    signature verification): a large one on a blocking thread where it arrives, small ones
//!    (unary appends) gathered by a preparer thread so that concurrent requests share one
//!    batched signature check. Signatures never wait for the writer.
//! 2. The writer thread drains the queue and *stages* each drained batch with one
//!    `Ledger::stage` (one atomic sled batch, one checkpoint), then hands it to the flusher.
//! 3. The flusher thread makes everything staged so far durable with one `make_durable`
//!    (one flush) and only then answers every submitter of those batches.
//!
//! While one flush runs the writer stages the next batches, so a slow disk makes batches
//! larger instead of making appends wait in line: group commit, with no receipt before its
//! flush.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ledger::{AppendError, Appended, Ledger, Prepared, SignedEvent, Staged};
use tokio::sync::{mpsc, oneshot, watch};

use super::admission::IsmsAdmission;
use super::metrics::Metrics;
use super::status::append_status;

/// Most events one batch takes. Bounds the latency a batch adds and the memory it holds:
/// at 8,192 a 200,000-event AppendStream burst left the server ~70 MiB larger and no faster
/// (sled digests a huge batch in one piece); at 1,024 group commit still fills whole batches.
const MAX_BATCH_EVENTS: usize = 1024;
/// Submissions waiting for the writer. Past this, submitters wait (backpressure).
const QUEUE_DEPTH: usize = 16_384;

/// What a batch committed: the checkpoint that first covers its new entries. Shared by every
/// receipt of the batch so the note is read (and its signature checked) once per batch.
#[derive(Debug)]
pub struct BatchCheckpoint {
    /// Tree size of the checkpoint written with the batch.
    pub size: u64,
    /// Its signed-note text, if the batch wrote one.
    pub note: Option<String>,
}

/// The outcome of one submission: one result per event, in order.
#[derive(Debug)]
pub struct Committed {
    /// One result per submitted event.
    pub results: Vec<Result<Appended, AppendError>>,
    /// The checkpoint of the batch that held them.
    pub checkpoint: Arc<BatchCheckpoint>,
}

enum Message {
    Submit(Submission),
    /// Wakes the writer so it sees that the sequencer is closing.
    Wake,
}

struct Submission {
    prepared: Prepared,
    /// Who submitted which events, in order: (number of events, where to answer).
    parts: Vec<(usize, oneshot::Sender<Committed>)>,
}

/// A small submission waiting for the preparer.
enum Raw {
    Events(Vec<SignedEvent>, oneshot::Sender<Committed>),
    /// Wakes the preparer so it sees that the sequencer is closing.
    Wake,
}

/// Most events the preparer gathers into one `prepare`.
const MAX_PREPARE_EVENTS: usize = 1024;
/// Submissions of at most this many events go through the preparer.
const SMALL_SUBMISSION: usize = 4;

/// A staged batch on its way to the flusher, with whom to answer.
struct StagedBatch {
    staged: Staged,
    lengths: Vec<usize>,
    replies: Vec<oneshot::Sender<Committed>>,
}

/// Staged batches waiting for a flush. Small: if the disk falls behind, the writer waits
/// here and the queue in front of it fills, which slows submitters (backpressure).
const FLUSH_QUEUE: usize = 8;

/// Why a submission was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The server is shutting down and takes no new events.
    #[error(
        "the server is shutting down and takes no new events; retry against the restarted server"
    )]
    ShuttingDown,
}

/// The submitting side of the sequencer; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sequencer {
    ledger: Arc<Ledger>,
    queue: mpsc::Sender<Message>,
    small: mpsc::Sender<Raw>,
    closing: Arc<AtomicBool>,
    committed: watch::Receiver<u64>,
}

/// The preparer's and the writer's threads, to wait for them at shutdown.
#[derive(Debug)]
pub struct WriterThread {
    preparer: std::thread::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
}

impl WriterThread {
    /// Waits until the preparer has handed over what it took and the writer has committed
    /// everything it took, and both stopped.
    pub fn join(self) {
        let _ = self.preparer.join();
        let _ = self.writer.join();
    }
}

impl Sequencer {
    /// Starts the writer thread over `ledger`, with the ISMS admission rebuilt from it.
    pub fn start(
        ledger: Arc<Ledger>,
        admission: IsmsAdmission,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Sequencer, WriterThread)> {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let (committed_tx, committed) = watch::channel(ledger.head().size);
        // A dedicated OS thread rather than spawn_blocking: it lives as long as the server and
        // spends its time in fsync, which must not occupy a runtime worker.
        let closing = Arc::new(AtomicBool::new(false));
        let flag = closing.clone();
        let writer_ledger = ledger.clone();
        let writer = std::thread::Builder::new()
            .name("isms-sequencer".into())
            .spawn(move || run(writer_ledger, admission, rx, committed_tx, flag, metrics))?;
        let (small, small_rx) = mpsc::channel(QUEUE_DEPTH);
        let preparer = {
            let ledger = ledger.clone();
            let queue = queue.clone();
            let closing = closing.clone();
            std::thread::Builder::new()
                .name("isms-preparer".into())
                .spawn(move || prepare_loop(&ledger, small_rx, &queue, &closing))?
        };
        Ok((
            Sequencer {
                ledger,
                queue,
                small,
                closing,
                committed,
            },
            WriterThread { preparer, writer },
        ))
    }

    /// Submissions waiting for the writer or the preparer.
    pub fn queue_depth(&self) -> u64 {
        let waiting = |q_max: usize, free: usize| (q_max - free) as u64;
        waiting(self.queue.max_capacity(), self.queue.capacity())
            + waiting(self.small.max_capacity(), self.small.capacity())
    }

    /// Appends `events` (in order, possibly sharing a batch with other submitters) and answers
    /// once the batch is flushed.
    pub async fn submit(&self, events: Vec<SignedEvent>) -> Result<Committed, SubmitError> {
        let rx = self.enqueue(events).await?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)
    }

    /// Appends `events` as one all-or-nothing group (see [`Prepared::all_or_nothing`]): staged
    /// alone, written in one atomic write or not at all, answered once flushed.
    pub async fn submit_atomic(&self, events: Vec<SignedEvent>) -> Result<Committed, SubmitError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let rx = self.prepare_and_queue(events, true).await?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)
    }

    /// Queues `events` and returns the receiver of their outcome, so a stream can keep
    /// submitting while earlier submissions are being written.
    pub async fn enqueue(
        &self,
        events: Vec<SignedEvent>,
    ) -> Result<oneshot::Receiver<Committed>, SubmitError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if events.len() <= SMALL_SUBMISSION {
            let (reply, rx) = oneshot::channel();
            // Gathered with other small submissions, so their signatures are checked in one
            // batch instead of one by one.
            self.small
                .send(Raw::Events(events, reply))
                .await
                .map_err(|_| SubmitError::ShuttingDown)?;
            return Ok(rx);
        }
        self.prepare_and_queue(events, false).await
    }

    /// Prepares `events` on the blocking pool, where prepare spreads over every core (as one
    /// all-or-nothing group when `atomic`), and queues them for the writer as one submission.
    async fn prepare_and_queue(
        &self,
        events: Vec<SignedEvent>,
        atomic: bool,
    ) -> Result<oneshot::Receiver<Committed>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let ledger = self.ledger.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let prepared = ledger.prepare(events);
            if atomic {
                prepared.all_or_nothing()
            } else {
                prepared
            }
        })
        .await
        .map_err(|_| SubmitError::ShuttingDown)?;
        self.queue
            .send(Message::Submit(Submission {
                parts: vec![(prepared.len(), reply)],
                prepared,
            }))
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        Ok(rx)
    }

    /// Refuses every later submission; those already queued are still written, then the
    /// writer stops. A submission racing with this either makes it into the last batch or is
    /// refused (its reply channel is dropped): never half-written.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        // If a queue is full its thread is busy and sees the flag after its batch.
        let _ = self.small.try_send(Raw::Wake);
        let _ = self.queue.try_send(Message::Wake);
    }

    /// The committed ledger size, updated after every batch (for Subscribe).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }
}

fn run(
    ledger: Arc<Ledger>,
    mut admission: IsmsAdmission,
    mut rx: mpsc::Receiver<Message>,
    committed: watch::Sender<u64>,
    closing: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    let (to_flusher, flusher_rx) = std::sync::mpsc::sync_channel::<StagedBatch>(FLUSH_QUEUE);
    let flusher = {
        let ledger = ledger.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("isms-flusher".into())
            .spawn(move || flush_loop(&ledger, flusher_rx, committed, &metrics))
    };
    let Ok(flusher) = flusher else {
        // Without a flusher nothing could be acknowledged: refuse everything by returning,
        // which drops the queue and fails every pending reply.
        return;
    };
    // Ends when the sequencer is closed and the queue is drained (or every handle is
    // dropped): everything that was taken is staged, then flushed, before the thread stops.
    'taking: loop {
        let mut submissions = Vec::new();
        let mut count = 0;
        if !closing.load(Ordering::SeqCst) {
            match rx.blocking_recv() {
                Some(Message::Submit(s)) => {
                    count += s.prepared.len();
                    submissions.push(s);
                }
                Some(Message::Wake) => {}
                None => break,
            }
        }
        while count < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(Message::Submit(s)) => {
                    count += s.prepared.len();
                    submissions.push(s);
                }
                Ok(Message::Wake) => {}
                Err(_) => break,
            }
        }
        if submissions.is_empty() {
            if closing.load(Ordering::SeqCst) {
                // Dropping the receiver refuses anything sent from now on.
                break;
            }
            continue;
        }
        // Submissions are merged into one batch, except an all-or-nothing group, which is
        // staged on its own so that its refusal cannot touch anyone else's events.
        let mut runs: Vec<Vec<Submission>> = Vec::new();
        for s in submissions {
            match runs.last_mut() {
                Some(run) if !s.prepared.is_atomic() && !run[0].prepared.is_atomic() => run.push(s),
                _ => runs.push(vec![s]),
            }
        }
        for run in runs {
            let batch = stage_run(&ledger, &mut admission, run, &metrics);
            if to_flusher.send(batch).is_err() {
                break 'taking;
            }
        }
    }
    drop(to_flusher);
    let _ = flusher.join();
}

/// Stages one run of submissions as one batch and says whom to answer.
fn stage_run(
    ledger: &Ledger,
    admission: &mut IsmsAdmission,
    run: Vec<Submission>,
    metrics: &Metrics,
) -> StagedBatch {
    let mut lengths = Vec::with_capacity(run.len());
    let mut replies = Vec::with_capacity(run.len());
    let mut batch: Option<Prepared> = None;
    for s in run {
        for (len, reply) in s.parts {
            lengths.push(len);
            replies.push(reply);
        }
        match batch.as_mut() {
            Some(b) => b.extend(s.prepared),
            None => batch = Some(s.prepared),
        }
    }
    let batch = batch.expect("a run holds at least one submission");
    let mut staged = ledger.stage(batch, admission);
    metrics.batch_events.observe(staged.results.len() as f64);
    if staged
        .results
        .iter()
        .any(|r| matches!(r, Err(AppendError::Store(_))))
    {
        // The validator admitted events the store did not keep: its state is ahead of the
        // ledger. Rebuild it from what the ledger holds.
        match IsmsAdmission::rebuild(ledger) {
            Ok(fresh) => *admission = fresh,
            Err(e) => {
                for r in staged.results.iter_mut() {
                    if r.is_ok() {
                        *r = Err(AppendError::Store(format!(
                            "rebuilding the rules state failed: {e}"
                        )));
                    }
                }
            }
        }
    }
    StagedBatch {
        staged,
        lengths,
        replies,
    }
}

/// Gathers small submissions, prepares them together (one batched signature check) and hands
/// them to the writer. Stops once the sequencer is closing and nothing small is waiting.
fn prepare_loop(
    ledger: &Ledger,
    mut rx: mpsc::Receiver<Raw>,
    queue: &mpsc::Sender<Message>,
    closing: &AtomicBool,
) {
    loop {
        let mut events = Vec::new();
        let mut parts = Vec::new();
        let mut take = |raw: Raw, events: &mut Vec<SignedEvent>| {
            if let Raw::Events(e, reply) = raw {
                parts.push((e.len(), reply));
                events.extend(e);
            }
        };
        if !closing.load(Ordering::SeqCst) {
            match rx.blocking_recv() {
                Some(raw) => take(raw, &mut events),
                None => return,
            }
        }
        while events.len() < MAX_PREPARE_EVENTS {
            match rx.try_recv() {
                Ok(raw) => take(raw, &mut events),
                Err(_) => break,
            }
        }
        if parts.is_empty() {
            if closing.load(Ordering::SeqCst) {
                // Dropping the receiver refuses anything sent from now on.
                return;
            }
            continue;
        }
        let prepared = ledger.prepare(events);
        if queue
            .blocking_send(Message::Submit(Submission { prepared, parts }))
            .is_err()
        {
            // The writer has stopped: the replies are dropped, so these events are refused.
            return;
        }
    }
}

/// Takes every staged batch waiting, makes them durable with one flush, then answers them.
fn flush_loop(
    ledger: &Ledger,
    rx: std::sync::mpsc::Receiver<StagedBatch>,
    committed: watch::Sender<u64>,
    metrics: &Metrics,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        let needed = batches
            .iter()
            .map(|b| b.staged.durable_size)
            .max()
            .unwrap_or(0);
        let started = std::time::Instant::now();
        let durable = ledger.make_durable(needed);
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Ok(head) = &durable {
            committed.send_if_modified(|size| {
                let grew = head.size > *size;
                *size = (*size).max(head.size);
                grew
            });
        }
        for batch in batches {
            answer(
                ledger,
                batch,
                durable.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                metrics,
            );
        }
    }
}

/// Sends each submitter its results, or store errors if the flush failed.
fn answer(ledger: &Ledger, batch: StagedBatch, durable: Result<(), String>, metrics: &Metrics) {
    let StagedBatch {
        staged,
        lengths,
        replies,
    } = batch;
    let mut results = staged.results;
    if let Err(why) = durable {
        for r in results.iter_mut() {
            if r.is_ok() {
                *r = Err(AppendError::Store(format!("flush failed: {why}")));
            }
        }
    }
    for result in &results {
        match result {
            Ok(appended) if !appended.duplicate => {
                metrics.events_appended.inc();
            }
            Ok(_) => {}
            Err(e) => metrics.refused(append_status(e).code()),
        }
    }
    let size = results
        .iter()
        .flatten()
        .filter(|a| !a.duplicate)
        .map(|a| a.checkpoint_size)
        .max()
        .unwrap_or(0);
    let note = if size > 0 {
        ledger.checkpoint_at(size).ok().flatten().map(|c| c.note)
    } else {
        None
    };
    let checkpoint = Arc::new(BatchCheckpoint { size, note });
    let mut results = results.into_iter();
    for (len, reply) in lengths.into_iter().zip(replies) {
        let _ = reply.send(Committed {
            results: results.by_ref().take(len).collect(),
            checkpoint: checkpoint.clone(),
        });
    }
}
