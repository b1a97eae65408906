//! `DELETE FROM <connection>.<sobject> [USING ...] WHERE ...`: the Ids to
//! delete come from an ordinary SELECT that DataFusion plans (the WHERE is
//! pushed into SOQL), then go to the one write path as `delete` records.
//! A WHERE is required: deleting a whole object is never one keystroke away.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Delete, FromTable, TableFactor};

use super::DmlError;
use super::changeset::{Action, ChangeSet, RecordChange, WriteOp};
use super::update::{quote_ident, table_ref};
use crate::provider::SObjectTable;

#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub connection: String,
    pub table: Arc<SObjectTable>,
    /// The name the statement uses for the target (alias or table name).
    pub target_ref: String,
    pub using_sql: Vec<String>,
    pub selection_sql: String,
}

impl DeletePlan {
    pub fn sobject(&self) -> &str {
        &self.table.describe().name
    }

    /// The query that finds the Ids to delete.
    pub fn ids_sql(&self) -> String {
        let mut from = vec![format!(
            "{}.{} AS {}",
            quote_ident(&self.connection),
            quote_ident(&self.sobject().to_ascii_lowercase()),
            quote_ident(&self.target_ref)
        )];
        from.extend(self.using_sql.iter().cloned());
        format!(
            "SELECT DISTINCT {}.id AS __sfsql_id FROM {} WHERE {}",
            quote_ident(&self.target_ref),
            from.join(", "),
            self.selection_sql
        )
    }
}

/// The target of a DELETE as (schema, table, alias), lower case.
pub fn delete_target(
    delete: &Delete,
) -> Result<(Option<String>, String, Option<String>), DmlError> {
    let tables = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [only] = tables.as_slice() else {
        return Err(DmlError::Unsupported(
            "DELETE from several tables is not supported; delete from one table, with USING for the others".into(),
        ));
    };
    let TableFactor::Table { name, alias, .. } = &only.relation else {
        return Err(DmlError::Unsupported(
            "DELETE target must be a table".into(),
        ));
    };
    if !only.joins.is_empty() {
        return Err(DmlError::Unsupported(
            "DELETE ... JOIN is not supported; put the other tables in USING".into(),
        ));
    }
    let (schema, table) =
        table_ref(name).ok_or_else(|| DmlError::UnknownTable(name.to_string()))?;
    Ok((
        schema,
        table,
        alias.as_ref().map(|a| a.name.value.to_ascii_lowercase()),
    ))
}

pub fn plan_delete(
    delete: &Delete,
    connection: &str,
    table: Arc<SObjectTable>,
) -> Result<DeletePlan, DmlError> {
    let (_, table_name, alias) = delete_target(delete)?;
    let sobject = table.describe().name.to_ascii_lowercase();
    let Some(selection) = &delete.selection else {
        return Err(DmlError::WhereRequired(format!(
            "DELETE FROM {connection}.{sobject} needs a WHERE clause; sfsql never deletes a whole object by accident. Add WHERE ... naming the records (WHERE true if you really mean all of them)"
        )));
    };
    if delete.returning.is_some() || delete.limit.is_some() || !delete.order_by.is_empty() {
        return Err(DmlError::Unsupported(
            "DELETE ... RETURNING/ORDER BY/LIMIT is not supported on Salesforce tables; filter with WHERE".into(),
        ));
    }
    if !delete.tables.is_empty() {
        return Err(DmlError::Unsupported(
            "multi-table DELETE is not supported".into(),
        ));
    }
    Ok(DeletePlan {
        connection: connection.to_string(),
        table,
        target_ref: alias.unwrap_or(table_name),
        using_sql: delete
            .using
            .iter()
            .flatten()
            .map(|t| t.to_string())
            .collect(),
        selection_sql: selection.to_string(),
    })
}

/// Run the Id query: one `delete` record per distinct Id.
pub async fn build_delete_set(
    ctx: &SessionContext,
    plan: &DeletePlan,
) -> Result<ChangeSet, DmlError> {
    let batches = ctx.sql(&plan.ids_sql()).await?.collect().await?;
    let mut seen = HashSet::new();
    let mut records = Vec::new();
    for batch in &batches {
        let ids = cast_with_options(batch.column(0), &DataType::Utf8, &CastOptions::default())
            .map_err(datafusion::error::DataFusionError::from)?;
        for id in ids.as_string::<i32>().iter().flatten() {
            if seen.insert(id.to_string()) {
                records.push(RecordChange {
                    action: Action::Delete,
                    id: Some(id.to_string()),
                    match_key: None,
                    changes: vec![],
                });
            }
        }
    }
    Ok(ChangeSet {
        connection: plan.connection.clone(),
        sobject: plan.sobject().to_string(),
        op: WriteOp::Delete,
        records,
        keys: None,
    })
}
