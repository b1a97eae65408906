//! The simulator over real HTTP: start it on 127.0.0.1:0 and talk to it with
//! reqwest as the sfsql client does.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sfsql::simulator::{self, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimHandle};

mod support;
use support::{V, sim};

/// A logged-in connection to one org.
struct Conn {
    http: Client,
    instance_url: String,
    token: String,
}

async fn token_request(http: &Client, org_url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{org_url}/services/oauth2/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(sim: &SimHandle, org: &str) -> Conn {
    let http = Client::new();
    let (status, body) = token_request(
        &http,
        &sim.org_url(org),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Conn {
        http,
        instance_url: body["instance_url"]
            .as_str()
            .expect("instance_url")
            .to_string(),
        token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
    }
}

impl Conn {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.instance_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn query(&self, soql: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{V}/query", self.instance_url))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("query");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ids(&self, object: &str, n: usize) -> Vec<String> {
        let (_, body) = self
            .query(&format!("SELECT Id FROM {object} ORDER BY Id LIMIT {n}"))
            .await;
        body["records"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["Id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn error_code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or("")
}

fn status_code(result: &Value) -> &str {
    result["errors"][0]["statusCode"].as_str().unwrap_or("")
}

#[tokio::test]
async fn oauth_token_flows_and_org_binding() {
    let sim = sim(300).await;
    let http = Client::new();
    let prod = sim.org_url("production");
    let (status, body) = token_request(
        &http,
        &prod,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );

    let (status, body) = token_request(&http, &prod, &[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = token_request(&http, &prod, &[("grant_type", "magic")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");

    // HTTP Basic client authentication.
    let resp = http
        .post(format!("{prod}/services/oauth2/token"))
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["instance_url"], prod.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("00D") && t.contains('!'))
    );
    assert!(
        body["issued_at"]
            .as_str()
            .is_some_and(|t| t.parse::<u64>().is_ok())
    );
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("{prod}/id/00D")))
    );

    // Refresh tokens minted by the test helper work for their org only.
    let minted: Value = http
        .post(format!(
            "{}/__sim/refresh_token?org=sandbox",
            sim.base_url()
        ))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let refresh = minted["refresh_token"].as_str().expect("refresh_token");
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ];
    let (status, body) = token_request(&http, &sim.org_url("sandbox"), &refresh_form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = token_request(&http, &prod, &refresh_form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // A production token is refused by the sandbox, and no token is refused.
    let mut conn = login(&sim, "production").await;
    assert_eq!(conn.get(&format!("{V}/limits")).await.0, StatusCode::OK);
    conn.instance_url = sim.org_url("sandbox");
    let (status, body) = conn.get(&format!("{V}/sobjects")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    // The unprefixed paths are production.
    conn.instance_url = sim.base_url();
    assert_eq!(conn.get(&format!("{V}/sobjects")).await.0, StatusCode::OK);
    let resp = http
        .get(format!("{prod}{V}/sobjects"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Versions need no token.
    let versions: Value = http
        .get(format!("{prod}/services/data/"))
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("json");
    assert_eq!(versions[0]["version"], "62.0");
}

#[tokio::test]
async fn describe_global_and_describe() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let (status, global) = conn.get(&format!("{V}/sobjects/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(global["maxBatchSize"], 200);
    let contact = global["sobjects"]
        .as_array()
        .and_then(|s| s.iter().find(|o| o["name"] == "Contact"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(contact["keyPrefix"], "003");
    assert_eq!(
        contact["urls"]["describe"],
        "/services/data/v62.0/sobjects/Contact/describe"
    );

    let (status, d) = conn.get(&format!("{V}/sobjects/contact/describe")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["name"], "Contact");
    let field = |name: &str| {
        d["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(field("WM_NPS_Score__c")["type"], "double");
    assert_eq!(field("WM_NPS_Score__c")["label"], "WM NPS Score");
    assert_eq!(field("WM_NPS_Score__c")["precision"], 3);
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(field("AccountId")["relationshipName"], "Account");
    assert_eq!(field("Email")["relationshipName"], Value::Null);
    assert_eq!(field("Name")["updateable"], false);
    assert_eq!(field("LastName")["nillable"], false);

    let (status, lead) = conn.get(&format!("{V}/sobjects/Lead/describe")).await;
    assert_eq!(status, StatusCode::OK);
    let status_field = lead["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "Status"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(status_field["restrictedPicklist"], true);
    assert_eq!(
        status_field["picklistValues"][0]["value"],
        "Open - Not Contacted"
    );
    assert_eq!(status_field["picklistValues"][0]["defaultValue"], true);

    let (status, body) = conn.get(&format!("{V}/sobjects/Foo/describe")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn paginated_query_follows_next_records_url() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let resp = conn
        .http
        .get(format!("{}{V}/query", conn.instance_url))
        .query(&[("q", "SELECT Id, Email FROM Contact")])
        .header("Sforce-Query-Options", "batchSize=50")
        .bearer_auth(&conn.token)
        .send()
        .await
        .expect("query");
    assert!(
        resp.headers()
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("api-usage=") && v.ends_with("/15000"))
    );
    let mut page: Value = resp.json().await.expect("json");
    assert_eq!(page["totalSize"], 300);
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let n = page["records"].as_array().map_or(0, Vec::len);
        seen += n;
        pages += 1;
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        // batchSize below 200 is raised to 200.
        assert_eq!(n, 200);
        let next = page["nextRecordsUrl"]
            .as_str()
            .expect("nextRecordsUrl")
            .to_string();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        let (status, body) = conn.get(&next).await;
        assert_eq!(status, StatusCode::OK);
        page = body;
        if page["done"] == true {
            // The cursor is consumed by its last page.
            let (status, body) = conn.get(&next).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(error_code(&body), "INVALID_QUERY_LOCATOR");
        }
    }
    assert_eq!((seen, pages), (300, 2));

    let (_, count) = conn
        .query("SELECT COUNT() FROM Contact WHERE Email = null")
        .await;
    assert_eq!(count["records"], json!([]));
    assert!(
        count["totalSize"]
            .as_u64()
            .is_some_and(|n| n > 0 && n < 300)
    );
}

#[tokio::test]
async fn records_follow_select_order_with_parents_nested() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let resp = conn
        .http
        .get(format!("{}{V}/query", conn.instance_url))
        .query(&[("q", "select email, ID, account.NAME, Owner.Email, CreatedDate, Birthdate from contact where AccountId != null limit 1")])
        .bearer_auth(&conn.token)
        .send()
        .await
        .expect("query");
    let text = resp.text().await.expect("text");
    let record_text = &text[text.find("\"records\"").unwrap_or(0)..];
    let positions: Vec<usize> = [
        "\"attributes\"",
        "\"Email\"",
        "\"Id\"",
        "\"Account\"",
        "\"Owner\"",
        "\"CreatedDate\"",
    ]
    .iter()
    .map(|k| record_text.find(k).unwrap_or(usize::MAX))
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{record_text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    let rec = &body["records"][0];
    assert_eq!(rec["attributes"]["type"], "Contact");
    let id = rec["Id"].as_str().unwrap_or_default();
    assert_eq!(id.len(), 18);
    assert_eq!(
        rec["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/Contact/{id}")
    );
    assert_eq!(rec["Account"]["attributes"]["type"], "Account");
    assert!(rec["Account"]["Name"].is_string());
    assert!(
        rec["Owner"]["Email"]
            .as_str()
            .is_some_and(|e| e.ends_with("@production-corp.example.com"))
    );
    let created = rec["CreatedDate"].as_str().unwrap_or_default();
    assert!(
        created.len() == 28 && created.ends_with(".000+0000"),
        "{created}"
    );

    let (_, body) = conn
        .query("SELECT Id, Account.Name FROM Contact WHERE AccountId = null LIMIT 1")
        .await;
    assert_eq!(body["records"][0]["Account"], Value::Null);
    let (_, body) = conn
        .query("SELECT Id FROM Contact WHERE Owner.Email LIKE 'grace.hopper@%'")
        .await;
    assert!(body["totalSize"].as_u64().is_some_and(|n| n > 0));
}

#[tokio::test]
async fn query_errors_use_the_error_envelope() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    for (soql, code) in [
        ("SELECT FROM Contact", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Title = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Foo FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Foo", "INVALID_TYPE"),
    ] {
        let (status, body) = conn.query(soql).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{soql}");
        assert_eq!(error_code(&body), code, "{soql}: {body}");
        assert!(
            body[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ERROR at Row:1")),
            "{body}"
        );
    }
    let (_, body) = conn.query("SELECT Foo FROM Contact").await;
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No such column 'Foo' on entity 'Contact'")
    );

    let (status, body) = conn.get(&format!("{V}/nothing/here")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (status, _) = conn.send(Method::PUT, &format!("{V}/sobjects"), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn huge_uri_is_rejected_with_414() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let emails: Vec<String> = (0..1_000)
        .map(|i| format!("'someone{i}@example.com'"))
        .collect();
    let soql = format!(
        "SELECT Id FROM Contact WHERE Email IN ({})",
        emails.join(",")
    );
    let (status, _) = conn.query(&soql).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let (status, _) = conn
        .query(&format!(
            "SELECT Id FROM Contact WHERE Email IN ({})",
            emails[..100].join(",")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn collections_update_reports_each_record() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let contacts = conn.ids("Contact", 4).await;
    let leads = conn.ids("Lead", 1).await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "id": contacts[0], "WM_NPS_Score__c": 9, "WM_Quiz_Name__c": "Intro"},
        {"attributes": {"type": "Contact"}, "id": contacts[1], "Name": "Not Allowed"},
        {"attributes": {"type": "Contact"}, "id": contacts[2], "LastName": "x".repeat(81)},
        {"attributes": {"type": "Lead"}, "id": leads[0], "Status": "Bogus"},
        {"attributes": {"type": "Contact"}, "id": contacts[3], "Foo__c": 1},
        {"attributes": {"type": "Contact"}, "id": "003000000000000AAA", "Title": "x"},
        {"attributes": {"type": "Contact"}, "id": "nope", "Title": "x"},
    ]});
    let (status, results) = conn
        .send(
            Method::PATCH,
            &format!("{V}/composite/sobjects"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(
        results[0],
        json!({"id": contacts[0], "success": true, "errors": []})
    );
    assert_eq!(status_code(&results[1]), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(results[1]["errors"][0]["fields"], json!(["Name"]));
    assert_eq!(status_code(&results[2]), "STRING_TOO_LONG");
    assert_eq!(
        status_code(&results[3]),
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(status_code(&results[4]), "INVALID_FIELD");
    assert_eq!(status_code(&results[5]), "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(status_code(&results[6]), "MALFORMED_ID");
    assert!(
        results
            .as_array()
            .is_some_and(|r| r[1..].iter().all(|r| r["success"] == false))
    );

    let (_, body) = conn
        .query(&format!("SELECT WM_NPS_Score__c, WM_Quiz_Name__c, LastModifiedDate FROM Contact WHERE Id = '{}'", contacts[0]))
        .await;
    assert_eq!(body["records"][0]["WM_NPS_Score__c"], 9.0);
    assert_eq!(body["records"][0]["WM_Quiz_Name__c"], "Intro");

    // A value of the wrong JSON type fails the whole request.
    let body = json!({"records": [{"attributes": {"type": "Contact"}, "id": contacts[0], "WM_NPS_Score__c": "high"}]});
    let (status, body) = conn
        .send(
            Method::PATCH,
            &format!("{V}/composite/sobjects"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "JSON_PARSER_ERROR");

    let records: Vec<Value> = (0..201)
        .map(|_| json!({"attributes": {"type": "Contact"}, "id": contacts[0], "Title": "x"}))
        .collect();
    let (status, body) = conn
        .send(
            Method::PATCH,
            &format!("{V}/composite/sobjects"),
            Some(json!({"records": records})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "EXCEEDED_ID_LIMIT");
}

/// An update naming one record 14 times: Salesforce applies the first
/// mention and 12 repeats in order and refuses the 13th repeat with
/// DUPLICATE_VALUE; a delete naming a record twice finds it deleted the
/// second time. The simulator counts every repeat.
#[tokio::test]
async fn repeated_ids_in_one_request_are_counted_and_refused_past_the_limit() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let contacts = conn.ids("Contact", 2).await;
    let mut records: Vec<Value> = (0..14)
        .map(|i| json!({"attributes": {"type": "Contact"}, "id": contacts[0], "Title": format!("T{i}")}))
        .collect();
    records.push(json!({"attributes": {"type": "Contact"}, "id": contacts[1], "Title": "Other"}));
    let (status, results) = conn
        .send(
            Method::PATCH,
            &format!("{V}/composite/sobjects"),
            Some(json!({"allOrNone": false, "records": records})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    let results = results.as_array().expect("array");
    assert!(
        results[..13].iter().all(|r| r["success"] == true),
        "{results:?}"
    );
    assert_eq!(status_code(&results[13]), "DUPLICATE_VALUE");
    let message = results[13]["errors"][0]["message"].as_str().expect("text");
    assert_eq!(
        message,
        format!(
            "Maximum number of duplicate updates in one batch (12 allowed). Attempt to update Id more than once in this Api call: {}",
            &contacts[0][..15]
        )
    );
    assert_eq!(results[14]["success"], true);
    let (_, body) = conn
        .query(&format!(
            "SELECT Title FROM Contact WHERE Id = '{}'",
            contacts[0]
        ))
        .await;
    assert_eq!(
        body["records"][0]["Title"], "T12",
        "the last repeat applied wins"
    );

    let tasks = conn.ids("Task", 1).await;
    let path = format!(
        "{V}/composite/sobjects?ids={0},{0}&allOrNone=false",
        tasks[0]
    );
    let (_, results) = conn.send(Method::DELETE, &path, None).await;
    assert_eq!(results[0]["success"], true);
    assert_eq!(status_code(&results[1]), "ENTITY_IS_DELETED");
    assert_eq!(sim.stats()["production"]["duplicate_ids"], 14);
}

#[tokio::test]
async fn all_or_none_rolls_back_everything() {
    let sim = sim(300).await;
    let conn = login(&sim, "sandbox").await;
    let contacts = conn.ids("Contact", 2).await;
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Contact"}, "id": contacts[0], "Title": "Changed"},
        {"attributes": {"type": "Contact"}, "id": contacts[1], "Email": "not-an-email"},
    ]});
    let (status, results) = conn
        .send(
            Method::PATCH,
            &format!("{V}/composite/sobjects"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        status_code(&results[0]),
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(status_code(&results[1]), "INVALID_EMAIL_ADDRESS");
    let (_, body) = conn
        .query(&format!(
            "SELECT Title FROM Contact WHERE Id = '{}'",
            contacts[0]
        ))
        .await;
    assert_ne!(body["records"][0]["Title"], "Changed");
}

#[tokio::test]
async fn create_validates_required_fields_and_applies_defaults() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "FirstName": "No", "Email": "no.last@example.com"},
        {"attributes": {"type": "Lead"}, "LastName": "Newman", "FirstName": "Nia", "Company": "Initech"},
        {"attributes": {"type": "Event"}, "Subject": "Call", "StartDateTime": "2025-01-01T10:00:00.000+0000"},
    ]});
    let (status, results) = conn
        .send(Method::POST, &format!("{V}/composite/sobjects"), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(
        results[0],
        json!({"id": null, "success": false, "errors": [{
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [LastName]",
            "fields": ["LastName"],
        }]})
    );
    assert_eq!(results[1]["success"], true);
    let lead_id = results[1]["id"].as_str().unwrap_or_default();
    assert!(lead_id.starts_with("00Q") && lead_id.len() == 18);
    assert_eq!(
        results[2]["errors"][0]["fields"],
        json!(["DurationInMinutes"])
    );

    let (_, body) = conn
        .query(&format!(
            "SELECT Name, Status, CreatedDate, Owner.Name FROM Lead WHERE Id = '{lead_id}'"
        ))
        .await;
    let lead = &body["records"][0];
    assert_eq!(lead["Name"], "Nia Newman");
    assert_eq!(lead["Status"], "Open - Not Contacted");
    assert_eq!(lead["Owner"]["Name"], "Integration User");
}

#[tokio::test]
async fn delete_hides_records_from_query_but_not_query_all() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let ids = conn.ids("Task", 2).await;
    let path = format!(
        "{V}/composite/sobjects?ids={},{}&allOrNone=false",
        ids[0], ids[1]
    );
    let (status, results) = conn.send(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        results
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["success"] == true))
    );
    let (_, results) = conn.send(Method::DELETE, &path, None).await;
    assert_eq!(status_code(&results[0]), "ENTITY_IS_DELETED");
    let soql = format!(
        "SELECT Id, IsDeleted FROM Task WHERE Id IN ('{}', '{}')",
        ids[0], ids[1]
    );
    let (_, body) = conn.query(&soql).await;
    assert_eq!(body["totalSize"], 0);
    let (_, body) = conn
        .get(&format!("{V}/queryAll?q={}", soql.replace(' ', "+")))
        .await;
    assert_eq!(body["totalSize"], 2);
    assert_eq!(body["records"][0]["IsDeleted"], true);
}

#[tokio::test]
async fn stats_count_what_the_server_received() {
    let sim = sim(300).await;
    let http = Client::new();
    let conn = login(&sim, "production").await;
    http.post(format!("{}/__sim/stats/reset", sim.base_url()))
        .send()
        .await
        .expect("reset");
    conn.get(&format!("{V}/sobjects")).await;
    conn.get(&format!("{V}/sobjects/Contact/describe")).await;
    conn.query("SELECT Id FROM Account LIMIT 7").await;
    let contacts = conn.ids("Contact", 2).await;
    let body = json!({"records": [
        {"attributes": {"type": "Contact"}, "id": contacts[0], "Title": "A"},
        {"attributes": {"type": "Contact"}, "id": contacts[1], "Title": "B"},
    ]});
    conn.send(
        Method::PATCH,
        &format!("{V}/composite/sobjects"),
        Some(body),
    )
    .await;

    let stats: Value = http
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let prod = &stats["production"];
    assert_eq!(prod["requests"]["describe_global"], 1);
    assert_eq!(prod["requests"]["describe"], 1);
    assert_eq!(prod["requests"]["query"], 2);
    assert_eq!(prod["requests"]["collections_update"], 1);
    assert_eq!(prod["records_returned"], 9);
    assert_eq!(prod["records_written"], 2);
    assert_eq!(stats["sandbox"]["records_returned"], 0);
    assert_eq!(sim.stats()["production"]["records_written"], 2);

    let (_, limits) = conn.get(&format!("{V}/limits")).await;
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);
    assert!(
        limits["DailyApiRequests"]["Remaining"]
            .as_u64()
            .is_some_and(|r| r < 15000)
    );
}

#[tokio::test]
async fn large_org_seeds_and_answers_an_in_query() {
    // Seeding takes a few seconds in a debug build.
    let contacts = 200_000;
    let sim = sim(contacts).await;
    let conn = login(&sim, "production").await;
    let sample: Vec<String> = (0..contacts)
        .step_by(contacts / 300)
        .filter_map(|i| simulator::contact_email("production", i))
        .take(300)
        .collect();
    let wanted: std::collections::HashSet<String> =
        sample.iter().map(|e| e.to_lowercase()).collect();
    let expected = (0..contacts)
        .filter_map(|i| simulator::contact_email("production", i))
        .filter(|e| wanted.contains(&e.to_lowercase()))
        .count();
    let list: Vec<String> = sample.iter().map(|e| format!("'{e}'")).collect();
    let soql = format!(
        "SELECT Id, Email FROM Contact WHERE Email IN ({})",
        list.join(",")
    );
    let resp = conn
        .http
        .post(format!("{}{V}/query", conn.instance_url))
        .bearer_auth(&conn.token)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = conn.query(&soql).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totalSize"].as_u64(), Some(expected as u64));
    assert!(expected >= sample.len());
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let who = conn.ids("Contact", 1).await;
    let path = format!("{V}/composite/sobjects/Task/External_Activity_Id__c");
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Task"}, "External_Activity_Id__c": "NEW-1", "Subject": "Call", "WhoId": who[0]},
        {"attributes": {"type": "Task"}, "External_Activity_Id__c": "EXT-0000000", "Subject": "Renamed"},
    ]});
    let (status, results) = conn.send(Method::PATCH, &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results[0]["created"], true);
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[1]["created"], false);
    assert_eq!(results[1]["success"], true);
    let (_, body) = conn
        .query("SELECT Subject, Status, Priority, Who.Name FROM Task WHERE External_Activity_Id__c IN ('new-1', 'EXT-0000000') ORDER BY Subject")
        .await;
    assert_eq!(body["totalSize"], 2);
    assert_eq!(body["records"][0]["Subject"], "Call");
    assert_eq!(body["records"][0]["Status"], "Not Started");
    assert_eq!(body["records"][0]["Priority"], "Normal");
    assert_eq!(body["records"][0]["Who"]["attributes"]["type"], "Contact");
    assert_eq!(body["records"][1]["Subject"], "Renamed");

    // Creating another record with a taken external id is a duplicate.
    let body = json!({"records": [{"attributes": {"type": "Task"}, "External_Activity_Id__c": "new-1", "Subject": "x"}]});
    let (_, results) = conn
        .send(Method::POST, &format!("{V}/composite/sobjects"), Some(body))
        .await;
    assert_eq!(status_code(&results[0]), "DUPLICATE_VALUE");
}

#[tokio::test]
async fn composite_runs_a_long_query_as_a_subrequest() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let emails: Vec<String> = (0..1_000)
        .filter_map(|i| simulator::contact_email("production", i % 300))
        .map(|e| format!("'{e}'"))
        .collect();
    let soql = format!(
        "SELECT Id FROM Contact WHERE Email IN ({})",
        emails.join(",")
    );
    let url = format!(
        "{V}/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    assert!(url.len() > 16_384);
    let body = json!({"allOrNone": false, "compositeRequest": [
        {"method": "GET", "url": url, "referenceId": "emails"},
        {"method": "GET", "url": format!("{V}/query?q=SELECT+Nope+FROM+Contact"), "referenceId": "bad"},
    ]});
    let (status, body) = conn
        .send(Method::POST, &format!("{V}/composite"), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["compositeResponse"][0];
    assert_eq!(first["referenceId"], "emails");
    assert_eq!(first["httpStatusCode"], 200);
    assert!(
        first["body"]["totalSize"]
            .as_u64()
            .is_some_and(|n| n >= 280)
    );
    assert_eq!(body["compositeResponse"][1]["httpStatusCode"], 400);
    assert_eq!(
        body["compositeResponse"][1]["body"][0]["errorCode"],
        "INVALID_FIELD"
    );
}

/// A composite subrequest of `method` `url`.
fn sub(method: &str, url: &str, reference: &str) -> Value {
    json!({"method": method, "url": url, "referenceId": reference})
}

/// `POST /composite` of `subrequests`.
async fn composite(conn: &Conn, subrequests: Vec<Value>) -> (StatusCode, Value) {
    let body = json!({ "compositeRequest": subrequests });
    conn.send(Method::POST, &format!("{V}/composite"), Some(body))
        .await
}

fn query_url(soql: &str) -> String {
    format!(
        "{V}/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn composite_is_one_call_of_at_most_five_queries_and_pages_by_next_url() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let usage = |s: &Value| s["production"]["api_usage"].as_u64().unwrap_or(0);
    let q = query_url("SELECT Id FROM Contact");
    // Six query subrequests: refused as a whole.
    let six: Vec<Value> = (0..6).map(|i| sub("GET", &q, &format!("q{i}"))).collect();
    let (status, body) = composite(&conn, six).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_INPUT");
    assert!(
        body[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 5 query")),
        "{body}"
    );
    // Five queries and one more subrequest of another kind: one API call.
    let before = sim.stats();
    let mut five: Vec<Value> = (0..5)
        .map(|i| {
            let mut s = sub("GET", &q, &format!("q{i}"));
            s["httpHeaders"] = json!({"Sforce-Query-Options": "batchSize=200"});
            s
        })
        .collect();
    five.push(sub("GET", &format!("{V}/limits"), "limits"));
    let (status, body) = composite(&conn, five).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = sim.stats();
    assert_eq!(usage(&after) - usage(&before), 1);
    let subs = &after["production"]["composite_subrequests"];
    assert_eq!(
        (subs["query"].as_u64(), subs["limits"].as_u64()),
        (Some(5), Some(1))
    );
    // Each subrequest's own header set its page size; the next page is
    // a subrequest too.
    let first = &body["compositeResponse"][0];
    assert_eq!(first["referenceId"], "q0");
    assert_eq!(first["body"]["records"].as_array().map(Vec::len), Some(200));
    assert_eq!(first["body"]["done"], false);
    let next = first["body"]["nextRecordsUrl"].as_str().expect("next page");
    let (_, body) = composite(&conn, vec![sub("GET", next, "more")]).await;
    let more = &body["compositeResponse"][0];
    assert_eq!(more["httpStatusCode"], 200, "{body}");
    assert_eq!(more["body"]["records"].as_array().map(Vec::len), Some(100));
    assert_eq!(more["body"]["done"], true);
    assert_eq!(
        sim.stats()["production"]["composite_subrequests"]["query_more"],
        1
    );
    // A subrequest may not set the headers it inherits.
    let mut bad = sub("GET", &q, "q");
    bad["httpHeaders"] = json!({"Authorization": "Bearer x"});
    let (status, body) = composite(&conn, vec![bad]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn composite_all_or_none_rolls_back_and_halts_the_rest() {
    let sim = sim(300).await;
    let conn = login(&sim, "production").await;
    let id = conn.ids("Contact", 1).await.remove(0);
    let rename = |name: &str| {
        let mut s = sub("PATCH", &format!("{V}/composite/sobjects"), "rename");
        s["body"] =
            json!({"records": [{"attributes": {"type": "Contact"}, "id": id, "LastName": name}]});
        s
    };
    let bad = sub("GET", &query_url("SELECT Nope FROM Contact"), "bad");
    let after = sub("GET", &query_url("SELECT Id FROM Contact LIMIT 1"), "after");
    let soql = format!("SELECT LastName FROM Contact WHERE Id = '{id}'");
    let last_name = async |conn: &Conn| {
        let (_, body) = conn.query(&soql).await;
        body["records"][0]["LastName"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let original = last_name(&conn).await;

    let body = json!({"allOrNone": true, "compositeRequest": [rename("Halted"), bad, after]});
    let (status, body) = conn
        .send(Method::POST, &format!("{V}/composite"), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = &body["compositeResponse"];
    for (i, code) in [
        (0, "PROCESSING_HALTED"),
        (1, "INVALID_FIELD"),
        (2, "PROCESSING_HALTED"),
    ] {
        assert_eq!(results[i]["httpStatusCode"], 400, "{body}");
        assert_eq!(results[i]["body"][0]["errorCode"], code, "{body}");
    }
    assert_eq!(
        last_name(&conn).await,
        original,
        "the update was rolled back"
    );

    let body = json!({"allOrNone": false, "compositeRequest": [rename("Kept"), bad, after]});
    let (_, body) = conn
        .send(Method::POST, &format!("{V}/composite"), Some(body))
        .await;
    let codes: Vec<&Value> = (0..3)
        .map(|i| &body["compositeResponse"][i]["httpStatusCode"])
        .collect();
    assert_eq!(codes, [&json!(200), &json!(400), &json!(200)], "{body}");
    assert_eq!(last_name(&conn).await, "Kept");
}

/// sfsql's client sends statements as composite query subrequests, five
/// a call, and their further pages (`nextRecordsUrl`) five a call too.
#[tokio::test]
async fn client_sends_statements_and_their_further_pages_five_a_call() {
    use futures::TryStreamExt;
    use sfsql::salesforce::{Credentials, SalesforceClient};
    let sim = sim(5_000).await;
    let client = std::sync::Arc::new(SalesforceClient::new(
        "production",
        sim.org_url("production"),
        Credentials::ClientCredentials {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.to_string().into(),
        },
    ));
    // Seven statements of 5,000 records: 21 pages of at most 2,000.
    let statements: Vec<String> = (0..7)
        .map(|i| format!("SELECT Id FROM Contact WHERE Id != '003000000000{i:03}AAA'"))
        .collect();
    let before = sim.stats();
    let pages: Vec<_> = client
        .composite_query_pages(statements, false, 2)
        .try_collect()
        .await
        .expect("pages");
    let after = sim.stats();
    let delta = |kind: &str| {
        after["production"]["requests"][kind].as_u64().unwrap_or(0)
            - before["production"]["requests"][kind].as_u64().unwrap_or(0)
    };
    let records: usize = pages.iter().map(|p| p.records.len()).sum();
    assert_eq!((pages.len(), records), (21, 35_000));
    assert_eq!((delta("query"), delta("query_more")), (0, 0));
    // 21 subrequests: five calls when every call but the last is full.
    assert!(delta("composite") <= 6, "{}", delta("composite"));
    let subs = &after["production"]["composite_subrequests"];
    assert_eq!(
        (subs["query"].as_u64(), subs["query_more"].as_u64()),
        (Some(7), Some(14))
    );

    // A subrequest's error is the statement's error.
    let err = client
        .composite_query_pages(
            vec![
                "SELECT Id FROM Contact".into(),
                "SELECT Nope FROM Contact".into(),
            ],
            false,
            1,
        )
        .try_collect::<Vec<_>>()
        .await
        .expect_err("a bad field");
    let text = err.to_string();
    assert!(
        text.contains("400 INVALID_FIELD") && text.contains("Nope"),
        "{text}"
    );
}

#[tokio::test]
async fn injected_faults_and_expired_tokens() {
    let sim = sim(300).await;
    let http = Client::new();
    let conn = login(&sim, "sandbox").await;
    http.post(format!(
        "{}/__sim/fail_next?org=sandbox&status=503&count=2",
        sim.base_url()
    ))
    .send()
    .await
    .expect("inject");
    for _ in 0..2 {
        let (status, body) = conn.get(&format!("{V}/limits")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(&body), "SERVER_UNAVAILABLE");
    }
    assert_eq!(conn.get(&format!("{V}/limits")).await.0, StatusCode::OK);

    http.post(format!("{}/__sim/expire_tokens", sim.base_url()))
        .send()
        .await
        .expect("expire");
    let (status, body) = conn.get(&format!("{V}/limits")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "INVALID_SESSION_ID");
}
