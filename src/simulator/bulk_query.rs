//! Bulk API 2.0 query jobs under `/jobs/query`: create (the SOQL is checked
//! at once, as Salesforce does), poll (UploadComplete → InProgress →
//! JobComplete; the statement runs on the first poll, over a snapshot of
//! the matching rows), results as CSV pages addressed by `Sforce-Locator`,
//! abort and delete; `GET /jobs/query` lists the jobs, 1,000 a page
//! (`queryLocator` in `nextRecordsUrl`). Results render Bulk's CSV formats: `2021-04-14`,
//! `2015-10-19T13:51:35.000Z`, `true`/`false`, an empty field for null,
//! parent fields as `Account.Name` columns.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::api::Reply;
use super::bulk::{JobMeta, JobState, delimiter, invalid_job, parse_json};
use super::error::ApiError;
use super::http::Incoming;
use super::org::Org;
use super::schema::{FieldType, ObjId, schema};
use super::soql::plan::Path;
use super::soql::{self, CompiledQuery, Proj};
use super::store::{Store, Value, format_date};

/// Records per results page when the client sends no `maxRecords`: the
/// simulator's stand-in for Salesforce's response size limit.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// One query job and, once it ran, the rows it found.
#[derive(Debug)]
pub struct QueryJob {
    meta: JobMeta,
    query: Arc<CompiledQuery>,
    all_rows: bool,
    delimiter: u8,
    /// Set on the first poll; `None` while the job has not run.
    rows: Option<Arc<Vec<u32>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    operation: String,
    query: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    line_ending: Option<String>,
    #[serde(default)]
    column_delimiter: Option<String>,
}

fn not_complete(job: &JobMeta) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "JOB_NOT_COMPLETE",
        format!(
            "Job {} is {}; results are available once it is JobComplete",
            job.id,
            job.state.name()
        ),
    )
}

fn create(org: &Org, body: &[u8]) -> Result<Reply, ApiError> {
    let req: CreateQuery = parse_json(body)?;
    let (operation, all_rows) = match req.operation.as_str() {
        "query" => ("query", false),
        "queryAll" => ("queryAll", true),
        other => {
            return Err(invalid_job(format!(
                "Invalid operation: {other}; use query or queryAll"
            )));
        }
    };
    if req.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(invalid_job("contentType must be CSV"));
    }
    let line_ending = match req.line_ending.as_deref().unwrap_or("LF") {
        "LF" => "LF",
        "CRLF" => "CRLF",
        _ => return Err(invalid_job("lineEnding must be LF or CRLF")),
    };
    let delim_name = req.column_delimiter.as_deref().unwrap_or("COMMA");
    let delim = delimiter(delim_name)
        .ok_or_else(|| invalid_job(format!("Invalid columnDelimiter: {delim_name}")))?;
    // Salesforce checks the statement when the job is created: a bad one
    // is a 400 with the same error a REST query gets.
    let parsed = soql::parser::parse(&req.query)?;
    let query = soql::compile(&req.query, &parsed)?;
    let def = schema().object(query.object);
    if let Some(f) = query.projection.iter().find_map(|p| match p {
        Proj::Field(f) if def.fields[*f].ftype == FieldType::Location => Some(*f),
        _ => None,
    }) {
        return Err(invalid_job(format!(
            "Compound field {} is not supported by Bulk API 2.0 queries; select its components",
            def.fields[f].name
        )));
    }
    let mut jobs = org.bulk_jobs();
    let seq = jobs.next_seq();
    let mut meta = JobMeta::new(org, seq, def.name, operation);
    meta.set_state(JobState::UploadComplete);
    meta.line_ending = line_ending;
    meta.column_delimiter = super::bulk::delimiter_name(delim_name);
    let job = QueryJob {
        meta,
        query: Arc::new(query),
        all_rows,
        delimiter: delim,
        rows: None,
    };
    let info = Json::Object(job.meta.info());
    jobs.query.insert(job.meta.id.clone(), job);
    Ok(Reply::ok(&info))
}

fn info(job: &QueryJob) -> Json {
    let mut m = job.meta.info();
    m.insert("jobType".into(), json!("V2Query"));
    m.insert(
        "numberRecordsProcessed".into(),
        json!(job.meta.records_processed),
    );
    m.insert("retries".into(), json!(0));
    m.insert("totalProcessingTime".into(), json!(0));
    Json::Object(m)
}

/// One poll: an UploadComplete job runs its statement (answering
/// `InProgress`), an InProgress one completes or fails.
fn advance(org: &Org, job: &mut QueryJob) {
    match job.meta.state {
        JobState::UploadComplete => {
            if job.query.count_only || job.query.offset > 0 {
                job.meta.error_message = Some(
                    "InvalidBatch : Bulk API 2.0 queries support neither aggregate functions \
                     such as COUNT() nor OFFSET"
                        .into(),
                );
            } else {
                let rows = soql::execute(&org.read(), &job.query, job.all_rows);
                job.meta.records_processed = rows.len() as u64;
                job.rows = Some(Arc::new(rows));
            }
            job.meta.set_state(JobState::InProgress);
        }
        JobState::InProgress => {
            let failed = job.meta.error_message.is_some();
            job.meta.set_state(if failed {
                JobState::Failed
            } else {
                JobState::JobComplete
            });
        }
        _ => {}
    }
}

/// Jobs one page of `GET /jobs/query` lists.
const JOBS_PER_PAGE: usize = 1000;

/// `GET /jobs/query`: every query job of the org (Bulk API 2.0 ones; the
/// simulator has no Bulk API 1.0 jobs, which `jobType=Classic` selects),
/// or with `jobType=V2Ingest` the ingest jobs, ordered by id and paged by
/// the `queryLocator` of `nextRecordsUrl`.
fn list(org: &Org, version: &str, query: &str) -> Result<Reply, ApiError> {
    let mut job_type = None;
    let mut start = 0;
    let mut only_pk_chunking = false;
    let mut mode = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "jobType" => match v.as_ref() {
                "Classic" | "V2Query" | "V2Ingest" => job_type = Some(v.into_owned()),
                other => {
                    return Err(invalid_job(format!(
                        "Invalid jobType: {other}; use Classic, V2Query or V2Ingest"
                    )));
                }
            },
            "isPkChunkingEnabled" => only_pk_chunking = v.eq_ignore_ascii_case("true"),
            "concurrencyMode" => mode = Some(v.to_ascii_lowercase()),
            "queryLocator" if !v.is_empty() => {
                start = decode_locator(&v).ok_or_else(|| {
                    invalid_job("Invalid queryLocator; use the nextRecordsUrl of the previous page")
                })?;
            }
            _ => {}
        }
    }
    let jobs = org.bulk_jobs();
    let mut records: Vec<serde_json::Map<String, Json>> = match job_type.as_deref() {
        // PK chunking and Classic jobs are Bulk API 1.0's; every job here
        // runs in parallel.
        _ if only_pk_chunking || mode.as_deref().is_some_and(|m| m != "parallel") => Vec::new(),
        Some("Classic") => Vec::new(),
        Some("V2Ingest") => jobs.ingest_infos(),
        _ => jobs
            .query
            .values()
            .map(|j| {
                let mut m = j.meta.info();
                m.insert("jobType".into(), json!("V2Query"));
                m
            })
            .collect(),
    };
    drop(jobs);
    records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    if start > records.len() {
        return Err(invalid_job(
            "Invalid queryLocator; use the nextRecordsUrl of the previous page",
        ));
    }
    let end = (start + JOBS_PER_PAGE).min(records.len());
    let next = (end < records.len()).then(|| {
        let mut params = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k != "queryLocator" {
                params.append_pair(&k, &v);
            }
        }
        params.append_pair("queryLocator", &encode_locator(end));
        format!("/services/data/{version}/jobs/query?{}", params.finish())
    });
    Ok(Reply::ok(&json!({
        "done": next.is_none(),
        "records": records.drain(start..end).collect::<Vec<_>>(),
        "nextRecordsUrl": next,
    })))
}

/// `/jobs/query...`; `segs` follow `query`. Returns the reply and the
/// records a results page carried (for the stats).
pub fn route(
    org: &Org,
    req: &Incoming,
    version: &str,
    segs: &[&str],
) -> Result<(Reply, u64), ApiError> {
    let none = |r: Reply| Ok((r, 0));
    if segs.is_empty() {
        return match req.method {
            Method::POST => none(create(org, &req.body)?),
            Method::GET => none(list(org, version, &req.query)?),
            _ => Err(ApiError::method_not_allowed(
                req.method.as_str(),
                &["GET", "POST"],
            )),
        };
    }
    let mut jobs = org.bulk_jobs();
    let job = jobs
        .query
        .get_mut(segs[0])
        .ok_or_else(ApiError::not_found)?;
    match (&req.method, &segs[1..]) {
        (&Method::GET, []) => {
            advance(org, job);
            none(Reply::ok(&info(job)))
        }
        (&Method::PATCH, []) => {
            job.meta.patch_state(&req.body, false)?;
            none(Reply::ok(&Json::Object(job.meta.info())))
        }
        (&Method::DELETE, []) => {
            job.meta.check_deletable(None)?;
            let id = job.meta.id.clone();
            jobs.query.remove(&id);
            none(Reply::empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["results"]) => {
            if job.meta.state != JobState::JobComplete {
                return Err(not_complete(&job.meta));
            }
            let rows = job.rows.clone().unwrap_or_default();
            let (start, max) = page_params(&req.query)?;
            if start > rows.len() {
                return Err(invalid_locator());
            }
            let end = start.saturating_add(max).min(rows.len());
            let body = render_csv(
                &org.read(),
                &job.query,
                &rows[start..end],
                job.delimiter,
                job.meta.line_ending == "CRLF",
            );
            let locator = if end < rows.len() {
                encode_locator(end)
            } else {
                "null".to_string()
            };
            let mut reply = Reply::csv(body);
            reply.headers.push(("Sforce-Locator", locator));
            reply
                .headers
                .push(("Sforce-NumberOfRecords", (end - start).to_string()));
            Ok((reply, (end - start) as u64))
        }
        _ => Err(ApiError::not_found()),
    }
}

fn invalid_locator() -> ApiError {
    invalid_job("Invalid locator; use the Sforce-Locator of the previous results page")
}

/// A locator is the base64 of the offset it starts at, as Salesforce's are.
fn encode_locator(offset: usize) -> String {
    STANDARD_NO_PAD.encode(offset.to_string())
}

fn decode_locator(locator: &str) -> Option<usize> {
    let bytes = STANDARD_NO_PAD.decode(locator.trim_end_matches('=')).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

/// `locator` and `maxRecords` of a results request: where the page starts
/// and how many records it may hold.
fn page_params(query: &str) -> Result<(usize, usize), ApiError> {
    let mut start = 0;
    let mut max = DEFAULT_MAX_RECORDS;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "locator" if !v.is_empty() && v != "null" => {
                start = decode_locator(&v).ok_or_else(invalid_locator)?;
            }
            "maxRecords" => {
                max = v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid_job(format!("maxRecords must be a positive number, not {v}"))
                })?;
            }
            _ => {}
        }
    }
    Ok((start, max))
}

/// The CSV columns of a projection: header and path of each, parent fields
/// as `Account.Name` (one column per name across a polymorphic lookup's
/// targets).
fn columns(obj: ObjId, proj: &[Proj], prefix: &str, out: &mut Vec<(String, Path)>) {
    let def = schema().object(obj);
    for p in proj {
        match p {
            Proj::Field(f) => {
                out.push((format!("{prefix}{}", def.fields[*f].name), Path::Field(*f)))
            }
            Proj::Parent { via, name, targets } => {
                let mut merged: Vec<(String, Vec<(ObjId, Path)>)> = Vec::new();
                for (t, children) in targets {
                    let mut sub = Vec::new();
                    columns(*t, children, &format!("{prefix}{name}."), &mut sub);
                    for (header, path) in sub {
                        match merged.iter_mut().find(|(h, _)| *h == header) {
                            Some((_, paths)) => paths.push((*t, path)),
                            None => merged.push((header, vec![(*t, path)])),
                        }
                    }
                }
                out.extend(
                    merged
                        .into_iter()
                        .map(|(header, targets)| (header, Path::Parent { via: *via, targets })),
                );
            }
        }
    }
}

/// A stored value as a Bulk CSV cell.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(t) => t.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(d) => format_date(*d),
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

fn render_csv(
    store: &Store,
    query: &CompiledQuery,
    rows: &[u32],
    delim: u8,
    crlf: bool,
) -> Vec<u8> {
    let mut cols = Vec::new();
    columns(query.object, &query.projection, "", &mut cols);
    let terminator = if crlf {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    };
    let mut w = csv::WriterBuilder::new()
        .delimiter(delim)
        .terminator(terminator)
        .from_writer(Vec::with_capacity(rows.len() * 64 + 64));
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cols.iter().map(|(h, _)| h.as_str()));
    let mut record = Vec::with_capacity(cols.len());
    for row in rows {
        record.clear();
        record.extend(
            cols.iter()
                .map(|(_, path)| cell(soql::eval::value(store, query.object, *row, path))),
        );
        let _ = w.write_record(&record);
    }
    w.into_inner().unwrap_or_default()
}

/// The query jobs of one org.
pub type QueryJobs = HashMap<String, QueryJob>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_round_trip_as_base64_offsets() {
        assert_eq!(encode_locator(10000), "MTAwMDA");
        assert_eq!(decode_locator("MTAwMDA"), Some(10000));
        assert_eq!(decode_locator("MTAwMDA="), Some(10000));
        assert_eq!(decode_locator("%%"), None);
        assert_eq!(
            page_params("locator=MjAwMA&maxRecords=5").ok(),
            Some((2000, 5))
        );
        assert_eq!(page_params("").ok(), Some((0, DEFAULT_MAX_RECORDS)));
        assert!(page_params("maxRecords=0").is_err());
    }
}
