//! The statement router: decides which statements sfsql answers itself and
//! runs them, for every front end (pgwire, CLI, scheduler). Results come
//! back as [`StatementResult`]s that each front end renders its own way.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::{
    Delete, Expr, Insert, Merge, ObjectName, Set, Statement, TableObject, Update,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use thiserror::Error;

use super::engine::Engine;
use super::output::{self, DRY_RUN_COLUMNS, text_batch, text_schema};
use super::settings::{Settings, SettingsError};
use super::writes::DmlResult;
use crate::dml::{self, DmlError, UpdateSummary};
use crate::salesforce::SalesforceError;

/// Who ran a statement; the run log links writes to it.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A client session (psql, a BI tool, the CLI).
    Client { user: String },
    /// A scheduled or manual run of a saved job; `stop` ends it early.
    Job {
        job_id: i64,
        run_id: i64,
        stop: super::StopSignal,
    },
}

impl Origin {
    /// Why this statement must stop before its next request, if it must.
    pub fn stop_reason(&self) -> Option<String> {
        match self {
            Origin::Job { stop, .. } => stop.reason(),
            Origin::Client { .. } => None,
        }
    }
}

/// A write sfsql made (or, in a dry run, would make) to Salesforce.
#[derive(Debug, Clone)]
pub struct WriteReport {
    pub connection: String,
    pub sobject: String,
    /// `update`, `insert`, `upsert` or `delete`.
    pub action: &'static str,
    pub dry_run: bool,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// Every matched record's outcome. In a dry run, records that would
    /// change are counted as `updated`.
    pub summary: UpdateSummary,
}

/// The result of one statement.
#[derive(Debug, Clone)]
pub struct StatementResult {
    /// Command tag word: `SELECT`, `UPDATE`, `SET`, `EXPLAIN`.
    pub tag: String,
    /// Rows affected for DML tags.
    pub rows_affected: Option<usize>,
    /// Result rows, when the statement returns rows.
    pub rows: Option<(SchemaRef, Vec<RecordBatch>)>,
    /// Messages for the client (pgwire NOTICE).
    pub notices: Vec<String>,
    pub write: Option<WriteReport>,
}

impl StatementResult {
    pub(super) fn command(tag: &str, rows_affected: Option<usize>) -> Self {
        StatementResult {
            tag: tag.to_string(),
            rows_affected,
            rows: None,
            notices: vec![],
            write: None,
        }
    }

    pub(super) fn rows(tag: &str, batch: RecordBatch) -> Self {
        StatementResult {
            tag: tag.to_string(),
            rows_affected: None,
            rows: Some((batch.schema(), vec![batch])),
            notices: vec![],
            write: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum StatementError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Dml(#[from] DmlError),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Sql(String),
    /// Displays the Salesforce error behind it, when there is one, without
    /// DataFusion's "External error: " wrapping.
    #[error("{}", SalesforceError::in_datafusion(.0).map_or_else(|| .0.to_string(), |sf| sf.to_string()))]
    DataFusion(#[from] DataFusionError),
    /// The run was stopped (its timeout passed) before this statement.
    #[error("{0}")]
    Cancelled(String),
    #[error("no connection named {0}: the catalog's connections are the schemas of \\dn")]
    UnknownConnection(String),
    #[error(transparent)]
    Salesforce(#[from] crate::salesforce::SalesforceError),
}

impl StatementError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StatementError::Settings(SettingsError::Unknown(_)) => "42704",
            StatementError::Settings(SettingsError::InvalidValue { .. }) => "22023",
            StatementError::Dml(e) => e.sqlstate(),
            StatementError::Unsupported(_) => "0A000",
            StatementError::Sql(_) => "42601",
            StatementError::DataFusion(e) => {
                SalesforceError::in_datafusion(e).map_or("42000", SalesforceError::sqlstate)
            }
            StatementError::Cancelled(_) => "57014",
            StatementError::UnknownConnection(_) => "42704",
            StatementError::Salesforce(e) => e.sqlstate(),
        }
    }
}

/// A statement sfsql answers itself.
pub enum Routed<'a> {
    Set {
        name: String,
        value: String,
    },
    Show(String),
    Update(&'a Update),
    Insert(&'a Insert),
    Delete(&'a Delete),
    Merge(&'a Merge),
    /// EXPLAIN of a DML statement sfsql routes.
    Explain(&'a Statement),
    /// `SELECT sfsql.refresh(['connection'])`: list the sObjects again.
    Refresh(Option<String>),
    Unsupported(String),
}

fn object_schema(name: &ObjectName) -> Option<String> {
    dml::table_ref(name).and_then(|(schema, _)| schema)
}

impl Engine {
    fn is_connection(&self, schema: Option<String>) -> bool {
        schema.is_some_and(|s| self.connections.contains_key(&s))
    }

    /// `Some` when sfsql (not DataFusion) must answer `statement`.
    pub fn route<'a>(&self, statement: &'a Statement) -> Option<Routed<'a>> {
        match statement {
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if Settings::is_ours(&variable.to_string()) => {
                let value = values
                    .iter()
                    .map(|v| match v {
                        Expr::Value(v) => v
                            .value
                            .clone()
                            .into_string()
                            .unwrap_or_else(|| v.to_string()),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                Some(Routed::Set {
                    name: variable.to_string(),
                    value,
                })
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(".");
                Settings::is_ours(&name).then_some(Routed::Show(name))
            }
            // Every UPDATE is sfsql's: DataFusion cannot run UPDATE ... FROM,
            // and nothing else in the catalog is writable.
            Statement::Update(u) => Some(Routed::Update(u)),
            Statement::Explain { statement, .. } => match self.route(statement) {
                Some(
                    Routed::Update(_) | Routed::Insert(_) | Routed::Delete(_) | Routed::Merge(_),
                ) => Some(Routed::Explain(statement)),
                _ => None,
            },
            Statement::Insert(insert) => {
                let TableObject::TableName(name) = &insert.table else {
                    return None;
                };
                self.is_connection(object_schema(name))
                    .then_some(Routed::Insert(insert))
            }
            Statement::Delete(delete) => {
                let (schema, _, _) = dml::delete_target(delete).ok()?;
                self.is_connection(schema).then_some(Routed::Delete(delete))
            }
            Statement::Query(_) => super::refresh::refresh_call(statement).map(Routed::Refresh),
            Statement::Merge(merge) => {
                let (schema, _, _) = dml::merge_target(merge).ok()?;
                self.is_connection(schema).then_some(Routed::Merge(merge))
            }
            _ => None,
        }
    }

    /// The connection a routed write goes to (`None` for statements that
    /// do not write to Salesforce, or a target that will fail anyway).
    pub fn write_target(&self, routed: &Routed<'_>) -> Option<String> {
        match routed {
            Routed::Update(u) => dml::update_target(u).ok().and_then(|(schema, _, _)| schema),
            Routed::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => object_schema(name),
                _ => None,
            },
            Routed::Delete(delete) => dml::delete_target(delete).ok().and_then(|t| t.0),
            Routed::Merge(merge) => dml::merge_target(merge).ok().and_then(|t| t.0),
            _ => None,
        }
    }

    /// The columns a routed statement returns (for Describe in the
    /// extended protocol), given the session's settings.
    pub fn routed_schema(
        &self,
        routed: &Routed<'_>,
        settings: &HashMap<String, String>,
    ) -> SchemaRef {
        let cols: Vec<&str> = match routed {
            Routed::Show(name) => return text_schema(&[name.as_str()]),
            Routed::Update(_) if Settings::dml_options(settings).dry_run => {
                DRY_RUN_COLUMNS.to_vec()
            }
            Routed::Explain(_) => vec!["plan_type", "plan"],
            Routed::Refresh(_) => super::refresh::COLUMNS.to_vec(),
            Routed::Insert(_) | Routed::Delete(_) | Routed::Merge(_)
                if Settings::dml_options(settings).dry_run =>
            {
                DRY_RUN_COLUMNS.to_vec()
            }
            Routed::Insert(insert) => {
                let cols: Vec<String> = output::returning_columns(insert);
                return text_schema(&cols.iter().map(String::as_str).collect::<Vec<_>>());
            }
            _ => vec![],
        };
        text_schema(&cols)
    }

    /// Run a routed statement. `settings` are the session's `sfsql.*`
    /// values; `SET` changes them.
    pub async fn run_routed(
        &self,
        routed: Routed<'_>,
        statement_sql: &str,
        settings: &mut HashMap<String, String>,
        origin: &Origin,
    ) -> Result<StatementResult, StatementError> {
        match routed {
            Routed::Set { name, value } => {
                let (name, value) = Settings::normalise(&name, &value)?;
                settings.insert(name, value);
                Ok(StatementResult::command("SET", None))
            }
            Routed::Show(name) => {
                let value = Settings::get(settings, &name)?;
                Ok(StatementResult::rows(
                    "SHOW",
                    text_batch(&[name.as_str()], vec![vec![Some(value)]])?,
                ))
            }
            Routed::Unsupported(message) => Err(StatementError::Unsupported(message)),
            Routed::Refresh(connection) => Ok(StatementResult::rows(
                "SELECT",
                self.refresh(connection.as_deref()).await?,
            )),
            Routed::Update(update) => {
                let started = Utc::now();
                let opts = Settings::dml_options(settings);
                let result = self.update(update, opts, origin, statement_sql).await?;
                finish_write(result, started)
            }
            Routed::Insert(insert) => {
                let started = Utc::now();
                let opts = Settings::dml_options(settings);
                let result = self.insert(insert, opts, origin, statement_sql).await?;
                finish_write(result, started)
            }
            Routed::Delete(delete) => {
                let started = Utc::now();
                let opts = Settings::dml_options(settings);
                let result = self.delete(delete, opts, origin, statement_sql).await?;
                finish_write(result, started)
            }
            Routed::Merge(merge) => {
                let started = Utc::now();
                let opts = Settings::dml_options(settings);
                let result = self.merge(merge, opts, origin, statement_sql).await?;
                finish_write(result, started)
            }
            Routed::Explain(statement) => Ok(StatementResult::rows(
                "EXPLAIN",
                self.explain_dml(statement, &Settings::dml_options(settings))
                    .await?,
            )),
        }
    }

    /// Run SQL text outside pgwire (the scheduler and the CLI): sfsql's
    /// statements through the router, the rest through DataFusion.
    pub async fn execute_sql(
        &self,
        sql: &str,
        settings: &mut HashMap<String, String>,
        origin: &Origin,
    ) -> Result<Vec<StatementResult>, StatementError> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .map_err(|e| StatementError::Sql(e.to_string()))?;
        let mut results = Vec::new();
        for statement in &statements {
            if let Some(reason) = origin.stop_reason() {
                return Err(StatementError::Cancelled(reason));
            }
            let text = statement.to_string();
            match self.route(statement) {
                Some(routed) => {
                    results.push(self.run_routed(routed, &text, settings, origin).await?)
                }
                None => {
                    let (schema, batches) = Settings::scan_options(settings)
                        .scope(async {
                            let df = self.ctx.sql(&text).await?;
                            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                            Ok::<_, StatementError>((schema, df.collect().await?))
                        })
                        .await?;
                    results.push(StatementResult {
                        tag: "SELECT".into(),
                        rows_affected: Some(batches.iter().map(|b| b.num_rows()).sum()),
                        rows: Some((schema, batches)),
                        notices: vec![],
                        write: None,
                    });
                }
            }
        }
        Ok(results)
    }
}

/// Render a write for the client and close its run log.
fn finish_write(
    result: DmlResult,
    started: DateTime<Utc>,
) -> Result<StatementResult, StatementError> {
    let log = result.log.clone();
    let (mut out, write) = output::write_output(result)?;
    let report = write.into_report(started, Utc::now());
    if let Some(log) = log
        && let Err(e) = log.finish(&report.summary, report.finished)
    {
        out.notices.push(format!(
            "WARNING: the run log could not store this write: {e}"
        ));
    }
    out.write = Some(report);
    Ok(out)
}
