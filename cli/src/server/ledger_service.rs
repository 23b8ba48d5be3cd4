//! The `isms.ledger.v1.Ledger` service: appends through the sequencer, reads straight from the
//! store (sled reads are safe alongside the single writer).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_server;
use ledger::{
    AppendError, Appended, ArtifactHash, ArtifactState, Entry, KeyId, Ledger, Seq, SignedEvent,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::auth::ReadAuth;
use super::limits::{self, Gate};
use super::metrics::Metrics;
use super::sequencer::{Committed, Sequencer};
use super::status::{append_status, ledger_status};
use super::witnesses::{age_seconds, Witnesses};

/// Largest artifact PutArtifact takes (the store keeps each artifact as one value).
pub const MAX_ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes per chunk GetArtifact sends.
const CHUNK_BYTES: usize = 256 * 1024;
/// Events read from the store per step of a Subscribe catch-up.
const CATCH_UP_STEP: u64 = 512;
/// Most events one AppendAtomic group may hold: one writer batch.
const MAX_ATOMIC_EVENTS: usize = 1024;
/// Checkpoints ListCheckpoints reads ahead of a slow reader.
const LIST_BUFFER: usize = 64;
/// Events a stream hands to the sequencer at once, at most.
const STREAM_CHUNK: usize = 1024;
/// Submissions of one AppendStream in flight at once (pipelining across batches).
const STREAM_IN_FLIGHT: usize = 8;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Method paths, as the read-request signature covers them.
pub mod method {
    /// `GetEntry`.
    pub const GET_ENTRY: &str = "/isms.ledger.v1.Ledger/GetEntry";
    /// `Subscribe`.
    pub const SUBSCRIBE: &str = "/isms.ledger.v1.Ledger/Subscribe";
    /// `GetCheckpoint`.
    pub const GET_CHECKPOINT: &str = "/isms.ledger.v1.Ledger/GetCheckpoint";
    /// `ListCheckpoints`.
    pub const LIST_CHECKPOINTS: &str = "/isms.ledger.v1.Ledger/ListCheckpoints";
    /// `GetInclusionProof`.
    pub const GET_INCLUSION_PROOF: &str = "/isms.ledger.v1.Ledger/GetInclusionProof";
    /// `GetConsistencyProof`.
    pub const GET_CONSISTENCY_PROOF: &str = "/isms.ledger.v1.Ledger/GetConsistencyProof";
    /// `PutArtifact`.
    pub const PUT_ARTIFACT: &str = "/isms.ledger.v1.Ledger/PutArtifact";
    /// `GetArtifact`.
    pub const GET_ARTIFACT: &str = "/isms.ledger.v1.Ledger/GetArtifact";
    /// `GetStatus`.
    pub const GET_STATUS: &str = "/isms.ledger.v1.Ledger/GetStatus";
}

/// The Ledger service.
#[derive(Debug, Clone)]
pub struct LedgerService {
    ledger: Arc<Ledger>,
    sequencer: Sequencer,
    auth: Arc<ReadAuth>,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    witnesses: Witnesses,
}

impl LedgerService {
    /// A service over `ledger`, appending through `sequencer`; GetStatus reports `witnesses`.
    pub fn new(
        ledger: Arc<Ledger>,
        sequencer: Sequencer,
        auth: Arc<ReadAuth>,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
        witnesses: Witnesses,
    ) -> Self {
        LedgerService {
            ledger,
            sequencer,
            auth,
            shutdown,
            metrics,
            witnesses,
        }
    }
}

/// A stored checkpoint as readers get it: its note with the witness cosignatures the ledger
/// keeps for that size as extra signature lines.
fn cosigned(
    ledger: &Ledger,
    checkpoint: Result<ledger::SignedCheckpoint, ledger::LedgerError>,
) -> Result<ledger::SignedCheckpoint, Status> {
    checkpoint
        .and_then(|c| ledger.with_cosignatures(c))
        .map_err(|e| ledger_status(&e))
}

/// Checks the shape of a submitted event (lengths of key id and signature).
pub fn signed_event(request: pb::AppendRequest) -> Result<SignedEvent, Status> {
    let key_id = KeyId::from_slice(&request.key_id).ok_or_else(|| {
        Status::invalid_argument(format!(
            "key_id: must be 32 bytes (got {})",
            request.key_id.len()
        ))
    })?;
    let signature: [u8; 64] = request.signature.as_slice().try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "signature: must be 64 bytes (got {})",
            request.signature.len()
        ))
    })?;
    Ok(SignedEvent {
        key_id,
        signature,
        body: request.body,
    })
}

fn entry_message(entry: Entry) -> pb::Entry {
    let entry_hash = entry.hash().0.to_vec();
    pb::Entry {
        seq: entry.seq.0,
        recorded_at_us: entry.recorded_at.0,
        prev_hash: entry.prev_hash.0.to_vec(),
        key_id: entry.key_id.0.to_vec(),
        signature: entry.signature.to_vec(),
        body: entry.body,
        entry_hash,
    }
}

/// The receipt message of an accepted event, its checkpoint and inclusion path. Everything
/// else it carries comes with the append result: building it reads nothing.
fn receipt_message(
    appended: &Appended,
    size: u64,
    note: String,
    path: Vec<[u8; 32]>,
) -> pb::Receipt {
    pb::Receipt {
        seq: appended.seq.0,
        entry_hash: appended.entry_hash.0.to_vec(),
        recorded_at_us: appended.recorded_at.0,
        prev_hash: appended.prev_hash.0.to_vec(),
        key_id: appended.key_id.0.to_vec(),
        signature: appended.signature.to_vec(),
        checkpoint: note,
        inclusion_path: path.into_iter().map(|h| h.to_vec()).collect(),
        duplicate: appended.duplicate,
        checkpoint_size: size,
    }
}

/// The receipts of a committed submission. Fresh entries reuse their batch's checkpoint note
/// and have their inclusion proofs built together (they share the upper nodes); a retry
/// looks up the checkpoint that first covered the original.
fn results_of(ledger: &Ledger, committed: Committed) -> Vec<Result<pb::Receipt, Status>> {
    let batch = &committed.checkpoint;
    let in_batch =
        |a: &Appended| !a.duplicate && a.checkpoint_size == batch.size && batch.note.is_some();
    let seqs: Vec<Seq> = committed
        .results
        .iter()
        .flatten()
        .filter(|a| in_batch(a))
        .map(|a| a.seq)
        .collect();
    let mut paths = if seqs.is_empty() {
        Ok(Vec::new().into_iter())
    } else {
        ledger
            .inclusion_proofs(&seqs, batch.size)
            .map(Vec::into_iter)
    };
    let note = batch.note.clone().unwrap_or_default();
    committed
        .results
        .into_iter()
        .map(|r| match r {
            Ok(appended) if in_batch(&appended) => match &mut paths {
                Ok(paths) => {
                    let path = paths
                        .next()
                        .ok_or_else(|| Status::internal("missing proof"))?;
                    Ok(receipt_message(&appended, batch.size, note.clone(), path))
                }
                Err(e) => Err(ledger_status(e)),
            },
            Ok(appended) => {
                let covering = cosigned(ledger, ledger.covering_checkpoint(appended.seq))?;
                let size = covering.checkpoint.size;
                let path = ledger
                    .inclusion_proof(appended.seq, size)
                    .map_err(|e| ledger_status(&e))?;
                Ok(receipt_message(&appended, size, covering.note, path))
            }
            Err(e) => Err(append_status(&e)),
        })
        .collect()
}

/// The refusal of an all-or-nothing group: the first refused event's code, and every refused
/// event by its place in the group.
fn group_status(total: usize, refused: &[(usize, Status)]) -> Status {
    let list: Vec<String> = refused
        .iter()
        .map(|(i, status)| format!("event {i}: {}", status.message()))
        .collect();
    let details = pb::AppendAtomicRefusal {
        refused: refused
            .iter()
            .map(|(i, status)| pb::RefusedEvent {
                index: *i as u32,
                error: Some(pb::AppendError {
                    code: status.code() as i32,
                    message: status.message().to_string(),
                }),
            })
            .collect(),
    };
    Status::with_details(
        refused[0].1.code(),
        format!(
            "nothing was stored: {} of the {total} events of the group were refused; {}",
            refused.len(),
            list.join("; ")
        ),
        prost::Message::encode_to_vec(&details).into(),
    )
}

/// One open Subscribe stream, counted in the metrics while it lives.
struct Subscribed(Arc<Metrics>);

impl Subscribed {
    fn new(metrics: Arc<Metrics>) -> Subscribed {
        metrics.subscribers.inc();
        Subscribed(metrics)
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscribers.dec();
    }
}

/// Charges each event the sequencer took (its signature verified) to its key's rate.
fn spend_admitted(gate: &Gate, committed: &Committed) {
    for appended in committed.results.iter().flatten() {
        gate.spend(&appended.key_id, 1);
    }
}

fn shutting_down(e: super::sequencer::SubmitError) -> Status {
    Status::unavailable(e.to_string())
}

fn checkpoint_message(c: ledger::SignedCheckpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        note: c.note,
        origin: c.checkpoint.origin,
        size: c.checkpoint.size,
        root: c.checkpoint.root.to_vec(),
        time_us: c.checkpoint.time.0,
    }
}

#[tonic::async_trait]
impl ledger_server::Ledger for LedgerService {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let request = request.into_inner();
        let gate = self.auth.gate();
        // Refusals before the sequencer are counted here; the sequencer counts its own.
        let refused = |status: Status| {
            self.metrics.refused(status.code());
            status
        };
        if let Some(key) = KeyId::from_slice(&request.key_id) {
            gate.admit(&key).map_err(refused)?;
        }
        let event = signed_event(request).map_err(refused)?;
        let committed = self
            .sequencer
            .submit(vec![event])
            .await
            .map_err(shutting_down)?;
        spend_admitted(gate, &committed);
        results_of(&self.ledger, committed)
            .pop()
            .unwrap_or_else(|| Err(Status::internal("the sequencer returned no result")))
            .map(Response::new)
    }

    async fn append_atomic(
        &self,
        request: Request<pb::AppendAtomicRequest>,
    ) -> Result<Response<pb::AppendAtomicResponse>, Status> {
        let requests = request.into_inner().events;
        if requests.is_empty() {
            return Err(Status::invalid_argument(
                "events: an all-or-nothing group needs at least one event",
            ));
        }
        if requests.len() > MAX_ATOMIC_EVENTS {
            return Err(Status::invalid_argument(format!(
                "events: {} events is more than the {MAX_ATOMIC_EVENTS} one all-or-nothing group \
                 may hold",
                requests.len()
            )));
        }
        let gate = self.auth.gate();
        let total = requests.len();
        let mut events = Vec::with_capacity(total);
        let mut refused = Vec::new();
        for (i, r) in requests.into_iter().enumerate() {
            if let Some(key) = KeyId::from_slice(&r.key_id) {
                gate.admit(&key)?;
            }
            match signed_event(r) {
                Ok(event) => events.push(event),
                Err(status) => refused.push((i, status)),
            }
        }
        if !refused.is_empty() {
            for (_, status) in &refused {
                self.metrics.refused(status.code());
            }
            return Err(group_status(total, &refused));
        }
        let committed = self
            .sequencer
            .submit_atomic(events)
            .await
            .map_err(shutting_down)?;
        let refused: Vec<(usize, Status)> = committed
            .results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Err(AppendError::GroupRefused { .. }) | Ok(_) => None,
                Err(e) => Some((i, append_status(e))),
            })
            .collect();
        if !refused.is_empty() {
            return Err(group_status(total, &refused));
        }
        spend_admitted(gate, &committed);
        let receipts = results_of(&self.ledger, committed)
            .into_iter()
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(pb::AppendAtomicResponse { receipts }))
    }

    type AppendStreamStream = BoxStream<pb::AppendResult>;

    async fn append_stream(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let permit = self.auth.gate().open_stream()?;
        let mut incoming = request.into_inner().ready_chunks(STREAM_CHUNK);
        let (pending_tx, mut pending_rx) = mpsc::channel(STREAM_IN_FLIGHT);
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::AppendResult, Status>>(STREAM_CHUNK);
        let sequencer = self.sequencer.clone();
        let auth = self.auth.clone();
        // The reader hands each chunk of requests to the sequencer as soon as it arrives and
        // queues the pending outcome; the writer below answers them strictly in order. So a
        // stream keeps several batches in flight without reordering its results.
        tokio::spawn(async move {
            while let Some(chunk) = incoming.next().await {
                let mut events = Vec::with_capacity(chunk.len());
                // Shape errors and transport errors answer at their place in the order.
                let mut slots: Vec<Option<Status>> = Vec::with_capacity(chunk.len());
                let mut broken = false;
                for item in chunk {
                    match item
                        .map_err(|s| (limits::message_size_status(s), true))
                        .and_then(|r| {
                            if let Some(key) = KeyId::from_slice(&r.key_id) {
                                auth.gate().admit(&key).map_err(|s| (s, false))?;
                            }
                            signed_event(r).map_err(|s| (s, false))
                        }) {
                        Ok(e) => {
                            events.push(e);
                            slots.push(None);
                        }
                        Err((status, transport)) => {
                            slots.push(Some(status));
                            broken |= transport;
                        }
                    }
                }
                let outcome = if events.is_empty() {
                    Ok(None)
                } else {
                    sequencer.enqueue(events).await.map(Some)
                };
                if pending_tx.send((slots, outcome)).await.is_err() || broken {
                    break;
                }
            }
        });
        let ledger = self.ledger.clone();
        let auth = self.auth.clone();
        tokio::spawn(async move {
            // The stream's place under --max-streams is held until its last result is sent.
            let _permit = permit;
            while let Some((slots, outcome)) = pending_rx.recv().await {
                let mut receipts = match outcome {
                    Ok(Some(rx)) => match rx.await {
                        Ok(committed) => {
                            spend_admitted(auth.gate(), &committed);
                            results_of(&ledger, committed).into_iter()
                        }
                        Err(_) => vec![
                            Err(Status::unavailable("the server is shutting down"));
                            slots.len()
                        ]
                        .into_iter(),
                    },
                    Ok(None) => Vec::new().into_iter(),
                    Err(e) => vec![Err(shutting_down(e)); slots.len()].into_iter(),
                };
                for slot in slots {
                    let result = match slot {
                        Some(status) => Err(status),
                        None => receipts
                            .next()
                            .unwrap_or_else(|| Err(Status::internal("missing result"))),
                    };
                    let message = pb::AppendResult {
                        result: Some(match result {
                            Ok(r) => pb::append_result::Result::Receipt(r),
                            Err(s) => pb::append_result::Result::Error(pb::AppendError {
                                code: s.code() as i32,
                                message: s.message().to_string(),
                            }),
                        }),
                    };
                    if out_tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::Entry>, Status> {
        self.auth.check(&request, method::GET_ENTRY)?;
        let entry = match request.into_inner().by {
            Some(pb::get_entry_request::By::Seq(seq)) => self
                .ledger
                .get(Seq(seq))
                .map_err(|e| ledger_status(&e))?
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "seq: no entry at seq {seq} (the ledger has {} entries)",
                        self.ledger.head().size
                    ))
                })?,
            Some(pb::get_entry_request::By::EventId(id)) => self
                .ledger
                .get_by_event_id(&id)
                .map_err(|e| ledger_status(&e))?
                .ok_or_else(|| {
                    Status::not_found(format!("event_id: no entry has event id {id:?}"))
                })?,
            None => return Err(Status::invalid_argument("by: give a seq or an event_id")),
        };
        Ok(Response::new(entry_message(entry)))
    }

    type SubscribeStream = BoxStream<pb::Entry>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.auth.check(&request, method::SUBSCRIBE)?;
        let permit = self.auth.gate().open_stream()?;
        let mut next = request.into_inner().from_seq;
        let ledger = self.ledger.clone();
        let mut committed = self.sequencer.committed();
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(256);
        let subscribed = Subscribed::new(self.metrics.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _subscribed = subscribed;
            loop {
                // Mark the current value seen before reading the head: a commit after this
                // point wakes us, so no entry falls between catch-up and live.
                committed.borrow_and_update();
                let head = ledger.head().size;
                while next < head {
                    let end = head.min(next + CATCH_UP_STEP);
                    let entries: Vec<_> = ledger.entries(next..end).collect();
                    for entry in entries {
                        let item = entry.map(entry_message).map_err(|e| ledger_status(&e));
                        let failed = item.is_err();
                        if tx.send(item).await.is_err() || failed {
                            return;
                        }
                    }
                    next = end;
                }
                // A read-only ledger's head moves without a commit here (a mirror, or a
                // reader following a writer in the same database): look again now and then.
                let follow = async {
                    if ledger.is_read_only() {
                        tokio::time::sleep(super::FOLLOW_INTERVAL).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    changed = committed.changed() => if changed.is_err() { return },
                    _ = follow => {}
                    _ = shutdown.changed() => {
                        let _ = tx.send(Err(Status::unavailable("the server is shutting down"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        self.auth.check(&request, method::GET_CHECKPOINT)?;
        let size = request.into_inner().size;
        let checkpoint = cosigned(
            &self.ledger,
            if size == 0 {
                self.ledger.latest_checkpoint()
            } else {
                self.ledger.checkpoint_for_size(size)
            },
        )?;
        Ok(Response::new(checkpoint_message(checkpoint)))
    }

    type ListCheckpointsStream = BoxStream<pb::Checkpoint>;

    async fn list_checkpoints(
        &self,
        request: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<Self::ListCheckpointsStream>, Status> {
        self.auth.check(&request, method::LIST_CHECKPOINTS)?;
        let request = request.into_inner();
        let to = match request.to_size {
            0 => u64::MAX,
            n => n,
        };
        if request.from_size > to {
            return Err(Status::invalid_argument(format!(
                "from_size: {} is larger than to_size {to}",
                request.from_size
            )));
        }
        // Read on a blocking thread and hand the checkpoints over one at a time through a
        // small channel: the answer is never held whole in memory, a slow reader slows the
        // reading instead of growing a buffer, and a reader that goes away stops it.
        let permit = self.auth.gate().open_stream()?;
        let ledger = self.ledger.clone();
        let (tx, rx) = mpsc::channel(LIST_BUFFER);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            for checkpoint in ledger.cosigned_checkpoints_in(request.from_size..=to) {
                let item = checkpoint
                    .map(checkpoint_message)
                    .map_err(|e| ledger_status(&e));
                if tx.blocking_send(item).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        self.auth.check(&request, method::GET_INCLUSION_PROOF)?;
        let request = request.into_inner();
        let size = match request.tree_size {
            0 => self.ledger.head().size,
            n => n,
        };
        let path = self
            .ledger
            .inclusion_proof(Seq(request.seq), size)
            .map_err(|e| ledger_status(&e))?;
        let entry = self
            .ledger
            .get(Seq(request.seq))
            .map_err(|e| ledger_status(&e))?
            .ok_or_else(|| Status::not_found(format!("seq: no entry at seq {}", request.seq)))?;
        let checkpoint = cosigned(&self.ledger, self.ledger.checkpoint_for_size(size))?;
        Ok(Response::new(pb::InclusionProof {
            seq: request.seq,
            tree_size: size,
            entry_hash: entry.hash().0.to_vec(),
            path: path.into_iter().map(|h| h.to_vec()).collect(),
            checkpoint: checkpoint.note,
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        self.auth.check(&request, method::GET_CONSISTENCY_PROOF)?;
        let request = request.into_inner();
        let new_size = match request.new_size {
            0 => self.ledger.head().size,
            n => n,
        };
        if request.old_size == 0 {
            return Err(Status::invalid_argument(
                "old_size: must be at least 1 (a checkpoint covers at least one entry)",
            ));
        }
        let path = self
            .ledger
            .consistency_proof(request.old_size, new_size)
            .map_err(|e| ledger_status(&e))?;
        let old = cosigned(
            &self.ledger,
            self.ledger.checkpoint_for_size(request.old_size),
        )?;
        let new = cosigned(&self.ledger, self.ledger.checkpoint_for_size(new_size))?;
        Ok(Response::new(pb::ConsistencyProof {
            old_size: request.old_size,
            new_size,
            path: path.into_iter().map(|h| h.to_vec()).collect(),
            old_checkpoint: old.note,
            new_checkpoint: new.note,
        }))
    }

    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ServerStatus>, Status> {
        self.auth.check(&request, method::GET_STATUS)?;
        let head = self.ledger.head();
        let now_us = ledger::UnixMicros::now().0;
        let witnesses = self
            .witnesses
            .reports()
            .into_iter()
            .map(|r| {
                let (size, at) = r.cosigned.unwrap_or((0, 0));
                pb::WitnessStatus {
                    name: r.name,
                    url: r.url,
                    witness_key: r.witness_key,
                    cosigned_size: size,
                    cosigned_at: at,
                    age_seconds: if r.cosigned.is_some() {
                        age_seconds(at)
                    } else {
                        0
                    },
                    last_error: r.last_error.unwrap_or_default(),
                    failures: r.failures,
                }
            })
            .collect();
        Ok(Response::new(pb::ServerStatus {
            origin: self.ledger.origin().to_string(),
            ledger_key: ledger::checkpoint::verifier_key(
                self.ledger.origin(),
                &self.ledger.public_key(),
            ),
            checkpoint_key: ledger::checkpoint::verifier_key(
                self.ledger.origin(),
                &self.ledger.checkpoint_key(),
            ),
            size: head.size,
            checkpoint_time_us: head.last_recorded_at.0,
            now_us,
            witnesses,
        }))
    }

    async fn put_artifact(
        &self,
        request: Request<Streaming<pb::ArtifactChunk>>,
    ) -> Result<Response<pb::ArtifactStored>, Status> {
        if self.ledger.is_read_only() {
            return Err(Status::failed_precondition(
                "this server holds a read-only copy of the ledger (a mirror): upload artifacts \
                 to the ledger's own server",
            ));
        }
        // Uploading is not an event, so no event signature covers it: it needs an
        // authenticated caller even when anonymous reads are on.
        if request.peer_certs().is_none_or(|c| c.is_empty()) {
            if request.metadata().get(super::auth::KEY_ID_HEADER).is_none() {
                return Err(Status::unauthenticated(format!(
                    "{}: missing; uploading an artifact needs a signed request header or an mTLS client certificate",
                    super::auth::KEY_ID_HEADER
                )));
            }
            self.auth.check(&request, method::PUT_ARTIFACT)?;
        }
        let _permit = self.auth.gate().open_stream()?;
        let mut stream = request.into_inner();
        let mut expected: Option<ArtifactHash> = None;
        let mut hasher = blake3::Hasher::new();
        let mut bytes = Vec::new();
        let mut first = true;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(limits::message_size_status)?;
            if first {
                first = false;
                expected = Some(ArtifactHash::from_slice(&chunk.blake3).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "blake3: the first chunk must name the expected 32-byte hash (got {} bytes)",
                        chunk.blake3.len()
                    ))
                })?);
                if chunk.size > MAX_ARTIFACT_BYTES {
                    return Err(Status::invalid_argument(format!(
                        "size: {} bytes is larger than the limit of {MAX_ARTIFACT_BYTES} bytes",
                        chunk.size
                    )));
                }
                bytes.reserve(chunk.size as usize);
            }
            if (bytes.len() + chunk.data.len()) as u64 > MAX_ARTIFACT_BYTES {
                return Err(Status::invalid_argument(format!(
                    "data: the artifact is larger than the limit of {MAX_ARTIFACT_BYTES} bytes"
                )));
            }
            hasher.update(&chunk.data);
            bytes.extend_from_slice(&chunk.data);
        }
        let expected =
            expected.ok_or_else(|| Status::invalid_argument("blake3: no chunk was sent"))?;
        let found = ArtifactHash(*hasher.finalize().as_bytes());
        if found != expected {
            return Err(Status::invalid_argument(format!(
                "blake3: the bytes hash to {found}, not the expected {expected}; nothing was stored"
            )));
        }
        if let ArtifactState::Erased(seq) = self
            .ledger
            .artifact_state(&found)
            .map_err(|e| ledger_status(&e))?
        {
            return Err(Status::failed_precondition(format!(
                "blake3: artifact {found} was erased at seq {seq} and cannot be stored again"
            )));
        }
        let ledger = self.ledger.clone();
        let size = bytes.len() as u64;
        let stored = tokio::task::spawn_blocking(move || ledger.put_artifact(&bytes))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| ledger_status(&e))?;
        Ok(Response::new(pb::ArtifactStored {
            blake3: stored.0.to_vec(),
            size,
        }))
    }

    type GetArtifactStream = BoxStream<pb::ArtifactChunk>;

    async fn get_artifact(
        &self,
        request: Request<pb::GetArtifactRequest>,
    ) -> Result<Response<Self::GetArtifactStream>, Status> {
        self.auth.check(&request, method::GET_ARTIFACT)?;
        let permit = self.auth.gate().open_stream()?;
        let raw = request.into_inner().blake3;
        let hash = ArtifactHash::from_slice(&raw).ok_or_else(|| {
            Status::invalid_argument(format!("blake3: must be 32 bytes (got {})", raw.len()))
        })?;
        if let ArtifactState::Erased(seq) = self
            .ledger
            .artifact_state(&hash)
            .map_err(|e| ledger_status(&e))?
        {
            return Err(Status::not_found(format!(
                "blake3: artifact {hash} was erased at seq {seq}"
            )));
        }
        let bytes = self
            .ledger
            .get_artifact(&hash)
            .map_err(|e| ledger_status(&e))?
            .ok_or_else(|| Status::not_found(format!("blake3: no artifact {hash} is stored")))?;
        let size = bytes.len() as u64;
        let chunks: Vec<Result<pb::ArtifactChunk, Status>> = if bytes.is_empty() {
            vec![Ok(pb::ArtifactChunk {
                blake3: hash.0.to_vec(),
                size,
                data: Vec::new(),
            })]
        } else {
            bytes
                .chunks(CHUNK_BYTES)
                .enumerate()
                .map(|(i, data)| {
                    Ok(pb::ArtifactChunk {
                        blake3: if i == 0 { hash.0.to_vec() } else { Vec::new() },
                        size,
                        data: data.to_vec(),
                    })
                })
                .collect()
        };
        // The stream holds its place under --max-streams until it is sent or dropped.
        let chunks = tokio_stream::iter(chunks).map(move |chunk| {
            let _held = &permit;
            chunk
        });
        Ok(Response::new(Box::pin(chunks)))
    }
}
