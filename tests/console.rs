//! The auditor's console over real HTTP: `isms serve --http` on the demo's ledger, sessions
//! made by `isms console link`, and what each page and download promises. (The same pages in
//! a real browser: tests/console_browser.rs.)

mod cli_util;

use std::path::Path;

use cli_util::{http_get, ok, run, HttpAnswer, Server};
use isms_cli::console::session;

/// The demo's ledger served with the console; the temp dir holds `demo/`.
struct Demo {
    dir: tempfile::TempDir,
    server: Server,
    console: String,
}

impl Demo {
    fn start(flags: &[&str]) -> Demo {
        let dir = tempfile::tempdir().expect("temp dir");
        ok(dir.path(), &["demo", "--dir", "demo"]);
        let (server, console) = Server::start_console(dir.path(), "demo/data", flags);
        Demo {
            dir,
            server,
            console,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A session token made by `isms console link` with a demo key.
    fn token(&self, key: &str) -> String {
        let link = ok(
            self.path(),
            &[
                "console",
                "link",
                "--key",
                &format!("demo/keys/{key}.key"),
                "--url",
                &self.console,
            ],
        );
        let token = link
            .trim()
            .split("session=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .unwrap_or_else(|| panic!("no session in the link {link:?}"));
        token.replace("%2E", ".")
    }

    fn get(&self, path: &str, token: Option<&str>) -> HttpAnswer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        http_get(&format!("{}{path}", self.console), &headers)
    }

    fn origin(&self) -> String {
        self.get("/origin", None).body.trim().to_string()
    }
}

fn signing_key(path: &Path) -> ed25519_dalek::SigningKey {
    isms_cli::client::read_key(path).expect("a key file")
}

fn now_us() -> i64 {
    ledger::UnixMicros::now().0
}

#[test]
fn a_reader_without_a_session_gets_401_and_is_told_how_to_sign_in() {
    let demo = Demo::start(&[]);
    let answer = demo.get("/registers/risk_register", None);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.body.contains("isms console link"), "{}", answer.body);
    assert!(
        !answer.body.contains("RISK-001"),
        "a refused page leaks rows"
    );
}

#[test]
fn anonymous_reading_needs_the_servers_flag() {
    let demo = Demo::start(&["--allow-anonymous-reads"]);
    let answer = demo.get("/registers/risk_register", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("RISK-001"));
}

#[test]
fn a_session_link_signs_in_with_a_cookie_and_goes_to_the_page_asked_for() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get(
        &format!("/login?session={token}&next=%2Fdiff%3Ffrom%3D2025-03-31"),
        None,
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.headers["location"], "/diff?from=2025-03-31");
    let cookie = answer.headers["set-cookie"].to_str().expect("ASCII");
    assert!(
        cookie.starts_with(&format!("{}={token};", session::COOKIE)) && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let page = http_get(
        &format!("{}/", demo.console),
        &[("cookie", &format!("{}={token}", session::COOKIE))],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("internal-auditor@example.com"));
}

#[test]
fn sign_in_never_redirects_off_the_console() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get(
        &format!("/login?session={token}&next=%2F%2Fevil.example%2F"),
        None,
    );
    assert_eq!(answer.status, 303);
    assert_eq!(answer.headers["location"], "/");
}

#[test]
fn an_expired_session_is_refused() {
    let demo = Demo::start(&[]);
    let key = signing_key(&demo.path().join("demo/keys/auditor.key"));
    let token = session::token(&key, &demo.origin(), now_us() - 1_000_000);
    let answer = demo.get("/", Some(&token));
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("expired"), "{}", answer.body);
}

#[test]
fn a_session_signed_for_another_ledger_is_refused() {
    let demo = Demo::start(&[]);
    let key = signing_key(&demo.path().join("demo/keys/auditor.key"));
    let token = session::token(&key, "isms-ledger/another", now_us() + 3_600_000_000);
    let answer = demo.get("/", Some(&token));
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("does not verify"), "{}", answer.body);
}

#[test]
fn a_session_of_a_key_not_enrolled_is_refused() {
    let demo = Demo::start(&[]);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let token = session::token(&stranger, &demo.origin(), now_us() + 3_600_000_000);
    let answer = demo.get("/", Some(&token));
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("not enrolled"), "{}", answer.body);
}

#[test]
fn revoking_a_key_ends_its_sessions_at_once() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    assert_eq!(demo.get("/", Some(&token)).status, 200);
    ok(
        demo.path(),
        &[
            "key",
            "revoke",
            "--server",
            &demo.server.url,
            "--key",
            "demo/keys/ciso.key",
            "--reason",
            "left",
            "internal-auditor@example.com",
        ],
    );
    let answer = demo.get("/", Some(&token));
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.body.contains("revoked"), "{}", answer.body);
}

/// The row ids a register page shows, in order (each links to its history).
fn shown_ids(html: &str) -> Vec<String> {
    html.split("<th scope=\"row\"><a href=\"/history?id=")
        .skip(1)
        .filter_map(|rest| Some(rest.split_once("\">")?.1.split_once('<')?.0.to_string()))
        .collect()
}

#[test]
fn the_csv_download_holds_exactly_the_rows_the_page_shows() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let view = "/registers/soa?as_of=2025-06-30&q=implemented&sort=control&desc=1";
    let page = demo.get(view, Some(&token));
    assert_eq!(page.status, 200, "{}", page.body);
    let ids = shown_ids(&page.body);
    assert!(
        ids.len() > 1,
        "the filter should leave several rows: {ids:?}"
    );
    let csv = demo.get(&format!("{view}&format=csv"), Some(&token));
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .expect("ASCII")
        .starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let csv_ids: Vec<String> = reader
        .records()
        .map(|r| r.expect("a CSV row")[0].to_string())
        .collect();
    assert_eq!(csv_ids, ids);
}

#[test]
fn a_date_that_is_not_a_date_gets_400_naming_the_parameter() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get("/registers/risk_register?as_of=2025-13-45", Some(&token));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("as_of"), "{}", answer.body);
}

#[test]
fn an_unknown_register_gets_404_listing_the_registers() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get("/registers/nonsense", Some(&token));
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.body.contains("risk_register"), "{}", answer.body);
}

#[test]
fn a_rows_history_lists_every_entry_about_it_with_its_signer() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get("/history?id=RISK-002", Some(&token));
    assert_eq!(answer.status, 200, "{}", answer.body);
    for needle in [
        "risk_identified",
        "risk_assessed",
        "risk_rescored",
        "cto@example.com",
    ] {
        assert!(answer.body.contains(needle), "history lacks {needle:?}");
    }
    assert!(!answer.body.contains("RISK-001</td>"));
}

#[test]
fn the_proof_an_entry_page_offers_checks_offline_with_isms_prove() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let page = demo.get("/entry/20", Some(&token));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/entry/20/proof.json"));
    let proof = demo.get("/entry/20/proof.json", Some(&token));
    assert_eq!(proof.status, 200, "{}", proof.body);
    std::fs::write(demo.path().join("proof.json"), &proof.body).expect("write proof");
    let out = ok(
        demo.path(),
        &[
            "prove",
            "check",
            "--ledger-key",
            "demo/ledger.vkey",
            "proof.json",
        ],
    );
    assert!(out.contains("entry 20"), "{out}");
    // The same proof with its entry altered is refused.
    let forged = proof.body.replacen("\"seq\": 20", "\"seq\": 21", 1);
    std::fs::write(demo.path().join("forged.json"), forged).expect("write forged proof");
    let refused = run(
        demo.path(),
        &[
            "prove",
            "check",
            "--ledger-key",
            "demo/ledger.vkey",
            "forged.json",
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
}

#[test]
fn pages_forbid_scripts_and_framing() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get("/", Some(&token));
    let csp = answer.headers["content-security-policy"]
        .to_str()
        .expect("ASCII");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!answer.body.contains("<script"));
}

#[test]
fn the_demo_with_a_console_prints_a_link_that_signs_the_auditor_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Server::spawn(
        dir.path(),
        &["demo", "--dir", "demo", "--console", "127.0.0.1:0"],
        "  http://",
    );
    let link = &demo.url;
    assert!(link.contains("/login?session=v1."), "{link}");
    let answer = http_get(link, &[]);
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = answer.headers["set-cookie"].to_str().expect("ASCII");
    let session = cookie.split(';').next().expect("a cookie");
    let base = link.split("/login").next().expect("a base URL");
    let page = http_get(
        &format!("{base}/registers/risk_register"),
        &[("cookie", session)],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("internal-auditor@example.com") && page.body.contains("RISK-006"));
}

#[test]
fn every_register_the_navigation_names_opens_for_a_past_date() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let overview = demo.get("/?as_of=2025-06-30", Some(&token));
    let links: Vec<&str> = overview
        .body
        .split("href=\"/registers/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(links.len() >= 8, "{links:?}");
    for link in links {
        let link = link.replace("&amp;", "&");
        assert!(
            link.contains("as_of=2025-06-30"),
            "the link drops the date: {link}"
        );
        let page = demo.get(&format!("/registers/{link}"), Some(&token));
        assert_eq!(page.status, 200, "/registers/{link}: {}", page.body);
    }
}

#[test]
fn the_findings_page_offers_the_same_oscal_document_as_isms_oscal() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let page = demo.get("/registers/findings?as_of=2025-06-30", Some(&token));
    assert_eq!(page.status, 200, "{}", page.body);
    let link = "/oscal/assessment-results.json?as_of=2025-06-30";
    assert!(page.body.contains(link), "{}", page.body);
    let download = demo.get(link, Some(&token));
    assert_eq!(download.status, 200, "{}", download.body);
    let from_console: serde_json::Value = serde_json::from_str(&download.body).expect("JSON");
    let from_cli: serde_json::Value = serde_json::from_str(&ok(
        demo.path(),
        &[
            "oscal",
            "assessment-results",
            "--server",
            &demo.server.url,
            "--key",
            "demo/keys/auditor.key",
            "--as-of",
            "2025-06-30",
        ],
    ))
    .expect("JSON");
    assert_eq!(from_console, from_cli);
}

#[test]
fn an_unknown_oscal_document_is_404_naming_the_ones_there_are() {
    let demo = Demo::start(&[]);
    let token = demo.token("auditor");
    let answer = demo.get("/oscal/ssp.json", Some(&token));
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.body.contains("poam.json"), "{}", answer.body);
}
