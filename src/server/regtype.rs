//! pgcli's function completion reads argument and return types as
//! `proargtypes::regtype[]` and `prorettype::regtype::text`. In
//! datafusion-pg-catalog `regtype` is a bare oid, and `pg_proc`'s oid
//! vectors are text (`2275`, `[2276]`), so neither cast gives type names.
//! [`rewrite_cast`] turns them into `sfsql_regtype_name(oid)` and
//! `sfsql_regtype_names(vector)`, which answer PostgreSQL's names (`text`,
//! `integer`, `character varying`, `anyelement`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, Int32Array, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, Volatility, create_udf,
};
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::format_type::create_format_type_udf;

const NAMES: &str = "sfsql_regtype_names";
const NAME: &str = "sfsql_regtype_name";

/// `x::regtype::text` → `sfsql_regtype_name(x)`; `x::regtype[]` →
/// `sfsql_regtype_names(x)`. `None` for every other expression.
pub fn rewrite_cast(expr: &ast::Expr) -> Option<ast::Expr> {
    let ast::Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return None;
    };
    let target = data_type.to_string().to_ascii_lowercase();
    let sql = if target == "regtype[]" {
        format!("{NAMES}({inner})")
    } else if matches!(target.as_str(), "text" | "varchar" | "character varying")
        && let ast::Expr::Cast {
            expr: oid,
            data_type: inner_type,
            ..
        } = inner.as_ref()
        && inner_type.to_string().eq_ignore_ascii_case("regtype")
    {
        format!("{NAME}({oid})")
    } else {
        return None;
    };
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

fn names_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// `sfsql_regtype_name(oid)`: the type's name, as `oid::regtype::text`.
pub fn name_udf() -> ScalarUDF {
    create_udf(
        NAME,
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let oids = match arrays.first() {
                Some(a) => cast(a, &DataType::Int32)?,
                None => Arc::new(Int32Array::new_null(1)),
            };
            let oids = oids
                .as_any()
                .downcast_ref::<Int32Array>()
                .cloned()
                .unwrap_or_else(|| Int32Array::new_null(oids.len()));
            let valid: Vec<i32> = oids.iter().flatten().collect();
            let names = type_names(&valid)?;
            let mut next = 0;
            let out: StringArray = oids
                .iter()
                .map(|oid| {
                    oid.map(|_| {
                        next += 1;
                        names.value(next - 1).to_string()
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// `sfsql_regtype_names(oid vector as text)`: the type names, in order;
/// NULL for NULL.
pub fn names_udf() -> ScalarUDF {
    create_udf(
        NAMES,
        vec![DataType::Utf8],
        names_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let Some(vectors) = arrays.first() else {
                return Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from(&names_type())?,
                ));
            };
            let vectors = cast(vectors, &DataType::Utf8)?;
            let vectors = vectors
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::new_null(vectors.len()));
            let mut out = ListBuilder::new(StringBuilder::new());
            for vector in vectors.iter() {
                match vector {
                    Some(text) => {
                        for name in type_names(&oids(text))?.iter() {
                            out.values().append_option(name);
                        }
                        out.append(true);
                    }
                    None => out.append(false),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// The oids of `2275`, `25 25` or `[2276, 25]`.
fn oids(text: &str) -> Vec<i32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// `pg_type`'s names by oid, read once from datafusion-pg-catalog's
/// static tables.
fn typnames() -> &'static HashMap<i32, String> {
    static NAMES: OnceLock<HashMap<i32, String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashMap::new();
        let Ok(table) = PgCatalogStaticTables::try_new()
            .and_then(|statics| statics.pg_type.try_into_memtable())
        else {
            return names;
        };
        for partition in &table.batches {
            let Ok(batches) = partition.try_read() else {
                continue;
            };
            for batch in batches.iter() {
                let (Some(oid), Some(name)) = (
                    batch
                        .column_by_name("oid")
                        .and_then(|c| c.as_any().downcast_ref::<Int32Array>()),
                    batch
                        .column_by_name("typname")
                        .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
                ) else {
                    continue;
                };
                for i in 0..batch.num_rows() {
                    if oid.is_valid(i) && name.is_valid(i) {
                        names.insert(oid.value(i), name.value(i).to_string());
                    }
                }
            }
        }
        names
    })
}

/// PostgreSQL's names of `oids`: `format_type`'s (`integer`, `character
/// varying`), else `pg_type.typname` (`anyelement`), as `regtype` prints.
fn type_names(oids: &[i32]) -> Result<StringArray> {
    let formatted = formatted_names(oids)?;
    Ok(oids
        .iter()
        .enumerate()
        .map(|(i, oid)| {
            let name = formatted.is_valid(i).then(|| formatted.value(i));
            match name {
                Some(n) if !n.starts_with("oid(") => Some(n.to_string()),
                _ => Some(
                    typnames()
                        .get(oid)
                        .cloned()
                        .unwrap_or_else(|| oid.to_string()),
                ),
            }
        })
        .collect())
}

/// datafusion-pg-catalog's `format_type(oid, NULL)` of each of `oids`.
fn formatted_names(oids: &[i32]) -> Result<StringArray> {
    let format_type = create_format_type_udf();
    let args = vec![
        ColumnarValue::Array(Arc::new(Int32Array::from(oids.to_vec()))),
        ColumnarValue::Array(Arc::new(Int32Array::new_null(oids.len()))),
    ];
    let arg_fields = vec![
        Arc::new(Field::new("oid", DataType::Int32, true)),
        Arc::new(Field::new("typemod", DataType::Int32, true)),
    ];
    let names = format_type.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: oids.len(),
        return_field: Arc::new(Field::new("format_type", DataType::Utf8, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })?;
    let names = names.into_array(oids.len())?;
    Ok(names
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::new_null(oids.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(sql: &str) -> ast::Expr {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .unwrap()
    }

    #[test]
    fn regtype_casts_become_type_name_functions() {
        let array = rewrite_cast(&expr("proargtypes::regtype[]")).unwrap();
        assert_eq!(array.to_string(), "sfsql_regtype_names(proargtypes)");
        let text = rewrite_cast(&expr("prorettype::regtype::text")).unwrap();
        assert_eq!(text.to_string(), "sfsql_regtype_name(prorettype)");
        assert!(rewrite_cast(&expr("prorettype::regtype")).is_none());
        assert!(rewrite_cast(&expr("x::text")).is_none());
    }

    #[test]
    fn oid_vectors_name_their_types() {
        assert_eq!(oids("[2276, 25]"), vec![2276, 25]);
        let names = type_names(&oids("25 23")).unwrap();
        assert_eq!(names.value(0), "text");
        assert_eq!(names.value(1), "integer");
        let polymorphic = type_names(&[2283]).unwrap();
        assert_eq!(polymorphic.value(0), "anyelement");
    }
}
