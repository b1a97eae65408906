//! Resolution of a parsed SOQL statement against the schema: field names to
//! field indexes (parent paths per possible target object), literals checked
//! against field types and converted once, so evaluation does no name
//! lookups or parsing per record.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, Utc};

use super::SoqlError;
use super::lexer::{CmpOp, LikeTok};
use super::located;
use super::parser::{Cond, DateLiteral, Literal, OrderItem, PathRef, Query, SelectItem};
use crate::simulator::ids;
use crate::simulator::schema::{FieldDef, ObjId, ValueKind, schema};

/// A resolved field path.
#[derive(Clone, Debug)]
pub enum Path {
    /// A field of the current object.
    Field(usize),
    /// Follow reference field `via`; continue on whichever target object the
    /// referenced id belongs to (several for polymorphic Who/What).
    Parent {
        via: usize,
        targets: Vec<(ObjId, Path)>,
    },
}

impl Path {
    /// The field the path ends at (on the first target of a polymorphic hop).
    pub fn leaf(&self, obj: ObjId) -> &'static FieldDef {
        match self {
            Path::Field(f) => &schema().object(obj).fields[*f],
            Path::Parent { targets, .. } => {
                let (t, rest) = &targets[0];
                rest.leaf(*t)
            }
        }
    }
}

/// One node of the selected-fields tree, in SELECT order.
#[derive(Clone, Debug)]
pub enum Proj {
    Field(usize),
    Parent {
        via: usize,
        name: &'static str,
        targets: Vec<(ObjId, Vec<Proj>)>,
    },
}

/// A literal converted to the comparison domain of its field.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// Lower-cased text.
    Text(Box<str>),
    /// Canonical id.
    Id(Box<str>),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(chrono::DateTime<Utc>),
}

#[derive(Clone, Debug)]
pub enum InSet {
    /// Lower-cased text.
    Text(HashSet<Box<str>>),
    /// Canonical ids.
    Ids(HashSet<Box<str>>),
    Values(Vec<Scalar>),
}

#[derive(Clone, Debug)]
pub enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Const(bool),
    IsNull {
        path: Path,
        null: bool,
    },
    Cmp {
        path: Path,
        op: CmpOp,
        value: Scalar,
    },
    /// A relative date literal: the days `[start, end)`.
    Range {
        path: Path,
        op: CmpOp,
        start: NaiveDate,
        end: NaiveDate,
    },
    In {
        path: Path,
        negated: bool,
        set: InSet,
        has_null: bool,
    },
    Like {
        path: Path,
        pattern: Vec<LikeTok>,
    },
}

#[derive(Clone, Debug)]
pub struct SortKey {
    pub path: Path,
    pub descending: bool,
    pub nulls_last: bool,
}

/// A statement ready to run.
#[derive(Clone, Debug)]
pub struct CompiledQuery {
    pub object: ObjId,
    pub count_only: bool,
    pub projection: Vec<Proj>,
    pub filter: Option<Pred>,
    pub order: Vec<SortKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// Salesforce's cap on OFFSET.
const MAX_OFFSET: u64 = 2000;

struct Compiler<'a> {
    src: &'a str,
    today: NaiveDate,
}

/// Resolves `query` (parsed from `src`) against the schema.
pub fn compile(src: &str, query: &Query) -> Result<CompiledQuery, SoqlError> {
    let c = Compiler {
        src,
        today: Utc::now().date_naive(),
    };
    let object = schema().object_id(&query.from).ok_or_else(|| {
        SoqlError::InvalidType(located(
            src,
            query.from_pos,
            &format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, \
                 be sure to append the '__c' after the entity name. Please reference your WSDL or \
                 the describe call for the appropriate names.",
                query.from
            ),
        ))
    })?;
    let count_only = query
        .select
        .iter()
        .any(|s| matches!(s, SelectItem::Count { .. }));
    let mut projection = Vec::new();
    for item in &query.select {
        match item {
            SelectItem::Count { pos } if query.select.len() > 1 => {
                return Err(SoqlError::malformed(
                    src,
                    *pos,
                    "COUNT() must be the only element in the SELECT list",
                ));
            }
            SelectItem::Count { .. } => {}
            SelectItem::Field(path) => c.project(object, &mut projection, &path.parts, path)?,
        }
    }
    let filter = query
        .filter
        .as_ref()
        .map(|f| c.cond(object, f))
        .transpose()?;
    let order = query
        .order_by
        .iter()
        .map(|o| c.sort_key(object, o))
        .collect::<Result<_, _>>()?;
    if let Some((offset, pos)) = query.offset
        && offset > MAX_OFFSET
    {
        return Err(SoqlError::OutOfRange(located(
            src,
            pos,
            "Maximum SOQL offset allowed is 2000",
        )));
    }
    Ok(CompiledQuery {
        object,
        count_only,
        projection,
        filter,
        order,
        limit: query
            .limit
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        offset: query.offset.map_or(0, |o| o.0 as usize),
    })
}

impl Compiler<'_> {
    fn no_column(&self, obj: ObjId, name: &str, at: &PathRef) -> SoqlError {
        SoqlError::InvalidField(located(
            self.src,
            at.pos,
            &format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom \
                 field, be sure to append the '__c' after the custom field name. Please reference \
                 your WSDL or the describe call for the appropriate names.",
                schema().object(obj).name
            ),
        ))
    }

    fn no_relationship(&self, name: &str, at: &PathRef) -> SoqlError {
        SoqlError::InvalidField(located(
            self.src,
            at.pos,
            &format!(
                "Didn't understand relationship '{name}' in field path. If you are attempting to \
                 use a custom relationship, be sure to append the '__r' after the custom \
                 relationship name. Please reference your WSDL or the describe call for the \
                 appropriate names."
            ),
        ))
    }

    /// The reference field named by relationship `name`, and its targets.
    fn hop(&self, obj: ObjId, name: &str, at: &PathRef) -> Result<(usize, Vec<ObjId>), SoqlError> {
        let def = schema().object(obj);
        let via = def
            .relationship(name)
            .ok_or_else(|| self.no_relationship(name, at))?;
        let targets = def.fields[via]
            .reference_to
            .iter()
            .filter_map(|t| schema().object_id(t))
            .collect();
        Ok((via, targets))
    }

    fn path(&self, obj: ObjId, parts: &[String], at: &PathRef) -> Result<Path, SoqlError> {
        match parts {
            [name] => schema()
                .object(obj)
                .field_index(name)
                .map(Path::Field)
                .ok_or_else(|| self.no_column(obj, name, at)),
            [rel, rest @ ..] => {
                let (via, target_objs) = self.hop(obj, rel, at)?;
                let mut targets = Vec::new();
                let mut first_err = None;
                for t in target_objs {
                    match self.path(t, rest, at) {
                        Ok(p) => targets.push((t, p)),
                        Err(e) => first_err = first_err.or(Some(e)),
                    }
                }
                match (targets.is_empty(), first_err) {
                    (true, Some(e)) => Err(e),
                    _ => Ok(Path::Parent { via, targets }),
                }
            }
            [] => Err(SoqlError::malformed(
                self.src,
                at.pos,
                "unexpected token: <EOF>",
            )),
        }
    }

    fn project(
        &self,
        obj: ObjId,
        list: &mut Vec<Proj>,
        parts: &[String],
        at: &PathRef,
    ) -> Result<(), SoqlError> {
        match parts {
            [name] => {
                let f = schema()
                    .object(obj)
                    .field_index(name)
                    .ok_or_else(|| self.no_column(obj, name, at))?;
                if list.iter().any(|p| matches!(p, Proj::Field(g) if *g == f)) {
                    return Err(SoqlError::malformed(
                        self.src,
                        at.pos,
                        &format!("duplicate field selected: {}", at.parts.join(".")),
                    ));
                }
                list.push(Proj::Field(f));
                Ok(())
            }
            [rel, rest @ ..] => {
                let (via, target_objs) = self.hop(obj, rel, at)?;
                let index = match list
                    .iter()
                    .position(|p| matches!(p, Proj::Parent { via: v, .. } if *v == via))
                {
                    Some(i) => i,
                    None => {
                        let name = schema().object(obj).fields[via]
                            .relationship_name
                            .unwrap_or_default();
                        let targets = target_objs.iter().map(|t| (*t, Vec::new())).collect();
                        list.push(Proj::Parent { via, name, targets });
                        list.len() - 1
                    }
                };
                let Proj::Parent { targets, .. } = &mut list[index] else {
                    return Ok(());
                };
                let mut resolved = false;
                let mut first_err = None;
                for (t, children) in targets.iter_mut() {
                    match self.project(*t, children, rest, at) {
                        Ok(()) => resolved = true,
                        Err(e) => first_err = first_err.or(Some(e)),
                    }
                }
                match (resolved, first_err) {
                    (false, Some(e)) => Err(e),
                    _ => Ok(()),
                }
            }
            [] => Ok(()),
        }
    }

    fn sort_key(&self, obj: ObjId, item: &OrderItem) -> Result<SortKey, SoqlError> {
        let path = self.path(obj, &item.path.parts, &item.path)?;
        let leaf = path.leaf(obj);
        if !leaf.sortable {
            return Err(SoqlError::InvalidField(located(
                self.src,
                item.path.pos,
                &format!("field '{}' can not be sorted in a query call", leaf.name),
            )));
        }
        Ok(SortKey {
            path,
            descending: item.descending,
            nulls_last: item.nulls_last,
        })
    }

    fn filter_path(
        &self,
        obj: ObjId,
        at: &PathRef,
    ) -> Result<(Path, &'static FieldDef), SoqlError> {
        let path = self.path(obj, &at.parts, at)?;
        let leaf = path.leaf(obj);
        if !leaf.filterable {
            return Err(SoqlError::InvalidField(located(
                self.src,
                at.pos,
                &format!("field '{}' can not be filtered in a query call", leaf.name),
            )));
        }
        Ok((path, leaf))
    }

    fn cond(&self, obj: ObjId, cond: &Cond) -> Result<Pred, SoqlError> {
        Ok(match cond {
            Cond::And(terms) => Pred::And(
                terms
                    .iter()
                    .map(|t| self.cond(obj, t))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Or(terms) => Pred::Or(
                terms
                    .iter()
                    .map(|t| self.cond(obj, t))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Not(inner) => Pred::Not(Box::new(self.cond(obj, inner)?)),
            Cond::Cmp {
                path,
                op,
                value,
                value_pos,
            } => {
                let (path, leaf) = self.filter_path(obj, path)?;
                match value {
                    Literal::Null => match op {
                        CmpOp::Eq => Pred::IsNull { path, null: true },
                        CmpOp::Ne => Pred::IsNull { path, null: false },
                        _ => Pred::Const(false),
                    },
                    Literal::Relative(rel)
                        if leaf.ftype.kind() == ValueKind::Date
                            || leaf.ftype.kind() == ValueKind::DateTime =>
                    {
                        let (start, end) = relative_range(*rel, self.today);
                        Pred::Range {
                            path,
                            op: *op,
                            start,
                            end,
                        }
                    }
                    _ => {
                        let value = self.scalar(leaf, value, *value_pos)?;
                        if leaf.ftype.kind() == ValueKind::Bool
                            && !matches!(op, CmpOp::Eq | CmpOp::Ne)
                        {
                            return Err(SoqlError::InvalidFilterOperator(located(
                                self.src,
                                *value_pos,
                                "invalid operator on boolean field",
                            )));
                        }
                        Pred::Cmp {
                            path,
                            op: *op,
                            value,
                        }
                    }
                }
            }
            Cond::In {
                path,
                negated,
                values,
            } => {
                let (path, leaf) = self.filter_path(obj, path)?;
                let mut has_null = false;
                let mut scalars = Vec::with_capacity(values.len());
                for (lit, pos) in values {
                    if *lit == Literal::Null {
                        has_null = true;
                    } else {
                        scalars.push(self.scalar(leaf, lit, *pos)?);
                    }
                }
                let keys = |scalars: Vec<Scalar>| {
                    scalars
                        .into_iter()
                        .filter_map(|s| match s {
                            Scalar::Text(t) | Scalar::Id(t) => Some(t),
                            _ => None,
                        })
                        .collect()
                };
                let set = match leaf.ftype.kind() {
                    ValueKind::Text => InSet::Text(keys(scalars)),
                    ValueKind::Id => InSet::Ids(keys(scalars)),
                    _ => InSet::Values(scalars),
                };
                Pred::In {
                    path,
                    negated: *negated,
                    set,
                    has_null,
                }
            }
            Cond::Like {
                path,
                pattern,
                value_pos,
            } => {
                let (path, leaf) = self.filter_path(obj, path)?;
                if leaf.ftype.kind() != ValueKind::Text {
                    return Err(SoqlError::InvalidFilterOperator(located(
                        self.src,
                        *value_pos,
                        &format!("invalid operator on {} field", leaf.ftype.api_name()),
                    )));
                }
                Pred::Like {
                    path,
                    pattern: pattern.pattern.clone(),
                }
            }
        })
    }

    /// A literal as a value of `leaf`'s type, or Salesforce's complaint.
    fn scalar(&self, leaf: &FieldDef, lit: &Literal, pos: usize) -> Result<Scalar, SoqlError> {
        let kind = leaf.ftype.kind();
        let wrong = |quoted: bool| {
            let type_name = match kind {
                ValueKind::DateTime => "dateTime",
                _ => leaf.ftype.api_name(),
            };
            let quotes = if quoted {
                "should be enclosed in quotes"
            } else {
                "should not be enclosed in quotes"
            };
            SoqlError::InvalidField(located(
                self.src,
                pos,
                &format!(
                    "value of filter criterion for field '{}' must be of type {type_name} and {quotes}",
                    leaf.name
                ),
            ))
        };
        match (kind, lit) {
            (_, Literal::Str(s)) if s.like_escapes => Err(SoqlError::malformed(
                self.src,
                pos,
                "Invalid string literal: \\% and \\_ are valid only in a LIKE pattern",
            )),
            (ValueKind::Text, Literal::Str(s)) => Ok(Scalar::Text(s.value.to_lowercase().into())),
            (ValueKind::Text, _) => Err(wrong(true)),
            (ValueKind::Id, Literal::Str(s)) => ids::canonical(&s.value)
                .map(|id| Scalar::Id(id.into()))
                .ok_or_else(|| {
                    SoqlError::InvalidFilterOperator(located(
                        self.src,
                        pos,
                        &format!("invalid ID field: {}", s.value),
                    ))
                }),
            (ValueKind::Id, _) => Err(wrong(true)),
            (ValueKind::Int | ValueKind::Number, Literal::Num(n)) => Ok(Scalar::Num(*n)),
            (ValueKind::Bool, Literal::Bool(b)) => Ok(Scalar::Bool(*b)),
            (ValueKind::Date, Literal::Date(d)) => Ok(Scalar::Date(*d)),
            (ValueKind::DateTime, Literal::DateTime(t)) => Ok(Scalar::DateTime(*t)),
            _ => Err(wrong(false)),
        }
    }
}

/// The days `[start, end)` a relative date literal stands for.
pub fn relative_range(lit: DateLiteral, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let day = Duration::days(1);
    let month_start = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(today);
    let (this_month, next_month, last_month) = {
        let (y, m) = (today.year(), today.month());
        let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let last = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
        (
            month_start(y, m),
            month_start(next.0, next.1),
            month_start(last.0, last.1),
        )
    };
    let year_start = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or(today);
    match lit {
        DateLiteral::Today => (today, today + day),
        DateLiteral::Yesterday => (today - day, today),
        DateLiteral::Tomorrow => (today + day, today + day + day),
        DateLiteral::LastNDays(n) => (today - Duration::days(i64::from(n)), today + day),
        DateLiteral::NextNDays(n) => (today + day, today + Duration::days(i64::from(n) + 1)),
        DateLiteral::ThisMonth => (this_month, next_month),
        DateLiteral::LastMonth => (last_month, this_month),
        DateLiteral::ThisYear => (year_start(today.year()), year_start(today.year() + 1)),
        DateLiteral::LastYear => (year_start(today.year() - 1), year_start(today.year())),
    }
}
