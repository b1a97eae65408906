//! Salesforce analytics reports as tables: `format = "salesforce"` names a
//! connection and a report id. The first query that names the table
//! describes the report (one call) for its columns; every query runs it
//! (one `GET analytics/reports/{id}?includeDetails=true`) and reads the
//! detail rows of its fact map (`T!T`).
//!
//! Columns are named after the detail columns' labels in snake case
//! (`WM NPS Score` → `wm_nps_score`), typed from their `dataType`; each
//! column's comment is its label and API name. Only tabular reports have
//! one list of detail rows: a summary or matrix report is refused with a
//! message saying what to do, and so is a run whose rows Salesforce cut
//! at 2,000 (`allData: false`), rather than returning a silent part.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use serde_json::{Map, Value};
use thiserror::Error;

use super::http_table::LazyReport;
use crate::salesforce::{
    ReportColumn, ReportDescribe, ReportRun, SalesforceClient, SalesforceError,
};

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
        "report {report}: Salesforce report {report_id} ({name}) has {total} detail rows and the \
         Reports API returns only the first 2,000 (allData is false), so the table would be \
         incomplete. Filter the report in Salesforce to 2,000 rows or fewer, or query the \
         object it reports on (e.g. {connection}.contact) instead"
    )]
    Truncated {
        report: String,
        report_id: String,
        name: String,
        total: String,
        connection: String,
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

    /// The detail rows of one run, checked against the columns the table
    /// was built with.
    fn rows(
        &self,
        run: ReportRun,
        columns: &[ReportColumn],
    ) -> Result<Vec<Map<String, Value>>, SalesforceReportError> {
        self.check_tabular(&run.describe)?;
        if !run.all_data {
            return Err(SalesforceReportError::Truncated {
                report: self.report.clone(),
                report_id: self.report_id.clone(),
                name: run.describe.name,
                total: run
                    .record_count
                    .map_or_else(|| "more than 2,000".into(), |n| n.to_string()),
                connection: self.connection.clone(),
            });
        }
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

/// Every run of the report is one batch.
#[derive(Debug)]
struct ReportRows {
    source: Arc<SalesforceReport>,
    columns: Arc<Vec<ReportColumn>>,
    schema: SchemaRef,
}

impl PartitionStream for ReportRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let source = Arc::clone(&self.source);
        let columns = Arc::clone(&self.columns);
        let schema = Arc::clone(&self.schema);
        let batch = futures::stream::once(async move {
            let run = source
                .client
                .run_report(&source.report_id)
                .await
                .map_err(|e| external(source.failed(e)))?;
            let records = source.rows(run, &columns).map_err(external)?;
            let api_names: Vec<String> = columns.iter().map(|c| c.api_name.clone()).collect();
            crate::provider::records_to_batch(&schema, &api_names, &records).map_err(|e| {
                external(SalesforceReportError::Decode {
                    report: source.report.clone(),
                    message: e.to_string(),
                })
            })
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batch,
        ))
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
        let partition = Arc::new(ReportRows {
            source: Arc::clone(&self),
            columns: Arc::new(describe.columns),
            schema: Arc::clone(&schema),
        });
        Ok(Arc::new(StreamingTable::try_new(schema, vec![partition])?))
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
}
