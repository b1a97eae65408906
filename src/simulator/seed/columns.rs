//! What every generator shares: column positions looked up once per
//! object, the id and audit fields, the per-org context and value helpers.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::h;
use crate::simulator::ids::{make_id, seq_for_index};
use crate::simulator::schema::{ObjId, schema};
use crate::simulator::store::{Store, Value};

/// Column positions of one object, by exact API name.
pub struct Columns {
    obj: ObjId,
    width: usize,
    by_name: HashMap<&'static str, usize>,
}

impl Columns {
    pub fn of(name: &str) -> Columns {
        let obj = schema().object_id(name).unwrap_or_default();
        let def = schema().object(obj);
        Columns {
            obj,
            width: def.fields.len(),
            by_name: def
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name, i))
                .collect(),
        }
    }

    /// Positions of `names`, looked up once per object rather than per record.
    pub fn indices<const N: usize>(&self, names: [&'static str; N]) -> [usize; N] {
        names.map(|n| {
            debug_assert!(self.by_name.contains_key(n), "no field {n}");
            self.by_name.get(n).copied().unwrap_or(self.width)
        })
    }

    /// Position of a field named at run time (`Billing` + `City`).
    pub fn index_of(&self, name: &str) -> usize {
        debug_assert!(self.by_name.contains_key(name), "no field {name}");
        self.by_name.get(name).copied().unwrap_or(self.width)
    }

    pub fn row(&self) -> Vec<Value> {
        // One spare slot absorbs writes to a misspelt column in release builds.
        vec![Value::Null; self.width + 1]
    }

    pub fn insert(&self, store: &mut Store, mut row: Vec<Value>) {
        row.truncate(self.width);
        store.table_mut(self.obj).insert(row.into());
    }
}

/// Positions of the id, owner and audit fields.
pub struct Audit {
    fields: [usize; 7],
    owner: Option<usize>,
}

impl Audit {
    pub fn of(cols: &Columns) -> Audit {
        Audit {
            fields: cols.indices([
                "Id",
                "IsDeleted",
                "CreatedDate",
                "LastModifiedDate",
                "SystemModstamp",
                "CreatedById",
                "LastModifiedById",
            ]),
            owner: cols.by_name.get("OwnerId").copied(),
        }
    }

    /// Sets the id, owner and audit fields of record `i`.
    pub fn fill(&self, row: &mut [Value], ctx: &Ctx, prefix: &str, salt: u64, i: usize) {
        let [
            id,
            deleted,
            created_date,
            modified_date,
            stamp,
            created_by,
            modified_by,
        ] = self.fields;
        let created = h(salt + 100, i) % (5 * 365 * 86_400);
        let modified = created + h(salt + 101, i) % (400 * 86_400);
        row[id] = ctx.id(prefix, i);
        row[deleted] = Value::Bool(false);
        row[created_date] = Value::DateTime(datetime(created));
        row[modified_date] = Value::DateTime(datetime(modified));
        row[stamp] = Value::DateTime(datetime(modified));
        row[created_by] = ctx.user((h(salt + 102, i) % 20) as usize);
        row[modified_by] = ctx.user((h(salt + 103, i) % 20) as usize);
        if let Some(owner) = self.owner {
            row[owner] = ctx.user(1 + (h(salt + 104, i) % 19) as usize);
        }
    }
}

/// Per-org facts the generators need.
pub struct Ctx<'a> {
    pub org: &'a str,
    pub pod: &'a str,
    /// Mixed into fields that differ between production and sandbox.
    pub org_salt: u64,
    pub sizes: super::Sizes,
    pub users: Vec<Value>,
}

impl Ctx<'_> {
    pub fn id(&self, prefix: &str, i: usize) -> Value {
        Value::text(make_id(prefix, self.pod, seq_for_index(i)))
    }
    pub fn user(&self, i: usize) -> Value {
        self.users[i % self.users.len()].clone()
    }
}

pub fn date(days_from_2019: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default() + Duration::days(days_from_2019 as i64)
}

pub fn datetime(secs_from_2019: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_546_300_800 + secs_from_2019 as i64, 0).unwrap_or_default()
}

pub fn phone(x: u64) -> Value {
    let area = 200 + x % 700;
    let line = (x >> 12) % 10_000;
    Value::text(match (x >> 30) % 10 {
        0 => return Value::Null,
        1..=4 => format!("({area}) 555-{line:04}"),
        5..=7 => format!("+1 {area} 555 {line:04}"),
        _ => format!("{area}.555.{line:04}"),
    })
}

pub fn full_name(first: Option<&str>, last: &str) -> Value {
    Value::text(match first {
        Some(f) => format!("{f} {last}"),
        None => last.to_string(),
    })
}

pub fn maybe(present: bool, value: impl FnOnce() -> Value) -> Value {
    if present { value() } else { Value::Null }
}
