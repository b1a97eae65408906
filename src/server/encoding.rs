//! Pins the vendored arrow-pg patch (vendor/arrow-pg/PATCHED.md): dates and
//! timestamps in text format are the bytes pgwire's chrono formatting
//! writes, for every DateStyle, zone spelling, null and out-of-range year.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::arrow_pg::row_encoder::RowEncoder;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;

const STYLES: [&str; 6] = [
    "ISO, MDY",
    "ISO",
    "iso, DMY",
    "SQL, DMY",
    "German",
    "Postgres, MDY",
];

/// Days since 1970-01-01 of dates across the range chrono and Postgres use,
/// including years the fast path leaves to chrono (negative, over 9999).
fn days() -> Vec<Option<i32>> {
    let dates = [
        (1970, 1, 1),
        (2015, 10, 19),
        (1, 1, 1),
        (9999, 12, 31),
        (10000, 1, 1),
        (-44, 3, 15),
        (2024, 2, 29),
    ];
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let mut out: Vec<Option<i32>> = dates
        .iter()
        .map(|&(y, m, d)| {
            Some((NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch).num_days() as i32)
        })
        .collect();
    out.push(None);
    out
}

/// Nanoseconds since the epoch: whole seconds, millis, micros, a nanosecond
/// remainder the micro format truncates, before 1970, and a null.
fn instants() -> Vec<Option<i64>> {
    vec![
        Some(0),
        Some(1_445_262_695_000_000_000),
        Some(1_445_262_695_123_000_000),
        Some(1_445_262_695_123_456_000),
        Some(1_445_262_695_123_456_789),
        Some(-1_000_000_001),
        Some(9_000_000_000_999_999_999),
        None,
    ]
}

fn options(style: &str) -> FormatOptions {
    let mut options = FormatOptions::default();
    options.date_style = style.to_string();
    options
}

/// Every column's text, row by row, as the server would send it.
fn encode(batch: &RecordBatch, style: &str) -> Vec<Vec<Option<String>>> {
    let options = Arc::new(options(style));
    let fields: Vec<_> = arrow_schema_to_pg_fields(&batch.schema(), &Format::UnifiedText, None)
        .unwrap()
        .into_iter()
        .map(|f| f.with_format_options(options.clone()))
        .collect();
    let mut rows = RowEncoder::new(batch.clone(), Arc::new(fields));
    let mut out = Vec::new();
    while let Some(row) = rows.next_row() {
        let mut data = row.unwrap().data;
        let mut values = Vec::new();
        while data.has_remaining() {
            let len = data.get_i32();
            values.push((len >= 0).then(|| {
                let bytes = data.split_to(len as usize);
                String::from_utf8(bytes.to_vec()).unwrap()
            }));
        }
        out.push(values);
    }
    out
}

/// What pgwire's own chrono impls write for `value` as `ty`.
fn upstream<T: ToSqlText>(value: Option<T>, ty: &Type, style: &str) -> Option<String> {
    let options = options(style);
    value.map(|v| {
        let mut out = BytesMut::new();
        v.to_sql_text(ty, &mut out, &options).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    })
}

#[test]
fn dates_are_written_as_pgwire_writes_them() {
    let values = days();
    let schema = Schema::new(vec![Field::new("d", DataType::Date32, true)]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Date32Array::from(values.clone())) as ArrayRef],
    )
    .unwrap();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for style in STYLES {
        let got = encode(&batch, style);
        for (row, day) in got.iter().zip(&values) {
            let date = day.map(|d| epoch + chrono::Duration::days(d as i64));
            assert_eq!(
                row[0],
                upstream(date, &Type::DATE, style),
                "{style} {day:?}"
            );
        }
    }
    assert_eq!(
        encode(&batch, "ISO, MDY")[1][0].as_deref(),
        Some("2015-10-19")
    );
}

#[test]
fn timestamps_of_every_unit_and_utc_spelling_are_written_as_pgwire_writes_them() {
    let values = instants();
    let zones: [Option<&str>; 4] = [None, Some("UTC"), Some("+00:00"), Some("Etc/UTC")];
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ];
    for zone in zones {
        for unit in units {
            let per = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            let raw: Vec<Option<i64>> = values
                .iter()
                .map(|v| v.map(|n| n.div_euclid(per)))
                .collect();
            let tz: Option<Arc<str>> = zone.map(Arc::from);
            let array: ArrayRef = match unit {
                TimeUnit::Second => {
                    Arc::new(TimestampSecondArray::from(raw.clone()).with_timezone_opt(tz))
                }
                TimeUnit::Millisecond => {
                    Arc::new(TimestampMillisecondArray::from(raw.clone()).with_timezone_opt(tz))
                }
                TimeUnit::Microsecond => {
                    Arc::new(TimestampMicrosecondArray::from(raw.clone()).with_timezone_opt(tz))
                }
                TimeUnit::Nanosecond => {
                    Arc::new(TimestampNanosecondArray::from(raw.clone()).with_timezone_opt(tz))
                }
            };
            let schema = Schema::new(vec![Field::new("t", array.data_type().clone(), true)]);
            let batch = RecordBatch::try_new(Arc::new(schema), vec![array]).unwrap();
            for style in STYLES {
                let got = encode(&batch, style);
                for (row, value) in got.iter().zip(&raw) {
                    let naive = value.map(|v| DateTime::from_timestamp_nanos(v * per).naive_utc());
                    let want = match zone {
                        None => upstream::<NaiveDateTime>(naive, &Type::TIMESTAMP, style),
                        Some(_) => upstream(
                            naive.map(|n| {
                                DateTime::<FixedOffset>::from_naive_utc_and_offset(
                                    n,
                                    FixedOffset::east_opt(0).unwrap(),
                                )
                            }),
                            &Type::TIMESTAMPTZ,
                            style,
                        ),
                    };
                    assert_eq!(row[0], want, "{zone:?} {unit:?} {style} {value:?}");
                }
            }
        }
    }
    let schema = Schema::new(vec![Field::new(
        "t",
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        true,
    )]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(
            TimestampMillisecondArray::from(vec![Some(1_445_262_695_123)]).with_timezone("UTC"),
        ) as ArrayRef],
    )
    .unwrap();
    assert_eq!(
        encode(&batch, "ISO, MDY")[0][0].as_deref(),
        Some("2015-10-19 13:51:35.123000+00")
    );
}
