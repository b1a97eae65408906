//! Bulk API 2.0 query jobs on the client side: create the job, poll it
//! until it is done, then stream its CSV results one `Sforce-Locator` page
//! at a time, so that memory holds one page whatever the result's size. A
//! stream dropped before the job finished (a cancelled statement, a
//! `statement_timeout`, a client gone) aborts the job.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use reqwest::Method;
use serde_json::json;

use super::SalesforceError;
use super::bulk::{JobInfo, PollPolicy, wait_for_job};
use super::client::{Payload, SalesforceClient, urlencode};

/// Records asked for per results page: big enough to keep calls few
/// (20 for a million records), small enough that one page's CSV (~10 MB
/// for ten short fields) keeps memory flat.
pub const BULK_PAGE_RECORDS: usize = 50_000;

/// One page of a Bulk query's results.
#[derive(Debug, Clone)]
pub struct CsvPage {
    /// The column names, as the SOQL selects them (`Account.Name`).
    pub header: csv::StringRecord,
    pub rows: Vec<csv::StringRecord>,
}

/// How a Bulk query runs.
#[derive(Debug, Clone, Copy)]
pub struct BulkQueryOptions {
    /// `queryAll`: deleted and archived records too.
    pub all_rows: bool,
    /// `maxRecords` of each results page.
    pub page_records: usize,
    pub poll: PollPolicy,
}

impl Default for BulkQueryOptions {
    fn default() -> Self {
        BulkQueryOptions {
            all_rows: false,
            page_records: BULK_PAGE_RECORDS,
            // A query job usually finishes within seconds: poll sooner
            // than an ingest job.
            poll: PollPolicy {
                initial: Duration::from_millis(200),
                ..PollPolicy::default()
            },
        }
    }
}

/// The job of a running query; dropped before the job finished, it asks
/// Salesforce to abort the job, so that a stopped statement leaves no work
/// behind.
struct JobGuard {
    client: Arc<SalesforceClient>,
    id: String,
    finished: bool,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = Arc::clone(&self.client);
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            if let Err(e) = client.abort_query_job(&id).await {
                tracing::warn!(connection = %client.name(), job = %id, error = %e, "could not abort Bulk query job");
            }
        });
    }
}

enum Step {
    Create(String),
    Wait(JobGuard),
    Page(JobGuard, Option<String>),
    Done,
}

impl SalesforceClient {
    /// Run `soql` as a Bulk API 2.0 query job and yield its results page by
    /// page as they are fetched.
    pub fn bulk_query(
        self: &Arc<Self>,
        soql: String,
        options: BulkQueryOptions,
    ) -> BoxStream<'static, Result<CsvPage, SalesforceError>> {
        let client = Arc::clone(self);
        stream::try_unfold(Step::Create(soql), move |step| {
            let client = Arc::clone(&client);
            async move {
                let mut step = step;
                loop {
                    step = match step {
                        Step::Done => return Ok(None),
                        Step::Create(soql) => {
                            Step::Wait(client.create_query_job(&soql, options).await?)
                        }
                        Step::Wait(mut job) => {
                            let path = format!("jobs/query/{}", job.id);
                            let info =
                                wait_for_job(&client, &path, options.poll, &mut 0, |_| {}).await?;
                            job.finished = true;
                            if info.state != "JobComplete" {
                                return Err(failed(&client, info));
                            }
                            Step::Page(job, None)
                        }
                        Step::Page(job, locator) => {
                            let (page, next) = client
                                .query_results(&job.id, locator.as_deref(), options.page_records)
                                .await?;
                            let next = match next {
                                Some(l) => Step::Page(job, Some(l)),
                                None => Step::Done,
                            };
                            return Ok(Some((page, next)));
                        }
                    };
                }
            }
        })
        .boxed()
    }

    async fn create_query_job(
        self: &Arc<Self>,
        soql: &str,
        options: BulkQueryOptions,
    ) -> Result<JobGuard, SalesforceError> {
        let spec = json!({
            "operation": if options.all_rows { "queryAll" } else { "query" },
            "query": soql,
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        });
        // Not retried: a lost answer would leave a second job running.
        let (_, bytes) = self
            .send_payload(Method::POST, "jobs/query", Payload::Json(&spec), false)
            .await?;
        let info: JobInfo = self.decode("Bulk query job", &bytes)?;
        Ok(JobGuard {
            client: Arc::clone(self),
            id: info.id,
            finished: false,
        })
    }

    /// One results page and the locator of the next (`None` when done).
    async fn query_results(
        &self,
        job: &str,
        locator: Option<&str>,
        max_records: usize,
    ) -> Result<(CsvPage, Option<String>), SalesforceError> {
        let mut path = format!("jobs/query/{job}/results?maxRecords={max_records}");
        if let Some(l) = locator {
            path.push_str(&format!("&locator={}", urlencode(l)));
        }
        let (_, headers, bytes) = self
            .send_full(Method::GET, &path, Payload::None, true, 0)
            .await?;
        let next = headers
            .get("Sforce-Locator")
            .and_then(|v| v.to_str().ok())
            .filter(|l| !l.is_empty() && *l != "null")
            .map(str::to_string);
        let page = parse_page(&bytes).map_err(|e| SalesforceError::Decode {
            connection: self.name().to_string(),
            what: "Bulk query results".into(),
            detail: e.to_string(),
        })?;
        Ok((page, next))
    }

    /// Ask Salesforce to stop a query job (`PATCH {"state":"Aborted"}`).
    pub async fn abort_query_job(&self, job: &str) -> Result<(), SalesforceError> {
        let body = json!({ "state": "Aborted" });
        self.send_payload(
            Method::PATCH,
            &format!("jobs/query/{job}"),
            Payload::Json(&body),
            true,
        )
        .await
        .map(|_| ())
    }
}

fn failed(client: &SalesforceClient, info: JobInfo) -> SalesforceError {
    SalesforceError::BulkQueryFailed {
        connection: client.name().to_string(),
        job: info.id,
        state: info.state,
        message: info.error_message.unwrap_or_else(|| "no message".into()),
    }
}

/// A results page: header row, then one record per row.
fn parse_page(bytes: &[u8]) -> Result<CsvPage, csv::Error> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let header = reader.headers()?.clone();
    let rows = reader.records().collect::<Result<Vec<_>, _>>()?;
    Ok(CsvPage { header, rows })
}

#[cfg(test)]
mod tests {
    use super::parse_page;

    #[test]
    fn pages_keep_quotes_commas_and_empty_cells() {
        let page = parse_page(b"Id,Name,Account.Name\n003A,\"Doe, \"\"J\"\"\",\n003B,x,Acme\n")
            .expect("csv");
        assert_eq!(
            page.header.iter().collect::<Vec<_>>(),
            ["Id", "Name", "Account.Name"]
        );
        assert_eq!(page.rows.len(), 2);
        assert_eq!(&page.rows[0][1], "Doe, \"J\"");
        assert_eq!(&page.rows[0][2], "");
        assert!(parse_page(b"").expect("empty").rows.is_empty());
    }
}
