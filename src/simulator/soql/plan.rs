//! The executable form of a SOQL statement: field paths resolved to
//! indexes, literals converted to their field's domain, the selected-fields
//! tree. Built by `compile`, run by `eval`.

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};

use super::lexer::{CmpOp, LikeTok};
use crate::simulator::schema::{FieldDef, ObjId, schema};

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
