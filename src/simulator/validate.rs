//! Validation of one Collections record against describe metadata, with
//! Salesforce's per-record status codes and messages: unknown and locked
//! fields, required fields, lengths, picklists, emails, numbers, lookups,
//! unique values.

use std::collections::HashSet;

use serde::Serialize;

use super::ids::canonical;
use super::schema::{FieldDef, FieldType, ObjId, ValueKind, schema};
use super::store::{Store, Value, index_key};

/// One entry of a SaveResult's `errors`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordError {
    #[serde(rename = "statusCode")]
    pub status_code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(status_code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        RecordError {
            status_code,
            message: message.into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }

    pub fn required_missing(names: &[&str]) -> Self {
        RecordError::new(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", names.join(", ")),
            names,
        )
    }
}

/// A record body after its values were read: fields by index, plus the
/// names that matched no field.
#[derive(Debug)]
pub struct ParsedRecord {
    pub obj: ObjId,
    /// The `id` as sent, if any.
    pub id: Option<String>,
    pub fields: Vec<(usize, Value)>,
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Insert,
    Update(u32),
}

/// A validated write, ready to apply.
#[derive(Debug)]
pub struct Prepared {
    pub obj: ObjId,
    pub target: Target,
    pub values: Vec<(usize, Value)>,
}

/// Unique values and updated rows claimed by earlier records of the same request.
#[derive(Debug, Default)]
pub struct Pending {
    unique: HashSet<(ObjId, usize, Box<str>)>,
    rows: HashSet<(ObjId, u32)>,
    /// (CampaignId, ContactId or LeadId) of the campaign members created
    /// by earlier records of the request.
    members: HashSet<(String, String)>,
    /// A Collections update applies a record's repeats in turn (their
    /// number is limited by the caller); elsewhere a repeat is refused.
    repeats_allowed: bool,
}

impl Pending {
    /// For a Collections update: a record may be named again.
    pub fn repeats_allowed() -> Pending {
        Pending {
            repeats_allowed: true,
            ..Pending::default()
        }
    }
}

/// Whether `obj`'s row is live (not deleted).
pub fn is_live(store: &Store, obj: ObjId, row: u32) -> bool {
    *store.table(obj).get(row, schema().object(obj).is_deleted) != Value::Bool(true)
}

/// The row an update's `id` names, or why it names none.
pub fn locate(store: &Store, obj: ObjId, id: Option<&str>) -> Result<u32, RecordError> {
    let def = schema().object(obj);
    let id = id.ok_or_else(|| {
        RecordError::new(
            "MISSING_ARGUMENT",
            "Id not specified in an update call",
            &[],
        )
    })?;
    let malformed = || {
        RecordError::new(
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {id}", def.label),
            &["Id"],
        )
    };
    let id = canonical(id).ok_or_else(malformed)?;
    if schema().object_of_id(&id) != Some(obj) {
        return Err(malformed());
    }
    let row = store.table(obj).row_of(&id).ok_or_else(|| {
        RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            &[],
        )
    })?;
    if !is_live(store, obj, row) {
        return Err(RecordError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            &[],
        ));
    }
    Ok(row)
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// One value checked against its field; the value to store.
fn check_value(store: &Store, f: &FieldDef, v: Value) -> Result<Value, RecordError> {
    let out_of_range = |n: f64| {
        RecordError::new(
            "NUMBER_OUTSIDE_VALID_RANGE",
            format!(
                "{}: value outside of valid range on numeric field: {n}",
                f.label
            ),
            &[f.name],
        )
    };
    match v {
        Value::Null if f.ftype == FieldType::Boolean => Ok(Value::Bool(false)),
        Value::Null if !f.nillable => Err(RecordError::required_missing(&[f.name])),
        Value::Null => Ok(Value::Null),
        Value::Text(s) if f.ftype.kind() == ValueKind::Id => {
            let malformed = || {
                RecordError::new(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", f.label),
                    &[f.name],
                )
            };
            let id = canonical(&s).ok_or_else(malformed)?;
            let target = schema().object_of_id(&id).ok_or_else(malformed)?;
            if !f.reference_to.contains(&schema().object(target).name) {
                return Err(RecordError::new(
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {s}", f.label),
                    &[f.name],
                ));
            }
            match store.table(target).row_of(&id) {
                Some(row) if is_live(store, target, row) => Ok(Value::text(id)),
                Some(_) => Err(RecordError::new(
                    "ENTITY_IS_DELETED",
                    "entity is deleted",
                    &[f.name],
                )),
                None => Err(RecordError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[f.name],
                )),
            }
        }
        Value::Text(s) => {
            if s.chars().count() > f.length as usize {
                return Err(RecordError::new(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {s} (max length={})",
                        f.label, f.length
                    ),
                    &[f.name],
                ));
            }
            if f.ftype == FieldType::Email && !valid_email(&s) {
                return Err(RecordError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", f.label),
                    &[f.name],
                ));
            }
            if f.restricted_picklist && !f.picklist.iter().any(|p| p.value == &*s) {
                return Err(RecordError::new(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", f.label),
                    &[f.name],
                ));
            }
            Ok(Value::Text(s))
        }
        Value::Double(d) => {
            let scale = 10f64.powi(f.scale as i32);
            let rounded = (d * scale).round() / scale;
            if rounded.abs() >= 10f64.powi(f.precision.saturating_sub(f.scale) as i32) {
                return Err(out_of_range(d));
            }
            Ok(Value::Double(rounded))
        }
        Value::Int(i) => {
            if (i.unsigned_abs() as f64) >= 10f64.powi(f.digits as i32) {
                return Err(out_of_range(i as f64));
            }
            Ok(Value::Int(i))
        }
        other => Ok(other),
    }
}

/// Validates a create (`row: None`) or an update of `row`.
pub fn prepare(
    store: &Store,
    rec: &ParsedRecord,
    row: Option<u32>,
    pending: &mut Pending,
) -> Result<Prepared, Vec<RecordError>> {
    let obj = rec.obj;
    let def = schema().object(obj);
    let creating = row.is_none();
    if let Some(name) = rec.unknown.first() {
        return Err(vec![RecordError::new(
            "INVALID_FIELD",
            format!("No such column '{name}' on sobject of type {}", def.name),
            &[],
        )]);
    }
    if creating && !def.createable {
        return Err(vec![RecordError::new(
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type cannot be inserted: {}", def.name),
            &[],
        )]);
    }
    if creating && rec.id.is_some() {
        return Err(vec![RecordError::new(
            "INVALID_FIELD",
            "cannot specify Id in an insert call",
            &["Id"],
        )]);
    }
    let locked: Vec<&str> = rec
        .fields
        .iter()
        .map(|(f, _)| &def.fields[*f])
        .filter(|f| {
            if creating {
                !f.createable
            } else {
                !f.updateable
            }
        })
        .map(|f| f.name)
        .collect();
    if !locked.is_empty() {
        return Err(vec![RecordError::new(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this \
                 field and verify that it is read/write for your profile or permission set.",
                locked.join(", ")
            ),
            &locked,
        )]);
    }
    if creating {
        let given = |name: &str| {
            rec.fields
                .iter()
                .any(|(f, v)| def.fields[*f].name == name && !v.is_null())
        };
        let missing: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| f.required_on_create() && !given(f.name))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            return Err(vec![RecordError::required_missing(&missing)]);
        }
    }
    if let Some(row) = row
        && !pending.rows.insert((obj, row))
        && !pending.repeats_allowed
    {
        return Err(vec![RecordError::new(
            "DUPLICATE_ID",
            "Duplicate id in list",
            &[],
        )]);
    }
    let mut values = Vec::with_capacity(rec.fields.len());
    let mut errors = Vec::new();
    for (f, v) in &rec.fields {
        match check_value(store, &def.fields[*f], v.clone()) {
            Ok(v) => values.push((*f, v)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if def.name == "Event" {
        super::event_rules::derive_times(store, obj, row, &mut values).map_err(|e| vec![e])?;
    }
    for (f, v) in &values {
        let field = &def.fields[*f];
        let (true, Some(s)) = (field.unique, v.as_str()) else {
            continue;
        };
        let key = index_key(field.ftype.kind(), s);
        let holder = store
            .table(obj)
            .lookup(*f, &key)
            .iter()
            .copied()
            .find(|r| Some(*r) != row && is_live(store, obj, *r));
        let claimed = !pending.unique.insert((obj, *f, key));
        if holder.is_some() || claimed {
            let other = holder
                .and_then(|r| store.table(obj).get(r, 0).as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(vec![RecordError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {other}",
                    field.name
                ),
                &[field.name],
            )]);
        }
    }
    if creating && def.name == "CampaignMember" {
        not_a_member_yet(store, obj, &values, pending).map_err(|e| vec![e])?;
    }
    Ok(Prepared {
        obj,
        target: row.map_or(Target::Insert, Target::Update),
        values,
    })
}

/// A Lead or Contact is a member of a campaign at most once: Salesforce
/// refuses a second CampaignMember for the same pair, whether the first
/// exists already or comes earlier in the same request.
fn not_a_member_yet(
    store: &Store,
    obj: ObjId,
    values: &[(usize, Value)],
    pending: &mut Pending,
) -> Result<(), RecordError> {
    let def = schema().object(obj);
    let sent = |name: &str| {
        let f = def.field_index(name)?;
        values
            .iter()
            .find(|(i, _)| *i == f)
            .and_then(|(_, v)| v.as_str())
            .map(|s| (f, s.to_string()))
    };
    let Some((campaign_field, campaign)) = sent("CampaignId") else {
        return Ok(());
    };
    let duplicate = || RecordError::new("DUPLICATE_VALUE", "Already a campaign member.", &[]);
    for person in ["ContactId", "LeadId"] {
        let Some((person_field, who)) = sent(person) else {
            continue;
        };
        let key = index_key(def.fields[person_field].ftype.kind(), &who);
        let member = store.table(obj).lookup(person_field, &key).iter().any(|r| {
            is_live(store, obj, *r)
                && store.table(obj).get(*r, campaign_field).as_str() == Some(campaign.as_str())
        });
        if member || !pending.members.insert((campaign.clone(), who)) {
            return Err(duplicate());
        }
    }
    Ok(())
}
