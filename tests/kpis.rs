//! The seed's KPIs per period, computed from the records: `isms register kpis --by quarter`
//! on the demo's year, each quarter's value as recorded at its end, the target an objective
//! sets, and the trend.

mod cli_util;

use cli_util::{ok, run, Server};

fn kpi_rows(by: &str) -> (serde_json::Value, tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    ok(d, &["demo", "--dir", "demo"]);
    let server = Server::start(d, "demo/data");
    let out = ok(
        d,
        &[
            "register",
            "kpis",
            "--server",
            &server.url,
            "--key",
            "demo/keys/ciso.key",
            "--by",
            by,
            "--from",
            "2025-01-01",
            "--as-of",
            "2025-12-31",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    (v, dir, server)
}

fn kpi<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["kpi"] == name)
        .unwrap_or_else(|| panic!("no KPI {name} in {v}"))
}

#[test]
fn kpis_by_quarter_give_each_quarters_value_as_recorded_at_its_end() {
    let (v, _dir, _server) = kpi_rows("quarter");
    let labels: Vec<&str> = v["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| p["period"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]);
    // The demo's incident is recorded after the first half of the year.
    let incidents = kpi(&v, "Number and severity of security incidents");
    assert!(
        incidents["2025-Q1"]
            .as_str()
            .expect("text")
            .starts_with('0'),
        "{incidents}"
    );
    assert!(
        incidents["2025-Q4"]
            .as_str()
            .expect("text")
            .starts_with('1'),
        "{incidents}"
    );
}

#[test]
fn a_kpi_shows_the_target_its_objective_sets_and_its_trend() {
    let (v, _dir, _server) = kpi_rows("quarter");
    let patch = kpi(&v, "Patch compliance percentage");
    assert_eq!(patch["target"], ">= 95% (OBJ-2)", "{patch}");
    assert_eq!(patch["trend"], "up", "{patch}");
}

#[test]
fn kpis_by_month_have_twelve_columns_for_a_year() {
    let (v, _dir, _server) = kpi_rows("month");
    assert_eq!(v["periods"].as_array().expect("periods").len(), 12);
}

#[test]
fn by_applies_to_kpis_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(
        dir.path(),
        &[
            "register",
            "risks",
            "--by",
            "month",
            "--server",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--by"), "{}", out.stderr);
}
