//! Client compatibility: the statements real drivers send on connect or
//! between queries that DataFusion cannot answer as written — psycopg's
//! `DEALLOCATE`, asyncpg's untyped `LIMIT $n`, psql `\d+`'s `array(SELECT
//! ...)` over `reloptions`, SQLAlchemy's `version()` parsing — answered or
//! rewritten here so the client sees PostgreSQL's behaviour.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ParamValues;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, DataType as SqlType, FunctionArguments, ObjectNamePart, Statement, Value,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::error::{PgWireError, PgWireResult};

use super::json_build::JsonBuildObject;
use crate::session::described_plan;

/// The `server_version` clients see, and what `version()` returns: drivers
/// (SQLAlchemy, JDBC) parse `PostgreSQL <major>.<minor>` out of it.
pub fn server_version() -> String {
    format!("15.0 (sfsql {})", env!("CARGO_PKG_VERSION"))
}

/// Functions clients call that DataFusion and datafusion-pg-catalog lack or
/// answer differently, on the context every connection shares.
pub fn register_functions(ctx: &SessionContext) {
    // col_description and obj_description answer Salesforce labels
    // (provider::Comments, registered with the engine).
    for name in [
        "shobj_description",
        "pg_get_serial_sequence",
        "pg_get_triggerdef",
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(AlwaysNull::new(name)));
    }
    ctx.register_udtf("pg_partition_ancestors", Arc::new(PartitionAncestors));
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
    ctx.register_udf(super::regtype::name_udf());
    ctx.register_udf(super::regtype::names_udf());
    // SQLAlchemy's column reflection: sfsql has one schema search path and
    // no per-schema collations, so every collation is visible.
    ctx.register_udf(constant(
        "pg_collation_is_visible",
        ScalarValue::Boolean(Some(true)),
    ));
    // psql `\dt+`: sfsql keeps no table data on disk (rows live in
    // Salesforce or the report's source), so a table's size is 0 bytes.
    ctx.register_udf(constant("pg_table_size", ScalarValue::Int64(Some(0))));
    ctx.register_udf(create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let sizes = arrays
                .first()
                .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(
                        "pg_size_pretty expects a bigint".into(),
                    )
                })?;
            let out: StringArray = sizes.iter().map(|v| v.map(size_pretty)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
    ctx.register_udf(create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrays
                .first()
                .and_then(|a| a.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(
                        "current_setting expects a setting's name".into(),
                    )
                })?;
            let out = names
                .iter()
                .map(|n| n.map(setting).transpose())
                .collect::<datafusion::error::Result<StringArray>>()?;
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
    // DataFusion's says "Apache DataFusion ..."; clients parse PostgreSQL's.
    let text = format!("PostgreSQL {} on x86_64-pc-linux-gnu", server_version());
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    ));
}

/// `current_setting(name)` for the server settings clients read this way
/// (SQLAlchemy's table reflection asks for `default_table_access_method`);
/// they have PostgreSQL's values, as `SHOW` answers them. sfsql's own
/// settings are per connection: `SHOW sfsql.<name>` reads them.
fn setting(name: &str) -> datafusion::error::Result<String> {
    let value = match name.to_ascii_lowercase().as_str() {
        "default_table_access_method" => "heap".to_string(),
        "server_version" => server_version(),
        "server_version_num" => "150000".to_string(),
        "server_encoding" | "client_encoding" => "UTF8".to_string(),
        "standard_conforming_strings" => "on".to_string(),
        "datestyle" => "ISO, MDY".to_string(),
        "timezone" => "UTC".to_string(),
        "search_path" => "\"$user\", public".to_string(),
        "transaction_isolation" | "default_transaction_isolation" => "read committed".to_string(),
        "max_identifier_length" => "63".to_string(),
        "integer_datetimes" => "on".to_string(),
        _ => {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "unrecognized configuration parameter \"{name}\" (SHOW {name} reads sfsql's own settings)"
            )));
        }
    };
    Ok(value)
}

/// A function of one oid argument whose answer is the same for every row.
fn constant(name: &str, value: ScalarValue) -> ScalarUDF {
    let data_type = value.data_type();
    create_udf(
        name,
        vec![DataType::Int32],
        data_type,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let rows = ColumnarValue::values_to_arrays(args)?
                .first()
                .map_or(1, |a| a.len());
            Ok(ColumnarValue::Array(value.to_array_of_size(rows)?))
        }),
    )
}

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes below 10 kB, then the
/// largest unit that keeps the number under 20,480, half-rounded.
fn size_pretty(size: i64) -> String {
    // (unit, limit, half-rounded, bits) as in PostgreSQL's dbsize.c.
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let mut size = size;
    for (i, (name, limit, round, bits)) in UNITS.iter().enumerate() {
        let next = UNITS.get(i + 1);
        if next.is_none() || size.abs() < *limit {
            if *round {
                size = (size + if size < 0 { -1 } else { 1 }) / 2;
            }
            return format!("{size} {name}");
        }
        if let Some((_, _, next_round, next_bits)) = next {
            let shift = next_bits - bits - u32::from(*next_round) + u32::from(*round);
            size /= 1i64 << shift;
        }
    }
    format!("{size} bytes")
}

/// `shobj_description` (psql `\l+`): sfsql keeps no comments on databases
/// or roles, so the description is NULL, as for an object without one;
/// `pg_get_serial_sequence` (SQLAlchemy) is NULL as for a column without a
/// sequence; `pg_get_triggerdef` (psql `\d`) names no trigger: sfsql
/// tables have none.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AlwaysNull {
    name: &'static str,
    signature: Signature,
}

impl AlwaysNull {
    fn new(name: &'static str) -> Self {
        AlwaysNull {
            name,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for AlwaysNull {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

/// Whether `query` reads `pg_partition_ancestors(...)` in its FROM clause.
fn reads_partition_ancestors(query: &ast::Query) -> bool {
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let is_ancestors = |factor: &ast::TableFactor| {
        matches!(factor, ast::TableFactor::Table { name, args: Some(_), .. }
            if name.0.last().and_then(ObjectNamePart::as_ident)
                .is_some_and(|n| n.value.eq_ignore_ascii_case("pg_partition_ancestors")))
    };
    select
        .from
        .iter()
        .any(|t| is_ancestors(&t.relation) || t.joins.iter().any(|j| is_ancestors(&j.relation)))
}

/// `pg_partition_ancestors(regclass)` in a FROM clause, as psql's `\d`
/// reads a table's triggers (`... WITH ORDINALITY AS a(relid, depth)`;
/// the ordinality column is served as `depth`): no rows, as PostgreSQL
/// answers for a table that is not a partition (sfsql has no partitions).
/// In a select list the scalar function of datafusion-pg-catalog answers.
#[derive(Debug)]
struct PartitionAncestors;

impl datafusion::catalog::TableFunctionImpl for PartitionAncestors {
    fn call(
        &self,
        _: &[Expr],
    ) -> datafusion::error::Result<Arc<dyn datafusion::datasource::TableProvider>> {
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("relid", DataType::Int32, false),
            Field::new("depth", DataType::Int64, false),
        ]));
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![]],
        )?))
    }
}

pub struct CompatHook;

/// Rewrite the parts of a client's catalog query that DataFusion cannot
/// plan; `None` when nothing needed rewriting.
fn rewrite(statement: &Statement) -> Option<Statement> {
    if !matches!(statement, Statement::Query(_)) {
        return None;
    }
    if let Some(known) = known_query(statement) {
        return Some(known);
    }
    let mut rewritten = statement.clone();
    let mut changed = false;
    let _ = visit_expressions_mut(&mut rewritten, |expr: &mut ast::Expr| {
        if let ast::Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | ast::Expr::ILike {
            pattern,
            escape_char,
            ..
        } = expr
            && let Some(fixed) = backslash_escaped(pattern, escape_char.as_ref())
        {
            **pattern = fixed;
            *escape_char = None;
            changed = true;
        }
        // A lookup whose value reads the outer row (SQLAlchemy's identity
        // options: `json_build_object(..., a.attidentity = 'a', ...)`)
        // cannot be decorrelated by DataFusion. The lookups sfsql meets
        // this way are over catalogs it keeps empty (pg_sequence: no
        // identity columns), so the value is NULL; any `$n` it held keeps
        // its slot (see `keep_placeholders`).
        if let ast::Expr::Subquery(q) = expr
            && lookup_value(q).is_some_and(|(value, inner)| reads(value, &inner).0)
        {
            *expr = null_text();
            changed = true;
            return ControlFlow::Continue(());
        }
        // psql `\d`'s trigger list looks a trigger's parent up among
        // `pg_partition_ancestors(...)`, which DataFusion cannot decorrelate;
        // sfsql has no partitions, so that set is empty and the value NULL.
        if let ast::Expr::Subquery(q) = expr
            && reads_partition_ancestors(q)
        {
            *expr = null_text();
            changed = true;
            return ControlFlow::Continue(());
        }
        if let ast::Expr::Subquery(q) = expr
            && aggregate_catalog_lookup(q)
        {
            if let Some(outer) = hoist_outer_conditions(q) {
                let lookup = std::mem::replace(expr, ast::Expr::Value(Value::Null.into()));
                *expr = ast::Expr::Case {
                    case_token: ast::helpers::attached_token::AttachedToken::empty(),
                    end_token: ast::helpers::attached_token::AttachedToken::empty(),
                    operand: None,
                    conditions: vec![ast::CaseWhen {
                        condition: outer,
                        result: lookup,
                    }],
                    else_result: None,
                };
            }
            changed = true;
        }
        // PostgreSQL's field selection from a composite, `(keys).x`, as
        // DataFusion's `get_field(keys, 'x')` (its SQL planner refuses a
        // dot after a parenthesized expression).
        if let Some(field) = composite_field(expr) {
            *expr = field;
            changed = true;
            return ControlFlow::Continue(());
        }
        if let Some(names) = super::regtype::rewrite_cast(expr) {
            *expr = names;
            changed = true;
            return ControlFlow::Continue(());
        }
        if let ast::Expr::Function(f) = expr {
            let name = f.name.0.last().and_then(ObjectNamePart::as_ident);
            // psql `\d+`: array_to_string(c.reloptions || array(SELECT ...)).
            // pg_class has no reloptions (sfsql tables have no storage
            // options), so the answer is NULL, as for a table without any.
            let reloptions = name.is_some_and(|n| n.value.eq_ignore_ascii_case("array_to_string"))
                && f.args.to_string().contains("reloptions");
            let array_subquery = name.is_some_and(|n| n.value.eq_ignore_ascii_case("array"))
                && matches!(f.args, FunctionArguments::Subquery(_));
            // psycopg's TypeInfo.fetch (SQLAlchemy asks for hstore on
            // connect): the type's oid, or NULL when there is no such type.
            if name.is_some_and(|n| n.value.eq_ignore_ascii_case("to_regtype"))
                && let Some(lookup) = type_oid_lookup(&f.args)
            {
                *expr = lookup;
                changed = true;
                return ControlFlow::Continue(());
            }
            // SQLAlchemy's key reflection numbers a key's columns with
            // `generate_subscripts(indkey, 1)` beside `unnest(indkey)`;
            // DataFusion zips two unnests in one select list as PostgreSQL
            // does with two set-returning functions.
            // The JDBC driver's getPrimaryKeys (and DBeaver's, Metabase's
            // key discovery) number a key's columns with
            // `information_schema._pg_expandarray(indkey)`, a set-returning
            // function of (x, n) rows: one row per element and its
            // subscript, zipped as the generate_subscripts rewrite is.
            if name.is_some_and(|n| n.value.eq_ignore_ascii_case("_pg_expandarray"))
                && let Some(expanded) = expanded_array(&f.args)
            {
                *expr = expanded;
                changed = true;
                return ControlFlow::Continue(());
            }
            if name.is_some_and(|n| n.value.eq_ignore_ascii_case("generate_subscripts"))
                && let Some(subscripts) = subscripts_of(&f.args)
            {
                *expr = subscripts;
                changed = true;
                return ControlFlow::Continue(());
            }
            if reloptions || array_subquery {
                *expr = null_text();
                changed = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    changed.then_some(rewritten)
}

/// pgcli's foreign-key listing (`PGExecute.foreignkeys`, run by its
/// completion refresher at start: when it fails, pgcli loads no completion
/// at all). Each key column's name is looked up by a correlated subquery
/// over `unnest(confkey)` / `generate_subscripts(confkey, 1)`, which
/// DataFusion cannot plan.
const PGCLI_FOREIGN_KEYS: &str = "
    SELECT s_p.nspname AS parentschema,
           t_p.relname AS parenttable,
           unnest((
            select
                array_agg(attname ORDER BY i)
            from
                (select unnest(confkey) as attnum, generate_subscripts(confkey, 1) as i) x
                JOIN pg_catalog.pg_attribute c USING(attnum)
                WHERE c.attrelid = fk.confrelid
            )) AS parentcolumn,
           s_c.nspname AS childschema,
           t_c.relname AS childtable,
           unnest((
            select
                array_agg(attname ORDER BY i)
            from
                (select unnest(conkey) as attnum, generate_subscripts(conkey, 1) as i) x
                JOIN pg_catalog.pg_attribute c USING(attnum)
                WHERE c.attrelid = fk.conrelid
            )) AS childcolumn
    FROM pg_catalog.pg_constraint fk
    JOIN pg_catalog.pg_class      t_p ON t_p.oid = fk.confrelid
    JOIN pg_catalog.pg_namespace  s_p ON s_p.oid = t_p.relnamespace
    JOIN pg_catalog.pg_class      t_c ON t_c.oid = fk.conrelid
    JOIN pg_catalog.pg_namespace  s_c ON s_c.oid = t_c.relnamespace
    WHERE fk.contype = 'f'";

/// The same rows: the two unnests zip a key's child and parent columns by
/// position, so each position is one row joined to both columns' names.
/// The joins on `attrelid` let the planner describe only the tables the
/// keys name (see `provider::describe_first`).
const PGCLI_FOREIGN_KEYS_PLANNED: &str = "
    SELECT s_p.nspname AS parentschema, t_p.relname AS parenttable, pa.attname AS parentcolumn,
           s_c.nspname AS childschema, t_c.relname AS childtable, ca.attname AS childcolumn
    FROM (SELECT conrelid, confrelid, contype,
                 unnest(conkey) AS child_attnum, unnest(confkey) AS parent_attnum,
                 unnest(range(1, CAST(cardinality(conkey) AS BIGINT) + 1)) AS position
          FROM pg_catalog.pg_constraint WHERE contype = 'f') fk
    JOIN pg_catalog.pg_class      t_p ON t_p.oid = fk.confrelid
    JOIN pg_catalog.pg_namespace  s_p ON s_p.oid = t_p.relnamespace
    JOIN pg_catalog.pg_class      t_c ON t_c.oid = fk.conrelid
    JOIN pg_catalog.pg_namespace  s_c ON s_c.oid = t_c.relnamespace
    JOIN pg_catalog.pg_attribute  pa ON pa.attrelid = fk.confrelid AND pa.attnum = fk.parent_attnum
    JOIN pg_catalog.pg_attribute  ca ON ca.attrelid = fk.conrelid AND ca.attnum = fk.child_attnum
    ORDER BY childschema, childtable, fk.conrelid, fk.confrelid, fk.position";

/// A client's query sfsql knows as a whole and answers with an
/// equivalent one DataFusion can plan; matched on the parsed statement,
/// so whitespace and case do not matter.
fn known_query(statement: &Statement) -> Option<Statement> {
    /// (shape, text) of a query sfsql knows, and its answer.
    type Known = ((usize, String), String, Statement);
    static KNOWN: std::sync::OnceLock<Vec<Known>> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        [(PGCLI_FOREIGN_KEYS, PGCLI_FOREIGN_KEYS_PLANNED)]
            .into_iter()
            .filter_map(|(asked, answered)| {
                let parse = |sql: &str| {
                    datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
                        .parse(sql)
                        .ok()
                        .and_then(|mut s| (!s.is_empty()).then(|| s.remove(0)))
                };
                let asked = parse(asked)?;
                Some((shape(&asked)?, asked.to_string().to_lowercase(), parse(answered)?))
            })
            .collect()
    });
    // Every query passes here: compare the cheap shape before the text.
    let this = shape(statement)?;
    let mut candidates = known.iter().filter(|(s, ..)| *s == this).peekable();
    candidates.peek()?;
    let text = statement.to_string().to_lowercase();
    candidates
        .find(|(_, asked, _)| *asked == text)
        .map(|(.., answered)| answered.clone())
}

/// A SELECT's number of output columns and its first one, lower-cased.
fn shape(statement: &Statement) -> Option<(usize, String)> {
    let Statement::Query(q) = statement else {
        return None;
    };
    let ast::SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let first = select.projection.first()?;
    Some((select.projection.len(), first.to_string().to_lowercase()))
}

/// A scalar subquery that looks a value up in pg_catalog, such as
/// SQLAlchemy's column reflection's `CASE WHEN a.atthasdef THEN (SELECT
/// pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid =
/// a.attrelid AND d.adnum = a.attnum) END`: DataFusion plans a correlated
/// scalar subquery only when it is an aggregate. A catalog lookup by key
/// returns at most one row, so its value is the same as `max(value)`; that is
/// the rewrite (zero rows stay NULL). Subqueries over anything but catalog
/// tables are left alone, so user queries keep PostgreSQL's semantics.
fn aggregate_catalog_lookup(query: &mut ast::Query) -> bool {
    lookup_value(query).is_some_and(|(value, _)| {
        let inner = std::mem::replace(value, ast::Expr::Value(Value::Null.into()));
        *value = ast::Expr::Function(ast::Function {
            name: ast::ObjectName::from(vec![ast::Ident::new("max")]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(ast::FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
        true
    })
}

/// The value a catalog lookup (see [`aggregate_catalog_lookup`]) selects
/// and the names its FROM clause gives its tables.
fn lookup_value(query: &mut ast::Query) -> Option<(&mut ast::Expr, Vec<ast::Ident>)> {
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let names = from_names(select);
    let catalog_only = !select.from.is_empty()
        && select.from.iter().all(|t| {
            std::iter::once(&t.relation)
                .chain(t.joins.iter().map(|j| &j.relation))
                .all(|r| match r {
                    ast::TableFactor::Table { name, .. } => name
                        .0
                        .last()
                        .and_then(ObjectNamePart::as_ident)
                        .is_some_and(|i| i.value.to_ascii_lowercase().starts_with("pg_")),
                    _ => false,
                })
        });
    let grouped = !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if !catalog_only || grouped || select.having.is_some() {
        return None;
    }
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let (ast::SelectItem::UnnamedExpr(value) | ast::SelectItem::ExprWithAlias { expr: value, .. }) =
        item
    else {
        return None;
    };
    (!has_aggregate(value)).then_some((value, names))
}

/// The names (last name part and alias) of the tables in a SELECT's FROM.
fn from_names(select: &ast::Select) -> Vec<ast::Ident> {
    let mut names = Vec::new();
    for t in &select.from {
        for r in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            if let ast::TableFactor::Table { name, alias, .. } = r {
                names.extend(name.0.last().and_then(ObjectNamePart::as_ident).cloned());
                names.extend(alias.as_ref().map(|a| a.name.clone()));
            }
        }
    }
    names
}

/// Which tables `expr` reads: (some column qualified by a table not in
/// `inner`, some column of `inner` or unqualified or a subquery).
fn reads(expr: &ast::Expr, inner: &[ast::Ident]) -> (bool, bool) {
    let mut outer = false;
    let mut other = false;
    let _ = ast::visit_expressions(expr, |x: &ast::Expr| {
        match x {
            ast::Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let table = &parts[parts.len() - 2];
                if inner
                    .iter()
                    .any(|n| n.value.eq_ignore_ascii_case(&table.value))
                {
                    other = true;
                } else {
                    outer = true;
                }
            }
            ast::Expr::Identifier(_) | ast::Expr::Subquery(_) | ast::Expr::Exists { .. } => {
                other = true
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (outer, other)
}

/// Takes the conditions of a lookup's WHERE that read only the outer
/// query's columns (SQLAlchemy's `WHERE pg_attribute.atthasdef AND ...`),
/// which DataFusion cannot decorrelate, out of the subquery, joined by AND:
/// `(SELECT .. WHERE outer AND inner)` is `CASE WHEN outer THEN (SELECT ..
/// WHERE inner) END`.
fn hoist_outer_conditions(query: &mut ast::Query) -> Option<ast::Expr> {
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let inner = from_names(select);
    let mut conjuncts = Vec::new();
    split_and(select.selection.take()?, &mut conjuncts);
    let (outer, inner): (Vec<_>, Vec<_>) = conjuncts.into_iter().partition(|c| {
        let (outer, other) = reads(c, &inner);
        outer && !other
    });
    select.selection = and_all(inner);
    and_all(outer)
}

fn split_and(expr: ast::Expr, out: &mut Vec<ast::Expr>) {
    match expr {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        ast::Expr::Nested(inner)
            if matches!(
                *inner,
                ast::Expr::BinaryOp {
                    op: ast::BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

fn and_all(exprs: Vec<ast::Expr>) -> Option<ast::Expr> {
    exprs.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::And,
        right: Box::new(b),
    })
}

/// Whether `expr` calls an aggregate function (any of PostgreSQL's common
/// ones) outside a subquery of its own.
fn has_aggregate(expr: &ast::Expr) -> bool {
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "first_value",
        "last_value",
    ];
    let mut found = false;
    let _ = ast::visit_expressions(expr, |e: &ast::Expr| {
        if let ast::Expr::Function(f) = e
            && f.over.is_none()
            && f.name
                .0
                .last()
                .and_then(ObjectNamePart::as_ident)
                .is_some_and(|n| AGGREGATES.contains(&n.value.to_ascii_lowercase().as_str()))
        {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

fn null_text() -> ast::Expr {
    ast::Expr::Cast {
        kind: ast::CastKind::DoubleColon,
        expr: Box::new(ast::Expr::Value(Value::Null.into())),
        data_type: SqlType::Text,
        array: false,
        format: None,
    }
}

/// DataFusion's LIKE only knows the backslash escape; SQLAlchemy writes
/// `nspname NOT LIKE 'pg/_%' ESCAPE '/'`. A literal pattern is rewritten to
/// the same pattern with backslash escapes.
fn backslash_escaped(
    pattern: &ast::Expr,
    escape: Option<&ast::ValueWithSpan>,
) -> Option<ast::Expr> {
    let Value::SingleQuotedString(esc) = &escape?.value else {
        return None;
    };
    let mut esc_chars = esc.chars();
    let (Some(esc), None) = (esc_chars.next(), esc_chars.next()) else {
        return None;
    };
    if esc == '\\' {
        return None;
    }
    let Some(text) = (match pattern {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(text) => Some(text),
            _ => None,
        },
        _ => None,
    }) else {
        // A bound pattern (`$1 || '%'`): translate at run time. A doubled
        // escape character (an escaped escape) is the one case this reads
        // as a backslash instead.
        let sql = format!(
            "replace(replace(CAST({pattern} AS TEXT), '\\', '\\\\'), '{}', '\\')",
            esc.to_string().replace('\'', "''")
        );
        return expression(&sql);
    };
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == esc {
            out.push('\\');
            out.extend(chars.next());
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(ast::Expr::Value(Value::SingleQuotedString(out).into()))
}

/// `to_regtype(name)` as a lookup in pg_type by name.
fn type_oid_lookup(args: &FunctionArguments) -> Option<ast::Expr> {
    let arg = only_argument(args)?;
    expression(&format!(
        "(SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typname = CAST({arg} AS TEXT) LIMIT 1)"
    ))
}

/// A function call's one argument.
fn only_argument(args: &FunctionArguments) -> Option<&ast::FunctionArg> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    match list.args.as_slice() {
        [arg] => Some(arg),
        _ => None,
    }
}

/// An SQL expression parsed as PostgreSQL's.
fn expression(sql: &str) -> Option<ast::Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// `generate_subscripts(array, 1)` as `unnest(range(1, cardinality(array) +
/// 1))`: the subscripts 1..n of a one-dimensional array.
fn subscripts_of(args: &FunctionArguments) -> Option<ast::Expr> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    let [array, dimension] = list.args.as_slice() else {
        return None;
    };
    let dimension = dimension.to_string();
    if dimension != "1" && !dimension.starts_with('$') {
        return None;
    }
    expression(&format!(
        "unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1))"
    ))
}

/// `_pg_expandarray(array)` as a struct of the array's elements and their
/// subscripts, `named_struct('x', unnest(array), 'n', unnest(1..n))`; the
/// fields are read with `(keys).x` / `(keys).n` (see `composite_field`).
fn expanded_array(args: &FunctionArguments) -> Option<ast::Expr> {
    let array = only_argument(args)?;
    expression(&format!(
        "named_struct('x', unnest({array}), 'n', \
         unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1)))"
    ))
}

/// `(composite).field[.field...]` as nested `get_field(composite, 'field')`.
fn composite_field(expr: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return None;
    };
    let ast::Expr::Nested(inner) = root.as_ref() else {
        return None;
    };
    let mut out = inner.as_ref().clone();
    for access in access_chain {
        let ast::AccessExpr::Dot(ast::Expr::Identifier(field)) = access else {
            return None;
        };
        out = ast::Expr::Function(ast::Function {
            name: ast::ObjectName::from(vec![ast::Ident::new("get_field")]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(ast::FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(out)),
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(
                        Value::SingleQuotedString(if field.quote_style.is_some() {
                            field.value.clone()
                        } else {
                            field.value.to_lowercase()
                        })
                        .into(),
                    ))),
                ],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
    }
    Some(out)
}

/// `LIMIT $1` / `OFFSET $1` placeholders have no type in DataFusion's plan,
/// so drivers that bind by the advertised type (asyncpg) would send text.
/// PostgreSQL types them `bigint`.
fn type_limit_placeholders(
    plan: LogicalPlan,
) -> datafusion::error::Result<Transformed<LogicalPlan>> {
    plan.transform_up(|node| {
        let LogicalPlan::Limit(mut limit) = node else {
            return Ok(Transformed::no(node));
        };
        let mut changed = false;
        for slot in [&mut limit.skip, &mut limit.fetch].into_iter().flatten() {
            if let Expr::Placeholder(Placeholder { id, field: None }) = slot.as_ref() {
                let field = Arc::new(Field::new(id.clone(), DataType::Int64, true));
                **slot = Expr::Placeholder(Placeholder::new_with_field(id.clone(), Some(field)));
                changed = true;
            }
        }
        Ok(Transformed::new_transformed(
            LogicalPlan::Limit(limit),
            changed,
        ))
    })
}

/// datafusion-postgres decodes bound parameters by their position among the
/// plan's placeholders, so a rewrite that drops `$2` (a subquery answered
/// NULL) would make `$3`'s value be read with `$2`'s slot's type, or the
/// wrong type. Every placeholder of the client's statement that the plan
/// lost is kept under an always-true filter, typed by its cast (`$2::VARCHAR`)
/// when it has one.
fn keep_placeholders(
    plan: LogicalPlan,
    statement: &Statement,
) -> datafusion::error::Result<LogicalPlan> {
    let mut wanted: Vec<(String, Option<DataType>)> = Vec::new();
    let _ = ast::visit_expressions(statement, |e: &ast::Expr| {
        let (id, ty) = match e {
            ast::Expr::Cast {
                expr, data_type, ..
            } => match expr.as_ref() {
                ast::Expr::Value(v) => match &v.value {
                    Value::Placeholder(id) => (id, arrow_type(data_type)),
                    _ => return ControlFlow::<()>::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            },
            ast::Expr::Value(v) => match &v.value {
                Value::Placeholder(id) => (id, None),
                _ => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        match wanted.iter_mut().find(|(w, _)| w == id) {
            Some((_, slot)) => {
                if slot.is_none() {
                    *slot = ty;
                }
            }
            None => wanted.push((id.clone(), ty)),
        }
        ControlFlow::Continue(())
    });
    let have = plan.get_parameter_types()?;
    let lost: Vec<Expr> = wanted
        .into_iter()
        .filter(|(id, _)| !have.contains_key(id))
        .map(|(id, ty)| {
            let field = ty.map(|t| Arc::new(Field::new(id.clone(), t, true)));
            Expr::Placeholder(Placeholder::new_with_field(id, field)).is_null()
        })
        .collect();
    let Some(any_null) = lost.into_iter().reduce(Expr::or) else {
        return Ok(plan);
    };
    LogicalPlanBuilder::from(plan)
        .filter(any_null.or(datafusion::prelude::lit(true)))?
        .build()
}

/// The Arrow type of a cast's SQL type, for the types drivers cast
/// parameters to; `None` for the rest (the client's type then decides).
fn arrow_type(t: &SqlType) -> Option<DataType> {
    Some(match t {
        SqlType::Varchar(_) | SqlType::Text | SqlType::CharacterVarying(_) | SqlType::String(_) => {
            DataType::Utf8
        }
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Integer(_) | SqlType::Int(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 => DataType::Float64,
        _ => return None,
    })
}

async fn plan(ctx: &SessionContext, statement: Statement) -> PgWireResult<LogicalPlan> {
    ctx.state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))
}

async fn run(ctx: &SessionContext, statement: Statement) -> PgWireResult<Response> {
    let plan = plan(ctx, statement).await?;
    let df = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(Response::Query(
        encode_dataframe(df, &Format::UnifiedText, None).await?,
    ))
}

/// Statements that only need an acknowledgement, answered here:
///
/// * `DEALLOCATE name` drops the protocol-level prepared statement (psycopg
///   and others send it when their statement cache overflows); `DEALLOCATE
///   ALL` (psycopg after a rollback) is acknowledged: pgwire's store cannot
///   list its statements, and a client re-preparing a name replaces it.
/// * `SAVEPOINT`, `RELEASE` and `ROLLBACK TO` (SQLAlchemy's nested
///   transactions): sfsql has no transactions to nest — reads see the org
///   as it is and a write is applied (and recorded) when it runs — so like
///   `BEGIN`/`COMMIT` they are accepted without effect. `ROLLBACK TO` must
///   not end the transaction block, which the transaction hook would do.
fn acknowledge(statement: &Statement, client: &dyn HookClient) -> Option<Response> {
    let tag = match statement {
        Statement::Deallocate { name, .. } => {
            if name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none() {
                "DEALLOCATE ALL"
            } else {
                client.portal_store().rm_statement(&name.value);
                "DEALLOCATE"
            }
        }
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::ReleaseSavepoint { .. } => "RELEASE",
        Statement::Rollback {
            savepoint: Some(_), ..
        } => "ROLLBACK",
        _ => return None,
    };
    Some(Response::Execution(Tag::new(tag)))
}

fn is_acknowledged(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Deallocate { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Rollback {
                savepoint: Some(_),
                ..
            }
    )
}

#[async_trait]
impl QueryHook for CompatHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Some(done) = acknowledge(statement, client) {
            return Some(Ok(done));
        }
        let rewritten = rewrite(statement)?;
        Some(run(session_context, rewritten).await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if is_acknowledged(statement) {
            return Some(described_plan(&Schema::empty()));
        }
        let rewritten = rewrite(statement);
        let has_limit_param = matches!(statement, Statement::Query(q) if q.limit_clause.as_ref().is_some_and(|l| l.to_string().contains('$')));
        if rewritten.is_none() && !has_limit_param {
            return None;
        }
        let planned = plan(
            session_context,
            rewritten.unwrap_or_else(|| statement.clone()),
        )
        .await;
        Some(planned.and_then(|p| {
            type_limit_placeholders(p)
                .and_then(|t| keep_placeholders(t.data, statement))
                .map_err(|e| PgWireError::ApiError(Box::new(e)))
        }))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Rewritten queries run through the default path with the plan
        // made at Parse; only acknowledgements are answered here.
        acknowledge(statement, client).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    fn parse(sql: &str) -> Statement {
        PostgresCompatibilityParser::new()
            .parse(sql)
            .expect("parse")
            .remove(0)
    }

    #[test]
    fn sizes_print_as_postgresql_does() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(1_048_576), "1024 kB");
        assert_eq!(size_pretty(20_971_520), "20 MB");
        assert_eq!(size_pretty(-10_240), "-10 kB");
    }

    #[test]
    fn psql_reloptions_become_null() {
        let s = parse(
            "SELECT c.relkind, pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)",
        );
        let out = rewrite(&s).expect("rewritten").to_string();
        assert!(
            out.contains("NULL::TEXT") && !out.contains("reloptions"),
            "{out}"
        );
    }

    #[test]
    fn to_regtype_is_a_pg_type_lookup() {
        let s = parse("SELECT typname FROM pg_type t WHERE t.oid = to_regtype($1)");
        let out = rewrite(&s).expect("rewritten").to_string();
        assert!(out.contains("t.typname = CAST($1 AS TEXT)"), "{out}");
    }

    #[test]
    fn settings_clients_read_have_postgresql_values() {
        assert_eq!(setting("default_table_access_method").unwrap(), "heap");
        assert_eq!(setting("TimeZone").unwrap(), "UTC");
        let err = setting("no_such_thing").unwrap_err().to_string();
        assert!(
            err.contains("unrecognized configuration parameter"),
            "{err}"
        );
    }

    #[test]
    fn generate_subscripts_becomes_an_unnested_range() {
        let sql =
            "SELECT unnest(i.indkey), generate_subscripts(i.indkey, 1) FROM pg_catalog.pg_index i";
        let out = rewrite(&parse(sql)).expect("rewritten").to_string();
        assert!(
            out.contains("unnest(range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1))"),
            "{out}"
        );
        let two = "SELECT generate_subscripts(i.indkey, 2) FROM pg_catalog.pg_index i";
        assert!(rewrite(&parse(two)).is_none());
    }

    #[test]
    fn expandarray_becomes_a_struct_of_zipped_unnests_read_with_get_field() {
        let sql = "SELECT (information_schema._pg_expandarray(i.indkey)).n AS key_seq, \
                   information_schema._pg_expandarray(i.indkey) AS keys FROM pg_catalog.pg_index i";
        let out = rewrite(&parse(sql)).expect("rewritten").to_string();
        assert!(!out.contains("_pg_expandarray"), "{out}");
        assert!(
            out.contains("get_field(named_struct('x', unnest(i.indkey), 'n', unnest(range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1))), 'n') AS key_seq"),
            "{out}"
        );
        let outer = "SELECT 1 FROM r WHERE r.a_attnum = (r.KEYS).X AND (r.k).\"Y\" = 1";
        let out = rewrite(&parse(outer)).expect("rewritten").to_string();
        assert!(
            out.contains("get_field(r.KEYS, 'x')") && out.contains("get_field(r.k, 'Y')"),
            "{out}"
        );
    }

    #[test]
    fn pgcli_foreign_keys_query_is_known_with_any_spacing() {
        let sent = PGCLI_FOREIGN_KEYS
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            + ";";
        let out = rewrite(&parse(&sent)).expect("known").to_string();
        assert!(out.contains("unnest(confkey) AS parent_attnum"), "{out}");
        assert!(known_query(&parse("SELECT 1")).is_none());
    }

    #[test]
    fn like_escape_becomes_backslash() {
        let s = parse("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg/_%' ESCAPE '/'");
        let out = rewrite(&s).expect("rewritten").to_string();
        assert!(
            out.contains(r"NOT LIKE 'pg\_%'") && !out.contains("ESCAPE"),
            "{out}"
        );
    }

    #[test]
    fn catalog_lookups_become_aggregates_and_keep_their_placeholders() {
        let s = parse(
            "SELECT a.attname, CASE WHEN a.atthasdef THEN (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS e FROM pg_catalog.pg_attrdef d WHERE a.atthasdef AND d.adrelid = a.attrelid) END, CASE WHEN a.attidentity != '' THEN (SELECT json_build_object($1::VARCHAR, s.seqstart) FROM pg_catalog.pg_sequence s WHERE s.seqrelid = a.attrelid) END, 1 + (SELECT count(*) FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid) FROM pg_catalog.pg_attribute a",
        );
        let out = rewrite(&s).expect("rewritten").to_string();
        assert!(
            out.contains("THEN CASE WHEN a.atthasdef THEN (SELECT max(pg_get_expr(d.adbin, d.adrelid)) AS e FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) END")
                && out.contains("SELECT max(json_build_object($1::VARCHAR, s.seqstart))")
                && out.contains("SELECT count(*) FROM"),
            "{out}"
        );
        // A user's subquery keeps PostgreSQL's semantics.
        let user = parse(
            "SELECT a.id, 1 + (SELECT c.age FROM sandbox.contact c WHERE c.id = a.id) FROM sandbox.account a",
        );
        assert!(rewrite(&user).is_none());
    }

    #[test]
    fn ordinary_queries_are_left_alone() {
        assert!(rewrite(&parse("select id from sandbox.contact limit 3")).is_none());
        assert!(rewrite(&parse("update sandbox.contact set email = 'x'")).is_none());
    }

    #[tokio::test]
    async fn placeholders_a_rewrite_dropped_keep_their_slots() {
        let ctx = SessionContext::new();
        let planned = plan(&ctx, parse("select 1 as a where 2 > $3::INTEGER"))
            .await
            .expect("plan");
        let client = parse("select $1::VARCHAR, coalesce((select $2), 1) where 2 > $3::INTEGER");
        let kept = keep_placeholders(planned, &client).expect("kept");
        let types = kept.get_parameter_types().expect("types");
        assert_eq!(types.get("$1"), Some(&Some(DataType::Utf8)));
        assert_eq!(types.get("$2"), Some(&None));
        assert!(types.contains_key("$3"));
        assert_eq!(kept.schema().fields().len(), 1);
    }

    #[tokio::test]
    async fn limit_placeholders_are_bigint() {
        let ctx = SessionContext::new();
        let p = plan(&ctx, parse("select 1 as a limit $1 offset $2"))
            .await
            .expect("plan");
        let typed = type_limit_placeholders(p).expect("typed").data;
        let types = typed.get_parameter_types().expect("types");
        assert_eq!(types.get("$1"), Some(&Some(DataType::Int64)));
        assert_eq!(types.get("$2"), Some(&Some(DataType::Int64)));
    }
}
