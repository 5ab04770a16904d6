//! What a command reports: a JSON value (`--output json`) and a table (`--output
//! table`), plus whether the answer was "yes". The bin prints them; nothing here writes.

use serde_json::Value;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header.
    Table,
    /// One JSON value per report (one per line for `config watch`).
    Json,
}

/// A table: a header and rows of cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// The column names.
    pub headers: Vec<String>,
    /// The rows (each as long as `headers`).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<I: IntoIterator<Item = String>>(mut self, cells: I) -> Table {
        self.rows.push(cells.into_iter().collect());
        self
    }

    /// Adds a row in place.
    pub fn push<I: IntoIterator<Item = String>>(&mut self, cells: I) {
        self.rows.push(cells.into_iter().collect());
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i >= w.len() {
                    w.push(0);
                }
                w[i] = w[i].max(cell(c).chars().count());
            }
        }
        w
    }

    fn line(cells: &[String], widths: &[usize]) -> String {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c = cell(c);
            if i + 1 == cells.len() {
                out.push_str(&c);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(c.chars().count());
                out.push_str(&c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    }

    /// The header and rows, columns aligned, two spaces apart, a newline after each line.
    pub fn render(&self) -> String {
        let w = self.widths();
        let mut out = Table::line(&self.headers, &w);
        out.push('\n');
        out.push_str(&self.render_rows_with(&w));
        out
    }

    /// The rows only (for a stream of events whose header was printed once).
    pub fn render_rows(&self) -> String {
        self.render_rows_with(&self.widths())
    }

    fn render_rows_with(&self, w: &[usize]) -> String {
        let mut out = String::new();
        for r in &self.rows {
            out.push_str(&Table::line(r, w));
            out.push('\n');
        }
        out
    }
}

/// A cell as shown: control characters (a newline in a value) escaped, so a row stays
/// one line; an empty cell as `""` so columns stay visible.
fn cell(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    if s.chars().any(char::is_control) {
        return s.escape_debug().to_string();
    }
    s.to_string()
}

/// Whether the cluster's answer was "yes".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Done as asked.
    Ok,
    /// Answered, but not as hoped (exit 5): a CAS that did not swap, a lock not granted.
    NotMet,
}

/// What one command (or one event of a watch) reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The JSON form.
    pub json: Value,
    /// The table form.
    pub table: Table,
    /// Whether the answer was "yes".
    pub verdict: Verdict,
    /// Remarks for a human, printed on stderr in table form.
    pub notes: Vec<String>,
    /// An event of a stream: in table form, the header is printed only before the first.
    pub event: bool,
}

impl Report {
    /// A report that says "yes".
    pub fn ok(json: Value, table: Table) -> Report {
        Report {
            json,
            table,
            verdict: Verdict::Ok,
            notes: Vec::new(),
            event: false,
        }
    }

    /// The same report, saying "no" unless `yes`.
    pub fn met_if(mut self, yes: bool) -> Report {
        if !yes {
            self.verdict = Verdict::NotMet;
        }
        self
    }

    /// The same report with a note.
    pub fn note(mut self, note: impl Into<String>) -> Report {
        self.notes.push(note.into());
        self
    }

    /// What to print on stdout for `format`; `first_event` says whether an event's header is due.
    pub fn render(&self, format: Format, first_event: bool) -> String {
        match format {
            Format::Json if self.event => format!("{}\n", self.json),
            Format::Json => match serde_json::to_string_pretty(&self.json) {
                Ok(s) => format!("{s}\n"),
                Err(_) => format!("{}\n", self.json),
            },
            Format::Table if self.event && !first_event => self.table.render_rows(),
            Format::Table => self.table.render(),
        }
    }
}

/// A JSON value as a cell: strings bare, `null` as `-`.
pub fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_escape_what_would_break_a_row() {
        let t = Table::new(&["KEY", "VALUE"])
            .row(["a".to_string(), "1".to_string()])
            .row(["longer/key".to_string(), "two\nlines".to_string()])
            .row(["e".to_string(), String::new()]);
        assert_eq!(
            t.render(),
            "KEY         VALUE\n\
             a           1\n\
             longer/key  two\\nlines\n\
             e           \"\"\n"
        );
        assert_eq!(t.render_rows().lines().count(), 3);
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
        // Wide characters count as one column each, not their byte length.
        let u = Table::new(&["K", "V"]).row(["é".to_string(), "x".to_string()]);
        assert_eq!(u.render(), "K  V\né  x\n");
    }

    #[test]
    fn reports_render_as_json_or_table_and_events_print_their_header_once() {
        let r = Report::ok(json!({"k": 1}), Table::new(&["K"]).row(["1".to_string()]));
        assert_eq!(r.render(Format::Json, true), "{\n  \"k\": 1\n}\n");
        assert_eq!(r.render(Format::Table, false), "K\n1\n");
        let mut e = r.clone().met_if(false);
        e.event = true;
        assert_eq!(e.verdict, Verdict::NotMet);
        assert_eq!(e.render(Format::Json, false), "{\"k\":1}\n");
        assert_eq!(e.render(Format::Table, true), "K\n1\n");
        assert_eq!(e.render(Format::Table, false), "1\n");
        assert_eq!(show(Some(&json!(null))), "-");
        assert_eq!(show(Some(&json!("s"))), "s");
        assert_eq!(show(Some(&json!(3))), "3");
    }
}
