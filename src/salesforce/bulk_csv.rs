//! Bulk API 2.0 CSV on the client side: cells from JSON values (`#N/A`
//! clears a field, an empty cell leaves it alone), uploads cut under a size
//! limit, and `sf__Error` read back into a per-record error.

use serde_json::Value;

use super::bulk::Cell;
use super::types::SaveError;

/// The cell value that sets a field to null.
pub const NULL_CELL: &str = "#N/A";

/// A JSON value as a Bulk CSV cell. `None` (field not written) is an empty
/// cell; null and the empty string clear the field, which for text is the
/// same thing on Salesforce.
/// Into `cell` (cleared first), reusing its buffer: a million-row upload
/// allocates no string per cell.
pub fn encode_cell_into(value: Option<Cell<'_>>, cell: &mut String) {
    use std::fmt::Write;
    cell.clear();
    let value = match value {
        Some(Cell::Text(text)) => {
            cell.push_str(if text.is_empty() { NULL_CELL } else { text });
            return;
        }
        Some(Cell::Value(value)) => Some(value),
        None => None,
    };
    match value {
        None => {}
        Some(Value::Null) => cell.push_str(NULL_CELL),
        Some(Value::String(s)) if s.is_empty() => cell.push_str(NULL_CELL),
        Some(Value::String(s)) => cell.push_str(s),
        Some(Value::Bool(b)) => cell.push_str(if *b { "true" } else { "false" }),
        // Writing to a String cannot fail.
        Some(Value::Number(n)) => {
            let _ = write!(cell, "{n}");
        }
        Some(other) => {
            let _ = write!(cell, "{other}");
        }
    }
}

/// CSV text (header first) cut into uploads of at most `limit` bytes.
pub struct CsvChunks {
    header: Vec<u8>,
    current: Vec<u8>,
    rows: usize,
    limit: usize,
}

/// Appends `cells` as one CSV line (RFC 4180, as the csv crate writes
/// it: a cell is quoted when it holds a comma, a quote or a line break,
/// quotes doubled; a lone empty cell is `""` so the line is not blank).
fn write_line(out: &mut Vec<u8>, cells: &[impl AsRef<[u8]>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let cell = cell.as_ref();
        let quote = (cells.len() == 1 && cell.is_empty())
            || cell
                .iter()
                .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
        if quote {
            out.push(b'"');
            for &b in cell {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(cell);
        }
    }
    out.push(b'\n');
}

impl CsvChunks {
    pub fn new(columns: &[String], limit: usize) -> CsvChunks {
        let mut header = Vec::new();
        write_line(&mut header, columns);
        CsvChunks {
            current: Self::start(&header),
            header,
            rows: 0,
            limit,
        }
    }

    fn start(header: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(header.len() * 64);
        buf.extend_from_slice(header);
        buf
    }

    /// Adds one row. When it does not fit, the upload so far is returned
    /// and the row starts the next one.
    pub fn push(&mut self, cells: &[String]) -> Option<Vec<u8>> {
        let used = self.current.len();
        write_line(&mut self.current, cells);
        let encoded = self.current.len() - used;
        let full = if self.rows > 0 && used + encoded > self.limit {
            // The row starts the next upload.
            let mut next = Self::start(&self.header);
            next.extend_from_slice(&self.current[used..]);
            self.current.truncate(used);
            let done = std::mem::replace(&mut self.current, next);
            self.rows = 0;
            Some(done)
        } else {
            None
        };
        self.rows += 1;
        full
    }

    /// The last upload, if it holds any row.
    pub fn finish(self) -> Option<Vec<u8>> {
        (self.rows > 0).then_some(self.current)
    }
}

/// `CODE:message:Field1,Field2 --` into its parts; text in another shape
/// is kept whole as the message.
pub fn parse_sf_error(text: &str) -> SaveError {
    let trimmed = text.trim().trim_end_matches("--").trim_end();
    let Some((code, rest)) = trimmed.split_once(':') else {
        return SaveError {
            status_code: "UNKNOWN_EXCEPTION".into(),
            message: text.to_string(),
            fields: vec![],
        };
    };
    let (message, fields) = match rest.rsplit_once(':') {
        Some((m, f)) if !f.contains(' ') => (m, f),
        _ => (rest, ""),
    };
    SaveError {
        status_code: code.to_string(),
        message: message.to_string(),
        fields: fields
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode_cell(value: Option<&Value>) -> String {
        let mut cell = "left over".to_string();
        encode_cell_into(value.map(Cell::Value), &mut cell);
        cell
    }

    /// Lines are written as the csv crate writes them.
    #[test]
    fn lines_match_the_csv_crate() {
        let rows: Vec<Vec<&str>> = vec![
            vec!["003A", "plain", ""],
            vec!["a,b", "q\"uote", "line\nbreak"],
            vec!["cr\r", " spaces ", "#N/A"],
            vec![""],
            vec!["é,ü", "\"\"", "'"],
        ];
        for row in rows {
            let mut ours = Vec::new();
            write_line(&mut ours, &row);
            let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
            w.write_record(&row).expect("write");
            let theirs = w.into_inner().expect("inner");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{row:?}"
            );
        }
    }

    #[test]
    fn cells_follow_bulk_null_rules() {
        assert_eq!(encode_cell(None), "");
        assert_eq!(encode_cell(Some(&Value::Null)), "#N/A");
        assert_eq!(encode_cell(Some(&json!(""))), "#N/A");
        assert_eq!(encode_cell(Some(&json!("a,\"b\""))), "a,\"b\"");
        assert_eq!(encode_cell(Some(&json!(9.5))), "9.5");
        assert_eq!(encode_cell(Some(&json!(true))), "true");
    }

    #[test]
    fn chunks_stay_under_the_limit_and_repeat_the_header() {
        let cols = vec!["Id".to_string(), "Title".to_string()];
        let mut chunks = CsvChunks::new(&cols, 40);
        let row = |t: &str| vec!["003A".to_string(), t.to_string()];
        assert_eq!(chunks.push(&row("x,y")), None);
        assert_eq!(chunks.push(&row("q\"uote")), None);
        let full = chunks.push(&row("third")).expect("third row does not fit");
        assert_eq!(
            String::from_utf8(full).expect("utf8"),
            "Id,Title\n003A,\"x,y\"\n003A,\"q\"\"uote\"\n"
        );
        let last = chunks.finish().expect("one row left");
        assert_eq!(
            String::from_utf8(last).expect("utf8"),
            "Id,Title\n003A,third\n"
        );
        assert_eq!(CsvChunks::new(&cols, 40).finish(), None);
    }

    #[test]
    fn parses_sf_error() {
        let e = parse_sf_error("INVALID_EMAIL_ADDRESS:Email: invalid email address: x:Email --");
        assert_eq!(e.status_code, "INVALID_EMAIL_ADDRESS");
        assert_eq!(e.message, "Email: invalid email address: x");
        assert_eq!(e.fields, vec!["Email"]);
        let e = parse_sf_error("ENTITY_IS_DELETED:entity is deleted:--");
        assert_eq!(
            (e.status_code.as_str(), e.message.as_str()),
            ("ENTITY_IS_DELETED", "entity is deleted")
        );
        assert!(e.fields.is_empty());
        assert_eq!(parse_sf_error("garbage").status_code, "UNKNOWN_EXCEPTION");
    }
}
