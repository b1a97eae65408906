//! HTTP JSON API reports: one request per page, the record array found by a
//! path into each response, the next page found by next link, cursor or
//! offset, and bearer or OAuth2 client-credentials auth. Secrets come from
//! the environment and never reach an error message.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;
use url::Url;

use super::config::{HttpAuth, Pagination};

/// How an HTTP report fails; each message names the report and what to do.
#[derive(Debug, Error)]
pub enum HttpReportError {
    #[error("report {report}: cannot reach {url}: {message}; check the url and that the API is up")]
    Transport {
        report: String,
        url: String,
        message: String,
    },
    #[error("report {report}: GET {url} returned HTTP {status}: {body}; {hint}")]
    Status {
        report: String,
        url: String,
        status: u16,
        body: String,
        hint: &'static str,
    },
    #[error(
        "report {report}: token request to {url} returned HTTP {status}: {body}; check the client id and secret variables and token_url"
    )]
    Token {
        report: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "report {report}: GET {url} returned a body that is not JSON ({snippet}); point url at the JSON API"
    )]
    NotJson {
        report: String,
        url: String,
        snippet: String,
    },
    #[error(
        "report {report}: the response has no array at {path:?} (it has {found}); set records to the path of the record array"
    )]
    NoRecords {
        report: String,
        path: String,
        found: String,
    },
    #[error("report {report}: a record does not fit the columns: {message}; fix columns")]
    Decode { report: String, message: String },
    #[error(
        "report {report}: more than {max} pages; raise max_pages or check the pagination settings"
    )]
    TooManyPages { report: String, max: usize },
}

impl HttpReportError {
    /// The SQLSTATE a client sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            HttpReportError::Status {
                status: 401 | 403, ..
            }
            | HttpReportError::Token { .. } => "28000",
            HttpReportError::Transport { .. } => "08006",
            HttpReportError::Decode { .. } => "22000",
            _ => "58000",
        }
    }
}

/// Credentials resolved from the environment at start.
// One per report: size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Auth {
    Bearer(SecretString),
    ClientCredentials {
        token_url: Url,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
        /// The current token and when to fetch a new one.
        token: Mutex<Option<(SecretString, Instant)>>,
    },
}

/// One HTTP report, ready to fetch.
pub struct HttpSource {
    pub report: String,
    pub url: Url,
    /// Header values may hold secrets (an API key from `${VAR}`).
    pub headers: Vec<(String, SecretString)>,
    pub auth: Option<Auth>,
    /// Keys into each response; empty means the response is the array.
    pub records: Vec<String>,
    pub pagination: Option<Pagination>,
    pub max_pages: usize,
    pub client: reqwest::Client,
}

impl HttpSource {
    /// Resolve `auth` from `get` (the catalog's environment).
    pub fn auth_from(
        auth: &HttpAuth,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Auth, String> {
        let var = |name: &str| {
            get(name).ok_or_else(|| format!("environment variable {name} is not set; export it"))
        };
        Ok(match auth {
            HttpAuth::Bearer { token_env } => Auth::Bearer(var(token_env)?.into()),
            HttpAuth::ClientCredentials {
                token_url,
                client_id_env,
                client_secret_env,
                scope,
            } => Auth::ClientCredentials {
                token_url: Url::parse(token_url)
                    .map_err(|e| format!("token_url {token_url:?} is not a URL: {e}"))?,
                client_id: var(client_id_env)?,
                client_secret: var(client_secret_env)?.into(),
                scope: scope.clone(),
                token: Mutex::new(None),
            },
        })
    }

    /// The first page's URL (offset paging starts at 0).
    pub fn first_url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(Pagination::Offset {
            param,
            limit_param,
            page_size,
        }) = &self.pagination
        {
            set_param(&mut url, param, "0");
            if let Some(limit) = limit_param {
                set_param(&mut url, limit, &page_size.to_string());
            }
        }
        url
    }

    /// Fetch one page: its records and the next page's URL, if any.
    pub async fn page(&self, url: &Url) -> Result<(Vec<Value>, Option<Url>), HttpReportError> {
        let body = self.get_json(url).await?;
        let records =
            records_at(&body, &self.records).map_err(|found| HttpReportError::NoRecords {
                report: self.report.clone(),
                path: self.records.join("."),
                found,
            })?;
        let next = next_url(self.pagination.as_ref(), url, &body, records.len());
        Ok((records, next))
    }

    async fn get_json(&self, url: &Url) -> Result<Value, HttpReportError> {
        let mut retried = false;
        loop {
            let mut request = self.client.get(url.clone());
            for (name, value) in &self.headers {
                request = request.header(name, value.expose_secret());
            }
            if let Some(token) = self.token(retried).await? {
                request = request.bearer_auth(token.expose_secret());
            }
            let response = request.send().await.map_err(|e| self.transport(url, e))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| self.transport(url, e))?;
            // An expired client-credentials token: fetch a new one once.
            if status.as_u16() == 401
                && !retried
                && matches!(self.auth, Some(Auth::ClientCredentials { .. }))
            {
                retried = true;
                continue;
            }
            if !status.is_success() {
                return Err(HttpReportError::Status {
                    report: self.report.clone(),
                    url: shown(url),
                    status: status.as_u16(),
                    body: self.snippet(&text),
                    hint: match status.as_u16() {
                        401 | 403 => "check the report's auth and its environment variables",
                        404 => "check the url",
                        429 | 500..=599 => "the API is failing or limiting; try again later",
                        _ => "check the url, headers and auth",
                    },
                });
            }
            return serde_json::from_str(&text).map_err(|_| HttpReportError::NotJson {
                report: self.report.clone(),
                url: shown(url),
                snippet: self.snippet(&text),
            });
        }
    }

    /// The bearer token to send, fetching a client-credentials token when
    /// there is none, it has expired, or `renew` says the API refused it.
    async fn token(&self, renew: bool) -> Result<Option<SecretString>, HttpReportError> {
        match &self.auth {
            None => Ok(None),
            Some(Auth::Bearer(token)) => Ok(Some(token.clone())),
            Some(Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                token,
            }) => {
                let mut current = token.lock().await;
                if let Some((value, until)) = current.as_ref()
                    && !renew
                    && Instant::now() < *until
                {
                    return Ok(Some(value.clone()));
                }
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(scope) = scope {
                    form.push(("scope", scope));
                }
                let response = self
                    .client
                    .post(token_url.clone())
                    .basic_auth(client_id, Some(client_secret.expose_secret()))
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| self.transport(token_url, e))?;
                let status = response.status();
                let text = response
                    .text()
                    .await
                    .map_err(|e| self.transport(token_url, e))?;
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                let access = parsed
                    .as_ref()
                    .and_then(|v| v["access_token"].as_str())
                    .filter(|_| status.is_success());
                let Some(access) = access else {
                    return Err(HttpReportError::Token {
                        report: self.report.clone(),
                        url: shown(token_url),
                        status: status.as_u16(),
                        body: self.snippet(&text),
                    });
                };
                let lifetime = parsed
                    .as_ref()
                    .and_then(|v| v["expires_in"].as_u64())
                    .unwrap_or(3600);
                // Renew a little early so a token never expires mid-request.
                let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30));
                let value = SecretString::from(access.to_string());
                *current = Some((value.clone(), until));
                Ok(Some(value))
            }
        }
    }

    fn transport(&self, url: &Url, e: reqwest::Error) -> HttpReportError {
        HttpReportError::Transport {
            report: self.report.clone(),
            url: shown(url),
            message: e.without_url().to_string(),
        }
    }

    /// The start of a response body for an error, with every secret this
    /// report knows replaced, in case the API echoes one.
    fn snippet(&self, text: &str) -> String {
        let mut out: String = text.chars().take(200).collect();
        let mut secrets: Vec<&str> = self
            .headers
            .iter()
            .map(|(_, v)| v.expose_secret())
            .collect();
        match &self.auth {
            Some(Auth::Bearer(t)) => secrets.push(t.expose_secret()),
            Some(Auth::ClientCredentials { client_secret, .. }) => {
                secrets.push(client_secret.expose_secret())
            }
            None => {}
        }
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret, "***");
        }
        out.replace('\n', " ")
    }
}

/// A URL as errors show it: without its query, which may carry a key.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
}

/// The value at a dotted path (`meta.next`); None when a key is missing.
fn at<'a>(body: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(body, |v, key| v.get(key))
}

/// The record array at `path`, or a description of what is there instead.
pub fn records_at(body: &Value, path: &[String]) -> Result<Vec<Value>, String> {
    match at(body, path) {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Err(match other {
            Value::Object(map) => {
                let keys: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
                format!("an object with keys {}", keys.join(", "))
            }
            _ => type_name(other).to_string(),
        }),
        None => Err("nothing there".into()),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The next page's URL after `current` returned `body` with `count`
/// records; None on the last page.
pub fn next_url(
    pagination: Option<&Pagination>,
    current: &Url,
    body: &Value,
    count: usize,
) -> Option<Url> {
    let text_at = |path: &str| {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        match at(body, &keys) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    match pagination? {
        Pagination::NextLink { next } => current.join(&text_at(next)?).ok(),
        Pagination::Cursor { param, cursor } => {
            if count == 0 {
                return None;
            }
            let mut url = current.clone();
            set_param(&mut url, param, &text_at(cursor)?);
            Some(url)
        }
        Pagination::Offset {
            param, page_size, ..
        } => {
            if count < *page_size || count == 0 {
                return None;
            }
            let offset: usize = current
                .query_pairs()
                .find(|(k, _)| k == param)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut url = current.clone();
            set_param(&mut url, param, &(offset + count).to_string());
            Some(url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn records_follow_the_path() {
        let body = json!({"data": {"items": [{"a": 1}, {"a": 2}]}});
        let path = vec!["data".to_string(), "items".to_string()];
        assert_eq!(records_at(&body, &path).unwrap().len(), 2);
        assert_eq!(records_at(&json!([{"a": 1}]), &[]).unwrap().len(), 1);
        let err = records_at(&json!({"results": []}), &path).unwrap_err();
        assert_eq!(err, "nothing there");
        let err = records_at(&json!({"data": {"rows": []}}), &path[..1]).unwrap_err();
        assert_eq!(err, "an object with keys rows");
    }

    #[test]
    fn next_link_is_absolute_or_relative() {
        let p = Pagination::NextLink {
            next: "links.next".into(),
        };
        let cur = url("http://h/api/items?page=1");
        let body = json!({"links": {"next": "/api/items?page=2"}});
        assert_eq!(
            next_url(Some(&p), &cur, &body, 5).unwrap().as_str(),
            "http://h/api/items?page=2"
        );
        let body = json!({"links": {"next": "http://other/x"}});
        assert_eq!(
            next_url(Some(&p), &cur, &body, 5).unwrap().as_str(),
            "http://other/x"
        );
        assert_eq!(
            next_url(Some(&p), &cur, &json!({"links": {"next": null}}), 5),
            None
        );
        assert_eq!(next_url(None, &cur, &body, 5), None);
    }

    #[test]
    fn cursor_and_offset_pages() {
        let p = Pagination::Cursor {
            param: "cursor".into(),
            cursor: "meta.next_cursor".into(),
        };
        let cur = url("http://h/x?cursor=a&limit=2");
        let body = json!({"meta": {"next_cursor": "b c"}});
        assert_eq!(
            next_url(Some(&p), &cur, &body, 2).unwrap().as_str(),
            "http://h/x?limit=2&cursor=b+c"
        );
        assert_eq!(next_url(Some(&p), &cur, &json!({"meta": {}}), 2), None);
        assert_eq!(next_url(Some(&p), &cur, &body, 0), None);

        let p = Pagination::Offset {
            param: "offset".into(),
            limit_param: Some("limit".into()),
            page_size: 2,
        };
        let cur = url("http://h/x?offset=2&limit=2");
        assert_eq!(
            next_url(Some(&p), &cur, &json!([]), 2).unwrap().as_str(),
            "http://h/x?limit=2&offset=4"
        );
        assert_eq!(next_url(Some(&p), &cur, &json!([]), 1), None);
    }
}
