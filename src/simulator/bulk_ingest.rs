//! Processing a Bulk API 2.0 ingest job's CSV: each row becomes a record
//! that goes through the same per-record matching and validation as sObject
//! Collections, and ends in exactly one of the successful, failed or
//! unprocessed result files (original columns echoed after `sf__` ones).

use serde_json::Value as Json;

use super::collections::{self, Operation, Outcome, SaveResult};
use super::convert::to_value;
use super::org::Org;
use super::schema::{ObjId, schema};
use super::validate::{ParsedRecord, Pending, RecordError};

/// Largest upload one job accepts: 150 MB once base64-encoded, which the
/// docs state as 100 MB of raw CSV.
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

/// In a Bulk CSV, this value sets a field to null; an empty value leaves it
/// unchanged.
pub const NULL_VALUE: &str = "#N/A";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOp {
    Insert,
    Update,
    Upsert,
    Delete,
}

impl IngestOp {
    pub fn parse(s: &str) -> Option<IngestOp> {
        match s {
            "insert" => Some(IngestOp::Insert),
            "update" => Some(IngestOp::Update),
            "upsert" => Some(IngestOp::Upsert),
            "delete" => Some(IngestOp::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IngestOp::Insert => "insert",
            IngestOp::Update => "update",
            IngestOp::Upsert => "upsert",
            IngestOp::Delete => "delete",
        }
    }
}

/// What a job was created for.
#[derive(Clone, Copy, Debug)]
pub struct IngestSpec {
    pub obj: ObjId,
    pub op: IngestOp,
    /// Field index of `externalIdFieldName` (upsert only).
    pub ext: Option<usize>,
    pub delimiter: u8,
}

/// The result files of a processed job and its counters.
#[derive(Debug, Default)]
pub struct Processed {
    pub successful: Vec<u8>,
    pub failed: Vec<u8>,
    pub unprocessed: Vec<u8>,
    pub records_processed: u64,
    pub records_failed: u64,
    /// Why the whole job failed (state `Failed`), as `errorMessage`.
    pub error: Option<String>,
}

/// `CODE:message:Field1,Field2 --`, the `sf__Error` of a failed row.
pub fn sf_error(e: &RecordError) -> String {
    format!("{}:{}:{} --", e.status_code, e.message, e.fields.join(","))
}

fn writer(delimiter: u8) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new())
}

fn finish_csv(w: csv::Writer<Vec<u8>>) -> Vec<u8> {
    w.into_inner().unwrap_or_default()
}

/// The whole job failed before any record was processed: every row is
/// unprocessed.
fn failed_job(data: &[u8], message: String) -> Processed {
    Processed {
        unprocessed: data.to_vec(),
        error: Some(message),
        ..Processed::default()
    }
}

/// Reads one CSV value as the stored value of its field: empty means "not
/// given", `#N/A` means null; anything unreadable fails the row.
fn read_row(
    spec: &IngestSpec,
    columns: &[Option<usize>],
    id_col: Option<usize>,
    row: &csv::StringRecord,
) -> Result<ParsedRecord, RecordError> {
    let def = schema().object(spec.obj);
    let mut rec = ParsedRecord {
        obj: spec.obj,
        id: id_col
            .and_then(|c| row.get(c))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        fields: Vec::new(),
        unknown: Vec::new(),
    };
    for (col, field) in columns.iter().enumerate() {
        let (Some(f), Some(text)) = (field, row.get(col)) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let json = if text == NULL_VALUE {
            Json::Null
        } else {
            Json::String(text.to_string())
        };
        let field = &def.fields[*f];
        let value = to_value(field, &json).ok_or_else(|| {
            RecordError::new(
                "INVALID_FIELD",
                format!(
                    "Failed to deserialize field at col {}. Due to, '{text}' is not a valid value \
                     for the type xsd:{}",
                    col + 1,
                    field.ftype.api_name()
                ),
                &[field.name],
            )
        })?;
        rec.fields.push((*f, value));
    }
    Ok(rec)
}

/// Runs the job's data against the org's records.
pub fn process(org: &Org, spec: &IngestSpec, data: &[u8]) -> Processed {
    let def = schema().object(spec.obj);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(spec.delimiter)
        .from_reader(data);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return failed_job(data, format!("InvalidBatch : {e}")),
    };
    let mut id_col = None;
    let mut columns = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        if name.eq_ignore_ascii_case("Id") {
            id_col = Some(i);
            columns.push(None);
        } else if spec.op == IngestOp::Delete {
            return failed_job(
                data,
                format!("InvalidBatch : a delete job takes only the Id column, not {name}"),
            );
        } else {
            match def.field_index(name) {
                Some(f) => columns.push(Some(f)),
                None => {
                    return failed_job(
                        data,
                        format!("InvalidBatch : Field name not found : {name}"),
                    );
                }
            }
        }
    }
    let mut rows = Vec::new();
    for row in reader.records() {
        match row {
            Ok(r) => rows.push(r),
            Err(e) => return failed_job(data, format!("InvalidBatch : {e}")),
        }
    }
    let mut store = org.write();
    let mut pending = Pending::default();
    let outcomes: Vec<Outcome> = rows
        .iter()
        .map(|row| {
            if spec.op == IngestOp::Delete {
                let id = id_col.and_then(|c| row.get(c)).unwrap_or_default();
                return collections::delete_one(&store, id);
            }
            let rec = match read_row(spec, &columns, id_col, row) {
                Ok(rec) => rec,
                Err(e) => return Outcome::failed(None, e),
            };
            match (spec.op, spec.ext) {
                (IngestOp::Upsert, Some(ext)) => {
                    collections::upsert_one(&store, ext, rec, &mut pending)
                }
                (IngestOp::Insert, _) => {
                    collections::save_one(&store, Operation::Create, &rec, &mut pending)
                }
                _ => collections::save_one(&store, Operation::Update, &rec, &mut pending),
            }
        })
        .collect();
    let results = collections::finish(org, &mut store, outcomes, false);
    drop(store);
    render(spec, &header, &rows, results)
}

fn render(
    spec: &IngestSpec,
    header: &csv::StringRecord,
    rows: &[csv::StringRecord],
    results: Vec<SaveResult>,
) -> Processed {
    let mut ok = writer(spec.delimiter);
    let mut bad = writer(spec.delimiter);
    let head = |first: &str, second: &str| {
        let mut h = vec![first.to_string(), second.to_string()];
        h.extend(header.iter().map(str::to_string));
        h
    };
    // Writing to a Vec cannot fail.
    let _ = ok.write_record(head("sf__Id", "sf__Created"));
    let _ = bad.write_record(head("sf__Id", "sf__Error"));
    let mut out = Processed::default();
    for (row, res) in rows.iter().zip(results) {
        let id = res.id.unwrap_or_default();
        let second = if res.success {
            let created = res.created.unwrap_or(spec.op == IngestOp::Insert);
            created.to_string()
        } else {
            out.records_failed += 1;
            res.errors.first().map(sf_error).unwrap_or_default()
        };
        let line = [id.as_str(), second.as_str()].into_iter().chain(row.iter());
        let target = if res.success { &mut ok } else { &mut bad };
        let _ = target.write_record(line);
        out.records_processed += 1;
    }
    out.successful = finish_csv(ok);
    out.failed = finish_csv(bad);
    let mut none = writer(spec.delimiter);
    let _ = none.write_record(header);
    out.unprocessed = finish_csv(none);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sf_error_lists_code_message_and_fields() {
        let e = RecordError::required_missing(&["LastName"]);
        assert_eq!(
            sf_error(&e),
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
        );
    }

    #[test]
    fn operations_round_trip() {
        for op in ["insert", "update", "upsert", "delete"] {
            assert_eq!(IngestOp::parse(op).map(IngestOp::name), Some(op));
        }
        assert_eq!(IngestOp::parse("merge"), None);
    }
}
