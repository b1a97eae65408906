//! The DML entry points the router calls: resolve the target table, plan,
//! build the change set, check the guardrails, then show it (dry run) or
//! write it through [`dml::apply`]. Every statement kind ends in one
//! [`DmlResult`].

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{Delete, Insert, Merge, TableObject, Update};

use super::engine::{Connection, Engine};
use super::{Origin, WriteLog, WriteTarget};
use crate::dml::{self, ChangeSet, DmlError, DmlOptions, UpdateSummary};
use crate::provider::SObjectTable;

/// What a DML statement did (or, in a dry run, would do).
#[derive(Debug)]
pub struct DmlResult {
    pub set: ChangeSet,
    /// The values a dry run found Salesforce would refuse (a write stops
    /// before sending instead), each shown as an `invalid` row.
    pub refused: Vec<dml::Refusal>,
    pub dry_run: bool,
    /// Outcomes; predicted ones in a dry run.
    pub summary: UpdateSummary,
    /// INSERT ... RETURNING items (lower case), empty otherwise.
    pub returning: Vec<String>,
    /// How the changed records are (or would be) written, and its cost.
    pub method: String,
    /// The run log holding every record's outcome, closed by the caller.
    pub log: Option<Arc<dyn WriteLog>>,
}

impl Engine {
    /// The connection and sObject table that `schema.table` names.
    pub(super) async fn resolve(
        &self,
        schema: Option<String>,
        table: &str,
    ) -> Result<(String, &Connection, Arc<SObjectTable>), DmlError> {
        let Some(schema) = schema else {
            return Err(DmlError::UnknownTable(format!(
                "{table}\" (qualify it with its connection, e.g. {}.{table}",
                self.connections
                    .keys()
                    .next()
                    .map(String::as_str)
                    .unwrap_or("production")
            )));
        };
        let conn_name = schema.to_ascii_lowercase();
        let conn = self
            .connections
            .get(&conn_name)
            .ok_or_else(|| DmlError::UnknownTable(format!("{schema}.{table}")))?;
        let sobject_table = conn
            .schema
            .sobject_table(&table.to_ascii_lowercase())
            .await?
            .ok_or_else(|| DmlError::UnknownTable(format!("{schema}.{table}")))?;
        if sobject_table.includes_deleted() {
            return Err(DmlError::Unsupported(format!(
                "{schema}.{table} is read-only: it shows deleted and archived records; \
                 write to {schema}.{} instead",
                sobject_table.describe().name.to_ascii_lowercase()
            )));
        }
        Ok((conn_name, conn, sobject_table))
    }

    pub async fn plan_update(
        &self,
        update: &Update,
        opts: &DmlOptions,
    ) -> Result<dml::UpdatePlan, DmlError> {
        let (schema, table, _) = dml::update_target(update)?;
        let (conn_name, _, sobject_table) = self.resolve(schema, &table).await?;
        let mut plan = dml::plan_update(update, &conn_name, sobject_table)?;
        plan.newest = opts.on_multiple_matches == dml::MatchPolicy::Newest;
        Ok(plan)
    }

    /// UPDATE on a Salesforce table.
    pub async fn update(
        &self,
        update: &Update,
        opts: DmlOptions,
        origin: &Origin,
        sql: &str,
    ) -> Result<DmlResult, DmlError> {
        let plan = self.plan_update(update, &opts).await?;
        let conn = &self.connections[&plan.connection];
        writable(conn, &plan.connection, &opts)?;
        let set = dml::build_change_set(&self.ctx, &plan, &opts).await?;
        let refused = refusals(&set, &plan.table, &opts);
        self.write(conn, (set, refused), &opts, vec![], (origin, sql))
            .await
    }

    pub async fn plan_insert(&self, insert: &Insert) -> Result<dml::InsertPlan, DmlError> {
        let TableObject::TableName(name) = &insert.table else {
            return Err(DmlError::Unsupported(
                "INSERT target must be a table".into(),
            ));
        };
        let (schema, table) =
            dml::table_ref(name).ok_or_else(|| DmlError::UnknownTable(name.to_string()))?;
        let (conn_name, _, sobject_table) = self.resolve(schema, &table).await?;
        dml::plan_insert(insert, &conn_name, sobject_table)
    }

    /// INSERT (or, with ON CONFLICT, upsert by external ID).
    pub async fn insert(
        &self,
        insert: &Insert,
        opts: DmlOptions,
        origin: &Origin,
        sql: &str,
    ) -> Result<DmlResult, DmlError> {
        let plan = self.plan_insert(insert).await?;
        let conn = &self.connections[&plan.connection];
        writable(conn, &plan.connection, &opts)?;
        let records = dml::build_records(&self.ctx, &plan, opts.dry_run).await?;
        let set = match &plan.conflict {
            Some(conflict) => {
                dml::build_upsert_set(&self.ctx, &plan, conflict, records, opts.dry_run).await?
            }
            None => dml::create_set(&plan, records),
        };
        let refused = refusals(&set, &plan.table, &opts);
        self.write(conn, (set, refused), &opts, plan.returning, (origin, sql))
            .await
    }

    pub async fn plan_delete(&self, delete: &Delete) -> Result<dml::DeletePlan, DmlError> {
        let (schema, table, _) = dml::delete_target(delete)?;
        let (conn_name, _, sobject_table) = self.resolve(schema, &table).await?;
        dml::plan_delete(delete, &conn_name, sobject_table)
    }

    /// DELETE on a Salesforce table (a WHERE is required).
    pub async fn delete(
        &self,
        delete: &Delete,
        opts: DmlOptions,
        origin: &Origin,
        sql: &str,
    ) -> Result<DmlResult, DmlError> {
        let plan = self.plan_delete(delete).await?;
        let conn = &self.connections[&plan.connection];
        writable(conn, &plan.connection, &opts)?;
        let set = dml::build_delete_set(&self.ctx, &plan).await?;
        self.write(conn, (set, vec![]), &opts, vec![], (origin, sql))
            .await
    }

    pub async fn plan_merge(&self, merge: &Merge) -> Result<dml::MergePlan, DmlError> {
        let (schema, table, _) = dml::merge_target(merge)?;
        let (conn_name, _, sobject_table) = self.resolve(schema, &table).await?;
        dml::plan_merge(merge, &conn_name, sobject_table)
    }

    /// MERGE into a Salesforce table: one change set of updates, creates
    /// and deletes.
    pub async fn merge(
        &self,
        merge: &Merge,
        opts: DmlOptions,
        origin: &Origin,
        sql: &str,
    ) -> Result<DmlResult, DmlError> {
        let plan = self.plan_merge(merge).await?;
        let conn = &self.connections[&plan.connection];
        writable(conn, &plan.connection, &opts)?;
        let set =
            dml::build_merge_set(&self.ctx, &plan, opts.on_multiple_matches, opts.dry_run).await?;
        let refused = refusals(&set, &plan.table, &opts);
        self.write(conn, (set, refused), &opts, vec![], (origin, sql))
            .await
    }

    /// Guardrails, then the dry run's prediction or the write itself, its
    /// records stored in the run log of `by` (origin, statement) as they go.
    /// `refused`: the values a dry run found Salesforce would refuse.
    async fn write(
        &self,
        conn: &Connection,
        (set, refused): (ChangeSet, Vec<dml::Refusal>),
        opts: &DmlOptions,
        returning: Vec<String>,
        by: (&Origin, &str),
    ) -> Result<DmlResult, DmlError> {
        opts.check(&set)?;
        let log = match self.recorder() {
            Some(recorder) => {
                let target = WriteTarget {
                    connection: set.connection.clone(),
                    sobject: set.sobject.clone(),
                    action: set.op.as_str(),
                    dry_run: opts.dry_run,
                    started: chrono::Utc::now(),
                };
                Some(
                    recorder
                        .begin_write(by.0, by.1, &target)
                        .map_err(DmlError::RunLog)?,
                )
            }
            None => None,
        };
        let steps = dml::write_plan(&set, opts.bulk_threshold);
        let method = if steps.is_empty() {
            "make no call (nothing changes)".to_string()
        } else {
            steps
                .iter()
                .map(dml::WriteStep::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let summary = if opts.dry_run {
            let summary = dml::dry_run_summary(&set, &refused);
            if let Some(log) = &log {
                for batch in summary.outcomes.chunks(dml::SINK_BATCH) {
                    log.not_sent(batch);
                }
            }
            summary
        } else {
            let mut write_opts = opts.write_options();
            // The run log stores every outcome as it comes; the summary
            // keeps them only for RETURNING, or when no log stores them.
            write_opts.keep_outcomes = !returning.is_empty() || log.is_none();
            write_opts.sink = super::progress::wrap(
                log.clone().map(|l| l as Arc<dyn dml::WriteSink>),
                set.changed().count(),
            );
            dml::apply(conn.schema.client(), &set, &write_opts).await
        };
        Ok(DmlResult {
            set,
            refused,
            dry_run: opts.dry_run,
            summary,
            returning,
            method,
            log,
        })
    }
}

/// Under a dry run, every value of `set` Salesforce would refuse.
fn refusals(set: &ChangeSet, table: &SObjectTable, opts: &DmlOptions) -> Vec<dml::Refusal> {
    if opts.dry_run {
        dml::refusals(set, table.describe())
    } else {
        vec![]
    }
}

/// A read-only connection refuses writes; its dry runs still work.
fn writable(conn: &Connection, name: &str, opts: &DmlOptions) -> Result<(), DmlError> {
    if conn.read_only && !opts.dry_run {
        return Err(DmlError::ReadOnly(name.to_string()));
    }
    Ok(())
}
