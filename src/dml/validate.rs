//! Checks a value against describe metadata before it is sent, so that a
//! bad mapping stops the statement with the field named instead of
//! producing thousands of per-record API errors.

use std::sync::Arc;

use serde_json::Value;

use super::changeset::{Action, ChangeSet, WriteOp};
use crate::salesforce::{FieldDescribe, SObjectDescribe};

/// Why a value cannot be sent on create (it does not fit, or a required
/// field gets NULL), prefixed with the column; `None` when it can.
pub fn check_create_value(field: &FieldDescribe, value: &Value) -> Option<String> {
    let column = field.name.to_ascii_lowercase();
    let (_, why) = create_problem(field, value)?;
    // Only a NULL is refused as missing: "email is required and ...".
    Some(if value.is_null() {
        format!("{column} {why}")
    } else {
        format!("{column}: {why}")
    })
}

/// [`check_create_value`] without the column, with Salesforce's code.
fn create_problem(field: &FieldDescribe, value: &Value) -> Option<(&'static str, String)> {
    let required = !field.nillable && !field.defaulted_on_create && field.field_type != "boolean";
    match value_problem(field, value) {
        Some(problem) => Some(problem),
        None if value.is_null() && required => Some((
            "REQUIRED_FIELD_MISSING",
            "is required and the source gives NULL".to_string(),
        )),
        None => None,
    }
}

/// A value of the change set that Salesforce would refuse, as a dry run
/// shows it (a write stops before sending instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The record's index in [`ChangeSet::records`].
    pub record: usize,
    pub field: Arc<str>,
    /// The status code Salesforce would answer with.
    pub code: &'static str,
    pub why: String,
}

/// Every value of `set` that Salesforce would refuse: the same checks a
/// write makes before sending, but all of them, not the first few. A
/// record to create, or to upsert, must give its required fields; an
/// update is checked in the fields it changes.
pub fn refusals(set: &ChangeSet, describe: &SObjectDescribe) -> Vec<Refusal> {
    let upsert = matches!(set.op, WriteOp::Upsert { .. });
    let mut out = Vec::new();
    for (record, r) in set.records.iter().enumerate() {
        let creating = match r.action {
            Action::Create => true,
            Action::Update => upsert,
            Action::Delete | Action::Unchanged => continue,
        };
        for c in &r.changes {
            if !creating && c.old == c.new {
                continue;
            }
            let Some(field) = describe.field(&c.field) else {
                continue;
            };
            let keyless = matches!(&set.op, WriteOp::Upsert { external_id }
                if external_id.eq_ignore_ascii_case(&c.field) && c.new.is_null());
            let problem = keyless
                .then(|| {
                    (
                        "MISSING_ARGUMENT",
                        "is NULL; an upsert needs the external ID in every row (filter NULLs in the SELECT)"
                            .to_string(),
                    )
                })
                .or_else(|| cast_problem(field, &c.new))
                .or_else(|| {
                if creating {
                    create_problem(field, &c.new)
                } else {
                    value_problem(field, &c.new)
                }
            });
            if let Some((code, why)) = problem {
                out.push(Refusal {
                    record,
                    field: Arc::clone(&c.field),
                    code,
                    why,
                });
            }
        }
    }
    out
}

/// A dry run's value left as the source's text because it does not
/// convert to its field's type (see changeset::NewValues): a number or
/// boolean field given text, a date or time that does not parse.
fn cast_problem(field: &FieldDescribe, value: &Value) -> Option<(&'static str, String)> {
    use chrono::{DateTime, NaiveDate, NaiveTime};
    let Value::String(s) = value else { return None };
    let fits = match field.field_type.as_str() {
        "boolean" | "int" | "long" | "double" | "currency" | "percent" => false,
        "date" => NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "datetime" => DateTime::parse_from_rfc3339(s).is_ok(),
        "time" => NaiveTime::parse_from_str(s.trim_end_matches('Z'), "%H:%M:%S%.f").is_ok(),
        _ => true,
    };
    (!fits).then(|| {
        (
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!(
                "'{s}' cannot become a Salesforce {}; cast or clean it in the statement",
                field.field_type
            ),
        )
    })
}

/// Why a value does not fit its field, or `None` when it does.
pub fn check_value(field: &FieldDescribe, value: &Value) -> Option<String> {
    value_problem(field, value).map(|(_, why)| why)
}

/// [`check_value`] with the status code Salesforce would answer with.
fn value_problem(field: &FieldDescribe, value: &Value) -> Option<(&'static str, String)> {
    let Value::String(s) = value else { return None };
    let text_like = crate::soql::is_text_type(&field.field_type);
    if text_like && field.length > 0 && s.chars().count() > field.length as usize {
        return Some((
            "STRING_TOO_LONG",
            format!(
                "is {} characters long; {} holds at most {} (STRING_TOO_LONG)",
                s.chars().count(),
                field.name,
                field.length
            ),
        ));
    }
    if field.field_type == "picklist" && field.restricted_picklist {
        let ok = field
            .picklist_values
            .iter()
            .any(|p| p.active && p.value == *s);
        if !ok {
            let allowed: Vec<&str> = field
                .picklist_values
                .iter()
                .filter(|p| p.active)
                .map(|p| p.value.as_str())
                .collect();
            return Some((
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                format!(
                    "'{s}' is not a value of the restricted picklist {} (allowed: {})",
                    field.name,
                    allowed.join(", ")
                ),
            ));
        }
    }
    None
}

/// Fields Salesforce requires on create: not nillable, createable, and
/// without a default.
pub fn required_on_create(describe: &SObjectDescribe) -> impl Iterator<Item = &FieldDescribe> {
    describe.fields.iter().filter(|f| {
        !f.nillable && f.createable && !f.defaulted_on_create && f.field_type != "boolean"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(json: Value) -> FieldDescribe {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn catches_long_strings_and_bad_picklist_values() {
        let f = field(json!({"name":"WM_Quiz_Name__c","type":"string","length":5}));
        assert!(
            check_value(&f, &json!("abcdef"))
                .unwrap()
                .contains("STRING_TOO_LONG")
        );
        assert!(check_value(&f, &json!("abc")).is_none());
        let p = field(
            json!({"name":"Status","type":"picklist","restrictedPicklist":true,
            "picklistValues":[{"active":true,"value":"Completed"},{"active":false,"value":"Old"}]}),
        );
        assert!(check_value(&p, &json!("Completed")).is_none());
        assert!(
            check_value(&p, &json!("Old"))
                .unwrap()
                .contains("allowed: Completed")
        );
        assert!(check_value(&p, &Value::Null).is_none());
    }

    /// What changeset's to_json writes for each type passes; a dry run's
    /// unconverted source text does not.
    #[test]
    fn only_text_that_did_not_convert_is_a_cast_refusal() {
        let typed = |t: &str| field(json!({"name":"F","type":t}));
        for (t, good) in [
            ("date", json!("2026-05-01")),
            ("datetime", json!("2026-05-01T09:30:00.000Z")),
            ("time", json!("09:30:00.000Z")),
            ("boolean", json!(true)),
            ("double", json!(9.5)),
            ("currency", json!(12)),
            ("string", json!("anything")),
        ] {
            assert_eq!(cast_problem(&typed(t), &good), None, "{t}");
            assert_eq!(cast_problem(&typed(t), &Value::Null), None, "{t}");
        }
        for (t, bad) in [
            ("date", "not a date"),
            ("datetime", "yesterday"),
            ("time", "noon"),
            ("boolean", "maybe"),
            ("percent", "12%"),
        ] {
            let (code, why) = cast_problem(&typed(t), &json!(bad)).expect(t);
            assert_eq!(code, "INVALID_TYPE_ON_FIELD_IN_RECORD");
            assert!(
                why.contains(&format!("'{bad}' cannot become a Salesforce {t}")),
                "{why}"
            );
        }
    }

    #[test]
    fn refusals_are_every_refused_value_of_the_records_that_would_be_sent() {
        use crate::dml::{FieldChange, RecordChange};
        let describe: SObjectDescribe = serde_json::from_value(json!({"name":"Task","fields":[
            {"name":"Subject","type":"string","length":5,"nillable":true},
            {"name":"Status","type":"picklist","restrictedPicklist":true,"nillable":false,
             "picklistValues":[{"active":true,"value":"Done"}]}
        ]}))
        .unwrap();
        let change = |field: &str, old: Value, new: Value| FieldChange {
            field: field.into(),
            old,
            new,
        };
        let mut create = serde_json::Map::new();
        create.insert("Subject".into(), json!("too long"));
        create.insert("Status".into(), Value::Null);
        let set = ChangeSet {
            connection: "sandbox".into(),
            sobject: "Task".into(),
            op: WriteOp::Merge,
            records: vec![
                RecordChange::update(
                    "00T1".into(),
                    None,
                    vec![
                        change("Subject", json!("a"), json!("b")),
                        change("Status", json!("Done"), json!("Bogus")),
                    ],
                ),
                RecordChange::create(None, create),
                RecordChange::update("00T2".into(), None, vec![]),
            ],
            keys: None,
        };
        let refused = refusals(&set, &describe);
        let found: Vec<(usize, &str, &str)> = refused
            .iter()
            .map(|r| (r.record, &*r.field, r.code))
            .collect();
        assert_eq!(
            found,
            [
                (0, "Status", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
                (1, "Status", "REQUIRED_FIELD_MISSING"),
                (1, "Subject", "STRING_TOO_LONG"),
            ]
        );
    }
}
