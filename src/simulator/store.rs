//! In-memory records of one org: a table per object, an id index, and
//! lookup indexes on key fields so `=`/`IN` filters need not scan.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::schema::{ObjId, ValueKind, schema};

/// A stored field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// Text of any kind, ids included (ids in canonical 18-character form).
    Text(Box<str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

impl Value {
    pub fn text(s: impl Into<Box<str>>) -> Value {
        Value::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<Box<str>>>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.into()))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }
}

/// `2021-04-14`
pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `2015-10-19T13:51:35.000+0000`: UTC, milliseconds, no colon in the offset.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Key under which a value sits in a lookup index: lower case for text
/// (Salesforce compares text case-insensitively), exact for ids.
pub fn index_key(kind: ValueKind, s: &str) -> Box<str> {
    if kind == ValueKind::Text {
        s.to_lowercase().into()
    } else {
        s.into()
    }
}

/// All records of one object.
#[derive(Clone, Debug)]
pub struct Table {
    pub rows: Vec<Box<[Value]>>,
    /// Canonical id → row.
    pub by_id: HashMap<Box<str>, u32>,
    /// Lookup indexes of the fields [`FieldDef::indexed`] selects.
    ///
    /// [`FieldDef::indexed`]: super::schema::FieldDef::indexed
    indexes: Vec<Index>,
}

/// Index key (see [`index_key`]) → rows, for one field.
#[derive(Clone, Debug)]
struct Index {
    field: usize,
    kind: ValueKind,
    rows: HashMap<Box<str>, Vec<u32>>,
}

impl Table {
    pub fn new(obj: ObjId) -> Table {
        let def = schema().object(obj);
        let indexes = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| *i != 0 && f.indexed())
            .map(|(field, f)| Index {
                field,
                kind: f.ftype.kind(),
                rows: HashMap::new(),
            })
            .collect();
        Table {
            rows: Vec::new(),
            by_id: HashMap::new(),
            indexes,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn get(&self, row: u32, field: usize) -> &Value {
        &self.rows[row as usize][field]
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Appends a record whose field 0 is its canonical id.
    pub fn insert(&mut self, values: Box<[Value]>) -> u32 {
        let row = self.rows.len() as u32;
        if let Some(id) = values[0].as_str() {
            self.by_id.insert(id.into(), row);
        }
        for index in &mut self.indexes {
            if let Some(s) = values[index.field].as_str() {
                index
                    .rows
                    .entry(index_key(index.kind, s))
                    .or_default()
                    .push(row);
            }
        }
        self.rows.push(values);
        row
    }

    /// Sets one field, keeping its index current.
    pub fn set(&mut self, row: u32, field: usize, value: Value) {
        if let Some(index) = self.indexes.iter_mut().find(|i| i.field == field) {
            if let Some(old) = self.rows[row as usize][field].as_str() {
                let key = index_key(index.kind, old);
                if let Some(rows) = index.rows.get_mut(&key) {
                    rows.retain(|r| *r != row);
                    if rows.is_empty() {
                        index.rows.remove(&key);
                    }
                }
            }
            if let Some(new) = value.as_str() {
                index
                    .rows
                    .entry(index_key(index.kind, new))
                    .or_default()
                    .push(row);
            }
        }
        self.rows[row as usize][field] = value;
    }

    pub fn is_indexed(&self, field: usize) -> bool {
        field == 0 || self.indexes.iter().any(|i| i.field == field)
    }

    /// Rows whose `field` has index key `key` (see [`index_key`]).
    pub fn lookup(&self, field: usize, key: &str) -> &[u32] {
        if field == 0 {
            return self
                .by_id
                .get_key_value(key)
                .map_or(&[], |(_, row)| std::slice::from_ref(row));
        }
        self.indexes
            .iter()
            .find(|i| i.field == field)
            .and_then(|index| index.rows.get(key))
            .map_or(&[], Vec::as_slice)
    }
}

/// All tables of one org, indexed by [`ObjId`]. Cloned to roll back a
/// composite request with `allOrNone` that wrote.
#[derive(Clone, Debug)]
pub struct Store {
    pub tables: Vec<Table>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            tables: (0..schema().objects.len()).map(Table::new).collect(),
        }
    }

    pub fn table(&self, obj: ObjId) -> &Table {
        &self.tables[obj]
    }

    pub fn table_mut(&mut self, obj: ObjId) -> &mut Table {
        &mut self.tables[obj]
    }

    /// Object and row of a canonical id.
    pub fn find(&self, id: &str) -> Option<(ObjId, u32)> {
        let obj = schema().object_of_id(id)?;
        self.tables[obj].row_of(id).map(|row| (obj, row))
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}
