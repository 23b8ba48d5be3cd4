//! Output for people and machines: aligned text tables, `--json`, `--csv`, and progress bars
//! that draw only when stdout is a terminal (so pipes and CI logs stay clean).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a command prints its result.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct FormatArgs {
    /// Print JSON (for machines).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (for spreadsheets).
    #[arg(long)]
    pub csv: bool,
}

/// The chosen output form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
    /// CSV (RFC 4180).
    Csv,
}

impl FormatArgs {
    /// The form asked for.
    pub fn format(self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Table
        }
    }
}

/// A table of text: column names and rows of cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows; each has one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// Longest cell printed in a text table; JSON and CSV carry the whole text.
const MAX_CELL_CHARS: usize = 48;

fn clip(cell: &str) -> String {
    let one_line = cell.replace('\n', " ");
    if one_line.chars().count() <= MAX_CELL_CHARS {
        return one_line;
    }
    let mut out: String = one_line.chars().take(MAX_CELL_CHARS - 1).collect();
    out.push('…');
    out
}

impl TextTable {
    /// A table with these columns and no rows.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> TextTable {
        TextTable {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned columns, a header line and a rule, cells clipped to a readable width.
    pub fn render(&self) -> String {
        let clipped: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| clip(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &clipped {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                out.push_str(cell);
                if i + 1 < cells.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.columns);
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(&rule));
        out.push('\n');
        for row in &clipped {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV with a header row.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.columns).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// An array of objects, one per row, keyed by column name.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        self.columns
                            .iter()
                            .cloned()
                            .zip(r.iter().map(|c| json_cell(c)))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    /// Prints the table in the chosen form.
    pub fn print(&self, format: Format) {
        match format {
            Format::Table => print!("{}", self.render()),
            Format::Csv => print!("{}", self.to_csv()),
            Format::Json => print_json(&self.to_json()),
        }
    }
}

impl TextTable {
    /// Writes the table to an Excel workbook at `path`: a sheet named `sheet` (header row in
    /// bold and frozen, integers as numbers, other cells as text) and a sheet `about` with
    /// `about`'s name/value rows, saying what the table shows.
    pub fn write_xlsx(
        &self,
        path: &std::path::Path,
        sheet: &str,
        about: &[(&str, String)],
    ) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let xlsx = |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("writing the workbook: {e}");
        let table = workbook.add_worksheet();
        table.set_name(sheet).map_err(xlsx)?;
        for (c, column) in self.columns.iter().enumerate() {
            table
                .write_string_with_format(0, column_index(c)?, column, &bold)
                .map_err(xlsx)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).context("too many rows for a sheet")?;
            for (c, cell) in row.iter().enumerate() {
                let c = column_index(c)?;
                match json_cell(cell) {
                    serde_json::Value::Number(n) if n.as_f64().is_some_and(|f| f.abs() < 1e15) => {
                        table
                            .write_number(r, c, n.as_f64().unwrap_or_default())
                            .map_err(xlsx)?;
                    }
                    _ => {
                        table.write_string(r, c, cell).map_err(xlsx)?;
                    }
                }
            }
        }
        table.set_freeze_panes(1, 0).map_err(xlsx)?;
        let notes = workbook.add_worksheet();
        notes.set_name("about").map_err(xlsx)?;
        for (r, (name, value)) in about.iter().enumerate() {
            let r = u32::try_from(r).context("too many rows")?;
            notes
                .write_string_with_format(r, 0, *name, &bold)
                .map_err(xlsx)?;
            notes.write_string(r, 1, value).map_err(xlsx)?;
        }
        workbook
            .save(path)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }
}

fn column_index(c: usize) -> anyhow::Result<u16> {
    u16::try_from(c).map_err(|_| anyhow::anyhow!("too many columns for a sheet"))
}

/// A table cell as a typed JSON value: an empty cell is `null`; an integer written as one
/// (optional minus, no leading zeros) a number; `true`/`false` a boolean; a cell holding a
/// JSON array (`[12, 4]`) that array; anything else the string itself. Ids such as `RISK-001`
/// or `007` stay strings.
fn json_cell(cell: &str) -> serde_json::Value {
    use serde_json::Value;
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let canonical_integer = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && cell != "-0";
    if cell.is_empty() {
        Value::Null
    } else if canonical_integer {
        cell.parse::<i64>()
            .map(Value::from)
            .or_else(|_| cell.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(cell.to_string()))
    } else if cell == "true" || cell == "false" {
        Value::Bool(cell == "true")
    } else if cell.starts_with('[') {
        match serde_json::from_str::<Value>(cell) {
            Ok(array @ Value::Array(_)) => array,
            _ => Value::String(cell.to_string()),
        }
    } else {
        Value::String(cell.to_string())
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// Pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value always serializes")
    );
}

/// A progress bar of `len` steps, drawn on stderr only when stdout is a terminal.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cells_are_typed_and_ids_stay_strings() {
        let mut t = TextTable::new(["id", "version", "history", "closed", "note", "code"]);
        t.push(vec![
            "RISK-001".into(),
            "4".into(),
            "[12, 4]".into(),
            "false".into(),
            String::new(),
            "007".into(),
        ]);
        assert_eq!(
            t.to_json(),
            serde_json::json!([{
                "id": "RISK-001",
                "version": 4,
                "history": [12, 4],
                "closed": false,
                "note": null,
                "code": "007",
            }])
        );
    }

    #[test]
    fn tables_align_and_csv_quotes() {
        let mut t = TextTable::new(["id", "name"]);
        t.push(vec!["RISK-001".into(), "Customer, database".into()]);
        t.push(vec!["R2".into(), "x".into()]);
        assert_eq!(
            t.render(),
            "id        name\n--------  ------------------\nRISK-001  Customer, database\nR2        x\n"
        );
        assert_eq!(
            t.to_csv(),
            "id,name\r\nRISK-001,\"Customer, database\"\r\nR2,x\r\n"
        );
    }
}
