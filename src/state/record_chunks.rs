//! How a run's per-record outcomes (`cron.job_run_records`) are stored: one
//! row of `run_record_chunk` per batch of records given to the log (at most
//! [`CHUNK`]), holding the records' ids and match keys as sent and their
//! outcomes run-length encoded. A 1,000,000-record update costs 100 rows
//! written at `sending` and 100 small outcome blobs at `sent`, not a
//! million inserts and a million updates (which took over half of the
//! engine's time in the write benchmark).
//!
//! Records logged before schema version 9 stay in `run_record`, a row
//! each; [`Store::records`](super::Store::records) reads both.
//!
//! Blob layout (version byte 1, then): `records` holds, per record, the id
//! and the match key; `outcomes` holds runs of (count, status, error code,
//! message, fields). Strings are a LEB128 length then UTF-8 bytes; an
//! optional string stores length + 1, 0 meaning NULL.

use rusqlite::{Transaction, params};

use crate::dml::RecordOutcome;

/// The most records one chunk row holds (the write path's sink batch).
pub const CHUNK: usize = crate::dml::SINK_BATCH;

const VERSION: u8 = 1;

/// A chunk blob that does not decode: the store is damaged or was written
/// by a sfsql this one does not understand.
fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        format!("run_record_chunk {what} do not decode; the state store is damaged").into(),
    )
}

/// One run of identical outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub message: Option<&'a str>,
    /// Salesforce's error fields, comma-separated.
    pub fields: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Outcome<'a> {
    pub fn of(o: &'a RecordOutcome) -> Self {
        Outcome {
            status: o.status.as_str(),
            error_code: o.error_code.as_deref(),
            message: o.message.as_deref(),
            fields: match o.fields.as_slice() {
                [] => None,
                [one] => Some(one.as_str().into()),
                many => Some(many.join(",").into()),
            },
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![VERSION])
    }

    fn len(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        self.len(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.len(0),
            Some(s) => {
                self.len(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> rusqlite::Result<Self> {
        match bytes.split_first() {
            Some((&VERSION, rest)) => Ok(Reader { bytes: rest, what }),
            _ => Err(corrupt(what)),
        }
    }

    fn done(&self) -> bool {
        self.bytes.is_empty()
    }

    fn len(&mut self) -> rusqlite::Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or_else(|| corrupt(self.what))?;
            self.bytes = rest;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt(self.what))
    }

    fn take(&mut self, n: u64) -> rusqlite::Result<&'a str> {
        let n = usize::try_from(n).map_err(|_| corrupt(self.what))?;
        if n > self.bytes.len() {
            return Err(corrupt(self.what));
        }
        let (s, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        std::str::from_utf8(s).map_err(|_| corrupt(self.what))
    }

    fn str(&mut self) -> rusqlite::Result<&'a str> {
        let n = self.len()?;
        self.take(n)
    }

    fn opt(&mut self) -> rusqlite::Result<Option<&'a str>> {
        match self.len()? {
            0 => Ok(None),
            n => self.take(n - 1).map(Some),
        }
    }
}

/// The `records` blob: each record's id and match key.
pub fn encode_records<'a>(records: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Vec<u8> {
    let mut w = Writer::new();
    for (id, key) in records {
        w.str(id);
        w.opt(key);
    }
    w.0
}

pub fn decode_records(blob: &[u8]) -> rusqlite::Result<Vec<(&str, Option<&str>)>> {
    let mut r = Reader::new(blob, "records")?;
    let mut out = Vec::new();
    while !r.done() {
        out.push((r.str()?, r.opt()?));
    }
    Ok(out)
}

/// The `outcomes` blob: runs of identical outcomes, in record order.
pub fn encode_outcomes<'a, 'b: 'a>(
    runs: impl Iterator<Item = (usize, &'a Outcome<'b>)>,
) -> Vec<u8> {
    let mut w = Writer::new();
    for (count, o) in runs {
        w.len(count as u64);
        w.str(o.status);
        w.opt(o.error_code);
        w.opt(o.message);
        w.opt(o.fields.as_deref());
    }
    w.0
}

pub fn decode_outcomes(blob: &[u8]) -> rusqlite::Result<Vec<(usize, Outcome<'_>)>> {
    let mut r = Reader::new(blob, "outcomes")?;
    let mut out = Vec::new();
    while !r.done() {
        let count = usize::try_from(r.len()?).map_err(|_| corrupt("outcomes"))?;
        out.push((
            count,
            Outcome {
                status: r.str()?,
                error_code: r.opt()?,
                message: r.opt()?,
                fields: r.opt()?.map(Into::into),
            },
        ));
    }
    Ok(out)
}

/// A chunk's outcome of each of its `n` records.
fn outcome_per_record(blob: &[u8], n: usize) -> rusqlite::Result<Vec<Outcome<'_>>> {
    let mut each = Vec::with_capacity(n);
    for (k, o) in decode_outcomes(blob)? {
        if each.len() + k > n {
            return Err(corrupt("outcomes"));
        }
        each.extend(std::iter::repeat_n(o, k));
    }
    if each.len() != n {
        return Err(corrupt("outcomes"));
    }
    Ok(each)
}

/// One stored record: (id, match key) and its outcome.
pub type Stored<'a> = ((&'a str, Option<&'a str>), Outcome<'a>);

/// A chunk's `n` records.
pub fn decode_chunk<'a>(
    records: &'a [u8],
    outcomes: &'a [u8],
    n: usize,
) -> rusqlite::Result<Vec<Stored<'a>>> {
    let records = decode_records(records)?;
    if records.len() != n {
        return Err(corrupt("records"));
    }
    Ok(records
        .into_iter()
        .zip(outcome_per_record(outcomes, n)?)
        .collect())
}

/// Runs of equal neighbours in `outcomes`.
fn runs<'a, 'b>(outcomes: &'a [Outcome<'b>]) -> Vec<(usize, &'a Outcome<'b>)> {
    let mut runs: Vec<(usize, &Outcome)> = Vec::new();
    for o in outcomes {
        match runs.last_mut() {
            Some((n, last)) if *last == o => *n += 1,
            _ => runs.push((1, o)),
        }
    }
    runs
}

/// Store `outcomes` as records `first_seq..` of run `runid`, in chunks.
pub fn insert(
    tx: &Transaction<'_>,
    runid: i64,
    first_seq: i64,
    sobject: &str,
    action: &str,
    outcomes: &[RecordOutcome],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO run_record_chunk (runid, first_seq, n, sobject, action, records, outcomes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (k, chunk) in outcomes.chunks(CHUNK).enumerate() {
        let records = encode_records(
            chunk
                .iter()
                .map(|o| (o.id.as_str(), o.match_key.as_deref())),
        );
        let each: Vec<Outcome> = chunk.iter().map(Outcome::of).collect();
        let blob = encode_outcomes(runs(&each).into_iter());
        stmt.execute(params![
            runid,
            first_seq + (k * CHUNK) as i64,
            chunk.len() as i64,
            sobject,
            action,
            records,
            blob
        ])?;
    }
    Ok(())
}

/// Settle records `first_seq..first_seq + outcomes.len()` of run `runid`
/// (stored by [`insert`]) to `outcomes`: their status, error and, when
/// Salesforce gave one (a created record), their id.
pub fn settle(
    tx: &Transaction<'_>,
    runid: i64,
    first_seq: i64,
    outcomes: &[RecordOutcome],
) -> rusqlite::Result<()> {
    let end = first_seq + outcomes.len() as i64;
    let mut select = tx.prepare_cached(
        "SELECT first_seq, n, records, outcomes FROM run_record_chunk
         WHERE runid = ?1 AND first_seq > ?2 AND first_seq < ?3 ORDER BY first_seq",
    )?;
    let chunks: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = select
        .query_map(params![runid, first_seq - CHUNK as i64, end], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    // `records` only when an id changed (NULL keeps it).
    let mut update = tx.prepare_cached(
        "UPDATE run_record_chunk SET outcomes = ?3, records = coalesce(?4, records)
         WHERE runid = ?1 AND first_seq = ?2",
    )?;
    for (start, n, records_blob, outcomes_blob) in &chunks {
        let (start, n) = (*start, *n);
        // The part of this chunk that `outcomes` covers, in both numberings.
        let lo = first_seq.max(start);
        let hi = end.min(start + n);
        if lo >= hi {
            continue;
        }
        let (in_chunk, in_given) = ((lo - start) as usize, (lo - first_seq) as usize);
        let count = (hi - lo) as usize;
        let given = &outcomes[in_given..in_given + count];

        let mut records = decode_records(records_blob)?;
        if records.len() != n as usize {
            return Err(corrupt("records"));
        }
        let mut ids_changed = false;
        for (slot, o) in records[in_chunk..in_chunk + count].iter_mut().zip(given) {
            if !o.id.is_empty() && slot.0 != o.id {
                slot.0 = &o.id;
                ids_changed = true;
            }
        }
        let records = ids_changed.then(|| encode_records(records.into_iter()));
        let mut each = outcome_per_record(outcomes_blob, n as usize)?;
        for (slot, o) in each[in_chunk..in_chunk + count].iter_mut().zip(given) {
            *slot = Outcome::of(o);
        }
        update.execute(params![
            runid,
            start,
            encode_outcomes(runs(&each).into_iter()),
            records
        ])?;
    }
    Ok(())
}

/// The next free record number of run `runid`, over both stores.
pub fn next_seq(tx: &Transaction<'_>, runid: i64) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM run_record WHERE runid = ?1), 0),
                    coalesce((SELECT max(first_seq + n - 1) FROM run_record_chunk
                              WHERE runid = ?1), 0)) + 1",
        [runid],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_damage_is_an_error() {
        let records =
            encode_records([("003A", None), ("", Some("k,é")), ("003C", Some(""))].into_iter());
        assert_eq!(
            decode_records(&records).expect("records"),
            vec![("003A", None), ("", Some("k,é")), ("003C", Some(""))]
        );
        let long = "x".repeat(300);
        let failed = Outcome {
            status: "failed",
            error_code: Some("STRING_TOO_LONG"),
            message: Some(&long),
            fields: Some("Title,Email".into()),
        };
        let updated = Outcome {
            status: "updated",
            error_code: None,
            message: None,
            fields: None,
        };
        let blob = encode_outcomes([(1_000_000, &updated), (2, &failed)].into_iter());
        let back = decode_outcomes(&blob).expect("outcomes");
        assert_eq!(back, vec![(1_000_000, updated), (2, failed)]);
        // A 1M-record run of one outcome is a few bytes.
        assert!(blob.len() < 400, "{}", blob.len());

        assert!(decode_records(&records[..records.len() - 1]).is_err());
        assert!(decode_records(&[]).is_err());
        assert!(decode_outcomes(&[2, 1]).is_err());
    }

    #[test]
    fn neighbours_that_agree_make_one_run() {
        let a = Outcome {
            status: "updated",
            error_code: None,
            message: None,
            fields: None,
        };
        let b = Outcome {
            status: "failed",
            ..a.clone()
        };
        let each = [a.clone(), a.clone(), b.clone(), a.clone()];
        let counts: Vec<usize> = runs(&each).iter().map(|(n, _)| *n).collect();
        assert_eq!(counts, vec![2, 1, 1]);
    }
}
