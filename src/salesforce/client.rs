//! `SalesforceClient`: one connection's authenticated HTTP client.
//!
//! Every request goes through [`SalesforceClient::send`], which attaches the
//! bearer token, re-authenticates once on `401 INVALID_SESSION_ID`, sends
//! again with backoff a request Salesforce refused for now (503, the
//! concurrent-request limit) or that never left, and an idempotent one
//! after any transient failure or lost answer (Collections writes are sent
//! once: `dml::write` retries their records), and records the org's API
//! usage from `Sforce-Limit-Info`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::oauth::{AccessToken, Credentials, Session, TokenStore};
use super::types::{GlobalDescribe, SObjectDescribe, SObjectSummary, SaveResult};
use super::{API_VERSION, SalesforceError};

/// API usage as last reported by the org (`Sforce-Limit-Info: api-usage=n/m`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

/// One page of a SOQL query.
#[derive(Debug, Clone)]
pub struct QueryPage {
    pub total_size: u64,
    pub records: Vec<Map<String, Value>>,
}

/// The body of a query or queryMore response.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryResponse {
    pub(super) total_size: u64,
    pub(super) done: bool,
    #[serde(default)]
    pub(super) next_records_url: Option<String>,
    #[serde(default)]
    pub(super) records: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
}

const MAX_ATTEMPTS: u32 = 4;

/// Which failed requests [`SalesforceClient::send_with`] sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// None: the caller decides (Collections writes, whose records the
    /// write path sends again and counts).
    Never,
    /// Those Salesforce refused for now or that never left: safe for any
    /// request, a create included.
    IfRefused,
    /// Also transient failures and lost answers: for requests a repeat
    /// cannot harm (reads, polls).
    IfTransient,
}

impl Resend {
    fn allows(self, e: &SalesforceError) -> bool {
        match self {
            Resend::Never => false,
            Resend::IfRefused => e.is_refused_for_now(),
            Resend::IfTransient => e.is_transient(),
        }
    }
}

/// REST query page sizes Salesforce accepts (`batchSize`).
pub const MIN_BATCH: usize = 200;
pub const MAX_BATCH: usize = 2000;

/// A request body.
pub(super) enum Payload<'a> {
    None,
    Json(&'a Value),
    /// Bulk job data; `Bytes` so that a retry does not copy it.
    Csv(bytes::Bytes),
}

pub struct SalesforceClient {
    /// The catalog name of the connection; it prefixes every error.
    name: String,
    http: reqwest::Client,
    login_url: String,
    /// Access tokens: obtained on first use, renewed after a 401.
    auth: Session,
    /// Describe results by lower-case sObject name: describe is costly and
    /// changes only when an admin edits the object.
    describes: Mutex<HashMap<String, Arc<SObjectDescribe>>>,
    usage: Mutex<Option<ApiUsage>>,
    /// Requests this client sent, for run logs and benchmarks.
    requests: AtomicU64,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("name", &self.name)
            .field("login_url", &self.login_url)
            .finish_non_exhaustive()
    }
}

impl SalesforceClient {
    pub fn new(
        name: impl Into<String>,
        login_url: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(8)
            .build()
            .unwrap_or_default();
        SalesforceClient {
            name: name.into(),
            http,
            login_url: login_url.into().trim_end_matches('/').to_string(),
            auth: Session::new(credentials),
            describes: Mutex::new(HashMap::new()),
            usage: Mutex::new(None),
            requests: AtomicU64::new(0),
        }
    }

    /// Read the refresh token from, and record the connection's status in,
    /// `store` (the web flow needs one).
    pub fn with_token_store(mut self, store: TokenStore) -> Self {
        self.auth.set_store(store);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why this connection needs `sfsql login` before it can work, from
    /// the token store alone (no request); `None` once a login cleared it.
    pub fn needs_login(&self) -> Option<String> {
        self.auth.needs_login(&self.name)
    }

    /// Requests sent so far (token requests excluded).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.usage.lock().ok().and_then(|u| *u)
    }

    /// Log in now, so that a bad secret is reported at start rather than at
    /// the first query.
    pub async fn connect(&self) -> Result<(), SalesforceError> {
        self.access_token(None).await.map(|_| ())
    }

    /// The current session, or a new one when there is none or when it is
    /// `failed` (a 401 answered it).
    async fn access_token(
        &self,
        failed: Option<&AccessToken>,
    ) -> Result<AccessToken, SalesforceError> {
        self.auth
            .access_token(&self.http, &self.name, &self.login_url, failed)
            .await
    }

    fn transport(&self, source: reqwest::Error) -> SalesforceError {
        SalesforceError::Transport {
            connection: self.name.clone(),
            source,
        }
    }

    /// Send one request. `path` is either a path under the instance URL
    /// (`/services/data/...`) or a path relative to the versioned data URL
    /// (`sobjects/Contact/describe`).
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        self.send_payload(method, path, payload, idempotent).await
    }

    /// [`send`](Self::send) with a JSON or CSV body (Bulk uploads).
    pub(super) async fn send_payload(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        idempotent: bool,
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let (status, _, bytes) = self
            .send_full(method, path, payload, idempotent, MAX_BATCH)
            .await?;
        Ok((status, bytes))
    }

    /// [`send_payload`](Self::send_payload), with the response headers
    /// (Bulk query results page by `Sforce-Locator`) and the page size a
    /// query asks for (`Sforce-Query-Options: batchSize`, 200 to 2000).
    pub(super) async fn send_full(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        idempotent: bool,
        batch: usize,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, bytes::Bytes), SalesforceError> {
        let resend = if idempotent {
            Resend::IfTransient
        } else {
            Resend::IfRefused
        };
        self.send_with(method, path, payload, resend, batch, &mut 0)
            .await
    }

    /// [`send_payload`](Self::send_payload), adding to `calls` each time
    /// the request is sent (retries too), for callers that report their
    /// API calls (a Bulk job).
    pub(super) async fn send_counted(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        idempotent: bool,
        calls: &mut usize,
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let resend = if idempotent {
            Resend::IfTransient
        } else {
            Resend::IfRefused
        };
        let (status, _, bytes) = self
            .send_with(method, path, payload, resend, MAX_BATCH, calls)
            .await?;
        Ok((status, bytes))
    }

    /// [`send_full`](Self::send_full), sending a failed request again as
    /// `resend` allows, with backoff; `sent` counts every send.
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        resend: Resend,
        batch: usize,
        sent: &mut usize,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, bytes::Bytes), SalesforceError> {
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.access_token(None).await?;
            let url = if path.starts_with("/services/") {
                format!("{}{}", token.instance_url, path)
            } else {
                format!(
                    "{}/services/data/v{}/{}",
                    token.instance_url, API_VERSION, path
                )
            };
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.token.expose_secret())
                .header(
                    "Sforce-Query-Options",
                    format!("batchSize={}", batch.clamp(MIN_BATCH, MAX_BATCH)),
                );
            match &payload {
                Payload::None => {}
                Payload::Json(body) => request = request.json(body),
                Payload::Csv(csv) => {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, "text/csv")
                        .body(csv.clone())
                }
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            *sent += 1;
            let started = std::time::Instant::now();
            // A connection cut before the answer or in the middle of its
            // body is one failure: the request may have been applied.
            let received = async {
                let response = request.send().await?;
                self.record_usage(response.headers());
                let status = response.status();
                let headers = response.headers().clone();
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            };
            let (status, headers, bytes) = match received.await {
                Ok(received) => received,
                Err(e) => {
                    let err = self.transport(e);
                    if attempt < MAX_ATTEMPTS && resend.allows(&err) {
                        backoff(attempt).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            // The path and status only: the token rides in a header that is
            // never logged, and bodies hold customer data.
            tracing::debug!(
                connection = %self.name,
                %method,
                path = %log_path(path),
                status = status.as_u16(),
                attempt,
                bytes = bytes.len(),
                ms = started.elapsed().as_millis() as u64,
                "salesforce request"
            );
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.access_token(Some(&token)).await?;
                continue;
            }
            if status.is_success() || status == StatusCode::MULTIPLE_CHOICES {
                return Ok((status, headers, bytes));
            }
            let err = self.api_error(status, &bytes);
            if attempt < MAX_ATTEMPTS && resend.allows(&err) {
                backoff(attempt).await;
                continue;
            }
            return Err(err);
        }
    }

    /// The error of a failed response: Salesforce's first `errorCode` and
    /// `message`, or the status and the start of the body.
    pub(super) fn api_error(&self, status: StatusCode, body: &[u8]) -> SalesforceError {
        let (code, message) = match serde_json::from_slice::<Vec<ApiErrorBody>>(body) {
            Ok(errors) if !errors.is_empty() => {
                (errors[0].error_code.clone(), errors[0].message.clone())
            }
            _ => (
                status
                    .canonical_reason()
                    .unwrap_or("HTTP_ERROR")
                    .to_string(),
                String::from_utf8_lossy(body).chars().take(300).collect(),
            ),
        };
        SalesforceError::Api {
            connection: self.name.clone(),
            status: status.as_u16(),
            code,
            message,
        }
    }

    fn record_usage(&self, headers: &reqwest::header::HeaderMap) {
        let Some(value) = headers
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if let Some(usage) = parse_limit_info(value)
            && let Ok(mut slot) = self.usage.lock()
        {
            *slot = Some(usage);
            drop(slot);
            self.auth.save_usage(&self.name, usage.used, usage.max);
        }
    }

    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        bytes: &[u8],
    ) -> Result<T, SalesforceError> {
        serde_json::from_slice(bytes).map_err(|e| self.decode_error(what, e.to_string()))
    }

    /// A response of this connection that is not what `what` should be.
    pub(super) fn decode_error(&self, what: &str, detail: String) -> SalesforceError {
        SalesforceError::Decode {
            connection: self.name.clone(),
            what: what.to_string(),
            detail,
        }
    }

    /// The org's daily API requests (`GET /limits`, `DailyApiRequests`),
    /// one call; EXPLAIN shows what a statement would leave of them.
    pub async fn daily_api_requests(&self) -> Result<ApiUsage, SalesforceError> {
        #[derive(serde::Deserialize)]
        struct Limit {
            #[serde(rename = "Max")]
            max: u64,
            #[serde(rename = "Remaining")]
            remaining: u64,
        }
        #[derive(serde::Deserialize)]
        struct Limits {
            #[serde(rename = "DailyApiRequests")]
            daily: Limit,
        }
        let (_, bytes) = self.send(Method::GET, "limits/", None, true).await?;
        let limits: Limits = self.decode("limits", &bytes)?;
        Ok(ApiUsage {
            used: limits.daily.max.saturating_sub(limits.daily.remaining),
            max: limits.daily.max,
        })
    }

    /// Every sObject of the org (describeGlobal), one call.
    pub async fn describe_global(&self) -> Result<Vec<SObjectSummary>, SalesforceError> {
        let (_, bytes) = self.send(Method::GET, "sobjects/", None, true).await?;
        let global: GlobalDescribe = self.decode("describeGlobal", &bytes)?;
        Ok(global.sobjects)
    }

    /// Drop every cached describe, so the next use of an sObject describes
    /// it again (fields added in the org since appear).
    pub fn forget_describes(&self) {
        if let Ok(mut cache) = self.describes.lock() {
            cache.clear();
        }
    }

    /// Describe one sObject, cached until [`Self::forget_describes`].
    pub async fn describe(&self, sobject: &str) -> Result<Arc<SObjectDescribe>, SalesforceError> {
        let key = sobject.to_ascii_lowercase();
        if let Some(found) = self
            .describes
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(found);
        }
        let path = format!("sobjects/{}/describe", urlencode(sobject));
        let (_, bytes) = match self.send(Method::GET, &path, None, true).await {
            Err(SalesforceError::Api { status: 404, .. }) => {
                return Err(SalesforceError::UnknownSObject {
                    connection: self.name.clone(),
                    sobject: sobject.to_string(),
                });
            }
            other => other?,
        };
        let describe: Arc<SObjectDescribe> = Arc::new(self.decode("describe", &bytes)?);
        if let Ok(mut cache) = self.describes.lock() {
            cache.insert(key, Arc::clone(&describe));
        }
        Ok(describe)
    }

    /// Run a SOQL query and yield its pages as they arrive, following
    /// `nextRecordsUrl` until `done`.
    pub fn query(
        self: &Arc<Self>,
        soql: String,
    ) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
        self.query_rows(soql, false)
    }

    /// [`query`](Self::query), through `queryAll` when `all_rows`: deleted
    /// and archived records too.
    pub fn query_rows(
        self: &Arc<Self>,
        soql: String,
        all_rows: bool,
    ) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
        self.query_pages(soql, all_rows, MAX_BATCH)
    }

    /// [`query_rows`](Self::query_rows) in pages of `batch` records (200 to
    /// 2000; Salesforce may send fewer).
    pub fn query_pages(
        self: &Arc<Self>,
        soql: String,
        all_rows: bool,
        batch: usize,
    ) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
        let resource = if all_rows { "queryAll" } else { "query" };
        enum Next {
            Start(String),
            More(String),
            Done,
        }
        let client = Arc::clone(self);
        stream::try_unfold(Next::Start(soql), move |next| {
            let client = Arc::clone(&client);
            async move {
                let path = match next {
                    Next::Done => return Ok(None),
                    Next::Start(soql) => format!("{resource}?q={}", urlencode(&soql)),
                    Next::More(url) => url,
                };
                let (_, _, bytes) = client
                    .send_full(Method::GET, &path, Payload::None, true, batch)
                    .await?;
                let response: QueryResponse = client.decode("query", &bytes)?;
                let next = match (response.done, response.next_records_url) {
                    (false, Some(url)) => Next::More(url),
                    _ => Next::Done,
                };
                let page = QueryPage {
                    total_size: response.total_size,
                    records: response.records,
                };
                Ok(Some((page, next)))
            }
        })
        .boxed()
    }

    /// The bytes of one blob (a base64 field), from the URL a query
    /// returned in its place (`/services/data/vXX.X/sobjects/Attachment/{id}/Body`).
    /// Only a path on the org's own instance is followed: the bearer token
    /// goes with it.
    pub async fn blob(&self, url: &str) -> Result<bytes::Bytes, SalesforceError> {
        if !url.starts_with("/services/data/") || url.contains("..") {
            return Err(SalesforceError::Decode {
                connection: self.name.clone(),
                what: "blob".into(),
                detail: format!("expected a /services/data/ path to the blob, got {url:?}"),
            });
        }
        let (_, bytes) = self.send(Method::GET, url, None, true).await?;
        Ok(bytes)
    }

    /// Update up to 200 records with one sObject Collections call. Each
    /// record needs `attributes.type` and `id`. The result has one entry per
    /// record, in order. Like every Collections call it is sent once: the
    /// write path (`dml::write`) decides what to send again and counts it.
    pub async fn update_records(
        &self,
        records: Vec<Value>,
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        self.collections(Method::PATCH, records, all_or_none, "collections update")
            .await
    }

    /// Create up to 200 records with one sObject Collections call. Each
    /// record needs `attributes.type`. Sent once.
    pub async fn create_records(
        &self,
        records: Vec<Value>,
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        self.collections(Method::POST, records, all_or_none, "collections create")
            .await
    }

    /// Upsert up to 200 records of `sobject` by its external ID field
    /// `ext_field` (`PATCH /composite/sobjects/{SObject}/{Field}`); each
    /// result says whether the record was `created`. Sent once.
    pub async fn upsert_records(
        &self,
        sobject: &str,
        ext_field: &str,
        records: Vec<Value>,
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let path = format!(
            "composite/sobjects/{}/{}",
            urlencode(sobject),
            urlencode(ext_field)
        );
        let body = serde_json::json!({ "allOrNone": all_or_none, "records": records });
        self.save_call(
            Method::PATCH,
            &path,
            Some(&body),
            records_len(&body),
            "collections upsert",
        )
        .await
    }

    /// Delete up to 200 records by Id (`DELETE /composite/sobjects?ids=`).
    /// Sent once.
    pub async fn delete_records(
        &self,
        ids: &[String],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let path = format!(
            "composite/sobjects?ids={}&allOrNone={all_or_none}",
            urlencode(&ids.join(","))
        );
        self.save_call(Method::DELETE, &path, None, ids.len(), "collections delete")
            .await
    }

    async fn collections(
        &self,
        method: Method,
        records: Vec<Value>,
        all_or_none: bool,
        what: &str,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let body = serde_json::json!({ "allOrNone": all_or_none, "records": records });
        self.save_call(
            method,
            "composite/sobjects",
            Some(&body),
            records_len(&body),
            what,
        )
        .await
    }

    /// One Collections call whose answer is one result per record, in
    /// order. Sent once (a 401 aside, which renews the token first).
    async fn save_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        count: usize,
        what: &str,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let payload = body.map_or(Payload::None, Payload::Json);
        let (_, _, bytes) = self
            .send_with(method, path, payload, Resend::Never, MAX_BATCH, &mut 0)
            .await?;
        let results: Vec<SaveResult> = self.decode(what, &bytes)?;
        if results.len() != count {
            return Err(SalesforceError::Decode {
                connection: self.name.clone(),
                what: what.into(),
                detail: format!("{} results for {} records", results.len(), count),
            });
        }
        Ok(results)
    }
}

/// `path` for a debug log line: long SOQL (key lookups) cut short.
fn log_path(path: &str) -> String {
    const MAX: usize = 200;
    match path.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &path[..at]),
        None => path.to_string(),
    }
}

fn records_len(body: &Value) -> usize {
    body["records"].as_array().map_or(0, Vec::len)
}

fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    let usage = value
        .split(',')
        .find_map(|part| part.trim().strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some(ApiUsage {
        used: used.trim().parse().ok()?,
        max: max.trim().parse().ok()?,
    })
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn backoff(attempt: u32) {
    let millis = 200u64 * (1 << attempt.min(5));
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limit_info() {
        assert_eq!(
            parse_limit_info("api-usage=18/5000"),
            Some(ApiUsage {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=3/15000, per-app-api-usage=1/100(appName=x)"),
            Some(ApiUsage {
                used: 3,
                max: 15000
            })
        );
        assert_eq!(parse_limit_info("nonsense"), None);
    }
}
