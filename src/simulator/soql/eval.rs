//! Running a compiled query over a store: candidate rows from a lookup index
//! when the filter allows, then the full predicate, ORDER BY, OFFSET and
//! LIMIT. Logic is two-valued as in SOQL: a comparison with a null field is
//! false, except `!=` and `NOT IN`, which are true.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::lexer::{CmpOp, LikeTok};
use super::plan::{CompiledQuery, InSet, Path, Pred, Scalar, SortKey};
use crate::simulator::schema::{ObjId, ValueKind, schema};
use crate::simulator::store::{Store, Table, Value};

static NULL: Value = Value::Null;

/// The value at `path` of record `row` of `obj`; null through an empty or
/// dangling lookup, a deleted parent, or a polymorphic target without the field.
pub fn value<'a>(store: &'a Store, obj: ObjId, row: u32, path: &Path) -> &'a Value {
    match path {
        Path::Field(f) => store.table(obj).get(row, *f),
        Path::Parent { via, targets } => {
            let Some((target, parent)) = parent_row(store, obj, row, *via) else {
                return &NULL;
            };
            match targets.iter().find(|(t, _)| *t == target) {
                Some((_, rest)) => value(store, target, parent, rest),
                None => &NULL,
            }
        }
    }
}

/// The live record a reference field of `row` points at.
pub fn parent_row(store: &Store, obj: ObjId, row: u32, via: usize) -> Option<(ObjId, u32)> {
    let id = store.table(obj).get(row, via).as_str()?;
    let (target, parent) = store.find(id)?;
    let deleted = store
        .table(target)
        .get(parent, schema().object(target).is_deleted);
    (*deleted != Value::Bool(true)).then_some((target, parent))
}

/// Text lower-cased without allocating when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// Orders a stored value against a literal of its field's domain.
fn cmp_scalar(v: &Value, s: &Scalar) -> Option<Ordering> {
    match (v, s) {
        (Value::Text(a), Scalar::Text(b)) => Some(lower(a).as_ref().cmp(b.as_ref())),
        (Value::Text(a), Scalar::Id(b)) => Some(a.as_ref().cmp(b.as_ref())),
        (Value::Int(_) | Value::Double(_), Scalar::Num(b)) => v.as_f64()?.partial_cmp(b),
        (Value::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Value::Date(a), Scalar::Date(b)) => Some(a.cmp(b)),
        (Value::DateTime(a), Scalar::DateTime(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// SQL-style LIKE over lower-cased text: `%` any run, `_` one character.
pub fn like(pattern: &[LikeTok], text: &str) -> bool {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < chars.len() {
        match pattern.get(p) {
            Some(LikeTok::One) => {
                p += 1;
                t += 1;
            }
            Some(LikeTok::Char(c)) if *c == chars[t] => {
                p += 1;
                t += 1;
            }
            Some(LikeTok::Many) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == LikeTok::Many)
}

/// Evaluates `pred` on one record.
pub fn matches(store: &Store, obj: ObjId, row: u32, pred: &Pred) -> bool {
    match pred {
        Pred::And(terms) => terms.iter().all(|t| matches(store, obj, row, t)),
        Pred::Or(terms) => terms.iter().any(|t| matches(store, obj, row, t)),
        Pred::Not(inner) => !matches(store, obj, row, inner),
        Pred::Const(b) => *b,
        Pred::IsNull { path, null } => value(store, obj, row, path).is_null() == *null,
        Pred::Cmp {
            path,
            op,
            value: lit,
        } => match cmp_scalar(value(store, obj, row, path), lit) {
            Some(ord) => holds(*op, ord),
            None => *op == CmpOp::Ne,
        },
        Pred::Range {
            path,
            op,
            start,
            end,
        } => {
            let day = match value(store, obj, row, path) {
                Value::Date(d) => *d,
                Value::DateTime(t) => t.date_naive(),
                _ => return *op == CmpOp::Ne,
            };
            let within = *start <= day && day < *end;
            match op {
                CmpOp::Eq => within,
                CmpOp::Ne => !within,
                CmpOp::Lt => day < *start,
                CmpOp::Le => day < *end,
                CmpOp::Gt => day >= *end,
                CmpOp::Ge => day >= *start,
            }
        }
        Pred::In {
            path,
            negated,
            set,
            has_null,
        } => {
            let v = value(store, obj, row, path);
            let found = match (v, set) {
                (Value::Null, _) => *has_null,
                (Value::Text(s), InSet::Text(keys)) => keys.contains(lower(s).as_ref()),
                (Value::Text(s), InSet::Ids(keys)) => keys.contains(s.as_ref()),
                (_, InSet::Values(values)) => values
                    .iter()
                    .any(|lit| cmp_scalar(v, lit) == Some(Ordering::Equal)),
                _ => false,
            };
            found != *negated
        }
        Pred::Like { path, pattern } => value(store, obj, row, path)
            .as_str()
            .is_some_and(|s| like(pattern, s)),
    }
}

/// Rows that can satisfy `pred`, from a lookup index, when some conjunct is
/// an `=` or `IN` on an indexed field of the queried object. Unsorted.
fn index_rows(table: &Table, pred: &Pred) -> Option<Vec<u32>> {
    match pred {
        Pred::Cmp {
            path: Path::Field(f),
            op: CmpOp::Eq,
            value: Scalar::Text(key) | Scalar::Id(key),
        } if table.is_indexed(*f) => Some(table.lookup(*f, key).to_vec()),
        Pred::In {
            path: Path::Field(f),
            negated: false,
            has_null: false,
            set: InSet::Text(keys) | InSet::Ids(keys),
        } if table.is_indexed(*f) => Some(
            keys.iter()
                .flat_map(|k| table.lookup(*f, k))
                .copied()
                .collect(),
        ),
        Pred::And(terms) => terms
            .iter()
            .filter_map(|t| index_rows(table, t))
            .min_by_key(Vec::len),
        _ => None,
    }
}

/// A sort key of one record: text lower-cased so ordering ignores case.
fn sort_value(store: &Store, obj: ObjId, row: u32, key: &SortKey) -> Value {
    let v = value(store, obj, row, &key.path);
    match v {
        Value::Text(s) if key.path.leaf(obj).ftype.kind() == ValueKind::Text => {
            Value::Text(s.to_lowercase().into())
        }
        other => other.clone(),
    }
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => Ordering::Equal,
        },
    }
}

fn order_rows(store: &Store, obj: ObjId, rows: &mut Vec<u32>, order: &[SortKey]) {
    let mut keyed: Vec<(Vec<Value>, u32)> = rows
        .iter()
        .map(|r| {
            let keys = order
                .iter()
                .map(|k| sort_value(store, obj, *r, k))
                .collect();
            (keys, *r)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, key) in order.iter().enumerate() {
            let ord = match (a[i].is_null(), b[i].is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) if key.nulls_last => Ordering::Greater,
                (true, false) => Ordering::Less,
                (false, true) if key.nulls_last => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) if key.descending => cmp_values(&b[i], &a[i]),
                (false, false) => cmp_values(&a[i], &b[i]),
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    *rows = keyed.into_iter().map(|(_, r)| r).collect();
}

/// Rows of the query's object that the query returns, in order, after
/// OFFSET and LIMIT. `all_rows` includes deleted records (queryAll).
pub fn execute(store: &Store, q: &CompiledQuery, all_rows: bool) -> Vec<u32> {
    let table = store.table(q.object);
    let is_deleted = schema().object(q.object).is_deleted;
    let live = |r: &u32| all_rows || *table.get(*r, is_deleted) != Value::Bool(true);
    let passes = |r: &u32| {
        q.filter
            .as_ref()
            .is_none_or(|f| matches(store, q.object, *r, f))
    };
    let mut rows: Vec<u32> = match q.filter.as_ref().and_then(|f| index_rows(table, f)) {
        Some(mut candidates) => {
            candidates.sort_unstable();
            candidates.dedup();
            candidates.into_iter().filter(live).filter(passes).collect()
        }
        None => (0..table.len() as u32)
            .filter(live)
            .filter(passes)
            .collect(),
    };
    if !q.order.is_empty() {
        order_rows(store, q.object, &mut rows, &q.order);
    }
    rows.into_iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(usize::MAX))
        .collect()
}
