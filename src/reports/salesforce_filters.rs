//! WHERE on a Salesforce report's columns as `reportFilters`: each conjunct
//! that has a report filter form is sent with the run, so Salesforce
//! returns fewer rows (and a report over 2,000 rows can fit in one run).
//!
//! Every pushed filter is Inexact: Salesforce's answer is a superset of the
//! rows SQL keeps, and DataFusion applies the WHERE again. Salesforce
//! compares text without case, so text columns push only what stays a
//! superset that way: `=`, `IN`, `LIKE 'abc%'` (`startsWith`), `LIKE
//! '%abc%'` (`contains`), `IS [NOT] NULL`. Numbers and dates push every
//! comparison (`<>`, `<`, `<=`, `>`, `>=`, `NOT IN`, `BETWEEN`), booleans
//! `=`/`<>`. Datetime and time columns push nothing: a report filter reads
//! a datetime in the running user's time zone.

use datafusion::arrow::datatypes::Schema;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;

use crate::salesforce::{ReportColumn, ReportFilter};
use crate::soql;

/// Filters a run takes at most (saved, pushed and the one a read in parts
/// adds), as Salesforce allows.
pub const MAX_FILTERS: usize = 20;

/// How a detail column can be filtered in a run, from its `dataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    /// Compared without case.
    Text,
    /// A record id (15 or 18 characters).
    Id,
    Number,
    Date,
    DateTime,
    Boolean,
    /// Not filtered by sfsql (time, multi-select picklists, compound ...).
    Other,
}

pub fn filter_kind(data_type: &str) -> FilterKind {
    match data_type {
        "string" | "email" | "phone" | "url" | "picklist" | "textarea" | "combobox" => {
            FilterKind::Text
        }
        "id" | "reference" => FilterKind::Id,
        "int" | "double" | "currency" | "percent" => FilterKind::Number,
        "date" => FilterKind::Date,
        "datetime" => FilterKind::DateTime,
        "boolean" => FilterKind::Boolean,
        _ => FilterKind::Other,
    }
}

fn filter(column: &ReportColumn, operator: &str, value: impl Into<String>) -> ReportFilter {
    ReportFilter {
        column: column.api_name.clone(),
        operator: operator.into(),
        value: value.into(),
    }
}

/// The report filters whose rows include every row `expr` keeps, or `None`
/// when it has no such form. `schema` is the table's, parallel to `columns`.
pub fn translate(
    expr: &Expr,
    schema: &Schema,
    columns: &[ReportColumn],
) -> Option<Vec<ReportFilter>> {
    Translator { schema, columns }.filters(expr)
}

struct Translator<'a> {
    schema: &'a Schema,
    columns: &'a [ReportColumn],
}

impl<'a> Translator<'a> {
    fn column(&self, expr: &Expr) -> Option<(&'a ReportColumn, FilterKind)> {
        match expr {
            Expr::Column(c) => {
                let column = self.columns.get(self.schema.index_of(&c.name).ok()?)?;
                Some((column, filter_kind(&column.data_type)))
            }
            // A number cast to another number keeps its order.
            Expr::Cast(cast) if cast.field.data_type().is_numeric() => {
                let (column, kind) = self.column(&cast.expr)?;
                (kind == FilterKind::Number).then_some((column, kind))
            }
            _ => None,
        }
    }

    fn filters(&self, expr: &Expr) -> Option<Vec<ReportFilter>> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => {
                // `x = 'a' OR x = 'b'`: one equals with a list.
                let (l, r) = (self.filters(left)?, self.filters(right)?);
                match (l.as_slice(), r.as_slice()) {
                    ([a], [b])
                        if a.operator == "equals"
                            && b.operator == "equals"
                            && a.column == b.column
                            && !a.value.is_empty()
                            && !b.value.is_empty() =>
                    {
                        Some(vec![ReportFilter {
                            value: format!("{},{}", a.value, b.value),
                            ..a.clone()
                        }])
                    }
                    _ => None,
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, kind, value, op) = match (self.column(left), literal(right)) {
                    (Some((c, k)), Some(v)) => (c, k, v, *op),
                    _ => {
                        let (c, k) = self.column(right)?;
                        (c, k, literal(left)?, op.swap()?)
                    }
                };
                let value = value_of(kind, value)?;
                let operator = match (kind, op) {
                    (_, Operator::Eq) => "equals",
                    (
                        FilterKind::Number | FilterKind::Date | FilterKind::Boolean,
                        Operator::NotEq,
                    ) => "notEqual",
                    (FilterKind::Number | FilterKind::Date, Operator::Lt) => "lessThan",
                    (FilterKind::Number | FilterKind::Date, Operator::LtEq) => "lessOrEqual",
                    (FilterKind::Number | FilterKind::Date, Operator::Gt) => "greaterThan",
                    (FilterKind::Number | FilterKind::Date, Operator::GtEq) => "greaterOrEqual",
                    _ => return None,
                };
                Some(vec![filter(column, operator, value)])
            }
            Expr::InList(in_list) => {
                let (column, kind) = self.column(&in_list.expr)?;
                let values = in_list
                    .list
                    .iter()
                    .map(|item| value_of(kind, literal(item)?))
                    .collect::<Option<Vec<_>>>()?;
                if values.is_empty() {
                    return None;
                }
                let operator = match (in_list.negated, kind) {
                    (false, _) => "equals",
                    (true, FilterKind::Number | FilterKind::Date) => "notEqual",
                    (true, _) => return None,
                };
                Some(vec![filter(column, operator, values.join(","))])
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let (column, kind) = self.column(expr)?;
                if !matches!(kind, FilterKind::Number | FilterKind::Date) {
                    return None;
                }
                Some(vec![
                    filter(column, "greaterOrEqual", value_of(kind, literal(low)?)?),
                    filter(column, "lessOrEqual", value_of(kind, literal(high)?)?),
                ])
            }
            Expr::Like(like) if !like.negated && like.escape_char.is_none() => {
                let (column, kind) = self.column(&like.expr)?;
                if kind != FilterKind::Text {
                    return None;
                }
                let pattern = match literal(&like.pattern)? {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)) => s.as_str(),
                    _ => return None,
                };
                let plain = |s: &str| !s.is_empty() && !s.contains(['%', '_', '\\', ',']);
                if let Some(middle) = pattern
                    .strip_prefix('%')
                    .and_then(|p| p.strip_suffix('%'))
                    .filter(|m| plain(m))
                {
                    return Some(vec![filter(column, "contains", middle)]);
                }
                let prefix = pattern.strip_suffix('%').filter(|p| plain(p))?;
                Some(vec![filter(column, "startsWith", prefix)])
            }
            Expr::IsNull(inner) => {
                let (column, kind) = self.column(inner)?;
                pushes_blanks(kind).then(|| vec![filter(column, "equals", "")])
            }
            Expr::IsNotNull(inner) => {
                let (column, kind) = self.column(inner)?;
                pushes_blanks(kind).then(|| vec![filter(column, "notEqual", "")])
            }
            Expr::Column(_) => {
                let (column, kind) = self.column(expr)?;
                (kind == FilterKind::Boolean).then(|| vec![filter(column, "equals", "true")])
            }
            Expr::Not(inner) => {
                let (column, kind) = self.column(inner)?;
                (kind == FilterKind::Boolean).then(|| vec![filter(column, "equals", "false")])
            }
            _ => None,
        }
    }
}

/// Whether `equals ''` / `notEqual ''` (blank, not blank) are sent for
/// `IS NULL` / `IS NOT NULL`.
fn pushes_blanks(kind: FilterKind) -> bool {
    matches!(
        kind,
        FilterKind::Text | FilterKind::Id | FilterKind::Number | FilterKind::Date
    )
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) if !v.is_null() => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

fn text(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

/// A literal as a filter value of a column of `kind`. Text with a comma
/// has none (`equals` reads a comma as a list), nor does an empty text
/// (it would mean blank).
fn value_of(kind: FilterKind, value: &ScalarValue) -> Option<String> {
    match kind {
        FilterKind::Text => text(value)
            .filter(|s| !s.is_empty() && !s.contains(','))
            .map(str::to_string),
        // Anything else is no id: Salesforce would refuse the filter.
        FilterKind::Id => text(value)
            .filter(|s| matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_string),
        FilterKind::Number => soql::render_number(value),
        FilterKind::Date => soql::render_literal(value, "date"),
        FilterKind::Boolean => match value {
            ScalarValue::Boolean(Some(b)) => Some(b.to_string()),
            _ => None,
        },
        FilterKind::DateTime | FilterKind::Other => None,
    }
}

/// A column's value in a detail row as a filter value (a read in parts
/// sends the last value of one run as the lower bound of the next).
pub fn value_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The column a report over 2,000 rows is read in parts by: the first
/// id column (record ids are unique and never blank), else the first
/// datetime, date or number column; `None` when there is none.
pub fn split_column(columns: &[ReportColumn]) -> Option<usize> {
    [
        FilterKind::Id,
        FilterKind::DateTime,
        FilterKind::Date,
        FilterKind::Number,
    ]
    .iter()
    .find_map(|want| {
        columns
            .iter()
            .position(|c| filter_kind(&c.data_type) == *want)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::prelude::{col, lit};

    fn column(api: &str, data_type: &str) -> ReportColumn {
        ReportColumn {
            api_name: api.into(),
            label: api.into(),
            data_type: data_type.into(),
        }
    }

    fn table() -> (Schema, Vec<ReportColumn>) {
        let columns = vec![
            column("CONTACT.ID", "id"),
            column("EMAIL", "email"),
            column("SCORE", "double"),
            column("QUIZ", "date"),
            column("OPT_OUT", "boolean"),
            column("CREATED", "datetime"),
        ];
        let schema = Schema::new(vec![
            Field::new("contact_id", DataType::Utf8, true),
            Field::new("email", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
            Field::new("quiz", DataType::Date32, true),
            Field::new("opt_out", DataType::Boolean, true),
            Field::new(
                "created",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
                true,
            ),
        ]);
        (schema, columns)
    }

    /// What `expr` sends: `COLUMN operator value` joined by ` & `, or `-`.
    fn shown(expr: &Expr) -> String {
        let (schema, columns) = table();
        translate(expr, &schema, &columns).map_or_else(
            || "-".to_string(),
            |fs| {
                fs.iter()
                    .map(|f| format!("{} {} {}", f.column, f.operator, f.value))
                    .collect::<Vec<_>>()
                    .join(" & ")
            },
        )
    }

    fn check(cases: Vec<(Expr, &str)>) {
        for (expr, want) in cases {
            assert_eq!(shown(&expr).trim_end(), want.trim_end(), "{expr}");
        }
    }

    #[test]
    fn text_pushes_only_what_stays_a_superset_without_case() {
        let email = || col("email");
        check(vec![
            (email().eq(lit("a@x.org")), "EMAIL equals a@x.org"),
            (lit("a@x.org").eq(email()), "EMAIL equals a@x.org"),
            (
                email().in_list(vec![lit("a"), lit("b")], false),
                "EMAIL equals a,b",
            ),
            (
                email().eq(lit("a")).or(email().eq(lit("b"))),
                "EMAIL equals a,b",
            ),
            (email().like(lit("ab%")), "EMAIL startsWith ab"),
            (email().ilike(lit("%ab%")), "EMAIL contains ab"),
            (email().is_null(), "EMAIL equals "),
            (email().is_not_null(), "EMAIL notEqual "),
            // Case-insensitive ranges and notEqual would drop rows SQL keeps.
            (email().not_eq(lit("a")), "-"),
            (email().gt(lit("a")), "-"),
            (email().in_list(vec![lit("a")], true), "-"),
            // A comma would read as a list; wildcards inside have no form.
            (email().eq(lit("a,b")), "-"),
            (email().like(lit("a_b%")), "-"),
            (email().like(lit("a%b")), "-"),
            (email().eq(lit("")), "-"),
            // Mixed columns in an OR have no single filter.
            (
                email()
                    .eq(lit("a"))
                    .or(col("contact_id").eq(lit("003000000000001"))),
                "-",
            ),
            // Ids: equality of well-formed ids only.
            (
                col("contact_id").eq(lit("0035g00000ABCDEAAA")),
                "CONTACT.ID equals 0035g00000ABCDEAAA",
            ),
            (col("contact_id").eq(lit("nope")), "-"),
            (col("contact_id").gt(lit("0035g00000ABCDEAAA")), "-"),
        ]);
    }

    #[test]
    fn numbers_dates_and_booleans_push_every_comparison() {
        let score = || col("score");
        check(vec![
            (score().gt(lit(8.5)), "SCORE greaterThan 8.5"),
            (lit(8).lt(score()), "SCORE greaterThan 8"),
            (score().lt_eq(lit(3)), "SCORE lessOrEqual 3"),
            (score().not_eq(lit(3)), "SCORE notEqual 3"),
            (
                score().in_list(vec![lit(1), lit(2)], true),
                "SCORE notEqual 1,2",
            ),
            (
                score().between(lit(1), lit(2)),
                "SCORE greaterOrEqual 1 & SCORE lessOrEqual 2",
            ),
            (
                col("quiz").gt_eq(lit(ScalarValue::Date32(Some(19_723)))),
                "QUIZ greaterOrEqual 2024-01-01",
            ),
            (col("opt_out"), "OPT_OUT equals true"),
            (!col("opt_out"), "OPT_OUT equals false"),
            (col("opt_out").eq(lit(false)), "OPT_OUT equals false"),
            // Datetimes are read in the user's time zone: never pushed.
            (
                col("created").gt(lit(ScalarValue::TimestampMillisecond(Some(0), None))),
                "-",
            ),
            (score().gt(score()), "-"),
        ]);
    }

    #[test]
    fn the_split_column_is_an_id_else_a_datetime_date_or_number() {
        let (_, columns) = table();
        assert_eq!(split_column(&columns), Some(0));
        assert_eq!(split_column(&columns[1..]), Some(4));
        assert_eq!(
            split_column(&[column("E", "email"), column("S", "int")]),
            Some(1)
        );
        assert_eq!(
            split_column(&[column("E", "email"), column("P", "picklist")]),
            None
        );
        assert_eq!(value_text(&serde_json::json!(2.5)), Some("2.5".into()));
        assert_eq!(value_text(&serde_json::json!("")), None);
        assert_eq!(value_text(&serde_json::Value::Null), None);
    }
}
