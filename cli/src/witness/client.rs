//! Asking a witness for a cosignature: the client side of `POST /add-checkpoint`, over
//! hyper-util's pooled HTTP/1 client (keep-alive, as the spec recommends), with a connect
//! timeout and a timeout on the whole request.
//!
//! A ledger server calls [`WitnessClient::add_checkpoint`] after each checkpoint. On
//! [`AddCheckpointOutcome::Conflict`] it learns the size the witness holds and retries with a
//! proof from that size; on [`AddCheckpointOutcome::Cosigned`] it checks the lines with
//! [`ledger::WitnessVerifier::verify_note`] and stores them with
//! [`ledger::cosignature::add_cosignatures`].

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ledger::cosignature::SignatureLine;
use ledger::merkle::Hash;

use super::protocol::{parse_decimal, AddCheckpoint};

/// Largest witness answer read (a few signature lines, or an error message).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How long to wait for a witness.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To open the TCP connection.
    pub connect: Duration,
    /// For the whole request: connect, send, wait and read the answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
        }
    }
}

/// What a witness answered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AddCheckpointOutcome {
    /// 200: the cosignature lines, each ending in a newline (`lines.concat()` can be passed to
    /// `add_cosignatures`). Each parses as a signature line; none is verified yet.
    Cosigned {
        /// The signature lines.
        lines: Vec<String>,
    },
    /// 409: the witness holds another size; retry with a proof from `size`.
    Conflict {
        /// The size of the last checkpoint the witness cosigned for this ledger.
        size: u64,
    },
    /// Any other answer: 400 malformed, 403 not signed by the key the witness knows, 404
    /// unknown origin, 413 too large, 422 inconsistent, 5xx witness trouble.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body, as text (the witness says why).
        message: String,
    },
}

/// Why no answer was had from a witness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessClientError {
    /// The witness URL is not an `http://host:port[/prefix]` URL.
    #[error("witness URL {url:?}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// Connecting, sending or reading failed.
    #[error("witness {url}: {why}")]
    Transport {
        /// The request URL.
        url: String,
        /// The transport error.
        why: String,
    },
    /// The witness did not answer within [`Timeouts::request`].
    #[error("witness {url}: no answer within {after:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The witness answered something the protocol does not allow (a 409 without a size, a
    /// 200 whose lines are not signature lines, an oversized answer).
    #[error("witness {url}: unexpected answer: {why}")]
    BadAnswer {
        /// The request URL.
        url: String,
        /// What is wrong.
        why: String,
    },
}

/// A client of one witness. Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct WitnessClient {
    endpoint: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    timeouts: Timeouts,
}

impl WitnessClient {
    /// A client for the witness whose submission prefix is `url` (e.g.
    /// `http://witness.example.org:7380` or `http://host/prefix`); requests go to
    /// `<url>/add-checkpoint`. Plain HTTP only: the answer is signed, so integrity does not
    /// rest on the transport.
    pub fn new(url: &str, timeouts: Timeouts) -> Result<WitnessClient, WitnessClientError> {
        let bad = |why: &str| WitnessClientError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let endpoint: Uri = format!("{}/add-checkpoint", url.trim_end_matches('/'))
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        if endpoint.scheme_str() != Some("http") || endpoint.host().is_none() {
            return Err(bad("expected http://host:port"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(WitnessClient {
            endpoint,
            client,
            timeouts,
        })
    }

    /// Sends `add-checkpoint` with `old_size`, the consistency `proof` from it to the
    /// checkpoint in `note` (the signed note, any signature lines included).
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &str,
    ) -> Result<AddCheckpointOutcome, WitnessClientError> {
        let url = self.endpoint.to_string();
        let body = AddCheckpoint {
            old_size,
            proof: proof.to_vec(),
            note: note.to_string(),
        }
        .encode();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| WitnessClientError::BadUrl {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|e| {
                    WitnessClientError::Transport {
                        url: url.clone(),
                        why: with_causes(&e),
                    }
                })?;
                let status = response.status();
                let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| WitnessClientError::Transport {
                        url: url.clone(),
                        why: format!("reading the answer: {e}"),
                    })?
                    .to_bytes();
                Ok::<_, WitnessClientError>((status, bytes))
            };
        let (status, bytes) = tokio::time::timeout(self.timeouts.request, exchange)
            .await
            .map_err(|_| WitnessClientError::Timeout {
                url: url.clone(),
                after: self.timeouts.request,
            })??;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let bad_answer = |why: String| WitnessClientError::BadAnswer {
            url: url.clone(),
            why,
        };
        match status {
            StatusCode::OK => {
                let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
                if lines.is_empty() || !text.ends_with('\n') {
                    return Err(bad_answer("200 without newline-terminated lines".into()));
                }
                for line in &lines {
                    SignatureLine::parse(line).map_err(|e| bad_answer(e.to_string()))?;
                }
                Ok(AddCheckpointOutcome::Cosigned { lines })
            }
            StatusCode::CONFLICT => {
                let size = text
                    .strip_suffix('\n')
                    .and_then(parse_decimal)
                    .ok_or_else(|| bad_answer(format!("409 whose body is not a size: {text:?}")))?;
                Ok(AddCheckpointOutcome::Conflict { size })
            }
            other => Ok(AddCheckpointOutcome::Refused {
                status: other.as_u16(),
                message: text.trim_end().to_string(),
            }),
        }
    }
}

/// An error and its causes, `outer: inner: ...`: hyper-util's own message ("client error
/// (Connect)") does not say that the connection was refused or timed out; its sources do.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One `add-checkpoint` request to the witness at `url` with the default [`Timeouts`] (a new
/// client each time; keep a [`WitnessClient`] to reuse connections).
pub async fn add_checkpoint(
    url: &str,
    old_size: u64,
    proof: &[Hash],
    note: &str,
) -> Result<AddCheckpointOutcome, WitnessClientError> {
    WitnessClient::new(url, Timeouts::default())?
        .add_checkpoint(old_size, proof, note)
        .await
}
