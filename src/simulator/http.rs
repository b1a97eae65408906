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

use super::api;
use super::auth;
use super::error::ApiError;
use super::org::{Fault, Sim};
use super::stats::RequestKind;

/// Longest request URI Salesforce accepts.
pub const MAX_URI_BYTES: usize = 16_384;
/// Largest request body read: Bulk uploads up to their 100 MB limit are
/// read so that one just past it gets Salesforce's error, not a reset.
const MAX_BODY_BYTES: usize = 150 * 1024 * 1024;

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
    json_bytes(status, bytes)
}

pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
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
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
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
        (&Method::POST, ["fail_next"]) => {
            let params = params(req);
            let status = params
                .get("status")
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(503);
            let code = params.get("code").cloned().unwrap_or_else(|| {
                match status {
                    500 => "UNKNOWN_EXCEPTION",
                    403 => "REQUEST_LIMIT_EXCEEDED",
                    _ => "SERVER_UNAVAILABLE",
                }
                .to_string()
            });
            let fault = Fault {
                kind: params.get("kind").cloned(),
                status,
                // Without a message, the limit is the 24-hour one, worded
                // as the org's own answer when its requests run out.
                message: params.get("message").cloned().unwrap_or_else(|| {
                    if code == "REQUEST_LIMIT_EXCEEDED" {
                        ApiError::limit_exceeded().message
                    } else {
                        "failure injected by the simulator".to_string()
                    }
                }),
                code,
            };
            injected(org_param(), |org| {
                sim.orgs[org].inject_faults(count_param(&params), fault)
            })
        }
        (&Method::POST, ["drop_next_response"]) => {
            let params = params(req);
            injected(org_param(), |org| {
                sim.orgs[org].inject_drops(count_param(&params), params.get("kind").cloned())
            })
        }
        (&Method::POST, ["token_lifetime"]) => {
            let param = |name: &str| {
                url::form_urlencoded::parse(req.query.as_bytes())
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            };
            let lifetime = auth::Lifetime {
                ttl: param("seconds").map(std::time::Duration::from_secs),
                requests: param("requests").and_then(|n| u32::try_from(n).ok()),
            };
            sim.tokens().lifetime = lifetime;
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        (&Method::POST, ["fail_records"]) => {
            let params = params(req);
            let code = params
                .get("code")
                .cloned()
                .unwrap_or_else(|| "UNABLE_TO_LOCK_ROW".to_string());
            injected(org_param(), |org| {
                sim.orgs[org].inject_record_faults(count_param(&params), code)
            })
        }
        (&Method::POST, ["expire_tokens"]) => {
            auth::expire_access_tokens(sim);
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        _ => ApiError::not_found().into_response(),
    }
}

/// The query parameters of a `/__sim` request.
fn params(req: &Incoming) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect()
}

/// The answer to a `/__sim` injection into `org`, done by `inject`; 404
/// for an unknown org.
fn injected(org: Option<usize>, inject: impl FnOnce(usize)) -> Response {
    match org {
        Some(org) => {
            inject(org);
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
        None => ApiError::not_found().into_response(),
    }
}

/// `count=` of a `/__sim` injection: 1 when absent.
fn count_param(params: &std::collections::HashMap<String, String>) -> usize {
    params
        .get("count")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
}

/// The answer to a request that was served but whose connection is cut
/// before its body arrives, as when a network drops the response to a
/// write Salesforce has applied.
fn cut_off() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection cut by the simulator",
        ))
    }));
    Response::new(body)
}

pub fn count(sim: &Sim, org: usize, kind: RequestKind) {
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
        ["services", "oauth2", "authorize"] => {
            count(sim, org, RequestKind::Authorize);
            super::grants::authorize(sim, org, &req.query)
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
            let reply = api::data_route(sim, org, req, rest);
            if reply.cut_off {
                return cut_off();
            }
            let mut resp = (reply.status, reply.body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            );
            for (name, value) in reply.headers {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, v);
                }
            }
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
