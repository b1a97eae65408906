//! base64 (blob) columns. In a REST query Salesforce returns, in place of a
//! blob, the URL to GET it from
//! (`/services/data/v62.0/sobjects/Attachment/00P.../Body`). A scan whose
//! projection holds a blob column fetches each blob (a few at a time) and
//! puts its bytes, base64-encoded, where the URL was; a scan that does not
//! project one never asks, so `SELECT name FROM attachment` costs no blob
//! call. `SELECT *` projects every column: it fetches the blobs too, up to
//! [`MAX_BLOBS_PER_SCAN`], and fails before the first one beyond that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use datafusion::error::{DataFusionError, Result};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::salesforce::{QueryPage, SalesforceClient};

/// Blobs fetched at a time: one GET each, and Salesforce has no batch form.
const BLOB_CONCURRENCY: usize = 4;

/// Blobs one scan may fetch: each is an API call, so a `SELECT *` over a
/// large object must not spend the org's daily allowance unasked.
pub const MAX_BLOBS_PER_SCAN: u64 = 2_000;

/// Why a scan refuses to fetch its blobs.
fn too_many(table: &str, columns: &[String], needed: u64) -> DataFusionError {
    let columns = columns.join(", ").to_ascii_lowercase();
    DataFusionError::ResourcesExhausted(format!(
        "{table}: this query would download {needed} blobs of {columns} (one API call each); \
         sfsql downloads at most {MAX_BLOBS_PER_SCAN} per query. Add a WHERE or LIMIT, or \
         leave {columns} out of the column list"
    ))
}

/// `pages` with every blob URL under `columns` (JSON keys) replaced by the
/// blob's bytes, base64-encoded.
pub fn with_blobs(
    client: Arc<SalesforceClient>,
    pages: BoxStream<'static, Result<QueryPage>>,
    sobject: String,
    columns: Vec<String>,
) -> BoxStream<'static, Result<QueryPage>> {
    let fetched = Arc::new(AtomicU64::new(0));
    let columns = Arc::new(columns);
    pages
        .and_then(move |mut page| {
            let client = Arc::clone(&client);
            let columns = Arc::clone(&columns);
            let fetched = Arc::clone(&fetched);
            let sobject = sobject.clone();
            async move {
                // totalSize counts the statement's records: its first page
                // says whether the whole result stays under the cap.
                let per_record = columns.len() as u64;
                let needed = page.total_size.saturating_mul(per_record);
                let so_far = fetched.load(Ordering::Relaxed);
                if needed > MAX_BLOBS_PER_SCAN
                    || so_far + page.records.len() as u64 * per_record > MAX_BLOBS_PER_SCAN
                {
                    return Err(too_many(&sobject, &columns, needed.max(so_far)));
                }
                let n = resolve(&client, &mut page.records, &columns).await?;
                fetched.fetch_add(n, Ordering::Relaxed);
                Ok(page)
            }
        })
        .boxed()
}

/// Fetch the blobs of `records`, [`BLOB_CONCURRENCY`] at a time; returns
/// how many were fetched.
async fn resolve(
    client: &Arc<SalesforceClient>,
    records: &mut [serde_json::Map<String, Value>],
    columns: &[String],
) -> Result<u64> {
    let wanted: Vec<(usize, String, String)> = records
        .iter()
        .enumerate()
        .flat_map(|(row, record)| {
            columns.iter().filter_map(move |key| match record.get(key) {
                Some(Value::String(url)) => Some((row, key.clone(), url.clone())),
                _ => None,
            })
        })
        .collect();
    let count = wanted.len() as u64;
    let blobs: Vec<(usize, String, bytes::Bytes)> = stream::iter(wanted)
        .map(|(row, key, url)| {
            let client = Arc::clone(client);
            async move {
                let bytes = client
                    .blob(&url)
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok::<_, DataFusionError>((row, key, bytes))
            }
        })
        .buffer_unordered(BLOB_CONCURRENCY)
        .try_collect()
        .await?;
    for (row, key, bytes) in blobs {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        records[row].insert(key, Value::String(encoded));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::Credentials;

    #[tokio::test]
    async fn a_scan_over_the_cap_fails_before_fetching_any_blob() {
        // No server listens there: a fetch would fail with a transport error.
        let client = Arc::new(SalesforceClient::new(
            "sandbox",
            "http://127.0.0.1:9",
            Credentials::ClientCredentials {
                client_id: "id".into(),
                client_secret: "secret".to_string().into(),
            },
        ));
        let record: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"Body":"/services/data/v62.0/sobjects/Attachment/00P000000000001AAA/Body"}"#,
        )
        .unwrap_or_default();
        let page = QueryPage {
            total_size: MAX_BLOBS_PER_SCAN + 1,
            records: vec![record],
        };
        let pages = stream::iter([Ok(page)]).boxed();
        let mut out = with_blobs(
            client,
            pages,
            "sandbox.attachment".into(),
            vec!["Body".into()],
        );
        let err = out.next().await.map(|r| r.err());
        let message = err.flatten().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("sandbox.attachment: this query would download 2001 blobs of body"),
            "{message}"
        );
        assert!(
            message.contains("leave body out of the column list"),
            "{message}"
        );
    }
}
