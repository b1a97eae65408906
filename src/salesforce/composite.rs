//! Key lookups too long for one GET: their SOQL statements go as query
//! subrequests of `POST /composite`, five to a call (Salesforce's limit on
//! query subrequests), and the further pages of all of them (each one's
//! `nextRecordsUrl`) go together the same way. A composite request counts
//! as one API call, so N statements cost about N/5 calls instead of one
//! call per page per statement.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, FuturesUnordered, StreamExt};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{MAX_BATCH, QueryPage, QueryResponse, SalesforceClient, urlencode};
use super::{API_VERSION, SalesforceError};

/// Query subrequests (query, queryAll and their further pages) one
/// composite request may carry; it may carry 25 subrequests in all.
pub const MAX_COMPOSITE_QUERIES: usize = 5;

/// One query subrequest: a statement's first page or a further one.
#[derive(Debug, Clone, PartialEq)]
enum Work {
    Start(String),
    /// A `nextRecordsUrl` (`/services/data/vXX.X/query/01g...-2000`).
    More(String),
}

impl Work {
    fn url(&self, resource: &str) -> String {
        match self {
            Work::Start(soql) => {
                format!(
                    "/services/data/v{API_VERSION}/{resource}?q={}",
                    urlencode(soql)
                )
            }
            Work::More(url) => url.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeResponse {
    composite_response: Vec<SubResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubResponse {
    #[serde(default)]
    body: Value,
    http_status_code: u16,
    reference_id: String,
}

/// The next subrequests to send: a full call's worth, or, when nothing is
/// in flight (so no further page can join them), whatever is left.
fn next_batch<T>(queue: &mut VecDeque<T>, idle: bool) -> Option<Vec<T>> {
    if queue.len() >= MAX_COMPOSITE_QUERIES || (idle && !queue.is_empty()) {
        let n = queue.len().min(MAX_COMPOSITE_QUERIES);
        Some(queue.drain(..n).collect())
    } else {
        None
    }
}

type Answers = Result<Vec<(QueryPage, Option<String>)>, SalesforceError>;

/// The state of [`SalesforceClient::composite_query_pages`].
struct Rounds {
    client: Arc<SalesforceClient>,
    all_rows: bool,
    concurrency: usize,
    queue: VecDeque<Work>,
    in_flight: FuturesUnordered<BoxFuture<'static, Answers>>,
    ready: VecDeque<QueryPage>,
}

impl Rounds {
    fn dispatch(&mut self) {
        while self.in_flight.len() < self.concurrency {
            let Some(batch) = next_batch(&mut self.queue, self.in_flight.is_empty()) else {
                break;
            };
            let client = Arc::clone(&self.client);
            let all_rows = self.all_rows;
            self.in_flight.push(Box::pin(async move {
                client.composite_round(batch, all_rows).await
            }));
        }
    }
}

impl SalesforceClient {
    /// Run `statements` (through `queryAll` when `all_rows`) as query
    /// subrequests of composite requests, up to `concurrency` requests at a
    /// time, and yield every page of every statement as it arrives (in no
    /// particular order across statements). The first error, of a request
    /// or of a subrequest, ends the stream; dropping the stream abandons
    /// the requests in flight.
    pub fn composite_query_pages(
        self: &Arc<Self>,
        statements: Vec<String>,
        all_rows: bool,
        concurrency: usize,
    ) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
        let rounds = Rounds {
            client: Arc::clone(self),
            all_rows,
            concurrency: concurrency.max(1),
            queue: statements.into_iter().map(Work::Start).collect(),
            in_flight: FuturesUnordered::new(),
            ready: VecDeque::new(),
        };
        stream::try_unfold(rounds, |mut rounds| async move {
            loop {
                if let Some(page) = rounds.ready.pop_front() {
                    return Ok(Some((page, rounds)));
                }
                rounds.dispatch();
                match rounds.in_flight.next().await {
                    None => return Ok(None),
                    Some(answers) => {
                        for (page, next) in answers? {
                            if let Some(url) = next {
                                rounds.queue.push_back(Work::More(url));
                            }
                            rounds.ready.push_back(page);
                        }
                    }
                }
            }
        })
        .boxed()
    }

    /// One composite request of query subrequests: each one's page and
    /// `nextRecordsUrl`, in the order of `work`.
    async fn composite_round(&self, work: Vec<Work>, all_rows: bool) -> Answers {
        let resource = if all_rows { "queryAll" } else { "query" };
        let requests: Vec<Value> = work
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({
                    "method": "GET",
                    "url": w.url(resource),
                    "referenceId": format!("page{i}"),
                    "httpHeaders": { "Sforce-Query-Options": format!("batchSize={MAX_BATCH}") },
                })
            })
            .collect();
        // The subrequests are reads and independent of one another.
        let body = json!({ "allOrNone": false, "compositeRequest": requests });
        let (_, bytes) = self
            .send(Method::POST, "composite", Some(&body), true)
            .await?;
        let response: CompositeResponse = self.decode("composite", &bytes)?;
        let mut subs = response.composite_response;
        let mut answers = Vec::with_capacity(work.len());
        for i in 0..work.len() {
            let reference = format!("page{i}");
            let Some(at) = subs.iter().position(|s| s.reference_id == reference) else {
                return Err(self.decode_error(
                    "composite",
                    format!("no response to subrequest {reference}"),
                ));
            };
            let sub = subs.swap_remove(at);
            if !(200..300).contains(&sub.http_status_code) {
                let status =
                    StatusCode::from_u16(sub.http_status_code).unwrap_or(StatusCode::BAD_REQUEST);
                let body = serde_json::to_vec(&sub.body).unwrap_or_default();
                return Err(self.api_error(status, &body));
            }
            let page: QueryResponse = serde_json::from_value(sub.body)
                .map_err(|e| self.decode_error("query", e.to_string()))?;
            let next = page.next_records_url.filter(|_| !page.done);
            answers.push((
                QueryPage {
                    total_size: page.total_size,
                    records: page.records,
                },
                next,
            ));
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_calls_go_at_once_and_a_partial_one_only_when_idle() {
        let mut queue: VecDeque<usize> = (0..12).collect();
        assert_eq!(next_batch(&mut queue, false), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(next_batch(&mut queue, false), Some(vec![5, 6, 7, 8, 9]));
        // Two left while a call is out: its further pages may join them.
        assert_eq!(next_batch(&mut queue, false), None);
        assert_eq!(next_batch(&mut queue, true), Some(vec![10, 11]));
        assert_eq!(next_batch(&mut queue, true), None);
    }

    #[test]
    fn a_subrequest_url_is_the_query_resource_or_the_next_page() {
        let start = Work::Start("SELECT Id FROM Contact WHERE Email IN ('a@x.com')".into());
        assert_eq!(
            start.url("query"),
            format!(
                "/services/data/v{API_VERSION}/query?q=SELECT+Id+FROM+Contact+WHERE+Email+IN+%28%27a%40x.com%27%29"
            )
        );
        let more = Work::More("/services/data/v62.0/query/01gx-2000".into());
        assert_eq!(more.url("queryAll"), "/services/data/v62.0/query/01gx-2000");
    }
}
