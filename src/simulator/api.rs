//! The versioned REST resources under `/services/data/vXX.X`: auth and API
//! usage checks, routing to describe, query, limits and Collections, and
//! `POST /composite`, whose subrequests go through the same routing.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::API_VERSION;
use super::analytics;
use super::auth;
use super::bulk;
use super::bulk_query;
use super::collections::{self, Operation};
use super::describe;
use super::error::ApiError;
use super::http::{Incoming, count};
use super::org::Sim;
use super::query;
use super::stats::RequestKind;

/// Subrequests one composite request may carry.
const MAX_SUBREQUESTS: usize = 25;
/// Of those, query and sObject Collections subrequests.
const MAX_QUERY_SUBREQUESTS: usize = 5;

/// A JSON response body with its status.
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// `application/json` except for Bulk CSV results.
    pub content_type: &'static str,
    /// Extra response headers (Bulk query's `Sforce-Locator`).
    pub headers: Vec<(&'static str, String)>,
    /// Served, but the connection is cut before the answer arrives
    /// (`/__sim/drop_next_response`).
    pub cut_off: bool,
}

impl Reply {
    pub fn bytes(status: StatusCode, body: Vec<u8>) -> Reply {
        Reply {
            status,
            body,
            content_type: "application/json;charset=UTF-8",
            headers: Vec::new(),
            cut_off: false,
        }
    }

    fn json(status: StatusCode, body: &impl serde::Serialize) -> Reply {
        Reply::bytes(
            status,
            serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec()),
        )
    }

    pub fn ok(body: &impl serde::Serialize) -> Reply {
        Reply::json(StatusCode::OK, body)
    }

    /// A response without a body (201 after an upload, 204 after a delete).
    pub fn empty(status: StatusCode) -> Reply {
        Reply::bytes(status, Vec::new())
    }

    /// A CSV body, as Bulk results come.
    pub fn csv(body: Vec<u8>) -> Reply {
        Reply {
            content_type: "text/csv",
            ..Reply::bytes(StatusCode::OK, body)
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status, &e.body())
    }
}

/// The resource a `/services/data/vXX.X/...` path names, for counting.
fn kind_of(method: &Method, rest: &[&str]) -> RequestKind {
    match rest {
        [] => RequestKind::Resources,
        ["sobjects"] => RequestKind::DescribeGlobal,
        ["sobjects", _, "describe"] => RequestKind::Describe,
        ["sobjects", _] => RequestKind::SObjectInfo,
        ["sobjects", _, _, _] => RequestKind::BlobRetrieve,
        ["analytics", "reports"] => RequestKind::ReportList,
        ["analytics", "reports", _, "describe"] => RequestKind::ReportDescribe,
        ["analytics", "reports", _] => RequestKind::ReportRun,
        ["query"] => RequestKind::Query,
        ["queryAll"] => RequestKind::QueryAll,
        ["query" | "queryAll", _] => RequestKind::QueryMore,
        ["limits"] => RequestKind::Limits,
        ["composite"] => RequestKind::Composite,
        ["composite", "sobjects"] if method == Method::POST => RequestKind::CollectionsCreate,
        ["composite", "sobjects"] if method == Method::DELETE => RequestKind::CollectionsDelete,
        ["composite", "sobjects"] => RequestKind::CollectionsUpdate,
        ["composite", "sobjects", _, _] => RequestKind::CollectionsUpsert,
        ["jobs", "ingest"] => RequestKind::BulkIngestCreate,
        ["jobs", "ingest", _] if method == Method::GET => RequestKind::BulkIngestInfo,
        ["jobs", "ingest", _] => RequestKind::BulkIngestState,
        ["jobs", "ingest", _, "batches"] => RequestKind::BulkIngestUpload,
        ["jobs", "ingest", _, _] => RequestKind::BulkIngestResults,
        ["jobs", "query"] if method == Method::GET => RequestKind::BulkQueryList,
        ["jobs", "query"] => RequestKind::BulkQueryCreate,
        ["jobs", "query", _] if method == Method::GET => RequestKind::BulkQueryInfo,
        ["jobs", "query", _] => RequestKind::BulkQueryState,
        ["jobs", "query", _, _] => RequestKind::BulkQueryResults,
        _ => RequestKind::NotFound,
    }
}

/// `v62.0` and older versions Salesforce still serves.
fn supported_version(v: &str) -> bool {
    let Some(num) = v.strip_prefix('v') else {
        return false;
    };
    let max: f64 = API_VERSION.parse().unwrap_or(62.0);
    num.split_once('.').is_some_and(|(a, b)| {
        a.len() == 2 && b.len() == 1 && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    }) && num.parse::<f64>().is_ok_and(|n| (20.0..=max).contains(&n))
}

fn versions() -> Json {
    json!([{
        "label": "Winter '25",
        "url": format!("/services/data/v{API_VERSION}"),
        "version": API_VERSION,
    }])
}

/// `/services/data/...` of org `org`; `segs` are the path segments after `data`.
pub fn data_route(sim: &Sim, org: usize, req: &Incoming, segs: &[&str]) -> Reply {
    let Some((version, rest)) = segs.split_first() else {
        count(sim, org, RequestKind::Versions);
        return Reply::ok(&versions());
    };
    let kind = if supported_version(version) {
        kind_of(&req.method, rest)
    } else {
        RequestKind::NotFound
    };
    count(sim, org, kind);
    if let Err(e) = auth::check_bearer(sim, org, &req.headers) {
        return e.into();
    }
    if sim.orgs[org].use_api() > sim.config.daily_api_limit {
        return ApiError::limit_exceeded().into();
    }
    if let Some(fault) = sim.orgs[org].next_fault(kind) {
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Reply::json(
            status,
            &json!([{ "message": fault.message, "errorCode": fault.code }]),
        );
    }
    let mut reply = resource(sim, org, req, version, rest, kind).unwrap_or_else(Reply::from);
    reply.cut_off = sim.orgs[org].take_drop(kind);
    reply
}

fn require(method: &Method, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        Err(ApiError::method_not_allowed(method.as_str(), &names))
    }
}

fn resource(
    sim: &Sim,
    org: usize,
    req: &Incoming,
    version: &str,
    rest: &[&str],
    kind: RequestKind,
) -> Result<Reply, ApiError> {
    let o = &sim.orgs[org];
    let get_only = || require(&req.method, &[Method::GET]);
    match kind {
        RequestKind::Resources => {
            get_only()?;
            let base = format!("/services/data/{version}");
            Ok(Reply::ok(&json!({
                "sobjects": format!("{base}/sobjects"),
                "query": format!("{base}/query"),
                "queryAll": format!("{base}/queryAll"),
                "limits": format!("{base}/limits"),
                "composite": format!("{base}/composite"),
                "jobs": format!("{base}/jobs"),
            })))
        }
        RequestKind::DescribeGlobal => {
            get_only()?;
            Ok(Reply::ok(&describe::describe_global(version)))
        }
        RequestKind::Describe => {
            get_only()?;
            Ok(Reply::ok(&describe::describe(version, rest[1])?))
        }
        RequestKind::SObjectInfo => {
            get_only()?;
            Ok(Reply::ok(&describe::sobject_info(version, rest[1])?))
        }
        RequestKind::ReportList => {
            get_only()?;
            Ok(Reply::ok(&analytics::list(version)))
        }
        RequestKind::ReportDescribe => {
            get_only()?;
            Ok(Reply::ok(&analytics::describe(rest[2])?))
        }
        RequestKind::ReportRun => {
            require(&req.method, &[Method::GET, Method::POST])?;
            let details = url::form_urlencoded::parse(req.query.as_bytes())
                .any(|(k, v)| k == "includeDetails" && v.eq_ignore_ascii_case("true"));
            // POST runs it with the body's reportMetadata (its filters).
            let body: Json = if req.method == Method::POST {
                serde_json::from_slice(&req.body)
                    .map_err(|e| ApiError::json_parser(e.to_string()))?
            } else {
                Json::Null
            };
            let run = analytics::run(o, version, rest[2], details, &body["reportMetadata"])?;
            let rows = run["factMap"]["T!T"]["rows"].as_array().map_or(0, Vec::len);
            o.stats().report_rows_returned += rows as u64;
            Ok(Reply::ok(&run))
        }
        RequestKind::BlobRetrieve => {
            get_only()?;
            let body = query::blob(o, rest[1], rest[2], rest[3])?;
            Ok(Reply {
                content_type: "application/octet-stream",
                ..Reply::bytes(StatusCode::OK, body)
            })
        }
        RequestKind::Query | RequestKind::QueryAll => {
            get_only()?;
            let q = url::form_urlencoded::parse(req.query.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| {
                    ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
                })?;
            let batch = query::batch_size(&req.headers);
            let reply = query::run(o, version, &q, kind == RequestKind::QueryAll, batch)?;
            o.stats().records_returned += reply.records as u64;
            Ok(Reply::bytes(StatusCode::OK, reply.body))
        }
        RequestKind::QueryMore => {
            get_only()?;
            let reply = query::more(o, version, rest[1])?;
            o.stats().records_returned += reply.records as u64;
            Ok(Reply::bytes(StatusCode::OK, reply.body))
        }
        RequestKind::Limits => {
            get_only()?;
            let max = sim.config.daily_api_limit;
            Ok(Reply::ok(&json!({
                "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(o.api_used()) },
                "DailyBulkApiBatches": { "Max": 15000, "Remaining": 15000 },
                "DailyBulkV2QueryJobs": { "Max": 10000, "Remaining": 10000 },
                "DataStorageMB": { "Max": 1024, "Remaining": 1000 },
            })))
        }
        RequestKind::CollectionsCreate
        | RequestKind::CollectionsUpdate
        | RequestKind::CollectionsDelete => {
            require(&req.method, &[Method::POST, Method::PATCH, Method::DELETE])?;
            let (results, n) = match kind {
                RequestKind::CollectionsCreate => {
                    collections::save(o, Operation::Create, &req.body)?
                }
                RequestKind::CollectionsUpdate => {
                    collections::save(o, Operation::Update, &req.body)?
                }
                _ => collections::delete(o, &req.query)?,
            };
            o.stats().records_written += n as u64;
            Ok(Reply::ok(&results))
        }
        RequestKind::CollectionsUpsert => {
            require(&req.method, &[Method::PATCH])?;
            let (results, n) = collections::upsert(o, rest[2], rest[3], &req.body)?;
            o.stats().records_written += n as u64;
            Ok(Reply::ok(&results))
        }
        RequestKind::Composite => {
            require(&req.method, &[Method::POST])?;
            composite(sim, org, req)
        }
        RequestKind::BulkIngestCreate
        | RequestKind::BulkIngestUpload
        | RequestKind::BulkIngestState
        | RequestKind::BulkIngestInfo
        | RequestKind::BulkIngestResults => {
            let (reply, records) = bulk::ingest(o, req, &rest[2..])?;
            o.stats().bulk_records_processed += records;
            Ok(reply)
        }
        RequestKind::BulkQueryCreate
        | RequestKind::BulkQueryList
        | RequestKind::BulkQueryInfo
        | RequestKind::BulkQueryState
        | RequestKind::BulkQueryResults => {
            let (reply, records) = bulk_query::route(o, req, version, &rest[2..])?;
            o.stats().records_returned += records;
            Ok(reply)
        }
        _ => Err(ApiError::not_found()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subrequest {
    method: String,
    url: String,
    reference_id: String,
    #[serde(default)]
    body: Option<Json>,
    /// Headers of this subrequest only (`Sforce-Query-Options`).
    #[serde(default)]
    http_headers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeBody {
    composite_request: Vec<Subrequest>,
    /// `collateSubrequests` is accepted and ignored: subrequests always
    /// run in order here.
    #[serde(default)]
    all_or_none: bool,
}

/// Headers a subrequest inherits from the composite request and may not set.
const INHERITED_HEADERS: [&str; 3] = ["accept", "authorization", "content-type"];

/// Subrequests that count against [`MAX_QUERY_SUBREQUESTS`].
fn is_query_or_collections(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Query
            | RequestKind::QueryAll
            | RequestKind::QueryMore
            | RequestKind::CollectionsCreate
            | RequestKind::CollectionsUpdate
            | RequestKind::CollectionsUpsert
            | RequestKind::CollectionsDelete
    )
}

/// A subrequest's path and query split from its url, with its resource
/// kind when the path is a versioned data resource.
struct Target<'a> {
    path: &'a str,
    query: &'a str,
    version: Option<&'a str>,
    rest: Vec<&'a str>,
    kind: RequestKind,
}

fn target<'a>(method: &Method, url: &'a str) -> Target<'a> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["services", "data", version, rest @ ..] if supported_version(version) => Target {
            path,
            query,
            version: Some(version),
            rest: rest.to_vec(),
            kind: kind_of(method, rest),
        },
        _ => Target {
            path,
            query,
            version: None,
            rest: Vec::new(),
            kind: RequestKind::NotFound,
        },
    }
}

/// `POST /composite`: subrequests run in order through the same resources
/// (`@{ref}` references are not supported). The whole request is one API
/// call, as Salesforce counts it toward the daily limit; the stats count
/// each subrequest by kind under `composite_subrequests`. At most 25
/// subrequests, of which at most 5 query (query, queryAll, their further
/// pages) or sObject Collections ones. With `allOrNone`, the first failure
/// rolls back every write of the request and every other subrequest answers
/// `PROCESSING_HALTED`. The way to send a query too long for a URI.
fn composite(sim: &Sim, org: usize, req: &Incoming) -> Result<Reply, ApiError> {
    let parsed: CompositeBody =
        serde_json::from_slice(&req.body).map_err(|e| ApiError::json_parser(e.to_string()))?;
    let subs = parsed.composite_request;
    if subs.len() > MAX_SUBREQUESTS {
        return Err(ApiError::bad_request(
            "INVALID_INPUT",
            format!(
                "Limit exceeded: a composite request can have at most {MAX_SUBREQUESTS} subrequests"
            ),
        ));
    }
    let methods: Vec<Option<Method>> = subs
        .iter()
        .map(|s| Method::from_bytes(s.method.as_bytes()).ok())
        .collect();
    let targets: Vec<Target> = subs
        .iter()
        .zip(&methods)
        .map(|(s, m)| target(m.as_ref().unwrap_or(&Method::GET), &s.url))
        .collect();
    let queries = targets
        .iter()
        .filter(|t| is_query_or_collections(t.kind))
        .count();
    if queries > MAX_QUERY_SUBREQUESTS {
        return Err(ApiError::bad_request(
            "INVALID_INPUT",
            format!(
                "Limit exceeded: a composite request can have at most {MAX_QUERY_SUBREQUESTS} query or sObject Collections subrequests, not {queries}"
            ),
        ));
    }
    if let Some(header) = subs
        .iter()
        .flat_map(|s| s.http_headers.keys())
        .find(|h| INHERITED_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
    {
        return Err(ApiError::bad_request(
            "INVALID_INPUT",
            format!(
                "The {header} header of a subrequest is inherited from the composite request and cannot be set"
            ),
        ));
    }
    let o = &sim.orgs[org];
    let writes = methods.iter().any(|m| m.as_ref() != Some(&Method::GET));
    let snapshot = (parsed.all_or_none && writes).then(|| o.read().clone());
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(subs.len());
    let mut failed = false;
    for ((sub, method), t) in subs.iter().zip(&methods).zip(&targets) {
        if failed && parsed.all_or_none {
            replies.push(None);
            continue;
        }
        o.stats().count_subrequest(t.kind);
        let reply = match (method, t.version) {
            (Some(method), Some(version)) => {
                let mut headers = axum::http::HeaderMap::new();
                for name in INHERITED_HEADERS {
                    if let Some(v) = req.headers.get(name) {
                        headers.insert(name, v.clone());
                    }
                }
                for (k, v) in &sub.http_headers {
                    if let (Ok(k), Ok(v)) = (
                        axum::http::HeaderName::from_bytes(k.as_bytes()),
                        axum::http::HeaderValue::from_str(v),
                    ) {
                        headers.insert(k, v);
                    }
                }
                let inner = Incoming {
                    method: method.clone(),
                    path: t.path.to_string(),
                    query: t.query.to_string(),
                    headers,
                    body: Bytes::from(sub.body.as_ref().map(|b| b.to_string()).unwrap_or_default()),
                };
                resource(sim, org, &inner, version, &t.rest, t.kind).unwrap_or_else(Reply::from)
            }
            _ => ApiError::not_found().into(),
        };
        failed |= reply.status.is_client_error() || reply.status.is_server_error();
        replies.push(Some(reply));
    }
    let halted = parsed.all_or_none && failed;
    if halted && let Some(snapshot) = snapshot {
        *o.write() = snapshot;
    }
    let mut responses = Vec::with_capacity(subs.len());
    for (sub, reply) in subs.iter().zip(replies) {
        let (status, body) = match reply {
            Some(r) if !halted || r.status.is_client_error() || r.status.is_server_error() => {
                let body: Json = serde_json::from_slice(&r.body).unwrap_or(Json::Null);
                (r.status.as_u16(), body)
            }
            _ => (
                StatusCode::BAD_REQUEST.as_u16(),
                json!([{
                    "errorCode": "PROCESSING_HALTED",
                    "message": "The transaction was rolled back since another operation in the same transaction failed.",
                }]),
            ),
        };
        responses.push(json!({
            "body": body,
            "httpHeaders": {},
            "httpStatusCode": status,
            "referenceId": sub.reference_id,
        }));
    }
    Ok(Reply::ok(&json!({ "compositeResponse": responses })))
}
