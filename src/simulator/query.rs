//! The query resources: `query`/`queryAll` run a statement and return its
//! first page; further pages come from a cursor through
//! `query/{locator}-{offset}`. Records are rendered in SELECT order with
//! parent paths nested, as Salesforce does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::http::HeaderMap;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::error::ApiError;
use super::ids::{base62, to_18};
use super::org::Org;
use super::schema::{FieldType, ObjId, schema};
use super::soql::{self, CompiledQuery, Proj};
use super::store::{Store, Value, format_date, format_datetime};

pub const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
/// Longest SOQL statement Salesforce accepts.
const MAX_SOQL_CHARS: usize = 100_000;
/// Open cursors kept per org; the oldest is dropped beyond this.
const MAX_CURSORS: usize = 1000;

/// The rest of a query's result, waiting for `query/{locator}`.
#[derive(Debug)]
struct Cursor {
    query: Arc<CompiledQuery>,
    rows: Arc<Vec<u32>>,
    batch: usize,
}

/// Open query cursors of one org.
#[derive(Debug, Default)]
pub struct Cursors {
    open: HashMap<String, Cursor>,
    order: VecDeque<String>,
    issued: u64,
}

impl Cursors {
    fn open(&mut self, pod: &str, cursor: Cursor) -> String {
        self.issued += 1;
        let id15 = format!("01g{pod}0{}", base62(self.issued, 9));
        let id = to_18(&id15).unwrap_or(id15);
        self.open.insert(id.clone(), cursor);
        self.order.push_back(id.clone());
        while self.order.len() > MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.open.remove(&old);
            }
        }
        id
    }

    fn close(&mut self, id: &str) {
        self.open.remove(id);
        self.order.retain(|c| c != id);
    }
}

/// Page size from `Sforce-Query-Options: batchSize=N`, clamped to 200..=2000.
pub fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|opt| {
                let (k, n) = opt.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("batchSize")
                    .then(|| n.trim().parse::<usize>().ok())?
            })
        })
        .map_or(DEFAULT_BATCH, |n| n.clamp(MIN_BATCH, DEFAULT_BATCH))
}

/// A stored value as Salesforce writes it in JSON.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Text(t) => s.serialize_str(t),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Double(d) => s.serialize_f64(*d),
            Value::Date(d) => s.serialize_str(&format_date(*d)),
            Value::DateTime(t) => s.serialize_str(&format_datetime(*t)),
        }
    }
}

/// One record with its selected fields, serialized in SELECT order.
struct RecordJson<'a> {
    store: &'a Store,
    obj: ObjId,
    row: u32,
    proj: &'a [Proj],
    version: &'a str,
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let def = schema().object(self.obj);
        let table = self.store.table(self.obj);
        let mut map = s.serialize_map(Some(self.proj.len() + 1))?;
        let id = table.get(self.row, 0).as_str().unwrap_or_default();
        map.serialize_entry(
            "attributes",
            &serde_json::json!({
                "type": def.name,
                "url": format!("/services/data/{}/sobjects/{}/{id}", self.version, def.name),
            }),
        )?;
        for p in self.proj {
            match p {
                Proj::Field(f) if def.fields[*f].ftype == FieldType::Location => {
                    let location = location_json(self.obj, table, self.row, def.fields[*f].name);
                    map.serialize_entry(def.fields[*f].name, &location)?
                }
                Proj::Field(f) => {
                    map.serialize_entry(def.fields[*f].name, &JsonValue(table.get(self.row, *f)))?
                }
                Proj::Parent { via, name, targets } => {
                    let parent = soql::eval::parent_row(self.store, self.obj, self.row, *via);
                    let nested = parent.map(|(t, row)| RecordJson {
                        store: self.store,
                        obj: t,
                        row,
                        proj: targets
                            .iter()
                            .find(|(o, _)| *o == t)
                            .map_or(&[][..], |(_, children)| children.as_slice()),
                        version: self.version,
                    });
                    map.serialize_entry(name, &nested)?;
                }
            }
        }
        map.end()
    }
}

/// A geolocation compound as a query returns it: `{"latitude": ..,
/// "longitude": ..}` from its components, or null when both are empty.
fn location_json(
    obj: ObjId,
    table: &super::store::Table,
    row: u32,
    compound: &str,
) -> serde_json::Value {
    let def = schema().object(obj);
    let part = |suffix: &str| {
        def.fields
            .iter()
            .position(|f| f.compound == Some(compound) && f.name.ends_with(suffix))
            .and_then(|i| match table.get(row, i) {
                Value::Double(d) => Some(*d),
                _ => None,
            })
    };
    match (part("__Latitude__s"), part("__Longitude__s")) {
        (None, None) => serde_json::Value::Null,
        (lat, lon) => serde_json::json!({ "latitude": lat, "longitude": lon }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    total_size: usize,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_records_url: Option<String>,
    records: Vec<RecordJson<'a>>,
}

/// A rendered response body and the number of records in it.
pub struct QueryReply {
    pub body: Vec<u8>,
    pub records: usize,
}

fn render(
    store: &Store,
    version: &str,
    query: &CompiledQuery,
    rows: &[u32],
    start: usize,
    batch: usize,
    cursor: Option<&str>,
) -> Result<QueryReply, ApiError> {
    let end = (start + batch).min(rows.len());
    let records: Vec<RecordJson> = rows[start.min(end)..end]
        .iter()
        .map(|row| RecordJson {
            store,
            obj: query.object,
            row: *row,
            proj: &query.projection,
            version,
        })
        .collect();
    let count = records.len();
    let page = Page {
        total_size: rows.len(),
        done: cursor.is_none(),
        next_records_url: cursor.map(|c| format!("/services/data/{version}/query/{c}-{end}")),
        records,
    };
    let body = serde_json::to_vec(&page)
        .map_err(|e| ApiError::bad_request("UNKNOWN_EXCEPTION", e.to_string()))?;
    Ok(QueryReply {
        body,
        records: count,
    })
}

/// `GET query?q=` (or `queryAll` when `all_rows`).
pub fn run(
    org: &Org,
    version: &str,
    soql_text: &str,
    all_rows: bool,
    batch: usize,
) -> Result<QueryReply, ApiError> {
    if soql_text.chars().count() > MAX_SOQL_CHARS {
        return Err(ApiError::bad_request(
            "MALFORMED_QUERY",
            "SOQL statements cannot be longer than 100000 characters",
        ));
    }
    let parsed = soql::parser::parse(soql_text)?;
    let query = soql::compile(soql_text, &parsed)?;
    let store = org.read();
    let rows = soql::execute(&store, &query, all_rows);
    if query.count_only {
        let body = serde_json::to_vec(&serde_json::json!({
            "totalSize": rows.len(), "done": true, "records": [],
        }))
        .unwrap_or_default();
        return Ok(QueryReply { body, records: 0 });
    }
    if rows.len() <= batch {
        return render(&store, version, &query, &rows, 0, batch, None);
    }
    let query = Arc::new(query);
    let rows = Arc::new(rows);
    let cursor = org.cursors().open(
        org.pod,
        Cursor {
            query: Arc::clone(&query),
            rows: Arc::clone(&rows),
            batch,
        },
    );
    render(&store, version, &query, &rows, 0, batch, Some(&cursor))
}

fn invalid_locator() -> ApiError {
    ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
}

/// `GET query/{cursor}-{offset}`: the page at `offset`; the cursor closes
/// when its last page is read.
pub fn more(org: &Org, version: &str, locator: &str) -> Result<QueryReply, ApiError> {
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid_locator)?;
    let offset: usize = offset.parse().map_err(|_| invalid_locator())?;
    let (query, rows, batch) = {
        let cursors = org.cursors();
        let c = cursors.open.get(id).ok_or_else(invalid_locator)?;
        (Arc::clone(&c.query), Arc::clone(&c.rows), c.batch)
    };
    if offset >= rows.len() {
        return Err(invalid_locator());
    }
    let last = offset + batch >= rows.len();
    if last {
        org.cursors().close(id);
    }
    let store = org.read();
    render(
        &store,
        version,
        &query,
        &rows,
        offset,
        batch,
        (!last).then_some(id),
    )
}
