//! Many ledgers behind one gRPC endpoint: each request is handed to the ledger its
//! `x-isms-ledger` metadata names, and to no other.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;
use tower::{Service, ServiceExt as _};

/// The request metadata naming the ledger a request is for (the name it is served under:
/// the data folder's name under `isms serve --ledgers`).
pub const LEDGER_HEADER: &str = "x-isms-ledger";

/// One gRPC service per hosted ledger, under one service name: routes each request by its
/// [`LEDGER_HEADER`]. When a single ledger is hosted, a request may name none.
#[derive(Debug)]
pub struct ByLedger<S> {
    by_name: Arc<HashMap<String, S>>,
    /// The ledger a request naming none goes to (only when there is one ledger).
    only: Option<S>,
    /// The hosted names, sorted, for refusals.
    names: Arc<Vec<String>>,
}

impl<S: Clone> Clone for ByLedger<S> {
    fn clone(&self) -> Self {
        ByLedger {
            by_name: self.by_name.clone(),
            only: self.only.clone(),
            names: self.names.clone(),
        }
    }
}

impl<S: Clone> ByLedger<S> {
    /// Routes to `services`, by name.
    pub fn new(services: impl IntoIterator<Item = (String, S)>) -> Self {
        let by_name: HashMap<String, S> = services.into_iter().collect();
        let only = match by_name.len() {
            1 => by_name.values().next().cloned(),
            _ => None,
        };
        let mut names: Vec<String> = by_name.keys().cloned().collect();
        names.sort();
        ByLedger {
            by_name: Arc::new(by_name),
            only,
            names: Arc::new(names),
        }
    }

    /// The service for a request with these headers, or the status that refuses it.
    fn route(&self, headers: &http::HeaderMap) -> Result<S, Status> {
        match headers.get(LEDGER_HEADER) {
            None => self.only.clone().ok_or_else(|| {
                Status::invalid_argument(format!(
                    "{LEDGER_HEADER}: missing; this server hosts {} ledgers, so each request \
                     names one (isms --ledger NAME)",
                    self.names.len()
                ))
            }),
            Some(value) => {
                let name = value.to_str().map_err(|_| {
                    Status::invalid_argument(format!("{LEDGER_HEADER}: is not ASCII text"))
                })?;
                self.by_name.get(name).cloned().ok_or_else(|| {
                    Status::not_found(format!(
                        "{LEDGER_HEADER}: this server hosts no ledger named {name:?}"
                    ))
                })
            }
        }
    }
}

impl<S: NamedService> NamedService for ByLedger<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for ByLedger<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is asked of the chosen ledger's service when the request is routed.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.route(request.headers()) {
            Ok(service) => Box::pin(service.oneshot(request)),
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
