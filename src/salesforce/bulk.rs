//! `BulkIngestWriter`: writes records through Bulk API 2.0 ingest jobs —
//! CSV encoding, one job per upload under the 100 MB limit, polling with
//! backoff, and every record's result read back from the job's successful,
//! failed and unprocessed result files.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SalesforceError;
use super::bulk_csv::{CsvChunks, encode_cell_into, parse_sf_error};
use super::client::{Payload, SalesforceClient};
use super::types::SaveError;

/// Raw CSV one job may take (Salesforce: 150 MB base64-encoded, 100 MB raw).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;
/// Records Salesforce accepts through Bulk ingest per rolling 24 hours.
pub const DAILY_RECORD_LIMIT: usize = 150_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperation {
    Insert,
    Update,
    Upsert,
    Delete,
}

impl BulkOperation {
    pub fn name(self) -> &'static str {
        match self {
            BulkOperation::Insert => "insert",
            BulkOperation::Update => "update",
            BulkOperation::Upsert => "upsert",
            BulkOperation::Delete => "delete",
        }
    }
}

/// How often a job's state is polled: `initial`, growing by half each poll
/// up to `max`, for at most `timeout` per job.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            timeout: Duration::from_secs(4 * 60 * 60),
        }
    }
}

/// What became of one record written through Bulk.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkRecordResult {
    /// `created` is true for inserts and upserts that created the record.
    Saved {
        id: String,
        created: bool,
    },
    Failed(SaveError),
    /// Never attempted (the job failed or was aborted, or an earlier job
    /// failed in a way that stops the write).
    Unprocessed(String),
    /// Sent, but whether Salesforce applied it is not known.
    Unknown(String),
}

/// Results of one `write`, one per record in input order, and the cost.
/// [`BulkIngestWriter::write_jobs`] leaves `results` empty: it hands each
/// job's results to its [`JobEvents`] instead.
#[derive(Debug, Clone, Default)]
pub struct BulkReport {
    pub results: Vec<BulkRecordResult>,
    pub job_ids: Vec<String>,
    /// Job-info requests made while waiting for jobs to finish.
    pub polls: usize,
    /// Every request the write made (jobs, uploads, polls, results).
    pub calls: usize,
}

/// One record's result as a job holds it: small, with the texts that
/// every record of a job shares (why it was not processed, the job's
/// failure) kept once per job.
#[derive(Debug, Clone)]
enum Slot {
    /// Not (yet) listed in the job's results.
    Unlisted,
    /// The Id is kept for inserts and upserts (and when asked for).
    Saved {
        id: Option<Box<str>>,
        created: bool,
    },
    Failed(Box<SaveError>),
    /// [`JobResults::reason`].
    Unprocessed,
    /// [`JobResults::reason`].
    Unknown,
    /// [`JobResults::job_error`].
    JobFailed,
}

/// The results of the rows of one job, in input order.
#[derive(Debug, Clone)]
pub struct JobResults {
    slots: Vec<Slot>,
    reason: String,
    job_error: Option<SaveError>,
}

const UNLISTED: &str = "Salesforce's results for the job did not list this record";

impl JobResults {
    fn new(rows: usize) -> JobResults {
        JobResults {
            slots: vec![Slot::Unlisted; rows],
            reason: String::new(),
            job_error: None,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The result of the job's `i`th row.
    pub fn get(&self, i: usize) -> BulkRecordResult {
        match &self.slots[i] {
            Slot::Unlisted => BulkRecordResult::Unknown(UNLISTED.to_string()),
            Slot::Saved { id, created } => BulkRecordResult::Saved {
                id: id.as_deref().unwrap_or_default().to_string(),
                created: *created,
            },
            Slot::Failed(e) => BulkRecordResult::Failed(SaveError::clone(e)),
            Slot::Unprocessed => BulkRecordResult::Unprocessed(self.reason.clone()),
            Slot::Unknown => BulkRecordResult::Unknown(self.reason.clone()),
            Slot::JobFailed => {
                BulkRecordResult::Failed(self.job_error.clone().unwrap_or_else(|| SaveError {
                    status_code: "REQUEST_FAILED".into(),
                    message: String::new(),
                    fields: vec![],
                }))
            }
        }
    }

    /// Every row ends as `result` (a job that stopped as a whole).
    fn mark_all(&mut self, result: BulkRecordResult) {
        let slot = match result {
            BulkRecordResult::Unprocessed(reason) => {
                self.reason = reason;
                Slot::Unprocessed
            }
            BulkRecordResult::Unknown(reason) => {
                self.reason = reason;
                Slot::Unknown
            }
            BulkRecordResult::Failed(e) => {
                self.job_error = Some(e);
                Slot::JobFailed
            }
            BulkRecordResult::Saved { id, created } => Slot::Saved {
                id: Some(id.into()),
                created,
            },
        };
        self.slots.fill(slot);
    }
}

/// What a streaming write ([`BulkIngestWriter::write_jobs`]) tells its
/// caller about each job, so that no more than one job's results are held.
pub trait JobEvents: Send {
    /// Input rows `rows` go out in a job now (nothing is sent before this).
    fn sending(&mut self, rows: std::ops::Range<usize>);
    /// The final results of input rows `rows`, after `calls` requests for
    /// their job. Rows of a job never started (an earlier job stopped the
    /// write) come here without `sending`.
    fn finished(&mut self, rows: std::ops::Range<usize>, results: JobResults, calls: usize);
}

/// [`JobEvents`] that keep every result, for [`BulkIngestWriter::write`].
struct Collect(Vec<BulkRecordResult>);

impl JobEvents for Collect {
    fn sending(&mut self, _rows: std::ops::Range<usize>) {}

    fn finished(&mut self, _rows: std::ops::Range<usize>, results: JobResults, _calls: usize) {
        self.0.extend((0..results.len()).map(|i| results.get(i)));
    }
}

/// The fields of a Bulk job's info that the client reads (ingest and query).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobInfo {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub number_records_processed: u64,
    #[serde(default)]
    pub number_records_failed: u64,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl JobInfo {
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "JobComplete" | "Failed" | "Aborted")
    }
}

pub struct BulkIngestWriter {
    client: Arc<SalesforceClient>,
    object: String,
    operation: BulkOperation,
    external_id_field: Option<String>,
    max_upload_bytes: usize,
    poll: PollPolicy,
    observer: Option<JobObserver>,
    /// Keep the Id Salesforce reports for records that are saved (inserts
    /// and upserts always keep it).
    saved_ids: bool,
}

/// What one poll of a Bulk job said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    pub job_id: String,
    pub state: String,
    pub processed: u64,
    pub failed: u64,
}

/// Told of every poll of a running job (progress for the user).
pub type JobObserver = Arc<dyn Fn(&JobProgress) + Send + Sync>;

/// A key for matching a result row's echoed columns to the input row.
fn row_hash<'a>(cells: impl Iterator<Item = &'a str>) -> u64 {
    let mut h = DefaultHasher::new();
    for c in cells {
        c.hash(&mut h);
    }
    h.finish()
}

/// One cell of an upload row, borrowed from where the write holds it.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// Text as it is (a record Id).
    Text(&'a str),
    /// A field value, encoded by Bulk's rules (`#N/A` clears the field).
    Value(&'a Value),
}

impl BulkIngestWriter {
    pub fn new(client: Arc<SalesforceClient>, object: &str, operation: BulkOperation) -> Self {
        BulkIngestWriter {
            client,
            object: object.to_string(),
            operation,
            external_id_field: None,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            poll: PollPolicy::default(),
            observer: None,
            saved_ids: true,
        }
    }

    /// Whether results of updates and deletes carry the saved record's Id
    /// (the caller may know it already: it sent it).
    pub fn saved_ids(mut self, keep: bool) -> Self {
        self.saved_ids = keep;
        self
    }

    /// `observer` hears each poll of each job this writer runs.
    pub fn observe(mut self, observer: JobObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The field an upsert matches on.
    pub fn external_id(mut self, field: &str) -> Self {
        self.external_id_field = Some(field.to_string());
        self
    }

    /// A smaller upload limit (tests exercise splitting with it).
    pub fn max_upload_bytes(mut self, bytes: usize) -> Self {
        self.max_upload_bytes = bytes.min(MAX_UPLOAD_BYTES);
        self
    }

    pub fn poll(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }

    /// Writes `rows` (one cell per column: `None` leaves the field as it is,
    /// `Some(Null)` clears it). Request-level failures become per-record
    /// results; the error is returned only when nothing could be attempted.
    pub async fn write(
        &self,
        columns: &[String],
        rows: Vec<Vec<Option<Value>>>,
    ) -> Result<BulkReport, SalesforceError> {
        let mut all = Collect(Vec::with_capacity(rows.len()));
        let mut cells = rows
            .iter()
            .map(|row| row.iter().map(|c| c.as_ref().map(Cell::Value)).collect());
        let mut report = self.write_jobs(columns, &mut cells, &mut all).await?;
        report.results = all.0;
        Ok(report)
    }

    /// [`write`](Self::write) that streams: rows are encoded as they come,
    /// and each job's results go to `events` as soon as the job is read
    /// back, so memory holds one upload and one job's results at a time.
    pub async fn write_jobs(
        &self,
        columns: &[String],
        rows: &mut (dyn ExactSizeIterator<Item = Vec<Option<Cell<'_>>>> + Send),
        events: &mut dyn JobEvents,
    ) -> Result<BulkReport, SalesforceError> {
        let total = rows.len();
        if total > DAILY_RECORD_LIMIT {
            return Err(SalesforceError::Decode {
                connection: self.client.name().to_string(),
                what: "Bulk ingest".into(),
                detail: format!(
                    "{total} records exceed Salesforce's {DAILY_RECORD_LIMIT} Bulk records per 24 hours; \
                     split the write by a WHERE condition over several days"
                ),
            });
        }
        let mut report = BulkReport::default();
        let mut chunks = CsvChunks::new(columns, self.max_upload_bytes);
        // The rows of the job being filled, by the hash of their cells.
        let mut keys = KeyPool::default();
        let mut start = 0;
        let mut stop: Option<String> = None;
        // One buffer per column, reused row after row.
        let mut cells: Vec<String> = Vec::new();
        for (i, row) in rows.enumerate() {
            cells.resize_with(row.len(), String::new);
            for (cell, value) in cells.iter_mut().zip(&row) {
                encode_cell_into(*value, cell);
            }
            let hash = row_hash(cells.iter().map(String::as_str));
            if let Some(full) = chunks.push(&cells) {
                let job_keys = std::mem::take(&mut keys);
                self.run_chunk(full, start..i, job_keys, events, &mut report, &mut stop)
                    .await;
                start = i;
            }
            keys.push(hash);
        }
        if let Some(last) = chunks.finish() {
            self.run_chunk(last, start..total, keys, events, &mut report, &mut stop)
                .await;
        }
        Ok(report)
    }

    /// One job for `csv`, holding input rows `range`.
    async fn run_chunk(
        &self,
        csv: Vec<u8>,
        range: std::ops::Range<usize>,
        mut keys: KeyPool,
        events: &mut dyn JobEvents,
        report: &mut BulkReport,
        stop: &mut Option<String>,
    ) {
        let mut results = JobResults::new(range.len());
        if let Some(reason) = stop {
            drop(csv);
            results.mark_all(BulkRecordResult::Unprocessed(reason.clone()));
            events.finished(range, results, 0);
            return;
        }
        events.sending(range.clone());
        let calls_before = report.calls;
        if let Err((sent, e)) = self.run_job(csv, &mut keys, &mut results, report).await {
            let message = e.to_string();
            if matches!(
                e,
                SalesforceError::LoginFailed { .. } | SalesforceError::MissingSecret { .. }
            ) || e.code() == Some("REQUEST_LIMIT_EXCEEDED")
            {
                *stop = Some(format!("not sent: an earlier call failed: {message}"));
            }
            results.mark_all(if sent {
                BulkRecordResult::Unknown(message)
            } else {
                BulkRecordResult::Failed(SaveError {
                    status_code: e.code().unwrap_or("REQUEST_FAILED").to_string(),
                    message,
                    fields: vec![],
                })
            });
        }
        drop(keys);
        events.finished(range, results, report.calls - calls_before);
    }

    /// Create, upload, close, poll, read results. The error says whether the
    /// data had been handed to Salesforce (`true`: outcome unknown).
    async fn run_job(
        &self,
        csv: Vec<u8>,
        keys: &mut KeyPool,
        results: &mut JobResults,
        report: &mut BulkReport,
    ) -> Result<(), (bool, SalesforceError)> {
        let client = &self.client;
        let mut spec = json!({
            "object": self.object,
            "operation": self.operation.name(),
            "contentType": "CSV",
            "lineEnding": "LF",
        });
        if let Some(ext) = &self.external_id_field {
            spec["externalIdFieldName"] = json!(ext);
        }
        let before = |e| (false, e);
        // Every send counts, a request sent again after a refusal too.
        let (_, bytes) = client
            .send_counted(
                Method::POST,
                "jobs/ingest",
                Payload::Json(&spec),
                false,
                &mut report.calls,
            )
            .await
            .map_err(before)?;
        let job: JobInfo = client.decode("Bulk job", &bytes).map_err(before)?;
        report.job_ids.push(job.id.clone());
        let path = format!("jobs/ingest/{}", job.id);
        client
            .send_counted(
                Method::PUT,
                &format!("{path}/batches"),
                Payload::Csv(csv.into()),
                false,
                &mut report.calls,
            )
            .await
            .map_err(before)?;
        let close = json!({ "state": "UploadComplete" });
        let after = |e| (true, e);
        client
            .send_counted(
                Method::PATCH,
                &path,
                Payload::Json(&close),
                false,
                &mut report.calls,
            )
            .await
            .map_err(after)?;
        let info = self.wait(&path, report).await.map_err(after)?;
        let processed = info.number_records_processed;
        let failed = info.number_records_failed;
        if processed > failed {
            self.read_results(&path, "successfulResults", keys, results, report)
                .await
                .map_err(after)?;
        }
        if failed > 0 {
            self.read_results(&path, "failedResults", keys, results, report)
                .await
                .map_err(after)?;
        }
        if info.state != "JobComplete" {
            let reason = format!(
                "Bulk job {} ended {}: {}",
                info.id,
                info.state,
                info.error_message.as_deref().unwrap_or("no message")
            );
            self.read_unprocessed(&path, reason, keys, results, report)
                .await
                .map_err(after)?;
        }
        Ok(())
    }

    async fn wait(&self, path: &str, report: &mut BulkReport) -> Result<JobInfo, SalesforceError> {
        let mut calls = 0;
        let info = wait_for_job(&self.client, path, self.poll, &mut calls, |info| {
            report.polls += 1;
            if let Some(observe) = &self.observer {
                observe(&JobProgress {
                    job_id: info.id.clone(),
                    state: info.state.clone(),
                    processed: info.number_records_processed,
                    failed: info.number_records_failed,
                });
            }
        })
        .await;
        report.calls += calls;
        info
    }

    async fn fetch_csv(
        &self,
        path: &str,
        kind: &str,
        calls: &mut usize,
    ) -> Result<bytes::Bytes, SalesforceError> {
        let url = format!("{path}/{kind}/");
        let (_, bytes) = self
            .client
            .send_counted(Method::GET, &url, Payload::None, true, calls)
            .await?;
        Ok(bytes)
    }

    /// Assigns each result row to the input row it echoes.
    async fn read_results(
        &self,
        path: &str,
        kind: &str,
        keys: &mut KeyPool,
        results: &mut JobResults,
        report: &mut BulkReport,
    ) -> Result<(), SalesforceError> {
        let bytes = self.fetch_csv(path, kind, &mut report.calls).await?;
        let keep_id = self.saved_ids
            || matches!(
                self.operation,
                BulkOperation::Insert | BulkOperation::Upsert
            );
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        let mut row = csv::StringRecord::new();
        while reader
            .read_record(&mut row)
            .map_err(|e| self.bad_csv(kind, e))?
        {
            let (Some(first), Some(second)) = (row.get(0), row.get(1)) else {
                continue;
            };
            let Some(index) = keys.take(row.iter().skip(2)) else {
                continue;
            };
            results.slots[index] = if kind == "successfulResults" {
                Slot::Saved {
                    id: keep_id.then(|| first.into()),
                    created: second.eq_ignore_ascii_case("true"),
                }
            } else {
                Slot::Failed(Box::new(parse_sf_error(second)))
            };
        }
        Ok(())
    }

    async fn read_unprocessed(
        &self,
        path: &str,
        reason: String,
        keys: &mut KeyPool,
        results: &mut JobResults,
        report: &mut BulkReport,
    ) -> Result<(), SalesforceError> {
        let bytes = self
            .fetch_csv(path, "unprocessedrecords", &mut report.calls)
            .await?;
        results.reason = reason;
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        let mut row = csv::StringRecord::new();
        while reader
            .read_record(&mut row)
            .map_err(|e| self.bad_csv("unprocessedrecords", e))?
        {
            if let Some(index) = keys.take(row.iter()) {
                results.slots[index] = Slot::Unprocessed;
            }
        }
        Ok(())
    }

    fn bad_csv(&self, kind: &str, e: csv::Error) -> SalesforceError {
        SalesforceError::Decode {
            connection: self.client.name().to_string(),
            what: format!("Bulk {kind}"),
            detail: e.to_string(),
        }
    }
}

/// Poll the job at `path` (`jobs/ingest/{id}` or `jobs/query/{id}`) until
/// it is finished, per `poll`; `polled` runs after each request.
pub(super) async fn wait_for_job(
    client: &SalesforceClient,
    path: &str,
    poll: PollPolicy,
    calls: &mut usize,
    mut polled: impl FnMut(&JobInfo),
) -> Result<JobInfo, SalesforceError> {
    let started = std::time::Instant::now();
    let mut delay = poll.initial;
    loop {
        let (_, bytes) = client
            .send_counted(Method::GET, path, Payload::None, true, calls)
            .await?;
        let info: JobInfo = client.decode("Bulk job info", &bytes)?;
        polled(&info);
        if info.is_finished() {
            return Ok(info);
        }
        if started.elapsed() > poll.timeout {
            return Err(SalesforceError::Decode {
                connection: client.name().to_string(),
                what: "Bulk job".into(),
                detail: format!(
                    "job {} still {} after {:?}; see it in Setup > Bulk Data Load Jobs",
                    info.id, info.state, poll.timeout
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay + delay / 2).min(poll.max);
    }
}

/// The rows of one job by the hash of their cells: how result rows, which
/// echo the input, find their row, each row matched once (identical rows
/// too). Salesforce writes a result file in upload order as a rule, not a
/// promise: the row after the last one matched is tried first, and only a
/// miss searches a pool sorted by hash (built at the first miss).
#[derive(Debug, Default)]
struct KeyPool {
    /// The hash of each row's cells, by row.
    hashes: Vec<u64>,
    /// Rows already matched to a result row.
    taken: Vec<bool>,
    /// The row tried first: the one after the last matched.
    next: usize,
    /// (hash, row), sorted; built at the first miss of the in-order guess.
    sorted: Option<Vec<(u64, u32)>>,
}

impl KeyPool {
    fn push(&mut self, hash: u64) {
        self.hashes.push(hash);
        self.taken.push(false);
    }

    /// The untaken row whose cells hash like `cells`, now taken.
    fn take<'a>(&mut self, cells: impl Iterator<Item = &'a str>) -> Option<usize> {
        let key = row_hash(cells);
        let next = self.next;
        let row = if self.hashes.get(next) == Some(&key) && !self.taken[next] {
            next
        } else {
            let hashes = &self.hashes;
            let sorted = self.sorted.get_or_insert_with(|| {
                let mut pool: Vec<(u64, u32)> = hashes
                    .iter()
                    .enumerate()
                    .map(|(row, h)| (*h, row as u32))
                    .collect();
                pool.sort_unstable();
                pool
            });
            let first = sorted.partition_point(|(h, _)| *h < key);
            sorted[first..]
                .iter()
                .take_while(|(h, _)| *h == key)
                .map(|(_, row)| *row as usize)
                .find(|row| !self.taken[*row])?
        };
        self.taken[row] = true;
        self.next = row + 1;
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(rows: &[&str]) -> KeyPool {
        let mut pool = KeyPool::default();
        for r in rows {
            pool.push(row_hash(std::iter::once(*r)));
        }
        pool
    }

    #[test]
    fn result_rows_find_their_row_in_order_out_of_order_and_once() {
        let mut keys = pool(&["a", "b", "a", "c"]);
        // In upload order: each guess hits, no sorted pool is built.
        assert_eq!(keys.take(std::iter::once("a")), Some(0));
        assert_eq!(keys.take(std::iter::once("b")), Some(1));
        assert!(keys.sorted.is_none());
        // Out of order: found through the pool, and the guess goes on from there.
        assert_eq!(keys.take(std::iter::once("c")), Some(3));
        assert!(keys.sorted.is_some());
        // Identical rows are each matched once.
        assert_eq!(keys.take(std::iter::once("a")), Some(2));
        assert_eq!(keys.take(std::iter::once("a")), None);
        assert_eq!(keys.take(std::iter::once("zzz")), None);
    }
}
