//! The extended query protocol (what drivers and BI tools use): prepared
//! SELECTs with parameters, and sfsql's own statements through Parse/Bind/
//! Execute.

use crate::common::start_demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_reach_salesforce_tables_and_the_router() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;

    let rows = client
        .query(
            "SELECT id, email FROM sandbox.contact WHERE email = $1",
            &[&"chloe.allen5@stark.example"],
        )
        .await
        .expect("prepared select");
    assert_eq!(rows.len(), 1);
    let id: &str = rows[0].get(0);
    assert_eq!(id, "0038Z0000004CC1QAM");

    let update = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name FROM reports.nps_score r \
                  WHERE lower(contact.email) = lower(r.account_email)";
    client
        .batch_execute("SET sfsql.dry_run = on")
        .await
        .expect("set");
    let dry = client
        .query(update, &[])
        .await
        .expect("dry run over the extended protocol");
    assert_eq!(dry.len(), 120, "one row per changed field");
    let field: &str = dry[0].get("field");
    assert_eq!(field, "WM_Quiz_Name__c");

    client
        .batch_execute("SET sfsql.dry_run = off")
        .await
        .expect("set");
    let n = client
        .execute(update, &[])
        .await
        .expect("update over the extended protocol");
    assert_eq!(n, 120);
    assert_eq!(client.execute(update, &[]).await.expect("rerun"), 0);
}

/// Values in PostgreSQL's binary format, as drivers send parameters and read
/// results (tokio-postgres asks for binary results of every column).
mod binary {
    use std::error::Error;

    use bytes::{BufMut, BytesMut};
    use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
    use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

    type Result<T> = std::result::Result<T, Box<dyn Error + Sync + Send>>;

    fn epoch() -> NaiveDate {
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("2000-01-01")
    }

    fn be<const N: usize>(raw: &[u8]) -> Result<[u8; N]> {
        raw.try_into()
            .map_err(|_| format!("{} bytes, not {N}", raw.len()).into())
    }

    /// `date`: days since 2000-01-01.
    #[derive(Debug, PartialEq)]
    pub struct Date(pub NaiveDate);

    impl ToSql for Date {
        fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull> {
            out.put_i32(i32::try_from((self.0 - epoch()).num_days())?);
            Ok(IsNull::No)
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::DATE
        }
        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for Date {
        fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self> {
            let days = i32::from_be_bytes(be(raw)?);
            Ok(Date(epoch() + chrono::Duration::days(i64::from(days))))
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::DATE
        }
    }

    /// `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
    #[derive(Debug, PartialEq)]
    pub struct Timestamptz(pub DateTime<Utc>);

    fn epoch_utc() -> DateTime<Utc> {
        epoch().and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    }

    impl ToSql for Timestamptz {
        fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull> {
            let micros = (self.0 - epoch_utc())
                .num_microseconds()
                .ok_or("out of range")?;
            out.put_i64(micros);
            Ok(IsNull::No)
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::TIMESTAMPTZ
        }
        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for Timestamptz {
        fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self> {
            let micros = i64::from_be_bytes(be(raw)?);
            Ok(Timestamptz(
                epoch_utc() + chrono::Duration::microseconds(micros),
            ))
        }
        fn accepts(ty: &Type) -> bool {
            matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
        }
    }

    /// `time`: microseconds since midnight.
    #[derive(Debug, PartialEq)]
    pub struct Time(pub NaiveTime);

    impl<'a> FromSql<'a> for Time {
        fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self> {
            let micros = i64::from_be_bytes(be(raw)?);
            let midnight = NaiveTime::from_hms_opt(0, 0, 0).expect("midnight");
            Ok(Time(midnight + chrono::Duration::microseconds(micros)))
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::TIME
        }
    }

    /// `numeric` as its decimal text (`11.95`): base-10000 digit groups
    /// with a weight, a sign and a display scale.
    #[derive(Debug, PartialEq)]
    pub struct Numeric(pub String);

    impl ToSql for Numeric {
        fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull> {
            let (negative, text) = match self.0.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, self.0.as_str()),
            };
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let int = int.trim_start_matches('0');
            let int_groups = int.len().div_ceil(4);
            let padded_int = format!("{int:0>width$}", width = int_groups * 4);
            let frac_groups = frac.len().div_ceil(4);
            let padded_frac = format!("{frac:0<width$}", width = frac_groups * 4);
            let digits: Vec<i16> = format!("{padded_int}{padded_frac}")
                .as_bytes()
                .chunks(4)
                .map(|c| {
                    std::str::from_utf8(c)
                        .map_err(Into::into)
                        .and_then(|s| Ok(s.parse::<i16>()?))
                })
                .collect::<Result<_>>()?;
            let mut weight = i16::try_from(int_groups)? - 1;
            let mut digits = &digits[..];
            while let [0, rest @ ..] = digits {
                digits = rest;
                weight -= 1;
            }
            while let [rest @ .., 0] = digits {
                digits = rest;
            }
            out.put_i16(i16::try_from(digits.len())?);
            out.put_i16(if digits.is_empty() { 0 } else { weight });
            out.put_u16(if negative { 0x4000 } else { 0 });
            out.put_u16(u16::try_from(frac.len())?);
            for d in digits {
                out.put_i16(*d);
            }
            Ok(IsNull::No)
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::NUMERIC
        }
        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for Numeric {
        fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self> {
            let word = |i: usize| -> Result<u16> {
                Ok(u16::from_be_bytes(be(raw
                    .get(i * 2..i * 2 + 2)
                    .ok_or("short numeric")?)?))
            };
            let ndigits = usize::from(word(0)?);
            let weight = i64::from(word(1)? as i16);
            let sign = word(2)?;
            let dscale = usize::from(word(3)?);
            if sign == 0xC000 {
                return Ok(Numeric("NaN".into()));
            }
            // Every group to the right of the point: the value is n / 10000^k.
            let k = (i64::try_from(ndigits)? - 1 - weight).max(0);
            let mut n: i128 = 0;
            for i in 0..ndigits {
                let exponent = weight - i64::try_from(i)? + k;
                n += i128::from(word(4 + i)?) * 10_000i128.pow(u32::try_from(exponent)?);
            }
            let places = usize::try_from(k * 4)?;
            let text = format!("{n:0>width$}", width = places + 1);
            let (int, frac) = text.split_at(text.len() - places);
            let frac = format!("{frac:0<dscale$}");
            let frac = &frac[..dscale];
            let sign = if sign == 0x4000 { "-" } else { "" };
            Ok(Numeric(if dscale == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            }))
        }
        fn accepts(ty: &Type) -> bool {
            *ty == Type::NUMERIC
        }
    }
}

/// Parameters of every type sfsql exposes bound in binary (what
/// tokio-postgres sends), and results of every type read in binary: each
/// value is the one the text protocol shows for the same record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_parameters_and_binary_results_of_every_type() {
    use crate::common::rows;
    use binary::{Date, Numeric, Time, Timestamptz};
    use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    let text = |sql: &'static str| {
        let client = &client;
        async move {
            let r = rows(client, sql).await;
            let row = r
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no row: {sql}"));
            row.into_iter()
                .map(|v| v.unwrap_or_else(|| panic!("NULL in {sql}")))
                .collect::<Vec<String>>()
        }
    };

    // date and timestamptz (a contact).
    let c = text(
        "SELECT id, CAST(birthdate AS VARCHAR), CAST(createddate AS VARCHAR), email, \
         CAST(wm_nps_score__c AS VARCHAR) FROM sandbox.contact \
         WHERE birthdate IS NOT NULL AND wm_nps_score__c IS NOT NULL ORDER BY id LIMIT 1",
    )
    .await;
    let birthdate = NaiveDate::parse_from_str(&c[1], "%Y-%m-%d").expect("date");
    let created: DateTime<Utc> = c[2].parse().expect("timestamp");
    let score: f64 = c[4].parse().expect("score");
    let r = client
        .query(
            "SELECT id, birthdate, createddate, wm_nps_score__c, hasoptedoutofemail \
             FROM sandbox.contact WHERE birthdate = $1 AND createddate = $2 AND email = $3 \
             AND wm_nps_score__c = $4",
            &[&Date(birthdate), &Timestamptz(created), &c[3], &score],
        )
        .await
        .expect("date, timestamptz, text and float8 parameters");
    assert_eq!(r.len(), 1, "{c:?}");
    assert_eq!(r[0].get::<_, &str>(0), c[0]);
    assert_eq!(r[0].get::<_, Date>(1), Date(birthdate));
    assert_eq!(r[0].get::<_, Timestamptz>(2), Timestamptz(created));
    assert_eq!(r[0].get::<_, f64>(3), score);
    let opted_out: bool = r[0].get(4);

    // bool: as many as the text protocol counts.
    let wanted =
        text("SELECT CAST(count(*) AS VARCHAR) FROM sandbox.contact WHERE hasoptedoutofemail")
            .await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM sandbox.contact WHERE hasoptedoutofemail = $1",
            &[&true],
        )
        .await
        .expect("bool parameter")
        .get(0);
    assert_eq!(n.to_string(), wanted[0]);
    let same: i64 = client
        .query_one(
            "SELECT count(*) FROM sandbox.contact WHERE id = $1 AND hasoptedoutofemail = $2",
            &[&c[0], &opted_out],
        )
        .await
        .expect("bool parameter")
        .get(0);
    assert_eq!(same, 1);

    // numeric (currency, percent), int4, int8 and time (an account).
    let a = text(
        "SELECT id, CAST(wm_discount__c AS VARCHAR), CAST(annualrevenue AS VARCHAR), \
         CAST(numberofemployees AS VARCHAR), CAST(wm_page_views__c AS VARCHAR), \
         CAST(wm_opens_at__c AS VARCHAR) FROM sandbox.account \
         WHERE wm_discount__c IS NOT NULL AND annualrevenue IS NOT NULL \
         AND numberofemployees IS NOT NULL AND wm_page_views__c IS NOT NULL \
         AND wm_opens_at__c IS NOT NULL ORDER BY id LIMIT 1",
    )
    .await;
    let employees: i32 = a[3].parse().expect("int");
    let views: i64 = a[4].parse().expect("long");
    let r = client
        .query(
            "SELECT id, wm_discount__c, annualrevenue, numberofemployees, wm_page_views__c, \
             wm_opens_at__c FROM sandbox.account WHERE wm_discount__c = $1 \
             AND annualrevenue = $2 AND numberofemployees = $3 AND wm_page_views__c = $4",
            &[
                &Numeric(a[1].clone()),
                &Numeric(a[2].clone()),
                &employees,
                &views,
            ],
        )
        .await
        .expect("numeric, int4 and int8 parameters");
    assert_eq!(r.len(), 1, "{a:?}");
    assert_eq!(r[0].get::<_, &str>(0), a[0]);
    assert_eq!(r[0].get::<_, Numeric>(1), Numeric(a[1].clone()));
    assert_eq!(r[0].get::<_, Numeric>(2), Numeric(a[2].clone()));
    assert_eq!(r[0].get::<_, i32>(3), employees);
    assert_eq!(r[0].get::<_, i64>(4), views);
    let opens = NaiveTime::parse_from_str(&a[5], "%H:%M:%S%.f").expect("time");
    assert_eq!(r[0].get::<_, Time>(5), Time(opens));

    // bytea: an attachment's body, byte for byte.
    let b =
        text("SELECT id, encode(body, 'hex') FROM sandbox.attachment ORDER BY id LIMIT 1").await;
    let body: Vec<u8> = client
        .query_one(
            "SELECT body FROM sandbox.attachment WHERE id = $1",
            &[&b[0]],
        )
        .await
        .expect("bytea result")
        .get(0);
    let hex: String = body.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(hex, b[1]);
}
