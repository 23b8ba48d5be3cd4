//! The witness's HTTP API (axum): `POST /add-checkpoint` in the shape of C2SP tlog-witness,
//! and `GET /<origin hash>/checkpoint`, the spec's monitoring endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use super::protocol::{AddCheckpoint, MAX_BODY_BYTES};
use super::state::{Refusal, WitnessState};

/// The `Content-Type` of a 409 answer, whose body is the held size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
const TEXT: &str = "text/plain; charset=utf-8";

/// The witness's routes over `state`.
pub fn router(state: Arc<WitnessState>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body).into_response()
}

async fn add_checkpoint(State(state): State<Arc<WitnessState>>, body: Bytes) -> Response {
    let request = match AddCheckpoint::parse(&body) {
        Ok(request) => request,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // The check-and-persist holds a lock and fsyncs: a blocking thread, not the runtime's.
    let decided = tokio::task::spawn_blocking(move || state.add_checkpoint(&request)).await;
    match decided {
        Ok(Ok(lines)) => text(StatusCode::OK, lines),
        Ok(Err(Refusal::Conflict { held })) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            format!("{held}\n"),
        )
            .into_response(),
        Ok(Err(refusal)) => text(
            StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("{refusal}\n"),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("witness task failed: {e}\n"),
        ),
    }
}

async fn checkpoint(
    State(state): State<Arc<WitnessState>>,
    Path(origin_hash): Path<String>,
) -> Response {
    match state
        .held_by_origin_hash(&origin_hash)
        .and_then(|held| held.note)
    {
        Some(note) => text(StatusCode::OK, note),
        None => text(
            StatusCode::NOT_FOUND,
            "no checkpoint cosigned for this origin\n".into(),
        ),
    }
}

/// A witness server that is running; [`RunningWitness::shutdown`] stops it.
#[derive(Debug)]
pub struct RunningWitness {
    /// Where it listens (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningWitness {
    /// Stops taking connections, lets requests in flight finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .context("the witness server task")?
            .context("the witness server")
    }
}

/// Binds `listen` and serves the witness API in the background.
pub async fn start(state: Arc<WitnessState>, listen: SocketAddr) -> anyhow::Result<RunningWitness> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(RunningWitness {
        addr,
        shutdown,
        task,
    })
}
