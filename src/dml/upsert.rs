//! `INSERT ... ON CONFLICT (external_id_field) DO UPDATE SET col =
//! EXCLUDED.col` as Salesforce's upsert by external ID. The current values
//! are read by external ID first, so each row becomes `create`, `update`
//! (only the fields that differ) or `unchanged` before anything is sent;
//! the write itself is the Collections upsert, so a rerun can never create
//! a record twice.

use std::collections::HashMap;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, ConflictTarget, Expr, Insert, OnConflictAction, OnInsert,
};
use serde_json::{Map, Value};

use super::DmlError;
use super::changeset::{
    Action, ChangeSet, FieldChange, RecordChange, WriteOp, key_literals, to_json,
};
use super::insert::InsertPlan;
use super::update::quote_ident;
use crate::salesforce::{FieldDescribe, SObjectDescribe};

/// The ON CONFLICT clause of an upsert.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The external ID field (API name); one of the inserted columns.
    pub external_id: String,
    /// Inserted fields (API names) written when the record exists; empty
    /// for `DO NOTHING`.
    pub update_fields: Vec<String>,
}

/// Check the ON CONFLICT clause against describe: the target must be one
/// external ID field that the INSERT supplies; `DO UPDATE SET` may only
/// assign `EXCLUDED.<inserted column>`.
pub fn plan_conflict(
    insert: &Insert,
    describe: &SObjectDescribe,
    fields: &[FieldDescribe],
) -> Result<Option<Conflict>, DmlError> {
    let Some(on) = &insert.on else {
        return Ok(None);
    };
    let sobject = &describe.name;
    let external: Vec<String> = describe
        .fields
        .iter()
        .filter(|f| f.external_id)
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    let hint = if external.is_empty() {
        format!(
            "{sobject} has no external ID field; ask an admin for one, or use INSERT and UPDATE"
        )
    } else {
        format!("{sobject}'s external ID fields: {}", external.join(", "))
    };
    let OnInsert::OnConflict(c) = on else {
        return Err(DmlError::Unsupported(
            "ON DUPLICATE KEY UPDATE is MySQL's; write ON CONFLICT (external_id_field) DO UPDATE SET ..."
                .into(),
        ));
    };
    let column = match &c.conflict_target {
        Some(ConflictTarget::Columns(cols)) if cols.len() == 1 => {
            cols[0].value.to_ascii_lowercase()
        }
        _ => {
            return Err(DmlError::NoConflictTarget(format!(
                "ON CONFLICT needs exactly one column, an external ID field: ON CONFLICT (field); {hint}"
            )));
        }
    };
    let field = describe
        .field(&column)
        .filter(|f| f.external_id)
        .ok_or_else(|| {
            DmlError::NoConflictTarget(format!(
                "ON CONFLICT ({column}): {column} is not an external ID field of {sobject}, so Salesforce cannot upsert by it; {hint}"
            ))
        })?;
    if !fields.iter().any(|f| f.name == field.name) {
        return Err(DmlError::NoConflictTarget(format!(
            "ON CONFLICT ({column}): add {column} to the INSERT's column list; every row needs its key"
        )));
    }
    let mut update_fields = Vec::new();
    if let OnConflictAction::DoUpdate(u) = &c.action {
        if u.selection.is_some() {
            return Err(DmlError::Unsupported(
                "ON CONFLICT ... DO UPDATE ... WHERE is not supported; filter the INSERT's SELECT instead".into(),
            ));
        }
        for a in &u.assignments {
            let AssignmentTarget::ColumnName(name) = &a.target else {
                return Err(DmlError::Unsupported(
                    "DO UPDATE SET (a, b) = ... is not supported; assign each column".into(),
                ));
            };
            let target = name.to_string().to_ascii_lowercase();
            let from_excluded = match &a.value {
                Expr::CompoundIdentifier(parts)
                    if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case("excluded") =>
                {
                    parts[1].value.to_ascii_lowercase()
                }
                other => {
                    return Err(DmlError::Unsupported(format!(
                        "DO UPDATE SET {target} = {other}: only EXCLUDED.{target} is supported; compute the value in the INSERT's SELECT"
                    )));
                }
            };
            if from_excluded != target {
                return Err(DmlError::Unsupported(format!(
                    "DO UPDATE SET {target} = EXCLUDED.{from_excluded}: a field can only take its own inserted value"
                )));
            }
            let f = fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(&target))
                .ok_or_else(|| {
                    DmlError::Unsupported(format!(
                        "DO UPDATE SET {target}: {target} is not in the INSERT's column list"
                    ))
                })?;
            if !f.updateable {
                return Err(DmlError::NotUpdateable {
                    sobject: sobject.clone(),
                    column: target,
                });
            }
            if f.name == field.name {
                return Err(DmlError::Unsupported(format!(
                    "DO UPDATE SET {target}: the external ID is the match key and is not updated"
                )));
            }
            update_fields.push(f.name.clone());
        }
    }
    Ok(Some(Conflict {
        external_id: field.name.clone(),
        update_fields,
    }))
}

/// Salesforce matches text external IDs without regard to case.
fn match_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.to_lowercase()),
        other => Some(other.to_string()),
    }
}

/// Turn the source records into the upsert's change set: read the current
/// values by external ID, then create, update (changed fields only) or
/// leave each record. A row without its external ID stops the statement,
/// or, in a dry run, is listed as a create that Salesforce would refuse
/// (validate::refusals).
pub async fn build_upsert_set(
    ctx: &SessionContext,
    plan: &InsertPlan,
    conflict: &Conflict,
    records: Vec<Map<String, Value>>,
    dry_run: bool,
) -> Result<ChangeSet, DmlError> {
    let ext = &conflict.external_id;
    // One row per key: identical duplicates collapse, differing ones stop
    // the statement (DESIGN.md decision 4).
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut rows: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut keyless = Vec::new();
    let mut conflicts = Vec::new();
    for (n, r) in records.into_iter().enumerate() {
        let Some(key) = r.get(ext).and_then(match_key) else {
            if dry_run {
                keyless.push(RecordChange::create(None, r));
                continue;
            }
            return Err(DmlError::Invalid(format!(
                "row {}: {} is NULL; an upsert needs the external ID in every row (filter NULLs in the SELECT); nothing was sent",
                n + 1,
                ext.to_ascii_lowercase()
            )));
        };
        match by_key.get(&key) {
            Some(&i) if rows[i].1 != r => {
                if conflicts.len() < 5 {
                    conflicts.push(key.clone());
                }
            }
            Some(_) => {}
            None => {
                by_key.insert(key.clone(), rows.len());
                rows.push((key, r));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(DmlError::Ambiguous(format!(
            "several source rows with different values share the external ID {}: {}; make the source return one row per key; nothing was sent",
            ext.to_ascii_lowercase(),
            conflicts.join(", ")
        )));
    }
    let current = lookup(ctx, plan, conflict, &rows).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, r) in rows {
        let display_key = r.get(ext).and_then(super::display_value);
        let change = match current.get(&key) {
            None => RecordChange::create(display_key, r),
            Some(existing) => {
                let changes: Vec<FieldChange> = conflict
                    .update_fields
                    .iter()
                    .filter_map(|f| {
                        let new = r.get(f).cloned().unwrap_or(Value::Null);
                        let old = existing.values.get(f).cloned().unwrap_or(Value::Null);
                        (new != old).then(|| FieldChange {
                            field: f.as_str().into(),
                            old,
                            new,
                        })
                    })
                    .collect();
                let mut change =
                    RecordChange::update(existing.id.clone(), display_key.clone(), changes);
                if change.action == Action::Update {
                    // The upsert finds the record by its key, which is sent
                    // but never changes.
                    let key_value = r.get(ext).cloned().unwrap_or(Value::Null);
                    change.changes.insert(
                        0,
                        FieldChange {
                            field: ext.as_str().into(),
                            old: key_value.clone(),
                            new: key_value,
                        },
                    );
                }
                change
            }
        };
        out.push(change);
    }
    out.extend(keyless);
    Ok(ChangeSet {
        connection: plan.connection.clone(),
        sobject: plan.sobject().to_string(),
        op: WriteOp::Upsert {
            external_id: ext.clone(),
        },
        records: out,
        keys: Some(by_key.len()),
    })
}

struct Existing {
    id: String,
    values: Map<String, Value>,
}

/// The records that already hold one of the keys, by lower-case key. A key
/// held by several records is an error: Salesforce would refuse to upsert
/// it (DUPLICATE_EXTERNAL_ID).
async fn lookup(
    ctx: &SessionContext,
    plan: &InsertPlan,
    conflict: &Conflict,
    rows: &[(String, Map<String, Value>)],
) -> Result<HashMap<String, Existing>, DmlError> {
    let ext_col = conflict.external_id.to_ascii_lowercase();
    let cols: Vec<String> = conflict
        .update_fields
        .iter()
        .map(|f| f.to_ascii_lowercase())
        .collect();
    let mut select = vec!["id".to_string(), quote_ident(&ext_col)];
    select.extend(cols.iter().map(|c| quote_ident(c)));
    let text_key = plan
        .table
        .describe()
        .field(&conflict.external_id)
        .is_some_and(|f| crate::soql::is_text_type(&f.field_type));
    let mut found: HashMap<String, Existing> = HashMap::new();
    let mut duplicates = Vec::new();
    // One statement of every key: the provider splits its IN list into
    // statements that fit SOQL and sends them as composite requests (five
    // statements of up to 1,800 keys a call).
    // Text keys compare case-insensitively (lower() on both sides,
    // which SOQL answers by key as it compares text without case).
    let (keys, target): (Vec<Value>, String) = if text_key {
        (
            rows.iter().map(|(k, _)| Value::String(k.clone())).collect(),
            format!("lower({})", quote_ident(&ext_col)),
        )
    } else {
        (
            rows.iter()
                .filter_map(|(_, r)| r.get(&conflict.external_id).cloned())
                .collect(),
            quote_ident(&ext_col),
        )
    };
    let literals = literal_list(&keys)?;
    if literals.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {target} IN ({})",
        select.join(", "),
        quote_ident(&plan.connection),
        quote_ident(&plan.sobject().to_ascii_lowercase()),
        literals.join(", ")
    );
    for batch in ctx.sql(&sql).await?.collect().await? {
        for row in 0..batch.num_rows() {
            let Some(id) = super::display_value(&to_json(batch.column(0), row)?) else {
                continue;
            };
            let Some(key) = match_key(&to_json(batch.column(1), row)?) else {
                continue;
            };
            let mut values = Map::new();
            for (i, f) in conflict.update_fields.iter().enumerate() {
                values.insert(f.clone(), to_json(batch.column(2 + i), row)?);
            }
            if let Some(prev) = found.insert(key.clone(), Existing { id, values })
                && duplicates.len() < 5
            {
                duplicates.push(format!("'{key}' ({} and others)", prev.id));
            }
        }
    }
    if !duplicates.is_empty() {
        return Err(DmlError::Ambiguous(format!(
            "external ID values held by several {} records: {}; Salesforce cannot upsert them (DUPLICATE_EXTERNAL_ID); clean up the duplicates first; nothing was sent",
            plan.sobject(),
            duplicates.join("; ")
        )));
    }
    Ok(found)
}

/// Key values as SQL literals for the lookup's IN list.
fn literal_list(keys: &[Value]) -> Result<Vec<String>, DmlError> {
    let strings: Vec<Option<String>> = keys.iter().map(super::display_value).collect();
    let array = datafusion::arrow::array::StringArray::from(strings);
    let batch = datafusion::arrow::array::RecordBatch::try_from_iter([(
        "k",
        std::sync::Arc::new(array) as datafusion::arrow::array::ArrayRef,
    )])
    .map_err(datafusion::error::DataFusionError::from)?;
    Ok(key_literals(&[batch])?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use serde_json::json;

    fn task() -> SObjectDescribe {
        serde_json::from_value(json!({"name":"Task","fields":[
            {"name":"Id","type":"id"},
            {"name":"Subject","type":"combobox","createable":true,"updateable":true,"nillable":true},
            {"name":"External_Activity_Id__c","type":"string","externalId":true,
             "createable":true,"updateable":true,"nillable":true}]}))
        .unwrap()
    }

    fn conflict(sql: &str) -> Result<Option<Conflict>, DmlError> {
        let Statement::Insert(insert) = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        else {
            panic!("not an insert")
        };
        let d = task();
        let fields: Vec<FieldDescribe> = d.fields[1..].to_vec();
        plan_conflict(&insert, &d, &fields)
    }

    #[test]
    fn the_conflict_target_must_be_an_external_id() {
        let c = conflict(
            "INSERT INTO s.task (subject, external_activity_id__c) VALUES ('a', 'k') \
             ON CONFLICT (external_activity_id__c) DO UPDATE SET subject = EXCLUDED.subject",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.external_id, "External_Activity_Id__c");
        assert_eq!(c.update_fields, vec!["Subject".to_string()]);
        let e = conflict(
            "INSERT INTO s.task (subject, external_activity_id__c) VALUES ('a', 'k') \
             ON CONFLICT (subject) DO NOTHING",
        )
        .unwrap_err();
        assert_eq!(e.sqlstate(), "42P10");
        assert!(e.to_string().contains("external_activity_id__c"), "{e}");
        let e = conflict(
            "INSERT INTO s.task (subject, external_activity_id__c) VALUES ('a', 'k') \
             ON CONFLICT (external_activity_id__c) DO UPDATE SET subject = 'x'",
        )
        .unwrap_err();
        assert!(e.to_string().contains("EXCLUDED.subject"), "{e}");
        assert_eq!(match_key(&json!("AbC")), Some("abc".into()));
        assert_eq!(match_key(&Value::Null), None);
    }
}
