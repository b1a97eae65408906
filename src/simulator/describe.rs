//! describeGlobal, describe and the basic sObject info resource, rendered
//! from the schema in Salesforce's JSON shapes.

use serde_json::{Value as Json, json};

use super::error::ApiError;
use super::schema::{FieldDef, FieldType, ObjectDef, schema};

fn urls(version: &str, o: &ObjectDef) -> Json {
    let base = format!("/services/data/{version}/sobjects/{}", o.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// The describeGlobal entry of an object.
fn summary(version: &str, o: &ObjectDef) -> Json {
    json!({
        "name": o.name,
        "label": o.label,
        "labelPlural": o.label_plural,
        "keyPrefix": o.key_prefix,
        "custom": false,
        "customSetting": false,
        "queryable": true,
        "createable": o.createable,
        "updateable": o.updateable,
        "deletable": o.deletable,
        "retrieveable": true,
        "searchable": true,
        "layoutable": true,
        "replicateable": true,
        "triggerable": true,
        "undeletable": o.deletable,
        "mergeable": false,
        "activateable": false,
        "deprecatedAndHidden": false,
        "urls": urls(version, o),
    })
}

/// `GET /sobjects`
pub fn describe_global(version: &str) -> Json {
    let sobjects: Vec<Json> = schema()
        .objects
        .iter()
        .map(|o| summary(version, o))
        .collect();
    json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects })
}

/// `GET /sobjects/{name}`
pub fn sobject_info(version: &str, name: &str) -> Result<Json, ApiError> {
    let o = schema()
        .object_id(name)
        .map(|id| schema().object(id))
        .ok_or_else(ApiError::not_found)?;
    Ok(json!({ "objectDescribe": summary(version, o), "recentItems": [] }))
}

fn byte_length(f: &FieldDef) -> u32 {
    match f.ftype {
        FieldType::Id | FieldType::Reference => 18,
        t if t.kind() == super::schema::ValueKind::Text => f.length * 3,
        _ => 0,
    }
}

fn field_json(f: &FieldDef) -> Json {
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|p| {
            json!({
                "active": true,
                "defaultValue": p.default,
                "label": p.value,
                "validFor": null,
                "value": p.value,
            })
        })
        .collect();
    json!({
        "name": f.name,
        "type": f.ftype.api_name(),
        "soapType": f.ftype.soap_type(),
        "label": f.label,
        "length": f.length,
        "byteLength": byte_length(f),
        "precision": f.precision,
        "scale": f.scale,
        "digits": f.digits,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "filterable": f.filterable,
        "sortable": f.sortable,
        "groupable": f.groupable,
        "aggregatable": f.filterable,
        "externalId": f.external_id,
        "idLookup": f.id_lookup,
        "unique": f.unique,
        "calculated": f.calculated,
        "autoNumber": false,
        "caseSensitive": false,
        "cascadeDelete": false,
        "custom": f.custom,
        "nameField": f.name_field,
        "defaultedOnCreate": f.defaulted_on_create,
        "defaultValue": f.default_value(),
        "deprecatedAndHidden": false,
        "htmlFormatted": false,
        "inlineHelpText": null,
        "polymorphicForeignKey": f.reference_to.len() > 1,
        "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name,
        "compoundFieldName": f.compound,
        "picklistValues": picklist,
        "restrictedPicklist": f.restricted_picklist,
    })
}

/// Relationships from other objects' lookups to `o`.
fn child_relationships(o: &ObjectDef) -> Vec<Json> {
    let mut out = Vec::new();
    for child in &schema().objects {
        for f in &child.fields {
            if f.reference_to.contains(&o.name) && !f.name.ends_with("ById") {
                out.push(json!({
                    "childSObject": child.name,
                    "field": f.name,
                    "cascadeDelete": false,
                    "relationshipName": null,
                }));
            }
        }
    }
    out
}

/// `GET /sobjects/{name}/describe`
pub fn describe(version: &str, name: &str) -> Result<Json, ApiError> {
    let o = schema()
        .object_id(name)
        .map(|id| schema().object(id))
        .ok_or_else(ApiError::not_found)?;
    let mut out = summary(version, o);
    let fields: Vec<Json> = o.fields.iter().map(field_json).collect();
    if let Some(map) = out.as_object_mut() {
        map.insert("fields".into(), fields.into());
        map.insert("childRelationships".into(), child_relationships(o).into());
        map.insert("recordTypeInfos".into(), json!([]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_is_case_insensitive_and_rejects_unknown() {
        let d = super::describe("v62.0", "contact").unwrap_or_default();
        assert_eq!(d["name"], "Contact");
        let email = d["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == "Email"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(email["type"], "email");
        assert_eq!(email["idLookup"], true);
        assert!(super::describe("v62.0", "Foo").is_err());
    }
}
