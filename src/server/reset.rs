//! `RESET name` and `RESET ALL`: a setting goes back to the value it had
//! before this connection first changed it, as in PostgreSQL (where that
//! is the startup packet's value or the server's default).
//!
//! Settings live in the pgwire client's metadata, so each connection has
//! its own: sfsql's `sfsql.*` (their defaults are constants), and the
//! PostgreSQL ones datafusion-postgres keeps (`statement_timeout`,
//! `TimeZone`, `DateStyle`, ...). For the latter, [`ResetHook`] sees every
//! `SET` before datafusion-postgres answers it and keeps the value it is
//! about to replace; `RESET` puts that back.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ParamValues;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Reset, ResetStatement, Set, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::error::PgWireError;
use pgwire::error::PgWireResult;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::ParameterStatus;

use crate::session::{Settings, described_plan, user_error};

/// The PostgreSQL settings a client can SET and RESET: (name in SQL, the
/// client metadata key datafusion-postgres keeps it under, the name of its
/// ParameterStatus message when the client is told of changes).
const CLIENT_SETTINGS: &[(&str, &str, Option<&str>)] = &[
    ("statement_timeout", "statement_timeout_ms", None),
    ("timezone", "timezone", Some("TimeZone")),
    ("datestyle", "datestyle", Some("DateStyle")),
    ("intervalstyle", "intervalstyle", Some("IntervalStyle")),
    ("bytea_output", "bytea_output", None),
    (
        "application_name",
        "application_name",
        Some("application_name"),
    ),
    ("extra_float_digits", "extra_float_digits", None),
    ("search_path", "search_path", None),
];

/// Where the value a setting had before its first SET is kept.
fn saved_key(key: &str) -> String {
    format!("reset_value.{key}")
}

/// The saved value of a setting that had none (its default applies).
const UNSET: &str = "\0";

fn client_setting(
    name: &str,
) -> Option<&'static (&'static str, &'static str, Option<&'static str>)> {
    let name = name.to_ascii_lowercase().replace(' ', "");
    CLIENT_SETTINGS.iter().find(|s| s.0 == name)
}

/// The client setting a SET statement changes.
fn set_target(statement: &Statement) -> Option<&'static str> {
    match statement {
        Statement::Set(Set::SingleAssignment { variable, .. }) => {
            client_setting(&variable.to_string()).map(|s| s.1)
        }
        Statement::Set(Set::SetTimeZone { .. }) => Some("timezone"),
        _ => None,
    }
}

/// What a RESET resets: `None` for ALL.
fn reset_target(statement: &Statement) -> Option<Option<String>> {
    match statement {
        Statement::Reset(ResetStatement { reset }) => Some(match reset {
            Reset::ALL => None,
            Reset::ConfigurationParameter(name) => Some(name.to_string()),
        }),
        _ => None,
    }
}

/// Keep the value of `key` before this connection's first SET of it.
fn remember(client: &mut dyn HookClient, key: &str) {
    let saved = saved_key(key);
    if client.metadata().contains_key(&saved) {
        return;
    }
    let before = client
        .metadata()
        .get(key)
        .cloned()
        .unwrap_or_else(|| UNSET.to_string());
    client.metadata_mut().insert(saved, before);
}

/// Put `key` back as it was before its first SET; the ParameterStatus to
/// send when the client must hear of it.
fn restore(
    client: &mut dyn HookClient,
    key: &str,
    status: Option<&str>,
) -> Option<ParameterStatus> {
    let before = client.metadata_mut().remove(&saved_key(key))?;
    if before == UNSET {
        client.metadata_mut().remove(key);
    } else {
        client
            .metadata_mut()
            .insert(key.to_string(), before.clone());
    }
    let value = if before == UNSET {
        default_of(key)?
    } else {
        before
    };
    status.map(|name| ParameterStatus::new(name.to_string(), value))
}

/// Make the connection's `TimeZone` DataFusion's `execution.time_zone` in
/// its own context (datafusion-postgres's SET TIME ZONE writes it into a
/// copy of the state, where casts and now() never see it).
fn apply_time_zone(client: &dyn HookClient, ctx: &SessionContext) {
    let zone = client.metadata().get("timezone").cloned();
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .time_zone = zone;
}

/// What a client setting without a value means (what the server reported
/// at startup).
fn default_of(key: &str) -> Option<String> {
    match key {
        "timezone" => Some("UTC".into()),
        "datestyle" => Some("ISO, MDY".into()),
        "intervalstyle" => Some("postgres".into()),
        "application_name" => Some(String::new()),
        _ => None,
    }
}

async fn reset(client: &mut dyn HookClient, name: Option<String>) -> PgWireResult<Response> {
    let mut statuses = Vec::new();
    match name {
        None => {
            let ours: Vec<String> = client
                .metadata()
                .keys()
                .filter(|k| Settings::is_ours(k))
                .cloned()
                .collect();
            for key in ours {
                client.metadata_mut().remove(&key);
            }
            for (_, key, status) in CLIENT_SETTINGS {
                statuses.extend(restore(client, key, *status));
            }
        }
        Some(name) if Settings::is_ours(&name) => {
            // An unknown sfsql setting is an error, as for SET and SHOW.
            Settings::get(client.metadata(), &name)
                .map_err(|e| user_error("42704", e.to_string()))?;
            client.metadata_mut().remove(&name.to_ascii_lowercase());
        }
        Some(name) => {
            let Some((_, key, status)) = client_setting(&name) else {
                return Err(unrecognized(&name));
            };
            statuses.extend(restore(client, key, *status));
        }
    }
    for status in statuses {
        client
            .send_message(PgWireBackendMessage::ParameterStatus(status))
            .await?;
    }
    Ok(Response::Execution(Tag::new("RESET")))
}

/// `SHOW` of a setting datafusion-postgres would answer with an empty
/// string or another server's value: the connection's TimeZone (UTC until
/// it is set), the PostgreSQL version clients parse, and DataFusion's own
/// options as this connection has them. (column name, value)
fn shown(
    statement: &Statement,
    client: &dyn HookClient,
    ctx: &SessionContext,
) -> Option<PgWireResult<(String, String)>> {
    let Statement::ShowVariable { variable } = statement else {
        return None;
    };
    let name = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".");
    let fixed = |value: &str| Some(Ok((name.clone(), value.to_string())));
    match name.as_str() {
        // What PostgreSQL 15 reports, and sfsql does: UTF-8 text,
        // standard strings, no superusers.
        "server_encoding" => fixed("UTF8"),
        "client_encoding" if !client.metadata().contains_key("client_encoding") => fixed("UTF8"),
        "standard_conforming_strings" | "integer_datetimes" => fixed("on"),
        "is_superuser" => fixed("off"),
        "max_identifier_length" => fixed("63"),
        "lc_collate" | "lc_ctype" => fixed("C"),
        _ => None,
    }
    .or_else(|| known(&name, client, ctx))
}

/// The settings whose SHOW is answered here or by datafusion-postgres
/// (`None` for the latter); an unknown name is 42704, as in PostgreSQL,
/// not an empty value.
fn known(
    name: &str,
    client: &dyn HookClient,
    ctx: &SessionContext,
) -> Option<PgWireResult<(String, String)>> {
    let name = name.to_string();
    let answer = match name.as_str() {
        "timezone" | "time.zone" => Some((
            "TimeZone".into(),
            client
                .metadata()
                .get("timezone")
                .filter(|z| !z.is_empty())
                .cloned()
                .unwrap_or_else(|| "UTC".into()),
        )),
        "server_version" => Some((name, super::compat::server_version())),
        "server_version_num" => Some((name, "150000".into())),
        _ if name.starts_with("datafusion.") => {
            let entry = ctx
                .state()
                .config()
                .options()
                .entries()
                .into_iter()
                .find(|e| e.key == name);
            match entry {
                Some(e) => Some((name, e.value.unwrap_or_default())),
                None => return Some(Err(unrecognized(&name))),
            }
        }
        // Answered by datafusion-postgres (from the client's settings).
        "transaction_isolation"
        | "transaction.isolation.level"
        | "statement_timeout"
        | "catalogs"
        | "bytea_output"
        | "datestyle"
        | "intervalstyle"
        | "extra_float_digits"
        | "application_name"
        | "search_path"
        | "all" => None,
        _ if client.metadata().contains_key(&name) || Settings::is_ours(&name) => None,
        _ => return Some(Err(unrecognized(&name))),
    };
    answer.map(Ok)
}

fn unrecognized(name: &str) -> PgWireError {
    user_error(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

async fn show(ctx: &SessionContext, name: &str, value: String) -> PgWireResult<Response> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))])
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let df = ctx
        .read_batch(batch)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(Response::Query(
        encode_dataframe(df, &Format::UnifiedText, None).await?,
    ))
}

/// Answers RESET and the SHOWs of `shown`; notes the value a SET replaces (then lets
/// datafusion-postgres answer the SET).
pub struct ResetHook {
    /// DataFusion's options as every connection starts with them (the
    /// engine's): what `RESET datafusion.*` and `RESET ALL` go back to.
    defaults: ConfigOptions,
}

impl ResetHook {
    pub fn new(defaults: ConfigOptions) -> Self {
        ResetHook { defaults }
    }

    /// Put DataFusion's option `name` (every option for `None`) of this
    /// connection back to the engine's value; 42704 for an unknown name.
    fn reset_datafusion(&self, ctx: &SessionContext, name: Option<&str>) -> PgWireResult<()> {
        let state = ctx.state_ref();
        let mut state = state.write();
        let current = state.config().options().entries();
        let mut options = self.defaults.clone();
        if let Some(name) = name {
            let name = name.to_ascii_lowercase();
            if !current.iter().any(|e| e.key == name) {
                return Err(unrecognized(&name));
            }
            let defaults = self.defaults.entries();
            for e in current {
                let default = defaults.iter().find(|d| d.key == e.key);
                if e.key == name || default.is_some_and(|d| d.value == e.value) {
                    continue;
                }
                // Another option this connection SET keeps its value.
                if let Some(value) = &e.value {
                    options
                        .set(&e.key, value)
                        .map_err(|err| user_error("22023", err.to_string()))?;
                }
            }
        }
        *state.config_mut().options_mut() = options;
        Ok(())
    }
    async fn handle(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Some(key) = set_target(statement) {
            remember(client, key);
            let zone = match statement {
                Statement::Set(Set::SetTimeZone {
                    local: false,
                    value,
                }) => Some(value.to_string()),
                // `SET timezone = 'x'` goes on to DataFusion's SET; the
                // connection's TimeZone (what SHOW and RESET read) is
                // noted here.
                Statement::Set(Set::SingleAssignment {
                    scope: None,
                    values,
                    ..
                }) if key == "timezone" && values.len() == 1 => {
                    let zone = values[0].to_string();
                    let zone = zone.trim_matches('"').trim_matches('\'').to_string();
                    client
                        .metadata_mut()
                        .insert("timezone".to_string(), zone.clone());
                    Some(zone)
                }
                _ => None,
            };
            if let Some(zone) = zone {
                let zone = zone.trim_matches('"').trim_matches('\'');
                ctx.state_ref()
                    .write()
                    .config_mut()
                    .options_mut()
                    .execution
                    .time_zone = Some(zone.to_string());
            }
            return None;
        }
        if let Some(answer) = shown(statement, client, ctx) {
            return Some(match answer {
                Ok((name, value)) => show(ctx, &name, value).await,
                Err(e) => Err(e),
            });
        }
        let name = reset_target(statement)?;
        let datafusion = match name.as_deref() {
            None => Some(None),
            Some(n) if n.to_ascii_lowercase().starts_with("datafusion.") => Some(Some(n)),
            Some(_) => None,
        };
        if let Some(option) = datafusion {
            if let Err(e) = self.reset_datafusion(ctx, option) {
                return Some(Err(e));
            }
            if option.is_some() {
                return Some(Ok(Response::Execution(Tag::new("RESET"))));
            }
        }
        let zone = name
            .as_deref()
            .is_none_or(|n| client_setting(n).is_some_and(|s| s.1 == "timezone"));
        let reset = reset(client, name).await;
        if zone {
            apply_time_zone(client, ctx);
        }
        Some(reset)
    }
}

#[async_trait]
impl QueryHook for ResetHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.handle(statement, session_context, client).await
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        reset_target(statement)?;
        Some(described_plan(&Schema::empty()))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.handle(statement, session_context, client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("parse")
            .remove(0)
    }

    #[test]
    fn sets_name_the_metadata_they_change() {
        assert_eq!(
            set_target(&parse("SET statement_timeout = '5s'")),
            Some("statement_timeout_ms")
        );
        assert_eq!(
            set_target(&parse("SET TIME ZONE 'Europe/Paris'")),
            Some("timezone")
        );
        assert_eq!(
            set_target(&parse("SET DateStyle = 'ISO, DMY'")),
            Some("datestyle")
        );
        assert_eq!(set_target(&parse("SET sfsql.dry_run = on")), None);
    }

    #[test]
    fn resets_name_one_setting_or_all() {
        assert_eq!(reset_target(&parse("RESET ALL")), Some(None));
        assert_eq!(
            reset_target(&parse("RESET sfsql.dry_run")),
            Some(Some("sfsql.dry_run".into()))
        );
        assert_eq!(reset_target(&parse("SHOW sfsql.dry_run")), None);
        assert!(client_setting("TimeZone").is_some());
        assert!(client_setting("time zone").is_some());
        assert!(client_setting("work_mem").is_none());
    }
}
