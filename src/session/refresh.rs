//! `SELECT sfsql.refresh(['connection'])`: read a connection's list of
//! sObjects again (one describeGlobal) and forget its describes, so objects
//! and fields created in the org since sfsql started appear. Without an
//! argument every connection is refreshed.

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr,
    Statement, Value,
};

use super::engine::Engine;
use super::output::text_batch;
use super::router::StatementError;

/// The columns `sfsql.refresh` returns: one row per connection refreshed.
pub const COLUMNS: [&str; 2] = ["connection", "sobjects"];

/// `Some(connection)` when `statement` is a refresh call. datafusion-postgres
/// strips the schema from function names before hooks see them, so the bare
/// `refresh(...)` is taken too.
pub fn refresh_call(statement: &Statement) -> Option<Option<String>> {
    let (parts, f) = lone_function_call(statement)?;
    let ours = match parts.as_slice() {
        [schema, name] => schema == "sfsql" && name == "refresh",
        [name] => name == "refresh",
        _ => false,
    };
    if !ours {
        return None;
    }
    match &f.args {
        FunctionArguments::None => Some(None),
        FunctionArguments::List(list) if list.args.is_empty() => Some(None),
        FunctionArguments::List(list) => match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] => match &v.value {
                Value::SingleQuotedString(name) => Some(Some(name.clone())),
                _ => None,
            },
            _ => None,
        },
        FunctionArguments::Subquery(_) => None,
    }
}

/// `SELECT f(...)` with nothing else (no FROM, one column): the function's
/// lower-case name parts and the call. sfsql's own commands (`cron.*`,
/// `sfsql.refresh`) are written this way, as pg_cron's are.
pub fn lone_function_call(statement: &Statement) -> Option<(Vec<String>, &Function)> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if !select.from.is_empty() || select.projection.len() != 1 {
        return None;
    }
    let (SelectItem::UnnamedExpr(Expr::Function(f))
    | SelectItem::ExprWithAlias {
        expr: Expr::Function(f),
        ..
    }) = &select.projection[0]
    else {
        return None;
    };
    let parts = f
        .name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
        .collect();
    Some((parts, f))
}

impl Engine {
    /// Refresh one connection's sObject list, or every connection's.
    pub async fn refresh(&self, connection: Option<&str>) -> Result<RecordBatch, StatementError> {
        let names: Vec<&String> = match connection {
            Some(name) => {
                let (n, _) = self
                    .connections
                    .get_key_value(name)
                    .ok_or_else(|| StatementError::UnknownConnection(name.to_string()))?;
                vec![n]
            }
            None => self.connections.keys().collect(),
        };
        let mut rows = Vec::new();
        for name in names {
            if let Some(conn) = self.connections.get(name) {
                let count = conn.schema.refresh().await?;
                rows.push(vec![Some(name.clone()), Some(count.to_string())]);
            }
        }
        Ok(text_batch(&COLUMNS, rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn call(sql: &str) -> Option<Option<String>> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parse");
        refresh_call(&statements[0])
    }

    #[test]
    fn refresh_calls_are_recognised() {
        assert_eq!(
            call("SELECT sfsql.refresh('sandbox')"),
            Some(Some("sandbox".into()))
        );
        assert_eq!(
            call("select refresh('production')"),
            Some(Some("production".into()))
        );
        assert_eq!(call("SELECT sfsql.refresh()"), Some(None));
    }

    #[test]
    fn other_selects_are_not() {
        assert_eq!(call("SELECT cron.refresh('x')"), None);
        assert_eq!(call("SELECT refresh(name) FROM t"), None);
        assert_eq!(call("SELECT lower('x')"), None);
        assert_eq!(call("SELECT refresh(1)"), None);
    }
}
