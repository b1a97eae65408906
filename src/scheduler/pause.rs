//! Credentials gone bad: a run failing because its connection needs
//! `sfsql login` (SQLSTATE 28000) pauses every job that uses that
//! connection; their slots are logged `skipped` meanwhile, and they resume
//! by themselves once a login clears the token store's mark.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::visit_relations;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::Scheduler;
use crate::salesforce::SalesforceError;
use crate::session::StatementError;
use crate::state::JobRow;

/// The connection whose login a failure asks for, wherever in the error
/// the Salesforce error sits.
pub fn disconnected_connection(e: &StatementError) -> Option<String> {
    if let Some(SalesforceError::Disconnected { connection, .. }) =
        super::runner::salesforce_cause(e)
    {
        return Some(connection.clone());
    }
    // A plan error may carry the Salesforce error as text only; its
    // message always starts this way (see SalesforceError::Disconnected).
    let text = e.to_string();
    let rest = &text[text.find("connection '")? + "connection '".len()..];
    let (name, tail) = rest.split_once('\'')?;
    tail.starts_with(" is disconnected")
        .then(|| name.to_string())
}

/// The schemas (connections, lower case) a job's command reads or writes.
pub fn schemas_of(command: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, command) else {
        return out;
    };
    for s in &statements {
        let _ = visit_relations(s, |name| {
            if name.0.len() >= 2
                && let Some(schema) = name.0[name.0.len() - 2].as_ident()
            {
                out.insert(schema.value.to_ascii_lowercase());
            }
            ControlFlow::<()>::Continue(())
        });
    }
    out
}

/// What a paused job's skipped slot and `cron.job.paused_reason` say.
pub fn paused_message(connection: &str, reason: &str) -> String {
    format!(
        "paused: connection '{connection}' is disconnected ({reason}); run `sfsql login {connection}` and the job resumes by itself"
    )
}

impl Scheduler {
    /// Pause every job using `connection`; returns their names.
    pub(super) fn pause_connection(
        &self,
        connection: &str,
        reason: &str,
    ) -> Result<Vec<String>, super::SchedulerError> {
        let jobs: Vec<JobRow> = self
            .store
            .jobs()?
            .into_iter()
            .filter(|j| j.paused.is_none() && schemas_of(&j.command).contains(connection))
            .collect();
        let ids: Vec<i64> = jobs.iter().map(|j| j.jobid).collect();
        let message = paused_message(connection, reason);
        self.store
            .pause_jobs(&ids, connection, &message, self.clock.now())?;
        let names: Vec<String> = jobs.into_iter().map(|j| j.jobname).collect();
        tracing::warn!(%connection, jobs = ?names, "jobs paused until `sfsql login`");
        Ok(names)
    }

    /// Resume the jobs of every paused connection that a login has cleared
    /// (read from the token store; no request is made).
    pub(super) fn resume_logged_in(&self, jobs: &[JobRow]) {
        let paused: BTreeSet<&str> = jobs
            .iter()
            .filter_map(|j| j.paused.as_ref().map(|p| p.connection.as_str()))
            .collect();
        for connection in paused {
            let Some(conn) = self.engine.connections.get(connection) else {
                continue;
            };
            if conn.schema.client().needs_login().is_some() {
                continue;
            }
            match self.store.resume_jobs(connection, self.clock.now()) {
                Ok(names) => {
                    tracing::info!(%connection, jobs = ?names, "logged in again: jobs resumed")
                }
                Err(e) => tracing::error!(error = %e, "cannot resume paused jobs"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_come_from_every_relation() {
        let s = schemas_of(
            "UPDATE production.contact SET title = r.t FROM reports.nps r WHERE contact.id = r.id; \
             INSERT INTO Sandbox.task (subject) SELECT 'x'",
        );
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            ["production", "reports", "sandbox"]
        );
        assert!(schemas_of("not sql").is_empty());
    }

    #[test]
    fn the_connection_is_read_from_the_message_too() {
        let e = StatementError::Sql(
            "connection 'production' is disconnected (not logged in): run `sfsql login production`"
                .into(),
        );
        assert_eq!(disconnected_connection(&e).as_deref(), Some("production"));
        let other = StatementError::Sql("connection 'x' failed".into());
        assert_eq!(disconnected_connection(&other), None);
    }
}
