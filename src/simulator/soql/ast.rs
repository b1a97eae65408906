//! The SOQL syntax tree, with fields still named as typed and positions
//! kept for error messages.

use chrono::{DateTime, NaiveDate, Utc};

use super::lexer::{CmpOp, StrLit};

/// A dotted field path as typed, e.g. `Account.Owner.Email`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRef {
    pub parts: Vec<String>,
    pub pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SelectItem {
    Count { pos: usize },
    Field(PathRef),
}

/// Relative date literals (`TODAY`, `LAST_N_DAYS:30`, ...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DateLiteral {
    Today,
    Yesterday,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
    ThisMonth,
    LastMonth,
    ThisYear,
    LastYear,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Num(f64),
    Str(StrLit),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Time(chrono::NaiveTime),
    Relative(DateLiteral),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        path: PathRef,
        op: CmpOp,
        value: Literal,
        value_pos: usize,
    },
    In {
        path: PathRef,
        negated: bool,
        values: Vec<(Literal, usize)>,
    },
    Like {
        path: PathRef,
        pattern: StrLit,
        value_pos: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderItem {
    pub path: PathRef,
    pub descending: bool,
    pub nulls_last: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: String,
    pub from_pos: usize,
    pub filter: Option<Cond>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<(u64, usize)>,
}
