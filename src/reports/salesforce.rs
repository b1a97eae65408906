//! Salesforce analytics reports as tables: `format = "salesforce"` names a
//! connection and a report id. The first query that names the table
//! describes the report (one call) for its columns; every query runs it
//! (`analytics/reports/{id}?includeDetails=true`) and reads the detail rows
//! of its fact map (`T!T`).
//!
//! Columns are named after the detail columns' labels in snake case
//! (`WM NPS Score` → `wm_nps_score`), typed from their `dataType`; each
//! column's comment is its label and API name. Only tabular reports have
//! one list of detail rows: a summary or matrix report is refused with a
//! message saying what to do.
//!
//! A query's WHERE goes with the run as `reportFilters` (see
//! [`super::salesforce_filters`]), after the report's own filters. A run
//! returns at most 2,000 detail rows (`allData: false` past that), so each
//! run is sorted by a split column (an id, else a datetime, date or number
//! column): when a run is cut, the rows before its last value are kept and
//! the next run asks for the rest (`greaterOrEqual` that value), until a
//! run is whole; rows with a blank split value come in one run of their
//! own. The record count of the first run checks that every row was read
//! once. A report that cannot be split so (no such column, 2,000 rows with
//! one value, more than [`MAX_RUNS`] runs) fails with 54000 and says how to
//! narrow it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, stream};
use serde_json::{Map, Value};
use thiserror::Error;

use super::http_table::LazyReport;
use super::salesforce_filters::{self as filters, MAX_FILTERS};
use crate::salesforce::{
    ReportColumn, ReportDescribe, ReportFilter, ReportRun, RunRequest, SalesforceClient,
    SalesforceError,
};

/// Detail rows one run returns at most.
const RUN_ROWS: u64 = 2_000;

/// Runs one query makes of a report at most (Salesforce allows 500
/// synchronous report runs an hour): about 100,000 rows.
pub const MAX_RUNS: usize = 50;

/// Why a Salesforce report cannot be read.
#[derive(Debug, Error)]
pub enum SalesforceReportError {
    #[error(
        "report {report}: Salesforce report {report_id} ({name}) is a {format} report; sfsql reads \
         tabular reports only (one list of detail rows). Save a tabular copy of it in Salesforce \
         and set report_id to that copy's id"
    )]
    NotTabular {
        report: String,
        report_id: String,
        name: String,
        format: String,
    },
    #[error(
        "report {report}: Salesforce report {report_name} has {total} detail rows and the \
         Reports API returns 2,000 a run (allData is false); {why}. Add a WHERE on the table's \
         columns that keeps 2,000 rows or fewer (it is sent as a report filter), or query the \
         object it reports on (e.g. {connection}.contact) instead"
    )]
    Truncated {
        report: String,
        /// `00O... (name)`.
        report_name: String,
        total: String,
        connection: String,
        why: String,
    },
    #[error(
        "report {report}: Salesforce report {report_id} ({name}) changed while sfsql read it in \
         {runs} runs ({expected} rows at the first run, {read} read); run the query again"
    )]
    Moved {
        report: String,
        report_id: String,
        name: String,
        runs: usize,
        expected: u64,
        read: u64,
    },
    #[error(
        "report {report}: connection {connection} has no report {report_id}; check report_id \
         (the 00O... id in the report's URL in Salesforce)"
    )]
    NotFound {
        report: String,
        connection: String,
        report_id: String,
    },
    #[error(
        "report {report}: Salesforce report {report_id} changed its columns since sfsql read \
         them ({detail}); restart sfsql serve to read them again"
    )]
    Changed {
        report: String,
        report_id: String,
        detail: String,
    },
    #[error("report {report}: {source}")]
    Salesforce {
        report: String,
        #[source]
        source: SalesforceError,
    },
    #[error("report {report}: {message}")]
    Decode { report: String, message: String },
}

impl SalesforceReportError {
    /// The SQLSTATE a client sees.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SalesforceReportError::NotTabular { .. } => "0A000",
            SalesforceReportError::Truncated { .. } => "54000",
            SalesforceReportError::Moved { .. } => "40001",
            SalesforceReportError::NotFound { .. } => "42704",
            SalesforceReportError::Changed { .. } => "55000",
            SalesforceReportError::Salesforce { source, .. } if source.is_auth() => "28000",
            SalesforceReportError::Salesforce {
                source: SalesforceError::Transport { .. },
                ..
            } => "08006",
            SalesforceReportError::Salesforce { .. } => "58000",
            SalesforceReportError::Decode { .. } => "22000",
        }
    }
}

fn external(e: SalesforceReportError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The Arrow type of a report column's `dataType`. Currency is
/// numeric(18,2) (reports do not say a field's scale); an unknown type is
/// text (its label).
pub fn column_type(data_type: &str) -> DataType {
    match data_type {
        "boolean" => DataType::Boolean,
        "int" => DataType::Int64,
        "double" | "percent" => DataType::Float64,
        "currency" => DataType::Decimal128(18, 2),
        "date" => DataType::Date32,
        "datetime" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        "time" => DataType::Time64(TimeUnit::Nanosecond),
        _ => DataType::Utf8,
    }
}

/// A label as a column name: lower case, runs of other characters as one
/// `_` (`Zip/Postal Code` → `zip_postal_code`).
pub fn column_name(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "column".into()
    } else {
        trimmed.to_string()
    }
}

/// The table's schema: one column per detail column, named after its label
/// (`_2`, `_3`, ... when two labels give the same name).
pub fn report_schema(columns: &[ReportColumn]) -> Schema {
    let mut taken = HashSet::new();
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let base = column_name(&c.label);
            let mut name = base.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{base}_{n}");
            }
            let comment = format!("{} ({})", c.label, c.api_name);
            Field::new(name, column_type(&c.data_type), true).with_metadata(
                [
                    ("comment".to_string(), comment),
                    ("sfsql.api_name".to_string(), c.api_name.clone()),
                ]
                .into(),
            )
        })
        .collect();
    Schema::new(fields)
}

/// One detail row as a query record (API name → value), values in the
/// forms a SOQL query returns them: a currency's amount, text for a type
/// sfsql does not know.
fn record(
    columns: &[ReportColumn],
    cells: Vec<crate::salesforce::ReportCell>,
) -> Map<String, Value> {
    columns
        .iter()
        .zip(cells)
        .map(|(c, cell)| {
            let value = match (c.data_type.as_str(), cell.value) {
                (_, Value::Null) => Value::Null,
                ("currency", Value::Object(mut amount)) => {
                    amount.remove("amount").unwrap_or(Value::Null)
                }
                (_, Value::Object(_) | Value::Array(_)) => {
                    cell.label.map_or(Value::Null, Value::String)
                }
                (_, v) => v,
            };
            (c.api_name.clone(), value)
        })
        .collect()
}

/// One catalog entry: a report of a connection.
pub struct SalesforceReport {
    pub report: String,
    pub connection: String,
    pub report_id: String,
    pub client: Arc<SalesforceClient>,
}

impl std::fmt::Debug for SalesforceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceReport")
            .field("report", &self.report)
            .field("report_id", &self.report_id)
            .finish_non_exhaustive()
    }
}

impl SalesforceReport {
    fn failed(&self, source: SalesforceError) -> SalesforceReportError {
        match source {
            SalesforceError::Api { status: 404, .. } => SalesforceReportError::NotFound {
                report: self.report.clone(),
                connection: self.connection.clone(),
                report_id: self.report_id.clone(),
            },
            source => SalesforceReportError::Salesforce {
                report: self.report.clone(),
                source,
            },
        }
    }

    fn check_tabular(&self, describe: &ReportDescribe) -> Result<(), SalesforceReportError> {
        if describe.format == "TABULAR" {
            return Ok(());
        }
        Err(SalesforceReportError::NotTabular {
            report: self.report.clone(),
            report_id: self.report_id.clone(),
            name: describe.name.clone(),
            format: describe.format.clone(),
        })
    }

    /// The detail rows of one run as records (API name → value), checked
    /// against the columns the table was built with.
    fn records(
        &self,
        run: ReportRun,
        columns: &[ReportColumn],
    ) -> Result<Vec<Map<String, Value>>, SalesforceReportError> {
        self.check_tabular(&run.describe)?;
        if run.describe.columns != columns {
            let names = |cols: &[ReportColumn]| {
                cols.iter()
                    .map(|c| c.api_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(SalesforceReportError::Changed {
                report: self.report.clone(),
                report_id: self.report_id.clone(),
                detail: format!(
                    "now {}, was {}",
                    names(&run.describe.columns),
                    names(columns)
                ),
            });
        }
        Ok(run
            .rows
            .into_iter()
            .map(|cells| record(columns, cells))
            .collect())
    }
}

/// The report as a table: WHERE pushed as report filters, read in parts
/// past 2,000 rows.
#[derive(Debug)]
struct SalesforceReportTable {
    source: Arc<SalesforceReport>,
    describe: Arc<ReportDescribe>,
    schema: SchemaRef,
}

impl SalesforceReportTable {
    fn translate(&self, expr: &Expr) -> Option<Vec<ReportFilter>> {
        filters::translate(expr, &self.schema, &self.describe.columns)
    }
}

#[async_trait]
impl TableProvider for SalesforceReportTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact always: Salesforce compares text without case, and
        // filters past the 20 a run takes are left out.
        Ok(filters
            .iter()
            .map(|f| match self.translate(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let saved = self.describe.filters.len();
        // A read in parts adds one filter to each run.
        let mut split = filters::split_column(&self.describe.columns);
        if saved + 1 > MAX_FILTERS {
            split = None;
        }
        let room = MAX_FILTERS.saturating_sub(saved + usize::from(split.is_some()));
        let mut pushed: Vec<ReportFilter> = Vec::new();
        for f in filters.iter().filter_map(|f| self.translate(f)) {
            if pushed.len() + f.len() <= room && !f.iter().all(|x| pushed.contains(x)) {
                pushed.extend(f);
            }
        }
        Ok(Arc::new(SalesforceReportExec {
            source: Arc::clone(&self.source),
            describe: Arc::clone(&self.describe),
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
            schema,
            projection,
            filters: pushed,
            split,
            runs: Arc::default(),
        }))
    }
}

/// Runs a Salesforce report with the query's filters and streams its rows,
/// one batch a run.
#[derive(Debug)]
pub struct SalesforceReportExec {
    source: Arc<SalesforceReport>,
    describe: Arc<ReportDescribe>,
    /// The projected schema.
    schema: SchemaRef,
    /// Indices of `schema`'s columns among the report's detail columns.
    projection: Vec<usize>,
    /// The query's filters, sent after the report's own.
    filters: Vec<ReportFilter>,
    /// The detail column a read in parts sorts and splits on.
    split: Option<usize>,
    /// Runs made, for EXPLAIN ANALYZE.
    runs: Arc<AtomicUsize>,
    properties: Arc<PlanProperties>,
}

fn show_filters(filters: &[ReportFilter]) -> String {
    filters
        .iter()
        .map(|f| {
            let value = serde_json::to_string(&f.value).unwrap_or_default();
            format!("{} {} {value}", f.column, f.operator)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl DisplayAs for SalesforceReportExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SalesforceReportExec: connection={}, report_id={}, reportFilters=[{}]",
            self.source.connection,
            self.source.report_id,
            show_filters(&self.filters)
        )?;
        if self.projection.is_empty() {
            write!(f, ", record count only")?;
        } else {
            match self.split {
                Some(i) => write!(
                    f,
                    ", over 2,000 rows: runs sorted by {} and split on it",
                    self.describe.columns[i].api_name
                )?,
                None => write!(f, ", over 2,000 rows: fails (no id, date or number column)")?,
            }
        }
        match self.runs.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => write!(f, ", runs={n} (as run)"),
        }
    }
}

impl ExecutionPlan for SalesforceReportExec {
    fn name(&self) -> &str {
        "SalesforceReportExec"
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
                "SalesforceReportExec has no children".into(),
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
                "SalesforceReportExec has one partition, not {partition}"
            )));
        }
        let columns = &self.describe.columns;
        let read = Read {
            source: Arc::clone(&self.source),
            describe: Arc::clone(&self.describe),
            schema: Arc::clone(&self.schema),
            api_names: self
                .projection
                .iter()
                .map(|&i| columns[i].api_name.clone())
                .collect(),
            filters: self.filters.clone(),
            runs: Arc::clone(&self.runs),
            walk: Walk::new(
                self.split.map(|i| columns[i].api_name.clone()),
                !self.projection.is_empty(),
            ),
        };
        let batches = stream::try_unfold(read, |mut read| async move {
            match read.next_batch().await? {
                Some(batch) => Ok(Some((batch, read))),
                None => Ok(None),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches.boxed(),
        )))
    }
}

/// One execution of a report scan: its runs, one after another.
struct Read {
    source: Arc<SalesforceReport>,
    describe: Arc<ReportDescribe>,
    schema: SchemaRef,
    api_names: Vec<String>,
    filters: Vec<ReportFilter>,
    runs: Arc<AtomicUsize>,
    walk: Walk,
}

impl Read {
    /// The rows of the next run that brings any, or `None` when done.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let Some(ask) = self.walk.next().map_err(|s| external(self.stopped(s)))? else {
                return Ok(None);
            };
            let run = self.run(&ask).await.map_err(external)?;
            let part = Part {
                all_data: run.all_data,
                record_count: run.record_count,
                records: if ask.details {
                    self.source
                        .records(run, &self.describe.columns)
                        .map_err(external)?
                } else {
                    Vec::new()
                },
            };
            let batch = match self
                .walk
                .absorb(part)
                .map_err(|s| external(self.stopped(s)))?
            {
                Rows::Count(0) => continue,
                Rows::Count(n) => RecordBatch::try_new_with_options(
                    Arc::clone(&self.schema),
                    vec![],
                    &RecordBatchOptions::new().with_row_count(Some(n)),
                )?,
                Rows::Records(records) if records.is_empty() => continue,
                Rows::Records(records) => {
                    crate::provider::records_to_batch(&self.schema, &self.api_names, &records)
                        .map_err(|e| {
                            external(SalesforceReportError::Decode {
                                report: self.source.report.clone(),
                                message: e.to_string(),
                            })
                        })?
                }
            };
            return Ok(Some(batch));
        }
    }

    /// One run: the report's own filters, the query's, and the one `ask`
    /// adds (sent again, as a run's filters replace the saved ones).
    async fn run(&self, ask: &Ask) -> Result<ReportRun, SalesforceReportError> {
        let saved = &self.describe.filters;
        let mut run_filters = saved.clone();
        run_filters.extend(self.filters.iter().cloned());
        run_filters.extend(ask.extra.iter().cloned());
        // Saved filter logic keeps its meaning; the rest is ANDed.
        let boolean_filter = self.describe.boolean_filter.as_ref().map(|logic| {
            let mut out = format!("({logic})");
            for n in saved.len() + 1..=run_filters.len() {
                out.push_str(&format!(" AND {n}"));
            }
            out
        });
        let request = RunRequest {
            filters: run_filters,
            boolean_filter,
            sort_by: ask.sort_by.clone(),
            details: ask.details,
        };
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.source
            .client
            .run_report_with(&self.source.report_id, &request)
            .await
            .map_err(|e| self.source.failed(e))
    }

    fn stopped(&self, stop: Stop) -> SalesforceReportError {
        let source = &self.source;
        let label = |api: &str| {
            self.describe
                .columns
                .iter()
                .find(|c| c.api_name == api)
                .map_or_else(|| api.to_string(), |c| c.label.clone())
        };
        let split = || label(self.walk.split.as_deref().unwrap_or_default());
        let why = match stop {
            Stop::Moved { expected, read } => {
                return SalesforceReportError::Moved {
                    report: source.report.clone(),
                    report_id: source.report_id.clone(),
                    name: self.describe.name.clone(),
                    runs: self.runs.load(Ordering::Relaxed),
                    expected,
                    read,
                };
            }
            Stop::NoColumn => "sfsql reads a larger report in parts sorted by an id, date, \
                               datetime or number column, and this report has none"
                .to_string(),
            Stop::Ties(value) => format!(
                "sfsql reads a larger report in parts sorted by {}, and 2,000 rows or more have \
                 {} {value}",
                split(),
                split()
            ),
            Stop::Blanks => format!(
                "sfsql reads a larger report in parts sorted by {}, and more than 2,000 rows \
                 have no {}",
                split(),
                split()
            ),
            Stop::TooLarge => format!(
                "sfsql reads at most {MAX_RUNS} runs of 2,000 rows of a report (Salesforce \
                 allows 500 report runs an hour)"
            ),
        };
        SalesforceReportError::Truncated {
            report: source.report.clone(),
            report_name: format!("{} ({})", source.report_id, self.describe.name),
            total: self
                .walk
                .total
                .map_or_else(|| "more than 2,000".into(), |n| n.to_string()),
            connection: source.connection.clone(),
            why,
        }
    }
}

/// What one run asks for beyond the query's filters.
#[derive(Debug, Clone, PartialEq)]
struct Ask {
    extra: Option<ReportFilter>,
    sort_by: Option<String>,
    details: bool,
}

/// What a run answered.
struct Part {
    all_data: bool,
    record_count: Option<u64>,
    records: Vec<Map<String, Value>>,
}

/// Rows a run contributes.
#[derive(Debug, PartialEq)]
enum Rows {
    /// Rows without columns (`count(*)`).
    Count(usize),
    Records(Vec<Map<String, Value>>),
}

/// Why a read stopped.
#[derive(Debug, PartialEq)]
enum Stop {
    NoColumn,
    Ties(String),
    Blanks,
    TooLarge,
    Moved { expected: u64, read: u64 },
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// The report with the query's filters, sorted by the split column.
    First,
    /// Rows whose split value is at least this one.
    From(String),
    /// Rows with a split value, from the lowest (the first run was all
    /// blanks: they sort first).
    Valued,
    /// Rows with a blank split value, if the count says there are any.
    Blanks,
    Done,
}

/// A read of the report in parts (see the module doc): which run comes
/// next, and which of a run's rows to keep.
#[derive(Debug)]
struct Walk {
    /// The split column's API name.
    split: Option<String>,
    details: bool,
    step: Step,
    /// Rows of the first run (its record count).
    total: Option<u64>,
    /// Rows kept so far.
    read: u64,
    runs: usize,
}

impl Walk {
    fn new(split: Option<String>, details: bool) -> Self {
        Walk {
            split,
            details,
            step: Step::First,
            total: None,
            read: 0,
            runs: 0,
        }
    }

    fn filter(&self, operator: &str, value: &str) -> Option<ReportFilter> {
        Some(ReportFilter {
            column: self.split.clone()?,
            operator: operator.into(),
            value: value.into(),
        })
    }

    fn split_value(&self, record: &Map<String, Value>) -> Option<String> {
        record
            .get(self.split.as_deref()?)
            .and_then(filters::value_text)
    }

    /// The next run to make, or `None` when the read is complete.
    fn next(&mut self) -> Result<Option<Ask>, Stop> {
        let sorted = |walk: &Self| walk.split.clone();
        let ask = match &self.step {
            Step::Done => return Ok(None),
            Step::First => Ask {
                extra: None,
                sort_by: if self.details { sorted(self) } else { None },
                details: self.details,
            },
            _ if self.runs >= MAX_RUNS => return Err(Stop::TooLarge),
            Step::From(value) => Ask {
                extra: self.filter("greaterOrEqual", value),
                sort_by: sorted(self),
                details: true,
            },
            Step::Valued => Ask {
                extra: self.filter("notEqual", ""),
                sort_by: sorted(self),
                details: true,
            },
            Step::Blanks => {
                if let Some(total) = self.total
                    && self.read >= total
                {
                    self.finish()?;
                    return Ok(None);
                }
                Ask {
                    extra: self.filter("equals", ""),
                    sort_by: None,
                    details: true,
                }
            }
        };
        Ok(Some(ask))
    }

    /// Every row was read once, as far as the first run's count says.
    fn finish(&mut self) -> Result<(), Stop> {
        self.step = Step::Done;
        match self.total {
            Some(expected) if expected != self.read => Err(Stop::Moved {
                expected,
                read: self.read,
            }),
            _ => Ok(()),
        }
    }

    /// The rows to keep of the run [`next`](Self::next) asked for.
    fn absorb(&mut self, part: Part) -> Result<Rows, Stop> {
        self.runs += 1;
        match self.step.clone() {
            Step::Done => Ok(Rows::Records(Vec::new())),
            Step::First if !self.details => match part.record_count {
                Some(n) => {
                    self.step = Step::Done;
                    Ok(Rows::Count(usize::try_from(n).unwrap_or(usize::MAX)))
                }
                // No count: read the rows instead.
                None => {
                    self.details = true;
                    Ok(Rows::Records(Vec::new()))
                }
            },
            Step::First if part.all_data => {
                self.step = Step::Done;
                Ok(Rows::Records(part.records))
            }
            Step::First => {
                self.total = part.record_count;
                if self.split.is_none() {
                    return Err(Stop::NoColumn);
                }
                if self.total.is_some_and(|t| t > RUN_ROWS * MAX_RUNS as u64) {
                    return Err(Stop::TooLarge);
                }
                self.sorted_part(part, true)
            }
            Step::From(_) | Step::Valued => self.sorted_part(part, false),
            Step::Blanks => {
                if !part.all_data {
                    return Err(Stop::Blanks);
                }
                self.read += part.records.len() as u64;
                self.finish()?;
                Ok(Rows::Records(part.records))
            }
        }
    }

    /// A run sorted by the split column: keep its rows before its last
    /// value (all of them when it is whole), and ask for the rest.
    fn sorted_part(&mut self, part: Part, first: bool) -> Result<Rows, Stop> {
        let records = part.records;
        let last = records.last().and_then(|r| self.split_value(r));
        let keep = match (&last, part.all_data) {
            (_, true) => {
                self.step = Step::Blanks;
                records.len()
            }
            // Cut at a blank: blanks sort last (every valued row is here)
            // or first (this run was all blanks).
            (None, false) => {
                let valued = records.iter().any(|r| self.split_value(r).is_some());
                self.step = match (valued, first) {
                    (true, _) => Step::Blanks,
                    (false, true) => Step::Valued,
                    // Blanks where the filter excluded them: no order to follow.
                    (false, false) => return Err(Stop::Blanks),
                };
                records.len()
            }
            (Some(value), false) => {
                let at = records
                    .iter()
                    .position(|r| self.split_value(r).as_ref() == Some(value))
                    .unwrap_or(0);
                if at == 0 {
                    return Err(Stop::Ties(value.clone()));
                }
                self.step = Step::From(value.clone());
                at
            }
        };
        // Blank rows come in a run of their own.
        let kept: Vec<Map<String, Value>> = records
            .into_iter()
            .take(keep)
            .filter(|r| self.split_value(r).is_some())
            .collect();
        self.read += kept.len() as u64;
        Ok(Rows::Records(kept))
    }
}

#[async_trait]
impl LazyReport for SalesforceReport {
    /// Describe the report (one call) and build its table.
    async fn table(self: Arc<Self>) -> Result<Arc<dyn TableProvider>> {
        let describe = self
            .client
            .describe_report(&self.report_id)
            .await
            .map_err(|e| external(self.failed(e)))?;
        self.check_tabular(&describe).map_err(external)?;
        let schema = Arc::new(report_schema(&describe.columns));
        Ok(Arc::new(SalesforceReportTable {
            source: Arc::clone(&self),
            describe: Arc::new(describe),
            schema,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(api: &str, label: &str, data_type: &str) -> ReportColumn {
        ReportColumn {
            api_name: api.into(),
            label: label.into(),
            data_type: data_type.into(),
        }
    }

    #[test]
    fn labels_become_snake_case_names_without_clashes() {
        assert_eq!(column_name("WM NPS Score"), "wm_nps_score");
        assert_eq!(column_name("Zip/Postal Code"), "zip_postal_code");
        assert_eq!(column_name(" Email "), "email");
        assert_eq!(column_name("%"), "column");
        let schema = report_schema(&[
            column("EMAIL", "Email", "email"),
            column("Account.Email__c", "Email", "email"),
            column("SALES", "Annual Revenue", "currency"),
        ]);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["email", "email_2", "annual_revenue"]);
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(
            schema
                .field(1)
                .metadata()
                .get("comment")
                .map(String::as_str),
            Some("Email (Account.Email__c)")
        );
    }

    #[test]
    fn cells_become_query_values() {
        let columns = [
            column("SALES", "Annual Revenue", "currency"),
            column("X", "Odd", "compound"),
            column("EMAIL", "Email", "email"),
        ];
        let cells: Vec<crate::salesforce::ReportCell> = serde_json::from_str(
            r#"[{"label":"$5.00","value":{"amount":5.0,"currency":null}},
                {"label":"a, b","value":{"x":1}},
                {"label":"-","value":null}]"#,
        )
        .unwrap_or_default();
        let rec = record(&columns, cells);
        assert_eq!(rec["SALES"], serde_json::json!(5.0));
        assert_eq!(rec["X"], serde_json::json!("a, b"));
        assert_eq!(rec["EMAIL"], Value::Null);
    }

    /// A report whose split column `K` holds `values` (`None` blank), run
    /// as Salesforce runs it: filtered, sorted with blanks first (or last),
    /// cut at 2,000 rows. `N` is the row's position.
    fn serve(values: &[Option<i64>], ask: &Ask, blanks_last: bool) -> Part {
        let mut rows: Vec<(usize, Option<i64>)> = values
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| match &ask.extra {
                None => true,
                Some(f) => match (f.operator.as_str(), v) {
                    ("greaterOrEqual", Some(v)) => f.value.parse().is_ok_and(|low: i64| *v >= low),
                    ("notEqual", v) => v.is_some() && f.value.is_empty(),
                    ("equals", v) => v.is_none() && f.value.is_empty(),
                    _ => false,
                },
            })
            .collect();
        if ask.sort_by.is_some() {
            rows.sort_by_key(|&(i, v)| (v.is_none() == blanks_last, v, i));
        }
        let total = rows.len();
        let records = rows
            .into_iter()
            .take(RUN_ROWS as usize)
            .map(|(i, v)| {
                let mut r = Map::new();
                r.insert("K".into(), v.map_or(Value::Null, Value::from));
                r.insert("N".into(), Value::from(i));
                r
            })
            .collect();
        Part {
            all_data: total <= RUN_ROWS as usize,
            record_count: Some(total as u64),
            records: if ask.details { records } else { Vec::new() },
        }
    }

    /// Read the whole report through a [`Walk`]: the positions of the rows
    /// kept, sorted, and the runs made; `miscount` is added to the first
    /// run's record count.
    fn read_all(
        values: &[Option<i64>],
        split: bool,
        blanks_last: bool,
        miscount: u64,
    ) -> (Result<Vec<usize>, Stop>, usize) {
        let mut walk = Walk::new(split.then(|| "K".to_string()), true);
        let mut got = Vec::new();
        let mut runs = 0;
        loop {
            let ask = match walk.next() {
                Err(stop) => return (Err(stop), runs),
                Ok(None) => break,
                Ok(Some(ask)) => ask,
            };
            let mut part = serve(values, &ask, blanks_last);
            if runs == 0 {
                part.record_count = part.record_count.map(|n| n + miscount);
            }
            runs += 1;
            match walk.absorb(part) {
                Err(stop) => return (Err(stop), runs),
                Ok(Rows::Records(rows)) => {
                    got.extend(
                        rows.iter()
                            .filter_map(|r| r["N"].as_u64())
                            .map(|n| n as usize),
                    );
                }
                Ok(Rows::Count(n)) => got.extend(0..n),
            }
        }
        got.sort_unstable();
        (Ok(got), runs)
    }

    fn every(n: usize) -> Result<Vec<usize>, Stop> {
        Ok((0..n).collect())
    }

    #[test]
    fn a_report_over_2000_rows_is_read_whole_in_sorted_parts() {
        // Unique values in no order: 1,999 kept a run, then the rest.
        let values: Vec<Option<i64>> = (0..5_000).map(|i| Some((i * 7_919) % 5_000)).collect();
        assert_eq!(read_all(&values, true, false, 0), (every(5_000), 3));
        assert_eq!(read_all(&values[..300], true, false, 0), (every(300), 1));
        // Ties at a cut come again in the next run, once.
        let values: Vec<Option<i64>> = (0..4_500).map(|i| Some(i / 7)).collect();
        assert_eq!(read_all(&values, true, false, 0), (every(4_500), 3));
    }

    #[test]
    fn blank_split_values_are_read_in_a_run_of_their_own() {
        let values: Vec<Option<i64>> = (0..4_500).map(|i| (i % 8 != 0).then_some(i)).collect();
        // Blanks first: the first run's blanks are left for the last run.
        assert_eq!(read_all(&values, true, false, 0), (every(4_500), 4));
        // Blanks last: the same rows.
        assert_eq!(read_all(&values, true, true, 0).0, every(4_500));
        // A first run all blanks: the valued rows from the lowest.
        let values: Vec<Option<i64>> = (0..2_100).map(|i| (i >= 2_050).then_some(i)).collect();
        assert_eq!(read_all(&values, true, false, 0).0, Err(Stop::Blanks));
        let values: Vec<Option<i64>> = (0..3_000).map(|i| (i < 1_500).then_some(i)).collect();
        let mut mixed = values.clone();
        mixed.rotate_left(700);
        assert_eq!(read_all(&mixed, true, false, 0).0, every(3_000));
    }

    #[test]
    fn reports_that_cannot_be_split_say_why() {
        let same = vec![Some(1); 3_000];
        assert_eq!(
            read_all(&same, true, false, 0),
            (Err(Stop::Ties("1".into())), 1)
        );
        let values: Vec<Option<i64>> = (0..3_000).map(Some).collect();
        assert_eq!(read_all(&values, false, false, 0), (Err(Stop::NoColumn), 1));
        let many: Vec<Option<i64>> = (0..100_001).map(Some).collect();
        assert_eq!(read_all(&many, true, false, 0), (Err(Stop::TooLarge), 1));
        // A count that does not match what was read: the report changed.
        assert_eq!(
            read_all(&values, true, false, 1),
            (
                Err(Stop::Moved {
                    expected: 3_001,
                    read: 3_000
                }),
                3
            )
        );
        // Fitting reports need no split column.
        assert_eq!(read_all(&values[..2_000], false, false, 0).0, every(2_000));
    }

    #[test]
    fn count_only_reads_the_record_count_of_one_run() {
        let values: Vec<Option<i64>> = (0..5_000).map(Some).collect();
        let mut walk = Walk::new(Some("K".into()), false);
        let ask = walk.next().ok().flatten();
        assert_eq!(
            ask,
            Some(Ask {
                extra: None,
                sort_by: None,
                details: false
            })
        );
        let part = serve(
            &values,
            &ask.unwrap_or(Ask {
                extra: None,
                sort_by: None,
                details: false,
            }),
            false,
        );
        assert_eq!(walk.absorb(part), Ok(Rows::Count(5_000)));
        assert_eq!(walk.next(), Ok(None));
    }
}
