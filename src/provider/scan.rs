//! `SObjectScanExec`: runs the SOQL statements of one scan and streams each
//! page as a record batch as soon as it arrives. A scan can also be the
//! lookup side of a join: then its statements are built at execution time
//! from the keys the join's other side produced (`WHERE Email IN (...)`):
//! one GET while the `IN` list fits in a URI, else statements of about a
//! page of keys each sent as query subrequests of composite requests (five
//! a call, their further pages together too; see `salesforce/composite.rs`).
//!
//! A large scan switches to a Bulk API 2.0 query job: the first REST page
//! says how many records match (`totalSize`); above
//! `sfsql.bulk_query_threshold` the REST cursor is left and the same SOQL
//! runs as a Bulk job whose CSV pages stream in its place (one job, polls,
//! then 50,000 records a call instead of 2,000).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};

use super::arrow::{csv_rows_to_batch, records_to_batch};
use super::lookup::KeySlot;
use super::options::ScanOptions;
use crate::salesforce::{
    BulkQueryOptions, MAX_BATCH, MAX_COMPOSITE_QUERIES, QueryPage, SalesforceClient,
    SalesforceError,
};
use crate::soql::{self, Budget, Condition, FieldInfo};

/// Keys per statement of a composite key lookup: a page of 2,000 records
/// with a tenth to spare for keys that match more than one record (an
/// overflowing statement costs a further page, about a fifth of a call).
const COMPOSITE_LOOKUP_KEYS: usize = MAX_BATCH * 9 / 10;

/// Key-lookup statements (or composite requests) run this many at a time:
/// their results are disjoint and a join does not care about order.
const LOOKUP_CONCURRENCY: usize = 4;

/// What one scan asks Salesforce for, before any join keys are known.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub sobject: String,
    /// The SOQL field list. Empty when no column is needed (`count(*)`):
    /// the scan then asks `SELECT COUNT()` and yields rows without columns.
    pub select: Vec<String>,
    pub conditions: Vec<Condition>,
    /// SOQL ORDER BY items, sent only with a LIMIT that DataFusion's sort
    /// above the scan applies again (see [`super::SortLimitPushdown`]).
    pub order_by: Vec<String>,
    pub limit: Option<usize>,
    /// `queryAll`: deleted and archived records too (`<object>_all` tables).
    pub all_rows: bool,
}

impl ScanSpec {
    pub fn statements(&self, extra: Option<Condition>) -> Result<Vec<String>> {
        self.statements_within(extra, Budget::URI)
    }

    fn statements_within(&self, extra: Option<Condition>, budget: Budget) -> Result<Vec<String>> {
        let mut conditions = self.conditions.clone();
        conditions.extend(extra);
        soql::split_statements(
            &self.select,
            &self.sobject,
            &conditions,
            &self.order_by,
            self.limit,
            budget,
        )
        .map_err(|e| DataFusionError::Plan(format!("{}: {e}", self.sobject)))
    }

    /// The statements of a plain scan, and whether they go as composite
    /// requests: a WHERE whose `IN` list does not fit in one URI (and that
    /// has no ORDER BY or LIMIT, whose statements may stop early) is split
    /// into statements of about a page of keys each instead, five to a
    /// composite request, as a join's key lookup is.
    fn plain_statements(&self) -> Result<(Vec<String>, bool)> {
        let uri = self.statements(None)?;
        if uri.len() <= 1
            || self.limit.is_some()
            || !self.order_by.is_empty()
            || self.select.is_empty()
        {
            return Ok((uri, false));
        }
        let statements = self.statements_within(None, Budget::composite(COMPOSITE_LOOKUP_KEYS))?;
        Ok((statements, true))
    }

    /// How a key lookup by `keys` is sent: as one GET while it fits in a
    /// URI, else as composite requests of statements that each ask for
    /// about one page of records.
    fn key_lookup(&self, keys: Condition) -> Result<KeyLookup> {
        let uri = self.statements(Some(keys.clone()))?;
        if uri.len() <= 1 {
            return Ok(KeyLookup::Get(uri));
        }
        let statements =
            self.statements_within(Some(keys), Budget::composite(COMPOSITE_LOOKUP_KEYS))?;
        Ok(KeyLookup::Composite(statements))
    }
}

/// The statements of one key lookup, and how they are sent.
#[derive(Debug)]
enum KeyLookup {
    /// `GET query?q=`, each statement's pages one after the other.
    Get(Vec<String>),
    /// Query subrequests of `POST /composite`.
    Composite(Vec<String>),
}

impl KeyLookup {
    /// What EXPLAIN ANALYZE says of it.
    fn describe(&self) -> String {
        match self {
            KeyLookup::Get(s) if s.len() == 1 => "GET key lookup, 1 statement".into(),
            KeyLookup::Get(s) => format!("GET key lookup, {} statements", s.len()),
            KeyLookup::Composite(s) => format!(
                "composite key lookup, {} statements ({} composite requests for their first pages)",
                s.len(),
                s.len().div_ceil(MAX_COMPOSITE_QUERIES)
            ),
        }
    }

    fn pages(
        self,
        client: Arc<SalesforceClient>,
        all_rows: bool,
    ) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
        match self {
            KeyLookup::Get(statements) => {
                fetch_pages(client, statements, LOOKUP_CONCURRENCY, all_rows)
            }
            KeyLookup::Composite(statements) => {
                client.composite_query_pages(statements, all_rows, LOOKUP_CONCURRENCY)
            }
        }
    }
}

/// The scan fetches only the records whose `column` matches a key that
/// the join's build side published into `slot`.
#[derive(Debug, Clone)]
struct Lookup {
    column: usize,
    slot: Arc<KeySlot>,
}

#[derive(Debug)]
pub struct SObjectScanExec {
    client: Arc<SalesforceClient>,
    schema: SchemaRef,
    /// JSON keys of the output columns, parallel to `schema`.
    api_names: Vec<String>,
    /// What the translator knows of each output column, parallel to `schema`.
    fields: Vec<FieldInfo>,
    spec: ScanSpec,
    /// The statements of a plain scan; their results are disjoint. Run
    /// one after the other as GETs, or, when `composite`, as query
    /// subrequests of composite requests.
    statements: Vec<String>,
    /// A long `IN` list (an UPDATE's target keys, a literal list) split
    /// into statements of about a page of keys each, sent five to a
    /// `POST /composite` rather than as one GET per URI-sized piece.
    composite: bool,
    lookup: Option<Lookup>,
    /// Records above which the scan runs as a Bulk query job; `None` when
    /// it never does (a LIMIT at or under the threshold, `count(*)`,
    /// several statements, `sfsql.bulk_query_threshold = 0`).
    bulk_above: Option<usize>,
    /// How the last execution read, for EXPLAIN ANALYZE.
    used: Arc<std::sync::Mutex<Option<&'static str>>>,
    /// How the last execution of a key lookup sent it, for EXPLAIN ANALYZE.
    lookup_used: Arc<std::sync::Mutex<Option<String>>>,
    properties: Arc<PlanProperties>,
}

/// Which scans may become a Bulk query, and above how many records.
fn bulk_above(
    spec: &ScanSpec,
    fields: &[FieldInfo],
    statements: usize,
    options: ScanOptions,
) -> Option<usize> {
    let threshold = options.bulk_query_threshold;
    let small = spec.limit.is_some_and(|l| l <= threshold);
    // Bulk queries cannot select base64 fields.
    let blobs = fields.iter().any(|f| f.sf_type == "base64");
    (threshold > 0 && !small && !blobs && !spec.select.is_empty() && statements == 1)
        .then_some(threshold)
}

impl SObjectScanExec {
    pub fn new(
        client: Arc<SalesforceClient>,
        schema: SchemaRef,
        fields: Vec<FieldInfo>,
        spec: ScanSpec,
        options: ScanOptions,
    ) -> Result<Self> {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let (statements, composite) = spec.plain_statements()?;
        // A composite key list is bounded by its keys: REST.
        let bulk_above =
            bulk_above(&spec, &fields, statements.len(), options).filter(|_| !composite);
        Ok(SObjectScanExec {
            client,
            api_names: fields.iter().map(|f| f.api_name.clone()).collect(),
            schema,
            fields,
            statements,
            composite,
            spec,
            lookup: None,
            bulk_above,
            used: Arc::default(),
            lookup_used: Arc::default(),
            properties,
        })
    }

    pub fn statements(&self) -> &[String] {
        &self.statements
    }

    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }

    /// The field behind output column `index`.
    pub fn field(&self, index: usize) -> Option<&FieldInfo> {
        self.fields.get(index)
    }

    pub fn is_lookup(&self) -> bool {
        self.lookup.is_some()
    }

    /// The same scan, asking Salesforce for its first `limit` records in
    /// `order_by` order.
    pub fn with_order(&self, order_by: Vec<String>, limit: usize) -> Result<SObjectScanExec> {
        let spec = ScanSpec {
            order_by,
            limit: Some(limit),
            ..self.spec.clone()
        };
        Ok(SObjectScanExec {
            client: Arc::clone(&self.client),
            schema: Arc::clone(&self.schema),
            api_names: self.api_names.clone(),
            fields: self.fields.clone(),
            statements: spec.statements(None)?,
            composite: false,
            spec,
            lookup: None,
            // The first `limit` records in order: never a Bulk job.
            bulk_above: None,
            used: Arc::default(),
            lookup_used: Arc::default(),
            properties: Arc::clone(&self.properties),
        })
    }

    /// How the scan reads, as EXPLAIN shows it: `REST query`, `Bulk query`
    /// (`queryAll` for `_all` tables), or before it ran, both with the
    /// threshold between them.
    fn method(&self) -> String {
        let op = if self.spec.all_rows {
            "queryAll"
        } else {
            "query"
        };
        let used = self.used.lock().ok().and_then(|u| *u);
        if self.composite {
            let n = self.statements.len();
            let calls = n.div_ceil(MAX_COMPOSITE_QUERIES);
            let run = if used.is_some() { " (as run)" } else { "" };
            return format!(
                "composite {op}, {n} statements of up to {COMPOSITE_LOOKUP_KEYS} keys in {calls} composite requests for their first pages{run}"
            );
        }
        match (used, self.bulk_above) {
            (Some(how), _) => format!("{how} {op} (as run)"),
            (None, Some(n)) => {
                format!("REST {op}, Bulk {op} if more than {n} records match")
            }
            (None, None) => format!("REST {op}"),
        }
    }

    /// The selected base64 fields: a query returns a URL for each blob,
    /// fetched before the page becomes a batch.
    fn blob_columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.sf_type == "base64")
            .map(|f| f.api_name.clone())
            .collect()
    }

    /// REST pages as batches; for `SELECT COUNT()` (no column selected)
    /// rows without columns, as many as `totalSize` says.
    fn page_batches(
        &self,
        pages: BoxStream<'static, Result<QueryPage>>,
        convert: Converter,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        if !self.spec.select.is_empty() {
            let blobs = self.blob_columns();
            let pages = if blobs.is_empty() {
                pages
            } else {
                super::blob::with_blobs(
                    Arc::clone(&self.client),
                    pages,
                    format!(
                        "{}.{}",
                        self.client.name(),
                        self.spec.sobject.to_ascii_lowercase()
                    ),
                    blobs,
                )
            };
            return pages
                .and_then(move |page| {
                    let batch = convert.rest(&page);
                    async move { batch }
                })
                .boxed();
        }
        let schema = Arc::clone(&self.schema);
        pages
            .map_ok(move |page| {
                let total = usize::try_from(page.total_size).unwrap_or(usize::MAX);
                let schema = Arc::clone(&schema);
                stream::iter(row_counts(total)).map(move |n| {
                    RecordBatch::try_new_with_options(
                        Arc::clone(&schema),
                        vec![],
                        &RecordBatchOptions::new().with_row_count(Some(n)),
                    )
                    .map_err(DataFusionError::from)
                })
            })
            .try_flatten()
            .boxed()
    }

    /// The same scan, fetching only records whose column `column` matches
    /// a key published into `slot`.
    pub fn with_lookup(&self, column: usize, slot: Arc<KeySlot>) -> SObjectScanExec {
        SObjectScanExec {
            client: Arc::clone(&self.client),
            schema: Arc::clone(&self.schema),
            api_names: self.api_names.clone(),
            fields: self.fields.clone(),
            spec: self.spec.clone(),
            statements: self.statements.clone(),
            composite: self.composite,
            lookup: Some(Lookup { column, slot }),
            // Key lookups are bounded by their keys: REST.
            bulk_above: None,
            used: Arc::default(),
            lookup_used: Arc::default(),
            properties: Arc::clone(&self.properties),
        }
    }
}

/// Batch sizes that add up to `total` rows.
fn row_counts(total: usize) -> impl Iterator<Item = usize> {
    const BATCH: usize = 8192;
    (0..total.div_ceil(BATCH)).map(move |i| (total - i * BATCH).min(BATCH))
}

/// Fetch the pages of `statements` (through `queryAll` when `all_rows`),
/// up to `concurrency` statements at a time.
pub fn fetch_pages(
    client: Arc<SalesforceClient>,
    statements: Vec<String>,
    concurrency: usize,
    all_rows: bool,
) -> BoxStream<'static, Result<QueryPage, SalesforceError>> {
    let queries = stream::iter(statements).map(move |soql| client.query_rows(soql, all_rows));
    if concurrency <= 1 {
        queries.flatten().boxed()
    } else {
        queries.flatten_unordered(concurrency).boxed()
    }
}

/// Rows of a Bulk results page per batch: DataFusion's default batch size.
const BULK_BATCH_ROWS: usize = 8192;

/// What converts fetched records into batches of the scan's schema.
#[derive(Clone)]
struct Converter {
    schema: SchemaRef,
    api_names: Arc<Vec<String>>,
}

impl Converter {
    fn rest(&self, page: &QueryPage) -> Result<RecordBatch> {
        records_to_batch(&self.schema, &self.api_names, &page.records)
            .map_err(DataFusionError::from)
    }

    /// A Bulk results page as batches of at most [`BULK_BATCH_ROWS`] rows.
    fn bulk(&self, page: &crate::salesforce::CsvPage) -> Vec<Result<RecordBatch>> {
        page.rows
            .chunks(BULK_BATCH_ROWS)
            .map(|rows| {
                csv_rows_to_batch(&self.schema, &self.api_names, &page.header, rows)
                    .map_err(DataFusionError::from)
            })
            .collect()
    }
}

fn external(e: SalesforceError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A plain scan that becomes a Bulk query job when its first REST page
/// says more than `threshold` records match.
fn rest_or_bulk(
    client: Arc<SalesforceClient>,
    soql: String,
    all_rows: bool,
    threshold: usize,
    convert: Converter,
    used: Arc<std::sync::Mutex<Option<&'static str>>>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let set_used = move |how: &'static str| {
        if let Ok(mut u) = used.lock() {
            *u = Some(how);
        }
    };
    stream::once(async move {
        // The first page is as large as the threshold (within Salesforce's
        // 200..2000), so a low threshold is seen after one page.
        let mut rest = client.query_pages(soql.clone(), all_rows, threshold);
        let first = match rest.next().await {
            None => return stream::empty().boxed(),
            Some(Err(e)) => return stream::once(async move { Err(external(e)) }).boxed(),
            Some(Ok(page)) => page,
        };
        let more = first.total_size > first.records.len() as u64;
        if more && first.total_size > threshold as u64 {
            // Dropping the REST stream leaves its cursor: the first page's
            // records come again from the job.
            drop(rest);
            set_used("Bulk");
            let options = BulkQueryOptions {
                all_rows,
                ..BulkQueryOptions::default()
            };
            return client
                .bulk_query(soql, options)
                .map(move |page| match page {
                    Ok(page) => stream::iter(convert.bulk(&page)),
                    Err(e) => stream::iter(vec![Err(external(e))]),
                })
                .flatten()
                .boxed();
        }
        set_used("REST");
        let rest_convert = convert.clone();
        stream::once(async move { convert.rest(&first) })
            .chain(rest.map(move |page| page.map_err(external).and_then(|p| rest_convert.rest(&p))))
            .boxed()
    })
    .flatten()
    .boxed()
}

impl DisplayAs for SObjectScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let conn = self.client.name();
        if let Some(lookup) = &self.lookup {
            let field = &self.fields[lookup.column].api_name;
            let base = self.spec.statements(None).ok();
            let base = base
                .as_ref()
                .and_then(|s| s.first())
                .map_or("", String::as_str);
            let joiner = if self.spec.conditions.is_empty() {
                " WHERE"
            } else {
                " AND"
            };
            let used = self.lookup_used.lock().ok().and_then(|u| u.clone());
            let method = match used {
                Some(how) => format!("{how} (as run)"),
                None => format!(
                    "one GET while the IN list fits in a URI, else composite requests of {MAX_COMPOSITE_QUERIES} statements of up to {COMPOSITE_LOOKUP_KEYS} keys"
                ),
            };
            return write!(
                f,
                "SObjectScanExec: connection={conn}, lookup by key=[{base}{joiner} {field} IN (<keys from {}>)], method={method}",
                lookup.slot.describe()
            );
        }
        let first = self.statements.first().map(String::as_str).unwrap_or("");
        match (t, self.statements.len()) {
            (_, 1) => write!(
                f,
                "SObjectScanExec: connection={conn}, soql=[{first}], method={}",
                self.method()
            ),
            (DisplayFormatType::Verbose, n) => {
                write!(f, "SObjectScanExec: connection={conn}, {n} statements: ")?;
                for (i, s) in self.statements.iter().enumerate() {
                    write!(f, "[{}] {s} ", i + 1)?;
                }
                write!(f, "method={}", self.method())
            }
            (_, n) => {
                let shown: String = first.chars().take(400).collect();
                let ellipsis = if shown.len() < first.len() { "..." } else { "" };
                write!(
                    f,
                    "SObjectScanExec: connection={conn}, {n} statements (IN list split; EXPLAIN VERBOSE shows all), first=[{shown}{ellipsis}], method={}",
                    self.method()
                )
            }
        }
    }
}

impl ExecutionPlan for SObjectScanExec {
    fn name(&self) -> &str {
        "SObjectScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "SObjectScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "SObjectScanExec has one partition, not {partition}"
            )));
        }
        let client = Arc::clone(&self.client);
        let all_rows = self.spec.all_rows;
        let convert = Converter {
            schema: Arc::clone(&self.schema),
            api_names: Arc::new(self.api_names.clone()),
        };
        let batches: BoxStream<'static, Result<RecordBatch>> = match (&self.lookup, self.bulk_above)
        {
            (None, Some(threshold)) => rest_or_bulk(
                client,
                self.statements[0].clone(),
                all_rows,
                threshold,
                convert,
                Arc::clone(&self.used),
            ),
            (None, None) => {
                if let Ok(mut u) = self.used.lock() {
                    *u = Some(if self.composite { "composite" } else { "REST" });
                }
                let statements = self.statements.clone();
                let pages = if self.composite {
                    client.composite_query_pages(statements, all_rows, LOOKUP_CONCURRENCY)
                } else {
                    fetch_pages(client, statements, 1, all_rows)
                };
                self.page_batches(pages.map_err(external).boxed(), convert)
            }
            (Some(lookup), _) => {
                let slot = Arc::clone(&lookup.slot);
                let field = self.fields[lookup.column].clone();
                let spec = self.spec.clone();
                let fallback = self.statements.clone();
                let used = Arc::clone(&self.lookup_used);
                let pages = stream::once(async move {
                    let keys = slot.wait().await?;
                    let lookup = match soql::key_condition(&field, &keys) {
                        // Some key has no SOQL form: scan, the join still filters.
                        None => KeyLookup::Get(fallback),
                        Some(None) => KeyLookup::Get(vec![]),
                        Some(Some(cond)) => spec.key_lookup(cond)?,
                    };
                    if let Ok(mut u) = used.lock() {
                        *u = Some(lookup.describe());
                    }
                    Ok::<_, DataFusionError>(lookup.pages(client, all_rows).map_err(external))
                })
                .try_flatten()
                .boxed();
                self.page_batches(pages, convert)
            }
        };
        let schema = Arc::clone(&self.schema);
        let limited: BoxStream<'static, Result<_>> = match self.spec.limit {
            None => batches,
            // Stop polling (and so stop sending requests) once the limit is met.
            Some(limit) => stream::unfold((batches, limit), |(mut inner, remaining)| async move {
                if remaining == 0 {
                    return None;
                }
                match inner.next().await? {
                    Err(e) => Some((Err(e), (inner, 0))),
                    Ok(batch) => {
                        let take = batch.num_rows().min(remaining);
                        Some((Ok(batch.slice(0, take)), (inner, remaining - take)))
                    }
                }
            })
            .boxed(),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, limited)))
    }
}

#[cfg(test)]
mod tests {
    use super::row_counts;

    #[test]
    fn counts_split_into_batches_that_add_up() {
        assert_eq!(row_counts(0).count(), 0);
        assert_eq!(row_counts(5).collect::<Vec<_>>(), vec![5]);
        assert_eq!(
            row_counts(8192 * 2 + 1).collect::<Vec<_>>(),
            vec![8192, 8192, 1]
        );
    }
}
