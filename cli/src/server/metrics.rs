//! What the server is doing, for operators: Prometheus metrics (`isms serve --metrics ADDR`
//! serves them at `/metrics` in the OpenMetrics text format, which Prometheus reads) and the
//! request id each RPC's log lines carry.
//!
//! Counters and histograms are updated where the work happens (the sequencer's stages, the
//! streams); values that are a fact about the ledger (entries, checkpoint age, store size,
//! queue depth) are read when scraped, so they are never stale.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ledger::{Ledger, UnixMicros};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::witnesses::{age_seconds, WitnessReport, Witnesses};

/// The label of a refusal: its gRPC code, as grpcurl prints it (`INVALID_ARGUMENT`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The gRPC status code name.
    pub code: String,
}

/// The label of a witness's gauges: the name given with `--witness`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WitnessLabels {
    /// The witness's local name.
    pub witness: String,
}

/// Every metric the server keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events made durable (retries of an already stored event not counted).
    pub events_appended: Counter,
    /// Events refused, by gRPC code.
    pub refusals: Family<RefusalLabels, Counter>,
    /// Events per staged batch.
    pub batch_events: Histogram,
    /// Seconds one flush (one group commit) took.
    pub flush_seconds: Histogram,
    /// Subscribe streams open.
    pub subscribers: Gauge,
    entries: Gauge,
    checkpoint_age_seconds: Gauge,
    store_bytes: Gauge,
    queue_depth: Gauge,
    witness_cosigned_size: Family<WitnessLabels, Gauge>,
    witness_cosignature_age_seconds: Family<WitnessLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics at zero, registered under the `isms` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("isms");
        let events_appended = Counter::default();
        registry.register(
            "events_appended",
            "Events made durable (an idempotent retry is not counted again)",
            events_appended.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Events refused, by gRPC status code",
            refusals.clone(),
        );
        let batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "batch_events",
            "Events per staged batch (group commit)",
            batch_events.clone(),
        );
        let flush_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "flush_seconds",
            "Seconds one flush took (one flush makes every staged batch durable)",
            flush_seconds.clone(),
        );
        let subscribers = Gauge::default();
        registry.register("subscribers", "Subscribe streams open", subscribers.clone());
        let entries = Gauge::default();
        registry.register(
            "ledger_entries",
            "Durable entries in the ledger",
            entries.clone(),
        );
        let checkpoint_age_seconds = Gauge::default();
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since the latest checkpoint's time (the last entry's recorded time)",
            checkpoint_age_seconds.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Bytes the sled store takes on disk",
            store_bytes.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Submissions waiting for the writer",
            queue_depth.clone(),
        );
        let witness_cosigned_size = Family::<WitnessLabels, Gauge>::default();
        registry.register(
            "witness_cosigned_size",
            "Size of the largest checkpoint each witness cosigned (0 until it cosigns one)",
            witness_cosigned_size.clone(),
        );
        let witness_cosignature_age_seconds = Family::<WitnessLabels, Gauge>::default();
        registry.register(
            "witness_cosignature_age_seconds",
            "Seconds since the timestamp of each witness's latest cosignature (absent until it cosigns one)",
            witness_cosignature_age_seconds.clone(),
        );
        Metrics {
            registry,
            events_appended,
            refusals,
            batch_events,
            flush_seconds,
            subscribers,
            entries,
            checkpoint_age_seconds,
            store_bytes,
            queue_depth,
            witness_cosigned_size,
            witness_cosignature_age_seconds,
        }
    }

    /// Counts one refused event with its gRPC code.
    pub fn refused(&self, code: tonic::Code) {
        self.refusals
            .get_or_create(&RefusalLabels {
                code: code_name(code).to_string(),
            })
            .inc();
    }

    /// The text a scrape gets, with the ledger's facts read now.
    pub fn render(&self, ledger: &Ledger, queue_depth: u64, witnesses: &[WitnessReport]) -> String {
        let head = ledger.head();
        self.entries.set(saturating_i64(head.size));
        let age_us = UnixMicros::now().0.saturating_sub(head.last_recorded_at.0);
        self.checkpoint_age_seconds.set(age_us.max(0) / 1_000_000);
        self.store_bytes
            .set(saturating_i64(ledger.store_size_bytes().unwrap_or(0)));
        self.queue_depth.set(saturating_i64(queue_depth));
        for report in witnesses {
            let labels = WitnessLabels {
                witness: report.name.clone(),
            };
            let (size, at) = report.cosigned.unwrap_or((0, 0));
            self.witness_cosigned_size
                .get_or_create(&labels)
                .set(saturating_i64(size));
            if report.cosigned.is_some() {
                self.witness_cosignature_age_seconds
                    .get_or_create(&labels)
                    .set(saturating_i64(age_seconds(at)));
            }
        }
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The gRPC name of a status code (`OUT_OF_RANGE`), as grpcurl and the gRPC docs print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A fresh id for one RPC, carried by its log lines: the server's start time and a counter,
/// so ids do not repeat across restarts and sort in arrival order.
pub fn next_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let epoch = EPOCH.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    format!("{epoch:x}-{:06}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Serves `/metrics` on `addr` until `shutdown` turns true; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ledger: Arc<Ledger>,
    queue_depth: impl Fn() -> u64 + Send + Sync + 'static,
    witnesses: Witnesses,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let queue_depth = Arc::new(queue_depth);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (metrics, ledger, queue_depth, witnesses) = (
                metrics.clone(),
                ledger.clone(),
                queue_depth.clone(),
                witnesses.clone(),
            );
            async move {
                let text = tokio::task::spawn_blocking(move || {
                    metrics.render(&ledger, queue_depth(), &witnesses.reports())
                })
                .await
                .unwrap_or_default();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    super::serve_http(addr, app, shutdown, "metrics").await
}
