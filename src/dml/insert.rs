//! `INSERT INTO <connection>.<sobject> (columns) VALUES ... | SELECT ...
//! [RETURNING ...]`: the source rows are computed by DataFusion, cast to
//! the fields' types, validated against describe, and created through
//! sObject Collections, 200 a call. Created Ids come back with RETURNING so
//! they can be written back to the source.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Insert, ObjectName, ObjectNamePart, SelectItem};
use serde_json::{Map, Value};

use super::DmlError;
use super::changeset::{ChangeSet, NewValues, RecordChange, WriteOp};
use super::upsert::{Conflict, plan_conflict};
use super::validate::{check_create_value, required_on_create};
use crate::provider::SObjectTable;
use crate::salesforce::FieldDescribe;

#[derive(Debug, Clone)]
pub struct InsertPlan {
    pub connection: String,
    pub table: Arc<SObjectTable>,
    /// Target fields, in the order of the column list.
    pub fields: Vec<FieldDescribe>,
    pub source_sql: String,
    /// RETURNING items: `id` or a column of the list, lower case.
    pub returning: Vec<String>,
    /// `ON CONFLICT (external_id) ...`: an upsert by external ID.
    pub conflict: Option<Conflict>,
}

impl InsertPlan {
    pub fn sobject(&self) -> &str {
        &self.table.describe().name
    }
}

pub fn plan_insert(
    insert: &Insert,
    connection: &str,
    table: Arc<SObjectTable>,
) -> Result<InsertPlan, DmlError> {
    let describe = Arc::clone(table.describe());
    let sobject = describe.name.clone();
    if insert.columns.is_empty() {
        return Err(DmlError::Unsupported(format!(
            "name the columns: INSERT INTO {connection}.{} (field, ...) ...",
            sobject.to_ascii_lowercase()
        )));
    }
    let fields = insert_fields(&table, &insert.columns)?;
    let source_sql = insert
        .source
        .as_ref()
        .map(|q| q.to_string())
        .ok_or_else(|| DmlError::Unsupported("INSERT needs VALUES or a SELECT".into()))?;
    let mut returning = Vec::new();
    for item in insert.returning.iter().flatten() {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => {
                let name = i.value.to_ascii_lowercase();
                if name != "id" && !fields.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
                    return Err(DmlError::Unsupported(format!(
                        "RETURNING {name}: only id and the inserted columns can be returned"
                    )));
                }
                returning.push(name);
            }
            SelectItem::Wildcard(_) => {
                returning.push("id".into());
                returning.extend(fields.iter().map(|f| f.name.to_ascii_lowercase()));
            }
            other => {
                return Err(DmlError::Unsupported(format!(
                    "RETURNING {other}: only plain column names (id and the inserted columns) are supported"
                )));
            }
        }
    }
    let conflict = plan_conflict(insert, &describe, &fields)?;
    Ok(InsertPlan {
        connection: connection.to_string(),
        table,
        fields,
        source_sql,
        returning,
        conflict,
    })
}

/// Check an INSERT's column list against the target: each column exists,
/// is createable and listed once, and every field required on create is
/// there.
pub fn insert_fields(
    table: &SObjectTable,
    columns: &[ObjectName],
) -> Result<Vec<FieldDescribe>, DmlError> {
    let describe = Arc::clone(table.describe());
    let sobject = describe.name.clone();
    let mut fields = Vec::new();
    for c in columns {
        let column =
            c.0.last()
                .map(|p| match p {
                    ObjectNamePart::Identifier(i) => i.value.to_ascii_lowercase(),
                    other => other.to_string().to_ascii_lowercase(),
                })
                .unwrap_or_default();
        let field = table
            .field_info(&column)
            .and_then(|f| describe.field(&f.api_name).cloned())
            .ok_or_else(|| DmlError::UnknownColumn {
                table: sobject.to_ascii_lowercase(),
                column: column.clone(),
            })?;
        if !field.createable {
            return Err(DmlError::NotCreateable {
                sobject: sobject.clone(),
                column,
            });
        }
        if fields.iter().any(|f: &FieldDescribe| f.name == field.name) {
            return Err(DmlError::Unsupported(format!(
                "column \"{column}\" is listed more than once"
            )));
        }
        fields.push(field);
    }
    let missing: Vec<String> = required_on_create(&describe)
        .filter(|req| !fields.iter().any(|f| f.name == req.name))
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    if !missing.is_empty() {
        return Err(DmlError::Required(format!(
            "{sobject} requires {} on create; add {} to the column list",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(fields)
}

/// Run the source and turn its rows into records, checking each value
/// unless `dry_run` (which shows every refused value instead).
pub async fn build_records(
    ctx: &SessionContext,
    plan: &InsertPlan,
    dry_run: bool,
) -> Result<Vec<Map<String, Value>>, DmlError> {
    let batches = ctx.sql(&plan.source_sql).await?.collect().await?;
    let types = plan.table.schema_of_columns(
        &plan
            .fields
            .iter()
            .map(|f| f.name.to_ascii_lowercase())
            .collect::<Vec<_>>(),
    );
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for batch in &batches {
        if batch.num_columns() != plan.fields.len() {
            return Err(DmlError::Unsupported(format!(
                "INSERT has {} target columns but the source returns {} columns",
                plan.fields.len(),
                batch.num_columns()
            )));
        }
        let mut columns = Vec::new();
        for (i, f) in plan.fields.iter().enumerate() {
            columns.push(NewValues::cast(batch.column(i), &types[i], dry_run, |e| {
                format!(
                    "the value for {} cannot become a Salesforce {}: {e}; cast or clean it in the SELECT",
                    f.name.to_ascii_lowercase(),
                    f.field_type
                )
            })?);
        }
        for row in 0..batch.num_rows() {
            let mut m = Map::new();
            for (f, col) in plan.fields.iter().zip(&columns) {
                let v = col.value(row)?;
                if !dry_run
                    && problems.len() < 5
                    && let Some(p) = check_create_value(f, &v)
                {
                    problems.push(format!("row {}: {p}", records.len() + 1));
                }
                m.insert(f.name.clone(), v);
            }
            records.push(m);
        }
    }
    if !problems.is_empty() {
        return Err(DmlError::Invalid(format!(
            "nothing was sent: {}",
            problems.join("; ")
        )));
    }
    Ok(records)
}

/// The change set of a plain INSERT: every record is created, with all
/// its fields.
pub fn create_set(plan: &InsertPlan, records: Vec<Map<String, Value>>) -> ChangeSet {
    ChangeSet {
        connection: plan.connection.clone(),
        sobject: plan.sobject().to_string(),
        op: WriteOp::Create,
        records: records
            .into_iter()
            .map(|r| RecordChange::create(None, r))
            .collect(),
        keys: None,
    }
}
