//! Pure translation of DataFusion filter expressions to SOQL, literal
//! escaping, and splitting long `IN` lists into statements that respect
//! SOQL's and the URI's length limits. No I/O.
//!
//! One function decides both *whether* a filter can be pushed and *what* is
//! sent: [`translate_filter`] drives `supports_filters_pushdown` and the scan.
//!
//! Exactness: SOQL compares text case-insensitively and its null handling
//! differs from SQL's, so a translation is `exact` only when Salesforce
//! returns precisely the rows SQL would keep. Otherwise it is a *superset*
//! (DataFusion re-applies the filter), and a translation that could drop a
//! row SQL would keep is never produced.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveTime};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

/// What the translator needs to know about one column.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    /// The API name as Salesforce spells it (`WM_NPS_Score__c`).
    pub api_name: String,
    /// Salesforce's field type (`string`, `double`, `datetime`, ...).
    pub sf_type: String,
    pub filterable: bool,
    /// Describe's `sortable`: the field may appear in ORDER BY.
    pub sortable: bool,
}

impl FieldInfo {
    fn is_text(&self) -> bool {
        is_text_type(&self.sf_type)
    }
}

/// One SOQL ORDER BY item for a sort that DataFusion also applies, or
/// `None` when sending it could make `ORDER BY ... LIMIT` return rows other
/// than SQL's first ones. Only numbers, dates and datetimes qualify: SOQL
/// orders text case-insensitively (SQL compares bytes), so its first rows
/// by a text field are not SQL's. Nulls are placed as SQL places them.
pub fn sort_item(field: &FieldInfo, descending: bool, nulls_first: bool) -> Option<String> {
    let orderable = matches!(
        field.sf_type.as_str(),
        "int" | "long" | "double" | "currency" | "percent" | "date" | "datetime" | "time"
    );
    (field.sortable && orderable).then(|| {
        format!(
            "{} {} NULLS {}",
            field.api_name,
            if descending { "DESC" } else { "ASC" },
            if nulls_first { "FIRST" } else { "LAST" }
        )
    })
}

/// Salesforce types whose values are text and compare case-insensitively.
pub fn is_text_type(sf_type: &str) -> bool {
    matches!(
        sf_type,
        "id" | "reference"
            | "string"
            | "textarea"
            | "email"
            | "phone"
            | "url"
            | "picklist"
            | "multipicklist"
            | "combobox"
            | "encryptedstring"
    )
}

/// A translated condition. A top-level `IN` list stays structured so the
/// scan can split it over several statements.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Text(String),
    InList { field: String, values: Vec<String> },
}

impl Condition {
    pub fn render(&self) -> String {
        match self {
            Condition::Text(t) => t.clone(),
            Condition::InList { field, values } => format!("{field} IN ({})", values.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub condition: Condition,
    /// True when SOQL returns exactly the rows the SQL filter keeps.
    pub exact: bool,
}

/// Translate one filter, or `None` when no safe SOQL form exists.
pub fn translate_filter(
    expr: &Expr,
    lookup: &dyn Fn(&str) -> Option<FieldInfo>,
) -> Option<Translated> {
    Translator { lookup }.filter(expr)
}

struct Translator<'a> {
    lookup: &'a dyn Fn(&str) -> Option<FieldInfo>,
}

/// A column reference, possibly under `lower()`/`upper()` or a cast.
struct FieldRef {
    info: FieldInfo,
    case_folded: bool,
}

impl Translator<'_> {
    fn text(&self, expr: &Expr) -> Option<(String, bool)> {
        self.filter(expr).map(|t| (t.condition.render(), t.exact))
    }

    fn filter(&self, expr: &Expr) -> Option<Translated> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => {
                    let l = self.text(left);
                    let r = self.text(right);
                    match (l, r) {
                        (Some((l, le)), Some((r, re))) => {
                            Some(text(format!("({l} AND {r})"), le && re))
                        }
                        // Dropping one side of an AND keeps a superset.
                        (Some((one, _)), None) | (None, Some((one, _))) => Some(text(one, false)),
                        (None, None) => None,
                    }
                }
                Operator::Or => {
                    let (l, le) = self.text(left)?;
                    let (r, re) = self.text(right)?;
                    Some(text(format!("({l} OR {r})"), le && re))
                }
                _ => self.comparison(left, *op, right),
            },
            Expr::Not(inner) => {
                if let Some(field) = self.field(inner) {
                    // `NOT bool_col`: SOQL would also return nulls; superset.
                    return (field.info.sf_type == "boolean")
                        .then(|| text(format!("{} = false", field.info.api_name), false));
                }
                let (inner, exact) = self.text(inner)?;
                // NOT of a superset could drop rows SQL keeps.
                exact.then(|| text(format!("(NOT {inner})"), false))
            }
            Expr::IsNull(inner) => {
                let f = self.field(inner)?;
                Some(text(format!("{} = null", f.info.api_name), true))
            }
            Expr::IsNotNull(inner) => {
                let f = self.field(inner)?;
                Some(text(format!("{} != null", f.info.api_name), true))
            }
            Expr::Column(_) => {
                let f = self.field(expr)?;
                (f.info.sf_type == "boolean")
                    .then(|| text(format!("{} = true", f.info.api_name), true))
            }
            Expr::InList(in_list) => {
                let f = self.field(&in_list.expr)?;
                if f.info.sf_type == "multipicklist" {
                    return None;
                }
                let text_field = f.info.is_text();
                let mut seen = HashSet::new();
                let mut values = Vec::with_capacity(in_list.list.len());
                for item in &in_list.list {
                    let lit = literal_of(item)?;
                    if lit.is_null() {
                        // `x IN (NULL, ...)` never matches through the NULL.
                        continue;
                    }
                    let rendered = render_literal(lit, &f.info.sf_type)?;
                    // SOQL matches text case-insensitively: one value per fold,
                    // or split statements would return a record twice.
                    let key = if text_field {
                        rendered.to_lowercase()
                    } else {
                        rendered.clone()
                    };
                    if seen.insert(key) {
                        values.push(rendered);
                    }
                }
                if values.is_empty() {
                    return None;
                }
                if in_list.negated {
                    // Case-insensitive NOT IN drops rows SQL keeps.
                    if text_field || f.case_folded {
                        return None;
                    }
                    return Some(text(
                        format!("{} NOT IN ({})", f.info.api_name, values.join(", ")),
                        false,
                    ));
                }
                Some(Translated {
                    condition: Condition::InList {
                        field: f.info.api_name.clone(),
                        values,
                    },
                    exact: !text_field && !f.case_folded,
                })
            }
            Expr::Like(like) => {
                if like.negated || like.escape_char.is_some() {
                    return None;
                }
                let f = self.field(&like.expr)?;
                // SOQL has no LIKE on multi-select picklists (only =,
                // INCLUDES and EXCLUDES).
                if !f.info.is_text() || f.info.sf_type == "multipicklist" {
                    return None;
                }
                let pattern = match literal_of(&like.pattern)? {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)) => s,
                    _ => return None,
                };
                // SQL's default escape is backslash; SOQL's LIKE escapes
                // differ, so leave such patterns to DataFusion.
                if pattern.contains('\\') {
                    return None;
                }
                Some(text(
                    format!("{} LIKE {}", f.info.api_name, quote_string(pattern)),
                    false,
                ))
            }
            _ => None,
        }
    }

    fn comparison(&self, left: &Expr, op: Operator, right: &Expr) -> Option<Translated> {
        let (field, lit, op) = if let Some(f) = self.field(left) {
            (f, literal_of(right)?, op)
        } else {
            (self.field(right)?, literal_of(left)?, op.swap()?)
        };
        if lit.is_null() {
            return None;
        }
        let text_field = field.info.is_text();
        let soql_op = match op {
            Operator::Eq => "=",
            Operator::NotEq => {
                if text_field || field.case_folded {
                    return None;
                }
                "!="
            }
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq if text_field => {
                return None;
            }
            Operator::Lt => "<",
            Operator::LtEq => "<=",
            Operator::Gt => ">",
            Operator::GtEq => ">=",
            _ => return None,
        };
        let value = render_literal(lit, &field.info.sf_type)?;
        // Text equality is case-insensitive in SOQL; `!=` also returns nulls.
        let exact = !text_field && !field.case_folded && op != Operator::NotEq;
        Some(text(
            format!("{} {soql_op} {value}", field.info.api_name),
            exact,
        ))
    }

    fn field(&self, expr: &Expr) -> Option<FieldRef> {
        match expr {
            Expr::Column(c) => {
                let info = (self.lookup)(&c.name)?;
                info.filterable.then_some(FieldRef {
                    info,
                    case_folded: false,
                })
            }
            Expr::Cast(cast) if is_string_type(cast.field.data_type()) => {
                let f = self.field(&cast.expr)?;
                f.info.is_text().then_some(f)
            }
            Expr::TryCast(cast) if is_string_type(cast.field.data_type()) => {
                let f = self.field(&cast.expr)?;
                f.info.is_text().then_some(f)
            }
            Expr::ScalarFunction(func)
                if matches!(func.func.name(), "lower" | "upper") && func.args.len() == 1 =>
            {
                let mut f = self.field(&func.args[0])?;
                if !f.info.is_text() {
                    return None;
                }
                f.case_folded = true;
                Some(f)
            }
            _ => None,
        }
    }
}

fn text(s: String, exact: bool) -> Translated {
    Translated {
        condition: Condition::Text(s),
        exact,
    }
}

fn is_string_type(t: &datafusion::arrow::datatypes::DataType) -> bool {
    use datafusion::arrow::datatypes::DataType;
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

fn literal_of(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal_of(&c.expr),
        Expr::TryCast(c) => literal_of(&c.expr),
        _ => None,
    }
}

/// Quote a string as a SOQL literal. Every character that could end the
/// literal or change its meaning is escaped, so user data cannot alter the
/// statement.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Render a literal for a field of Salesforce type `sf_type`, or `None`
/// when the pair has no SOQL form.
pub fn render_literal(value: &ScalarValue, sf_type: &str) -> Option<String> {
    let as_str = match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.as_str()),
        _ => None,
    };
    match sf_type {
        t if is_text_type(t) => as_str.map(quote_string),
        "boolean" => match value {
            ScalarValue::Boolean(Some(b)) => Some(b.to_string()),
            _ => None,
        },
        "int" | "long" | "double" | "currency" | "percent" => render_number(value),
        "date" => match value {
            ScalarValue::Date32(Some(days)) => {
                let d = NaiveDate::from_num_days_from_ce_opt(719_163 + *days)?;
                Some(d.format("%Y-%m-%d").to_string())
            }
            _ => as_str
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .map(|d| d.format("%Y-%m-%d").to_string()),
        },
        "datetime" => {
            let nanos: i64 = match value {
                ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000)?,
                ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000)?,
                ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000)?,
                ScalarValue::TimestampNanosecond(Some(v), _) => *v,
                _ => return None,
            };
            // SOQL's datetime literals have whole seconds; a fraction has
            // no exact SOQL form, so such a filter stays with DataFusion.
            if nanos.rem_euclid(1_000_000_000) != 0 {
                return None;
            }
            let dt = DateTime::from_timestamp_nanos(nanos);
            Some(dt.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
        // A time literal is the time part of a datetime literal, unquoted,
        // with milliseconds and a zone: `08:00:00.000Z`.
        "time" => {
            let nanos: i64 = match value {
                ScalarValue::Time32Second(Some(v)) => i64::from(*v) * 1_000_000_000,
                ScalarValue::Time32Millisecond(Some(v)) => i64::from(*v) * 1_000_000,
                ScalarValue::Time64Microsecond(Some(v)) => v.checked_mul(1_000)?,
                ScalarValue::Time64Nanosecond(Some(v)) => *v,
                _ => return None,
            };
            // Salesforce keeps milliseconds: a finer time has no exact SOQL form.
            if nanos.rem_euclid(1_000_000) != 0 {
                return None;
            }
            let t = NaiveTime::from_num_seconds_from_midnight_opt(
                u32::try_from(nanos / 1_000_000_000).ok()?,
                u32::try_from(nanos % 1_000_000_000).ok()?,
            )?;
            Some(t.format("%H:%M:%S%.3fZ").to_string())
        }
        _ => None,
    }
}

/// A number as SOQL writes it (report filter values too).
pub fn render_number(value: &ScalarValue) -> Option<String> {
    Some(match value {
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::UInt8(Some(v)) => v.to_string(),
        ScalarValue::UInt16(Some(v)) => v.to_string(),
        ScalarValue::UInt32(Some(v)) => v.to_string(),
        ScalarValue::UInt64(Some(v)) => v.to_string(),
        ScalarValue::Float32(Some(v)) if v.is_finite() => format_float(f64::from(*v)),
        ScalarValue::Float64(Some(v)) if v.is_finite() => format_float(*v),
        ScalarValue::Decimal128(Some(_), _, _) => value.to_string(),
        _ => return None,
    })
}

fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The condition that fetches the records whose field matches one of a
/// join's keys: `Some(Some(field IN (...)))`, `Some(None)` when there are
/// no keys (nothing to fetch), or `None` when a key has no SOQL form for
/// this field (the caller then scans). Nulls never match a join key.
/// Text keys are deduplicated case-insensitively, as SOQL compares them.
pub fn key_condition(field: &FieldInfo, keys: &[ScalarValue]) -> Option<Option<Condition>> {
    if field.sf_type == "multipicklist" {
        return None;
    }
    let mut seen = HashSet::new();
    let mut values = Vec::with_capacity(keys.len());
    for key in keys.iter().filter(|k| !k.is_null()) {
        let rendered = render_literal(key, &field.sf_type)?;
        let fold = if field.is_text() {
            rendered.to_lowercase()
        } else {
            rendered.clone()
        };
        if seen.insert(fold) {
            values.push(rendered);
        }
    }
    Some((!values.is_empty()).then(|| Condition::InList {
        field: field.api_name.clone(),
        values,
    }))
}

/// The longest URL-encoded SOQL statement sfsql sends in one GET: the URI
/// and headers together must stay under 16,384 bytes.
pub const MAX_ENCODED_STATEMENT: usize = 12_000;

/// The longest SOQL statement Salesforce accepts, in characters. A key
/// lookup too long for one GET goes in the body of a composite request,
/// where only this limit applies.
pub const MAX_SOQL_CHARS: usize = 100_000;

/// How long the statements of one scan may be, and how many `IN` values
/// each may hold.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The longest statement, as `measure` counts it.
    pub max: usize,
    pub measure: fn(&str) -> usize,
    /// At most this many values of the split `IN` list per statement.
    pub max_values: usize,
}

impl Budget {
    /// A statement sent as the URI of one GET.
    pub const URI: Budget = Budget {
        max: MAX_ENCODED_STATEMENT,
        measure: encoded_len,
        max_values: usize::MAX,
    };

    /// Key-lookup statements sent in a composite request: up to 100,000
    /// characters, and about one full page of records each (`keys` values,
    /// ~one record per key), so that five of them answer in one call.
    pub fn composite(keys: usize) -> Budget {
        Budget {
            max: MAX_SOQL_CHARS,
            measure: char_len,
            max_values: keys.max(1),
        }
    }
}

/// Build the SELECT statements for one scan. Conditions are ANDed; when the
/// statement would be too long, the largest top-level `IN` list is split
/// across several statements whose results are disjoint (each keeps the
/// ORDER BY and LIMIT: the first rows overall are among each one's first
/// rows, and DataFusion sorts and limits their union again). No fields
/// means `SELECT COUNT()`.
pub fn build_statements(
    fields: &[String],
    sobject: &str,
    conditions: &[Condition],
    order_by: &[String],
    limit: Option<usize>,
    max_encoded: usize,
) -> Result<Vec<String>, String> {
    let budget = Budget {
        max: max_encoded,
        ..Budget::URI
    };
    split_statements(fields, sobject, conditions, order_by, limit, budget)
}

/// [`build_statements`] under any [`Budget`]. The split list is shared out
/// evenly: as few statements as the budget allows, each holding about the
/// same number of values (so their pages are about equally full).
pub fn split_statements(
    fields: &[String],
    sobject: &str,
    conditions: &[Condition],
    order_by: &[String],
    limit: Option<usize>,
    budget: Budget,
) -> Result<Vec<String>, String> {
    let measure = budget.measure;
    let max = budget.max;
    let field_list = if fields.is_empty() {
        "COUNT()".to_string()
    } else {
        fields.join(", ")
    };
    let select = format!("SELECT {field_list} FROM {sobject}");
    let mut tail = String::new();
    if !order_by.is_empty() {
        tail = format!(" ORDER BY {}", order_by.join(", "));
    }
    if let Some(n) = limit {
        tail.push_str(&format!(" LIMIT {n}"));
    }
    let compose = |conds: &[String]| -> String {
        if conds.is_empty() {
            format!("{select}{tail}")
        } else {
            format!("{select} WHERE {}{tail}", conds.join(" AND "))
        }
    };
    let rendered: Vec<String> = conditions.iter().map(Condition::render).collect();
    let whole = compose(&rendered);
    let in_lists = || {
        conditions.iter().enumerate().filter_map(|(i, c)| match c {
            Condition::InList { values, .. } => Some((i, values.len())),
            _ => None,
        })
    };
    let too_many = in_lists().any(|(_, n)| n > budget.max_values);
    if measure(&whole) <= max && !too_many {
        return Ok(vec![whole]);
    }
    let split_at = in_lists()
        .max_by_key(|(i, n)| (*n > budget.max_values, rendered[*i].len()))
        .map(|(i, _)| i);
    let Some(split_at) = split_at else {
        return Err(format!(
            "the SOQL filter is {} characters long, over the {max}-character limit",
            measure(&whole)
        ));
    };
    let Condition::InList { field, values } = &conditions[split_at] else {
        unreachable!("split_at points at an IN list")
    };
    let mut others = rendered.clone();
    others.remove(split_at);
    let base_len = measure(&compose(&others)) + measure(&format!(" AND {field} IN ()"));
    if base_len >= max {
        return Err("the SOQL filter is too long even with one key per statement".into());
    }
    let chunks = chunk_values(values, max - base_len, measure, budget.max_values);
    Ok(chunks
        .iter()
        .map(|chunk| chunk_statement(&compose, &others, field, chunk))
        .collect())
}

/// Split `values` into as few chunks as fit `budget` (joined by `, `) and
/// `max_values`, then even them out: every chunk gets at most the average
/// count, rounded up, so no statement is left with a handful of keys.
fn chunk_values(
    values: &[String],
    budget: usize,
    measure: fn(&str) -> usize,
    max_values: usize,
) -> Vec<Vec<&str>> {
    let greedy = |cap: usize| {
        let comma = measure(", ");
        let mut chunks: Vec<Vec<&str>> = Vec::new();
        let mut chunk: Vec<&str> = Vec::new();
        let mut used = 0;
        for value in values {
            let cost = measure(value) + if chunk.is_empty() { 0 } else { comma };
            if !chunk.is_empty() && (used + cost > budget || chunk.len() >= cap) {
                chunks.push(std::mem::take(&mut chunk));
                used = 0;
            }
            used += measure(value) + if chunk.is_empty() { 0 } else { comma };
            chunk.push(value);
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        chunks
    };
    let first = greedy(max_values);
    if first.len() <= 1 {
        return first;
    }
    let even = greedy(values.len().div_ceil(first.len()));
    // Values of very different lengths can make the even split need a
    // statement more: then the greedy one stands.
    if even.len() <= first.len() {
        even
    } else {
        first
    }
}

fn chunk_statement(
    compose: &dyn Fn(&[String]) -> String,
    others: &[String],
    field: &str,
    chunk: &[&str],
) -> String {
    let mut conds = others.to_vec();
    conds.push(format!("{field} IN ({})", chunk.join(", ")));
    compose(&conds)
}

/// Length of `s` in characters, as Salesforce counts a statement's.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Length of `s` once form-URL-encoded into the `q=` parameter.
pub fn encoded_len(s: &str) -> usize {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .map(str::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::lower;

    fn lookup(name: &str) -> Option<FieldInfo> {
        let (api, ty) = match name {
            "email" => ("Email", "email"),
            "wm_nps_score__c" => ("WM_NPS_Score__c", "double"),
            "hasoptedoutofemail" => ("HasOptedOutOfEmail", "boolean"),
            "birthdate" => ("Birthdate", "date"),
            "description" => ("Description", "textarea"),
            "wm_tags__c" => ("WM_Tags__c", "multipicklist"),
            "wm_opens_at__c" => ("WM_Opens_At__c", "time"),
            "wm_page_views__c" => ("WM_Page_Views__c", "long"),
            _ => return None,
        };
        Some(FieldInfo {
            api_name: api.into(),
            sf_type: ty.into(),
            filterable: name != "description",
            sortable: name != "description",
        })
    }

    fn tr(e: Expr) -> Option<(String, bool)> {
        translate_filter(&e, &lookup).map(|t| (t.condition.render(), t.exact))
    }

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quote_string("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote_string(r"a\b"), r"'a\\b'");
        assert_eq!(quote_string("line1\nline2\r\t"), r"'line1\nline2\r\t'");
        assert_eq!(quote_string("say \"hi\""), r#"'say \"hi\"'"#);
    }

    #[test]
    fn injection_stays_inside_the_literal() {
        let evil = "x' OR Email != null OR Email = '";
        let (soql, _) = tr(col("email").eq(lit(evil))).unwrap();
        assert_eq!(soql, r"Email = 'x\' OR Email != null OR Email = \''");
        // A backslash before the quote cannot unescape it either.
        let evil = r"x\' OR Id != null --";
        let (soql, _) = tr(col("email").eq(lit(evil))).unwrap();
        assert_eq!(soql, r"Email = 'x\\\' OR Id != null --'");
    }

    #[test]
    fn exactness_follows_soql_semantics() {
        assert_eq!(
            tr(col("wm_nps_score__c").gt(lit(5.0))),
            Some(("WM_NPS_Score__c > 5".into(), true))
        );
        // text equality is case-insensitive in SOQL: a superset only
        assert_eq!(
            tr(col("email").eq(lit("a@x.com"))),
            Some(("Email = 'a@x.com'".into(), false))
        );
        // case-insensitive != would drop rows SQL keeps
        assert_eq!(tr(col("email").not_eq(lit("a@x.com"))), None);
        assert_eq!(tr(col("email").lt(lit("b"))), None);
        assert_eq!(
            tr(lower(col("email")).eq(lit("a@x.com"))),
            Some(("Email = 'a@x.com'".into(), false))
        );
        assert_eq!(
            tr(col("email").is_null()),
            Some(("Email = null".into(), true))
        );
        assert_eq!(
            tr(col("hasoptedoutofemail")),
            Some(("HasOptedOutOfEmail = true".into(), true))
        );
        // not filterable
        assert_eq!(tr(col("description").eq(lit("x"))), None);
        // literal on the left
        assert_eq!(
            tr(lit(3i64).lt(col("wm_nps_score__c"))),
            Some(("WM_NPS_Score__c > 3".into(), true))
        );
    }

    #[test]
    fn and_keeps_the_translatable_side_or_needs_both() {
        let e = col("wm_nps_score__c")
            .gt(lit(1))
            .and(col("description").eq(lit("x")));
        assert_eq!(tr(e), Some(("WM_NPS_Score__c > 1".into(), false)));
        let e = col("wm_nps_score__c")
            .gt(lit(1))
            .or(col("description").eq(lit("x")));
        assert_eq!(tr(e), None);
        let e = col("wm_nps_score__c")
            .gt(lit(1))
            .or(col("wm_nps_score__c").lt(lit(0)));
        assert_eq!(
            tr(e),
            Some(("(WM_NPS_Score__c > 1 OR WM_NPS_Score__c < 0)".into(), true))
        );
    }

    #[test]
    fn in_lists_dedupe_case_insensitively() {
        let e = lower(col("email"))
            .in_list(vec![lit("a@x.com"), lit("A@X.com"), lit("b@x.com")], false);
        let t = translate_filter(&e, &lookup).unwrap();
        assert_eq!(
            t.condition,
            Condition::InList {
                field: "Email".into(),
                values: vec!["'a@x.com'".into(), "'b@x.com'".into()]
            }
        );
        assert!(!t.exact);
        assert_eq!(tr(col("email").in_list(vec![lit("a")], true)), None);
    }

    #[test]
    fn not_is_pushed_only_over_an_exact_condition() {
        // SOQL's `= false` also returns nulls that SQL's NOT drops.
        assert_eq!(
            tr(Expr::Not(Box::new(col("hasoptedoutofemail")))),
            Some(("HasOptedOutOfEmail = false".into(), false))
        );
        assert_eq!(
            tr(Expr::Not(Box::new(col("wm_nps_score__c").gt_eq(lit(9))))),
            Some(("(NOT WM_NPS_Score__c >= 9)".into(), false))
        );
        // NOT of a superset (case-insensitive text, a dropped AND side)
        // could drop rows SQL keeps.
        assert_eq!(
            tr(Expr::Not(Box::new(col("email").eq(lit("a@x.com"))))),
            None
        );
        let partial = col("wm_nps_score__c")
            .gt(lit(1))
            .and(col("description").eq(lit("x")));
        assert_eq!(tr(Expr::Not(Box::new(partial))), None);
        assert_eq!(tr(Expr::Not(Box::new(col("email")))), None);
        assert_eq!(
            tr(col("wm_nps_score__c").in_list(vec![lit(9), lit(10)], true)),
            Some(("WM_NPS_Score__c NOT IN (9, 10)".into(), false))
        );
        assert_eq!(
            tr(col("email").is_not_null()),
            Some(("Email != null".into(), true))
        );
    }

    #[test]
    fn casts_to_text_around_a_text_key_are_seen_through() {
        use datafusion::arrow::datatypes::DataType;
        use datafusion::logical_expr::{cast, try_cast};
        // DataFusion casts a Utf8 key to a report's Utf8View to compare them.
        assert_eq!(
            tr(cast(col("email"), DataType::Utf8View).eq(lit("a@x.com"))),
            Some(("Email = 'a@x.com'".into(), false))
        );
        assert_eq!(
            tr(lower(try_cast(col("email"), DataType::LargeUtf8))
                .in_list(vec![lit("a@x.com"), lit("b@x.com")], false)),
            Some(("Email IN ('a@x.com', 'b@x.com')".into(), false))
        );
        // A number shown as text compares as text in SQL, not in SOQL.
        assert_eq!(
            tr(cast(col("wm_nps_score__c"), DataType::Utf8).eq(lit("9"))),
            None
        );
        // A cast to something other than text is not a key.
        assert_eq!(tr(cast(col("email"), DataType::Int64).eq(lit(1i64))), None);
    }

    #[test]
    fn like_and_dates() {
        assert_eq!(
            tr(col("email").like(lit("a%"))),
            Some(("Email LIKE 'a%'".into(), false))
        );
        let d = ScalarValue::Date32(Some(19_000));
        assert_eq!(render_literal(&d, "date").as_deref(), Some("2022-01-08"));
        let ts = ScalarValue::TimestampMillisecond(Some(1_445_262_695_000), Some("UTC".into()));
        assert_eq!(
            render_literal(&ts, "datetime").as_deref(),
            Some("2015-10-19T13:51:35Z")
        );
        // SOQL has no fractional seconds: not pushed.
        let ms = ScalarValue::TimestampMillisecond(Some(1_445_262_695_500), None);
        assert_eq!(render_literal(&ms, "datetime"), None);
        let before_1970 = ScalarValue::TimestampSecond(Some(-86_400), None);
        assert_eq!(
            render_literal(&before_1970, "datetime").as_deref(),
            Some("1969-12-31T00:00:00Z")
        );
    }

    #[test]
    fn times_and_longs_are_pushed_exactly() {
        let eight = ScalarValue::Time64Nanosecond(Some(8 * 3_600_000_000_000));
        assert_eq!(
            tr(col("wm_opens_at__c").gt(Expr::Literal(eight, None))),
            Some(("WM_Opens_At__c > 08:00:00.000Z".into(), true))
        );
        let half =
            ScalarValue::Time64Microsecond(Some(9 * 3_600_000_000 + 30 * 60_000_000 + 250_000));
        assert_eq!(
            render_literal(&half, "time").as_deref(),
            Some("09:30:00.250Z")
        );
        // Salesforce keeps milliseconds: a microsecond has no SOQL form.
        let fine = ScalarValue::Time64Microsecond(Some(1));
        assert_eq!(render_literal(&fine, "time"), None);
        assert_eq!(
            tr(col("wm_page_views__c").gt_eq(lit(5_000_000_000i64))),
            Some(("WM_Page_Views__c >= 5000000000".into(), true))
        );
    }

    #[test]
    fn multi_select_picklists_take_equality_only() {
        assert_eq!(
            tr(col("wm_tags__c").eq(lit("Partner"))),
            Some(("WM_Tags__c = 'Partner'".into(), false))
        );
        assert_eq!(tr(col("wm_tags__c").like(lit("%Partner%"))), None);
        assert_eq!(tr(col("wm_tags__c").in_list(vec![lit("a")], false)), None);
    }

    #[test]
    fn only_numbers_and_dates_sort_in_soql() {
        let score = lookup("wm_nps_score__c").unwrap();
        assert_eq!(
            sort_item(&score, true, true).as_deref(),
            Some("WM_NPS_Score__c DESC NULLS FIRST")
        );
        let birthdate = lookup("birthdate").unwrap();
        assert_eq!(
            sort_item(&birthdate, false, false).as_deref(),
            Some("Birthdate ASC NULLS LAST")
        );
        // case-insensitive text order differs from SQL's
        assert_eq!(sort_item(&lookup("email").unwrap(), false, false), None);
        let mut unsortable = score.clone();
        unsortable.sortable = false;
        assert_eq!(sort_item(&unsortable, false, false), None);
    }

    #[test]
    fn no_fields_is_a_count_and_order_precedes_limit() {
        let conds = vec![Condition::Text("WM_NPS_Score__c > 5".into())];
        assert_eq!(
            build_statements(&[], "Contact", &conds, &[], None, MAX_ENCODED_STATEMENT).unwrap(),
            vec!["SELECT COUNT() FROM Contact WHERE WM_NPS_Score__c > 5".to_string()]
        );
        assert_eq!(
            build_statements(
                &["Id".into()],
                "Contact",
                &[],
                &["Birthdate DESC NULLS FIRST".into()],
                Some(3),
                MAX_ENCODED_STATEMENT
            )
            .unwrap(),
            vec!["SELECT Id FROM Contact ORDER BY Birthdate DESC NULLS FIRST LIMIT 3".to_string()]
        );
    }

    #[test]
    fn join_keys_become_one_deduplicated_in_list() {
        let email = lookup("email").unwrap();
        let keys = vec![
            ScalarValue::Utf8(Some("a@x.com".into())),
            ScalarValue::Utf8(Some("A@X.com".into())),
            ScalarValue::Utf8(None),
            ScalarValue::Utf8View(Some("o'b@x.com".into())),
        ];
        assert_eq!(
            key_condition(&email, &keys),
            Some(Some(Condition::InList {
                field: "Email".into(),
                values: vec!["'a@x.com'".into(), r"'o\'b@x.com'".into()],
            }))
        );
        assert_eq!(
            key_condition(&email, &[ScalarValue::Utf8(None)]),
            Some(None)
        );
        // a number has no SOQL form for a text field: the caller scans
        assert_eq!(key_condition(&email, &[ScalarValue::Int64(Some(1))]), None);
        let score = lookup("wm_nps_score__c").unwrap();
        assert_eq!(
            key_condition(&score, &[ScalarValue::Float64(Some(7.0))]),
            Some(Some(Condition::InList {
                field: "WM_NPS_Score__c".into(),
                values: vec!["7".into()],
            }))
        );
    }

    #[test]
    fn long_in_lists_split_into_disjoint_statements_under_the_limit() {
        let values: Vec<String> = (0..5000)
            .map(|i| quote_string(&format!("user{i}@example.com")))
            .collect();
        let conds = vec![
            Condition::Text("IsDeleted = false".into()),
            Condition::InList {
                field: "Email".into(),
                values: values.clone(),
            },
        ];
        let stmts = build_statements(
            &["Id".into(), "Email".into()],
            "Contact",
            &conds,
            &[],
            None,
            MAX_ENCODED_STATEMENT,
        )
        .unwrap();
        assert!(stmts.len() > 5, "{}", stmts.len());
        let mut total = 0;
        for s in &stmts {
            assert!(encoded_len(s) <= MAX_ENCODED_STATEMENT);
            assert!(s.starts_with(
                "SELECT Id, Email FROM Contact WHERE IsDeleted = false AND Email IN ("
            ));
            total += s.matches("@example.com").count();
        }
        assert_eq!(total, 5000);
        // a short list stays one statement
        let one = build_statements(
            &["Id".into()],
            "Contact",
            &conds[..1],
            &[],
            Some(5),
            MAX_ENCODED_STATEMENT,
        )
        .unwrap();
        assert_eq!(
            one,
            vec!["SELECT Id FROM Contact WHERE IsDeleted = false LIMIT 5".to_string()]
        );
    }

    fn in_list_values(statements: &[String]) -> Vec<usize> {
        statements
            .iter()
            .map(|s| s.matches("@example.com").count())
            .collect()
    }

    #[test]
    fn composite_lookups_hold_a_page_of_keys_per_statement_shared_evenly() {
        let keys = |n: usize, pad: usize| -> Vec<Condition> {
            vec![Condition::InList {
                field: "Email".into(),
                values: (0..n)
                    .map(|i| quote_string(&format!("{}{i}@example.com", "u".repeat(pad))))
                    .collect(),
            }]
        };
        let split = |conds: &[Condition]| {
            split_statements(
                &["Id".into(), "Email".into()],
                "Contact",
                conds,
                &[],
                None,
                Budget::composite(2000),
            )
            .unwrap()
        };
        // 5,000 keys: three statements of 1,667, 1,667 and 1,666 keys, one
        // page of records each, where the URI budget needed 13.
        let stmts = split(&keys(5000, 0));
        assert_eq!(in_list_values(&stmts), vec![1667, 1667, 1666]);
        let uri = build_statements(
            &["Id".into(), "Email".into()],
            "Contact",
            &keys(5000, 0),
            &[],
            None,
            MAX_ENCODED_STATEMENT,
        )
        .unwrap();
        assert!(uri.len() > 10, "{}", uri.len());
        // A few keys stay one statement.
        assert_eq!(split(&keys(5, 0)).len(), 1);
        // Long keys: the 100,000-character limit splits before the count.
        let stmts = split(&keys(1500, 80));
        assert_eq!(in_list_values(&stmts), vec![750, 750]);
        for s in &stmts {
            assert!(char_len(s) <= MAX_SOQL_CHARS, "{}", char_len(s));
        }
        // 12,001 keys: seven statements of at most 1,715.
        let stmts = split(&keys(12_001, 0));
        let counts = in_list_values(&stmts);
        assert_eq!(counts.len(), 7);
        assert_eq!(counts.iter().sum::<usize>(), 12_001);
        assert!(
            counts.iter().all(|&n| (1700..=1715).contains(&n)),
            "{counts:?}"
        );
    }
}
