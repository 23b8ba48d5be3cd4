//! The console's pages, as maud templates: plain HTML forms and links (no script), one
//! stylesheet served by the console itself, a print style without the navigation.

use axum::http::StatusCode;
use isms_proto::v1 as pb;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{given, url_encode, EntryData, HistoryRow, OverviewData, View, Viewer};
use crate::commands::registers::{id_column_of, text_table};
use crate::dates;
use crate::output::TextTable;
use crate::report::{heat_map_svg, placements, status_class};
use crate::server::witnesses::age_seconds;

/// What every page's frame needs: the ledger, who is looking, where they are, and the view
/// (its dates travel with every navigation link).
#[derive(Debug)]
pub struct Frame<'a> {
    origin: &'a str,
    viewer: &'a Viewer,
    active: &'a str,
    view: &'a View,
}

impl<'a> Frame<'a> {
    /// A frame.
    pub fn new(origin: &'a str, viewer: &'a Viewer, active: &'a str, view: &'a View) -> Self {
        Frame {
            origin,
            viewer,
            active,
            view,
        }
    }

    /// A link to `path` keeping the view's time axis, dropping its table state.
    fn link(&self, path: &str) -> String {
        format!(
            "{path}{}",
            self.view.query(&[
                ("q", ""),
                ("sort", ""),
                ("desc", ""),
                ("from", ""),
                ("to", ""),
                ("register", ""),
            ])
        )
    }
}

/// The registers the navigation names, with their titles, in the order the query engine
/// lists them (`projections::registers::REGISTER_NAMES`).
const REGISTERS: [(&str, &str); 24] = [
    ("risk_register", "Risks"),
    ("soa", "SoA"),
    ("corrective_actions", "Corrective actions"),
    ("evidence", "Evidence"),
    ("audits", "Audits"),
    ("findings", "Findings"),
    ("audit_coverage", "Audit coverage"),
    ("certification_cycle", "Certification cycle"),
    ("assets", "Assets"),
    ("scope", "Scope"),
    ("policies", "Policies"),
    ("objectives", "Objectives"),
    ("continuity_tests", "Continuity tests"),
    ("legal_requirements", "Legal requirements"),
    ("incidents", "Incidents"),
    ("training", "Training"),
    ("suppliers", "Suppliers"),
    ("access_reviews", "Access reviews"),
    ("vulnerabilities", "Vulnerabilities"),
    ("patch_compliance", "Patch compliance"),
    ("management_reviews", "Management reviews"),
    ("review_actions", "Review actions"),
    ("kpis", "KPIs"),
    ("readiness", "Readiness"),
];

fn title_of(register: &str) -> String {
    REGISTERS
        .iter()
        .find(|(name, _)| *name == register)
        .map(|(_, title)| (*title).to_string())
        .unwrap_or_else(|| register.replace('_', " "))
}

/// Every page's head: its title and the console's one stylesheet.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " — ISMS ledger console" }
            link rel="stylesheet" href="/assets/console.css";
        }
    }
}

fn layout(frame: &Frame, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.brand { "ISMS ledger " span.origin { (frame.origin) } }
                    nav aria-label="Registers" {
                        ul {
                            li { a href=(frame.link("/")) aria-current=[(frame.active == "overview").then_some("page")] { "Overview" } }
                            @for (name, label) in REGISTERS {
                                li { a href=(frame.link(&format!("/registers/{name}"))) aria-current=[(frame.active == name).then_some("page")] { (label) } }
                            }
                            li { a href=(frame.link("/diff")) aria-current=[(frame.active == "diff").then_some("page")] { "Diff" } }
                        }
                    }
                    div.who {
                        @match frame.viewer {
                            Viewer::Signed(s) => {
                                "Signed in as " strong { (s.subject) } " (key " (s.key_id.short()) "), until " (dates::show_time(s.expires_us)) ". "
                                a href="/logout" { "Sign out" }
                            }
                            Viewer::Anonymous => { "Anonymous reading (this server allows it)." }
                        }
                    }
                }
                main #main { (body) }
                footer { "Read-only. Every row is derived from signed, hash-chained entries; each entry page carries its inclusion proof for " code { "isms prove check" } "." }
            }
        }
    }
}

/// The date form: transaction time, or valid time as known at a date. Keeps the table state.
fn time_form(action: &str, view: &View) -> Markup {
    let date = |v: &Option<String>| given(v).map(str::to_string);
    html! {
        form.time method="get" action=(action) {
            fieldset {
                legend { "Transaction time" }
                label for="as_of" { "Registers as recorded at the end of" }
                input #as_of type="date" name="as_of" value=[date(&view.as_of)];
            }
            fieldset {
                legend { "Valid time (bitemporal, optional)" }
                label for="effective" { "In effect on" }
                input #effective type="date" name="effective" value=[date(&view.effective)];
                label for="known_at" { "as known at the end of" }
                input #known_at type="date" name="known_at" value=[date(&view.known_at)];
            }
            @if let Some(q) = given(&view.q) { input type="hidden" name="q" value=(q); }
            @if let Some(s) = given(&view.sort) { input type="hidden" name="sort" value=(s); }
            @if let Some(d) = given(&view.desc) { input type="hidden" name="desc" value=(d); }
            button type="submit" { "Show" }
            " "
            a href=(action) { "Today" }
        }
    }
}

fn axis_line(axis: &str, entries: u64) -> Markup {
    html! {
        p.axis role="note" { strong { (axis) } " Built from the first " (entries) " entries of the ledger." }
    }
}

/// A table of cells; the id column links to the row's history, status-like columns are
/// marked, and `entry_cols` link seqs to their entry pages.
fn table(caption: &str, t: &TextTable, link_ids: bool, status_cols: &[&str]) -> Markup {
    html! {
        @if t.rows.is_empty() {
            p.empty { "Nothing recorded." }
        } @else {
            div.scroll {
                table {
                    caption { (caption) }
                    thead { tr { @for c in &t.columns { th scope="col" { (c) } } } }
                    tbody {
                        @for row in &t.rows {
                            tr {
                                @for (i, cell) in row.iter().enumerate() {
                                    @let col = t.columns.get(i).map(String::as_str).unwrap_or("");
                                    @if i == 0 && link_ids {
                                        th scope="row" { a href=(format!("/history?id={}", url_encode(cell))) { (cell) } }
                                    } @else {
                                        td class=(if status_cols.contains(&col) { status_class(cell) } else { "" }) { (cell) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn verdict(status: &str) -> (&'static str, &'static str) {
    match status {
        "met" => ("good", "Met"),
        "partly_met" => ("warn", "Partly met"),
        _ => ("bad", "Not met"),
    }
}

fn entry_links(seqs: &[u64]) -> Markup {
    const SHOWN: usize = 12;
    html! {
        @for seq in seqs.iter().take(SHOWN) {
            a.seq href=(format!("/entry/{seq}")) { "#" (seq) } " "
        }
        @if seqs.len() > SHOWN { "and " (seqs.len() - SHOWN) " more" }
    }
}

/// The overview: readiness, heat maps, KPIs, overdue actions, verification and witnesses.
pub fn overview(frame: &Frame, axis: &str, data: &OverviewData) -> Markup {
    let table_of = |name: &str| -> TextTable {
        data.registers
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| text_table(id_column_of(name), t))
            .unwrap_or_default()
    };
    let risks = table_of("risk_register");
    let mut overdue = table_of("corrective_actions");
    if let Some(col) = overdue.columns.iter().position(|c| c == "overdue") {
        overdue.rows.retain(|r| !r[col].is_empty());
    }
    let kpis = table_of("kpis");
    let stages = ["stage_1", "stage_2", "surveillance"];
    let cp = &data.checkpoint;
    // Signature lines after the blank line: the ledger's own (named by its origin) and one
    // per witness that cosigned.
    let cosigners: Vec<&str> = cp
        .note
        .lines()
        .skip_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("— ")?.split(' ').next())
        .filter(|name| *name != cp.checkpoint.origin)
        .collect();
    let body = html! {
        h1 { "Overview" }
        (time_form("/", frame.view))
        (axis_line(axis, data.registers.entries))
        section aria-labelledby="readiness" {
            h2 #readiness { "Certification readiness" }
            div.stages {
                @for stage in stages {
                    @let items: Vec<&pb::ReadinessItem> = data.readiness.iter().filter(|i| i.stage == stage).collect();
                    @let met = items.iter().filter(|i| i.status == "met").count();
                    div.stage {
                        h3 { (stage.replace('_', " ")) }
                        p.count { (met) " of " (items.len()) " met" }
                    }
                }
            }
            @for stage in stages {
                div.scroll {
                    table {
                        caption { "Readiness: " (stage.replace('_', " ")) }
                        thead { tr { th scope="col" { "item" } th scope="col" { "verdict" } th scope="col" { "why" } th scope="col" { "entries behind it" } } }
                        tbody {
                            @for item in data.readiness.iter().filter(|i| i.stage == stage) {
                                @let (class, word) = verdict(&item.status);
                                tr { th scope="row" { (item.item) } td class=(class) { (word) } td { (item.reason) } td { (entry_links(&item.entries)) } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="heat" {
            h2 #heat { "Risk heat map" }
            div.maps {
                (PreEscaped(heat_map_svg("Inherent risk", &placements(&risks, "inherent"))))
                (PreEscaped(heat_map_svg("Residual risk", &placements(&risks, "residual"))))
            }
            p.legend { "Appetite: accept 1–4, mitigate 5–14, escalate 15–25 (score = likelihood × impact)." }
        }
        section aria-labelledby="kpis" {
            h2 #kpis { "KPIs" }
            (table("Key performance indicators", &kpis, false, &[]))
        }
        section aria-labelledby="overdue" {
            h2 #overdue { "Overdue corrective actions" }
            (table("Corrective actions past a due date", &overdue, true, &["status", "overdue"]))
        }
        section aria-labelledby="verification" {
            h2 #verification { "Verification and witnesses" }
            p {
                "Latest checkpoint: " strong { (cp.checkpoint.size) " entries" } ", signed "
                (dates::show_time(cp.checkpoint.time.0)) ", root " code { (hex::encode(cp.checkpoint.root)) } ", "
                @if cosigners.is_empty() { "no witness cosignature yet." } @else { "cosigned by " (cosigners.join(", ")) "." }
            }
            pre.note { (cp.note) }
            @if data.witnesses.is_empty() {
                p { "This server is not configured to ask any witness for cosignatures now." }
                @if cosigners.is_empty() { p.bad { "No witness has cosigned the latest checkpoint: its recorded times rest on the operator's word alone." } }
            } @else {
                div.scroll {
                    table {
                        caption { "Witnesses this server asks to cosign" }
                        thead { tr { th scope="col" { "witness" } th scope="col" { "last cosigned size" } th scope="col" { "age" } th scope="col" { "last error" } } }
                        tbody {
                            @for w in &data.witnesses {
                                tr {
                                    th scope="row" { (w.name) " " span.small { (w.url) } }
                                    @match w.cosigned {
                                        Some((size, at)) => { td { (size) } td { (age_seconds(at)) " s" } }
                                        None => { td.bad { "none yet" } td { "—" } }
                                    }
                                    td class=(if w.last_error.is_some() { "bad" } else { "" }) { (w.last_error.clone().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            p { "Check all of it without trusting this server: " code { "isms verify --server URL --key KEY --witness-key W" } "." }
        }
    };
    layout(frame, "Overview", body)
}

fn sort_link(frame: &Frame, register: &str, column: &str) -> (String, &'static str) {
    let view = frame.view;
    let sorted_here = given(&view.sort) == Some(column);
    let descending = sorted_here && given(&view.desc) == Some("1");
    let next_desc = if sorted_here && !descending { "1" } else { "" };
    let state = match (sorted_here, descending) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    (
        format!(
            "/registers/{register}{}",
            view.query(&[("sort", column), ("desc", next_desc)])
        ),
        state,
    )
}

/// The OSCAL document a register's rows go into, and its name in words.
fn oscal_of(register: &str) -> Option<(&'static str, &'static str)> {
    match register {
        "audits" | "findings" | "certification_cycle" => {
            Some(("assessment-results", "audit results"))
        }
        "corrective_actions" => Some(("poam", "plan of action and milestones")),
        _ => None,
    }
}

/// One register, filtered and sorted, with its CSV link.
pub fn register(
    frame: &Frame,
    name: &str,
    axis: &str,
    entries: u64,
    shown: &TextTable,
    total: usize,
) -> Markup {
    let path = format!("/registers/{name}");
    let title = title_of(name);
    let csv = format!("{path}{}", frame.view.query(&[("format", "csv")]));
    let body = html! {
        h1 { (title) }
        (time_form(&path, frame.view))
        (axis_line(axis, entries))
        form.filter method="get" action=(path) role="search" {
            @for (field, value) in [("as_of", &frame.view.as_of), ("effective", &frame.view.effective), ("known_at", &frame.view.known_at), ("sort", &frame.view.sort), ("desc", &frame.view.desc)] {
                @if let Some(v) = given(value) { input type="hidden" name=(field) value=(v); }
            }
            label for="q" { "Filter rows containing" }
            input #q type="search" name="q" value=[given(&frame.view.q)];
            button type="submit" { "Filter" }
        }
        p.count {
            "Showing " strong { (shown.rows.len()) } " of " (total) " rows"
            @if let Some(q) = given(&frame.view.q) { " containing “" (q) "”" }
            @if let Some(s) = given(&frame.view.sort) { ", sorted by " (s) @if given(&frame.view.desc) == Some("1") { " (descending)" } }
            ". " a.download href=(csv) download { "Download these rows as CSV" }
            @if let Some((model, words)) = oscal_of(name) {
                ", or " a.download href=(format!("/oscal/{model}.json{}", frame.view.query(&[("q", ""), ("sort", ""), ("desc", "")]))) download { "the " (words) " as OSCAL 1.1.3 JSON" }
            }
            "."
        }
        @if shown.rows.is_empty() {
            p.empty { "No rows." }
        } @else {
            div.scroll {
                table.register {
                    caption { (title) " — " (axis) }
                    thead {
                        tr {
                            @for c in &shown.columns {
                                @let (href, state) = sort_link(frame, name, c);
                                th scope="col" aria-sort=(state) { a href=(href) { (c) } }
                            }
                        }
                    }
                    tbody {
                        @for row in &shown.rows {
                            tr {
                                @for (i, cell) in row.iter().enumerate() {
                                    @let col = shown.columns.get(i).map(String::as_str).unwrap_or("");
                                    @if i == 0 {
                                        th scope="row" { a href=(format!("/history?id={}", url_encode(cell))) { (cell) } }
                                    } @else {
                                        td class=(if matches!(col, "status" | "overdue" | "grade") { status_class(cell) } else { "" }) { (cell) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(frame, &title, body)
}

/// The diff between two dates, field by field.
pub fn diff(frame: &Frame, result: Option<(i64, i64, &pb::DiffResponse)>) -> Markup {
    let view = frame.view;
    let body = html! {
        h1 { "What changed between two dates" }
        form.time method="get" action="/diff" {
            fieldset {
                legend { "Transaction time" }
                label for="from" { "From the end of" }
                input #from type="date" name="from" value=[given(&view.from)] required;
                label for="to" { "to the end of" }
                input #to type="date" name="to" value=[given(&view.to)] required;
                label for="register" { "Register" }
                select #register name="register" {
                    option value="" { "all" }
                    @for (name, label) in REGISTERS {
                        option value=(name) selected[given(&view.register) == Some(name)] { (label) }
                    }
                }
            }
            button type="submit" { "Compare" }
        }
        @match result {
            None => { p { "Pick two dates: the page lists every row added, removed or changed between the registers as recorded at the end of each." } }
            Some((from, to, diff)) => {
                p.axis role="note" { strong { "Transaction time: the registers as recorded at " (dates::show_time(from)) ", against the same registers as recorded at " (dates::show_time(to)) "." } }
                @let changed: usize = diff.registers.iter().map(|r| r.added.len() + r.removed.len() + r.changed.len()).sum();
                @if changed == 0 { p.empty { "Nothing changed." } }
                @for r in diff.registers.iter().filter(|r| !(r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty())) {
                    section {
                        h2 { (title_of(&r.register)) }
                        @if !r.changed.is_empty() {
                            div.scroll {
                                table.diff {
                                    caption { "Changed rows" }
                                    thead { tr { th scope="col" { "row" } th scope="col" { "field" } th scope="col" { "before" } th scope="col" { "after" } } }
                                    tbody {
                                        @for row in &r.changed {
                                            @for (n, cell) in row.cells.iter().enumerate() {
                                                tr {
                                                    @if n == 0 {
                                                        th scope="row" rowspan=(row.cells.len()) { a href=(format!("/history?id={}", url_encode(&row.id))) { (row.id) } }
                                                    }
                                                    td.field { (cell.name) }
                                                    td.before { del { (cell.before) } }
                                                    td.after { ins { (cell.after) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @for (label, rows, class) in [("Added rows", &r.added, "added"), ("Removed rows", &r.removed, "removed")] {
                            @if !rows.is_empty() {
                                @let t = text_table(id_column_of(&r.register), &pb::Table { name: r.register.clone(), rows: rows.clone() });
                                div class=(class) { (table(label, &t, true, &[])) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(frame, "Diff", body)
}

/// Every entry that touched a row.
pub fn history(frame: &Frame, id: &str, rows: &[HistoryRow]) -> Markup {
    let body = html! {
        h1 { "History of " (id) }
        p { "Every entry about this row, oldest first: who signed it, when the ledger recorded it (transaction time) and when it took effect (valid time)." }
        @if rows.is_empty() {
            p.empty { "No entry names " (id) "." }
        } @else {
            div.scroll {
                table {
                    caption { "Entries about " (id) }
                    thead { tr { th scope="col" { "seq" } th scope="col" { "recorded" } th scope="col" { "effective" } th scope="col" { "event" } th scope="col" { "signed by" } th scope="col" { "event id" } } }
                    tbody {
                        @for r in rows {
                            tr {
                                th scope="row" { a href=(format!("/entry/{}", r.seq)) { "#" (r.seq) } }
                                td { (dates::show_time(r.recorded_at)) }
                                td { (dates::show_time(r.effective_at)) }
                                td { (r.kind) }
                                td { (r.signer) }
                                td { code { (r.event_id) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(frame, &format!("History of {id}"), body)
}

/// One entry: its fields, signature, checkpoint with cosignatures, and inclusion proof.
pub fn entry(frame: &Frame, data: &EntryData) -> Markup {
    let e = &data.entry;
    let proof_link = format!(
        "/entry/{}/proof.json{}",
        e.seq.0,
        given(&frame.view.size)
            .map(|s| format!("?size={}", url_encode(s)))
            .unwrap_or_default()
    );
    let body = html! {
        h1 { "Entry #" (e.seq.0) }
        p.small {
            @if e.seq.0 > 0 { a href=(format!("/entry/{}", e.seq.0 - 1)) rel="prev" { "← entry #" (e.seq.0 - 1) } " " }
            @if e.seq.0 + 1 < data.proof.tree_size { a href=(format!("/entry/{}", e.seq.0 + 1)) rel="next" { "entry #" (e.seq.0 + 1) " →" } }
        }
        dl.fields {
            dt { "recorded (transaction time)" } dd { (dates::show_time(e.recorded_at.0)) }
            @match &data.envelope {
                Ok(env) => {
                    dt { "effective (valid time)" } dd { (dates::show_time(env.effective_at.0)) }
                    dt { "event" } dd { (env.event.kind().name()) }
                    dt { "event id" } dd { code { (env.event_id) } }
                    dt { "about" }
                    dd { @for row in super::history::rows_of(&env.event) { a href=(format!("/history?id={}", url_encode(&row))) { (row) } " " } }
                }
                Err(why) => { dt { "body" } dd.bad { "does not decode: " (why) } }
            }
            dt { "signed by" } dd { (data.signer) " — key " code { (e.key_id.to_hex()) } }
            dt { "signature (ed25519)" } dd { code.wrap { (hex::encode(e.signature)) } }
            dt { "previous entry hash" } dd { code.wrap { (e.prev_hash.to_hex()) } }
            dt { "entry hash" } dd { code.wrap { (data.proof.entry_hash) } }
        }
        @if let Ok(env) = &data.envelope {
            details {
                summary { "The event as signed" }
                pre { (format!("{:#?}", env.event)) }
            }
        }
        h2 { "Inclusion proof" }
        p {
            "This entry is leaf " (e.seq.0) " of the tree of " strong { (data.proof.tree_size) } " entries whose root the checkpoint below signs. "
            a.download href=(proof_link) download { "Download the proof (JSON)" }
            " and check it offline: " code { "isms prove check --ledger-key ledger.vkey entry-" (e.seq.0) "-proof.json" } "."
        }
        dl.fields {
            dt { "leaf hash" } dd { code.wrap { (data.proof.leaf_hash) } }
            dt { "root" } dd { code.wrap { (data.proof.root) } }
            dt { "audit path" }
            dd { ol.path { @for h in &data.proof.path { li { code { (h) } } } } }
        }
        h2 { "Checkpoint, with witness cosignatures" }
        pre.note { (data.proof.checkpoint) }
    };
    layout(frame, &format!("Entry {}", e.seq.0), body)
}

fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main #main { (body) } }
        }
    }
}

/// A page that could not be shown.
pub fn failure(status: StatusCode, message: &str) -> Markup {
    bare(
        "Error",
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.bad.error { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

fn how_to_sign_in(next: &str) -> Markup {
    html! {
        p { "Make a session link with your enrolled key, on your own machine:" }
        pre { "isms console link --key auditor.key --url http://THIS-HOST:PORT" }
        p { "and open the link it prints. Or paste the session token here:" }
        form method="get" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="session" { "Session token" }
            input #session type="text" name="session" size="60" autocomplete="off";
            button type="submit" { "Sign in" }
        }
    }
}

/// 401: who may read, and how to get a session.
pub fn sign_in_needed(next: &str, why: &str) -> Markup {
    bare(
        "Sign in",
        html! {
            h1 { "Sign in to read this ledger" }
            p.bad.error { (why) }
            (how_to_sign_in(next))
        },
    )
}

/// The sign-in page.
pub fn login(origin: &str, next: &str, error: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "Ledger " code { (origin) } "." }
            @if let Some(why) = error { p.bad.error { (why) } }
            (how_to_sign_in(next))
        },
    )
}

/// The console's stylesheet (served at `/assets/console.css`). The heat map's band colours
/// appear nowhere in it.
pub const CSS: &str = "\
:root{--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--head:#eef1f4;--link:#0b5394}\
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
margin:0;color:var(--ink);background:#fdfdfd;font-size:15px}\
a{color:var(--link)}.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;\
background:#fff;padding:4px}header.top{background:#f3f5f7;border-bottom:1px solid var(--line);\
padding:8px 24px}.brand{font-weight:bold}.origin{font-weight:normal;color:var(--muted);\
font-size:12px;margin-left:8px}nav ul{list-style:none;margin:6px 0;padding:0;display:flex;\
flex-wrap:wrap;gap:4px 14px}nav a[aria-current=page]{font-weight:bold;color:var(--ink);\
text-decoration:none;border-bottom:2px solid var(--ink)}.who{font-size:12px;color:var(--muted)}\
main{padding:12px 24px 32px;max-width:1400px}h1{font-size:22px;margin:8px 0}\
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}\
h3{font-size:14px;margin:4px 0}form.time,form.filter{display:flex;flex-wrap:wrap;gap:8px 16px;\
align-items:flex-end;margin:8px 0}fieldset{border:1px solid var(--line);padding:4px 10px 8px;\
display:flex;gap:6px;align-items:center;flex-wrap:wrap}legend{font-size:12px;color:var(--muted)}\
label{font-size:13px}input,select,button{font:inherit;padding:3px 6px}.axis{background:#eef4fb;\
border-left:4px solid var(--link);padding:6px 10px}.scroll{overflow-x:auto}\
table{border-collapse:collapse;font-size:13px;width:100%;margin:6px 0 14px}\
caption{text-align:left;font-size:12px;color:var(--muted);padding:2px 0}\
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}\
thead th{background:var(--head)}tbody th{font-weight:normal;white-space:nowrap}\
td.good,.good{color:#0b5394}td.warn{color:#8a4b00;font-weight:bold}td.bad,.bad{color:#7a0019;\
font-weight:bold}.empty{color:var(--muted);font-style:italic}.stages{display:flex;gap:24px}\
.stage{border:1px solid var(--line);padding:6px 12px}.count{color:var(--muted)}\
.maps{display:flex;gap:32px;flex-wrap:wrap}.legend,.small{color:var(--muted);font-size:12px}\
pre{background:#f3f4f6;padding:8px;font-size:12px;white-space:pre-wrap;word-break:break-all}\
code.wrap{word-break:break-all}dl.fields{display:grid;grid-template-columns:max-content 1fr;\
gap:4px 14px}dt{color:var(--muted)}dd{margin:0}del{background:#fbe9eb;color:#7a0019}\
ins{background:#e6f2ea;color:#0f5132;text-decoration:none;font-weight:bold}\
footer{color:var(--muted);font-size:12px;padding:12px 24px;border-top:1px solid var(--line)}\
@media print{header.top nav,form,.skip,a.download,footer{display:none}body{font-size:11px}\
main{padding:0}a{color:inherit;text-decoration:none}}";

#[cfg(test)]
mod tests {
    #[test]
    fn the_navigation_names_every_register_the_engine_has() {
        let names: Vec<&str> = super::REGISTERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, projections::registers::REGISTER_NAMES);
    }
}
