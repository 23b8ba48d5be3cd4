//! Risk registers kept as spreadsheets: a CSV file (exported from Excel, LibreOffice or a GRC
//! tool) or an Excel workbook (`.xlsx`, its first sheet, read with calamine) whose first row
//! names the columns. The columns are those of the guide's example risk
//! register, matched by name in any order and case, with spaces or dashes for underscores and
//! a few common aliases (`risk id`, `owner`, `inherent score`, `residual score`). Controls sit
//! in one cell, separated by `;`. Every error names the file, the row (the header is row 1, as
//! a spreadsheet numbers it) and the column.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use projections::model::Event;
use projections::seed::{self, RiskRow};

/// The columns a risk register has, each with the names it is known by.
const COLUMNS: &[(&str, &[&str])] = &[
    ("id", &["id", "risk_id"]),
    ("asset", &["asset"]),
    ("threat", &["threat"]),
    ("vulnerability", &["vulnerability"]),
    ("likelihood", &["likelihood"]),
    ("impact", &["impact"]),
    ("inherent_risk", &["inherent_risk", "inherent_score"]),
    ("treatment", &["treatment"]),
    ("controls", &["controls", "annex_a_controls"]),
    ("residual_likelihood", &["residual_likelihood"]),
    ("residual_impact", &["residual_impact"]),
    ("residual_risk", &["residual_risk", "residual_score"]),
    ("risk_owner", &["risk_owner", "owner"]),
];

/// Columns a row cannot do without.
const REQUIRED: &[&str] = &[
    "id",
    "asset",
    "threat",
    "vulnerability",
    "likelihood",
    "impact",
    "treatment",
    "risk_owner",
];

/// `true` when the file is to be read as a spreadsheet (`.csv` or `.xlsx`).
pub fn is_spreadsheet(path: &Path) -> bool {
    is_extension(path, "csv") || is_extension(path, "xlsx")
}

fn is_extension(path: &Path, extension: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// The rows of a spreadsheet as text cells, the header first; a row that cannot be read is an
/// error of its own.
type Rows = Vec<anyhow::Result<Vec<String>>>;

fn csv_rows(bytes: &[u8], file: &str) -> Rows {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .records()
        .enumerate()
        .map(|(n, record)| {
            let record = record.with_context(|| format!("{file} row {}: not a CSV row", n + 1))?;
            Ok(record.iter().map(str::to_string).collect())
        })
        .collect()
}

fn xlsx_rows(bytes: &[u8], file: &str) -> anyhow::Result<Rows> {
    use calamine::Reader as _;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
            .with_context(|| format!("{file}: not an Excel workbook (.xlsx)"))?;
    let sheet = workbook
        .worksheet_range_at(0)
        .with_context(|| format!("{file}: the workbook has no sheet"))?
        .with_context(|| format!("{file}: the first sheet cannot be read"))?;
    Ok(sheet
        .rows()
        .map(|row| Ok(row.iter().map(cell_text).collect()))
        .collect())
}

/// A workbook cell as the text a CSV export would hold (whole numbers without `.0`).
fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        calamine::Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// A column's spreadsheet letter (0 → A, 26 → AA).
fn letter(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

fn normalise(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

/// The events a spreadsheet holds (each with its own effective time if a `date` column gives
/// one), and the rows left out. The sheet is a risk register, or one of the record lists of
/// `isms submit --help` (findings, corrective_actions, verifications, risk_acceptances,
/// audit_completions, soa_approvals): named by the file (`findings.csv`) or told apart by a
/// column only it has (`grade`, `finding_id`, `effective`, `justification`, `summary`,
/// `soa_version`). Refused rows are an error naming every one of them, unless `skip_bad`.
pub fn sheet_events(path: &Path, bytes: &[u8], skip_bad: bool) -> anyhow::Result<Taken> {
    let file = path.display().to_string();
    let file = file.as_str();
    let mut rows = if is_extension(path, "xlsx") {
        xlsx_rows(bytes, file)?
    } else {
        csv_rows(bytes, file)
    }
    .into_iter();
    let headers = rows
        .next()
        .with_context(|| format!("{file}: empty, no header row"))??;
    let names: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
    let stem = path
        .file_stem()
        .map(|s| normalise(&s.to_string_lossy()))
        .unwrap_or_default();
    // The file's name decides first, then a column only one kind has.
    let named = RECORD_SHEETS.iter().find(|k| stem == k.kind);
    let soa = ["soa", "soa_template", "statement_of_applicability"].contains(&stem.as_str())
        || names.iter().any(|n| n == "applicable");
    if named.is_none() && soa {
        return soa_events(file, &names, rows, skip_bad);
    }
    let sheet = named.or_else(|| {
        (!names.iter().any(|n| n == "likelihood"))
            .then(|| {
                RECORD_SHEETS
                    .iter()
                    .find(|k| names.iter().any(|n| k.markers.contains(&n.as_str())))
            })
            .flatten()
    });
    match sheet {
        Some(sheet) => record_events(file, sheet, &names, rows, skip_bad),
        None => {
            let (events, left_out) = risk_register_events(file, headers, rows, skip_bad)?;
            Ok((events.into_iter().map(|e| (e, None)).collect(), left_out))
        }
    }
}

/// What a sheet gave: its events, each with its own effective time if a `date` column gives
/// one, and the rows left out (with `--skip-bad`).
pub type Taken = (Vec<(Event, Option<i64>)>, Vec<String>);

/// Refused rows are an error naming every one of them (nothing is taken in), unless
/// `--skip-bad` leaves them out.
fn refuse_unless_skipping(left_out: &[String], skip_bad: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        skip_bad || left_out.is_empty(),
        "{} row(s) refused (nothing taken in; --skip-bad takes the others):\n  {}",
        left_out.len(),
        left_out.join("\n  ")
    );
    Ok(())
}

/// Runs `convert` over every row under the header (the header is row 1, so the first is row
/// 2), passing over empty rows; collects what the rows give and the refused rows. A sheet with
/// no row is an error; refused rows are one too unless `skip_bad`.
fn take_rows<T>(
    file: &str,
    what: &str,
    rows: impl Iterator<Item = anyhow::Result<Vec<String>>>,
    skip_bad: bool,
    mut convert: impl FnMut(usize, &[String]) -> anyhow::Result<Vec<T>>,
) -> anyhow::Result<(Vec<T>, Vec<String>)> {
    let mut taken = Vec::new();
    let mut left_out = Vec::new();
    let mut count = 0;
    for (n, record) in rows.enumerate() {
        let row = n + 2;
        let converted = record.and_then(|record| {
            // A spreadsheet's trailing empty rows are not records.
            if record.iter().all(|c| c.trim().is_empty()) {
                return Ok(None);
            }
            convert(row, &record).map(Some)
        });
        match converted {
            Ok(None) => {}
            Ok(Some(items)) => {
                count += 1;
                taken.extend(items);
            }
            Err(e) => {
                count += 1;
                left_out.push(format!("{e:#}"));
            }
        }
    }
    anyhow::ensure!(count > 0, "{file}: no {what} under the header");
    refuse_unless_skipping(&left_out, skip_bad)?;
    Ok((taken, left_out))
}

/// A yes/no cell (`true`, `yes`, `y`, `1` or their opposites), `None` when it is neither.
fn yes_no(cell: &str) -> Option<bool> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// The items of a list cell (separated by `;` or line breaks).
fn list_cell(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([';', '\n'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// A list of records `isms submit` takes as YAML, kept as a sheet.
struct RecordSheet {
    /// The YAML key of the list.
    kind: &'static str,
    /// Columns only this kind has: a sheet with any of them is this kind.
    markers: &'static [&'static str],
    /// Columns holding a list (`;`-separated in one cell).
    lists: &'static [&'static str],
    /// Columns holding yes/no.
    flags: &'static [&'static str],
}

const RECORD_SHEETS: &[RecordSheet] = &[
    RecordSheet {
        kind: "findings",
        markers: &["grade"],
        lists: &["controls"],
        flags: &[],
    },
    RecordSheet {
        kind: "corrective_actions",
        markers: &["finding_id"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "verifications",
        markers: &["effective"],
        lists: &[],
        flags: &["effective"],
    },
    RecordSheet {
        kind: "risk_acceptances",
        markers: &["justification"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "audit_completions",
        markers: &["summary"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "soa_approvals",
        markers: &["soa_version"],
        lists: &["controls"],
        flags: &[],
    },
    RecordSheet {
        kind: "policies",
        markers: &["published"],
        lists: &[],
        flags: &["published"],
    },
    RecordSheet {
        kind: "legal_requirements",
        markers: &["jurisdiction"],
        lists: &["controls"],
        flags: &[],
    },
    RecordSheet {
        kind: "compliance_reviews",
        markers: &["requirement_id"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "external_audits",
        markers: &["major_nonconformities"],
        lists: &[],
        flags: &["certified"],
    },
    RecordSheet {
        kind: "review_decisions_closed",
        markers: &["review_id"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "objective_measurements",
        markers: &["objective_id"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "objectives",
        markers: &["metric"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "assets",
        markers: &["classification"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "audit_evidence_received",
        markers: &["item"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "vulnerabilities",
        // Before incidents, which share `severity` and `detected`.
        markers: &["remediated", "due", "asset"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "access_reviews",
        markers: &["system"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "patch_compliance",
        markers: &["devices_total"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "incidents",
        markers: &["severity"],
        lists: &["controls"],
        flags: &[],
    },
    RecordSheet {
        kind: "training",
        markers: &["course"],
        lists: &[],
        flags: &["completed"],
    },
    RecordSheet {
        kind: "suppliers",
        markers: &["notes"],
        lists: &[],
        flags: &[],
    },
    RecordSheet {
        kind: "continuity_tests",
        markers: &["plan"],
        lists: &["controls"],
        flags: &[],
    },
    RecordSheet {
        kind: "management_reviews",
        markers: &["inputs_covered"],
        lists: &["attendees", "inputs_covered"],
        flags: &[],
    },
];

/// The events of a record sheet: each row becomes the one-item YAML list `isms submit` takes
/// and goes through the same reading, so the rules and messages are the YAML's, placed at the
/// row and column.
fn record_events(
    file: &str,
    sheet: &RecordSheet,
    names: &[String],
    rows: impl Iterator<Item = anyhow::Result<Vec<String>>>,
    skip_bad: bool,
) -> anyhow::Result<Taken> {
    use serde_norway::{Mapping, Value};
    let what = format!("{} rows", sheet.kind);
    take_rows(file, &what, rows, skip_bad, |row, record| {
        let mut item = Mapping::new();
        for (name, cell) in names.iter().zip(record) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let value = if sheet.lists.contains(&name.as_str()) {
                Value::Sequence(
                    list_cell(cell)
                        .map(|c| Value::String(c.to_string()))
                        .collect(),
                )
            } else if sheet.flags.contains(&name.as_str()) {
                yes_no(cell).map_or_else(|| Value::String(cell.to_string()), Value::Bool)
            } else {
                Value::String(cell.to_string())
            };
            item.insert(Value::String(name.clone()), value);
        }
        let mut doc = Mapping::new();
        doc.insert(
            Value::String(sheet.kind.to_string()),
            Value::Sequence(vec![Value::Mapping(item)]),
        );
        let yaml = serde_norway::to_string(&doc).context("a row as YAML")?;
        super::submit::events_of(&yaml, file).map_err(|e| {
            let mut why = format!("{e:#}");
            for (index, name) in names.iter().enumerate() {
                why = why.replace(
                    &format!("{}[0].{name}", sheet.kind),
                    &format!("column {} ({name})", letter(index)),
                );
            }
            anyhow::anyhow!("{file} row {row}: {why}")
        })
    })
}

/// The events of a Statement of Applicability kept as a sheet: one row per control, with the
/// columns `control_id` (or `id`), `applicable` (yes/no), `justification`,
/// `exclusion_justification` and `implementation`; a `control` or `title` column (the
/// control's name) is for people and not read. Each row is read as the guide's `soa_template`
/// entry it stands for.
fn soa_events(
    file: &str,
    names: &[String],
    rows: impl Iterator<Item = anyhow::Result<Vec<String>>>,
    skip_bad: bool,
) -> anyhow::Result<Taken> {
    use serde_norway::{Mapping, Value};
    let column = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let id_column = column(&["control_id", "id", "annex_a_control"]).with_context(|| {
        format!("{file} row 1: a Statement of Applicability needs a control_id column")
    })?;
    // Each row is checked alone (so a refusal names its row); the rows taken are then read
    // together, so that 2013 controls merging into one 2022 control are merged.
    let (accepted, left_out) = take_rows(file, "controls", rows, skip_bad, |row, record| {
        let cell = |i: usize| record.get(i).map_or("", |c| c.trim());
        let mut item = Mapping::new();
        for (index, name) in names.iter().enumerate() {
            let value = cell(index);
            match name.as_str() {
                "applicable" => {
                    let flag = match value {
                        "" => false,
                        other => yes_no(other).with_context(|| {
                            format!(
                                "{file} row {row}, column {} (applicable): {other:?} is not yes \
                                 or no",
                                letter(index)
                            )
                        })?,
                    };
                    item.insert("applicable".into(), Value::Bool(flag));
                }
                "justification" | "exclusion_justification" | "implementation" => {
                    item.insert(name.as_str().into(), value.into());
                }
                _ => {}
            }
        }
        let mut section = Mapping::new();
        section.insert(cell(id_column).into(), Value::Mapping(item.clone()));
        let mut template = Mapping::new();
        template.insert("sheet".into(), Value::Mapping(section));
        let mut doc = Mapping::new();
        doc.insert("soa_template".into(), Value::Mapping(template));
        let yaml = serde_norway::to_string(&doc).context("a row as YAML")?;
        seed::soa_events(&yaml).map_err(|e| {
            anyhow::anyhow!(
                "{file} row {row}: {}",
                e.to_string().replace(
                    "soa_template.sheet",
                    &format!("column {} (control_id)", letter(id_column))
                )
            )
        })?;
        Ok(vec![(cell(id_column).to_string(), item)])
    })?;
    let mut section = Mapping::new();
    for (id, item) in accepted {
        section.insert(id.into(), Value::Mapping(item));
    }
    let mut template = Mapping::new();
    template.insert("sheet".into(), Value::Mapping(section));
    let mut doc = Mapping::new();
    doc.insert("soa_template".into(), Value::Mapping(template));
    let yaml = serde_norway::to_string(&doc).context("the sheet as YAML")?;
    let (events, report) =
        seed::soa_events_converting(&yaml).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    if let Some(report) = report {
        for line in report.lines() {
            eprintln!("isms: {file}: {line}");
        }
    }
    Ok((events.into_iter().map(|e| (e, None)).collect(), left_out))
}

/// The events of a risk register kept as a spreadsheet, and the rows left out. Refused rows
/// are an error naming every one of them, unless `skip_bad`: then they are left out and named
/// in the second list (a header that cannot be read is an error either way).
fn risk_register_events(
    file: &str,
    headers: Vec<String>,
    rows: impl Iterator<Item = anyhow::Result<Vec<String>>>,
    skip_bad: bool,
) -> anyhow::Result<(Vec<Event>, Vec<String>)> {
    // Which column holds which field.
    let mut at: HashMap<&'static str, usize> = HashMap::new();
    for (index, header) in headers.iter().enumerate() {
        let name = normalise(header);
        let Some((field, _)) = COLUMNS
            .iter()
            .find(|(_, names)| names.contains(&name.as_str()))
        else {
            anyhow::bail!(
                "{file} row 1, column {} ({header:?}): not a risk register column; the columns \
                 are {}",
                letter(index),
                COLUMNS
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        if at.insert(field, index).is_some() {
            anyhow::bail!(
                "{file} row 1, column {} ({header:?}): a second {field} column",
                letter(index)
            );
        }
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !at.contains_key(f))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{file} row 1: the header lacks the column(s) {}",
        missing.join(", ")
    );
    let place = |row: usize, field: &str| -> String {
        let base = field.split('[').next().unwrap_or(field);
        match at.get(base) {
            Some(index) => format!("{file} row {row}, column {} ({field})", letter(*index)),
            None => format!("{file} row {row} ({field})"),
        }
    };
    take_rows(file, "risk rows", rows, skip_bad, |row, record| {
        let risk = risk_row(record, &at, row, &place)?;
        Ok(seed::risk_events(vec![risk], &|_, field| {
            place(row, field)
        })?)
    })
}

/// One record as a risk row; number cells are checked here, the rest by the domain.
fn risk_row(
    record: &[String],
    at: &HashMap<&'static str, usize>,
    row: usize,
    place: &dyn Fn(usize, &str) -> String,
) -> anyhow::Result<RiskRow> {
    let cell = |field: &str| -> &str {
        at.get(field)
            .and_then(|i| record.get(*i))
            .map_or("", |c| c.trim())
    };
    let number = |field: &str| -> anyhow::Result<Option<u32>> {
        match cell(field) {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                anyhow::anyhow!("{}: {text:?} is not a whole number", place(row, field))
            }),
        }
    };
    let required = |field: &str| -> anyhow::Result<u32> {
        number(field)?.ok_or_else(|| anyhow::anyhow!("{}: required", place(row, field)))
    };
    Ok(RiskRow {
        id: cell("id").to_string(),
        asset: cell("asset").to_string(),
        threat: cell("threat").to_string(),
        vulnerability: cell("vulnerability").to_string(),
        likelihood: required("likelihood")?,
        impact: required("impact")?,
        inherent_risk: number("inherent_risk")?,
        treatment: cell("treatment").to_string(),
        controls: list_cell(cell("controls")).map(str::to_string).collect(),
        residual_likelihood: number("residual_likelihood")?,
        residual_impact: number("residual_impact")?,
        residual_risk: number("residual_risk")?,
        risk_owner: cell("risk_owner").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_lettered_as_a_spreadsheet_does() {
        assert_eq!(
            [letter(0), letter(4), letter(25), letter(26), letter(27)],
            ["A", "E", "Z", "AA", "AB"]
        );
    }
}
