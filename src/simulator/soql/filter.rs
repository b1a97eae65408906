//! WHERE clauses: conditions resolved against the schema, literals checked
//! against their field's type (with Salesforce's messages) and converted
//! once, relative date literals turned into day ranges.

use chrono::{Datelike, Duration, NaiveDate};

use super::SoqlError;
use super::ast::{Cond, DateLiteral, Literal, PathRef};
use super::compile::Compiler;
use super::lexer::CmpOp;
use super::located;
use super::plan::{InSet, Path, Pred, Scalar};
use crate::simulator::ids;
use crate::simulator::schema::{FieldDef, FieldType, ObjId, ValueKind};

impl Compiler<'_> {
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

    pub(super) fn cond(&self, obj: ObjId, cond: &Cond) -> Result<Pred, SoqlError> {
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
        // Times are stored as `HH:MM:SS.sssZ` text, which sorts as time; a
        // time field takes only a time literal, as in Salesforce.
        if leaf.ftype == FieldType::Time {
            return match lit {
                Literal::Time(t) => Ok(Scalar::Text(t.format("%H:%M:%S%.3fz").to_string().into())),
                _ => Err(SoqlError::InvalidField(located(
                    self.src,
                    pos,
                    &format!(
                        "value of filter criterion for field '{}' must be of type time and should not be enclosed in quotes",
                        leaf.name
                    ),
                ))),
            };
        }
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
