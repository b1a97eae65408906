//! From a parsed `UPDATE` to an [`UpdatePlan`]: the target sObject, the
//! checked assignments, and the SQL of the change-set query, including the
//! key lookup that makes the target be fetched by key instead of scanned.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, ObjectName, ObjectNamePart, TableFactor, Update,
    UpdateTableFromKind, visit_expressions,
};

use super::DmlError;
use crate::provider::SObjectTable;
use crate::soql::FieldInfo;

/// One `SET column = value`.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub column: String,
    pub field: FieldInfo,
    pub value_sql: String,
}

/// An equality in the WHERE clause between a target-side expression and a
/// source-side one: the match key.
#[derive(Debug, Clone)]
pub struct KeyMatch {
    pub target_sql: String,
    pub source_sql: String,
    /// WHERE conjuncts that only reference the source, applied when
    /// collecting keys.
    pub source_filters: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct UpdatePlan {
    pub connection: String,
    pub table: Arc<SObjectTable>,
    /// The name the statement uses for the target (its alias, or the table
    /// name).
    pub target_ref: String,
    pub assignments: Vec<Assignment>,
    pub from_sql: Vec<String>,
    pub selection_sql: Option<String>,
    pub key: Option<KeyMatch>,
    /// Read each target's LastModifiedDate, for `on_multiple_matches =
    /// 'newest'`.
    pub newest: bool,
}

impl UpdatePlan {
    pub fn sobject(&self) -> &str {
        &self.table.describe().name
    }

    /// `FROM` list of the change-set query: the target first, then the
    /// statement's own FROM items.
    pub fn from_clause(&self) -> String {
        let mut items = vec![format!(
            "{}.{} AS {}",
            quote_ident(&self.connection),
            quote_ident(&self.sobject().to_ascii_lowercase()),
            quote_ident(&self.target_ref)
        )];
        items.extend(self.from_sql.iter().cloned());
        items.join(", ")
    }

    /// The change-set query. `key_filter` is a `<target> IN (...)` list
    /// when keys were collected.
    pub fn change_set_sql(&self, key_filter: Option<&str>) -> String {
        let t = quote_ident(&self.target_ref);
        let mut select = vec![format!("{t}.id AS __sfsql_id")];
        match &self.key {
            Some(k) => select.push(format!("{} AS __sfsql_key", k.source_sql)),
            None => select.push("CAST(NULL AS VARCHAR) AS __sfsql_key".into()),
        }
        for (i, a) in self.assignments.iter().enumerate() {
            select.push(format!("({}) AS __sfsql_new_{i}", a.value_sql));
            select.push(format!("{t}.{} AS __sfsql_old_{i}", quote_ident(&a.column)));
        }
        if self.newest {
            select.push(format!("{t}.lastmodifieddate AS __sfsql_modified"));
        }
        let mut conds: Vec<String> = Vec::new();
        if let Some(s) = &self.selection_sql {
            conds.push(format!("({s})"));
        }
        if let Some(f) = key_filter {
            conds.push(f.to_string());
        }
        let mut sql = format!("SELECT {} FROM {}", select.join(", "), self.from_clause());
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql
    }

    /// The query that collects the distinct source keys.
    pub fn keys_sql(&self) -> Option<String> {
        let k = self.key.as_ref()?;
        let mut sql = format!(
            "SELECT DISTINCT {} AS k FROM {}",
            k.source_sql,
            self.from_sql.join(", ")
        );
        let mut conds = k.source_filters.clone();
        conds.push(format!("({}) IS NOT NULL", k.source_sql));
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
        Some(sql)
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `[catalog.]schema.table` as (schema, table), lower case as SQL
/// normalises unquoted names; `None` schema when unqualified.
pub fn table_ref(name: &ObjectName) -> Option<(Option<String>, String)> {
    let parts: Vec<String> = ident_parts(name)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    match parts.as_slice() {
        [t] => Some((None, t.clone())),
        [.., s, t] => Some((Some(s.clone()), t.clone())),
        [] => None,
    }
}

fn ident_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The target table's schema and name from `UPDATE <name>`.
pub fn target_name(update: &Update) -> Result<(Option<String>, String, Option<String>), DmlError> {
    if !update.table.joins.is_empty() {
        return Err(DmlError::Unsupported(
            "UPDATE with JOIN in the target list is not supported; put the other tables in FROM"
                .into(),
        ));
    }
    let TableFactor::Table { name, alias, .. } = &update.table.relation else {
        return Err(DmlError::Unsupported(
            "UPDATE target must be a table".into(),
        ));
    };
    let parts = ident_parts(name);
    let (schema, table) = match parts.as_slice() {
        [t] => (None, t.clone()),
        [s, t] => (Some(s.clone()), t.clone()),
        [_, s, t] => (Some(s.clone()), t.clone()),
        _ => return Err(DmlError::UnknownTable(name.to_string())),
    };
    Ok((schema, table, alias.as_ref().map(|a| a.name.value.clone())))
}

/// Check `SET column = value` items against the target: each column
/// exists, is updateable, and is assigned once.
pub fn plan_assignments(
    table: &SObjectTable,
    items: &[datafusion::sql::sqlparser::ast::Assignment],
) -> Result<Vec<Assignment>, DmlError> {
    let sobject = table.describe().name.clone();
    let mut assignments = Vec::new();
    let mut seen = BTreeSet::new();
    for a in items {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(DmlError::Unsupported(
                "UPDATE ... SET (a, b) = ... is not supported; assign each column".into(),
            ));
        };
        let parts = ident_parts(name);
        let column = parts
            .last()
            .cloned()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let field = table
            .field_info(&column)
            .ok_or_else(|| DmlError::UnknownColumn {
                table: sobject.to_ascii_lowercase(),
                column: column.clone(),
            })?;
        let describe = table.describe().field(&field.api_name);
        if !describe.is_some_and(|d| d.updateable) {
            return Err(DmlError::NotUpdateable {
                sobject: sobject.clone(),
                column,
            });
        }
        if !seen.insert(column.clone()) {
            return Err(DmlError::Unsupported(format!(
                "column \"{column}\" is assigned more than once"
            )));
        }
        assignments.push(Assignment {
            column,
            field,
            value_sql: a.value.to_string(),
        });
    }
    Ok(assignments)
}

/// Build the plan for an UPDATE whose target resolved to `table` in
/// connection `connection`.
pub fn plan_update(
    update: &Update,
    connection: &str,
    table: Arc<SObjectTable>,
) -> Result<UpdatePlan, DmlError> {
    if update.returning.is_some() {
        return Err(DmlError::Unsupported(
            "UPDATE ... RETURNING is not supported on Salesforce tables yet".into(),
        ));
    }
    if update.limit.is_some() || !update.order_by.is_empty() {
        return Err(DmlError::Unsupported(
            "UPDATE ... ORDER BY/LIMIT is not supported; filter with WHERE".into(),
        ));
    }
    let (_, table_name, alias) = target_name(update)?;
    let target_ref = alias
        .unwrap_or_else(|| table_name.clone())
        .to_ascii_lowercase();

    let assignments = plan_assignments(&table, &update.assignments)?;

    let from_sql: Vec<String> = match &update.from {
        None => vec![],
        Some(UpdateTableFromKind::AfterSet(items))
        | Some(UpdateTableFromKind::BeforeSet(items)) => {
            items.iter().map(|t| t.to_string()).collect()
        }
    };

    let is_target_col = |qualifier: Option<&str>, column: &str| match qualifier {
        Some(q) => q.eq_ignore_ascii_case(&target_ref) || q.eq_ignore_ascii_case(&table_name),
        None => table.field_info(&column.to_ascii_lowercase()).is_some(),
    };
    let key = if from_sql.is_empty() {
        None
    } else {
        update
            .selection
            .as_ref()
            .and_then(|sel| find_key(sel, &is_target_col))
    };
    Ok(UpdatePlan {
        connection: connection.to_string(),
        table,
        target_ref,
        assignments,
        from_sql,
        selection_sql: update.selection.as_ref().map(|s| s.to_string()),
        key,
        newest: false,
    })
}

/// Which sides an expression's column references fall on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sides {
    target: bool,
    source: bool,
}

fn sides(expr: &Expr, is_target_col: &dyn Fn(Option<&str>, &str) -> bool) -> Sides {
    let mut s = Sides::default();
    let _ = visit_expressions(expr, |e| {
        match e {
            Expr::Identifier(i) => {
                if is_target_col(None, &i.value) {
                    s.target = true
                } else {
                    s.source = true
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let q = &parts[parts.len() - 2].value;
                if is_target_col(Some(q), &parts[parts.len() - 1].value) {
                    s.target = true
                } else {
                    s.source = true
                }
            }
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => s.source = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    s
}

pub(super) fn conjuncts(expr: &Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

pub(super) fn find_key(
    selection: &Expr,
    is_target_col: &dyn Fn(Option<&str>, &str) -> bool,
) -> Option<KeyMatch> {
    let mut parts = Vec::new();
    conjuncts(selection, &mut parts);
    let only_source = |e: &Expr| {
        sides(e, is_target_col)
            == Sides {
                target: false,
                source: true,
            }
    };
    let only_target = |e: &Expr| {
        sides(e, is_target_col)
            == Sides {
                target: true,
                source: false,
            }
    };
    let source_filters: Vec<String> = parts
        .iter()
        .filter(|e| only_source(e))
        .map(|e| e.to_string())
        .collect();
    parts.iter().find_map(|e| match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (t, s) = if only_target(left) && only_source(right) {
                (left, right)
            } else if only_target(right) && only_source(left) {
                (right, left)
            } else {
                return None;
            };
            Some(KeyMatch {
                target_sql: t.to_string(),
                source_sql: s.to_string(),
                source_filters: source_filters.clone(),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn key_of(sql: &str) -> Option<KeyMatch> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        let datafusion::sql::sqlparser::ast::Statement::Update(u) = stmt else {
            panic!()
        };
        let is_target = |q: Option<&str>, c: &str| match q {
            Some(q) => q == "contact",
            None => c == "email" || c == "wm_nps_score__c",
        };
        find_key(u.selection.as_ref().unwrap(), &is_target)
    }

    #[test]
    fn finds_the_match_key_and_source_only_filters() {
        let k = key_of(
            "UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score FROM reports.nps_score r \
             WHERE lower(contact.email) = lower(r.account_email) AND r.nps_score IS NOT NULL",
        )
        .unwrap();
        assert_eq!(k.target_sql, "lower(contact.email)");
        assert_eq!(k.source_sql, "lower(r.account_email)");
        assert_eq!(
            k.source_filters,
            vec!["r.nps_score IS NOT NULL".to_string()]
        );
        // key on the left, unqualified target column
        let k =
            key_of("UPDATE contact SET wm_nps_score__c = 1 FROM r WHERE r.mail = email").unwrap();
        assert_eq!(k.target_sql, "email");
        assert!(
            key_of(
                "UPDATE contact SET wm_nps_score__c = 1 FROM r WHERE contact.email LIKE r.x || '%'"
            )
            .is_none()
        );
    }
}
