//! Applying a validated Collections record to the store: new ids,
//! defaults, audit fields, fields Salesforce derives, and deletion.

use chrono::{DateTime, Duration, Utc};

use super::ids::{make_id, seq_for_index};
use super::schema::{FieldType, ObjId, schema};
use super::store::{Store, Value};
use super::validate::{Prepared, Target};

/// Who and when of a write.
pub struct WriteCtx<'a> {
    pub pod: &'a str,
    pub user: &'a str,
    pub now: DateTime<Utc>,
}

fn set(store: &mut Store, obj: ObjId, row: u32, name: &str, value: Value) {
    if let Some(f) = schema().object(obj).field_index(name) {
        store.table_mut(obj).set(row, f, value);
    }
}

fn get<'a>(store: &'a Store, obj: ObjId, row: u32, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    schema()
        .object(obj)
        .field_index(name)
        .map_or(&NULL, |f| store.table(obj).get(row, f))
}

/// Fields Salesforce derives from others: Name from First/LastName, and an
/// event's start, end and duration from each other.
fn derive(store: &mut Store, obj: ObjId, row: u32) {
    let def = schema().object(obj);
    if def
        .field_index("Name")
        .is_some_and(|f| def.fields[f].calculated)
    {
        let first = get(store, obj, row, "FirstName")
            .as_str()
            .map(str::to_string);
        let last = get(store, obj, row, "LastName")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = match first {
            Some(first) => format!("{first} {last}"),
            None => last,
        };
        set(store, obj, row, "Name", Value::text(name));
    }
    if def.name == "Event" {
        let start = get(store, obj, row, "StartDateTime").clone();
        let activity = get(store, obj, row, "ActivityDateTime").clone();
        match (&start, &activity) {
            (Value::Null, Value::DateTime(_)) => {
                set(store, obj, row, "StartDateTime", activity.clone())
            }
            (Value::DateTime(_), Value::Null) => {
                set(store, obj, row, "ActivityDateTime", start.clone())
            }
            _ => {}
        }
        let start = get(store, obj, row, "StartDateTime").clone();
        let end = get(store, obj, row, "EndDateTime").clone();
        let minutes = get(store, obj, row, "DurationInMinutes").clone();
        match (start, end, minutes) {
            (Value::DateTime(s), Value::Null, Value::Int(m)) => set(
                store,
                obj,
                row,
                "EndDateTime",
                Value::DateTime(s + Duration::minutes(m)),
            ),
            (Value::DateTime(s), Value::DateTime(e), Value::Null) => set(
                store,
                obj,
                row,
                "DurationInMinutes",
                Value::Int((e - s).num_minutes()),
            ),
            _ => {}
        }
    }
}

/// Applies a validated write; returns the record's id.
pub fn apply(store: &mut Store, p: Prepared, ctx: &WriteCtx) -> String {
    let obj = p.obj;
    let def = schema().object(obj);
    let row = match p.target {
        Target::Update(row) => row,
        Target::Insert => {
            let id = make_id(
                def.key_prefix,
                ctx.pod,
                seq_for_index(store.table(obj).len()),
            );
            let mut values = vec![Value::Null; def.fields.len()];
            values[0] = Value::text(id);
            for (i, f) in def.fields.iter().enumerate() {
                if f.ftype == FieldType::Boolean {
                    values[i] = Value::Bool(false);
                } else if let Some(default) = f.default_value() {
                    values[i] = Value::text(default);
                }
            }
            let row = store.table_mut(obj).insert(values.into());
            set(store, obj, row, "CreatedDate", Value::DateTime(ctx.now));
            set(store, obj, row, "CreatedById", Value::text(ctx.user));
            set(store, obj, row, "OwnerId", Value::text(ctx.user));
            row
        }
    };
    for (f, v) in p.values {
        store.table_mut(obj).set(row, f, v);
    }
    set(
        store,
        obj,
        row,
        "LastModifiedDate",
        Value::DateTime(ctx.now),
    );
    set(store, obj, row, "SystemModstamp", Value::DateTime(ctx.now));
    set(store, obj, row, "LastModifiedById", Value::text(ctx.user));
    derive(store, obj, row);
    store
        .table(obj)
        .get(row, 0)
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Marks a record deleted (it stays visible to queryAll).
pub fn delete(store: &mut Store, obj: ObjId, row: u32, ctx: &WriteCtx) {
    set(store, obj, row, "IsDeleted", Value::Bool(true));
    set(
        store,
        obj,
        row,
        "LastModifiedDate",
        Value::DateTime(ctx.now),
    );
    set(store, obj, row, "SystemModstamp", Value::DateTime(ctx.now));
    set(store, obj, row, "LastModifiedById", Value::text(ctx.user));
}
