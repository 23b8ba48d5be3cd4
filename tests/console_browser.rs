//! The auditor's console in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver) with fantoccini, against `isms serve --http` on the demo's year of
//! data. Screenshots of each page at 1400 px wide are kept under
//! `target/tmp/console-screenshots/` (not committed).

mod cli_util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_util::{band_pixels, find_chromium, find_program, http_get, ok, Server};
use fantoccini::{Client, ClientBuilder, Locator};

/// The demo's ledger served with the console, and a browser pointed at it.
struct Session {
    dir: tempfile::TempDir,
    _server: Server,
    console: String,
    browser: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Chromium and chromedriver, or None (then the test says it skipped; on CI it fails).
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let found = find_chromium().zip(find_program(&["chromedriver"]));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromium or chromedriver is missing (apt-get install -y chromium \
             chromium-driver)"
        );
        println!("SKIPPED: chromium and chromium-driver are not installed");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Session {
    /// Starts the demo, its server with the console, chromedriver and a headless Chromium;
    /// None when the browser is not installed (outside CI).
    async fn start() -> Option<Session> {
        let (chromium, chromedriver) = browser_programs()?;
        let dir = tempfile::tempdir().expect("temp dir");
        ok(dir.path(), &["demo", "--dir", "demo"]);
        let (server, console) = Server::start_console(dir.path(), "demo/data", &[]);
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--no-first-run",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let browser = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("connecting to chromedriver: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Some(Session {
            dir,
            _server: server,
            console,
            browser,
            driver,
            _profile: profile,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the link `isms console link` prints for the demo's auditor, landing on `open`.
    async fn sign_in(&self, open: &str) {
        let link = ok(
            self.path(),
            &[
                "console",
                "link",
                "--key",
                "demo/keys/auditor.key",
                "--url",
                &self.console,
                "--open",
                open,
            ],
        );
        self.browser.goto(link.trim()).await.expect("open the link");
    }

    async fn goto(&self, path: &str) {
        self.browser
            .goto(&format!("{}{path}", self.console))
            .await
            .expect("navigate");
    }

    /// Sets a form field's value (date inputs take typed text in the locale's order, so the
    /// test sets the value the way a date picker does) .
    async fn set(&self, id: &str, value: &str) {
        self.browser
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1];",
                vec![id.into(), value.into()],
            )
            .await
            .expect("set a field");
    }

    /// Clicks what `css` finds (a link or a submit button) and waits for the page it opens.
    async fn click(&self, css: &str) {
        self.follow(Locator::Css(css)).await;
    }

    /// Clicks what `locator` finds and waits until the browser has left the page and loaded
    /// the next one: a click can return before the navigation it starts.
    async fn follow(&self, locator: Locator<'_>) {
        let before = self.url().await;
        let what = format!("{locator:?}");
        self.browser
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("find {what}: {e}"))
            .click()
            .await
            .expect("click");
        for _ in 0..100 {
            if self.url().await != before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..100 {
            let state = self
                .browser
                .execute("return document.readyState;", vec![])
                .await
                .expect("readyState");
            if state == "complete" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// The text of the table row whose header links `id`.
    async fn row(&self, id: &str) -> String {
        self.browser
            .find(Locator::XPath(&format!("//tr[th/a[text()='{id}']]")))
            .await
            .unwrap_or_else(|e| panic!("no row {id}: {e}"))
            .text()
            .await
            .expect("row text")
    }

    async fn url(&self) -> String {
        self.browser.current_url().await.expect("url").to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn picking_31_march_shows_the_march_residual_score() {
    let Some(s) = Session::start().await else {
        return;
    };
    s.sign_in("/registers/risk_register").await;
    assert!(s.row("RISK-002").await.contains("1x4=4 accept"));
    s.set("as_of", "2025-03-31").await;
    s.click("form.time button[type=submit]").await;
    assert!(
        s.url().await.contains("as_of=2025-03-31"),
        "{}",
        s.url().await
    );
    let row = s.row("RISK-002").await;
    assert!(row.contains("1x5=5 mitigate"), "March's row: {row}");
    assert!(
        !row.contains("1x4=4 accept"),
        "March's row shows today's score: {row}"
    );
    let axis = s.text("p.axis").await;
    assert!(
        axis.contains("Transaction time") && axis.contains("2025-03-31"),
        "{axis}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_diff_between_march_and_june_marks_the_changed_field() {
    let Some(s) = Session::start().await else {
        return;
    };
    s.sign_in("/diff").await;
    s.set("from", "2025-03-31").await;
    s.set("to", "2025-06-30").await;
    s.set("register", "risk_register").await;
    s.click("form.time button[type=submit]").await;
    let url = s.url().await;
    assert!(
        url.contains("from=2025-03-31") && url.contains("to=2025-06-30"),
        "{url}"
    );
    let changed = s
        .browser
        .find(Locator::XPath(
            "//table[contains(@class,'diff')]//tr[th/a[text()='RISK-002']]",
        ))
        .await
        .expect("RISK-002 among the changed rows");
    let before = changed
        .find(Locator::Css("td.before del"))
        .await
        .expect("a before value")
        .text()
        .await
        .expect("text");
    let after = changed
        .find(Locator::Css("td.after ins"))
        .await
        .expect("an after value")
        .text()
        .await
        .expect("text");
    assert_eq!(
        (before.as_str(), after.as_str()),
        ("1x5=5 mitigate", "1x4=4 accept")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_leads_to_its_entry_whose_downloaded_proof_checks_with_isms_prove() {
    let Some(s) = Session::start().await else {
        return;
    };
    s.sign_in("/registers/risk_register?as_of=2025-06-30").await;
    s.follow(Locator::LinkText("RISK-002")).await;
    assert!(s.url().await.contains("/history?id=RISK-002"));
    // The latest entry about the row: the April rescoring.
    s.click("main table tbody tr:last-child th a").await;
    let heading = s.text("h1").await;
    assert!(heading.starts_with("Entry #"), "{heading}");
    let seq = heading.trim_start_matches("Entry #").to_string();
    let href = s
        .browser
        .find(Locator::Css("a.download"))
        .await
        .expect("the download link")
        .attr("href")
        .await
        .expect("href")
        .expect("an href");
    // The download, with the browser's own session cookie.
    let cookie = s
        .browser
        .get_named_cookie(isms_cli::console::session::COOKIE)
        .await
        .expect("the session cookie");
    let (url, cookie) = (
        format!("{}{href}", s.console),
        format!("{}={}", cookie.name(), cookie.value()),
    );
    // http_get runs its own runtime, so it goes on a thread of its own.
    let proof = std::thread::spawn(move || http_get(&url, &[("cookie", &cookie)]))
        .join()
        .expect("the download");
    assert_eq!(proof.status, 200, "{}", proof.body);
    std::fs::write(s.path().join("proof.json"), &proof.body).expect("write proof");
    let out = ok(
        s.path(),
        &[
            "prove",
            "check",
            "--ledger-key",
            "demo/ledger.vkey",
            "proof.json",
        ],
    );
    assert!(out.contains(&format!("entry {seq} ")), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_session_the_browser_is_shown_the_sign_in_page_not_the_register() {
    let Some(s) = Session::start().await else {
        return;
    };
    s.goto("/registers/risk_register").await;
    let title = s.browser.title().await.expect("title");
    assert!(title.starts_with("Sign in"), "{title}");
    let source = s.browser.source().await.expect("source");
    assert!(!source.contains("RISK-002"), "the refused page shows a row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pasted_session_token_signs_in_without_javascript_and_returns_to_the_page() {
    let Some(s) = Session::start().await else {
        return;
    };
    s.goto("/registers/risk_register").await;
    let link = ok(
        s.path(),
        &[
            "console",
            "link",
            "--key",
            "demo/keys/auditor.key",
            "--url",
            &s.console,
        ],
    );
    let token = link
        .split("session=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("a token")
        .to_string();
    s.browser
        .find(Locator::Id("session"))
        .await
        .expect("the token field")
        .send_keys(&token)
        .await
        .expect("type the token");
    s.click("form button[type=submit]").await;
    assert!(s.url().await.ends_with("/registers/risk_register"));
    assert!(s.row("RISK-002").await.contains("RISK-002"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_is_kept_as_a_screenshot_and_the_overview_shows_the_heat_map() {
    let Some(s) = Session::start().await else {
        return;
    };
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    s.sign_in("/").await;
    s.browser
        .set_window_size(1400, 2600)
        .await
        .expect("window size");
    let pages = [
        ("overview", "/?as_of=2025-12-31"),
        ("risks", "/registers/risk_register?as_of=2025-03-31"),
        ("soa", "/registers/soa"),
        ("actions", "/registers/corrective_actions"),
        ("diff", "/diff?from=2025-03-31&to=2025-06-30"),
        ("history", "/history?id=RISK-002"),
        ("entry", "/entry/20"),
    ];
    let mut counts = Vec::new();
    for (name, path) in pages {
        s.goto(path).await;
        let png = s.browser.screenshot().await.expect("screenshot");
        let file = folder.join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write screenshot");
        counts.push((name, band_pixels(&file)));
    }
    // Each 5x5 map has at least 5 cells of each band, 72 px square: far more than 2,000
    // pixels of each colour, and no other page uses them.
    let (_, overview) = counts[0];
    assert!(overview.iter().all(|&n| n > 2000), "overview: {overview:?}");
    for (name, bands) in &counts[1..] {
        assert!(
            bands.iter().all(|&n| n < 200),
            "{name} shows heat map colours: {bands:?}"
        );
    }
}
