//! The Reports and Dashboards REST API's report resources over the seeded
//! data: `GET analytics/reports` (the list), `analytics/reports/{id}/describe`
//! (metadata) and `analytics/reports/{id}?includeDetails=true` (a synchronous
//! run), in Salesforce's JSON shapes: `reportMetadata` (`detailColumns`,
//! `reportFormat`), `reportExtendedMetadata.detailColumnInfo` (label and
//! `dataType` per column) and a `factMap` whose `T!T` holds a tabular
//! report's detail rows (`dataCells` of `{label, value}`) and its record
//! count. A run returns at most 2,000 detail rows, as Salesforce does, with
//! `allData: false` when there were more.
//!
//! `POST analytics/reports/{id}` runs the report with the body's
//! `reportMetadata.reportFilters` (`{column, operator, value}`, at most 20,
//! ANDed unless `reportBooleanFilter` says otherwise, which the simulator
//! refuses) added to its own filter, compared as Salesforce compares
//! them: text without case, `equals` a comma-separated list of values, an
//! empty value a blank. Its `sortBy` (one `{sortColumn, sortOrder}`) orders
//! the detail rows, blanks first when ascending, so the 2,000 a run
//! returns are the first in that order.
//!
//! Report ids are the same in both orgs (a sandbox copy keeps them).

use chrono::{NaiveDate, NaiveTime, Timelike};
use serde_json::{Value as Json, json};

use super::error::ApiError;
use super::ids::make_id;
use super::org::Org;
use super::schema::{ObjId, schema};
use super::soql;
use super::store::{Value, format_date};

/// Detail rows one synchronous run returns at most.
pub const MAX_DETAIL_ROWS: usize = 2_000;

/// One column of a report: its report API name, label, `dataType`, and the
/// field of the report's object it shows.
struct Column {
    api: &'static str,
    label: &'static str,
    data_type: &'static str,
    field: &'static str,
}

const fn col(
    api: &'static str,
    label: &'static str,
    data_type: &'static str,
    field: &'static str,
) -> Column {
    Column {
        api,
        label,
        data_type,
        field,
    }
}

/// A saved report over one object.
struct ReportDef {
    /// Sequence number of the report's `00O` id.
    seq: u64,
    name: &'static str,
    developer_name: &'static str,
    /// `TABULAR` or `SUMMARY` (grouped by `group_by`).
    format: &'static str,
    report_type: (&'static str, &'static str),
    object: &'static str,
    /// SOQL WHERE clause the report's filters stand for.
    filter: Option<&'static str>,
    group_by: Option<Column>,
    columns: &'static [Column],
}

const CONTACT_NPS: &[Column] = &[
    col("CONTACT.ID", "Contact ID", "id", "Id"),
    col("FIRST_NAME", "First Name", "string", "FirstName"),
    col("LAST_NAME", "Last Name", "string", "LastName"),
    col("EMAIL", "Email", "email", "Email"),
    col(
        "Contact.WM_NPS_Score__c",
        "WM NPS Score",
        "double",
        "WM_NPS_Score__c",
    ),
    col(
        "Contact.WM_Quiz_Date__c",
        "WM Quiz Date",
        "date",
        "WM_Quiz_Date__c",
    ),
    col(
        "EMAIL_OPT_OUT",
        "Email Opt Out",
        "boolean",
        "HasOptedOutOfEmail",
    ),
    col("CREATED_DATE", "Created Date", "datetime", "CreatedDate"),
];

const ACCOUNTS: &[Column] = &[
    col("ACCOUNT.NAME", "Account Name", "string", "Name"),
    col("INDUSTRY", "Industry", "picklist", "Industry"),
    col("SALES", "Annual Revenue", "currency", "AnnualRevenue"),
    col("EMPLOYEES", "Employees", "int", "NumberOfEmployees"),
    col(
        "Account.WM_Discount__c",
        "WM Discount",
        "percent",
        "WM_Discount__c",
    ),
    col(
        "Account.WM_Opens_At__c",
        "WM Opens At",
        "time",
        "WM_Opens_At__c",
    ),
    col("ADDRESS1_CITY", "Billing City", "string", "BillingCity"),
];

const ALL_CONTACTS: &[Column] = &[
    col("CONTACT.ID", "Contact ID", "id", "Id"),
    col("EMAIL", "Email", "email", "Email"),
    col("LEAD_SOURCE", "Lead Source", "picklist", "LeadSource"),
];

fn reports() -> Vec<ReportDef> {
    vec![
        ReportDef {
            seq: 1_000_001,
            name: "Contacts by NPS",
            developer_name: "Contacts_by_NPS",
            format: "TABULAR",
            report_type: ("ContactList", "Contacts & Accounts"),
            object: "Contact",
            filter: Some("WM_NPS_Score__c != null"),
            group_by: None,
            columns: CONTACT_NPS,
        },
        ReportDef {
            seq: 1_000_038,
            name: "Accounts by Revenue",
            developer_name: "Accounts_by_Revenue",
            format: "TABULAR",
            report_type: ("AccountList", "Accounts"),
            object: "Account",
            filter: Some("AnnualRevenue != null"),
            group_by: None,
            columns: ACCOUNTS,
        },
        ReportDef {
            seq: 1_000_075,
            name: "All Contacts",
            developer_name: "All_Contacts",
            format: "TABULAR",
            report_type: ("ContactList", "Contacts & Accounts"),
            object: "Contact",
            filter: None,
            group_by: None,
            columns: ALL_CONTACTS,
        },
        ReportDef {
            seq: 1_000_112,
            name: "Contacts by Lead Source",
            developer_name: "Contacts_by_Lead_Source",
            format: "SUMMARY",
            report_type: ("ContactList", "Contacts & Accounts"),
            object: "Contact",
            filter: None,
            group_by: Some(col("LEAD_SOURCE", "Lead Source", "picklist", "LeadSource")),
            columns: ALL_CONTACTS,
        },
    ]
}

fn report_id(def: &ReportDef) -> String {
    make_id("00O", "5g", def.seq)
}

/// The id of the simulated report named `name` ("Contacts by NPS", ...).
pub fn id_of(name: &str) -> Option<String> {
    reports().iter().find(|r| r.name == name).map(report_id)
}

fn find(id: &str) -> Result<ReportDef, ApiError> {
    let id18 = super::ids::canonical(id).ok_or_else(ApiError::not_found)?;
    reports()
        .into_iter()
        .find(|r| report_id(r) == id18)
        .ok_or_else(ApiError::not_found)
}

fn urls(version: &str, id: &str) -> (String, String, String) {
    let base = format!("/services/data/{version}/analytics/reports/{id}");
    (
        base.clone(),
        format!("{base}/describe"),
        format!("{base}/instances"),
    )
}

/// `GET analytics/reports`: the reports the user can see.
pub fn list(version: &str) -> Json {
    let entries: Vec<Json> = reports()
        .iter()
        .map(|r| {
            let id = report_id(r);
            let (url, describe, instances) = urls(version, &id);
            json!({
                "describeUrl": describe,
                "id": id,
                "instancesUrl": instances,
                "name": r.name,
                "url": url,
            })
        })
        .collect();
    Json::Array(entries)
}

fn column_info(c: &Column) -> Json {
    json!({ "dataType": c.data_type, "label": c.label })
}

fn metadata(def: &ReportDef, id: &str) -> (Json, Json) {
    let detail_columns: Vec<&str> = def.columns.iter().map(|c| c.api).collect();
    let groupings_down: Vec<Json> = def
        .group_by
        .iter()
        .map(|g| json!({ "dateGranularity": "None", "name": g.api, "sortAggregate": null, "sortOrder": "Asc" }))
        .collect();
    let report_metadata = json!({
        "aggregates": ["RowCount"],
        "currency": null,
        "detailColumns": detail_columns,
        "developerName": def.developer_name,
        "groupingsAcross": [],
        "groupingsDown": groupings_down,
        "hasDetailRows": true,
        "hasRecordCount": true,
        "historicalSnapshotDates": [],
        "id": id,
        "name": def.name,
        "reportBooleanFilter": null,
        "reportFilters": [],
        "reportFormat": def.format,
        "reportType": { "label": def.report_type.1, "type": def.report_type.0 },
        "scope": "organization",
        "showGrandTotal": true,
        "showSubtotals": true,
        "sortBy": [],
        "standardDateFilter": { "column": "CREATED_DATE", "durationValue": "CUSTOM", "endDate": null, "startDate": null },
        "standardFilters": null,
    });
    let detail_info: serde_json::Map<String, Json> = def
        .columns
        .iter()
        .map(|c| (c.api.to_string(), column_info(c)))
        .collect();
    let grouping_info: serde_json::Map<String, Json> = def
        .group_by
        .iter()
        .map(|g| {
            let mut info = column_info(g);
            info["groupingLevel"] = json!(0);
            (g.api.to_string(), info)
        })
        .collect();
    let extended = json!({
        "aggregateColumnInfo": {
            "RowCount": {
                "acrossGroupingContext": null,
                "dataType": "int",
                "downGroupingContext": null,
                "label": "Record Count",
            }
        },
        "detailColumnInfo": detail_info,
        "groupingColumnInfo": grouping_info,
    });
    (report_metadata, extended)
}

/// `GET analytics/reports/{id}/describe`.
pub fn describe(id: &str) -> Result<Json, ApiError> {
    let def = find(id)?;
    let id = report_id(&def);
    let (report_metadata, extended) = metadata(&def, &id);
    Ok(json!({
        "reportExtendedMetadata": extended,
        "reportMetadata": report_metadata,
        "reportTypeMetadata": { "categories": [], "dataTypeFilterOperatorMap": {}, "divisionInfo": null, "scopeInfo": null },
    }))
}

/// A number as Salesforce labels it: thousands separators, `scale` decimals.
fn grouped(n: f64, scale: usize) -> String {
    let text = format!("{:.*}", scale, n.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if n < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{out}")
    } else {
        format!("{sign}{out}.{frac}")
    }
}

fn us_date(d: NaiveDate) -> String {
    d.format("%-m/%-d/%Y").to_string()
}

/// One `dataCells` entry: the value in the API's form and the label as the
/// report shows it; an empty cell is `{"label": "-", "value": null}`.
fn cell(data_type: &str, v: &Value) -> Json {
    let (label, value) = match (data_type, v) {
        (_, Value::Null) => ("-".to_string(), Json::Null),
        ("currency", Value::Double(d)) => (
            format!("${}", grouped(*d, 2)),
            json!({ "amount": d, "currency": null }),
        ),
        ("percent", Value::Double(d)) => (format!("{}%", grouped(*d, 2)), json!(d)),
        ("int", Value::Int(i)) => (grouped(*i as f64, 0), json!(i)),
        ("double", Value::Double(d)) => (grouped(*d, 0), json!(d)),
        (_, Value::Bool(b)) => (b.to_string(), json!(b)),
        (_, Value::Date(d)) => (us_date(*d), json!(format_date(*d))),
        (_, Value::DateTime(t)) => (
            format!("{} {}", us_date(t.date_naive()), t.format("%-I:%M %p")),
            json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ),
        ("time", Value::Text(t)) => {
            let label = NaiveTime::parse_from_str(t.trim_end_matches('Z'), "%H:%M:%S%.f")
                .map(|time| {
                    let (pm, hour) = time.hour12();
                    format!(
                        "{hour}:{:02} {}",
                        time.minute(),
                        if pm { "PM" } else { "AM" }
                    )
                })
                .unwrap_or_else(|_| t.to_string());
            (label, json!(t.as_ref()))
        }
        (_, Value::Text(t)) => (t.to_string(), json!(t.as_ref())),
        (_, Value::Int(i)) => (i.to_string(), json!(i)),
        (_, Value::Double(d)) => (d.to_string(), json!(d)),
    };
    json!({ "label": label, "value": value })
}

fn bad_filter(message: String) -> ApiError {
    ApiError::bad_request("BAD_REQUEST", message)
}

/// One filter value as a SOQL literal of its column's type.
fn filter_literal(c: &Column, value: &str) -> Result<String, ApiError> {
    let bad = || {
        bad_filter(format!(
            "Invalid value '{value}' for column {} ({})",
            c.api, c.data_type
        ))
    };
    Ok(match c.data_type {
        "int" | "double" | "currency" | "percent" => {
            value.parse::<f64>().map_err(|_| bad())?;
            value.to_string()
        }
        "boolean" => match value.to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => v.to_string(),
            _ => return Err(bad()),
        },
        "date" => {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())?;
            value.to_string()
        }
        "datetime" => chrono::DateTime::parse_from_rfc3339(value)
            .map_err(|_| bad())?
            .to_utc()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        "time" => return Err(bad()),
        _ => format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'")),
    })
}

/// A `reportFilters` entry as a SOQL condition on the column's field.
fn filter_condition(def: &ReportDef, filter: &Json) -> Result<String, ApiError> {
    let text = |k: &str| filter[k].as_str().unwrap_or_default().to_string();
    let (column, operator, value) = (text("column"), text("operator"), text("value"));
    let c = def
        .columns
        .iter()
        .find(|c| c.api == column)
        .ok_or_else(|| bad_filter(format!("Invalid report filter column: {column}")))?;
    let field = c.field;
    let like = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
            .replace('\'', "\\'")
    };
    let list = || -> Result<Vec<String>, ApiError> {
        value
            .split(',')
            .map(|v| filter_literal(c, v.trim()))
            .collect()
    };
    let one = || filter_literal(c, value.trim());
    Ok(match operator.as_str() {
        "equals" if value.is_empty() => format!("{field} = null"),
        "notEqual" if value.is_empty() => format!("{field} != null"),
        "equals" => format!("{field} IN ({})", list()?.join(", ")),
        "notEqual" => format!("{field} NOT IN ({})", list()?.join(", ")),
        "lessThan" => format!("{field} < {}", one()?),
        "greaterThan" => format!("{field} > {}", one()?),
        "lessOrEqual" => format!("{field} <= {}", one()?),
        "greaterOrEqual" => format!("{field} >= {}", one()?),
        "startsWith" => format!("{field} LIKE '{}%'", like(&value)),
        "contains" => format!("{field} LIKE '%{}%'", like(&value)),
        other => {
            return Err(bad_filter(format!(
                "Invalid report filter operator for column {column}: {other}"
            )));
        }
    })
}

/// Custom filters a run takes at most, as in Salesforce.
const MAX_REPORT_FILTERS: usize = 20;

/// The records of the report's object that its filter and `run_metadata`'s
/// filters keep, in the order of its `sortBy` (else id order).
fn rows(org: &Org, def: &ReportDef, run_metadata: &Json) -> Result<(ObjId, Vec<u32>), ApiError> {
    let mut conditions: Vec<String> = def.filter.iter().map(|f| format!("({f})")).collect();
    if !run_metadata["reportBooleanFilter"].is_null() {
        return Err(bad_filter(
            "the simulator runs reportFilters ANDed only (reportBooleanFilter null)".into(),
        ));
    }
    let filters = run_metadata["reportFilters"].as_array();
    if filters.map_or(0, Vec::len) > MAX_REPORT_FILTERS {
        return Err(bad_filter(format!(
            "A report can have at most {MAX_REPORT_FILTERS} filters"
        )));
    }
    for filter in filters.into_iter().flatten() {
        conditions.push(filter_condition(def, filter)?);
    }
    let mut order = "Id".to_string();
    if let Some(sort) = run_metadata["sortBy"].as_array().and_then(|s| s.first()) {
        let column = sort["sortColumn"].as_str().unwrap_or_default();
        let c = def
            .columns
            .iter()
            .find(|c| c.api == column)
            .ok_or_else(|| bad_filter(format!("Invalid sort column: {column}")))?;
        let direction = if sort["sortOrder"]
            .as_str()
            .is_some_and(|o| o.eq_ignore_ascii_case("desc"))
        {
            "DESC NULLS LAST"
        } else {
            "ASC NULLS FIRST"
        };
        order = if c.field == "Id" {
            format!("Id {direction}")
        } else {
            format!("{} {direction}, Id", c.field)
        };
    }
    let soql_text = if conditions.is_empty() {
        format!("SELECT Id FROM {} ORDER BY {order}", def.object)
    } else {
        format!(
            "SELECT Id FROM {} WHERE {} ORDER BY {order}",
            def.object,
            conditions.join(" AND ")
        )
    };
    let parsed = soql::parser::parse(&soql_text)?;
    let query = soql::compile(&soql_text, &parsed)?;
    let store = org.read();
    Ok((query.object, soql::execute(&store, &query, false)))
}

fn detail_rows(org: &Org, def: &ReportDef, obj: ObjId, rows: &[u32]) -> Vec<Json> {
    let object = schema().object(obj);
    let fields: Vec<Option<usize>> = def
        .columns
        .iter()
        .map(|c| object.field_index(c.field))
        .collect();
    let store = org.read();
    let table = store.table(obj);
    rows.iter()
        .map(|row| {
            let cells: Vec<Json> = def
                .columns
                .iter()
                .zip(&fields)
                .map(|(c, f)| cell(c.data_type, f.map_or(&Value::Null, |f| table.get(*row, f))))
                .collect();
            json!({ "dataCells": cells })
        })
        .collect()
}

fn count(n: usize) -> Json {
    json!([{ "label": grouped(n as f64, 0), "value": n }])
}

/// `GET analytics/reports/{id}` (`includeDetails=true` for detail rows):
/// runs the report now.
pub fn run(
    org: &Org,
    version: &str,
    id: &str,
    include_details: bool,
    run_metadata: &Json,
) -> Result<Json, ApiError> {
    let def = find(id)?;
    let id = report_id(&def);
    let (mut report_metadata, extended) = metadata(&def, &id);
    let (obj, all) = rows(org, &def, run_metadata)?;
    if let Some(filters) = run_metadata.get("reportFilters") {
        report_metadata["reportFilters"] = filters.clone();
    }
    let shown = &all[..all.len().min(MAX_DETAIL_ROWS)];
    let details = |rows: &[u32]| {
        if include_details {
            detail_rows(org, &def, obj, rows)
        } else {
            Vec::new()
        }
    };
    let mut fact_map = serde_json::Map::new();
    let mut groupings = Vec::new();
    if let Some(group) = &def.group_by {
        // One group per distinct value, in value order; its key is `{n}!T`.
        let field = schema().object(obj).field_index(group.field);
        let keyed: Vec<(String, u32)> = {
            let store = org.read();
            let table = store.table(obj);
            shown
                .iter()
                .map(|r| {
                    let key = field.and_then(|f| table.get(*r, f).as_str()).unwrap_or("-");
                    (key.to_string(), *r)
                })
                .collect()
        };
        let mut groups: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        for (key, row) in keyed {
            groups.entry(key).or_default().push(row);
        }
        for (n, (key, members)) in groups.iter().enumerate() {
            fact_map.insert(
                format!("{n}!T"),
                json!({ "aggregates": count(members.len()), "rows": details(members) }),
            );
            groupings.push(json!({
                "dateGranularity": "None", "groupings": [], "key": n.to_string(),
                "label": key, "value": key,
            }));
        }
        fact_map.insert("T!T".into(), json!({ "aggregates": count(all.len()) }));
    } else {
        fact_map.insert(
            "T!T".into(),
            json!({ "aggregates": count(all.len()), "rows": details(shown) }),
        );
    }
    let (_, describe_url, instances_url) = urls(version, &id);
    Ok(json!({
        "allData": all.len() <= MAX_DETAIL_ROWS,
        "attributes": {
            "describeUrl": describe_url,
            "instancesUrl": instances_url,
            "reportId": id,
            "reportName": def.name,
            "type": "Report",
        },
        "factMap": fact_map,
        "groupingsAcross": { "groupings": [] },
        "groupingsDown": { "groupings": groupings },
        "hasDetailRows": include_details,
        "reportExtendedMetadata": extended,
        "reportMetadata": report_metadata,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::SimConfig;
    use crate::simulator::org::Sim;

    fn sim(contacts: usize) -> Sim {
        let config = SimConfig {
            contacts,
            ..SimConfig::default()
        };
        Sim::new(config, String::new())
    }

    #[test]
    fn a_tabular_run_has_detail_rows_under_t_t() {
        let sim = sim(300);
        let id = id_of("Contacts by NPS").unwrap_or_default();
        let body = run(&sim.orgs[1], "v62.0", &id, true, &Json::Null).unwrap_or_default();
        assert_eq!(body["reportMetadata"]["reportFormat"], "TABULAR");
        assert_eq!(body["allData"], true);
        assert_eq!(
            body["reportExtendedMetadata"]["detailColumnInfo"]["EMAIL"],
            json!({ "dataType": "email", "label": "Email" })
        );
        let rows = body["factMap"]["T!T"]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!rows.is_empty());
        assert_eq!(
            body["factMap"]["T!T"]["aggregates"][0]["value"],
            json!(rows.len())
        );
        let cells = &rows[0]["dataCells"];
        assert_eq!(cells.as_array().map(Vec::len), Some(CONTACT_NPS.len()));
        assert!(cells[4]["value"].is_f64());
        // Without details the fact map has the count only.
        let body = run(&sim.orgs[1], "v62.0", &id, false, &Json::Null).unwrap_or_default();
        assert_eq!(body["factMap"]["T!T"]["rows"], json!([]));
    }

    #[test]
    fn more_than_2000_rows_are_cut_with_all_data_false() {
        let sim = sim(2_100);
        let id = id_of("All Contacts").unwrap_or_default();
        let body = run(&sim.orgs[0], "v62.0", &id, true, &Json::Null).unwrap_or_default();
        assert_eq!(body["allData"], false);
        assert_eq!(
            body["factMap"]["T!T"]["rows"].as_array().map(Vec::len),
            Some(MAX_DETAIL_ROWS)
        );
        assert_eq!(body["factMap"]["T!T"]["aggregates"][0]["value"], 2_100);
    }

    #[test]
    fn cells_carry_values_in_the_api_form_and_labels_as_shown() {
        let revenue = cell("currency", &Value::Double(1_200_000.0));
        assert_eq!(
            revenue,
            json!({ "label": "$1,200,000.00", "value": { "amount": 1_200_000.0, "currency": null } })
        );
        assert_eq!(
            cell("email", &Value::Null),
            json!({ "label": "-", "value": null })
        );
        assert_eq!(
            cell("time", &Value::text("08:30:00.000Z")),
            json!({ "label": "8:30 AM", "value": "08:30:00.000Z" })
        );
        assert_eq!(
            find("00O000000000000AAA").err().map(|e| e.status.as_u16()),
            Some(404)
        );
    }

    /// The values of one column over a run's detail rows.
    fn column_values(body: &Json, index: usize) -> Vec<Json> {
        body["factMap"]["T!T"]["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["dataCells"][index]["value"].clone())
            .collect()
    }

    fn count_of(body: &Json) -> u64 {
        body["factMap"]["T!T"]["aggregates"][0]["value"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    #[test]
    fn report_filters_narrow_a_run_and_sort_by_orders_it() {
        let sim = sim(300);
        let id = id_of("Contacts by NPS").unwrap_or_default();
        let org = &sim.orgs[1];
        let all = run(org, "v62.0", &id, true, &Json::Null).unwrap_or_default();
        let scores = column_values(&all, 4);
        let high = scores.iter().filter(|v| v.as_f64() > Some(8.0)).count() as u64;
        assert!(high > 0 && high < count_of(&all));
        let filtered = |filters: Json| {
            run(
                org,
                "v62.0",
                &id,
                true,
                &json!({ "reportFilters": filters }),
            )
        };
        let body = filtered(json!([
            { "column": "Contact.WM_NPS_Score__c", "operator": "greaterThan", "value": "8" }
        ]))
        .unwrap_or_default();
        assert_eq!(count_of(&body), high);
        assert_eq!(
            body["reportMetadata"]["reportFilters"][0]["operator"],
            "greaterThan"
        );
        // Text without case; equals takes a comma-separated list.
        let emails: Vec<String> = column_values(&all, 3)
            .iter()
            .filter_map(|v| v.as_str().map(str::to_uppercase))
            .take(2)
            .collect();
        let body = filtered(json!([
            { "column": "EMAIL", "operator": "equals", "value": emails.join(",") }
        ]))
        .unwrap_or_default();
        assert_eq!(count_of(&body), 2);
        let body = filtered(json!([
            { "column": "EMAIL", "operator": "equals", "value": "" }
        ]))
        .unwrap_or_default();
        let blanks = column_values(&all, 3)
            .iter()
            .filter(|v| v.is_null())
            .count();
        assert_eq!(count_of(&body), blanks as u64);
        // Ranges on ids and dates; sortBy orders the detail rows.
        let ids: Vec<String> = column_values(&all, 0)
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let body = run(
            org,
            "v62.0",
            &id,
            true,
            &json!({
                "reportFilters": [
                    { "column": "CONTACT.ID", "operator": "greaterOrEqual", "value": ids[10] },
                    { "column": "Contact.WM_Quiz_Date__c", "operator": "notEqual", "value": "" },
                ],
                "sortBy": [{ "sortColumn": "Contact.WM_NPS_Score__c", "sortOrder": "Desc" }],
            }),
        )
        .unwrap_or_default();
        let sorted = column_values(&body, 4);
        assert!(!sorted.is_empty());
        assert!(sorted.windows(2).all(|w| w[0].as_f64() >= w[1].as_f64()));
        let quiz_dates = column_values(&body, 5);
        assert!(quiz_dates.iter().all(|v| !v.is_null()));
        let kept_ids = column_values(&body, 0);
        assert!(
            kept_ids
                .iter()
                .all(|v| v.as_str() >= Some(ids[10].as_str()))
        );
    }

    #[test]
    fn report_filters_salesforce_refuses_are_refused() {
        let sim = sim(50);
        let id = id_of("Contacts by NPS").unwrap_or_default();
        let org = &sim.orgs[1];
        let refused = |metadata: Json| run(org, "v62.0", &id, true, &metadata).is_err();
        let one = json!({ "column": "EMAIL", "operator": "equals", "value": "a@b.c" });
        assert!(refused(json!({ "reportFilters": vec![one.clone(); 21] })));
        assert!(!refused(json!({ "reportFilters": vec![one.clone(); 20] })));
        assert!(refused(
            json!({ "reportFilters": [one.clone()], "reportBooleanFilter": "1" })
        ));
        assert!(refused(json!({ "reportFilters": [
            { "column": "NOPE", "operator": "equals", "value": "x" }
        ] })));
        assert!(refused(json!({ "reportFilters": [
            { "column": "EMAIL", "operator": "within", "value": "x" }
        ] })));
        assert!(refused(json!({ "reportFilters": [
            { "column": "Contact.WM_NPS_Score__c", "operator": "lessThan", "value": "high" }
        ] })));
        assert!(refused(
            json!({ "sortBy": [{ "sortColumn": "NOPE", "sortOrder": "Asc" }] })
        ));
    }
}
