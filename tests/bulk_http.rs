//! Bulk API 2.0 over real HTTP: the simulator's job resources spoken to
//! directly, and sfsql's Bulk client against the simulator.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sfsql::salesforce::{
    BulkIngestWriter, BulkOperation, BulkRecordResult, Credentials, PollPolicy, SalesforceClient,
};
use sfsql::simulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimHandle};

mod support;
use support::{V, sim};

/// A logged-in raw HTTP connection to the production org.
struct Conn {
    http: Client,
    base: String,
    token: String,
}

async fn login(sim: &SimHandle) -> Conn {
    let http = Client::new();
    let body: Value = http
        .post(format!(
            "{}/services/oauth2/token",
            sim.org_url("production")
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    Conn {
        http,
        base: format!("{}{V}", body["instance_url"].as_str().expect("instance")),
        token: body["access_token"].as_str().expect("token").to_string(),
    }
}

impl Conn {
    async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<Value>,
        csv: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(j) = json {
            req = req.json(&j);
        }
        if let Some(c) = csv {
            req = req.header("Content-Type", "text/csv").body(c.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, text) = self.call(method, path, body, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn upload(&self, job: &str, csv: &str) -> (StatusCode, String) {
        let path = format!("/jobs/ingest/{job}/batches");
        self.call(Method::PUT, &path, None, Some(csv)).await
    }

    /// `successfulResults`, `failedResults` or `unprocessedrecords` of a job.
    async fn results(&self, job: &str, kind: &str) -> (StatusCode, String) {
        let path = format!("/jobs/ingest/{job}/{kind}/");
        self.call(Method::GET, &path, None, None).await
    }

    async fn set_state(&self, job: &str, state: &str) -> (StatusCode, Value) {
        let path = format!("/jobs/ingest/{job}");
        self.json(Method::PATCH, &path, Some(json!({ "state": state })))
            .await
    }

    /// A new insert job on Contact; its id.
    async fn open_insert_job(&self) -> String {
        let spec = json!({"object": "Contact", "operation": "insert"});
        let (_, job) = self.json(Method::POST, "/jobs/ingest", Some(spec)).await;
        job["id"].as_str().expect("job id").to_string()
    }

    async fn stats(&self, sim: &SimHandle) -> Value {
        sim.stats()["production"].clone()
    }
}

async fn contact_ids(conn: &Conn, n: usize) -> Vec<String> {
    let (_, body) = conn
        .json(
            Method::GET,
            &format!("/query?q=SELECT+Id+FROM+Contact+ORDER+BY+Id+LIMIT+{n}"),
            None,
        )
        .await;
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["Id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn ingest_job_goes_through_its_states_and_reports_every_record() {
    let sim = sim(50).await;
    let conn = login(&sim).await;
    let ids = contact_ids(&conn, 3).await;
    let (status, job) = conn
        .json(
            Method::POST,
            "/jobs/ingest",
            Some(json!({"object": "Contact", "operation": "update", "contentType": "CSV", "lineEnding": "LF"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "Open");
    assert_eq!(job["operation"], "update");
    let id = job["id"].as_str().expect("job id").to_string();
    assert!(id.starts_with("750"), "{id}");
    assert!(job.get("numberRecordsProcessed").is_none());

    let early = conn.results(&id, "successfulResults").await;
    assert_eq!(early.0, StatusCode::BAD_REQUEST);
    assert!(early.1.contains("INVALIDJOBSTATE"), "{}", early.1);

    // Second row: a bad email; third: an unreadable number; fourth: no such id.
    let csv = format!(
        "Id,Title,Email,WM_NPS_Score__c\n{},\"Boss, \"\"big\"\"\",,9\n{},,not-an-email,\n{},,,abc\n003000000000000AAA,x,,\n",
        ids[0], ids[1], ids[2]
    );
    let (status, body) = conn.upload(&id, &csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = conn.upload(&id, &csv).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "only one upload per job");
    assert!(body.contains("INVALIDJOBSTATE"));

    let (status, closed) = conn.set_state(&id, "UploadComplete").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["state"], "UploadComplete");

    let (_, first) = conn
        .json(Method::GET, &format!("/jobs/ingest/{id}"), None)
        .await;
    assert_eq!(first["state"], "InProgress");
    let (_, done) = conn
        .json(Method::GET, &format!("/jobs/ingest/{id}"), None)
        .await;
    assert_eq!(done["state"], "JobComplete");
    assert_eq!(done["numberRecordsProcessed"], 4);
    assert_eq!(done["numberRecordsFailed"], 3);
    assert_eq!(done["jobType"], "V2Ingest");

    let (_, ok) = conn.results(&id, "successfulResults").await;
    assert_eq!(
        ok,
        format!(
            "sf__Id,sf__Created,Id,Title,Email,WM_NPS_Score__c\n{0},false,{0},\"Boss, \"\"big\"\"\",,9\n",
            ids[0]
        )
    );
    let (_, failed) = conn.results(&id, "failedResults").await;
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines[0], "sf__Id,sf__Error,Id,Title,Email,WM_NPS_Score__c");
    assert!(
        lines[1].starts_with(&format!(
            "{},INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --",
            ids[1]
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("INVALID_FIELD:Failed to deserialize field at col 4"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("INVALID_CROSS_REFERENCE_KEY"),
        "{}",
        lines[3]
    );
    assert_eq!(lines.len(), 4);
    let (_, unprocessed) = conn.results(&id, "unprocessedrecords").await;
    assert_eq!(unprocessed, "Id,Title,Email,WM_NPS_Score__c\n");

    // The update took effect; the quoted comma and quotes survived.
    let (_, row) = conn
        .json(
            Method::GET,
            &format!(
                "/query?q=SELECT+Title,WM_NPS_Score__c+FROM+Contact+WHERE+Id='{}'",
                ids[0]
            ),
            None,
        )
        .await;
    assert_eq!(row["records"][0]["Title"], "Boss, \"big\"");
    assert_eq!(row["records"][0]["WM_NPS_Score__c"], 9.0);

    let stats = conn.stats(&sim).await;
    assert_eq!(stats["requests"]["bulk_ingest_create"], 1);
    assert_eq!(stats["requests"]["bulk_ingest_upload"], 2);
    assert_eq!(stats["requests"]["bulk_ingest_state"], 1);
    assert_eq!(stats["requests"]["bulk_ingest_info"], 2);
    assert_eq!(stats["requests"]["bulk_ingest_results"], 4);
    assert_eq!(stats["bulk_records_processed"], 4);

    let (status, _) = conn
        .call(Method::DELETE, &format!("/jobs/ingest/{id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = conn
        .json(Method::GET, &format!("/jobs/ingest/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Runs one job to completion over raw HTTP; returns its final info.
async fn run_job(conn: &Conn, spec: Value, csv: &str) -> (String, Value) {
    let (status, job) = conn.json(Method::POST, "/jobs/ingest", Some(spec)).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    conn.upload(&id, csv).await;
    conn.set_state(&id, "UploadComplete").await;
    loop {
        let (_, info) = conn
            .json(Method::GET, &format!("/jobs/ingest/{id}"), None)
            .await;
        if info["state"] != "InProgress" && info["state"] != "UploadComplete" {
            return (id, info);
        }
    }
}

#[tokio::test]
async fn insert_upsert_delete_and_job_level_failures() {
    let sim = sim(20).await;
    let conn = login(&sim).await;
    let (id, info) = run_job(
        &conn,
        json!({"object": "Contact", "operation": "insert", "lineEnding": "CRLF"}),
        "LastName,FirstName,Email\r\nBulk,Ann,ann@example.com\r\n,NoLast,\r\n",
    )
    .await;
    assert_eq!(info["numberRecordsFailed"], 1);
    let (_, ok) = conn.results(&id, "successfulResults").await;
    let created = ok.lines().nth(1).expect("one created").to_string();
    assert!(
        created.ends_with(",true,Bulk,Ann,ann@example.com"),
        "{created}"
    );
    let new_id = created.split(',').next().expect("id").to_string();
    let (_, failed) = conn.results(&id, "failedResults").await;
    assert!(
        failed.contains(
            ",REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --,,NoLast,"
        ),
        "{failed}"
    );

    // Upsert on an external id: one create, then an update of the same key.
    let spec = json!({"object": "Task", "operation": "upsert", "externalIdFieldName": "External_Activity_Id__c"});
    let (_, first) = run_job(
        &conn,
        spec.clone(),
        "External_Activity_Id__c,Subject\nA-1,Call\n",
    )
    .await;
    assert_eq!(first["externalIdFieldName"], "External_Activity_Id__c");
    assert_eq!(first["numberRecordsFailed"], 0);
    let (id2, _) = run_job(
        &conn,
        spec,
        "External_Activity_Id__c,Subject\nA-1,Call again\n",
    )
    .await;
    let (_, ok) = conn.results(&id2, "successfulResults").await;
    assert!(
        ok.lines()
            .nth(1)
            .expect("row")
            .contains(",false,A-1,Call again"),
        "{ok}"
    );

    // Delete the contact created above, twice: the second is ENTITY_IS_DELETED.
    let csv = format!("Id\n{new_id}\n{new_id}\n");
    let (_, info) = run_job(
        &conn,
        json!({"object": "Contact", "operation": "delete"}),
        &csv,
    )
    .await;
    assert_eq!(info["numberRecordsProcessed"], 2);

    // Header naming no field: the job fails, every row unprocessed.
    let (id, info) = run_job(
        &conn,
        json!({"object": "Contact", "operation": "insert"}),
        "LastName,Nope__c\nX,1\n",
    )
    .await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(
        info["errorMessage"],
        "InvalidBatch : Field name not found : Nope__c"
    );
    let (_, un) = conn.results(&id, "unprocessedrecords").await;
    assert_eq!(un, "LastName,Nope__c\nX,1\n");

    // Bad job specs are refused at creation.
    for (spec, code) in [
        (
            json!({"object": "Nope", "operation": "insert"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Task", "operation": "upsert"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Contact", "operation": "merge"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Contact", "operation": "insert", "columnDelimiter": "X"}),
            "INVALIDJOB",
        ),
    ] {
        let (status, body) = conn.json(Method::POST, "/jobs/ingest", Some(spec)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body[0]["errorCode"], code, "{body}");
    }

    // An aborted job cannot be closed; its upload is unprocessed.
    let id = conn.open_insert_job().await;
    conn.upload(&id, "LastName\nZ\n").await;
    let (_, aborted) = conn.set_state(&id, "Aborted").await;
    assert_eq!(aborted["state"], "Aborted");
    let (status, _) = conn.set_state(&id, "UploadComplete").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, un) = conn.results(&id, "unprocessedrecords").await;
    assert_eq!(un, "LastName\nZ\n");
}

#[tokio::test]
async fn upload_over_100_mb_is_refused() {
    let sim = sim(5).await;
    let conn = login(&sim).await;
    let id = conn.open_insert_job().await;
    let big = "a".repeat(100 * 1024 * 1024 + 1);
    let (status, body) = conn.upload(&id, &big).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("split the records over several jobs"),
        "{body}"
    );
}

fn client(sim: &SimHandle) -> std::sync::Arc<SalesforceClient> {
    std::sync::Arc::new(SalesforceClient::new(
        "production",
        sim.org_url("production"),
        Credentials::ClientCredentials {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.to_string().into(),
        },
    ))
}

fn fast_polls() -> PollPolicy {
    PollPolicy {
        initial: std::time::Duration::from_millis(20),
        ..PollPolicy::default()
    }
}

fn code(r: &BulkRecordResult) -> &str {
    match r {
        BulkRecordResult::Failed(e) => &e.status_code,
        _ => "",
    }
}

#[tokio::test]
async fn writer_accounts_for_every_record_of_each_operation() {
    let sim = sim(40).await;
    let conn = login(&sim).await;
    let sf = client(&sim);
    let ids = contact_ids(&conn, 4).await;
    let s = |v: &str| Some(json!(v));

    // Update with a cleared field, an unchanged cell, a failure, and a row
    // whose content repeats another's.
    let cols = vec!["Id".to_string(), "Title".to_string(), "Email".to_string()];
    let rows = vec![
        vec![s(&ids[0]), s("CEO, \"Acme\""), None],
        vec![s(&ids[1]), Some(Value::Null), s("bad email")],
        vec![s(&ids[2]), s("CTO"), s("")],
        vec![s(&ids[3]), s("CTO"), s("")],
    ];
    let report = BulkIngestWriter::new(sf.clone(), "Contact", BulkOperation::Update)
        .poll(fast_polls())
        .write(&cols, rows)
        .await
        .expect("bulk update");
    assert_eq!(report.job_ids.len(), 1);
    assert!(report.polls >= 2, "processing finishes on a later poll");
    assert_eq!(
        report.results[0],
        BulkRecordResult::Saved {
            id: ids[0].clone(),
            created: false
        }
    );
    assert_eq!(code(&report.results[1]), "INVALID_EMAIL_ADDRESS");
    assert!(matches!(report.results[2], BulkRecordResult::Saved { .. }));
    assert!(matches!(report.results[3], BulkRecordResult::Saved { .. }));
    let (_, row) = conn
        .json(
            Method::GET,
            &format!(
                "/query?q=SELECT+Title,Email+FROM+Contact+WHERE+Id='{}'",
                ids[0]
            ),
            None,
        )
        .await;
    assert_eq!(row["records"][0]["Title"], "CEO, \"Acme\"");
    assert!(
        row["records"][0]["Email"].is_string(),
        "empty cell left Email alone"
    );

    // Insert split over three jobs by a tiny upload limit; one row fails.
    let cols = vec!["LastName".to_string(), "FirstName".to_string()];
    let rows: Vec<_> = (0..7)
        .map(|i| vec![if i == 3 { None } else { s(&format!("Bulk{i}")) }, s("Ann")])
        .collect();
    let report = BulkIngestWriter::new(sf.clone(), "Contact", BulkOperation::Insert)
        .poll(fast_polls())
        .max_upload_bytes(40)
        .write(&cols, rows)
        .await
        .expect("bulk insert");
    assert!(report.job_ids.len() >= 3, "{:?}", report.job_ids);
    let created: Vec<&str> = report
        .results
        .iter()
        .filter_map(|r| match r {
            BulkRecordResult::Saved { id, created: true } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 6);
    assert_eq!(code(&report.results[3]), "REQUIRED_FIELD_MISSING");

    // Upsert: a create and an update in one job.
    let spec = vec!["External_Activity_Id__c".to_string(), "Subject".to_string()];
    let upsert = BulkIngestWriter::new(sf.clone(), "Task", BulkOperation::Upsert)
        .external_id("External_Activity_Id__c")
        .poll(fast_polls());
    upsert
        .write(&spec, vec![vec![s("K-1"), s("One")]])
        .await
        .expect("first upsert");
    let report = upsert
        .write(
            &spec,
            vec![vec![s("K-1"), s("One again")], vec![s("K-2"), s("Two")]],
        )
        .await
        .expect("second upsert");
    assert!(matches!(
        report.results[0],
        BulkRecordResult::Saved { created: false, .. }
    ));
    assert!(matches!(
        report.results[1],
        BulkRecordResult::Saved { created: true, .. }
    ));

    // Delete: one live record, one malformed id.
    let report = BulkIngestWriter::new(sf.clone(), "Contact", BulkOperation::Delete)
        .poll(fast_polls())
        .write(
            &["Id".to_string()],
            vec![vec![s(created[0])], vec![s("nope")]],
        )
        .await
        .expect("bulk delete");
    assert_eq!(
        report.results[0],
        BulkRecordResult::Saved {
            id: created[0].to_string(),
            created: false
        }
    );
    assert_eq!(code(&report.results[1]), "MALFORMED_ID");

    // A job that fails as a whole leaves its rows unprocessed.
    let report = BulkIngestWriter::new(sf.clone(), "Contact", BulkOperation::Insert)
        .poll(fast_polls())
        .write(&["Nope__c".to_string()], vec![vec![s("x")]])
        .await
        .expect("failed job still reports");
    match &report.results[0] {
        BulkRecordResult::Unprocessed(reason) => {
            assert!(
                reason.contains("Field name not found : Nope__c"),
                "{reason}"
            )
        }
        other => panic!("expected unprocessed, got {other:?}"),
    }

    // A refused job creation fails its records with Salesforce's code.
    let report = BulkIngestWriter::new(sf.clone(), "NoSuchObject", BulkOperation::Insert)
        .poll(fast_polls())
        .write(&["Name".to_string()], vec![vec![s("x")]])
        .await
        .expect("report");
    assert_eq!(code(&report.results[0]), "INVALIDJOB");
}

/// GET a query job's results page: status, `Sforce-Locator`,
/// `Sforce-NumberOfRecords` and the CSV body.
async fn results_page(conn: &Conn, job: &str, query: &str) -> (StatusCode, String, String, String) {
    let resp = conn
        .http
        .get(format!("{}/jobs/query/{job}/results{query}", conn.base))
        .bearer_auth(&conn.token)
        .send()
        .await
        .expect("results");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, locator, count) = (
        resp.status(),
        header("Sforce-Locator"),
        header("Sforce-NumberOfRecords"),
    );
    (status, locator, count, resp.text().await.expect("body"))
}

#[tokio::test]
async fn query_job_runs_polls_and_pages_its_csv_results() {
    let sim = sim(50).await;
    let conn = login(&sim).await;
    let soql = "SELECT Id, Email, Birthdate, CreatedDate, HasOptedOutOfEmail, Account.Name FROM Contact WHERE Email != null ORDER BY Id";
    let (status, job) = conn
        .json(
            Method::POST,
            "/jobs/query",
            Some(json!({"operation": "query", "query": soql})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    for (k, v) in [
        ("operation", "query"),
        ("object", "Contact"),
        ("state", "UploadComplete"),
        ("concurrencyMode", "Parallel"),
        ("contentType", "CSV"),
        ("lineEnding", "LF"),
        ("columnDelimiter", "COMMA"),
    ] {
        assert_eq!(job[k], v, "{k} in {job}");
    }
    assert!(
        job["createdById"]
            .as_str()
            .is_some_and(|s| s.starts_with("005"))
    );
    assert!(
        job["createdDate"]
            .as_str()
            .is_some_and(|s| s.ends_with("+0000"))
    );
    assert_eq!(job["apiVersion"], 62.0);
    let id = job["id"].as_str().expect("job id").to_string();
    assert!(id.starts_with("750"), "{id}");

    let (status, _, _, early) = results_page(&conn, &id, "").await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let early: Value = serde_json::from_str(&early).expect("error envelope");
    assert_eq!(early[0]["errorCode"], "JOB_NOT_COMPLETE", "{early}");

    let path = format!("/jobs/query/{id}");
    let (_, first) = conn.json(Method::GET, &path, None).await;
    assert_eq!(first["state"], "InProgress");
    let (_, done) = conn.json(Method::GET, &path, None).await;
    assert_eq!(done["state"], "JobComplete");
    assert_eq!(done["jobType"], "V2Query");
    let total = done["numberRecordsProcessed"].as_u64().expect("processed");
    assert!(total > 20, "{done}");

    // The REST query of the same statement is the reference.
    let (_, rest) = conn
        .json(Method::GET, &format!("/query?q={}", url_encode(soql)), None)
        .await;
    let rest = rest["records"].as_array().expect("records").clone();
    assert_eq!(rest.len() as u64, total);

    let mut locator = String::new();
    let mut rows: Vec<csv::StringRecord> = Vec::new();
    let mut pages = 0;
    loop {
        let query = if locator.is_empty() {
            "?maxRecords=20".to_string()
        } else {
            format!("?locator={locator}&maxRecords=20")
        };
        let (status, next, count, body) = results_page(&conn, &id, &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(
            reader.headers().expect("header").iter().collect::<Vec<_>>(),
            [
                "Id",
                "Email",
                "Birthdate",
                "CreatedDate",
                "HasOptedOutOfEmail",
                "Account.Name"
            ]
        );
        let page: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(count, page.len().to_string());
        rows.extend(page);
        if next == "null" {
            break;
        }
        locator = next;
    }
    assert_eq!(pages as u64, total.div_ceil(20));
    assert_eq!(rows.len() as u64, total);
    for (csv_row, json) in rows.iter().zip(&rest) {
        assert_eq!(&csv_row[0], json["Id"].as_str().expect("id"));
        assert_eq!(&csv_row[1], json["Email"].as_str().expect("email"));
        assert_eq!(&csv_row[2], json["Birthdate"].as_str().unwrap_or(""));
        // Bulk writes datetimes with Z, REST with +0000.
        let created = json["CreatedDate"].as_str().expect("created");
        assert_eq!(&csv_row[3], created.replace("+0000", "Z"));
        assert!(csv_row[3].ends_with(".000Z") || csv_row[3].ends_with('Z'));
        let opted = json["HasOptedOutOfEmail"].as_bool().expect("bool");
        assert_eq!(&csv_row[4], opted.to_string());
        let account = json["Account"]["Name"].as_str().unwrap_or("");
        assert_eq!(&csv_row[5], account);
    }
    // A locator may be read again while the job exists.
    let (status, _, count, _) = results_page(&conn, &id, "?locator=MjA&maxRecords=20").await;
    assert_eq!((status, count.as_str()), (StatusCode::OK, "20"));
    let (status, _, _, bad) = results_page(&conn, &id, "?locator=garbage!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let stats = conn.stats(&sim).await;
    assert_eq!(stats["requests"]["bulk_query_create"], 1);
    assert_eq!(stats["requests"]["bulk_query_info"], 2);
    assert_eq!(stats["requests"]["bulk_query_results"], pages + 3);

    // A finished job cannot be aborted; it can be deleted, and is gone then.
    let (status, body) = conn
        .json(Method::PATCH, &path, Some(json!({"state": "Aborted"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALIDJOBSTATE");
    let (status, _) = conn.call(Method::DELETE, &path, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = conn.json(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn query_all_jobs_see_deleted_rows_and_bad_jobs_fail_clearly() {
    let sim = sim(50).await;
    let conn = login(&sim).await;
    let ids = contact_ids(&conn, 1).await;
    let (status, _) = conn
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={}&allOrNone=false", ids[0]),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let soql = format!("SELECT Id, IsDeleted FROM Contact WHERE Id = '{}'", ids[0]);
    let mut seen = Vec::new();
    for operation in ["query", "queryAll"] {
        let (_, job) = conn
            .json(
                Method::POST,
                "/jobs/query",
                Some(json!({"operation": operation, "query": soql, "columnDelimiter": "PIPE", "lineEnding": "CRLF"})),
            )
            .await;
        assert_eq!(job["operation"], operation);
        let id = job["id"].as_str().expect("id").to_string();
        let path = format!("/jobs/query/{id}");
        conn.json(Method::GET, &path, None).await;
        let (_, done) = conn.json(Method::GET, &path, None).await;
        assert_eq!(done["state"], "JobComplete");
        let (_, locator, _, body) = results_page(&conn, &id, "").await;
        assert_eq!(locator, "null");
        seen.push(body);
    }
    assert_eq!(seen[0], "Id|IsDeleted\r\n");
    assert_eq!(seen[1], format!("Id|IsDeleted\r\n{}|true\r\n", ids[0]));

    // A statement Salesforce rejects fails the create, with the REST error.
    let (status, body) = conn
        .json(
            Method::POST,
            "/jobs/query",
            Some(json!({"operation": "query", "query": "SELECT Nope__c FROM Contact"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD", "{body}");
    let (status, body) = conn
        .json(
            Method::POST,
            "/jobs/query",
            Some(json!({"operation": "upsert", "query": "SELECT Id FROM Contact"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALIDJOB", "{body}");

    // COUNT() is valid SOQL but not for Bulk: the job fails with a message.
    let (_, job) = conn
        .json(
            Method::POST,
            "/jobs/query",
            Some(json!({"operation": "query", "query": "SELECT COUNT() FROM Contact"})),
        )
        .await;
    let path = format!("/jobs/query/{}", job["id"].as_str().expect("id"));
    conn.json(Method::GET, &path, None).await;
    let (_, failed) = conn.json(Method::GET, &path, None).await;
    assert_eq!(failed["state"], "Failed");
    assert!(
        failed["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("COUNT()")),
        "{failed}"
    );

    // A job still running can be aborted; then its results are refused.
    let (_, job) = conn
        .json(
            Method::POST,
            "/jobs/query",
            Some(json!({"operation": "query", "query": "SELECT Id FROM Contact"})),
        )
        .await;
    let id = job["id"].as_str().expect("id").to_string();
    let path = format!("/jobs/query/{id}");
    let (status, aborted) = conn
        .json(Method::PATCH, &path, Some(json!({"state": "Aborted"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(aborted["state"], "Aborted");
    let (status, _, _, _) = results_page(&conn, &id, "").await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn client_streams_a_bulk_query_page_by_page_and_aborts_when_dropped() {
    use futures::StreamExt;
    use sfsql::salesforce::BulkQueryOptions;

    let sim = sim(120).await;
    let client = client(&sim);
    let options = BulkQueryOptions {
        page_records: 50,
        poll: fast_polls(),
        ..BulkQueryOptions::default()
    };
    let soql = "SELECT Id, Email, Account.Name FROM Contact".to_string();
    let pages: Vec<_> = client
        .bulk_query(soql.clone(), options)
        .map(|p| p.expect("page"))
        .collect()
        .await;
    assert_eq!(
        pages.iter().map(|p| p.rows.len()).collect::<Vec<_>>(),
        [50, 50, 20]
    );
    assert_eq!(
        pages[0].header.iter().collect::<Vec<_>>(),
        ["Id", "Email", "Account.Name"]
    );
    let stats = &sim.stats()["production"];
    assert_eq!(stats["requests"]["bulk_query_create"], 1);
    assert_eq!(stats["requests"]["bulk_query_results"], 3);
    assert!(
        stats["requests"]["bulk_query_state"].is_null(),
        "nothing aborted"
    );

    // Dropped before the job finished (a cancelled statement): the job is
    // aborted.
    let polls = || sim.stats()["production"]["requests"]["bulk_query_info"].as_u64();
    let before = polls();
    let slow = BulkQueryOptions {
        poll: PollPolicy {
            initial: std::time::Duration::from_secs(60),
            ..PollPolicy::default()
        },
        ..options
    };
    let mut stream = client.bulk_query(soql, slow);
    {
        let next = stream.next();
        tokio::pin!(next);
        // Drive the stream until its first poll is in (the job InProgress);
        // it then waits a minute before the next.
        while polls() == before {
            tokio::select! {
                _ = &mut next => panic!("the job cannot finish while its poll waits"),
                _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            }
        }
    }
    drop(stream);
    let mut aborted = false;
    for _ in 0..200 {
        if sim.stats()["production"]["requests"]["bulk_query_state"] == 1 {
            aborted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(aborted, "no PATCH Aborted reached the org");

    // A job Salesforce fails ends the stream with its message.
    let err = client
        .bulk_query("SELECT COUNT() FROM Contact".into(), options)
        .next()
        .await
        .expect("one item")
        .expect_err("COUNT() jobs fail");
    let msg = err.to_string();
    assert!(
        msg.contains("ended Failed") && msg.contains("COUNT()"),
        "{msg}"
    );
    assert!(msg.contains("sfsql.bulk_query_threshold = 0"), "{msg}");
}

/// `GET /jobs/query` lists the query jobs, 1,000 a page, with the next
/// page in `nextRecordsUrl`; `jobType` selects ingest jobs instead.
#[tokio::test]
async fn query_jobs_are_listed_a_thousand_a_page() {
    let sim = sim(20).await;
    let conn = login(&sim).await;
    let create = json!({"operation": "query", "query": "SELECT Id FROM Contact"});
    let mut ids = Vec::new();
    for _ in 0..1001 {
        let (status, job) = conn
            .json(Method::POST, "/jobs/query", Some(create.clone()))
            .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        ids.push(job["id"].as_str().expect("id").to_string());
    }
    conn.open_insert_job().await;

    let (status, first) = conn.json(Method::GET, "/jobs/query", None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["done"], false);
    let records = first["records"].as_array().expect("records");
    assert_eq!(records.len(), 1000);
    let job = &records[0];
    for (k, v) in [
        ("operation", "query"),
        ("object", "Contact"),
        ("state", "UploadComplete"),
        ("jobType", "V2Query"),
        ("concurrencyMode", "Parallel"),
        ("contentType", "CSV"),
        ("lineEnding", "LF"),
        ("columnDelimiter", "COMMA"),
    ] {
        assert_eq!(job[k], v, "{k} in {job}");
    }
    let next = first["nextRecordsUrl"].as_str().expect("next page");
    assert!(
        next.starts_with(&format!("{V}/jobs/query?queryLocator=")),
        "{next}"
    );
    let (_, second) = conn
        .json(Method::GET, next.trim_start_matches(V), None)
        .await;
    assert_eq!(second["done"], true);
    assert_eq!(second["nextRecordsUrl"], Value::Null);
    let mut listed: Vec<String> = records
        .iter()
        .chain(second["records"].as_array().expect("records"))
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "every query job once, no ingest job");

    let (_, ingest) = conn
        .json(Method::GET, "/jobs/query?jobType=V2Ingest", None)
        .await;
    assert_eq!(ingest["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(ingest["records"][0]["jobType"], "V2Ingest");
    let (_, classic) = conn
        .json(Method::GET, "/jobs/query?jobType=Classic", None)
        .await;
    assert_eq!(classic["records"], json!([]));
    assert_eq!(classic["done"], true);
    let (status, bad) = conn
        .json(Method::GET, "/jobs/query?jobType=Nope", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad[0]["errorCode"], "INVALIDJOB");
    assert_eq!(conn.stats(&sim).await["requests"]["bulk_query_list"], 5);
}
