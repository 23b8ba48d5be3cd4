//! The gRPC client side of `isms`: one connection to `isms serve`, read requests signed with
//! the caller's key (the header scheme of `server::auth`), signed appends, and the reads the
//! commands share (the whole chain, the latest checkpoint, artifacts).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use futures_util::StreamExt as _;
use isms_proto::v1 as pb;
use isms_proto::v1::ledger_client::LedgerClient;
use isms_proto::v1::registers_client::RegistersClient;
use ledger::{Entry, EntryHash, KeyId, Seq, SignedEvent, UnixMicros};
use prost::Message as _;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use crate::server::auth::sign_read;
use crate::server::ledger_service::method as lm;

/// The default server address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";
/// Largest message the client takes (entries are small; artifacts come in chunks).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes per PutArtifact chunk.
const CHUNK_BYTES: usize = 256 * 1024;

/// Where the server is and which key signs (the flags every client command shares).
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The server's address.
    #[arg(long, env = "ISMS_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// The key file (hex ed25519 seed, mode 0600) that signs reads and writes.
    #[arg(long, env = "ISMS_KEY")]
    pub key: Option<PathBuf>,
    /// The ledger to talk to, on a server that hosts several (`isms serve --ledgers`): its
    /// name there. Sent as the `x-isms-ledger` metadata of every request.
    #[arg(long, env = "ISMS_LEDGER")]
    pub ledger: Option<String>,
}

/// Adds the `x-isms-ledger` metadata to every request, when a ledger is named.
#[derive(Debug, Clone, Default)]
pub struct LedgerName(Option<tonic::metadata::AsciiMetadataValue>);

impl LedgerName {
    /// Names `ledger` (or none).
    pub fn new(ledger: Option<&str>) -> anyhow::Result<LedgerName> {
        ledger
            .map(|name| {
                name.parse()
                    .map_err(|_| anyhow::anyhow!("--ledger {name:?}: must be ASCII text"))
            })
            .transpose()
            .map(LedgerName)
    }
}

impl tonic::service::Interceptor for LedgerName {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        if let Some(name) = &self.0 {
            request
                .metadata_mut()
                .insert(crate::server::LEDGER_HEADER, name.clone());
        }
        Ok(request)
    }
}

/// The channel every client call goes through: naming the ledger.
pub type Transport = InterceptedService<Channel, LedgerName>;

/// A connection to `isms serve` on behalf of one key.
#[derive(Debug, Clone)]
pub struct Client {
    ledger: LedgerClient<Transport>,
    registers: RegistersClient<Transport>,
    key: Option<SigningKey>,
}

/// The last read-request time used, so two requests of one process never sign the same
/// (method, time): the server refuses a repeated signature as a replay.
static LAST_READ_US: AtomicI64 = AtomicI64::new(0);

fn fresh_time_us() -> i64 {
    let now = UnixMicros::now().0;
    let mut last = LAST_READ_US.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_READ_US.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Reads a key file written by `isms init` or `isms key new`.
pub fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    crate::server::read_key_file(path)
}

impl Client {
    /// Connects to `args.server`, loading `args.key` if given.
    pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
        let key = args.key.as_deref().map(read_key).transpose()?;
        Self::connect_to(&args.server, args.ledger.as_deref(), key).await
    }

    /// Connects to `server` with an already loaded key.
    pub async fn connect_with(server: &str, key: Option<SigningKey>) -> anyhow::Result<Client> {
        Self::connect_to(server, None, key).await
    }

    /// Connects to the ledger named `ledger` (when the server hosts several) on `server`.
    pub async fn connect_to(
        server: &str,
        ledger: Option<&str>,
        key: Option<SigningKey>,
    ) -> anyhow::Result<Client> {
        let name = LedgerName::new(ledger)?;
        let url = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        let channel = Endpoint::from_shared(url.clone())
            .with_context(|| format!("--server {url:?} is not a valid address"))?
            .connect()
            .await
            .with_context(|| format!("connecting to {url} (is `isms serve` running?)"))?;
        Ok(Client {
            ledger: LedgerClient::with_interceptor(channel.clone(), name.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            registers: RegistersClient::with_interceptor(channel, name)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            key,
        })
    }

    /// The signing key, or an error that says how to give one.
    pub fn key(&self) -> anyhow::Result<&SigningKey> {
        self.key
            .as_ref()
            .context("this command needs a key: pass --key FILE (or set ISMS_KEY)")
    }

    /// The key id of the signing key.
    pub fn key_id(&self) -> anyhow::Result<KeyId> {
        Ok(KeyId::of_public_key(self.key()?.verifying_key().as_bytes()))
    }

    /// A request for `method` carrying the signed read headers (none without a key: the
    /// server may allow anonymous reads).
    pub fn read<T>(&self, message: T, method: &str) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(key) = &self.key {
            sign_read(request.metadata_mut(), key, method, fresh_time_us());
        }
        request
    }

    /// The Ledger service client.
    pub fn ledger(&mut self) -> &mut LedgerClient<Transport> {
        &mut self.ledger
    }

    /// The Registers service client.
    pub fn registers(&mut self) -> &mut RegistersClient<Transport> {
        &mut self.registers
    }

    /// Signs `body` with the client's key and appends it, returning the receipt.
    pub async fn append(&mut self, body: Vec<u8>) -> anyhow::Result<pb::Receipt> {
        let request = append_request(self.key()?, body);
        Ok(self.ledger.append(request).await?.into_inner())
    }

    /// Appends many signed bodies over one stream; one result per body, in order.
    pub async fn append_many(
        &mut self,
        bodies: Vec<Vec<u8>>,
    ) -> anyhow::Result<Vec<Result<pb::Receipt, pb::AppendError>>> {
        let key = self.key()?.clone();
        let requests: Vec<pb::AppendRequest> = bodies
            .into_iter()
            .map(|b| append_request(&key, b))
            .collect();
        let expected = requests.len();
        let mut stream = self
            .ledger
            .append_stream(tokio_stream::iter(requests))
            .await?
            .into_inner();
        let mut out = Vec::with_capacity(expected);
        while let Some(item) = stream.next().await {
            out.push(match item?.result {
                Some(pb::append_result::Result::Receipt(r)) => Ok(r),
                Some(pb::append_result::Result::Error(e)) => Err(e),
                None => anyhow::bail!("the server sent an empty append result"),
            });
        }
        anyhow::ensure!(
            out.len() == expected,
            "the server answered {} of {expected} events",
            out.len()
        );
        Ok(out)
    }

    /// Signs and appends `bodies` as one all-or-nothing group (AppendAtomic): their receipts,
    /// or, when the group was refused, one refusal per refused event by its place (nothing was
    /// stored). Other failures (transport, a group too large) are errors.
    pub async fn append_atomic(
        &mut self,
        bodies: Vec<Vec<u8>>,
    ) -> anyhow::Result<Result<Vec<pb::Receipt>, Vec<pb::RefusedEvent>>> {
        let key = self.key()?.clone();
        let events: Vec<pb::AppendRequest> = bodies
            .into_iter()
            .map(|b| append_request(&key, b))
            .collect();
        match self
            .ledger
            .append_atomic(pb::AppendAtomicRequest { events })
            .await
        {
            Ok(response) => Ok(Ok(response.into_inner().receipts)),
            Err(status) => {
                match <pb::AppendAtomicRefusal as prost::Message>::decode(status.details()) {
                    Ok(refusal) if !refusal.refused.is_empty() => Ok(Err(refusal.refused)),
                    _ => Err(status.into()),
                }
            }
        }
    }

    /// One entry by seq.
    pub async fn entry(&mut self, seq: u64) -> anyhow::Result<Entry> {
        self.entry_by(pb::get_entry_request::By::Seq(seq), || {
            format!("reading entry {seq}")
        })
        .await
    }

    /// The entry that recorded the event with this id.
    pub async fn entry_by_event_id(&mut self, event_id: &str) -> anyhow::Result<Entry> {
        self.entry_by(
            pb::get_entry_request::By::EventId(event_id.to_string()),
            || format!("reading the entry of event {event_id}"),
        )
        .await
    }

    async fn entry_by(
        &mut self,
        by: pb::get_entry_request::By,
        what: impl FnOnce() -> String,
    ) -> anyhow::Result<Entry> {
        let request = self.read(pb::GetEntryRequest { by: Some(by) }, lm::GET_ENTRY);
        let message = self
            .ledger
            .get_entry(request)
            .await
            .with_context(what)?
            .into_inner();
        entry_of(message)
    }

    /// The latest checkpoint (its size is the ledger's size when it was read).
    pub async fn latest_checkpoint(&mut self) -> anyhow::Result<pb::Checkpoint> {
        self.checkpoint(0).await
    }

    /// Every stored checkpoint of at most `to_size` entries, smallest first.
    pub async fn checkpoints(&mut self, to_size: u64) -> anyhow::Result<Vec<pb::Checkpoint>> {
        self.checkpoints_in(0, to_size).await
    }

    /// The first checkpoint of at least `size` entries: the one that covers entry `size - 1`.
    pub async fn covering_checkpoint(
        &mut self,
        size: u64,
    ) -> anyhow::Result<Option<pb::Checkpoint>> {
        let mut stream = self.checkpoint_stream(size, 0).await?;
        stream.message().await.context("listing the checkpoints")
    }

    /// The stored checkpoints with a size in `from..=to` (0: up to the latest), smallest first.
    pub async fn checkpoints_in(
        &mut self,
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<pb::Checkpoint>> {
        let mut stream = self.checkpoint_stream(from, to).await?;
        let mut out = Vec::new();
        while let Some(c) = stream.message().await.context("listing the checkpoints")? {
            out.push(c);
        }
        Ok(out)
    }

    async fn checkpoint_stream(
        &mut self,
        from_size: u64,
        to_size: u64,
    ) -> anyhow::Result<tonic::Streaming<pb::Checkpoint>> {
        let request = self.read(
            pb::ListCheckpointsRequest { from_size, to_size },
            lm::LIST_CHECKPOINTS,
        );
        Ok(self
            .ledger
            .list_checkpoints(request)
            .await
            .context("listing the checkpoints")?
            .into_inner())
    }

    /// The server's head and where each of its witnesses stands.
    pub async fn status(&mut self) -> anyhow::Result<pb::ServerStatus> {
        let request = self.read(pb::GetStatusRequest {}, lm::GET_STATUS);
        Ok(self
            .ledger
            .get_status(request)
            .await
            .context("reading the server status")?
            .into_inner())
    }

    /// The checkpoint of `size` entries (0: the latest).
    pub async fn checkpoint(&mut self, size: u64) -> anyhow::Result<pb::Checkpoint> {
        let request = self.read(pb::GetCheckpointRequest { size }, lm::GET_CHECKPOINT);
        Ok(self
            .ledger
            .get_checkpoint(request)
            .await
            .context("reading the checkpoint")?
            .into_inner())
    }

    /// Entries `from..to`, in order, through Subscribe (which would go on with live entries:
    /// the stream is dropped once `to` is reached). `progress` is told each entry.
    pub async fn entries(
        &mut self,
        from: u64,
        to: u64,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        if from >= to {
            return Ok(out);
        }
        let request = self.read(pb::SubscribeRequest { from_seq: from }, lm::SUBSCRIBE);
        let mut stream = self
            .ledger
            .subscribe(request)
            .await
            .context("reading the entries")?
            .into_inner();
        while let Some(item) = stream.next().await {
            let entry = entry_of(item.context("reading the entries")?)?;
            let seq = entry.seq.0;
            out.push(entry);
            progress(seq + 1 - from);
            if seq + 1 >= to {
                break;
            }
        }
        anyhow::ensure!(
            out.len() as u64 == to - from,
            "the server sent {} entries, {} were expected",
            out.len(),
            to - from
        );
        Ok(out)
    }

    /// Uploads an artifact (chunked), returning its blake3 hash.
    pub async fn put_artifact(&mut self, bytes: Vec<u8>) -> anyhow::Result<[u8; 32]> {
        let hash = *blake3::hash(&bytes).as_bytes();
        let size = bytes.len() as u64;
        let mut chunks: Vec<pb::ArtifactChunk> = bytes
            .chunks(CHUNK_BYTES)
            .map(|c| pb::ArtifactChunk {
                blake3: Vec::new(),
                size: 0,
                data: c.to_vec(),
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(pb::ArtifactChunk::default());
        }
        chunks[0].blake3 = hash.to_vec();
        chunks[0].size = size;
        let request = self.read(tokio_stream::iter(chunks), lm::PUT_ARTIFACT);
        let stored = self
            .ledger
            .put_artifact(request)
            .await
            .context("uploading the artifact")?
            .into_inner();
        anyhow::ensure!(
            stored.blake3 == hash,
            "the server stored the artifact under another hash"
        );
        Ok(hash)
    }

    /// Downloads an artifact (`None` if the server does not have it or it was erased).
    pub async fn get_artifact(&mut self, hash: &[u8; 32]) -> anyhow::Result<Option<Vec<u8>>> {
        let request = self.read(
            pb::GetArtifactRequest {
                blake3: hash.to_vec(),
            },
            lm::GET_ARTIFACT,
        );
        let mut stream = match self.ledger.get_artifact(request).await {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(s).context("downloading an artifact"),
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => bytes.extend_from_slice(&c.data),
                Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
                Err(s) => return Err(s).context("downloading an artifact"),
            }
        }
        Ok(Some(bytes))
    }

    /// The ledger id, from the genesis entry.
    pub async fn ledger_id(&mut self) -> anyhow::Result<Vec<u8>> {
        let genesis = self.entry(0).await?;
        let body = pb::EventBody::decode(genesis.body.as_slice())
            .context("the genesis body is not an EventBody")?;
        Ok(body.ledger_id)
    }
}

/// Signs `body` into an AppendRequest.
pub fn append_request(key: &SigningKey, body: Vec<u8>) -> pb::AppendRequest {
    let signed = SignedEvent::sign(key, body);
    pb::AppendRequest {
        body: signed.body,
        key_id: signed.key_id.0.to_vec(),
        signature: signed.signature.to_vec(),
    }
}

/// The ledger's entry from its wire form, checking the field lengths.
pub fn entry_of(m: pb::Entry) -> anyhow::Result<Entry> {
    let seq = m.seq;
    let bad = |what: &str| anyhow::anyhow!("entry {seq} from the server: {what}");
    Ok(Entry {
        seq: Seq(m.seq),
        recorded_at: UnixMicros(m.recorded_at_us),
        prev_hash: EntryHash::from_slice(&m.prev_hash)
            .ok_or_else(|| bad("prev_hash is not 32 bytes"))?,
        key_id: KeyId::from_slice(&m.key_id).ok_or_else(|| bad("key_id is not 32 bytes"))?,
        signature: m
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| bad("signature is not 64 bytes"))?,
        body: m.body,
    })
}

/// Describes a refused append for a person: the gRPC code name and the server's message.
pub fn describe_refusal(code: i32, message: &str) -> String {
    format!("{:?}: {}", tonic::Code::from(code), for_people(message))
}

/// A server message in the command line's words: the wire's header and field names become
/// the flags a person typed (`x-isms-key-id` is `--key`, `from_us` is `--from`, ...). The
/// server keeps the protocol's names for programs; people read these.
pub fn for_people(message: &str) -> String {
    const NAMES: [(&str, &str); 9] = [
        ("x-isms-key-id", "--key"),
        ("x-isms-time", "the request time (this machine's clock)"),
        ("x-isms-signature", "the request signature (--key)"),
        ("effective_at_us", "the effective time (--effective)"),
        ("collected_at_us", "the collection time (--collected)"),
        ("known_at_us", "--known-at"),
        ("as_of_us", "--as-of"),
        ("from_us", "--from"),
        ("to_us", "--to"),
    ];
    NAMES
        .iter()
        .fold(message.to_string(), |text, (wire, flag)| {
            text.replace(wire, flag)
        })
}

/// Runs an async body on a fresh runtime (the binary's commands are synchronous at the top).
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}
