//! HTTP reports as tables: pages fetched when a query runs (never at start
//! when columns are declared), JSON records decoded to Arrow batches, and
//! the schema `reports` that infers an undeclared HTTP report's columns
//! from its first page the first time a query names it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::infer_json_schema_from_iterator;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::TryStreamExt;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::http::{HttpReportError, HttpSource};

/// Records of one page as a batch of `schema`.
pub fn decode(
    report: &str,
    schema: &SchemaRef,
    records: &[Value],
) -> Result<RecordBatch, HttpReportError> {
    let failed = |e: datafusion::arrow::error::ArrowError| HttpReportError::Decode {
        report: report.to_string(),
        message: e.to_string(),
    };
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(records.len().max(1))
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(failed)?;
    decoder.serialize(records).map_err(failed)?;
    Ok(decoder
        .flush()
        .map_err(failed)?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema))))
}

/// The table of an HTTP report with a known schema.
pub fn table(source: Arc<HttpSource>, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let partition = Arc::new(HttpPages {
        source,
        schema: Arc::clone(&schema),
    });
    Ok(Arc::new(StreamingTable::try_new(schema, vec![partition])?))
}

/// Infer the columns from the first page, then build the table.
async fn inferred_table(source: Arc<HttpSource>) -> Result<Arc<dyn TableProvider>> {
    let (records, _) = source.page(&source.first_url()).await.map_err(external)?;
    let schema = infer_json_schema_from_iterator(records.iter().map(Ok)).map_err(|e| {
        external(HttpReportError::Decode {
            report: source.report.clone(),
            message: format!("cannot infer columns from the first page ({e}); declare columns"),
        })
    })?;
    table(source, Arc::new(schema))
}

fn external(e: HttpReportError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Every page of one report, one batch per page, fetched as the query
/// reads them.
#[derive(Debug)]
struct HttpPages {
    source: Arc<HttpSource>,
    schema: SchemaRef,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No headers or auth: they hold secrets.
        f.debug_struct("HttpSource")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for HttpPages {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let source = Arc::clone(&self.source);
        let schema = Arc::clone(&self.schema);
        let first = Some(source.first_url());
        let pages = futures::stream::try_unfold((first, 0usize), move |(url, fetched)| {
            let source = Arc::clone(&source);
            let schema = Arc::clone(&schema);
            async move {
                let Some(url) = url else {
                    return Ok(None);
                };
                if fetched == source.max_pages {
                    return Err(HttpReportError::TooManyPages {
                        report: source.report.clone(),
                        max: source.max_pages,
                    });
                }
                let (records, next) = source.page(&url).await?;
                let batch = decode(&source.report, &schema, &records)?;
                Ok(Some((batch, (next, fetched + 1))))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            pages.map_err(external),
        ))
    }
}

/// A report whose columns come from its source, so its table is built the
/// first time a query names it (never at start, never by a listing).
#[async_trait]
pub trait LazyReport: std::fmt::Debug + Send + Sync {
    async fn table(self: Arc<Self>) -> Result<Arc<dyn TableProvider>>;
}

/// An HTTP report without declared columns: inferred from its first page.
#[async_trait]
impl LazyReport for HttpSource {
    async fn table(self: Arc<Self>) -> Result<Arc<dyn TableProvider>> {
        inferred_table(self).await
    }
}

/// A report whose table is built on first use.
type LazyTable = (Arc<dyn LazyReport>, OnceCell<Arc<dyn TableProvider>>);

/// Schema `reports`: registered tables, plus reports whose columns come
/// from their source on first use (so a server starts while an API is down).
#[derive(Debug, Default)]
pub struct ReportsSchema {
    tables: MemorySchemaProvider,
    lazy: BTreeMap<String, LazyTable>,
}

impl ReportsSchema {
    pub fn with_lazy(lazy: Vec<(String, Arc<dyn LazyReport>)>) -> Self {
        ReportsSchema {
            tables: MemorySchemaProvider::new(),
            lazy: lazy
                .into_iter()
                .map(|(name, source)| (name, (source, OnceCell::new())))
                .collect(),
        }
    }
}

#[async_trait]
impl SchemaProvider for ReportsSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.tables.table_names();
        names.extend(self.lazy.keys().cloned());
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some((source, cell)) = self.lazy.get(name) {
            let table = cell.get_or_try_init(|| Arc::clone(source).table()).await?;
            return Ok(Some(Arc::clone(table)));
        }
        self.tables.table(name).await
    }

    async fn table_type(&self, name: &str) -> Result<Option<TableType>> {
        if self.lazy.contains_key(name) {
            // Listing tables must not call the API.
            return Ok(Some(TableType::Base));
        }
        self.tables.table_type(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.tables.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.tables.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.lazy.contains_key(name) || self.tables.table_exist(name)
    }
}
