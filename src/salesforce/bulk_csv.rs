//! Bulk API 2.0 CSV on the client side: cells from JSON values (`#N/A`
//! clears a field, an empty cell leaves it alone), uploads cut under a size
//! limit, and `sf__Error` read back into a per-record error.

use serde_json::Value;

use super::types::SaveError;

/// The cell value that sets a field to null.
pub const NULL_CELL: &str = "#N/A";

/// A JSON value as a Bulk CSV cell. `None` (field not written) is an empty
/// cell; null and the empty string clear the field, which for text is the
/// same thing on Salesforce.
pub fn encode_cell(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Null) => NULL_CELL.to_string(),
        Some(Value::String(s)) if s.is_empty() => NULL_CELL.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

/// CSV text (header first) cut into uploads of at most `limit` bytes.
pub struct CsvChunks {
    header: Vec<u8>,
    current: Vec<u8>,
    rows: usize,
    limit: usize,
}

fn line(cells: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}

impl CsvChunks {
    pub fn new(columns: &[String], limit: usize) -> CsvChunks {
        let header = line(columns);
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
        let encoded = line(cells);
        let used = self.current.len();
        let full = if self.rows > 0 && used + encoded.len() > self.limit {
            let next = Self::start(&self.header);
            let done = std::mem::replace(&mut self.current, next);
            self.rows = 0;
            Some(done)
        } else {
            None
        };
        self.current.extend_from_slice(&encoded);
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
