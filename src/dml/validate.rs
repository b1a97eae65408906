//! Checks a value against describe metadata before it is sent, so that a
//! bad mapping stops the statement with the field named instead of
//! producing thousands of per-record API errors.

use serde_json::Value;

use crate::salesforce::{FieldDescribe, SObjectDescribe};

/// Why a value cannot be sent on create (it does not fit, or a required
/// field gets NULL), prefixed with the column; `None` when it can.
pub fn check_create_value(field: &FieldDescribe, value: &Value) -> Option<String> {
    let column = field.name.to_ascii_lowercase();
    let required = !field.nillable && !field.defaulted_on_create && field.field_type != "boolean";
    match check_value(field, value) {
        Some(why) => Some(format!("{column}: {why}")),
        None if value.is_null() && required => {
            Some(format!("{column} is required and the source gives NULL"))
        }
        None => None,
    }
}

/// Why a value does not fit its field, or `None` when it does.
pub fn check_value(field: &FieldDescribe, value: &Value) -> Option<String> {
    let Value::String(s) = value else { return None };
    let text_like = crate::soql::is_text_type(&field.field_type);
    if text_like && field.length > 0 && s.chars().count() > field.length as usize {
        return Some(format!(
            "is {} characters long; {} holds at most {} (STRING_TOO_LONG)",
            s.chars().count(),
            field.name,
            field.length
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
            return Some(format!(
                "'{s}' is not a value of the restricted picklist {} (allowed: {})",
                field.name,
                allowed.join(", ")
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
}
