//! `COPY (query) TO STDOUT` — what psql's `\copy (select ...) to 'file'`
//! sends — in PostgreSQL's text and CSV formats. sqlparser cannot parse
//! the query form, so the simple-query front end recognises it before
//! datafusion-postgres's parser and answers with a CopyOut stream.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::StreamExt;
use pgwire::api::results::{CopyResponse, Response};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;

use crate::session::user_error;

/// A parsed `COPY (query) TO STDOUT [WITH] (options)`.
#[derive(Debug, PartialEq)]
pub struct CopyOut {
    pub query: String,
    pub csv: bool,
    pub header: bool,
    pub delimiter: char,
}

/// `Some` when `sql` is a `COPY (...) TO STDOUT`; `Err` names what is not
/// supported so the client gets a clear 0A000 instead of a parse error.
pub fn parse_copy_out(sql: &str) -> Option<Result<CopyOut, String>> {
    let trimmed = sql.trim().trim_end_matches(';').trim();
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower.strip_prefix("copy")?.trim_start();
    if !rest.starts_with('(') {
        return None;
    }
    let open = trimmed.len() - rest.len();
    let close = open + matching_paren(&trimmed[open..])?;
    let tail = lower[close + 1..].trim();
    let options = tail
        .strip_prefix("to")?
        .trim_start()
        .strip_prefix("stdout")?;
    let query = trimmed[open + 1..close].trim().to_string();
    let mut copy = CopyOut {
        query,
        csv: false,
        header: false,
        delimiter: '\t',
    };
    let mut delimiter = None;
    // Both the legacy (`CSV HEADER`) and the parenthesised (`WITH (FORMAT
    // csv, HEADER true)`) option syntaxes.
    let words = option_words(options);
    let mut i = 0;
    while i < words.len() {
        match words[i].as_str() {
            "with" | "format" | "text" | "true" | "on" | "false" | "off" => {}
            "csv" => copy.csv = true,
            "header" => {
                copy.header = !matches!(words.get(i + 1).map(String::as_str), Some("false" | "off"))
            }
            "delimiter" => {
                let value = words.get(i + 1).map(|w| w.trim_matches('\'')).unwrap_or("");
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => delimiter = Some(c),
                    _ => return Some(Err("COPY DELIMITER must be a single character".into())),
                }
                i += 1;
            }
            other => {
                return Some(Err(format!(
                    "COPY option {other:?} is not supported; use FORMAT csv|text, HEADER, DELIMITER"
                )));
            }
        }
        i += 1;
    }
    copy.delimiter = delimiter.unwrap_or(if copy.csv { ',' } else { '\t' });
    Some(Ok(copy))
}

/// What a `COPY ... TO '<file>'` needs the admin role for.
pub const TO_FILE: &str = "COPY to a file on the server (psql's \\copy writes on the client)";

/// Whether `sql` is `COPY (query) TO '<file>'` or `COPY table [(columns)]
/// TO '<file>'`: DataFusion would write that file on the server's disk.
pub fn copies_to_server_file(sql: &str) -> bool {
    let lower = sql.trim().to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("copy") else {
        return false;
    };
    if !rest.starts_with(|c: char| c.is_whitespace() || c == '(') {
        return false;
    }
    let skip_parens = |s: &str| -> Option<String> {
        let s = s.trim_start();
        if s.starts_with('(') {
            matching_paren(s).map(|close| s[close + 1..].to_string())
        } else {
            Some(s.to_string())
        }
    };
    let rest = rest.trim_start();
    let tail = if rest.starts_with('(') {
        skip_parens(rest)
    } else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(rest.len());
        skip_parens(&rest[end..])
    };
    tail.as_deref()
        .and_then(|t| t.trim_start().strip_prefix("to"))
        .is_some_and(|t| t.trim_start().starts_with('\''))
}

/// The byte offset of the `)` closing the `(` that `s` starts with; quoted
/// strings are skipped.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Option words, split at blanks, commas and parentheses; a quoted
/// string (`','`) is one word.
fn option_words(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in options.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.push(c);
            }
            c if !quoted && (c.is_whitespace() || matches!(c, ',' | '(' | ')')) => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// One value in COPY's text format: backslash escapes, `\N` for NULL.
fn text_cell(out: &mut String, value: Option<&str>, delimiter: char) {
    let Some(v) = value else {
        out.push_str("\\N");
        return;
    };
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// One value in CSV: quoted when it holds the delimiter, a quote or a line
/// break; NULL is an empty unquoted field, the empty string `""`.
fn csv_cell(out: &mut String, value: Option<&str>, delimiter: char) {
    let Some(v) = value else { return };
    if v.is_empty() || v.contains([delimiter, '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

fn line(copy: &CopyOut, cells: impl Iterator<Item = Option<String>>) -> Bytes {
    let mut out = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(copy.delimiter);
        }
        if copy.csv {
            csv_cell(&mut out, cell.as_deref(), copy.delimiter);
        } else {
            text_cell(&mut out, cell.as_deref(), copy.delimiter);
        }
    }
    out.push('\n');
    Bytes::from(out)
}

fn batch_lines(copy: &CopyOut, batch: &RecordBatch) -> Result<Vec<Bytes>, String> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).map(|f| (c, f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((0..batch.num_rows())
        .map(|row| {
            line(
                copy,
                formatters.iter().map(|(col, f)| {
                    if col.is_null(row) {
                        None
                    } else if col.data_type() == &DataType::Boolean {
                        // PostgreSQL's boolean text form.
                        Some(
                            if f.value(row).to_string() == "true" {
                                "t"
                            } else {
                                "f"
                            }
                            .into(),
                        )
                    } else {
                        Some(f.value(row).to_string())
                    }
                }),
            )
        })
        .collect())
}

/// Plan the query and stream its rows as CopyData messages.
pub async fn copy_out(
    ctx: &Arc<SessionContext>,
    parser: &PostgresCompatibilityParser,
    copy: CopyOut,
) -> PgWireResult<Response> {
    let mut statements = parser
        .parse(&copy.query)
        .map_err(|e| user_error("42601", format!("COPY query: {e}")))?;
    if statements.len() != 1 {
        return Err(user_error("42601", "COPY (query) takes exactly one query"));
    }
    let api = |e: datafusion::error::DataFusionError| PgWireError::ApiError(Box::new(e));
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statements.remove(0))))
        .await
        .map_err(api)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(api)?;
    let header = copy.header.then(|| {
        let names = df.schema().fields().iter().map(|f| Some(f.name().clone()));
        line(&copy, names.collect::<Vec<_>>().into_iter())
    });
    let columns = df.schema().fields().len();
    let stream = df.execute_stream().await.map_err(api)?;
    let copy = Arc::new(copy);
    // pgwire's `COPY n` tag counts CopyData messages, so the header rides
    // in the first row's message (alone only when there are no rows).
    let pending_header = Arc::new(std::sync::Mutex::new(header));
    let first_rows = Arc::clone(&pending_header);
    let rows = stream.flat_map(move |batch| {
        let lines = batch
            .map_err(|e| e.to_string())
            .and_then(|b| batch_lines(&copy, &b));
        futures::stream::iter(match lines {
            Ok(mut lines) => {
                if let (Some(first), Some(h)) = (
                    lines.first_mut(),
                    first_rows.lock().ok().and_then(|mut h| h.take()),
                ) {
                    *first = Bytes::from([h.as_ref(), first.as_ref()].concat());
                }
                lines.into_iter().map(|l| Ok(CopyData::new(l))).collect()
            }
            Err(e) => vec![Err(user_error("XX000", e))],
        })
    });
    let header_only =
        futures::stream::once(async move { pending_header.lock().ok().and_then(|mut h| h.take()) })
            .filter_map(|h| futures::future::ready(h.map(|h| Ok(CopyData::new(h)))));
    let data = rows.chain(header_only);
    Ok(Response::CopyOut(CopyResponse::new(0, columns, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_to_server_files_are_told_apart() {
        assert!(copies_to_server_file("COPY (SELECT 1) TO '/tmp/x.parquet'"));
        assert!(copies_to_server_file(
            "copy reports.nps_score to '/tmp/x.csv'"
        ));
        assert!(copies_to_server_file(
            "COPY t (a, b) TO 'x.csv' STORED AS CSV"
        ));
        assert!(!copies_to_server_file("COPY (SELECT 'to ''x''') TO STDOUT"));
        assert!(!copies_to_server_file("COPY t FROM STDIN"));
        assert!(!copies_to_server_file("COPYRIGHT"));
    }

    #[test]
    fn parses_psql_copy_forms() {
        let c = parse_copy_out(
            "COPY ( select id, email from sandbox.contact limit 3 ) TO STDOUT csv header",
        )
        .expect("copy")
        .expect("ok");
        assert_eq!(c.query, "select id, email from sandbox.contact limit 3");
        assert!(c.csv && c.header && c.delimiter == ',');
        let c = parse_copy_out(
            "copy (select 1) to stdout with (format csv, header false, delimiter ',')",
        )
        .expect("copy")
        .expect("ok");
        assert!(c.csv && !c.header && c.delimiter == ',');
        let c = parse_copy_out("COPY (select 1) TO STDOUT")
            .expect("copy")
            .expect("ok");
        assert!(!c.csv && c.delimiter == '\t');
        assert!(
            parse_copy_out("COPY (select 1) TO STDOUT (format binary)")
                .expect("copy")
                .is_err()
        );
        let c = parse_copy_out("COPY (select ')' as p, (1) as n) TO STDOUT")
            .expect("copy")
            .expect("ok");
        assert_eq!(c.query, "select ')' as p, (1) as n");
        assert!(parse_copy_out("copy contact to stdout").is_none());
        assert!(parse_copy_out("select 1").is_none());
    }

    #[test]
    fn escapes_text_and_csv() {
        let mut s = String::new();
        text_cell(&mut s, Some("a\tb\\c\nd"), '\t');
        assert_eq!(s, "a\\tb\\\\c\\nd");
        let mut s = String::new();
        text_cell(&mut s, None, '\t');
        assert_eq!(s, "\\N");
        let mut s = String::new();
        csv_cell(&mut s, Some("say \"hi\", bob"), ',');
        assert_eq!(s, "\"say \"\"hi\"\", bob\"");
        let mut s = String::new();
        csv_cell(&mut s, Some(""), ',');
        assert_eq!(s, "\"\"");
    }
}
