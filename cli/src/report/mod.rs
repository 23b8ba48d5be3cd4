//! The HTML report: one self-contained file (inline CSS and SVG, no external assets, no
//! scripts) with the 5x5 risk heat map (inherent beside residual), the risk register, the SoA,
//! findings and corrective actions with their SLA status, the readiness checklist, and the
//! verification result with the checkpoint it rests on.
//!
//! The heat map's band colours ([`BAND_COLOURS`]) are used nowhere else on the page, so a
//! screenshot test can find the heat map by its pixels.

use std::fmt::Write as _;

use crate::output::TextTable;

/// Fill colours of the heat map cells by appetite band: accept (1-4), mitigate (5-14),
/// escalate (15-25). Deliberately unusual values that appear nowhere else in the page.
pub const BAND_COLOURS: [(&str, [u8; 3]); 3] = [
    ("accept", [0x3a, 0xaa, 0x5c]),
    ("mitigate", [0xf6, 0xbe, 0x00]),
    ("escalate", [0xd6, 0x28, 0x39]),
];

/// Everything the report shows, already fetched.
#[derive(Clone, Debug)]
pub struct ReportData {
    /// The ledger's name or origin.
    pub ledger: String,
    /// The query time, as text.
    pub as_of: String,
    /// When the report was made, as text.
    pub generated: String,
    /// Entries folded into the registers.
    pub entries: u64,
    /// The risk register (columns as the server names them: risk, inherent, residual, ...).
    pub risks: TextTable,
    /// The SoA.
    pub soa: TextTable,
    /// Findings.
    pub findings: TextTable,
    /// Corrective actions.
    pub actions: TextTable,
    /// The readiness checklist.
    pub readiness: TextTable,
    /// The other registers (scope, policies, objectives, assets, ...): title and table.
    pub more: Vec<(String, TextTable)>,
    /// Ok(summary lines, checkpoint note) or Err(why verification failed).
    pub verification: Result<(String, String), String>,
    /// What independent witnesses cosigned, one sentence each (empty: none has).
    pub witnessed: Vec<String>,
    /// Which entries the registers as of the date rest on and the checkpoint covering them.
    pub covered: Option<String>,
}

/// HTML-escapes text.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex_colour(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// The band of a score, by the seed's appetite.
pub fn band_of(score: u32) -> usize {
    match score {
        0..=4 => 0,
        5..=14 => 1,
        _ => 2,
    }
}

/// Reads "3x4=12 mitigate" into (likelihood, impact).
pub fn parse_score(cell: &str) -> Option<(u32, u32)> {
    let (l, rest) = cell.split_once('x')?;
    let (i, _) = rest.split_once('=')?;
    let (l, i) = (l.trim().parse().ok()?, i.trim().parse().ok()?);
    ((1..=5).contains(&l) && (1..=5).contains(&i)).then_some((l, i))
}

fn column(table: &TextTable, name: &str) -> Option<usize> {
    table.columns.iter().position(|c| c == name)
}

/// The risks placed on the grid: (likelihood, impact) -> risk ids.
pub fn placements(risks: &TextTable, which: &str) -> Vec<((u32, u32), String)> {
    let Some(col) = column(risks, which) else {
        return Vec::new();
    };
    risks
        .rows
        .iter()
        .filter_map(|r| Some((parse_score(r.get(col)?)?, r[0].clone())))
        .collect()
}

/// One 5x5 heat map as inline SVG: likelihood 5 at the top, impact 1 at the left.
pub fn heat_map_svg(title: &str, placed: &[((u32, u32), String)]) -> String {
    const CELL: u32 = 72;
    const LEFT: u32 = 40;
    const TOP: u32 = 30;
    let width = LEFT + 5 * CELL + 10;
    let height = TOP + 5 * CELL + 40;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{t}\"><text x=\"{LEFT}\" y=\"18\" font-size=\"14\" \
         font-weight=\"bold\">{t}</text>",
        t = esc(title)
    );
    for l in 1..=5u32 {
        for i in 1..=5u32 {
            let x = LEFT + (i - 1) * CELL;
            let y = TOP + (5 - l) * CELL;
            let colour = hex_colour(BAND_COLOURS[band_of(l * i)].1);
            let _ = write!(
                svg,
                "<rect class=\"cell\" x=\"{x}\" y=\"{y}\" width=\"{CELL}\" height=\"{CELL}\" \
                 fill=\"{colour}\" stroke=\"#ffffff\" stroke-width=\"2\"/>"
            );
            let here: Vec<&String> = placed
                .iter()
                .filter(|((pl, pi), _)| *pl == l && *pi == i)
                .map(|(_, id)| id)
                .collect();
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#222222\">{}</text>",
                x + 4,
                y + 14,
                l * i
            );
            for (n, id) in here.iter().take(3).enumerate() {
                let _ = write!(
                    svg,
                    "<text x=\"{}\" y=\"{}\" font-size=\"11\" font-weight=\"bold\" \
                     fill=\"#111111\">{}</text>",
                    x + 4,
                    y + 32 + 13 * n as u32,
                    esc(id)
                );
            }
            if here.len() > 3 {
                let _ = write!(
                    svg,
                    "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#111111\">+{}</text>",
                    x + 4,
                    y + 68,
                    here.len() - 3
                );
            }
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\">{l}</text>",
            LEFT - 14,
            TOP + (5 - l) * CELL + CELL / 2 + 4
        );
    }
    for i in 1..=5u32 {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\">{i}</text>",
            LEFT + (i - 1) * CELL + CELL / 2 - 3,
            TOP + 5 * CELL + 16
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\">impact →</text>\
         <text x=\"4\" y=\"{}\" font-size=\"12\" transform=\"rotate(-90 12 {})\">likelihood →</text></svg>",
        LEFT + 2 * CELL,
        TOP + 5 * CELL + 34,
        TOP + 4 * CELL,
        TOP + 4 * CELL
    );
    svg
}

fn html_table(table: &TextTable, status_cols: &[&str]) -> String {
    if table.rows.is_empty() {
        return "<p class=\"empty\">Nothing recorded.</p>".into();
    }
    let mut out = String::from("<table><thead><tr>");
    for c in &table.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let name = table.columns.get(i).map(String::as_str).unwrap_or("");
            let class = if status_cols.contains(&name) {
                status_class(cell)
            } else {
                ""
            };
            let _ = write!(out, "<td class=\"{class}\">{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A CSS class for a status cell (never the heat map's colours).
pub fn status_class(cell: &str) -> &'static str {
    let c = cell.to_lowercase();
    if c.contains("overdue")
        || c == "not_met"
        || c.contains("major")
        || c == "notmet"
        || c == "fail"
    {
        "bad"
    } else if c.contains("partly") || c.contains("open") || c.contains("minor") || c == "no" {
        "warn"
    } else if c.is_empty() {
        ""
    } else {
        "good"
    }
}

/// Renders the whole report.
pub fn render(data: &ReportData) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ISMS report — {ledger} — as of {as_of}</title><style>{css}</style></head><body>\
         <h1>ISMS report: {ledger}</h1>\
         <p class=\"meta\">Registers as of <b>{as_of}</b> ({entries} entries) · generated {generated} \
         by <code>isms report</code></p>",
        ledger = esc(&data.ledger),
        as_of = esc(&data.as_of),
        generated = esc(&data.generated),
        entries = data.entries,
        css = CSS
    );
    html.push_str("<h2>Risk heat map</h2><div class=\"maps\">");
    html.push_str(&heat_map_svg(
        "Inherent risk",
        &placements(&data.risks, "inherent"),
    ));
    html.push_str(&heat_map_svg(
        "Residual risk",
        &placements(&data.risks, "residual"),
    ));
    html.push_str("</div><p class=\"legend\">Appetite: accept 1–4, mitigate 5–14, escalate 15–25 (score = likelihood × impact).</p>");
    html.push_str("<h2>Verification</h2>");
    match &data.verification {
        Ok((summary, note)) => {
            let _ = write!(
                html,
                "<p class=\"verified good\">✔ {}</p><p>The verification rests on this checkpoint, \
                 signed by the ledger key:</p><pre>{}</pre>",
                esc(summary),
                esc(note)
            );
        }
        Err(why) => {
            let _ = write!(
                html,
                "<p class=\"verified bad\">✘ The ledger did NOT verify: {}</p>",
                esc(why)
            );
        }
    }
    if let Some(covered) = &data.covered {
        let _ = write!(html, "<p class=\"covered\">{}</p>", esc(covered));
    }
    html.push_str("<h3>Witnessed</h3>");
    if data.witnessed.is_empty() {
        html.push_str(
            "<p class=\"verified bad\">No independent witness has cosigned a checkpoint of this \
             ledger: its recorded times rest on the operator's word alone.</p>",
        );
    } else {
        html.push_str("<ul class=\"witnessed\">");
        for line in &data.witnessed {
            let _ = write!(html, "<li>{}</li>", esc(line));
        }
        html.push_str(
            "</ul><p>As the server reports its witnesses' cosignatures; an auditor checks them with \
             <code>isms verify --witness-key</code>.</p>",
        );
    }
    html.push_str("<h2>Risk register</h2>");
    html.push_str(&html_table(&data.risks, &["status"]));
    html.push_str("<h2>Findings</h2>");
    html.push_str(&html_table(&data.findings, &["grade"]));
    html.push_str("<h2>Corrective actions (SLA: major root cause 10 days, action 30 days; minor 60 days)</h2>");
    html.push_str(&html_table(&data.actions, &["status", "overdue"]));
    html.push_str("<h2>Certification readiness</h2>");
    html.push_str(&html_table(&data.readiness, &["status"]));
    html.push_str("<h2>Statement of Applicability</h2>");
    html.push_str(&html_table(&data.soa, &[]));
    for (title, table) in &data.more {
        let _ = write!(html, "<h2>{}</h2>", esc(title));
        html.push_str(&html_table(
            table,
            &[
                "status",
                "result",
                "risk_assessed",
                "audited_in_last_12_months",
            ],
        ));
    }
    html.push_str("</body></html>\n");
    html
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;\
color:#1f2328;background:#fdfdfd}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;\
margin:28px 0 8px;border-bottom:1px solid #c8ccd1;padding-bottom:4px}.meta,.legend{color:#57606a;\
font-size:13px}.maps{display:flex;gap:32px;flex-wrap:wrap}table{border-collapse:collapse;\
font-size:12px;width:100%}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;\
vertical-align:top}th{background:#eef1f4}td.good{color:#0b5394}td.warn{color:#8a4b00;\
font-weight:bold}td.bad{color:#7a0019;font-weight:bold}.verified{font-size:15px;font-weight:bold}\
p.good{color:#0b5394}p.bad{color:#7a0019}pre{background:#f3f4f6;padding:8px;font-size:12px;\
white-space:pre-wrap}.empty{color:#57606a;font-style:italic}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_and_bands_follow_the_appetite() {
        assert_eq!(parse_score("3x4=12 mitigate"), Some((3, 4)));
        assert_eq!(parse_score(""), None);
        assert_eq!(band_of(4), 0);
        assert_eq!(band_of(5), 1);
        assert_eq!(band_of(15), 2);
    }

    #[test]
    fn the_report_is_self_contained() {
        let mut risks = TextTable::new(["risk", "inherent", "residual"]);
        risks.push(vec![
            "RISK-001".into(),
            "3x4=12 mitigate".into(),
            "1x4=4 accept".into(),
        ]);
        let html = render(&ReportData {
            ledger: "Example <Ltd>".into(),
            as_of: "2025-03-31".into(),
            generated: "now".into(),
            entries: 3,
            risks,
            soa: TextTable::default(),
            findings: TextTable::default(),
            actions: TextTable::default(),
            readiness: TextTable::default(),
            more: Vec::new(),
            verification: Err("entry 3 altered".into()),
            witnessed: Vec::new(),
            covered: None,
        });
        assert!(html.contains("Example &lt;Ltd&gt;"));
        assert!(html.contains("#d62839") && html.contains("#3aaa5c") && html.contains("#f6be00"));
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"));
    }
}
