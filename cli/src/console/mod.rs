//! The auditor's console (`isms serve --http ADDR`): every register as of any date, diffs
//! between dates, a row's history and an entry's proof, served read-only from the server's own
//! process over axum, rendered with maud.
//!
//! Reads are authorised as gRPC reads are: a session signed by an enrolled, non-revoked key
//! ([`session`]), or anyone when the server was started with `--allow-anonymous-reads`. Pages
//! need no JavaScript; the state of a view (register, dates, filter, sort) lives in its URL,
//! so a link shows a colleague the same view.

pub mod history;
mod pages;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use isms_proto::v1 as pb;
use ledger::{Ledger, Seq, UnixMicros};
use projections::registers::natural_order;
use serde::Deserialize;
use tokio::sync::watch;

use self::history::HistoryIndex;
use self::session::Session;
use crate::commands::registers::{id_column_of, text_table, PointArgs};
use crate::dates::{self, BareDate};
use crate::output::TextTable;
use crate::server::registers_service::RegistersService;
use crate::server::witnesses::Witnesses;

/// What the console reads from.
#[derive(Clone, Debug)]
pub struct Console {
    ledger: Arc<Ledger>,
    registers: RegistersService,
    witnesses: Witnesses,
    allow_anonymous: bool,
    history: Arc<HistoryIndex>,
}

/// Who is looking.
#[derive(Clone, Debug)]
pub enum Viewer {
    /// A checked session.
    Signed(Session),
    /// Nobody in particular: the server allows anonymous reads.
    Anonymous,
}

/// A page that could not be shown, and why (rendered as an HTML page with that status).
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn bad_request(message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

/// Runs `work` (ledger reads) on a blocking thread; a panic there becomes a 500.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::internal(e.to_string()))?
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        use tonic::Code;
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure {
            status: code,
            message: status.message().to_string(),
        }
    }
}

impl From<ledger::LedgerError> for Failure {
    fn from(e: ledger::LedgerError) -> Failure {
        crate::server::status::ledger_status(&e).into()
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let html = pages::failure(self.status, &self.message);
        with_headers(self.status, "text/html; charset=utf-8", html.into_string())
    }
}

/// The view a URL asks for. Empty parameters (a form submitted with a blank field) count as
/// absent.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct View {
    /// Transaction time: the registers as the ledger held them then (a date means its end).
    pub as_of: Option<String>,
    /// Valid time: what was in effect then (bitemporal, with `known_at`).
    pub effective: Option<String>,
    /// With `effective`: as known at this recorded time (default now).
    pub known_at: Option<String>,
    /// Column to sort by.
    pub sort: Option<String>,
    /// `1`: sort descending.
    pub desc: Option<String>,
    /// Only rows with a cell containing this text (case-insensitive).
    pub q: Option<String>,
    /// `csv`: download exactly the rows shown.
    pub format: Option<String>,
    /// Diff: the earlier date.
    pub from: Option<String>,
    /// Diff: the later date.
    pub to: Option<String>,
    /// Diff: one register only.
    pub register: Option<String>,
    /// Entry: the tree size to prove against (default the latest).
    pub size: Option<String>,
    /// Login: the session token.
    pub session: Option<String>,
    /// Login: where to go afterwards.
    pub next: Option<String>,
    /// History: the row id.
    pub id: Option<String>,
}

/// A parameter's value, if given and not blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl View {
    /// The CLI's point arguments for this view: the same parsing, the same axis wording.
    fn point(&self) -> PointArgs {
        match given(&self.effective) {
            Some(effective) => PointArgs {
                as_of: given(&self.known_at).map(str::to_string),
                effective: Some(effective.to_string()),
            },
            None => PointArgs {
                as_of: given(&self.as_of).map(str::to_string),
                effective: None,
            },
        }
    }

    fn as_of(&self) -> Result<Option<pb::AsOf>, Failure> {
        self.point().as_of().map_err(|e| {
            Failure::bad_request(format!(
                "as_of / effective / known_at: {e:#} (dates are YYYY-MM-DD)"
            ))
        })
    }

    /// The query string carrying this view's time and table state, with `changes` applied
    /// (an empty value removes a parameter).
    pub fn query(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let fields: [(&str, &Option<String>); 9] = [
            ("as_of", &self.as_of),
            ("effective", &self.effective),
            ("known_at", &self.known_at),
            ("q", &self.q),
            ("sort", &self.sort),
            ("desc", &self.desc),
            ("from", &self.from),
            ("to", &self.to),
            ("register", &self.register),
        ];
        for (name, value) in fields {
            if changes.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if let Some(v) = given(value) {
                pairs.push((name, v.to_string()));
            }
        }
        for (name, value) in changes {
            if !value.is_empty() {
                pairs.push((name, (*value).to_string()));
            }
        }
        if pairs.is_empty() {
            return String::new();
        }
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{n}={}", url_encode(v)))
            .collect();
        format!("?{}", encoded.join("&"))
    }
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The headers every console answer carries: no script, no framing, no caching of what a
/// session may see, no referrer leaking a URL.
/// A 200 download: `body` with the console's headers, saved by the browser as `file`.
fn download(content_type: &'static str, body: String, file: &str) -> Response {
    let mut response = with_headers(StatusCode::OK, content_type, body);
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn with_headers(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(markup: maud::Markup) -> Response {
    with_headers(
        StatusCode::OK,
        "text/html; charset=utf-8",
        markup.into_string(),
    )
}

/// The session token a request carries: the cookie, or `Authorization: Bearer`.
fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == session::COOKIE)
        .map(|(_, value)| value.to_string())
}

impl Console {
    /// A console over the server's ledger and query engine.
    pub fn new(
        ledger: Arc<Ledger>,
        registers: RegistersService,
        witnesses: Witnesses,
        allow_anonymous: bool,
    ) -> Console {
        Console {
            ledger,
            registers,
            witnesses,
            allow_anonymous,
            history: Arc::new(HistoryIndex::default()),
        }
    }

    /// Who is asking, or why they may not read.
    fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, String> {
        match token_of(headers) {
            Some(token) => {
                session::check(&self.ledger, &token, UnixMicros::now().0).map(Viewer::Signed)
            }
            None if self.allow_anonymous => Ok(Viewer::Anonymous),
            None => Err(
                "this console shows the ledger only to holders of an enrolled key; \
                         sign in with a session link"
                    .into(),
            ),
        }
    }

    fn origin(&self) -> &str {
        self.ledger.origin()
    }
}

/// Starts the console on `addr`; it stops when `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    console: Console,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    // The history index is built in the background; a request before it is done waits for
    // (and helps finish) the catch-up.
    // The query engine's snapshots and valid-time index are warmed the same way.
    {
        let (ledger, history) = (console.ledger.clone(), console.history.clone());
        let registers = console.registers.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = history.catch_up(&ledger) {
                tracing::warn!(error = %e, "console: building the history index");
            }
            if let Err(e) = registers.warm() {
                tracing::warn!(error = %e, "console: warming the query engine");
            }
        });
    }
    crate::server::serve_http(addr, router(console), shutdown, "console").await
}

/// The console's routes.
pub fn router(console: Console) -> axum::Router {
    axum::Router::new()
        .route("/", get(overview))
        .route("/registers/{name}", get(register))
        .route("/diff", get(diff))
        .route("/history", get(history))
        .route("/entry/{seq}", get(entry))
        .route("/entry/{seq}/proof.json", get(entry_proof))
        .route("/oscal/{document}", get(oscal_document))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/origin", get(origin))
        .route("/assets/console.css", get(css))
        .with_state(console)
}

/// The 401 page: why, and how to sign in and come back to `path`.
fn refusal(path: &str, why: &str) -> Response {
    with_headers(
        StatusCode::UNAUTHORIZED,
        "text/html; charset=utf-8",
        pages::sign_in_needed(path, why).into_string(),
    )
}

macro_rules! signed_in {
    ($console:expr, $headers:expr, $path:expr) => {
        match $console.viewer(&$headers) {
            Ok(viewer) => viewer,
            Err(why) => return refusal(&$path, &why),
        }
    };
}

/// The request's path and query, for the sign-in page's "come back here".
fn here(path: &str, view: &View) -> String {
    format!("{path}{}", view.query(&[]))
}

async fn overview(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let viewer = signed_in!(c, headers, here("/", &view));
    match overview_page(&c, &viewer, &view).await {
        Ok(markup) => html(markup),
        Err(failure) => failure.into_response(),
    }
}

/// What the overview shows, fetched.
#[derive(Debug)]
pub struct OverviewData {
    /// The registers the overview shows, as of the view's point.
    pub registers: pb::RegistersResponse,
    /// The readiness checklist with the entries behind each verdict.
    pub readiness: Vec<pb::ReadinessItem>,
    /// The latest checkpoint with its cosignatures.
    pub checkpoint: ledger::SignedCheckpoint,
    /// Per witness, where it stands.
    pub witnesses: Vec<crate::server::witnesses::WitnessReport>,
}

async fn overview_page(c: &Console, viewer: &Viewer, view: &View) -> Result<maud::Markup, Failure> {
    // Only what the overview shows: risks (heat maps), actions (overdue) and KPIs.
    let shown = ["risk_register", "corrective_actions", "kpis"].map(String::from);
    let (registers, readiness) = c.registers.overview(view.as_of()?, &shown).await?;
    let checkpoint = c
        .ledger
        .latest_checkpoint()
        .and_then(|cp| c.ledger.with_cosignatures(cp))?;
    let data = OverviewData {
        registers,
        readiness,
        checkpoint,
        witnesses: c.witnesses.reports(),
    };
    let axis = axis(view, data.registers.now_us)?;
    Ok(pages::overview(
        &pages::Frame::new(c.origin(), viewer, "overview", view),
        &axis,
        &data,
    ))
}

/// The sentence saying which time axis a page shows.
fn axis(view: &View, shown_us: i64) -> Result<String, Failure> {
    let point = view.point();
    let words = point
        .axis(shown_us)
        .map_err(|e| Failure::bad_request(format!("{e:#}")))?;
    Ok(match point.effective {
        None => format!("Transaction time: the registers {words}, as the ledger held them then."),
        Some(_) => format!(
            "Valid time (bitemporal): what was {words} — later corrections of what was in \
             effect then are included only if recorded by that date."
        ),
    })
}

/// A register as shown: filtered by `q`, sorted by `sort`.
pub fn shown_table(register: &str, table: &pb::Table, view: &View) -> TextTable {
    let mut shown = text_table(id_column_of(register), table);
    if let Some(q) = given(&view.q) {
        let q = q.to_lowercase();
        shown
            .rows
            .retain(|row| row.iter().any(|cell| cell.to_lowercase().contains(&q)));
    }
    if let Some(col) = given(&view.sort).and_then(|s| shown.columns.iter().position(|c| c == s)) {
        shown.rows.sort_by(|a, b| natural_order(&a[col], &b[col]));
        if given(&view.desc) == Some("1") {
            shown.rows.reverse();
        }
    }
    shown
}

async fn register(
    State(c): State<Console>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let viewer = signed_in!(c, headers, here(&format!("/registers/{name}"), &view));
    match register_page(&c, &viewer, &name, &view).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn register_page(
    c: &Console,
    viewer: &Viewer,
    name: &str,
    view: &View,
) -> Result<Response, Failure> {
    if !projections::registers::REGISTER_NAMES.contains(&name) {
        return Err(Failure {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "register: no register named {name:?} (registers are {})",
                projections::registers::REGISTER_NAMES.join(", ")
            ),
        });
    }
    let response = c
        .registers
        .registers(view.as_of()?, &[name.to_string()])
        .await?;
    let table = response
        .tables
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Failure::internal(format!("register: {name} was not computed")))?;
    let shown = shown_table(name, table, view);
    if given(&view.format) == Some("csv") {
        let label: String = given(&view.effective)
            .or(given(&view.as_of))
            .unwrap_or("latest")
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        return Ok(download(
            "text/csv; charset=utf-8",
            shown.to_csv(),
            &format!("{name}-{label}.csv"),
        ));
    }
    let axis = axis(view, response.now_us)?;
    Ok(html(pages::register(
        &pages::Frame::new(c.origin(), viewer, name, view),
        name,
        &axis,
        response.entries,
        &shown,
        table.rows.len(),
    )))
}

async fn diff(State(c): State<Console>, headers: HeaderMap, Query(view): Query<View>) -> Response {
    let viewer = signed_in!(c, headers, here("/diff", &view));
    match diff_page(&c, &viewer, &view).await {
        Ok(markup) => html(markup),
        Err(failure) => failure.into_response(),
    }
}

async fn diff_page(c: &Console, viewer: &Viewer, view: &View) -> Result<maud::Markup, Failure> {
    let frame = pages::Frame::new(c.origin(), viewer, "diff", view);
    let (Some(from), Some(to)) = (given(&view.from), given(&view.to)) else {
        return Ok(pages::diff(&frame, None));
    };
    let parse = |field: &str, text: &str| {
        dates::parse(text, BareDate::EndOfDay)
            .map_err(|e| Failure::bad_request(format!("{field}: {e:#} (dates are YYYY-MM-DD)")))
    };
    let (from_us, to_us) = (parse("from", from)?, parse("to", to)?);
    let mut diff = c.registers.diff_between(from_us, to_us).await?;
    if let Some(register) = given(&view.register) {
        diff.registers.retain(|r| r.register == register);
    }
    Ok(pages::diff(&frame, Some((from_us, to_us, &diff))))
}

async fn history(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let viewer = signed_in!(c, headers, here("/history", &view));
    match history_page(&c, &viewer, &view).await {
        Ok(markup) => html(markup),
        Err(failure) => failure.into_response(),
    }
}

/// One entry as a history row shows it.
#[derive(Clone, Debug)]
pub struct HistoryRow {
    /// The entry.
    pub seq: u64,
    /// Transaction time.
    pub recorded_at: i64,
    /// Valid time.
    pub effective_at: i64,
    /// Event kind.
    pub kind: String,
    /// Who signed (subject of the key).
    pub signer: String,
    /// The client's event id.
    pub event_id: String,
}

async fn history_page(c: &Console, viewer: &Viewer, view: &View) -> Result<maud::Markup, Failure> {
    let id = given(&view.id)
        .ok_or_else(|| Failure::bad_request("id: give the row's id (RISK-001, A.8.8, ...)"))?
        .to_string();
    let (ledger, index, row) = (c.ledger.clone(), c.history.clone(), id.clone());
    let rows = blocking(move || -> Result<Vec<HistoryRow>, Failure> {
        index.catch_up(&ledger)?;
        let mut rows = Vec::new();
        for seq in index.seqs(&row) {
            let Some(entry) = ledger.get(Seq(seq))? else {
                continue;
            };
            let envelope = projections::wire::decode_body(&entry.body).ok();
            rows.push(HistoryRow {
                seq,
                recorded_at: entry.recorded_at.0,
                effective_at: envelope.as_ref().map_or(0, |e| e.effective_at.0),
                kind: envelope
                    .as_ref()
                    .map_or("undecodable".into(), |e| e.event.kind().name().to_string()),
                signer: signer_of(&ledger, &entry),
                event_id: envelope.map(|e| e.event_id).unwrap_or_default(),
            });
        }
        Ok(rows)
    })
    .await?;
    Ok(pages::history(
        &pages::Frame::new(c.origin(), viewer, "history", view),
        &id,
        &rows,
    ))
}

/// Who holds the key that signed an entry.
fn signer_of(ledger: &Ledger, entry: &ledger::Entry) -> String {
    match ledger.key(&entry.key_id) {
        Some(key) => key.subject,
        None if entry.seq.0 == 0 => "the ledger key (genesis)".into(),
        None => format!("key {}", entry.key_id.short()),
    }
}

/// An entry with what proves it.
#[derive(Debug)]
pub struct EntryData {
    /// The entry.
    pub entry: ledger::Entry,
    /// Its decoded body, or why it does not decode.
    pub envelope: Result<projections::model::Envelope, String>,
    /// Who signed.
    pub signer: String,
    /// The inclusion proof document `isms prove check` takes.
    pub proof: crate::commands::prove::InclusionDoc,
}

fn entry_data(c: &Console, seq: u64, view: &View) -> Result<EntryData, Failure> {
    let entry = c.ledger.get(Seq(seq))?.ok_or_else(|| Failure {
        status: StatusCode::NOT_FOUND,
        message: format!("seq: no entry at seq {seq}"),
    })?;
    let head = c.ledger.head().size;
    let size = match given(&view.size) {
        None => head,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| Failure::bad_request(format!("size: {text:?} is not a tree size")))?,
    };
    if size <= seq || size > head {
        return Err(Failure::bad_request(format!(
            "size: a proof of seq {seq} needs a tree size in {}..={head}",
            seq + 1
        )));
    }
    let path = c.ledger.inclusion_proof(Seq(seq), size)?;
    let checkpoint = c
        .ledger
        .checkpoint_for_size(size)
        .and_then(|cp| c.ledger.with_cosignatures(cp))?;
    let proof = crate::commands::prove::inclusion_doc(&entry, size, &path, checkpoint.note)
        .map_err(|e| Failure::internal(format!("{e:#}")))?;
    Ok(EntryData {
        envelope: projections::wire::decode_body(&entry.body).map_err(|e| e.to_string()),
        signer: signer_of(&c.ledger, &entry),
        entry,
        proof,
    })
}

async fn entry(
    State(c): State<Console>,
    Path(seq): Path<u64>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let viewer = signed_in!(c, headers, here(&format!("/entry/{seq}"), &view));
    let frame_view = view.clone();
    let c2 = c.clone();
    match blocking(move || entry_data(&c2, seq, &view)).await {
        Ok(data) => html(pages::entry(
            &pages::Frame::new(c.origin(), &viewer, "entry", &frame_view),
            &data,
        )),
        Err(failure) => failure.into_response(),
    }
}

async fn entry_proof(
    State(c): State<Console>,
    Path(seq): Path<u64>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let _viewer = signed_in!(c, headers, here(&format!("/entry/{seq}/proof.json"), &view));
    let data = match blocking(move || entry_data(&c, seq, &view)).await {
        Ok(data) => data,
        Err(failure) => return failure.into_response(),
    };
    let body = serde_json::to_string_pretty(&data.proof).unwrap_or_default() + "\n";
    download("application/json", body, &format!("entry-{seq}-proof.json"))
}

/// `/oscal/assessment-results.json` and `/oscal/poam.json`: what `isms oscal` writes, for the
/// time the view shows, as a download.
async fn oscal_document(
    State(c): State<Console>,
    Path(document): Path<String>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let _viewer = signed_in!(c, headers, here(&format!("/oscal/{document}"), &view));
    let model = match document.as_str() {
        "assessment-results.json" => projections::oscal::Model::AssessmentResults,
        "poam.json" => projections::oscal::Model::Poam,
        _ => {
            return Failure {
                status: StatusCode::NOT_FOUND,
                message: format!(
                    "document: no OSCAL document {document:?} (there are \
                     assessment-results.json and poam.json)"
                ),
            }
            .into_response()
        }
    };
    let as_of = match view.as_of() {
        Ok(as_of) => as_of,
        Err(failure) => return failure.into_response(),
    };
    match c.registers.oscal_at(as_of, model).await {
        Ok(exported) => download(
            "application/json",
            exported.json + "\n",
            &format!("oscal-{}-{}-entries.json", model.name(), exported.entries),
        ),
        Err(status) => Failure::from(status).into_response(),
    }
}

/// Only a path on this console may follow a sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

async fn login(State(c): State<Console>, Query(view): Query<View>) -> Response {
    let next = safe_next(given(&view.next));
    let Some(token) = given(&view.session) else {
        return html(pages::login(c.origin(), &next, None));
    };
    match session::check(&c.ledger, token, UnixMicros::now().0) {
        Ok(session) => {
            let max_age = (session.expires_us - UnixMicros::now().0) / 1_000_000;
            let cookie = format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
                session::COOKIE
            );
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(why) => with_headers(
            StatusCode::UNAUTHORIZED,
            "text/html; charset=utf-8",
            pages::login(c.origin(), &next, Some(&why)).into_string(),
        ),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("isms_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

async fn origin(State(c): State<Console>) -> Response {
    with_headers(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        format!("{}\n", c.origin()),
    )
}

async fn css() -> Response {
    let mut response = with_headers(StatusCode::OK, "text/css; charset=utf-8", pages::CSS.into());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
