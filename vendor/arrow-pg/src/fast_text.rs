//! sfsql patch (see PATCHED.md): text-format dates and timestamps in the
//! ISO DateStyle are written digit by digit instead of through chrono's
//! `format()`, which parses a strftime pattern and the DateStyle string for
//! every value. The bytes are exactly the ones pgwire's chrono impls write;
//! any other DateStyle, wire type or out-of-range value takes that path.

use std::error::Error;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
#[cfg(not(feature = "datafusion"))]
use arrow::{array::*, datatypes::*};
#[cfg(feature = "datafusion")]
use datafusion::arrow::{array::*, datatypes::*};
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};

use crate::encoder::Encoder;

type BoxError = Box<dyn Error + Sync + Send>;

/// Encodes `arr[idx]` in text format when it is a Date32 or a Timestamp
/// without a zone or in UTC; `None` leaves the value to the generic encoder.
pub(crate) fn encode_text<E: Encoder>(
    encoder: &mut E,
    arr: &Arc<dyn Array>,
    idx: usize,
    pg_field: &FieldInfo,
) -> Option<PgWireResult<()>> {
    match arr.data_type() {
        DataType::Date32 => {
            let value = (!arr.is_null(idx))
                .then(|| arr.as_any().downcast_ref::<Date32Array>()?.value_as_date(idx))
                .flatten()
                .map(FastDate);
            Some(encoder.encode_field(&value, pg_field))
        }
        DataType::Timestamp(unit, tz) => {
            let utc = match tz.as_deref() {
                None => false,
                Some("UTC" | "utc" | "Etc/UTC" | "+00:00" | "+00" | "Z") => true,
                Some(_) => return None,
            };
            if arr.is_null(idx) {
                return Some(encoder.encode_field(&None::<FastTimestamp>, pg_field));
            }
            let dt = match unit {
                TimeUnit::Second => arr
                    .as_any()
                    .downcast_ref::<TimestampSecondArray>()?
                    .value_as_datetime(idx),
                TimeUnit::Millisecond => arr
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()?
                    .value_as_datetime(idx),
                TimeUnit::Microsecond => arr
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()?
                    .value_as_datetime(idx),
                TimeUnit::Nanosecond => arr
                    .as_any()
                    .downcast_ref::<TimestampNanosecondArray>()?
                    .value_as_datetime(idx),
            }?;
            Some(encoder.encode_field(&Some(FastTimestamp { dt, utc }), pg_field))
        }
        _ => None,
    }
}

/// Whether pgwire would format with the ISO style: its `DateStyle::new`
/// takes the part before ", " and falls back to ISO for unknown names.
fn iso(format_options: &FormatOptions) -> bool {
    let style = format_options
        .date_style
        .split_once(", ")
        .map_or(format_options.date_style.as_str(), |(style, _)| style)
        .trim();
    !["sql", "german", "postgres"]
        .iter()
        .any(|other| style.eq_ignore_ascii_case(other))
}

fn push_digits(out: &mut BytesMut, value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.put_slice(&buf[..width]);
}

/// `%Y-%m-%d` for years 0..=9999 (chrono pads or signs the others).
fn push_date(out: &mut BytesMut, date: NaiveDate) -> bool {
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return false;
    }
    push_digits(out, year as u32, 4);
    out.put_u8(b'-');
    push_digits(out, date.month(), 2);
    out.put_u8(b'-');
    push_digits(out, date.day(), 2);
    true
}

/// `%Y-%m-%d %H:%M:%S%.6f`; leap-second values take chrono's path.
fn push_datetime(out: &mut BytesMut, dt: NaiveDateTime) -> bool {
    let nanos = dt.nanosecond();
    if nanos >= 1_000_000_000 || !(0..=9999).contains(&dt.year()) {
        return false;
    }
    push_date(out, dt.date());
    out.put_u8(b' ');
    push_digits(out, dt.hour(), 2);
    out.put_u8(b':');
    push_digits(out, dt.minute(), 2);
    out.put_u8(b':');
    push_digits(out, dt.second(), 2);
    out.put_u8(b'.');
    push_digits(out, nanos / 1_000, 6);
    true
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FastDate(NaiveDate);

impl ToSqlText for FastDate {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, BoxError> {
        if *ty == Type::DATE && iso(format_options) && push_date(out, self.0) {
            return Ok(IsNull::No);
        }
        self.0.to_sql_text(ty, out, format_options)
    }
}

impl ToSql for FastDate {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <NaiveDate as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A timestamp's UTC wall time; `utc` marks a zoned (timestamptz) column,
/// which the generic encoder sends as a `DateTime<FixedOffset>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastTimestamp {
    dt: NaiveDateTime,
    utc: bool,
}

impl FastTimestamp {
    fn zoned(&self) -> DateTime<FixedOffset> {
        DateTime::from_naive_utc_and_offset(self.dt, FixedOffset::east_opt(0).expect("zero offset"))
    }
}

impl ToSqlText for FastTimestamp {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, BoxError> {
        let wanted = if self.utc { Type::TIMESTAMPTZ } else { Type::TIMESTAMP };
        if *ty == wanted && iso(format_options) && push_datetime(out, self.dt) {
            if self.utc {
                // chrono's `%:::z` for a zero offset
                out.put_slice(b"+00");
            }
            return Ok(IsNull::No);
        }
        if self.utc {
            self.zoned().to_sql_text(ty, out, format_options)
        } else {
            self.dt.to_sql_text(ty, out, format_options)
        }
    }
}

impl ToSql for FastTimestamp {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if self.utc {
            self.zoned().to_sql(ty, out)
        } else {
            self.dt.to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        <NaiveDateTime as ToSql>::accepts(ty) || <DateTime<FixedOffset> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}
