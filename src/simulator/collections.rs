//! sObject Collections: create (`POST`), update (`PATCH`), upsert by
//! external id (`PATCH …/{Object}/{Field}`) and delete (`DELETE ?ids=`).
//! HTTP 200 with one result per record, in order; with `allOrNone` any
//! failure rolls back the whole request.

use std::collections::HashSet;

use chrono::Utc;
use serde::Serialize;

use super::convert::{self, MAX_RECORDS, parse_body, read_record};
use super::error::ApiError;
use super::ids::canonical;
use super::org::Org;
use super::schema::{ObjId, schema};
use super::store::{Store, index_key};
use super::validate::{self, ParsedRecord, Pending, Prepared, RecordError};
use super::writes::{self, WriteCtx};

/// One entry of the response array.
#[derive(Debug, Serialize)]
pub struct SaveResult {
    pub id: Option<String>,
    pub success: bool,
    pub errors: Vec<RecordError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

/// Create or update, by HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

pub(super) enum Action {
    Write(Prepared),
    Delete(ObjId, u32),
}

/// What became of one record before anything was applied.
pub(super) struct Outcome {
    /// Id to report: the target record's, when known.
    id: Option<String>,
    /// `Some` for upserts.
    created: Option<bool>,
    action: Result<Action, Vec<RecordError>>,
}

impl Outcome {
    /// A record that failed before validation (Bulk: unreadable CSV values).
    pub(super) fn failed(id: Option<String>, error: RecordError) -> Outcome {
        Outcome {
            id,
            created: None,
            action: Err(vec![error]),
        }
    }
}

fn rolled_back() -> RecordError {
    RecordError::new(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
        &[],
    )
}

/// A per-record error injected through `/__sim/fail_records`, worded as
/// Salesforce words it.
fn injected(code: &str, id: Option<&str>) -> RecordError {
    match code {
        "UNABLE_TO_LOCK_ROW" => RecordError::new(
            "UNABLE_TO_LOCK_ROW",
            format!(
                "unable to obtain exclusive access to this record or 1 records: {}",
                id.unwrap_or_default()
            ),
            &[],
        ),
        "FIELD_CUSTOM_VALIDATION_EXCEPTION" => RecordError::new(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "failure injected by the simulator (a validation rule)",
            &[],
        ),
        _ => RecordError::new(
            "UNKNOWN_EXCEPTION",
            "failure injected by the simulator",
            &[],
        ),
    }
}

/// Applies the outcomes (or none of them, under allOrNone with a failure).
pub(super) fn finish(
    org: &Org,
    store: &mut Store,
    outcomes: Vec<Outcome>,
    all_or_none: bool,
) -> Vec<SaveResult> {
    let ctx = WriteCtx {
        pod: org.pod,
        user: &org.integration_user,
        now: Utc::now(),
    };
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|mut o| {
            if o.action.is_ok()
                && let Some(code) = org.next_record_fault()
            {
                o.action = Err(vec![injected(&code, o.id.as_deref())]);
            }
            o
        })
        .collect();
    let failed = outcomes.iter().any(|o| o.action.is_err());
    outcomes
        .into_iter()
        .map(|o| match o.action {
            Err(errors) => SaveResult {
                id: o.id,
                success: false,
                errors,
                created: o.created.map(|_| false),
            },
            Ok(_) if all_or_none && failed => SaveResult {
                id: o.id,
                success: false,
                errors: vec![rolled_back()],
                created: o.created.map(|_| false),
            },
            Ok(Action::Write(p)) => SaveResult {
                id: Some(writes::apply(store, p, &ctx)),
                success: true,
                errors: Vec::new(),
                created: o.created,
            },
            Ok(Action::Delete(obj, row)) => {
                writes::delete(store, obj, row, &ctx);
                SaveResult {
                    id: o.id,
                    success: true,
                    errors: Vec::new(),
                    created: None,
                }
            }
        })
        .collect()
}

/// Validates one create or update of a Collections or Bulk request.
pub(super) fn save_one(
    store: &Store,
    op: Operation,
    rec: &ParsedRecord,
    pending: &mut Pending,
) -> Outcome {
    let row = match op {
        Operation::Create => None,
        Operation::Update => match validate::locate(store, rec.obj, rec.id.as_deref()) {
            Ok(row) => Some(row),
            Err(e) => {
                return Outcome {
                    id: rec.id.as_deref().and_then(canonical),
                    created: None,
                    action: Err(vec![e]),
                };
            }
        },
    };
    let id = row.and_then(|r| store.table(rec.obj).get(r, 0).as_str().map(str::to_string));
    Outcome {
        id,
        created: None,
        action: validate::prepare(store, rec, row, pending).map(Action::Write),
    }
}

/// Repeats of an Id one update call may carry: Salesforce processes them
/// in order and refuses every further repeat with `DUPLICATE_VALUE`.
pub const DUPLICATE_UPDATES: usize = 12;

/// The error of an update past [`DUPLICATE_UPDATES`] repeats, worded as
/// Salesforce words it (with the record's 15-character Id).
fn too_many_duplicates(id: &str) -> RecordError {
    RecordError::new(
        "DUPLICATE_VALUE",
        format!(
            "Maximum number of duplicate updates in one batch ({DUPLICATE_UPDATES} allowed). Attempt to update Id more than once in this Api call: {}",
            &id[..id.len().min(15)]
        ),
        &[],
    )
}

/// Counts the records of one request that repeat an Id named earlier in
/// it (the simulator's `duplicate_ids` counter).
#[derive(Default)]
struct Repeats {
    seen: HashSet<String>,
    count: usize,
}

impl Repeats {
    /// Whether `id` was named before in this request (and count it).
    fn again(&mut self, id: &str) -> bool {
        if self.seen.insert(id.to_string()) {
            return false;
        }
        self.count += 1;
        true
    }
}

/// `POST` / `PATCH /composite/sobjects`. Returns the results and the number
/// of records in the body. An update naming a record more than once is
/// applied in order, up to [`DUPLICATE_UPDATES`] repeats.
pub fn save(org: &Org, op: Operation, body: &[u8]) -> Result<(Vec<SaveResult>, usize), ApiError> {
    let (all_or_none, records) = parse_body(body)?;
    let text = String::from_utf8_lossy(body);
    let parsed = records
        .iter()
        .map(|r| read_record(r, &text, None))
        .collect::<Result<Vec<_>, _>>()?;
    let mut store = org.write();
    let mut pending = Pending::repeats_allowed();
    let mut repeats = Repeats::default();
    let outcomes = parsed
        .iter()
        .map(|rec| {
            let id = rec.id.as_deref().and_then(canonical);
            if op == Operation::Update
                && let Some(id) = id
                && repeats.again(&id)
                && repeats.count > DUPLICATE_UPDATES
            {
                let error = too_many_duplicates(&id);
                return Outcome::failed(Some(id), error);
            }
            save_one(&store, op, rec, &mut pending)
        })
        .collect();
    let results = finish(org, &mut store, outcomes, all_or_none);
    drop(store);
    org.stats().duplicate_ids += repeats.count as u64;
    Ok((results, records.len()))
}

/// The index of `ext_field`, the external id field an upsert matches on
/// (`Id` included), or Salesforce's 404 when it is not one.
pub(super) fn external_id_field(obj: ObjId, ext_field: &str) -> Result<usize, ApiError> {
    let def = schema().object(obj);
    def.field_index(ext_field)
        .filter(|f| *f == 0 || def.fields[*f].external_id)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "Provided external ID field does not exist or is not accessible: {ext_field}"
                ),
            )
        })
}

/// `PATCH /composite/sobjects/{Object}/{ExternalIdField}`.
pub fn upsert(
    org: &Org,
    object: &str,
    ext_field: &str,
    body: &[u8],
) -> Result<(Vec<SaveResult>, usize), ApiError> {
    let obj = schema().object_id(object).ok_or_else(ApiError::not_found)?;
    let def = schema().object(obj);
    let ext = external_id_field(obj, ext_field)?;
    let (all_or_none, records) = parse_body(body)?;
    let text = String::from_utf8_lossy(body);
    let mut parsed = Vec::with_capacity(records.len());
    for r in &records {
        let rec = read_record(r, &text, Some(obj))?;
        if rec.obj != obj {
            return Err(ApiError::bad_request(
                "INVALID_TYPE",
                format!("Record type does not match the URL: expected {}", def.name),
            ));
        }
        parsed.push(rec);
    }
    let mut store = org.write();
    let mut pending = Pending::default();
    let outcomes = parsed
        .into_iter()
        .map(|rec| upsert_one(&store, ext, rec, &mut pending))
        .collect();
    Ok((
        finish(org, &mut store, outcomes, all_or_none),
        records.len(),
    ))
}

/// Matches one upsert record on external id field `ext` and validates it
/// as a create or an update.
pub(super) fn upsert_one(
    store: &Store,
    ext: usize,
    mut rec: ParsedRecord,
    pending: &mut Pending,
) -> Outcome {
    let obj = rec.obj;
    let def = schema().object(obj);
    let key = if ext == 0 {
        rec.id.take().and_then(|id| canonical(&id))
    } else {
        rec.fields
            .iter()
            .find(|(f, _)| *f == ext)
            .and_then(|(_, v)| v.as_str())
            .map(|s| index_key(def.fields[ext].ftype.kind(), s).into_string())
    };
    let Some(key) = key else {
        return Outcome {
            id: None,
            created: Some(false),
            action: Err(vec![RecordError::new(
                "MISSING_ARGUMENT",
                format!("{} not specified", def.fields[ext].name),
                &[],
            )]),
        };
    };
    let matches: Vec<u32> = store
        .table(obj)
        .lookup(ext, &key)
        .iter()
        .copied()
        .filter(|r| validate::is_live(store, obj, *r))
        .collect();
    let id_of = |r: u32| store.table(obj).get(r, 0).as_str().map(str::to_string);
    if matches.len() > 1 {
        let ids: Vec<String> = matches.iter().filter_map(|r| id_of(*r)).collect();
        return Outcome {
            id: None,
            created: Some(false),
            action: Err(vec![RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{}: more than one record found for external id field: [{}]",
                    def.fields[ext].label,
                    ids.join(", ")
                ),
                &[def.fields[ext].name],
            )]),
        };
    }
    let row = matches.first().copied();
    if row.is_some() {
        // Matching on the key field does not update it.
        rec.fields.retain(|(f, _)| *f != ext);
    }
    Outcome {
        id: row.and_then(id_of),
        created: Some(row.is_none()),
        action: validate::prepare(store, &rec, row, pending).map(Action::Write),
    }
}

/// `DELETE /composite/sobjects?ids=…&allOrNone=…`.
pub fn delete(org: &Org, query: &str) -> Result<(Vec<SaveResult>, usize), ApiError> {
    let mut ids = Vec::new();
    let mut all_or_none = false;
    let mut saw_ids = false;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "ids" => {
                saw_ids = true;
                ids.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
            "allOrNone" => all_or_none = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if !saw_ids {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "ids parameter is required",
        ));
    }
    if ids.len() > MAX_RECORDS {
        return Err(convert::too_many_records());
    }
    let mut store = org.write();
    // A repeated Id names a record its first mention already deletes.
    let mut repeats = Repeats::default();
    let outcomes = ids
        .iter()
        .map(|raw| match canonical(raw) {
            Some(id) if repeats.again(&id) => Outcome::failed(
                Some(id),
                RecordError::new("ENTITY_IS_DELETED", "entity is deleted", &[]),
            ),
            _ => delete_one(&store, raw),
        })
        .collect();
    let results = finish(org, &mut store, outcomes, all_or_none);
    drop(store);
    org.stats().duplicate_ids += repeats.count as u64;
    Ok((results, ids.len()))
}

/// Checks one id of a delete.
pub(super) fn delete_one(store: &Store, raw: &str) -> Outcome {
    let Some(id) = canonical(raw) else {
        return Outcome {
            id: None,
            created: None,
            action: Err(vec![RecordError::new(
                "MALFORMED_ID",
                format!("malformed id {raw}"),
                &[],
            )]),
        };
    };
    let action = match store.find(&id) {
        Some((obj, _)) if !schema().object(obj).deletable => Err(vec![RecordError::new(
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights on object id",
            &[],
        )]),
        Some((obj, row)) if validate::is_live(store, obj, row) => Ok(Action::Delete(obj, row)),
        _ => Err(vec![RecordError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            &[],
        )]),
    };
    Outcome {
        id: Some(id),
        created: None,
        action,
    }
}
