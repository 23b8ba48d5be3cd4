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

/// The events of a risk register kept as a spreadsheet, and the rows left out. Refused rows
/// are an error naming every one of them, unless `skip_bad`: then they are left out and named
/// in the second list (a header that cannot be read is an error either way).
pub fn risk_register_events(
    path: &Path,
    bytes: &[u8],
    skip_bad: bool,
) -> anyhow::Result<(Vec<Event>, Vec<String>)> {
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
    let mut events = Vec::new();
    let mut left_out = Vec::new();
    let mut count = 0;
    for (n, record) in rows.enumerate() {
        let row = n + 2;
        let converted = record.and_then(|record| {
            // A spreadsheet's trailing empty rows are not risks.
            if record.iter().all(|c| c.trim().is_empty()) {
                return Ok(None);
            }
            let risk = risk_row(&record, &at, row, &place)?;
            Ok(Some(seed::risk_events(vec![risk], &|_, field| {
                place(row, field)
            })?))
        });
        match converted {
            Ok(None) => {}
            Ok(Some(row_events)) => {
                count += 1;
                events.extend(row_events);
            }
            Err(e) => {
                count += 1;
                left_out.push(format!("{e:#}"));
            }
        }
    }
    anyhow::ensure!(count > 0, "{file}: no risk rows under the header");
    // Without --skip-bad, every refused row is named and nothing goes in.
    anyhow::ensure!(
        skip_bad || left_out.is_empty(),
        "{} row(s) refused (nothing taken in; --skip-bad takes the others):\n  {}",
        left_out.len(),
        left_out.join("\n  ")
    );
    Ok((events, left_out))
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
        controls: cell("controls")
            .split([';', '\n'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
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
