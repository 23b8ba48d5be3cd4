//! The server's resource limits — message size, open streams, requests per key — and the
//! `RESOURCE_EXHAUSTED` answers that name the limit and the flag that sets it.
//!
//! Every limit is checked before any work is done for the request, so a refused request
//! costs the server almost nothing and leaves nothing stored.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ledger::KeyId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;
use tonic::{Code, Status};

/// The limits `isms serve` enforces; see the README's "Limits" section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest gRPC message taken (`--max-message-bytes`), comfortably above the ledger's
    /// body limit by default so oversized bodies get the ledger's precise error.
    pub max_message_bytes: usize,
    /// Streaming calls (Subscribe, AppendStream, ListCheckpoints, artifact transfers) open at
    /// once across all clients (`--max-streams`).
    pub max_streams: usize,
    /// Requests per second one key may make (`--rate-per-key`), with a burst of one
    /// second's worth; each appended event counts as one request. `None`: unlimited.
    pub requests_per_key_per_second: Option<NonZeroU32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 8 * 1024 * 1024,
            max_streams: 1024,
            requests_per_key_per_second: None,
        }
    }
}

/// The limits in force and what has been used of them.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    streams: Arc<Semaphore>,
    buckets: Mutex<HashMap<KeyId, Bucket>>,
}

/// A token bucket: `tokens` left at `at`, refilled at the rate up to one second's worth.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before idle ones (full again) are dropped, so the map stays small.
const MAX_BUCKETS: usize = 65_536;

impl Gate {
    /// A gate enforcing `limits`.
    pub fn new(limits: Limits) -> Gate {
        Gate {
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A place for one more open stream, held until the stream ends; refused when all are
    /// taken.
    pub fn open_stream(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "streams: the server already serves its limit of {} open streams \
                 (--max-streams); retry later",
                self.limits.max_streams
            ))
        })
    }

    /// Charges `requests` to `key`'s rate, or refuses when the key is over it. For callers
    /// already authenticated (a read whose signed header checked out).
    pub fn charge(&self, key: &KeyId, requests: u32) -> Result<(), Status> {
        let now = Instant::now();
        self.admit_at(key, now)?;
        self.spend_at(key, requests, now);
        Ok(())
    }

    /// Refuses `key` when it is over its rate, without charging it. Appends check this before
    /// any work and [`Gate::spend`] only for events whose signature verified, so a caller who
    /// merely names another key cannot use up that key's rate.
    pub fn admit(&self, key: &KeyId) -> Result<(), Status> {
        self.admit_at(key, Instant::now())
    }

    /// Charges `requests` done by `key` (its bucket may go into debt, down to one second's
    /// worth, which a key sending faster than its rate then waits out).
    pub fn spend(&self, key: &KeyId, requests: u32) {
        self.spend_at(key, requests, Instant::now())
    }

    fn admit_at(&self, key: &KeyId, now: Instant) -> Result<(), Status> {
        let Some(rate) = self.rate() else {
            return Ok(());
        };
        let buckets = self.buckets.lock().expect("rate buckets");
        if refill(buckets.get(key), now, rate) >= 1.0 {
            return Ok(());
        }
        drop(buckets);
        Err(Status::resource_exhausted(format!(
            "key {}: over the limit of {rate} requests per second per key (--rate-per-key); \
             retry later",
            key.short()
        )))
    }

    fn spend_at(&self, key: &KeyId, requests: u32, now: Instant) {
        let Some(rate) = self.rate() else {
            return;
        };
        let mut buckets = self.buckets.lock().expect("rate buckets");
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Full buckets carry no information: forget them.
            buckets.retain(|_, b| refill(Some(b), now, rate) < rate);
        }
        let tokens = refill(buckets.get(key), now, rate);
        buckets.insert(
            *key,
            Bucket {
                tokens: (tokens - f64::from(requests)).max(-rate),
                at: now,
            },
        );
    }

    fn rate(&self) -> Option<f64> {
        self.limits
            .requests_per_key_per_second
            .map(|r| f64::from(r.get()))
    }
}

/// The tokens in `bucket` at `now` (a key never seen has a full bucket).
fn refill(bucket: Option<&Bucket>, now: Instant, rate: f64) -> f64 {
    match bucket {
        None => rate,
        Some(b) => (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(rate),
    }
}

/// tonic's own answer to a message over the size limit: `OUT_OF_RANGE` with its own wording.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// Turns tonic's answer to an oversized request message into `RESOURCE_EXHAUSTED` naming the
/// limit and its flag; any other status is returned unchanged.
pub fn message_size_status(status: Status) -> Status {
    if status.code() != Code::OutOfRange || !status.message().starts_with(TONIC_TOO_LARGE) {
        return status;
    }
    // "…: found N bytes, the limit is: M bytes"
    let numbers: Vec<&str> = status
        .message()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let (found, limit) = match numbers.as_slice() {
        [found, limit] => (*found, *limit),
        _ => ("more", "the configured"),
    };
    Status::resource_exhausted(format!(
        "message: {found} bytes is larger than the server's limit of {limit} bytes \
         (--max-message-bytes)"
    ))
}

/// Applies [`message_size_status`] to a response whose status travels in its headers (a
/// unary call refused before its handler ran), and logs the answer inside the RPC's span.
pub fn remap_response<B>(mut response: http::Response<B>) -> http::Response<B> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        // The status follows in the trailers (a normal answer or a stream).
        tracing::info!(http_status = response.status().as_u16(), "answered");
        return response;
    };
    tracing::info!(
        grpc_status = super::metrics::code_name(status.code()),
        reason = status.message(),
        "answered"
    );
    if status.code() != Code::OutOfRange {
        return response;
    }
    let remapped = message_size_status(status);
    if remapped.code() != Code::OutOfRange {
        // Only fails for a message that cannot be a header value; keep tonic's then.
        let _ = remapped.add_header(response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate(rate: u32) -> Gate {
        Gate::new(Limits {
            requests_per_key_per_second: NonZeroU32::new(rate),
            ..Limits::default()
        })
    }

    #[test]
    fn a_key_may_burst_one_seconds_worth_then_is_refused_naming_the_limit() {
        let gate = gate(5);
        let key = KeyId([1; 32]);
        let t0 = Instant::now();
        for _ in 0..5 {
            gate.admit_at(&key, t0).expect("within the burst");
            gate.spend_at(&key, 1, t0);
        }
        let refused = gate.admit_at(&key, t0).expect_err("over the rate");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(
            refused.message().contains("--rate-per-key"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn a_refused_key_is_let_in_again_as_its_bucket_refills() {
        let gate = gate(10);
        let key = KeyId([1; 32]);
        let t0 = Instant::now();
        gate.spend_at(&key, 10, t0);
        assert!(gate.admit_at(&key, t0).is_err());
        gate.admit_at(&key, t0 + Duration::from_millis(150))
            .expect("a tenth of a second refills one request");
    }

    #[test]
    fn one_keys_rate_does_not_limit_another_key() {
        let gate = gate(1);
        let t0 = Instant::now();
        gate.spend_at(&KeyId([1; 32]), 1, t0);
        assert!(gate.admit_at(&KeyId([1; 32]), t0).is_err());
        gate.admit_at(&KeyId([2; 32]), t0).expect("second key");
    }

    #[test]
    fn a_key_that_sent_faster_than_its_rate_waits_out_its_debt() {
        let gate = gate(10);
        let key = KeyId([1; 32]);
        let t0 = Instant::now();
        gate.spend_at(&key, 15, t0);
        assert!(gate
            .admit_at(&key, t0 + Duration::from_millis(500))
            .is_err());
        gate.admit_at(&key, t0 + Duration::from_millis(700))
            .expect("the debt of 5 and one request refilled");
    }

    #[test]
    fn without_a_rate_nothing_is_refused() {
        let gate = Gate::new(Limits::default());
        for _ in 0..10_000 {
            gate.charge(&KeyId([1; 32]), 1).expect("unlimited");
        }
    }

    #[test]
    fn streams_beyond_the_limit_are_refused_until_one_ends() {
        let gate = Gate::new(Limits {
            max_streams: 2,
            ..Limits::default()
        });
        let first = gate.open_stream().expect("first");
        let _second = gate.open_stream().expect("second");
        let refused = gate.open_stream().expect_err("third");
        assert!(
            refused.message().contains("--max-streams"),
            "{}",
            refused.message()
        );
        drop(first);
        let _third = gate.open_stream().expect("a place was freed");
    }

    #[test]
    fn tonics_size_refusal_becomes_resource_exhausted_with_both_sizes() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 9000000 bytes, the limit is: \
             8388608 bytes",
        );
        let ours = message_size_status(tonic);
        assert_eq!(ours.code(), Code::ResourceExhausted);
        assert_eq!(
            ours.message(),
            "message: 9000000 bytes is larger than the server's limit of 8388608 bytes \
             (--max-message-bytes)"
        );
    }

    #[test]
    fn other_out_of_range_statuses_are_left_alone() {
        let other = message_size_status(Status::out_of_range("as_of: in the future"));
        assert_eq!(other.code(), Code::OutOfRange);
    }
}
