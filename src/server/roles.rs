//! Roles at the front door: before any hook answers a statement, the
//! session's role (from `server.toml`, set at login) must cover it; a
//! refused statement gets 42501 naming the role it needs. Writes need a
//! writer (an admin for production orgs); `cron.*` commands, catalog changes,
//! `sfsql.refresh` and `COPY ... TO '<server file>'` need an admin.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::results::Response;
use pgwire::api::{ClientInfo, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};

use crate::config::Role;
use crate::scheduler::is_cron_call;
use crate::session::{Engine, Routed, Settings, user_error};

/// The role a statement needs, and what for (the error names both).
pub fn required_role(
    engine: &Engine,
    statement: &Statement,
    dry_run: bool,
) -> Option<(Role, String)> {
    if let Some(routed) = engine.route(statement) {
        if let Routed::Refresh(_) = routed {
            // A refresh drops the describes every session shares, and a dry
            // run does not make it any less real.
            return Some((Role::Admin, "catalog refreshes (sfsql.refresh)".into()));
        }
        let writes = matches!(
            routed,
            Routed::Update(_) | Routed::Insert(_) | Routed::Delete(_) | Routed::Merge(_)
        );
        if dry_run || !writes {
            return None;
        }
        let target = engine.write_target(&routed);
        let production = target
            .as_ref()
            .and_then(|t| engine.connections.get(t))
            .is_some_and(|c| c.production);
        let target = target.unwrap_or_else(|| "a Salesforce connection".into());
        return Some(if production {
            (
                Role::Admin,
                format!("writes to {target} (a production org)"),
            )
        } else {
            (Role::Writer, format!("writes to {target}"))
        });
    }
    if is_cron_call(statement) {
        return Some((Role::Admin, "cron.* job commands".into()));
    }
    match statement {
        // DataFusion's own DDL and DML change the catalog every session shares.
        Statement::CreateTable(_)
        | Statement::CreateView { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateFunction(_)
        | Statement::CreateIndex(_)
        | Statement::Drop { .. }
        | Statement::DropFunction { .. }
        | Statement::AlterTable { .. }
        | Statement::AlterView { .. }
        | Statement::Truncate { .. } => Some((Role::Admin, "changes to the shared catalog".into())),
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
            if !dry_run =>
        {
            Some((Role::Writer, "writes".into()))
        }
        _ => None,
    }
}

/// Asked first, before sfsql's router: answers only to refuse.
pub struct RoleHook {
    engine: Arc<Engine>,
}

impl RoleHook {
    pub fn new(engine: Arc<Engine>) -> Self {
        RoleHook { engine }
    }

    fn check(
        &self,
        statement: &Statement,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<Response>> {
        let dry_run = Settings::dml_options(client.metadata()).dry_run;
        let (needed, what) = required_role(&self.engine, statement, dry_run)?;
        refuse_below(client, needed, &what).map(Err)
    }
}

/// The 42501 error for a client whose role is below `needed` for `what`.
pub fn refuse_below(
    client: &(dyn ClientInfo + Send + Sync),
    needed: Role,
    what: &str,
) -> Option<PgWireError> {
    // No role means the login did not set one: the least privilege.
    let role = client
        .session_extensions()
        .get::<Role>()
        .map(|r| *r)
        .unwrap_or_default();
    if role >= needed {
        return None;
    }
    let user = client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default();
    Some(refusal(&user, role, needed, what))
}

fn refusal(user: &str, role: Role, needed: Role, what: &str) -> PgWireError {
    user_error(
        "42501",
        format!(
            "permission denied: {what} need role {needed}; user {user} has role {role} \
             (set role = \"{needed}\" under [users.{user}] in server.toml)"
        ),
    )
}

#[async_trait]
impl QueryHook for RoleHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.check(statement, client)
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        // Describe is harmless, and `SET sfsql.dry_run` may still come
        // before Execute: the check is at Execute.
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.check(statement, client)
    }
}
