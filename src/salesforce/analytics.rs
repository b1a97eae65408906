//! The Reports and Dashboards REST API, as far as sfsql reads reports:
//! describe (`analytics/reports/{id}/describe`) and a synchronous run with
//! detail rows (`analytics/reports/{id}?includeDetails=true`), as saved
//! (`GET`) or with filters and a sort of the caller's (`POST` with a
//! `reportMetadata` body).

use std::collections::HashMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SalesforceClient, SalesforceError};

/// What a report is: its format and detail columns in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDescribe {
    pub id: String,
    pub name: String,
    /// `TABULAR`, `SUMMARY`, `MATRIX` (or `MULTI_BLOCK`).
    pub format: String,
    pub columns: Vec<ReportColumn>,
    /// The report's own filters (`reportFilters`), which a run with filters
    /// of its own must send again: a `POST`'s filters replace the saved ones.
    pub filters: Vec<ReportFilter>,
    /// How the saved filters combine (`"(1 OR 2) AND 3"`); none is AND.
    pub boolean_filter: Option<String>,
}

/// One `reportFilters` entry: a detail column's API name, an operator
/// (`equals`, `notEqual`, `lessThan`, `greaterOrEqual`, `startsWith`, ...)
/// and its value as text (`equals` takes a comma-separated list; an empty
/// value stands for a blank).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReportFilter {
    pub column: String,
    pub operator: String,
    #[serde(default)]
    pub value: String,
}

/// What a run asks for beyond the saved report.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Every filter of the run, the report's own first; empty with no
    /// `sort_by` runs the report as saved (`GET`).
    pub filters: Vec<ReportFilter>,
    pub boolean_filter: Option<String>,
    /// A detail column to sort the rows by, ascending.
    pub sort_by: Option<String>,
    /// False asks for the record count only (no detail rows).
    pub details: bool,
}

/// One detail column: its report API name (`CONTACT.EMAIL`), label and
/// `dataType` (`string`, `currency`, `date`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportColumn {
    pub api_name: String,
    pub label: String,
    pub data_type: String,
}

/// One cell of a detail row.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportCell {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// A synchronous run: the report as it is now and its detail rows.
#[derive(Debug, Clone)]
pub struct ReportRun {
    pub describe: ReportDescribe,
    /// False when Salesforce cut the detail rows (at 2,000).
    pub all_data: bool,
    /// Records the report counted (`T!T`'s RowCount), when it says.
    pub record_count: Option<u64>,
    /// `factMap["T!T"].rows`, each row's cells in `columns` order.
    pub rows: Vec<Vec<ReportCell>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    id: String,
    name: String,
    report_format: String,
    #[serde(default)]
    detail_columns: Vec<String>,
    #[serde(default)]
    report_filters: Option<Vec<ReportFilter>>,
    #[serde(default)]
    report_boolean_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ColumnInfo {
    #[serde(default)]
    label: String,
    #[serde(default)]
    data_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Extended {
    #[serde(default)]
    detail_column_info: HashMap<String, ColumnInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default)]
    data_cells: Vec<ReportCell>,
}

#[derive(Deserialize)]
struct Fact {
    #[serde(default)]
    rows: Vec<Row>,
    #[serde(default)]
    aggregates: Vec<ReportCell>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportJson {
    report_metadata: Metadata,
    report_extended_metadata: Extended,
    #[serde(default)]
    fact_map: HashMap<String, Fact>,
    #[serde(default)]
    all_data: Option<bool>,
}

impl ReportJson {
    fn describe(&mut self) -> ReportDescribe {
        let info = &mut self.report_extended_metadata.detail_column_info;
        let columns = self
            .report_metadata
            .detail_columns
            .iter()
            .map(|api| {
                let found = info.remove(api);
                ReportColumn {
                    api_name: api.clone(),
                    label: found
                        .as_ref()
                        .map(|i| i.label.clone())
                        .filter(|l| !l.is_empty())
                        .unwrap_or_else(|| api.clone()),
                    data_type: found.map(|i| i.data_type).unwrap_or_default(),
                }
            })
            .collect();
        ReportDescribe {
            id: self.report_metadata.id.clone(),
            name: self.report_metadata.name.clone(),
            format: self.report_metadata.report_format.clone(),
            columns,
            filters: self
                .report_metadata
                .report_filters
                .clone()
                .unwrap_or_default(),
            boolean_filter: self
                .report_metadata
                .report_boolean_filter
                .clone()
                .filter(|b| !b.trim().is_empty()),
        }
    }
}

impl SalesforceClient {
    fn report_path(id: &str, rest: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("analytics/reports/{id}{rest}")
    }

    /// The report's format and detail columns (one call).
    pub async fn describe_report(&self, id: &str) -> Result<ReportDescribe, SalesforceError> {
        let path = Self::report_path(id, "/describe");
        let (_, bytes) = self.send(Method::GET, &path, None, true).await?;
        let mut json: ReportJson = self.decode("report describe", &bytes)?;
        Ok(json.describe())
    }

    /// Run the report now, with its detail rows (one call).
    pub async fn run_report(&self, id: &str) -> Result<ReportRun, SalesforceError> {
        self.run_report_with(
            id,
            &RunRequest {
                details: true,
                ..RunRequest::default()
            },
        )
        .await
    }

    /// Run the report now with `request`'s filters and sort (one call): a
    /// `POST` of `reportMetadata` when there are any, else a `GET`.
    pub async fn run_report_with(
        &self,
        id: &str,
        request: &RunRequest,
    ) -> Result<ReportRun, SalesforceError> {
        let path = Self::report_path(id, &format!("?includeDetails={}", request.details));
        let (_, bytes) = if request.filters.is_empty() && request.sort_by.is_none() {
            self.send(Method::GET, &path, None, true).await?
        } else {
            let sort_by: Vec<Value> = request
                .sort_by
                .iter()
                .map(|c| json!({ "sortColumn": c, "sortOrder": "Asc" }))
                .collect();
            let body = json!({
                "reportMetadata": {
                    "reportFilters": request.filters,
                    "reportBooleanFilter": request.boolean_filter,
                    "sortBy": sort_by,
                }
            });
            // A run changes nothing: it can be sent again.
            self.send(Method::POST, &path, Some(&body), true).await?
        };
        let mut json: ReportJson = self.decode("report run", &bytes)?;
        let describe = json.describe();
        let fact = json.fact_map.remove("T!T");
        let record_count = fact
            .as_ref()
            .and_then(|f| f.aggregates.first())
            .and_then(|a| a.value.as_u64());
        let rows = fact
            .map(|f| f.rows.into_iter().map(|r| r.data_cells).collect())
            .unwrap_or_default();
        Ok(ReportRun {
            describe,
            all_data: json.all_data.unwrap_or(true),
            record_count,
            rows,
        })
    }
}
