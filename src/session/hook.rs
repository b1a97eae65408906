//! `SfsqlHook`: the pgwire-facing router. datafusion-postgres parses each
//! statement and offers it here first; what sfsql owns is answered here,
//! everything else falls through to DataFusion.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, FromTable, ObjectName, Set, Statement, TableFactor, TableObject, Update,
};
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;

use super::engine::{Engine, UpdateResult};
use super::settings::{Settings, SettingsError};
use crate::dml::{self, DmlError};

/// How many per-record failures a NOTICE lists.
const NOTICE_FAILURES: usize = 5;

pub struct SfsqlHook {
    engine: Arc<Engine>,
}

/// A statement sfsql answers itself.
enum Routed<'a> {
    Set { name: String, value: String },
    Show(String),
    Update(&'a Update),
    ExplainUpdate(&'a Update),
    Unsupported(String),
}

pub fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

fn setting_error(e: SettingsError) -> PgWireError {
    let code = match e {
        SettingsError::Unknown(_) => "42704",
        SettingsError::InvalidValue { .. } => "22023",
    };
    user_error(code, e.to_string())
}

fn dml_error(e: DmlError) -> PgWireError {
    user_error(e.sqlstate(), e.to_string())
}

fn object_schema(name: &ObjectName) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
        .collect();
    (parts.len() >= 2).then(|| parts[parts.len() - 2].clone())
}

impl SfsqlHook {
    pub fn new(engine: Arc<Engine>) -> Self {
        SfsqlHook { engine }
    }

    fn is_connection(&self, schema: Option<String>) -> bool {
        schema.is_some_and(|s| self.engine.connections.contains_key(&s))
    }

    fn route<'a>(&self, statement: &'a Statement) -> Option<Routed<'a>> {
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
            Statement::Explain { statement, .. } => match statement.as_ref() {
                Statement::Update(u) => Some(Routed::ExplainUpdate(u)),
                _ => None,
            },
            Statement::Insert(insert) => {
                let TableObject::TableName(name) = &insert.table else {
                    return None;
                };
                self.is_connection(object_schema(name)).then(|| {
                    Routed::Unsupported(
                        "INSERT into Salesforce tables is not supported yet; UPDATE ... FROM is (records are never created by UPDATE)".into(),
                    )
                })
            }
            Statement::Delete(delete) => {
                let tables = match &delete.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                let targets_sf = tables.iter().any(|t| match &t.relation {
                    TableFactor::Table { name, .. } => self.is_connection(object_schema(name)),
                    _ => false,
                });
                targets_sf.then(|| {
                    Routed::Unsupported("DELETE on Salesforce tables is not supported yet".into())
                })
            }
            Statement::Merge(_) => Some(Routed::Unsupported(
                "MERGE on Salesforce tables is not supported yet".into(),
            )),
            _ => None,
        }
    }

    async fn run(
        &self,
        routed: Routed<'_>,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> PgWireResult<Response> {
        match routed {
            Routed::Set { name, value } => {
                let (name, value) = Settings::normalise(&name, &value).map_err(setting_error)?;
                client.metadata_mut().insert(name, value);
                Ok(Response::Execution(Tag::new("SET")))
            }
            Routed::Show(name) => {
                let value = Settings::get(client.metadata(), &name).map_err(setting_error)?;
                let batch = text_batch(&[name.as_str()], vec![vec![Some(value)]])?;
                batch_response(ctx, batch).await
            }
            Routed::Unsupported(message) => Err(user_error("0A000", message)),
            Routed::Update(update) => {
                let opts = Settings::dml_options(client.metadata());
                let result = self.engine.update(update, opts).await.map_err(dml_error)?;
                match result {
                    UpdateResult::DryRun(set) => {
                        let changed: Vec<_> = set.changed().collect();
                        let fields: usize = changed.iter().map(|r| r.changes.len()).sum();
                        notice(
                            client,
                            format!(
                                "dry run: {} {} records matched, {} would change ({} field values), {} unchanged; nothing was written",
                                set.records.len(),
                                set.sobject,
                                changed.len(),
                                fields,
                                set.unchanged()
                            ),
                        )
                        .await?;
                        batch_response(ctx, dry_run_batch(&set)?).await
                    }
                    UpdateResult::Applied { set, summary } => {
                        let mut text = format!(
                            "{}.{}: {} matched, {} updated, {} unchanged, {} failed, {} skipped; {} write calls",
                            set.connection,
                            set.sobject.to_ascii_lowercase(),
                            summary.matched,
                            summary.updated,
                            summary.unchanged,
                            summary.failed,
                            summary.skipped,
                            summary.write_calls
                        );
                        for f in summary.failures().take(NOTICE_FAILURES) {
                            text.push_str(&format!(
                                "\n  {} (key {}): {}: {}{}",
                                f.id,
                                f.match_key.as_deref().unwrap_or("-"),
                                f.error_code.as_deref().unwrap_or("ERROR"),
                                f.message.as_deref().unwrap_or(""),
                                if f.fields.is_empty() {
                                    String::new()
                                } else {
                                    format!(" [{}]", f.fields.join(", "))
                                }
                            ));
                        }
                        if summary.failed > NOTICE_FAILURES {
                            text.push_str(&format!(
                                "\n  ... and {} more failures",
                                summary.failed - NOTICE_FAILURES
                            ));
                        }
                        notice(client, text).await?;
                        Ok(Response::Execution(
                            Tag::new("UPDATE").with_rows(summary.updated),
                        ))
                    }
                }
            }
            Routed::ExplainUpdate(update) => {
                let batch = self.explain_update(update).await.map_err(dml_error)?;
                batch_response(ctx, batch).await
            }
        }
    }

    /// EXPLAIN UPDATE: the statements sfsql will run, and DataFusion's plan
    /// of the change set with the exact SOQL of each scan. The source keys
    /// are read (a read, never a write) so the SOQL shown is what is sent.
    async fn explain_update(&self, update: &Update) -> Result<RecordBatch, DmlError> {
        let plan = self.engine.plan_update(update).await?;
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut key_filter = None;
        if let (Some(keys_sql), Some(k)) = (plan.keys_sql(), &plan.key) {
            rows.push(vec![
                Some("sfsql: source keys".into()),
                Some(keys_sql.clone()),
            ]);
            let batches = self.engine.ctx.sql(&keys_sql).await?.collect().await?;
            if let Some(literals) = dml::key_literal_list(&batches)? {
                rows.push(vec![
                    Some("sfsql: key lookup".into()),
                    Some(format!(
                        "{} IN (<{} distinct keys>): {} is fetched by key, not scanned",
                        k.target_sql,
                        literals.len(),
                        plan.sobject()
                    )),
                ]);
                if !literals.is_empty() {
                    key_filter = Some(format!("{} IN ({})", k.target_sql, literals.join(", ")));
                }
            }
        }
        rows.push(vec![
            Some("sfsql: change set".into()),
            Some(plan.change_set_sql(None)),
        ]);
        rows.push(vec![
            Some("sfsql: write".into()),
            Some(format!(
                "diff against current values; PATCH /composite/sobjects with only the changed fields of changed {} records, 200 per call",
                plan.sobject()
            )),
        ]);
        // DataFusion's own plan of the change set, with the real key list,
        // so each scan shows the SOQL that will be sent.
        let explained_sql = plan.change_set_sql(key_filter.as_deref());
        let explained = self
            .engine
            .ctx
            .sql(&format!("EXPLAIN {explained_sql}"))
            .await?
            .collect()
            .await?;
        for b in &explained {
            let types = b.column(0).as_any().downcast_ref::<StringArray>();
            let plans = b.column(1).as_any().downcast_ref::<StringArray>();
            if let (Some(t), Some(p)) = (types, plans) {
                for i in 0..b.num_rows() {
                    rows.push(vec![
                        Some(t.value(i).to_string()),
                        Some(p.value(i).to_string()),
                    ]);
                }
            }
        }
        text_batch(&["plan_type", "plan"], rows).map_err(|e| DmlError::Value(e.to_string()))
    }

    fn output_schema(
        &self,
        routed: &Routed<'_>,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> SchemaRef {
        let cols: Vec<&str> = match routed {
            Routed::Show(name) => return text_schema(&[name.as_str()]),
            Routed::Update(_) if Settings::dml_options(client.metadata()).dry_run => {
                DRY_RUN_COLUMNS.to_vec()
            }
            Routed::ExplainUpdate(_) => vec!["plan_type", "plan"],
            _ => vec![],
        };
        text_schema(&cols)
    }
}

const DRY_RUN_COLUMNS: [&str; 6] = [
    "sobject",
    "id",
    "match_key",
    "field",
    "old_value",
    "new_value",
];

fn text_schema(cols: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn text_batch(cols: &[&str], rows: Vec<Vec<Option<String>>>) -> PgWireResult<RecordBatch> {
    let schema = text_schema(cols);
    let arrays: Vec<ArrayRef> = (0..cols.len())
        .map(|c| Arc::new(rows.iter().map(|r| r[c].clone()).collect::<StringArray>()) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| PgWireError::ApiError(Box::new(e)))
}

fn dry_run_batch(set: &dml::ChangeSet) -> PgWireResult<RecordBatch> {
    let mut rows = Vec::new();
    for r in set.changed() {
        for c in &r.changes {
            rows.push(vec![
                Some(set.sobject.clone()),
                Some(r.id.clone()),
                r.match_key.clone(),
                Some(c.field.clone()),
                dml::display_value(&c.old),
                dml::display_value(&c.new),
            ]);
        }
    }
    text_batch(&DRY_RUN_COLUMNS, rows)
}

async fn batch_response(ctx: &SessionContext, batch: RecordBatch) -> PgWireResult<Response> {
    let df = ctx
        .read_batch(batch)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(Response::Query(
        encode_dataframe(df, &Format::UnifiedText, None).await?,
    ))
}

async fn notice(client: &mut dyn HookClient, message: String) -> PgWireResult<()> {
    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), message);
    client
        .send_message(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
            info,
        )))
        .await
}

#[async_trait]
impl QueryHook for SfsqlHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let routed = self.route(statement)?;
        Some(self.run(routed, session_context, client).await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let routed = self.route(statement)?;
        let schema = self.output_schema(&routed, client);
        Some(
            DFSchema::try_from(schema.as_ref().clone())
                .map(|s| {
                    LogicalPlan::EmptyRelation(EmptyRelation {
                        produce_one_row: false,
                        schema: Arc::new(s),
                    })
                })
                .map_err(|e| PgWireError::ApiError(Box::new(e))),
        )
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let routed = self.route(statement)?;
        Some(self.run(routed, session_context, client).await)
    }
}
