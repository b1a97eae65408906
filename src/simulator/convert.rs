//! Reading Collections JSON bodies: `allOrNone`, the records, their types
//! and field values. A value that cannot be read as its field's type fails
//! the whole request with JSON_PARSER_ERROR, as Salesforce's deserializer
//! does before any record is processed.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value as Json};

use super::error::ApiError;
use super::schema::{FieldDef, FieldType, ObjId, ValueKind, schema};
use super::soql::lexer::parse_datetime;
use super::store::Value;
use super::validate::ParsedRecord;

/// Records (or ids) one Collections request may carry.
pub const MAX_RECORDS: usize = 200;

/// Jackson's name for the JSON token a value starts with.
fn token_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "VALUE_NULL",
        Json::Bool(true) => "VALUE_TRUE",
        Json::Bool(false) => "VALUE_FALSE",
        Json::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Json::Number(_) => "VALUE_NUMBER_INT",
        Json::String(_) => "VALUE_STRING",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

fn shown(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Array(_) => "[".into(),
        Json::Object(_) => "{".into(),
        other => other.to_string(),
    }
}

/// Line and column (1-based) of the first occurrence of `"key"` in `body`,
/// for the position Salesforce's parser reports.
pub fn position(body: &str, key: &str) -> (usize, usize) {
    let offset = body.find(&format!("\"{key}\"")).unwrap_or(0);
    let before = &body[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

/// Salesforce's message for a value of the wrong JSON type.
pub fn type_error(field: &FieldDef, v: &Json, body: &str, key: &str) -> String {
    let type_name = match field.ftype.kind() {
        ValueKind::DateTime => "datetime",
        ValueKind::Number => "double",
        ValueKind::Text | ValueKind::Id => "string",
        _ => field.ftype.api_name(),
    };
    let (line, col) = position(body, key);
    format!(
        "Cannot deserialize instance of {type_name} from {} value {} or request may be missing a \
         required field at [line:{line}, column:{col}]",
        token_name(v),
        shown(v)
    )
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_any_datetime(s).map(|t| t.date_naive()))
}

/// Datetimes as clients send them: with `Z`, `+01:00` or `+0000`, or a bare
/// date (midnight UTC) or zone-less time (UTC).
pub fn parse_any_datetime(s: &str) -> Option<DateTime<Utc>> {
    parse_datetime(s)
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// The stored value of `v` for `field`; `None` when the JSON type does not fit.
/// Empty text becomes null, as Salesforce stores it.
pub fn to_value(field: &FieldDef, v: &Json) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    if field.ftype == FieldType::Base64 {
        use base64::Engine;
        let text = v.as_str()?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        return Some(Value::text(text));
    }
    match field.ftype.kind() {
        ValueKind::Text | ValueKind::Id => match v {
            Json::String(s) if s.is_empty() => Some(Value::Null),
            Json::String(s) => Some(Value::text(s.as_str())),
            Json::Number(n) if field.ftype.kind() == ValueKind::Text => {
                Some(Value::text(n.to_string()))
            }
            Json::Bool(b) if field.ftype.kind() == ValueKind::Text => {
                Some(Value::text(b.to_string()))
            }
            _ => None,
        },
        ValueKind::Bool => match v {
            Json::Bool(b) => Some(Value::Bool(*b)),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
            _ => None,
        },
        ValueKind::Int => {
            let n = match v {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }?;
            (n.fract() == 0.0 && n.abs() < 9.0e15).then_some(Value::Int(n as i64))
        }
        ValueKind::Number => match v {
            Json::Number(n) => n.as_f64().map(Value::Double),
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Double),
            _ => None,
        },
        ValueKind::Date => v.as_str().and_then(parse_date).map(Value::Date),
        ValueKind::DateTime => v.as_str().and_then(parse_any_datetime).map(Value::DateTime),
    }
}

pub fn too_many_records() -> ApiError {
    ApiError::bad_request(
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )
}

/// `allOrNone` and the records of a request body.
pub fn parse_body(body: &[u8]) -> Result<(bool, Vec<Json>), ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::json_parser(e.to_string()))?;
    let json: Json = serde_json::from_str(text).map_err(|e| {
        ApiError::json_parser(format!(
            "{e}; at [line:{}, column:{}]",
            e.line(),
            e.column()
        ))
    })?;
    let Json::Object(mut top) = json else {
        return Err(ApiError::json_parser(
            "Cannot deserialize instance of complexvalue from START_ARRAY value [ or request may be \
             missing a required field at [line:1, column:1]",
        ));
    };
    let all_or_none = top
        .get("allOrNone")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let records = match top.remove("records") {
        Some(Json::Array(records)) => records,
        _ => return Err(ApiError::json_parser("Missing required field: records")),
    };
    if records.len() > MAX_RECORDS {
        return Err(too_many_records());
    }
    Ok((all_or_none, records))
}

/// Reads one record's values; a value of the wrong JSON type fails the request.
pub fn read_record(
    rec: &Json,
    body: &str,
    url_object: Option<ObjId>,
) -> Result<ParsedRecord, ApiError> {
    let Json::Object(map) = rec else {
        return Err(ApiError::json_parser(
            "Cannot deserialize instance of sobject from a non-object value",
        ));
    };
    let type_name = map
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str);
    let obj = match (type_name, url_object) {
        (Some(t), _) => schema().object_id(t).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_TYPE",
                format!("sObject type '{t}' is not supported."),
            )
        })?,
        (None, Some(o)) => o,
        (None, None) => {
            return Err(ApiError::bad_request(
                "INVALID_TYPE",
                "Must send a concrete entity type.",
            ));
        }
    };
    read_fields(obj, map, body)
}

fn read_fields(obj: ObjId, map: &Map<String, Json>, body: &str) -> Result<ParsedRecord, ApiError> {
    let def = schema().object(obj);
    let mut rec = ParsedRecord {
        obj,
        id: None,
        fields: Vec::new(),
        unknown: Vec::new(),
    };
    for (key, value) in map {
        if key == "attributes" {
            continue;
        }
        if key.eq_ignore_ascii_case("id") {
            match value {
                Json::String(s) => rec.id = Some(s.clone()),
                Json::Null => {}
                other => {
                    return Err(ApiError::json_parser(type_error(
                        &def.fields[0],
                        other,
                        body,
                        key,
                    )));
                }
            }
            continue;
        }
        match def.field_index(key) {
            Some(f) => {
                let field = &def.fields[f];
                let v = to_value(field, value)
                    .ok_or_else(|| ApiError::json_parser(type_error(field, value, body, key)))?;
                rec.fields.push((f, v));
            }
            None => rec.unknown.push(key.clone()),
        }
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_by_field_type() {
        let double = FieldDef::new("N__c", "N", FieldType::Double);
        assert_eq!(to_value(&double, &json!(9)), Some(Value::Double(9.0)));
        assert_eq!(to_value(&double, &json!("9.5")), Some(Value::Double(9.5)));
        assert_eq!(to_value(&double, &json!("abc")), None);
        let text = FieldDef::new("T", "T", FieldType::String);
        assert_eq!(to_value(&text, &json!("")), Some(Value::Null));
        assert_eq!(to_value(&text, &json!({"a": 1})), None);
        let date = FieldDef::new("D", "D", FieldType::Date);
        assert!(to_value(&date, &json!("2021-04-14")).is_some());
        assert_eq!(to_value(&date, &json!("2021-13-45")), None);
        let dt = FieldDef::new("T", "T", FieldType::DateTime);
        assert!(to_value(&dt, &json!("2021-04-14T09:00:00.000+0000")).is_some());
        let blob = FieldDef::new("Body", "Body", FieldType::Base64);
        assert_eq!(to_value(&blob, &json!("aGk=")), Some(Value::text("aGk=")));
        assert_eq!(to_value(&blob, &json!("not base64!")), None);
        let long = FieldDef::new("N", "N", FieldType::Long);
        assert_eq!(
            to_value(&long, &json!(5_000_000_000i64)),
            Some(Value::Int(5_000_000_000))
        );
    }

    #[test]
    fn type_error_names_token_and_position() {
        let double = FieldDef::new("N__c", "N", FieldType::Double);
        let body = r#"{"records":[{"N__c":"abc"}]}"#;
        let msg = type_error(&double, &json!("abc"), body, "N__c");
        assert!(
            msg.starts_with("Cannot deserialize instance of double from VALUE_STRING value abc")
        );
        assert!(msg.ends_with("at [line:1, column:14]"), "{msg}");
    }
}
