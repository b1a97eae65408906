//! `SfsqlHook`: the pgwire face of the router. datafusion-postgres parses
//! each statement and offers it here first; what the router takes is run
//! by the engine, everything else falls through to DataFusion. The
//! session's `sfsql.*` settings live in the pgwire client's metadata, so one
//! connection's `SET` never changes another's.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::api::{ClientInfo, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;

use super::engine::Engine;
use super::router::{Origin, StatementResult};
use super::settings::Settings;

pub struct SfsqlHook {
    engine: Arc<Engine>,
}

/// The plan a hook hands back at Parse for a statement it answers itself:
/// no rows, only the columns Describe reports.
pub fn described_plan(schema: &datafusion::arrow::datatypes::Schema) -> PgWireResult<LogicalPlan> {
    DFSchema::try_from(schema.clone())
        .map(|s| {
            LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::new(s),
            })
        })
        .map_err(|e| PgWireError::ApiError(Box::new(e)))
}

pub fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

/// The client's `sfsql.*` settings, taken out of its metadata.
fn settings_of(client: &(dyn ClientInfo + Send + Sync)) -> HashMap<String, String> {
    client
        .metadata()
        .iter()
        .filter(|(k, _)| Settings::is_ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl SfsqlHook {
    pub fn new(engine: Arc<Engine>) -> Self {
        SfsqlHook { engine }
    }

    async fn run(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let routed = self.engine.route(statement)?;
        let mut settings = settings_of(client);
        let origin = Origin::Client {
            user: client
                .metadata()
                .get(METADATA_USER)
                .cloned()
                .unwrap_or_default(),
        };
        let sql = statement.to_string();
        // Progress lines from the writes reach the client as NOTICEs while
        // the statement runs.
        let (tx, mut rx) = super::progress::channel();
        let result = {
            let work = super::progress::scope(
                tx,
                self.engine.run_routed(routed, &sql, &mut settings, &origin),
            );
            tokio::pin!(work);
            loop {
                tokio::select! {
                    result = &mut work => break result,
                    Some(line) = rx.recv() => {
                        // A client that cannot take a notice still gets
                        // the statement's result (or its error).
                        let _ = send_notice(client, line).await;
                    }
                }
            }
        };
        while let Ok(line) = rx.try_recv() {
            let _ = send_notice(client, line).await;
        }
        for (k, v) in settings {
            client.metadata_mut().insert(k, v);
        }
        Some(match result {
            Ok(result) => respond(ctx, client, result).await,
            Err(e) => Err(user_error(e.sqlstate(), e.to_string())),
        })
    }
}

/// Rows as a pgwire query response (text format).
pub async fn rows_response(
    ctx: &SessionContext,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<datafusion::arrow::array::RecordBatch>,
) -> PgWireResult<Response> {
    let df = if batches.is_empty() {
        ctx.read_batch(datafusion::arrow::array::RecordBatch::new_empty(schema))
    } else {
        ctx.read_batches(batches)
    }
    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(Response::Query(
        encode_dataframe(df, &Format::UnifiedText, None).await?,
    ))
}

async fn send_notice(client: &mut dyn HookClient, message: String) -> PgWireResult<()> {
    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), message);
    client
        .send_message(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
            info,
        )))
        .await
}

async fn respond(
    ctx: &SessionContext,
    client: &mut dyn HookClient,
    result: StatementResult,
) -> PgWireResult<Response> {
    for n in result.notices {
        send_notice(client, n).await?;
    }
    match result.rows {
        Some((schema, batches)) => {
            let mut response = rows_response(ctx, schema, batches).await?;
            // Rows from a write (RETURNING) keep the write's tag:
            // `INSERT 0 n`, not `SELECT n`.
            if result.rows_affected.is_some()
                && let Response::Query(q) = &mut response
            {
                q.set_command_tag(&result.tag);
            }
            Ok(response)
        }
        None => {
            let mut tag = Tag::new(&result.tag);
            if let Some(n) = result.rows_affected {
                tag = tag.with_rows(n);
            }
            Ok(Response::Execution(tag))
        }
    }
}

#[async_trait]
impl QueryHook for SfsqlHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.run(statement, session_context, client).await
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let routed = self.engine.route(statement)?;
        let schema = self.engine.routed_schema(&routed, &settings_of(client));
        Some(described_plan(&schema))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.run(statement, session_context, client).await
    }
}
