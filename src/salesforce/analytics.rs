//! The Reports and Dashboards REST API, as far as sfsql reads reports:
//! describe (`analytics/reports/{id}/describe`) and a synchronous run with
//! detail rows (`analytics/reports/{id}?includeDetails=true`).

use std::collections::HashMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::{SalesforceClient, SalesforceError};

/// What a report is: its format and detail columns in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDescribe {
    pub id: String,
    pub name: String,
    /// `TABULAR`, `SUMMARY`, `MATRIX` (or `MULTI_BLOCK`).
    pub format: String,
    pub columns: Vec<ReportColumn>,
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
        let path = Self::report_path(id, "?includeDetails=true");
        let (_, bytes) = self.send(Method::GET, &path, None, true).await?;
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
