//! End-to-end SOQL tests over a small hand-made store: parse, compile,
//! execute, and the errors Salesforce would give.

use chrono::{DateTime, NaiveDate, Utc};

use super::{SoqlError, compile, execute, parser::parse};
use crate::simulator::ids::{make_id, seq_for_index};
use crate::simulator::schema::schema;
use crate::simulator::store::{Store, Value};

fn id(prefix: &str, i: usize) -> String {
    make_id(prefix, "5g", seq_for_index(i))
}

fn put(store: &mut Store, object: &str, values: &[(&str, Value)]) {
    let obj = schema().object_id(object).unwrap_or_default();
    let def = schema().object(obj);
    let mut row = vec![Value::Null; def.fields.len()];
    row[def.is_deleted] = Value::Bool(false);
    for (name, v) in values {
        let f = def
            .field_index(name)
            .unwrap_or_else(|| panic!("no field {name}"));
        row[f] = v.clone();
    }
    store.table_mut(obj).insert(row.into());
}

fn t(s: &str) -> Value {
    Value::text(s)
}

fn date(s: &str) -> Value {
    Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default())
}

fn at(s: &str) -> Value {
    Value::DateTime(
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default(),
    )
}

/// Accounts A0 Acme (Technology), A1 Globex (no industry); contacts c0..c4,
/// c4 deleted.
fn store() -> Store {
    let mut s = Store::new();
    put(
        &mut s,
        "Account",
        &[
            ("Id", t(&id("001", 0))),
            ("Name", t("Acme Corp")),
            ("Industry", t("Technology")),
        ],
    );
    put(
        &mut s,
        "Account",
        &[("Id", t(&id("001", 1))), ("Name", t("Globex Inc."))],
    );
    let now = Value::DateTime(Utc::now());
    let contacts: [Vec<(&str, Value)>; 5] = [
        vec![
            ("FirstName", t("Ann")),
            ("LastName", t("Lee")),
            ("Email", t("ann.lee@example.com")),
            ("WM_NPS_Score__c", Value::Double(9.0)),
            ("Birthdate", date("1980-05-01")),
            ("AccountId", t(&id("001", 0))),
            ("Title", t("CEO")),
            ("CreatedDate", at("2021-04-14T08:00:00Z")),
            ("HasOptedOutOfEmail", Value::Bool(false)),
        ],
        vec![
            ("FirstName", t("Bob")),
            ("LastName", t("O'Brien")),
            ("Email", t("BOB@EXAMPLE.COM")),
            ("AccountId", t(&id("001", 1))),
            ("Title", t("50% off_sale")),
            ("CreatedDate", at("2021-04-14T08:00:01Z")),
            ("HasOptedOutOfEmail", Value::Bool(true)),
        ],
        vec![
            ("LastName", t("Smith")),
            ("WM_NPS_Score__c", Value::Double(3.0)),
            ("Birthdate", date("1990-01-01")),
            ("CreatedDate", at("2020-01-01T00:00:00Z")),
            ("HasOptedOutOfEmail", Value::Bool(false)),
        ],
        vec![
            ("FirstName", t("Zoë")),
            ("LastName", t("Müller")),
            ("Email", t("zoe@example.org")),
            ("WM_NPS_Score__c", Value::Double(10.0)),
            ("AccountId", t(&id("001", 0))),
            ("Title", t("cto")),
            ("CreatedDate", now),
            ("HasOptedOutOfEmail", Value::Bool(false)),
        ],
        vec![
            ("FirstName", t("Dan")),
            ("LastName", t("Del")),
            ("Email", t("dan@example.com")),
            ("IsDeleted", Value::Bool(true)),
            ("HasOptedOutOfEmail", Value::Bool(false)),
        ],
    ];
    for (i, mut fields) in contacts.into_iter().enumerate() {
        let cid = id("003", i);
        fields.push(("Id", t(&cid)));
        put(&mut s, "Contact", &fields);
    }
    s
}

fn run_all(s: &Store, soql: &str, all_rows: bool) -> Result<Vec<u32>, SoqlError> {
    let q = compile(soql, &parse(soql)?)?;
    Ok(execute(s, &q, all_rows))
}

fn run(s: &Store, soql: &str) -> Vec<u32> {
    run_all(s, soql, false).unwrap_or_else(|e| panic!("{soql}: {e}"))
}

fn contacts_where(s: &Store, cond: &str) -> Vec<u32> {
    run(s, &format!("SELECT Id FROM Contact WHERE {cond}"))
}

fn code(s: &Store, soql: &str) -> &'static str {
    run_all(s, soql, false).err().map_or("ok", |e| e.code())
}

#[test]
fn string_equality_and_in_ignore_case() {
    let s = store();
    assert_eq!(contacts_where(&s, "Email = 'ANN.LEE@example.com'"), [0]);
    assert_eq!(
        contacts_where(
            &s,
            "email in ('bob@example.com', 'zoe@EXAMPLE.org', 'nobody@x.com')"
        ),
        [1, 3]
    );
    assert_eq!(
        contacts_where(&s, "Email NOT IN ('bob@example.com')"),
        [0, 2, 3]
    );
    assert_eq!(contacts_where(&s, "Email != 'bob@example.com'"), [0, 2, 3]);
    assert_eq!(contacts_where(&s, "LastName = 'O\\'Brien'"), [1]);
}

#[test]
fn null_tests() {
    let s = store();
    assert_eq!(contacts_where(&s, "Email = null"), [2]);
    assert_eq!(contacts_where(&s, "Email != NULL"), [0, 1, 3]);
    assert_eq!(contacts_where(&s, "Email IN ('x@y.z', null)"), [2]);
    assert_eq!(contacts_where(&s, "Account.Industry = null"), [1, 2]);
}

#[test]
fn like_with_wildcards_and_escapes() {
    let s = store();
    assert_eq!(contacts_where(&s, "Title LIKE '50\\%%'"), [1]);
    assert_eq!(contacts_where(&s, "Title LIKE '%\\_sale'"), [1]);
    assert_eq!(contacts_where(&s, "Title LIKE 'c_o'"), [0, 3]);
    assert_eq!(contacts_where(&s, "Title LIKE '5%'"), [1]);
    assert_eq!(contacts_where(&s, "NOT Email LIKE '%example.com'"), [2, 3]);
}

#[test]
fn logic_parentheses_and_parent_paths() {
    let s = store();
    assert_eq!(
        contacts_where(
            &s,
            "(WM_NPS_Score__c >= 9 OR Birthdate < 1985-01-01) AND Account.Name = 'acme corp'"
        ),
        [0, 3]
    );
    assert_eq!(
        contacts_where(&s, "NOT (WM_NPS_Score__c > 5 OR Email = null)"),
        [1]
    );
    assert_eq!(contacts_where(&s, "HasOptedOutOfEmail = true"), [1]);
}

#[test]
fn ids_match_in_15_and_18_character_forms() {
    let s = store();
    let c0 = id("003", 0);
    assert_eq!(contacts_where(&s, &format!("Id = '{}'", &c0[..15])), [0]);
    assert_eq!(
        contacts_where(&s, &format!("Id IN ('{}')", c0.to_lowercase())),
        [0]
    );
    assert_eq!(
        contacts_where(&s, &format!("AccountId = '{}'", id("001", 0))),
        [0, 3]
    );
}

#[test]
fn dates_datetimes_and_relative_dates() {
    let s = store();
    assert_eq!(
        contacts_where(&s, "CreatedDate = 2021-04-14T09:00:00+01:00"),
        [0]
    );
    assert_eq!(
        contacts_where(&s, "CreatedDate > 2021-04-14T08:00:00.000+0000"),
        [1, 3]
    );
    assert_eq!(contacts_where(&s, "Birthdate >= 1990-01-01"), [2]);
    assert_eq!(contacts_where(&s, "CreatedDate = TODAY"), [3]);
    assert_eq!(
        contacts_where(&s, "CreatedDate < LAST_N_DAYS:30"),
        [0, 1, 2]
    );
}

#[test]
fn order_limit_offset() {
    let s = store();
    assert_eq!(
        run(&s, "SELECT Id FROM Contact ORDER BY WM_NPS_Score__c"),
        [1, 2, 0, 3]
    );
    assert_eq!(
        run(
            &s,
            "SELECT Id FROM Contact ORDER BY WM_NPS_Score__c DESC NULLS LAST"
        ),
        [3, 0, 2, 1]
    );
    assert_eq!(
        run(&s, "SELECT Id FROM Contact ORDER BY LastName"),
        [0, 3, 1, 2]
    );
    assert_eq!(
        run(
            &s,
            "SELECT Id FROM Contact ORDER BY LastName ASC LIMIT 2 OFFSET 1"
        ),
        [3, 1]
    );
    assert_eq!(
        run(
            &s,
            "SELECT Id FROM Contact ORDER BY Account.Name DESC NULLS LAST, LastName"
        ),
        [1, 0, 3, 2]
    );
}

#[test]
fn count_and_query_all() {
    let s = store();
    let soql = "SELECT COUNT() FROM Contact WHERE Email != null";
    let q = parse(soql).and_then(|p| compile(soql, &p));
    let q = q.unwrap_or_else(|e| panic!("{e}"));
    assert!(q.count_only);
    assert_eq!(execute(&s, &q, false).len(), 3);
    assert_eq!(
        run_all(&s, "SELECT Id FROM Contact", true).map(|r| r.len()),
        Ok(5)
    );
    assert_eq!(contacts_where(&s, "IsDeleted = true"), Vec::<u32>::new());
}

#[test]
fn errors_use_salesforce_codes() {
    let s = store();
    assert_eq!(code(&s, "SELECT Foo FROM Contact"), "INVALID_FIELD");
    let msg = run_all(&s, "SELECT Id, Foo FROM Contact", false)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("No such column 'Foo' on entity 'Contact'"),
        "{msg}"
    );
    assert!(msg.contains("ERROR at Row:1:Column:12"), "{msg}");
    assert_eq!(code(&s, "SELECT Id FROM Foo"), "INVALID_TYPE");
    assert_eq!(code(&s, "SELECT Foo.Name FROM Contact"), "INVALID_FIELD");
    assert_eq!(code(&s, "SELECT Account.Foo FROM Contact"), "INVALID_FIELD");
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE Email = 5"),
        "INVALID_FIELD"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE Birthdate = '2020-01-01'"),
        "INVALID_FIELD"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE CreatedDate > 2020-01-01"),
        "INVALID_FIELD"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE Id = 'abc'"),
        "INVALID_QUERY_FILTER_OPERATOR"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE Email = 'a\\%'"),
        "MALFORMED_QUERY"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact OFFSET 2001"),
        "NUMBER_OUTSIDE_VALID_RANGE"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Task WHERE Description = 'x'"),
        "INVALID_FIELD"
    );
    assert_eq!(code(&s, "SELECT Id, id FROM Contact"), "MALFORMED_QUERY");
    assert_eq!(
        code(&s, "SELECT Id, COUNT() FROM Contact"),
        "MALFORMED_QUERY"
    );
    assert_eq!(
        code(&s, "SELECT Id FROM Contact WHERE WM_NPS_Score__c LIKE '9'"),
        "INVALID_QUERY_FILTER_OPERATOR"
    );
}

#[test]
fn polymorphic_parent_paths_resolve_per_target() {
    let soql = "SELECT Who.Name, What.Name, What.Industry FROM Task";
    assert!(parse(soql).and_then(|p| compile(soql, &p)).is_ok());
    let soql = "SELECT Who.Company FROM Task";
    assert!(parse(soql).and_then(|p| compile(soql, &p)).is_ok());
    let soql = "SELECT Who.Nope FROM Task";
    assert!(parse(soql).and_then(|p| compile(soql, &p)).is_err());
}
