//! Bulk API 2.0 resources under `/jobs/ingest` and `/jobs/query`: the jobs
//! of one org, their states (Open → UploadComplete → InProgress →
//! JobComplete / Failed, or Aborted) and job info JSON. Processing happens
//! on the first `GET` of a closed job, which still answers `InProgress`, so
//! clients have to poll as they do against a real org.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::api::Reply;
use super::bulk_ingest::{self, IngestOp, IngestSpec, MAX_UPLOAD_BYTES, Processed};
use super::collections::external_id_field;
use super::error::ApiError;
use super::http::Incoming;
use super::ids::make_id;
use super::org::Org;
use super::schema::schema;
use super::store::format_datetime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }
}

/// What every job's info carries.
#[derive(Debug)]
pub struct JobMeta {
    pub id: String,
    pub object: &'static str,
    pub operation: &'static str,
    pub state: JobState,
    pub created: DateTime<Utc>,
    pub modstamp: DateTime<Utc>,
    pub created_by: String,
    pub api_version: f64,
    pub line_ending: &'static str,
    pub column_delimiter: &'static str,
    pub records_processed: u64,
    pub error_message: Option<String>,
}

impl JobMeta {
    pub fn new(org: &Org, seq: u64, object: &'static str, operation: &'static str) -> JobMeta {
        let now = Utc::now();
        JobMeta {
            id: make_id("750", org.pod, seq),
            object,
            operation,
            state: JobState::Open,
            created: now,
            modstamp: now,
            created_by: org.integration_user.clone(),
            api_version: super::API_VERSION.parse().unwrap_or(62.0),
            line_ending: "LF",
            column_delimiter: "COMMA",
            records_processed: 0,
            error_message: None,
        }
    }

    pub fn set_state(&mut self, state: JobState) {
        self.state = state;
        self.modstamp = Utc::now();
    }

    /// `PATCH` of a job: `{"state":"Aborted"}` while it is not finished,
    /// and `UploadComplete` for an Open ingest job when `closable`.
    pub fn patch_state(&mut self, body: &[u8], closable: bool) -> Result<(), ApiError> {
        let change: StateChange = parse_json(body)?;
        match (self.state, change.state.as_str()) {
            (JobState::Open, "UploadComplete") if closable => {
                self.set_state(JobState::UploadComplete)
            }
            (s, "Aborted") if !s.is_terminal() => self.set_state(JobState::Aborted),
            (s, new) => {
                return Err(invalid_state(format!(
                    "Can't change the state of job {} from {} to {new}",
                    self.id,
                    s.name()
                )));
            }
        }
        Ok(())
    }

    /// A job may be deleted once it is finished (or in state `also`).
    pub fn check_deletable(&self, also: Option<JobState>) -> Result<(), ApiError> {
        if self.state.is_terminal() || Some(self.state) == also {
            return Ok(());
        }
        Err(invalid_state(format!(
            "Job {} is {}; abort it or wait for it to finish before deleting it",
            self.id,
            self.state.name()
        )))
    }

    /// The fields both kinds of job info share.
    pub fn info(&self) -> serde_json::Map<String, Json> {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("operation".into(), json!(self.operation));
        m.insert("object".into(), json!(self.object));
        m.insert("createdById".into(), json!(self.created_by));
        m.insert("createdDate".into(), json!(format_datetime(self.created)));
        m.insert(
            "systemModstamp".into(),
            json!(format_datetime(self.modstamp)),
        );
        m.insert("state".into(), json!(self.state.name()));
        m.insert("concurrencyMode".into(), json!("Parallel"));
        m.insert("contentType".into(), json!("CSV"));
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("lineEnding".into(), json!(self.line_ending));
        m.insert("columnDelimiter".into(), json!(self.column_delimiter));
        if let Some(msg) = &self.error_message {
            m.insert("errorMessage".into(), json!(msg));
        }
        m
    }
}

#[derive(Debug)]
struct IngestJob {
    meta: JobMeta,
    spec: IngestSpec,
    ext_name: Option<&'static str>,
    upload: Option<Vec<u8>>,
    results: Option<Processed>,
}

/// The Bulk jobs of one org.
#[derive(Debug, Default)]
pub struct Jobs {
    ingest: HashMap<String, IngestJob>,
    pub query: super::bulk_query::QueryJobs,
    issued: u64,
}

impl Jobs {
    /// A sequence number for the next job id.
    pub fn next_seq(&mut self) -> u64 {
        self.issued += 1;
        4_000_000 + self.issued * 53
    }

    /// The ingest jobs as a job list shows them (`jobType` V2Ingest).
    pub fn ingest_infos(&self) -> Vec<serde_json::Map<String, Json>> {
        self.ingest
            .values()
            .map(|j| {
                let mut m = j.meta.info();
                m.insert("jobType".into(), json!("V2Ingest"));
                m
            })
            .collect()
    }
}

pub fn invalid_job(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALIDJOB", message)
}

pub fn invalid_state(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALIDJOBSTATE", message)
}

/// The `columnDelimiter` name as a static string (COMMA when unknown).
pub fn delimiter_name(given: &str) -> &'static str {
    static_name(
        &["COMMA", "TAB", "PIPE", "SEMICOLON", "CARET", "BACKQUOTE"],
        given,
    )
    .unwrap_or("COMMA")
}

/// `columnDelimiter` names and their bytes.
pub fn delimiter(name: &str) -> Option<u8> {
    Some(match name {
        "COMMA" => b',',
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => return None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIngest {
    object: String,
    operation: String,
    #[serde(default)]
    external_id_field_name: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    line_ending: Option<String>,
    #[serde(default)]
    column_delimiter: Option<String>,
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::json_parser(e.to_string()))
}

fn static_name(names: &[&'static str], given: &str) -> Option<&'static str> {
    names.iter().copied().find(|n| *n == given)
}

fn create_ingest(org: &Org, body: &[u8]) -> Result<Reply, ApiError> {
    let req: CreateIngest = parse_json(body)?;
    let obj = schema()
        .object_id(&req.object)
        .ok_or_else(|| invalid_job(format!("Unable to find object: {}", req.object)))?;
    let def = schema().object(obj);
    let op = IngestOp::parse(&req.operation).ok_or_else(|| {
        invalid_job(format!(
            "Invalid operation: {}; use insert, update, upsert or delete",
            req.operation
        ))
    })?;
    if req.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(invalid_job("contentType must be CSV"));
    }
    let line_ending = static_name(&["LF", "CRLF"], req.line_ending.as_deref().unwrap_or("LF"))
        .ok_or_else(|| invalid_job("lineEnding must be LF or CRLF"))?;
    let delim_name = req.column_delimiter.as_deref().unwrap_or("COMMA");
    let delim = delimiter(delim_name)
        .ok_or_else(|| invalid_job(format!("Invalid columnDelimiter: {delim_name}")))?;
    let (ext, ext_name) = match (op, req.external_id_field_name.as_deref()) {
        (IngestOp::Upsert, None | Some("")) => {
            return Err(invalid_job(format!(
                "External ID was blank for {}. An External ID must be specified for upsert.",
                def.name
            )));
        }
        (IngestOp::Upsert, Some(name)) => {
            let f = external_id_field(obj, name).map_err(|e| invalid_job(e.message))?;
            (Some(f), Some(def.fields[f].name))
        }
        _ => (None, None),
    };
    let mut jobs = org.bulk_jobs();
    let seq = jobs.next_seq();
    let mut meta = JobMeta::new(org, seq, def.name, op.name());
    meta.line_ending = line_ending;
    meta.column_delimiter = delimiter_name(delim_name);
    let job = IngestJob {
        meta,
        spec: IngestSpec {
            obj,
            op,
            ext,
            delimiter: delim,
        },
        ext_name,
        upload: None,
        results: None,
    };
    let info = ingest_info(&job, false);
    jobs.ingest.insert(job.meta.id.clone(), job);
    Ok(Reply::ok(&info))
}

fn ingest_info(job: &IngestJob, full: bool) -> Json {
    let mut m = job.meta.info();
    if let Some(ext) = job.ext_name {
        m.insert("externalIdFieldName".into(), json!(ext));
    }
    m.insert(
        "contentUrl".into(),
        json!(format!(
            "services/data/v{}/jobs/ingest/{}/batches",
            super::API_VERSION,
            job.meta.id
        )),
    );
    if full {
        let failed = job.results.as_ref().map_or(0, |r| r.records_failed);
        m.insert("jobType".into(), json!("V2Ingest"));
        m.insert(
            "numberRecordsProcessed".into(),
            json!(job.meta.records_processed),
        );
        m.insert("numberRecordsFailed".into(), json!(failed));
        m.insert("retries".into(), json!(0));
        m.insert("totalProcessingTime".into(), json!(0));
        m.insert("apiActiveProcessingTime".into(), json!(0));
        m.insert("apexProcessingTime".into(), json!(0));
    }
    Json::Object(m)
}

#[derive(Deserialize)]
pub struct StateChange {
    pub state: String,
}

/// `/jobs/ingest...`; `segs` follow `ingest`. Returns the reply and the
/// records a processed job handled (for the stats).
pub fn ingest(org: &Org, req: &Incoming, segs: &[&str]) -> Result<(Reply, u64), ApiError> {
    let none = |r: Reply| Ok((r, 0));
    if segs.is_empty() {
        return match req.method {
            Method::POST => none(create_ingest(org, &req.body)?),
            _ => Err(ApiError::method_not_allowed(req.method.as_str(), &["POST"])),
        };
    }
    let mut jobs = org.bulk_jobs();
    let job = jobs
        .ingest
        .get_mut(segs[0])
        .ok_or_else(ApiError::not_found)?;
    match (&req.method, &segs[1..]) {
        (&Method::PUT, ["batches"]) => {
            if job.meta.state != JobState::Open || job.upload.is_some() {
                return Err(invalid_state(format!(
                    "Found multiple contents for job: <{}>, please 'Close' / 'Abort' / 'Delete' \
                     the current Job then create a new Job and make sure the 'content' is only \
                     uploaded once for this job.",
                    job.meta.id
                )));
            }
            if req.body.len() > MAX_UPLOAD_BYTES {
                return Err(invalid_job(format!(
                    "Upload of {} bytes exceeds the limit of {MAX_UPLOAD_BYTES} bytes (100 MB) \
                     per job; split the records over several jobs",
                    req.body.len()
                )));
            }
            job.upload = Some(req.body.to_vec());
            none(Reply::empty(StatusCode::CREATED))
        }
        (&Method::PATCH, []) => {
            job.meta.patch_state(&req.body, true)?;
            none(Reply::ok(&ingest_info(job, false)))
        }
        (&Method::GET, []) => {
            let handled = advance(org, job);
            Ok((Reply::ok(&ingest_info(job, true)), handled))
        }
        (&Method::DELETE, []) => {
            job.meta.check_deletable(Some(JobState::UploadComplete))?;
            let id = job.meta.id.clone();
            jobs.ingest.remove(&id);
            none(Reply::empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, [kind @ ("successfulResults" | "failedResults" | "unprocessedrecords")]) => {
            if !job.meta.state.is_terminal() {
                return Err(invalid_state(format!(
                    "Job {} is {}; results are available once it is JobComplete, Failed or \
                     Aborted",
                    job.meta.id,
                    job.meta.state.name()
                )));
            }
            let body = match (&job.results, *kind) {
                (Some(r), "successfulResults") => r.successful.clone(),
                (Some(r), "failedResults") => r.failed.clone(),
                (Some(r), _) => r.unprocessed.clone(),
                // Aborted before processing: everything uploaded is unprocessed.
                (None, "unprocessedrecords") => job.upload.clone().unwrap_or_default(),
                (None, _) => Vec::new(),
            };
            none(Reply::csv(body))
        }
        _ => Err(ApiError::not_found()),
    }
}

/// One poll: a closed job is processed (answering `InProgress` this time),
/// an `InProgress` one completes. Returns the records processed now.
fn advance(org: &Org, job: &mut IngestJob) -> u64 {
    match job.meta.state {
        JobState::UploadComplete => {
            let processed = match job.upload.take() {
                Some(data) => bulk_ingest::process(org, &job.spec, &data),
                None => Processed {
                    error: Some("InvalidBatch : No data was uploaded for this job".into()),
                    ..Processed::default()
                },
            };
            job.meta.records_processed = processed.records_processed;
            job.meta.error_message = processed.error.clone();
            let handled = processed.records_processed;
            job.results = Some(processed);
            job.meta.set_state(JobState::InProgress);
            handled
        }
        JobState::InProgress => {
            let failed = job.meta.error_message.is_some();
            job.meta.set_state(if failed {
                JobState::Failed
            } else {
                JobState::JobComplete
            });
            0
        }
        _ => 0,
    }
}
