//! EXPLAIN of a DML statement (UPDATE, INSERT, upsert, DELETE, MERGE):
//! the reads sfsql runs and the SOQL each sends, the change set, how it
//! would be written (Collections or Bulk, batches, estimated API calls)
//! and what the org has left of its daily API requests. Planning reads;
//! it never writes.

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::sql::sqlparser::ast::Statement;

use super::engine::Engine;
use super::output::text_batch;
use super::router::StatementError;
use crate::dml::{self, ChangeSet, DmlError, DmlOptions};

type Rows = Vec<Vec<Option<String>>>;

fn row(kind: &str, text: impl Into<String>) -> Vec<Option<String>> {
    vec![Some(kind.to_string()), Some(text.into())]
}

impl Engine {
    /// The EXPLAIN rows (plan_type, plan) of a DML statement.
    pub(super) async fn explain_dml(
        &self,
        statement: &Statement,
        opts: &DmlOptions,
    ) -> Result<RecordBatch, StatementError> {
        let mut rows: Rows = Vec::new();
        let (set, read_sql) = self.explain_reads(statement, opts, &mut rows).await?;
        let counts: Vec<String> = [
            dml::Action::Create,
            dml::Action::Update,
            dml::Action::Delete,
            dml::Action::Unchanged,
        ]
        .iter()
        .map(|a| (a, set.records.iter().filter(|r| r.action == *a).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(a, n)| format!("{n} {}", a.as_str()))
        .collect();
        rows.push(row(
            "sfsql: change set",
            format!(
                "{} {} records matched: {}; only changed fields are sent",
                set.records.len(),
                set.sobject,
                if counts.is_empty() {
                    "nothing to do".to_string()
                } else {
                    counts.join(", ")
                }
            ),
        ));
        let steps = dml::write_plan(&set, opts.bulk_threshold);
        let relation = if steps.iter().any(|s| s.method == dml::WriteMethod::Bulk) {
            "above"
        } else {
            "within"
        };
        for step in &steps {
            rows.push(row(
                "sfsql: write",
                format!(
                    "{} ({relation} sfsql.bulk_threshold ({}))",
                    step.describe(),
                    opts.bulk_threshold
                ),
            ));
        }
        let calls: usize = steps.iter().map(|s| s.calls).sum();
        let changed = set.changed().count();
        let mut estimate = format!("{calls} write call(s) for {changed} changed records");
        if changed > opts.max_rows {
            estimate.push_str(&format!(
                "; refused as it stands: more than sfsql.max_rows ({})",
                opts.max_rows
            ));
        }
        rows.push(row("sfsql: estimated API calls", estimate));
        rows.push(row(
            "sfsql: daily API requests",
            self.remaining(&set, calls).await,
        ));
        // DataFusion's own plan of the main read, so each scan shows the
        // SOQL that is sent.
        let explained = self
            .ctx
            .sql(&format!("EXPLAIN {read_sql}"))
            .await?
            .collect()
            .await?;
        for b in &explained {
            let types = b.column(0).as_any().downcast_ref::<StringArray>();
            let plans = b.column(1).as_any().downcast_ref::<StringArray>();
            if let (Some(t), Some(p)) = (types, plans) {
                for i in 0..b.num_rows() {
                    rows.push(row(t.value(i), p.value(i)));
                }
            }
        }
        Ok(text_batch(&["plan_type", "plan"], rows)?)
    }

    /// `GET /limits` of the target's org, against what the statement needs.
    async fn remaining(&self, set: &ChangeSet, calls: usize) -> String {
        let Some(conn) = self.connections.get(&set.connection) else {
            return "unknown".into();
        };
        match conn.schema.client().daily_api_requests().await {
            Ok(u) => {
                let left = u.max.saturating_sub(u.used);
                let warn = if calls as u64 > left {
                    "; NOT ENOUGH for this statement"
                } else {
                    ""
                };
                format!(
                    "{left} of {} remaining in {} (GET /limits); this statement would use about {calls}{warn}",
                    u.max, set.connection
                )
            }
            Err(e) => format!("unknown: GET /limits failed: {e}"),
        }
    }

    /// Plan the statement, describe its reads into `rows`, and build its
    /// change set (reads only). Returns the set and the SQL of the main
    /// read, whose DataFusion plan shows the SOQL.
    async fn explain_reads(
        &self,
        statement: &Statement,
        opts: &DmlOptions,
        rows: &mut Rows,
    ) -> Result<(ChangeSet, String), DmlError> {
        match statement {
            Statement::Update(update) => {
                let plan = self.plan_update(update, opts).await?;
                let mut key_filter = None;
                if let (Some(keys_sql), Some(k)) = (plan.keys_sql(), &plan.key) {
                    rows.push(row("sfsql: source keys", keys_sql.clone()));
                    let batches = self.ctx.sql(&keys_sql).await?.collect().await?;
                    if let Some(literals) = dml::key_literal_list(&batches)? {
                        rows.push(row(
                            "sfsql: key lookup",
                            format!(
                                "{} IN (<{} distinct keys>): {} is fetched by key, not scanned",
                                k.target_sql,
                                literals.len(),
                                plan.sobject()
                            ),
                        ));
                        if !literals.is_empty() {
                            key_filter =
                                Some(format!("{} IN ({})", k.target_sql, literals.join(", ")));
                        }
                    }
                }
                rows.push(row("sfsql: change-set query", plan.change_set_sql(None)));
                let set = dml::build_change_set(&self.ctx, &plan, opts).await?;
                Ok((set, plan.change_set_sql(key_filter.as_deref())))
            }
            Statement::Insert(insert) => {
                let plan = self.plan_insert(insert).await?;
                rows.push(row("sfsql: source", plan.source_sql.clone()));
                let records = dml::build_records(&self.ctx, &plan, opts.dry_run).await?;
                let set = match &plan.conflict {
                    Some(conflict) => {
                        rows.push(row(
                            "sfsql: key lookup",
                            format!(
                                "SELECT id, ... FROM {}.{} WHERE {} IN (<{} keys>), 1000 keys per statement: current values by external ID",
                                plan.connection,
                                plan.sobject().to_ascii_lowercase(),
                                conflict.external_id.to_ascii_lowercase(),
                                records.len()
                            ),
                        ));
                        dml::build_upsert_set(&self.ctx, &plan, conflict, records, opts.dry_run)
                            .await?
                    }
                    None => dml::create_set(&plan, records),
                };
                Ok((set, plan.source_sql.clone()))
            }
            Statement::Delete(delete) => {
                let plan = self.plan_delete(delete).await?;
                rows.push(row("sfsql: ids to delete", plan.ids_sql()));
                let set = dml::build_delete_set(&self.ctx, &plan).await?;
                Ok((set, plan.ids_sql()))
            }
            Statement::Merge(merge) => {
                let plan = self.plan_merge(merge).await?;
                let sql = plan.change_set_sql();
                rows.push(row("sfsql: change-set query", sql.clone()));
                if let Some(k) = &plan.key {
                    rows.push(row(
                        "sfsql: key lookup",
                        format!(
                            "{} = {}: {} is fetched by the source's keys, not scanned",
                            k.target_sql,
                            k.source_sql,
                            plan.sobject()
                        ),
                    ));
                }
                let set =
                    dml::build_merge_set(&self.ctx, &plan, opts.on_multiple_matches, opts.dry_run)
                        .await?;
                Ok((set, sql))
            }
            other => Err(DmlError::Unsupported(format!(
                "EXPLAIN of {other} is not sfsql's"
            ))),
        }
    }
}
