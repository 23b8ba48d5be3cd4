//! `isms report` end to end: the demo's ledger served by `isms serve`, a report as of the end
//! of March written by the real binary, opened in headless Chromium, and the screenshot
//! checked for the heat map's band colours (which the report uses nowhere else).

mod cli_util;

use std::process::{Command, Stdio};
use std::time::Duration;

use cli_util::{band_pixels, find_chromium, ok, wait_with_limit, Server, BANDS};

#[test]
fn the_report_is_one_html_file_whose_screenshot_shows_the_heat_map() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    ok(d, &["demo", "--dir", "demo"]);
    let server = Server::start(d, "demo/data");
    let out = ok(
        d,
        &[
            "report",
            "--server",
            &server.url,
            "--key",
            "demo/keys/auditor.key",
            "--ledger-key",
            "demo/ledger.vkey",
            "--as-of",
            "2025-03-31",
            "--out",
            "report.html",
        ],
    );
    assert!(out.contains("report.html"), "{out}");
    let html = std::fs::read_to_string(d.join("report.html")).expect("the report");
    for needle in [
        "Risk heat map",
        "Inherent risk",
        "Residual risk",
        "RISK-001",
        "F-2025-02",
        "CA-2025-02",
        "Statement of Applicability",
        "stage_2",
        "verified: ",
        "rests on this checkpoint",
        "rest on entries 0..=",
        "which the verification above checked",
        "<h2>ISMS scope</h2>",
        "<h2>Policies and documented information</h2>",
        "Incident management procedure",
        "<h2>Information assets</h2>",
        "<h2>Business continuity tests</h2>",
    ] {
        assert!(html.contains(needle), "the report lacks {needle:?}");
    }
    // The asset no risk names is marked as not risk-assessed.
    assert!(
        html.contains("Office Wi-Fi</td>") && html.contains("<td class=\"warn\">no</td>"),
        "the unassessed asset is not marked"
    );
    // As of 31 March: RISK-006 (July) is not there yet, and nothing is fetched from elsewhere.
    assert!(!html.contains("RISK-006"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));

    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromium is not installed (apt-get install -y chromium)"
        );
        println!(
            "SKIPPED the screenshot check: chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let shot = d.join("report.png");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
            &format!("file://{}", d.join("report.html").display()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let status = wait_with_limit(&mut child, Duration::from_secs(120)).expect("chromium finished");
    assert!(status.success(), "chromium exited with {status}");
    let counts = band_pixels(&shot);
    // Each 5x5 map has at least 5 cells of each band, 72 px square: far more than 2,000
    // pixels of each colour, and nothing else on the page uses them.
    for ((name, _), n) in BANDS.iter().zip(counts) {
        assert!(
            n > 2000,
            "the screenshot has {n} pixels of the {name} band: {counts:?}"
        );
    }
}
