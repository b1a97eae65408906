//! `MERGE INTO <connection>.<sobject> t USING <source> s ON ... WHEN
//! [NOT] MATCHED [AND ...] THEN UPDATE SET ... | INSERT (...) VALUES (...)
//! | DELETE`, planned as one query: the source LEFT JOIN the target (fetched
//! by key), whose rows pick each record's action. [`super::merge_set`] turns
//! them into one change set with mixed actions.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    Merge, MergeAction, MergeClauseKind, MergeInsertKind, TableFactor,
};

use super::DmlError;
use super::insert::insert_fields;
use super::update::{Assignment, KeyMatch, find_key, plan_assignments, quote_ident, table_ref};
use crate::provider::SObjectTable;
use crate::salesforce::FieldDescribe;

/// What a WHEN clause does.
#[derive(Debug, Clone)]
pub enum ClauseAction {
    Update(Vec<Assignment>),
    Delete,
    /// Create a record with these fields, valued by these expressions.
    Insert {
        fields: Vec<FieldDescribe>,
        values: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct WhenClause {
    /// `WHEN MATCHED` (true) or `WHEN NOT MATCHED`.
    pub matched: bool,
    /// The `AND ...` condition, as SQL.
    pub predicate: Option<String>,
    pub action: ClauseAction,
}

#[derive(Debug, Clone)]
pub struct MergePlan {
    pub connection: String,
    pub table: Arc<SObjectTable>,
    /// The name the statement uses for the target.
    pub target_ref: String,
    /// The source as written (`reports.nps AS r`, `(SELECT ...) AS s`).
    pub source_sql: String,
    /// The source's name in the statement.
    pub source_ref: String,
    pub on_sql: String,
    /// The equality of the ON clause that keys the lookup, if any.
    pub key: Option<KeyMatch>,
    pub clauses: Vec<WhenClause>,
}

/// Column positions of the change-set query, per clause.
pub const FIXED_COLUMNS: usize = 4;

impl MergePlan {
    pub fn sobject(&self) -> &str {
        &self.table.describe().name
    }

    /// The change-set query: per source row (numbered), the matched target
    /// Id, the match key, LastModifiedDate, whether each clause applies,
    /// then each clause's values (for updates: new, old per assignment).
    pub fn change_set_sql(&self) -> String {
        let t = quote_ident(&self.target_ref);
        let mut select = vec![
            format!("{t}.id AS __sfsql_id"),
            match &self.key {
                Some(k) => format!("CAST({} AS VARCHAR) AS __sfsql_key", k.source_sql),
                None => "CAST(NULL AS VARCHAR) AS __sfsql_key".into(),
            },
            "__sfsql_src".into(),
            format!("{t}.lastmodifieddate AS __sfsql_modified"),
        ];
        for (i, c) in self.clauses.iter().enumerate() {
            select.push(format!(
                "({}) AS __sfsql_when_{i}",
                c.predicate.as_deref().unwrap_or("TRUE")
            ));
        }
        for (i, c) in self.clauses.iter().enumerate() {
            match &c.action {
                ClauseAction::Update(assignments) => {
                    for (j, a) in assignments.iter().enumerate() {
                        select.push(format!("({}) AS __sfsql_new_{i}_{j}", a.value_sql));
                        select.push(format!(
                            "{t}.{} AS __sfsql_old_{i}_{j}",
                            quote_ident(&a.column)
                        ));
                    }
                }
                ClauseAction::Insert { values, .. } => {
                    for (j, v) in values.iter().enumerate() {
                        select.push(format!("({v}) AS __sfsql_ins_{i}_{j}"));
                    }
                }
                ClauseAction::Delete => {}
            }
        }
        format!(
            "SELECT {} FROM (SELECT {src}.*, row_number() OVER () AS __sfsql_src FROM {}) AS {src} \
             LEFT JOIN {}.{} AS {t} ON {}",
            select.join(", "),
            self.source_sql,
            quote_ident(&self.connection),
            quote_ident(&self.sobject().to_ascii_lowercase()),
            self.on_sql,
            src = self.source_ref,
        )
    }

    /// Number of data columns of clause `i` (after the fixed and `when`
    /// columns).
    pub fn width(&self, i: usize) -> usize {
        match &self.clauses[i].action {
            ClauseAction::Update(a) => 2 * a.len(),
            ClauseAction::Insert { values, .. } => values.len(),
            ClauseAction::Delete => 0,
        }
    }
}

/// The target's (schema, table, alias) of a MERGE.
pub fn merge_target(merge: &Merge) -> Result<(Option<String>, String, Option<String>), DmlError> {
    let TableFactor::Table { name, alias, .. } = &merge.table else {
        return Err(DmlError::Unsupported(
            "MERGE INTO needs a table: MERGE INTO connection.sobject AS t ...".into(),
        ));
    };
    let (schema, table) =
        table_ref(name).ok_or_else(|| DmlError::UnknownTable(name.to_string()))?;
    Ok((schema, table, alias.as_ref().map(|a| a.name.value.clone())))
}

pub fn plan_merge(
    merge: &Merge,
    connection: &str,
    table: Arc<SObjectTable>,
) -> Result<MergePlan, DmlError> {
    if merge.output.is_some() {
        return Err(DmlError::Unsupported(
            "MERGE ... OUTPUT is not supported".into(),
        ));
    }
    let (_, table_name, alias) = merge_target(merge)?;
    let target_ref = alias
        .unwrap_or_else(|| table_name.clone())
        .to_ascii_lowercase();
    let source_ref = match &merge.source {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.name.to_string()
        }
        TableFactor::Table {
            name, alias: None, ..
        } => table_ref(name)
            .map(|(_, t)| t)
            .ok_or_else(|| DmlError::UnknownTable(name.to_string()))?,
        _ => {
            return Err(DmlError::Unsupported(
                "MERGE ... USING needs a table or a subquery with an alias: USING (SELECT ...) AS s"
                    .into(),
            ));
        }
    };
    let is_target_col = |qualifier: Option<&str>, column: &str| match qualifier {
        Some(q) => q.eq_ignore_ascii_case(&target_ref) || q.eq_ignore_ascii_case(&table_name),
        None => table.field_info(&column.to_ascii_lowercase()).is_some(),
    };
    let key = find_key(&merge.on, &is_target_col);
    let mut clauses = Vec::new();
    for c in &merge.clauses {
        let matched = match c.clause_kind {
            MergeClauseKind::Matched => true,
            MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget => false,
            MergeClauseKind::NotMatchedBySource => {
                return Err(DmlError::Unsupported(
                    "WHEN NOT MATCHED BY SOURCE is not supported: it would touch every record of the object; use DELETE ... WHERE"
                        .into(),
                ));
            }
        };
        let action = match (&c.action, matched) {
            (MergeAction::Update(u), true) => {
                if u.update_predicate.is_some() || u.delete_predicate.is_some() {
                    return Err(DmlError::Unsupported(
                        "UPDATE ... WHERE / DELETE WHERE inside MERGE is Oracle's; put the condition in WHEN MATCHED AND ..."
                            .into(),
                    ));
                }
                ClauseAction::Update(plan_assignments(&table, &u.assignments)?)
            }
            (MergeAction::Delete { .. }, true) => ClauseAction::Delete,
            (MergeAction::Insert(ins), false) => {
                let MergeInsertKind::Values(v) = &ins.kind else {
                    return Err(DmlError::Unsupported(
                        "INSERT ROW is BigQuery's; write INSERT (columns) VALUES (...)".into(),
                    ));
                };
                if ins.columns.is_empty() {
                    return Err(DmlError::Unsupported(
                        "name the columns: WHEN NOT MATCHED THEN INSERT (field, ...) VALUES (...)"
                            .into(),
                    ));
                }
                let fields = insert_fields(&table, &ins.columns)?;
                let [row] = v.rows.as_slice() else {
                    return Err(DmlError::Unsupported(
                        "INSERT in MERGE takes one VALUES row".into(),
                    ));
                };
                if row.content.len() != fields.len() {
                    return Err(DmlError::Unsupported(format!(
                        "INSERT names {} columns but VALUES gives {}",
                        fields.len(),
                        row.content.len()
                    )));
                }
                let values = row.content.iter().map(|e| e.to_string()).collect();
                ClauseAction::Insert { fields, values }
            }
            (MergeAction::Insert(_), true) => {
                return Err(DmlError::Unsupported(
                    "WHEN MATCHED cannot INSERT: the record exists; use UPDATE".into(),
                ));
            }
            (_, false) => {
                return Err(DmlError::Unsupported(
                    "WHEN NOT MATCHED can only INSERT: there is no record to update or delete"
                        .into(),
                ));
            }
        };
        clauses.push(WhenClause {
            matched,
            predicate: c.predicate.as_ref().map(|p| p.to_string()),
            action,
        });
    }
    if clauses.is_empty() {
        return Err(DmlError::Unsupported(
            "MERGE needs at least one WHEN clause".into(),
        ));
    }
    Ok(MergePlan {
        connection: connection.to_string(),
        table,
        target_ref,
        source_sql: merge.source.to_string(),
        source_ref,
        on_sql: merge.on.to_string(),
        key,
        clauses,
    })
}
