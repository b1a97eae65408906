//! Salesforce field types to Arrow types, and query records (REST JSON or
//! Bulk CSV rows, through one conversion per type) to Arrow record batches.
//!
//! | Salesforce type | Arrow type |
//! | --- | --- |
//! | id, reference, string, textarea, email, phone, url, picklist, multipicklist (`;`-separated, as Salesforce sends it), combobox, encryptedstring | Utf8 |
//! | boolean | Boolean |
//! | int | Int32; long: Int64 |
//! | double | Float64 |
//! | currency, percent | Decimal128(precision, scale) from describe |
//! | date | Date32 |
//! | datetime | Timestamp(ms, UTC) |
//! | time | Time64(ns): DataFusion's TIME literals are Time64, and Time32 would not compare with them |
//! | base64 | Binary: a query returns a URL per record, and the scan GETs each blob only when the column is selected (see `super::blob`) |
//! | address, location (compounds) | left out: their components (`billingcity`, `wm_site__latitude__s`, ...) are the columns. A Struct would repeat them, could not be filtered or written, and would make `SELECT *` fetch everything twice |
//! | anyType, complexvalue | left out: no single Arrow type holds their values |

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder,
    Time64NanosecondBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use serde_json::{Map, Value};

use crate::salesforce::FieldDescribe;

/// The Arrow type of a Salesforce field, or `None` for fields not exposed
/// as columns.
pub fn arrow_type(field: &FieldDescribe) -> Option<DataType> {
    Some(match field.field_type.as_str() {
        "id" | "reference" | "string" | "textarea" | "email" | "phone" | "url" | "picklist"
        | "multipicklist" | "combobox" | "encryptedstring" => DataType::Utf8,
        "boolean" => DataType::Boolean,
        "int" => DataType::Int32,
        "long" => DataType::Int64,
        "double" => DataType::Float64,
        "currency" | "percent" => {
            let precision = field.precision.clamp(1, 38) as u8;
            let scale = field.scale.clamp(0, i32::from(precision)) as i8;
            DataType::Decimal128(precision, scale)
        }
        "date" => DataType::Date32,
        "datetime" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        "time" => DataType::Time64(TimeUnit::Nanosecond),
        "base64" => DataType::Binary,
        _ => return None,
    })
}

/// Field metadata: the sObjects a reference field points to, comma-separated.
pub const REFERENCES: &str = "sfsql.references";

/// The Arrow field for a Salesforce field: lower-case name, nullable, and
/// the Salesforce label, API name, type and reference targets in metadata.
pub fn arrow_field(field: &FieldDescribe) -> Option<Field> {
    let data_type = arrow_type(field)?;
    let mut metadata: std::collections::HashMap<String, String> = [
        ("comment".to_string(), field.label.clone()),
        ("sfsql.api_name".to_string(), field.name.clone()),
        ("sfsql.type".to_string(), field.field_type.clone()),
    ]
    .into();
    if !field.reference_to.is_empty() {
        // What the catalogs publish as foreign keys (one target only).
        metadata.insert(REFERENCES.to_string(), field.reference_to.join(","));
    }
    Some(Field::new(field.name.to_ascii_lowercase(), data_type, true).with_metadata(metadata))
}

/// One field value as Salesforce sent it: a JSON value of a REST query
/// record, or the text of a Bulk query CSV cell (empty: null). Both reach
/// Arrow through [`build_column`], so a field converts the same either way.
#[derive(Clone, Copy)]
pub enum Cell<'a> {
    Null,
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> Cell<'a> {
    fn of_json(v: &'a Value) -> Cell<'a> {
        match v {
            Value::Null => Cell::Null,
            Value::String(s) => Cell::Text(s),
            other => Cell::Json(other),
        }
    }

    fn of_csv(s: &'a str) -> Cell<'a> {
        if s.is_empty() {
            Cell::Null
        } else {
            Cell::Text(s)
        }
    }

    /// For error messages.
    fn shown(self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Text(s) => format!("{s:?}"),
            Cell::Json(v) => v.to_string(),
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            Cell::Text(s) => s.parse().ok(),
            Cell::Json(Value::Number(n)) => n.as_f64(),
            _ => None,
        }
    }
}

/// Build a batch from query records. `api_names[i]` is the JSON key of
/// `schema.field(i)`.
pub fn records_to_batch(
    schema: &SchemaRef,
    api_names: &[String],
    records: &[Map<String, Value>],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(api_names.len());
    for (field, api_name) in schema.fields().iter().zip(api_names) {
        let values = records
            .iter()
            .map(|r| r.get(api_name).map_or(Cell::Null, Cell::of_json));
        columns.push(build_column(field.data_type(), field.name(), values)?);
    }
    finish(schema, columns, records.len())
}

/// Build a batch from Bulk query CSV rows. `api_names[i]` is the CSV column
/// of `schema.field(i)`, found in `header` without regard to case (a
/// missing column is an error: the SOQL selected it).
pub fn csv_rows_to_batch(
    schema: &SchemaRef,
    api_names: &[String],
    header: &csv::StringRecord,
    rows: &[csv::StringRecord],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(api_names.len());
    for (field, api_name) in schema.fields().iter().zip(api_names) {
        let at = header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(api_name))
            .ok_or_else(|| {
                ArrowError::ParseError(format!(
                    "column {}: Bulk query results have no column {api_name}",
                    field.name()
                ))
            })?;
        let values = rows.iter().map(|r| Cell::of_csv(r.get(at).unwrap_or("")));
        columns.push(build_column(field.data_type(), field.name(), values)?);
    }
    finish(schema, columns, rows.len())
}

fn finish(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

fn bad(column: &str, value: Cell, expected: &str) -> ArrowError {
    ArrowError::ParseError(format!(
        "column {column}: Salesforce returned {} where {expected} was expected",
        value.shown()
    ))
}

fn build_column<'a>(
    data_type: &DataType,
    column: &str,
    values: impl Iterator<Item = Cell<'a>>,
) -> Result<ArrayRef, ArrowError> {
    Ok(match data_type {
        DataType::Utf8 => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Text(s) => b.append_value(s),
                    Cell::Json(other) => b.append_value(other.to_string()),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Json(Value::Bool(x)) => b.append_value(*x),
                    Cell::Text("true") => b.append_value(true),
                    Cell::Text("false") => b.append_value(false),
                    other => return Err(bad(column, other, "a boolean")),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    other => {
                        let n = other
                            .number()
                            .ok_or_else(|| bad(column, other, "an integer"))?;
                        b.append_value(n as i32)
                    }
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::new();
            for v in values {
                let exact = match v {
                    Cell::Json(Value::Number(n)) => n.as_i64(),
                    Cell::Text(s) => s.parse::<i64>().ok(),
                    _ => None,
                };
                match (v, exact) {
                    (Cell::Null, _) => b.append_null(),
                    (_, Some(n)) => b.append_value(n),
                    (other, None) => {
                        let n = other
                            .number()
                            .ok_or_else(|| bad(column, other, "an integer"))?;
                        b.append_value(n as i64)
                    }
                }
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    other => b.append_value(
                        other
                            .number()
                            .ok_or_else(|| bad(column, other, "a number"))?,
                    ),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::new();
            for v in values {
                let text = match v {
                    Cell::Null => {
                        b.append_null();
                        continue;
                    }
                    Cell::Text(t) => t.to_string(),
                    Cell::Json(Value::Number(n)) => n.to_string(),
                    other => return Err(bad(column, other, "a number")),
                };
                let parsed = datafusion::arrow::compute::kernels::cast_utils::parse_decimal::<
                    Decimal128Type,
                >(&text, *p, *s)?;
                b.append_value(parsed);
            }
            Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
        }
        DataType::Date32 => {
            let mut b = Date32Builder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Text(s) => {
                        b.append_value(parse_date(s).ok_or_else(|| bad(column, v, "a date"))?)
                    }
                    other => return Err(bad(column, other, "a date")),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            let mut b = TimestampMillisecondBuilder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Text(s) => b.append_value(
                        parse_datetime(s).ok_or_else(|| bad(column, v, "a datetime"))?,
                    ),
                    other => return Err(bad(column, other, "a datetime")),
                }
            }
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            let mut b = Time64NanosecondBuilder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Text(s) => {
                        b.append_value(parse_time(s).ok_or_else(|| bad(column, v, "a time"))?)
                    }
                    other => return Err(bad(column, other, "a time")),
                }
            }
            Arc::new(b.finish())
        }
        // A blob's bytes, base64-encoded: the scan replaced the URL that
        // the query returned with the data it fetched from there.
        DataType::Binary => {
            use base64::Engine;
            let mut b = BinaryBuilder::new();
            for v in values {
                match v {
                    Cell::Null => b.append_null(),
                    Cell::Text(s) => b.append_value(
                        base64::engine::general_purpose::STANDARD
                            .decode(s)
                            .map_err(|_| bad(column, v, "base64 data"))?,
                    ),
                    other => return Err(bad(column, other, "base64 data")),
                }
            }
            Arc::new(b.finish())
        }
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "column {column}: Arrow type {other} is not produced from Salesforce values"
            )));
        }
    })
}

/// Days since 1970-01-01 for `2021-04-14`.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// Milliseconds since the epoch for Salesforce's `2015-10-19T13:51:35.000+0000`
/// (and RFC 3339 forms such as `...Z` or `+00:00`).
pub fn parse_datetime(s: &str) -> Option<i64> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|dt| dt.timestamp_millis())
}

/// Nanoseconds since midnight for `09:00:00.000Z`.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim_end_matches('Z');
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()?;
    Some(i64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(t.nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Schema, TimestampMillisecondType};

    #[test]
    fn parses_salesforce_formats_exactly() {
        assert_eq!(
            parse_datetime("2015-10-19T13:51:35.000+0000"),
            Some(1_445_262_695_000)
        );
        assert_eq!(
            parse_datetime("2015-10-19T13:51:35.123Z"),
            Some(1_445_262_695_123)
        );
        assert_eq!(
            parse_datetime("2015-10-19T15:51:35.000+0200"),
            Some(1_445_262_695_000)
        );
        assert_eq!(parse_date("2021-04-14"), Some(18_731));
        assert_eq!(parse_time("09:00:00.000Z"), Some(9 * 3_600_000_000_000));
        assert_eq!(
            parse_time("09:00:00.250Z"),
            Some(9 * 3_600_000_000_000 + 250_000_000)
        );
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn builds_batches_from_records() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
            Field::new(
                "seen",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let records: Vec<Map<String, Value>> = vec![
            serde_json::from_str(
                r#"{"Id":"003A","Score":9,"Seen":"2015-10-19T13:51:35.000+0000","Amount":12.5}"#,
            )
            .unwrap(),
            serde_json::from_str(r#"{"Id":"003B","Score":null,"Seen":null,"Amount":null}"#)
                .unwrap(),
        ];
        let names: Vec<String> = ["Id", "Score", "Seen", "Amount"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let batch = records_to_batch(&schema, &names, &records).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0),
            9.0
        );
        assert!(batch.column(1).is_null(1));
        assert_eq!(
            batch
                .column(2)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_445_262_695_000
        );
        assert_eq!(
            batch.column(3).as_primitive::<Decimal128Type>().value(0),
            1250
        );
    }

    #[test]
    fn blobs_and_longs_keep_every_bit() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("body", DataType::Binary, true),
            Field::new("views", DataType::Int64, true),
        ]));
        let records: Vec<Map<String, Value>> = vec![
            serde_json::from_str(r#"{"Body":"iVBORw==","Views":9007199254740993}"#).unwrap(),
            serde_json::from_str(r#"{"Body":null,"Views":null}"#).unwrap(),
        ];
        let names = vec!["Body".to_string(), "Views".to_string()];
        let batch = records_to_batch(&schema, &names, &records).unwrap();
        assert_eq!(batch.column(0).as_binary::<i32>().value(0), b"\x89PNG");
        assert!(batch.column(0).is_null(1));
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            9_007_199_254_740_993
        );
        let bad: Vec<Map<String, Value>> =
            vec![serde_json::from_str(r#"{"Body":"not base64!","Views":1}"#).unwrap()];
        assert!(records_to_batch(&schema, &names, &bad).is_err());
    }
}
