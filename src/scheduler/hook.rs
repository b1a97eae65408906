//! `CronHook`: answers `SELECT cron.schedule(...)`, `cron.unschedule`,
//! `cron.alter_job` and `cron.run` over pgwire. sqlparser reads them as a
//! SELECT of one function call without FROM; the hook matches that AST
//! (never the SQL text) and leaves every other statement alone.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value,
};
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::results::Response;
use pgwire::api::{ClientInfo, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

use super::call::{Arg, CronCall};
use super::runner::job_ref;
use super::{Scheduler, SchedulerError};
use crate::session::{described_plan, rows_response};

/// The functions of pg_cron's interface that sfsql answers.
const CRON_FUNCTIONS: [&str; 4] = ["schedule", "unschedule", "alter_job", "run"];

pub struct CronHook {
    scheduler: Arc<Scheduler>,
}

impl CronHook {
    pub fn new(scheduler: Arc<Scheduler>) -> Self {
        CronHook { scheduler }
    }
}

fn wire_error(e: &SchedulerError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        e.sqlstate().into(),
        e.to_string(),
    )))
}

/// Whether `statement` is a `cron.*` call this hook answers (the server's
/// role check asks before any hook runs).
pub fn is_cron_call(statement: &Statement) -> bool {
    cron_call(statement).is_some()
}

/// The `cron.*` call in `statement`, with its arguments as written
/// (placeholders unresolved), or `None` when it is not one.
/// A call's arguments: optional `name :=` and the value expression.
type NamedArgs = Vec<(Option<String>, Expr)>;

fn cron_call(statement: &Statement) -> Option<(String, NamedArgs)> {
    let (parts, f) = crate::session::lone_function_call(statement)?;
    // datafusion-postgres strips the schema from every function name
    // before hooks see the statement (its StripCallableQualifier rule), so
    // `cron.run(...)` arrives as `run(...)`: the bare names are ours too,
    // as when pg_cron's schema is on the search_path.
    let name = match parts.as_slice() {
        [schema, name] if schema == "cron" => name,
        [name] if CRON_FUNCTIONS.contains(&name.as_str()) => name,
        _ => return None,
    };
    let args = match &f.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                // PostgreSQL's `active := false` parses as an assignment.
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Assignment,
                    right,
                })) => match left.as_ref() {
                    Expr::Identifier(id) => {
                        Some((Some(id.value.to_ascii_lowercase()), right.as_ref().clone()))
                    }
                    _ => None,
                },
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some((None, e.clone())),
                FunctionArg::ExprNamed {
                    name: Expr::Identifier(id),
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some((Some(id.value.to_ascii_lowercase()), e.clone())),
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some((Some(name.value.to_ascii_lowercase()), e.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        FunctionArguments::None => vec![],
        FunctionArguments::Subquery(_) => return None,
    };
    Some((name.clone(), args))
}

/// A literal argument (or a bound parameter) as an [`Arg`].
fn arg_value(expr: &Expr, params: Option<&ParamValues>) -> Result<Arg, SchedulerError> {
    let unsupported = || {
        SchedulerError::BadCall(format!(
            "cron.* arguments must be literals or parameters, not {expr}"
        ))
    };
    match expr {
        Expr::Value(v) => Ok(match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DoubleQuotedString(s) => Arg::Text(s.clone()),
            Value::DollarQuotedString(d) => Arg::Text(d.value.clone()),
            Value::Number(n, _) => n.parse().map(Arg::Int).map_err(|_| unsupported())?,
            Value::Boolean(b) => Arg::Bool(*b),
            Value::Null => Arg::Null,
            Value::Placeholder(p) => {
                let idx: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| unsupported())?;
                let scalar = match params {
                    Some(ParamValues::List(list)) => {
                        list.get(idx.wrapping_sub(1)).map(|s| s.value.clone())
                    }
                    _ => None,
                }
                .ok_or_else(unsupported)?;
                match scalar {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Arg::Text(s),
                    ScalarValue::Int64(Some(n)) => Arg::Int(n),
                    ScalarValue::Int32(Some(n)) => Arg::Int(n.into()),
                    ScalarValue::Boolean(Some(b)) => Arg::Bool(b),
                    s if s.is_null() => Arg::Null,
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        }),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => arg_value(expr, params),
        _ => Err(unsupported()),
    }
}

/// The result's one column: named after the function, as in Postgres.
fn result_schema(function: &str) -> SchemaRef {
    let t = match function {
        "schedule" | "run" => DataType::Int64,
        "unschedule" => DataType::Boolean,
        _ => DataType::Utf8,
    };
    Arc::new(Schema::new(vec![Field::new(function, t, true)]))
}

impl CronHook {
    async fn answer(
        &self,
        statement: &Statement,
        params: Option<&ParamValues>,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let (function, raw) = cron_call(statement)?;
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let result = async {
            let args = raw
                .iter()
                .map(|(n, e)| Ok((n.clone(), arg_value(e, params)?)))
                .collect::<Result<Vec<_>, SchedulerError>>()?;
            let call = CronCall::parse(&function, args)?;
            self.call(call, &user).await
        }
        .await;
        Some(match result {
            Ok(column) => {
                let schema = result_schema(&function);
                match RecordBatch::try_new(Arc::clone(&schema), vec![column]) {
                    Ok(batch) => rows_response(ctx, schema, vec![batch]).await,
                    Err(e) => Err(PgWireError::ApiError(Box::new(e))),
                }
            }
            Err(e) => Err(wire_error(&e)),
        })
    }

    async fn call(&self, call: CronCall, user: &str) -> Result<ArrayRef, SchedulerError> {
        let s = &self.scheduler;
        Ok(match call {
            CronCall::Schedule {
                name,
                schedule,
                command,
                options,
            } => Arc::new(Int64Array::from(vec![
                s.schedule(&name, &schedule, &command, user, &options)?,
            ])),
            CronCall::Unschedule(job) => {
                s.unschedule(&job)?;
                Arc::new(BooleanArray::from(vec![true]))
            }
            CronCall::AlterJob {
                id,
                schedule,
                command,
                active,
                options,
            } => {
                s.alter_job(
                    id,
                    schedule.as_deref(),
                    command.as_deref(),
                    active,
                    &options,
                )?;
                Arc::new(StringArray::from(vec![None::<&str>]))
            }
            CronCall::Run {
                job,
                dry_run,
                wait: true,
            } => {
                let done = s.run_now(&job_ref(&job), dry_run).await?;
                Arc::new(Int64Array::from(vec![done.runid]))
            }
            CronCall::Run {
                job,
                dry_run,
                wait: false,
            } => Arc::new(Int64Array::from(vec![
                s.start_now(&job_ref(&job), dry_run)?,
            ])),
        })
    }
}

#[async_trait]
impl QueryHook for CronHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.answer(statement, None, session_context, client).await
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let (function, _) = cron_call(statement)?;
        let schema = result_schema(&function);
        Some(described_plan(&schema))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        params: &ParamValues,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.answer(statement, Some(params), session_context, client)
            .await
    }
}
