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
use super::schema::{FieldDef, FieldType, ObjId, schema};
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
                Proj::Field(f)
                    if matches!(
                        def.fields[*f].ftype,
                        FieldType::Location | FieldType::Address
                    ) =>
                {
                    let compound = compound_json(self.obj, table, self.row, &def.fields[*f]);
                    map.serialize_entry(def.fields[*f].name, &compound)?
                }
                // A blob is not inlined: the query returns where to GET it.
                Proj::Field(f) if def.fields[*f].ftype == FieldType::Base64 => {
                    let name = def.fields[*f].name;
                    let url = (!table.get(self.row, *f).is_null()).then(|| {
                        format!(
                            "/services/data/{}/sobjects/{}/{id}/{name}",
                            self.version, def.name
                        )
                    });
                    map.serialize_entry(name, &url)?
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

/// A compound field as a query returns it, from its components; null when
/// they are all empty. A geolocation is `{"latitude": .., "longitude": ..}`;
/// an address is `{"city", "country", "geocodeAccuracy", "latitude",
/// "longitude", "postalCode", "state", "street"}` (from `BillingCity`, ...).
fn compound_json(
    obj: ObjId,
    table: &super::store::Table,
    row: u32,
    compound: &FieldDef,
) -> serde_json::Value {
    let def = schema().object(obj);
    let value = |i: Option<usize>| i.map_or(&Value::Null, |i| table.get(row, i));
    let parts: Vec<(&str, &Value)> = if compound.ftype == FieldType::Location {
        let part = |suffix: &str| {
            value(
                def.fields
                    .iter()
                    .position(|f| f.compound == Some(compound.name) && f.name.ends_with(suffix)),
            )
        };
        vec![
            ("latitude", part("__Latitude__s")),
            ("longitude", part("__Longitude__s")),
        ]
    } else {
        let prefix = compound
            .name
            .strip_suffix("Address")
            .unwrap_or(compound.name);
        let part = |name: &str| value(def.field_index(&format!("{prefix}{name}")));
        vec![
            ("city", part("City")),
            ("country", part("Country")),
            ("geocodeAccuracy", &Value::Null),
            ("latitude", part("Latitude")),
            ("longitude", part("Longitude")),
            ("postalCode", part("PostalCode")),
            ("state", part("State")),
            ("street", part("Street")),
        ]
    };
    if parts.iter().all(|(_, v)| v.is_null()) {
        return serde_json::Value::Null;
    }
    parts
        .into_iter()
        .map(|(key, v)| {
            let json = serde_json::to_value(JsonValue(v)).unwrap_or_default();
            (key.to_string(), json)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
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

/// `GET sobjects/{object}/{id}/{field}`: the bytes of a base64 field (the
/// URL a query returned in its place). An unknown object, record or field,
/// or a field without data, is 404 NOT_FOUND.
pub fn blob(org: &Org, object: &str, id: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let obj = schema().object_id(object).ok_or_else(ApiError::not_found)?;
    let def = schema().object(obj);
    let f = def
        .field_index(field)
        .filter(|f| def.fields[*f].ftype == FieldType::Base64)
        .ok_or_else(ApiError::not_found)?;
    let id = super::ids::canonical(id).ok_or_else(ApiError::not_found)?;
    let store = org.read();
    let table = store.table(obj);
    let row = table.row_of(&id).ok_or_else(ApiError::not_found)?;
    if table.get(row, def.is_deleted) == &Value::Bool(true) {
        return Err(ApiError::not_found());
    }
    let encoded = table.get(row, f).as_str().ok_or_else(ApiError::not_found)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| ApiError::bad_request("UNKNOWN_EXCEPTION", e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::SimConfig;
    use crate::simulator::org::Sim;

    fn sim() -> Sim {
        let config = SimConfig {
            contacts: 100,
            ..SimConfig::default()
        };
        Sim::new(config, String::new())
    }

    fn query(org: &Org, soql: &str) -> Result<serde_json::Value, ApiError> {
        let reply = run(org, "v62.0", soql, false, DEFAULT_BATCH)?;
        Ok(serde_json::from_slice(&reply.body).unwrap_or_default())
    }

    #[test]
    fn an_address_compound_is_an_object_of_its_components() {
        let sim = sim();
        let body = query(
            &sim.orgs[0],
            "SELECT BillingAddress, BillingCity, BillingLatitude FROM Account ORDER BY Id LIMIT 1",
        )
        .unwrap_or_default();
        let record = &body["records"][0];
        let address = &record["BillingAddress"];
        let keys: Vec<&str> = address
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "city",
                "country",
                "geocodeAccuracy",
                "latitude",
                "longitude",
                "postalCode",
                "state",
                "street"
            ]
        );
        assert_eq!(address["city"], record["BillingCity"]);
        assert_eq!(address["latitude"], record["BillingLatitude"]);
    }

    #[test]
    fn a_blob_is_a_url_to_get_it_from() {
        let sim = sim();
        let org = &sim.orgs[0];
        let body = query(
            org,
            "SELECT Id, Body, BodyLength FROM Attachment ORDER BY Id LIMIT 1",
        )
        .unwrap_or_default();
        let record = &body["records"][0];
        let id = record["Id"].as_str().unwrap_or_default();
        assert_eq!(
            record["Body"],
            format!("/services/data/v62.0/sobjects/Attachment/{id}/Body")
        );
        let bytes = blob(org, "Attachment", id, "Body").unwrap_or_default();
        assert_eq!(Some(bytes.len() as u64), record["BodyLength"].as_u64());
        assert!(bytes.starts_with(b"Call notes 0:"));
        // Not a blob field, or no such record: 404, as Salesforce answers.
        assert!(blob(org, "Attachment", id, "Name").is_err());
        assert!(blob(org, "Attachment", "00P000000000000AAA", "Body").is_err());
        let err = query(org, "SELECT Id FROM Attachment WHERE Body = 'x'").err();
        assert!(err.is_some_and(|e| e.status == axum::http::StatusCode::BAD_REQUEST));
    }

    #[test]
    fn time_fields_filter_by_time_literals_only() {
        let sim = sim();
        let org = &sim.orgs[0];
        let count = |soql: &str| query(org, soql).map(|b| b["totalSize"].as_u64());
        let all = query(org, "SELECT WM_Opens_At__c FROM Account").unwrap_or_default();
        let early = all["records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter(|r| r["WM_Opens_At__c"].as_str() < Some("08:00:00.000Z"))
                    .count() as u64
            })
            .unwrap_or_default();
        assert!(early > 0);
        assert_eq!(
            count("SELECT Id FROM Account WHERE WM_Opens_At__c < 08:00:00.000Z").ok(),
            Some(Some(early))
        );
        assert_eq!(
            count("SELECT Id FROM Account WHERE WM_Opens_At__c < 09:00:00+01:00").ok(),
            Some(Some(early))
        );
        assert!(count("SELECT Id FROM Account WHERE WM_Opens_At__c < '08:00:00.000Z'").is_err());
    }
}
