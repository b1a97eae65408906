//! The HTTP front: one axum fallback handler that applies latency and the
//! URI limit, then routes by org prefix (`/production`, `/sandbox`, none =
//! production) and path to the resources, counting each request and adding
//! `Sforce-Limit-Info` to every `/services/data` response.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::API_VERSION;
use super::auth;
use super::collections::{self, Operation};
use super::describe;
use super::error::ApiError;
use super::org::Sim;
use super::query;
use super::stats::RequestKind;

/// Longest request URI Salesforce accepts.
pub const MAX_URI_BYTES: usize = 16_384;
/// Largest request body read (Collections bodies are far smaller).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
    json_bytes(status, bytes)
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

/// What the blocking part of a request needs.
struct Incoming {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

async fn handle(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let uri_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return (StatusCode::URI_TOO_LONG, "URI Too Long").into_response();
    }
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::json_parser("request body too large or unreadable").into_response();
        }
    };
    let path = parts.uri.path().to_string();
    if !sim.config.latency.is_zero() && !path.starts_with("/__sim") {
        tokio::time::sleep(sim.config.latency).await;
    }
    let incoming = Incoming {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
    };
    let sim2 = Arc::clone(&sim);
    match tokio::task::spawn_blocking(move || dispatch(&sim2, incoming)).await {
        Ok(resp) => resp,
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
        .into_response(),
    }
}

fn dispatch(sim: &Sim, req: Incoming) -> Response {
    let mut segs: Vec<&str> = req.path.split('/').skip(1).collect();
    if segs.len() > 1 && segs.last() == Some(&"") {
        segs.pop();
    }
    if segs.first() == Some(&"__sim") {
        return sim_route(sim, &req, &segs[1..]);
    }
    let (org, rest) = match segs.first().and_then(|s| sim.org_index(s)) {
        Some(org) => (org, &segs[1..]),
        None => (0, &segs[..]),
    };
    org_route(sim, org, &req, rest)
}

/// `/__sim/...`: test helpers, no org prefix, no auth.
fn sim_route(sim: &Sim, req: &Incoming, segs: &[&str]) -> Response {
    let org_param = || {
        url::form_urlencoded::parse(req.query.as_bytes())
            .find(|(k, _)| k == "org")
            .map_or(Some(0), |(_, v)| sim.org_index(&v))
    };
    match (&req.method, segs) {
        (&Method::GET, ["stats"]) => json_response(StatusCode::OK, &sim.stats_json()),
        (&Method::POST, ["stats", "reset"]) => {
            sim.reset_stats();
            json_response(StatusCode::OK, &sim.stats_json())
        }
        (&Method::POST, ["refresh_token"]) => match org_param() {
            Some(org) => json_response(
                StatusCode::OK,
                &serde_json::json!({ "refresh_token": auth::mint_refresh_token(sim, org) }),
            ),
            None => ApiError::not_found().into_response(),
        },
        (&Method::POST, ["expire_tokens"]) => {
            auth::expire_access_tokens(sim);
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        _ => ApiError::not_found().into_response(),
    }
}

fn count(sim: &Sim, org: usize, kind: RequestKind) {
    sim.orgs[org].stats().count(kind);
}

fn org_route(sim: &Sim, org: usize, req: &Incoming, segs: &[&str]) -> Response {
    match segs {
        ["services", "oauth2", "token"] => {
            count(sim, org, RequestKind::Token);
            if req.method != Method::POST {
                return ApiError::method_not_allowed(req.method.as_str(), &["POST"])
                    .into_response();
            }
            auth::token(sim, org, &req.headers, &req.body)
        }
        ["services", "oauth2", "revoke"] => {
            count(sim, org, RequestKind::Revoke);
            auth::revoke(sim, &req.body)
        }
        ["id", org_id, _user] => {
            count(sim, org, RequestKind::Identity);
            match auth::check_bearer(sim, org, &req.headers) {
                Ok(()) if *org_id == sim.orgs[org].org_id => auth::identity(sim, org),
                Ok(()) => ApiError::not_found().into_response(),
                Err(e) => e.into_response(),
            }
        }
        ["services", "data", rest @ ..] => {
            let mut resp = data_route(sim, org, req, rest);
            let o = &sim.orgs[org];
            let info = format!("api-usage={}/{}", o.api_used(), sim.config.daily_api_limit);
            if let Ok(v) = HeaderValue::from_str(&info) {
                resp.headers_mut().insert("sforce-limit-info", v);
            }
            resp
        }
        _ => {
            count(sim, org, RequestKind::NotFound);
            ApiError::not_found().into_response()
        }
    }
}

/// The resource a `/services/data/vXX.X/...` path names, for counting.
fn kind_of(method: &Method, rest: &[&str]) -> RequestKind {
    match rest {
        [] => RequestKind::Resources,
        ["sobjects"] => RequestKind::DescribeGlobal,
        ["sobjects", _, "describe"] => RequestKind::Describe,
        ["sobjects", _] => RequestKind::SObjectInfo,
        ["query"] => RequestKind::Query,
        ["queryAll"] => RequestKind::QueryAll,
        ["query" | "queryAll", _] => RequestKind::QueryMore,
        ["limits"] => RequestKind::Limits,
        ["composite", "sobjects"] if method == Method::POST => RequestKind::CollectionsCreate,
        ["composite", "sobjects"] if method == Method::DELETE => RequestKind::CollectionsDelete,
        ["composite", "sobjects"] => RequestKind::CollectionsUpdate,
        ["composite", "sobjects", _, _] => RequestKind::CollectionsUpsert,
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

fn versions() -> serde_json::Value {
    serde_json::json!([{
        "label": "Winter '25",
        "url": format!("/services/data/v{API_VERSION}"),
        "version": API_VERSION,
    }])
}

fn data_route(sim: &Sim, org: usize, req: &Incoming, segs: &[&str]) -> Response {
    let Some((version, rest)) = segs.split_first() else {
        count(sim, org, RequestKind::Versions);
        return json_response(StatusCode::OK, &versions());
    };
    let kind = if supported_version(version) {
        kind_of(&req.method, rest)
    } else {
        RequestKind::NotFound
    };
    count(sim, org, kind);
    if let Err(e) = auth::check_bearer(sim, org, &req.headers) {
        return e.into_response();
    }
    let o = &sim.orgs[org];
    if o.use_api() > sim.config.daily_api_limit {
        return ApiError::limit_exceeded().into_response();
    }
    if kind == RequestKind::NotFound {
        return ApiError::not_found().into_response();
    }
    match resource(sim, org, req, version, rest, kind) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
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
) -> Result<Response, ApiError> {
    let o = &sim.orgs[org];
    let ok = |v: serde_json::Value| json_response(StatusCode::OK, &v);
    match kind {
        RequestKind::Resources => {
            require(&req.method, &[Method::GET])?;
            let base = format!("/services/data/{version}");
            Ok(ok(serde_json::json!({
                "sobjects": format!("{base}/sobjects"),
                "query": format!("{base}/query"),
                "queryAll": format!("{base}/queryAll"),
                "limits": format!("{base}/limits"),
                "composite": format!("{base}/composite"),
            })))
        }
        RequestKind::DescribeGlobal => {
            require(&req.method, &[Method::GET])?;
            Ok(ok(describe::describe_global(version)))
        }
        RequestKind::Describe => {
            require(&req.method, &[Method::GET])?;
            Ok(ok(describe::describe(version, rest[1])?))
        }
        RequestKind::SObjectInfo => {
            require(&req.method, &[Method::GET])?;
            Ok(ok(describe::sobject_info(version, rest[1])?))
        }
        RequestKind::Query | RequestKind::QueryAll => {
            require(&req.method, &[Method::GET])?;
            let q = url::form_urlencoded::parse(req.query.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| {
                    ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
                })?;
            let batch = query::batch_size(&req.headers);
            let reply = query::run(o, version, &q, kind == RequestKind::QueryAll, batch)?;
            o.stats().records_returned += reply.records as u64;
            Ok(json_bytes(StatusCode::OK, reply.body))
        }
        RequestKind::QueryMore => {
            require(&req.method, &[Method::GET])?;
            let reply = query::more(o, version, rest[1])?;
            o.stats().records_returned += reply.records as u64;
            Ok(json_bytes(StatusCode::OK, reply.body))
        }
        RequestKind::Limits => {
            require(&req.method, &[Method::GET])?;
            let max = sim.config.daily_api_limit;
            Ok(ok(serde_json::json!({
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
            Ok(json_response(StatusCode::OK, &results))
        }
        RequestKind::CollectionsUpsert => {
            require(&req.method, &[Method::PATCH])?;
            let (results, n) = collections::upsert(o, rest[2], rest[3], &req.body)?;
            o.stats().records_written += n as u64;
            Ok(json_response(StatusCode::OK, &results))
        }
        _ => Err(ApiError::not_found()),
    }
}
