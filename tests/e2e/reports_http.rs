//! HTTP JSON API reports over a Postgres connection, against a JSON API
//! served by the test (axum): next-link, cursor and offset paging, bearer
//! and OAuth2 client-credentials auth, inferred and declared columns,
//! fetching at query time, and errors that name the report without secrets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sfsql::config::{Catalog, Env};
use sfsql::session::Engine;

use crate::common::{connect_port, error_of, repo_catalog};

const TOKEN: &str = "s3cret-token";
const CC_TOKEN: &str = "cc-token-77";

#[derive(Default)]
struct Api {
    requests: AtomicUsize,
    token_requests: AtomicUsize,
}

fn ticket(n: usize) -> Value {
    json!({"id": n, "subject": format!("Ticket {n}"), "email": format!("user{n}@example.org"),
           "opened_at": format!("2026-11-0{n}T10:00:00Z"), "priority": if n.is_multiple_of(2) { "high" } else { "low" }})
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn param(q: &HashMap<String, String>, name: &str) -> usize {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Five tickets, two per page, behind a bearer token; the next link is
/// relative.
async fn next_link(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    api.requests.fetch_add(1, Ordering::SeqCst);
    if bearer(&headers) != Some(TOKEN) || headers.get("x-tenant").is_none() {
        // Some APIs echo what they were sent; the error must not.
        return (
            StatusCode::UNAUTHORIZED,
            format!("bad token {:?}", bearer(&headers)),
        )
            .into_response();
    }
    let page = param(&q, "page");
    let items: Vec<Value> = (page * 2 + 1..=(page * 2 + 2).min(5)).map(ticket).collect();
    let next = (page < 2).then(|| format!("/tickets?page={}", page + 1));
    axum::Json(json!({"data": {"items": items}, "links": {"next": next}})).into_response()
}

async fn cursor(State(api): State<Arc<Api>>, Query(q): Query<HashMap<String, String>>) -> Response {
    api.requests.fetch_add(1, Ordering::SeqCst);
    let (items, next) = match q.get("cursor").map(String::as_str) {
        None => (vec![ticket(1), ticket(2)], Some("c2")),
        Some("c2") => (vec![ticket(3), ticket(4)], Some("c3")),
        Some("c3") => (vec![ticket(5)], None),
        Some(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    axum::Json(json!({"results": items, "meta": {"next_cursor": next}})).into_response()
}

async fn offset(State(api): State<Arc<Api>>, Query(q): Query<HashMap<String, String>>) -> Response {
    api.requests.fetch_add(1, Ordering::SeqCst);
    let (start, limit) = (param(&q, "offset"), param(&q, "limit"));
    let items: Vec<Value> = (start + 1..=(start + limit).min(5)).map(ticket).collect();
    axum::Json(json!(items)).into_response()
}

async fn token(State(api): State<Arc<Api>>, headers: HeaderMap, body: String) -> Response {
    api.token_requests.fetch_add(1, Ordering::SeqCst);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("client-1:cc-secret");
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Basic {basic}")) || !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client"}).to_string(),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": CC_TOKEN, "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

async fn protected(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    api.requests.fetch_add(1, Ordering::SeqCst);
    if bearer(&headers) != Some(CC_TOKEN) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(json!([ticket(1), ticket(2)])).into_response()
}

async fn start_api() -> (String, Arc<Api>) {
    let api = Arc::new(Api::default());
    let app = Router::new()
        .route("/tickets", get(next_link))
        .route("/cursor", get(cursor))
        .route("/offset", get(offset))
        .route("/token", post(token))
        .route("/protected", get(protected))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "internal boom") }),
        )
        .route("/html", get(|| async { "<html>Sign in</html>" }))
        .route(
            "/wrong",
            get(|| async { axum::Json(json!({"data": {"rows": []}})) }),
        )
        .with_state(Arc::clone(&api));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, api)
}

fn reports_toml() -> &'static str {
    r#"
[tickets]
format = "http"
url = "${API}/tickets?page=0"
headers = { "X-Tenant" = "acme" }
auth = { type = "bearer", token_env = "TICKETS_TOKEN" }
records = "data.items"
pagination = { type = "next_link", next = "links.next" }
columns = ["id integer", "subject text", "email text", "opened_at timestamptz"]

[tickets_cursor]
format = "http"
url = "${API}/cursor"
records = "results"
pagination = { type = "cursor", param = "cursor", cursor = "meta.next_cursor" }

[tickets_offset]
format = "http"
url = "${API}/offset"
pagination = { type = "offset", param = "offset", limit_param = "limit", page_size = 2 }

[tickets_cc]
format = "http"
url = "${API}/protected"
auth = { type = "client_credentials", token_url = "${API}/token", client_id_env = "CC_ID", client_secret_env = "CC_SECRET" }
columns = ["id bigint", "priority text"]

[tickets_fail]
format = "http"
url = "${API}/fail"
columns = ["id bigint"]

[tickets_html]
format = "http"
url = "${API}/html"
columns = ["id bigint"]

[tickets_wrong_path]
format = "http"
url = "${API}/wrong"
records = "data.items"
columns = ["id bigint"]

[tickets_denied]
format = "http"
url = "${API}/tickets"
auth = { type = "bearer", token_env = "WRONG_TOKEN" }
records = "data.items"
columns = ["id bigint"]

[high_priority]
format = "sql"
query = "SELECT id, email FROM reports.tickets_offset WHERE priority = 'high'"
"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reports_page_authenticate_and_fail_clearly() {
    let (base, api) = start_api().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo_catalog().join("server.toml"),
        dir.path().join("server.toml"),
    )
    .expect("server.toml");
    std::fs::write(dir.path().join("reports.toml"), reports_toml()).expect("reports.toml");
    let env = Env::default()
        .with("API", base)
        .with("TICKETS_TOKEN", TOKEN)
        .with("WRONG_TOKEN", "wrong-secret-value")
        .with("CC_ID", "client-1")
        .with("CC_SECRET", "cc-secret");
    let catalog = Catalog::load(dir.path(), &env).expect("catalog");
    let engine = Arc::new(Engine::start(&catalog, &env).await.expect("engine"));
    // The view over tickets_offset was planned at start: one inference page.
    assert_eq!(
        api.requests.load(Ordering::SeqCst),
        1,
        "only the view's inference at start"
    );
    let server = sfsql::server::start(engine, &catalog.server, "127.0.0.1:0")
        .await
        .expect("server");
    let client = connect_port(server.addr.port()).await;
    let rows = |sql: &'static str| {
        let client = &client;
        async move {
            let messages = client.simple_query(sql).await.expect(sql);
            messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };

    // Next link (relative), bearer token and a header; declared columns.
    let before = api.requests.load(Ordering::SeqCst);
    let got = rows("SELECT id, email, opened_at FROM reports.tickets ORDER BY id").await;
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0], "1 user1@example.org 2026-11-01 10:00:00.000000+00");
    assert_eq!(
        api.requests.load(Ordering::SeqCst) - before,
        3,
        "three pages"
    );

    // Cursor paging, columns inferred from the first page.
    let got = rows("SELECT count(*), max(subject) FROM reports.tickets_cursor").await;
    assert_eq!(got, ["5 Ticket 5"]);
    // Offset paging: pages of two, the short third page is the last.
    let before = api.requests.load(Ordering::SeqCst);
    let got = rows("SELECT id FROM reports.tickets_offset ORDER BY id").await;
    assert_eq!(got, ["1", "2", "3", "4", "5"]);
    assert_eq!(api.requests.load(Ordering::SeqCst) - before, 3);
    // A view over an HTTP report; the API is read again at query time.
    let got = rows("SELECT id, email FROM reports.high_priority ORDER BY id").await;
    assert_eq!(got, ["2 user2@example.org", "4 user4@example.org"]);

    // OAuth2 client credentials: one token for several queries.
    let got = rows("SELECT id, priority FROM reports.tickets_cc ORDER BY id").await;
    assert_eq!(got, ["1 low", "2 high"]);
    rows("SELECT count(*) FROM reports.tickets_cc").await;
    assert_eq!(api.token_requests.load(Ordering::SeqCst), 1);

    // Errors: a SQLSTATE, the report, the status, what to do; no secret.
    let (code, message) = error_of(&client, "SELECT * FROM reports.tickets_fail").await;
    assert_eq!(code, "58000", "{message}");
    assert!(message.contains("report tickets_fail"), "{message}");
    assert!(message.contains("HTTP 500: internal boom"), "{message}");
    let (code, message) = error_of(&client, "SELECT * FROM reports.tickets_html").await;
    assert_eq!(code, "58000", "{message}");
    assert!(message.contains("not JSON"), "{message}");
    let (code, message) = error_of(&client, "SELECT * FROM reports.tickets_wrong_path").await;
    assert_eq!(code, "58000", "{message}");
    assert!(message.contains("no array at \"data.items\""), "{message}");
    assert!(message.contains("set records"), "{message}");
    let (code, message) = error_of(&client, "SELECT * FROM reports.tickets_denied").await;
    assert_eq!(code, "28000", "{message}");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains("wrong-secret-value"), "{message}");
    assert!(
        message.contains("***"),
        "the echoed token is masked: {message}"
    );

    // The server stays up.
    assert_eq!(rows("SELECT count(*) FROM reports.tickets").await, ["5"]);
    server.task.abort();
}

#[tokio::test]
async fn a_missing_secret_variable_stops_start_naming_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("reports.toml"),
        "[t]\nformat = \"http\"\nurl = \"http://127.0.0.1:9/x\"\ncolumns = [\"id int\"]\n\
         auth = { type = \"bearer\", token_env = \"SFSQL_TEST_NO_SUCH_VAR\" }\n",
    )
    .expect("write");
    let env = Env::default();
    let catalog = Catalog::load(dir.path(), &env).expect("catalog");
    let err = match Engine::start(&catalog, &env).await {
        Ok(_) => panic!("started without the token"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("report t"), "{err}");
    assert!(err.contains("SFSQL_TEST_NO_SUCH_VAR is not set"), "{err}");
}
