//! `BulkIngestWriter`: writes records through Bulk API 2.0 ingest jobs —
//! CSV encoding, one job per upload under the 100 MB limit, polling with
//! backoff, and every record's result read back from the job's successful,
//! failed and unprocessed result files.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SalesforceError;
use super::bulk_csv::{CsvChunks, encode_cell, parse_sf_error};
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
#[derive(Debug, Clone, Default)]
pub struct BulkReport {
    pub results: Vec<BulkRecordResult>,
    pub job_ids: Vec<String>,
    /// Job-info requests made while waiting for jobs to finish.
    pub polls: usize,
    /// Every request the write made (jobs, uploads, polls, results).
    pub calls: usize,
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
        }
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
        if rows.len() > DAILY_RECORD_LIMIT {
            return Err(SalesforceError::Decode {
                connection: self.client.name().to_string(),
                what: "Bulk ingest".into(),
                detail: format!(
                    "{} records exceed Salesforce's {DAILY_RECORD_LIMIT} Bulk records per 24 hours; \
                     split the write by a WHERE condition over several days",
                    rows.len()
                ),
            });
        }
        let mut report = BulkReport {
            // Every row reaches a job or is marked by `run_chunk`; a row its
            // job's results do not list keeps this.
            results: vec![
                BulkRecordResult::Unknown(
                    "Salesforce's results for the job did not list this record".into()
                );
                rows.len()
            ],
            ..BulkReport::default()
        };
        let mut chunks = CsvChunks::new(columns, self.max_upload_bytes);
        let mut keys: HashMap<u64, Vec<usize>> = HashMap::with_capacity(rows.len());
        let mut start = 0;
        let mut stop: Option<String> = None;
        for (i, row) in rows.into_iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| encode_cell(c.as_ref())).collect();
            keys.entry(row_hash(cells.iter().map(String::as_str)))
                .or_default()
                .push(i);
            if let Some(full) = chunks.push(&cells) {
                self.run_chunk(full, start..i, &mut keys, &mut report, &mut stop)
                    .await;
                start = i;
            }
        }
        if let Some(last) = chunks.finish() {
            let end = report.results.len();
            self.run_chunk(last, start..end, &mut keys, &mut report, &mut stop)
                .await;
        }
        Ok(report)
    }

    /// One job for `csv`, holding input rows `range`.
    async fn run_chunk(
        &self,
        csv: Vec<u8>,
        range: std::ops::Range<usize>,
        keys: &mut HashMap<u64, Vec<usize>>,
        report: &mut BulkReport,
        stop: &mut Option<String>,
    ) {
        let mark = |report: &mut BulkReport, result: BulkRecordResult| {
            for r in &mut report.results[range.clone()] {
                *r = result.clone();
            }
        };
        if let Some(reason) = stop {
            mark(report, BulkRecordResult::Unprocessed(reason.clone()));
            return;
        }
        match self.run_job(csv, keys, report).await {
            Ok(()) => {}
            Err((sent, e)) => {
                let message = e.to_string();
                if matches!(
                    e,
                    SalesforceError::LoginFailed { .. } | SalesforceError::MissingSecret { .. }
                ) || e.code() == Some("REQUEST_LIMIT_EXCEEDED")
                {
                    *stop = Some(format!("not sent: an earlier call failed: {message}"));
                }
                mark(
                    report,
                    if sent {
                        BulkRecordResult::Unknown(message)
                    } else {
                        BulkRecordResult::Failed(SaveError {
                            status_code: e.code().unwrap_or("REQUEST_FAILED").to_string(),
                            message,
                            fields: vec![],
                        })
                    },
                );
            }
        }
    }

    /// Create, upload, close, poll, read results. The error says whether the
    /// data had been handed to Salesforce (`true`: outcome unknown).
    async fn run_job(
        &self,
        csv: Vec<u8>,
        keys: &mut HashMap<u64, Vec<usize>>,
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
        let (_, bytes) = client
            .send_payload(Method::POST, "jobs/ingest", Payload::Json(&spec), false)
            .await
            .map_err(before)?;
        // Upload and close follow; polls and result reads count themselves.
        report.calls += 3;
        let job: JobInfo = client.decode("Bulk job", &bytes).map_err(before)?;
        report.job_ids.push(job.id.clone());
        let path = format!("jobs/ingest/{}", job.id);
        client
            .send_payload(
                Method::PUT,
                &format!("{path}/batches"),
                Payload::Csv(csv.into()),
                false,
            )
            .await
            .map_err(before)?;
        let close = json!({ "state": "UploadComplete" });
        let after = |e| (true, e);
        client
            .send_payload(Method::PATCH, &path, Payload::Json(&close), false)
            .await
            .map_err(after)?;
        let info = self.wait(&path, report).await.map_err(after)?;
        let processed = info.number_records_processed;
        let failed = info.number_records_failed;
        if processed > failed {
            self.read_results(&path, "successfulResults", keys, report)
                .await
                .map_err(after)?;
        }
        if failed > 0 {
            self.read_results(&path, "failedResults", keys, report)
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
            self.read_unprocessed(&path, &reason, keys, report)
                .await
                .map_err(after)?;
        }
        Ok(())
    }

    async fn wait(&self, path: &str, report: &mut BulkReport) -> Result<JobInfo, SalesforceError> {
        wait_for_job(&self.client, path, self.poll, |info| {
            report.polls += 1;
            report.calls += 1;
            if let Some(observe) = &self.observer {
                observe(&JobProgress {
                    job_id: info.id.clone(),
                    state: info.state.clone(),
                    processed: info.number_records_processed,
                    failed: info.number_records_failed,
                });
            }
        })
        .await
    }

    async fn fetch_csv(&self, path: &str, kind: &str) -> Result<bytes::Bytes, SalesforceError> {
        let url = format!("{path}/{kind}/");
        let (_, bytes) = self
            .client
            .send_payload(Method::GET, &url, Payload::None, true)
            .await?;
        Ok(bytes)
    }

    /// Assigns each result row to the input row it echoes.
    async fn read_results(
        &self,
        path: &str,
        kind: &str,
        keys: &mut HashMap<u64, Vec<usize>>,
        report: &mut BulkReport,
    ) -> Result<(), SalesforceError> {
        report.calls += 1;
        let bytes = self.fetch_csv(path, kind).await?;
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        for row in reader.records() {
            let row = row.map_err(|e| self.bad_csv(kind, e))?;
            let (Some(first), Some(second)) = (row.get(0), row.get(1)) else {
                continue;
            };
            let Some(index) = take_key(keys, row.iter().skip(2)) else {
                continue;
            };
            report.results[index] = if kind == "successfulResults" {
                BulkRecordResult::Saved {
                    id: first.to_string(),
                    created: second.eq_ignore_ascii_case("true"),
                }
            } else {
                BulkRecordResult::Failed(parse_sf_error(second))
            };
        }
        Ok(())
    }

    async fn read_unprocessed(
        &self,
        path: &str,
        reason: &str,
        keys: &mut HashMap<u64, Vec<usize>>,
        report: &mut BulkReport,
    ) -> Result<(), SalesforceError> {
        report.calls += 1;
        let bytes = self.fetch_csv(path, "unprocessedrecords").await?;
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        for row in reader.records() {
            let row = row.map_err(|e| self.bad_csv("unprocessedrecords", e))?;
            if let Some(index) = take_key(keys, row.iter()) {
                report.results[index] = BulkRecordResult::Unprocessed(reason.to_string());
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
    mut polled: impl FnMut(&JobInfo),
) -> Result<JobInfo, SalesforceError> {
    let started = std::time::Instant::now();
    let mut delay = poll.initial;
    loop {
        let (_, bytes) = client
            .send_payload(Method::GET, path, Payload::None, true)
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

/// The input row whose cells hash like `cells`, removed from the pool so
/// that identical rows are each matched once.
fn take_key<'a>(
    keys: &mut HashMap<u64, Vec<usize>>,
    cells: impl Iterator<Item = &'a str>,
) -> Option<usize> {
    let key = row_hash(cells);
    let pool = keys.get_mut(&key)?;
    let index = pool.pop();
    if pool.is_empty() {
        keys.remove(&key);
    }
    index
}
