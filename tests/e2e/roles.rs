//! Roles over a real connection: a reader reads, explains and dry-runs; a
//! writer writes to non-production connections; only an admin writes to a
//! production org, manages `cron.*` jobs, refreshes or changes the shared
//! catalog.
//! Every refusal is 42501 and names the role needed.

use tokio_postgres::{Client, NoTls};

use crate::auth::serve_users;
use crate::common::{command_count, error_of, rows, start_demo};
use sfsql::config::{AuthMethod, Role};

const UPDATE_SANDBOX: &str = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name \
     FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)";
const UPDATE_PRODUCTION: &str =
    "UPDATE production.contact SET title = 'CTO' WHERE email = 'nobody@example.com'";
const SCHEDULE: &str = "SELECT cron.schedule('nightly', '0 3 * * *', 'SELECT 1')";
const REFRESH: &str = "SELECT sfsql.refresh('sandbox')";

async fn connect(port: u16, user: &str) -> Client {
    let conn = format!("host=127.0.0.1 port={port} user={user} password=pw-{user} dbname=demo");
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.expect("login");
    tokio::spawn(connection);
    client
}

async fn refused(client: &Client, sql: &str, role: &str) {
    let (code, message) = error_of(client, sql).await;
    assert_eq!(code, "42501", "{sql}: {message}");
    assert!(message.contains(&format!("need role {role}")), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_what_it_may_and_is_told_what_it_lacks() {
    let demo = start_demo(300, &[]).await;
    let server = serve_users(
        &demo,
        AuthMethod::ScramSha256,
        &[
            ("rita", "pw-rita", Role::Reader),
            ("will", "pw-will", Role::Writer),
            ("ada", "pw-ada", Role::Admin),
        ],
    )
    .await;
    let port = server.addr.port();

    let reader = connect(port, "rita").await;
    let n = rows(&reader, "SELECT count(*) FROM sandbox.contact").await;
    assert_eq!(n, vec![vec![Some("300".into())]]);
    assert!(
        !rows(&reader, &format!("EXPLAIN {UPDATE_SANDBOX}"))
            .await
            .is_empty()
    );
    reader
        .batch_execute("SET sfsql.dry_run = on")
        .await
        .expect("set");
    assert_eq!(
        rows(&reader, UPDATE_SANDBOX).await.len(),
        120,
        "a dry run is a read"
    );
    reader
        .batch_execute("SET sfsql.dry_run = off")
        .await
        .expect("set");
    refused(&reader, UPDATE_SANDBOX, "writer").await;
    let (_, message) = error_of(&reader, UPDATE_SANDBOX).await;
    assert!(
        message.contains("writes to sandbox") && message.contains("user rita has role reader"),
        "{message}"
    );
    refused(
        &reader,
        "DELETE FROM sandbox.contact WHERE email = 'nobody@example.com'",
        "writer",
    )
    .await;
    refused(
        &reader,
        "MERGE INTO sandbox.contact c USING reports.nps_score r ON c.email = r.account_email \
         WHEN MATCHED THEN UPDATE SET wm_quiz_name__c = r.quiz_name",
        "writer",
    )
    .await;
    refused(&reader, SCHEDULE, "admin").await;
    refused(&reader, "CREATE TABLE scratch AS SELECT 1 AS x", "admin").await;
    refused(&reader, REFRESH, "admin").await;
    // A file written on the server's disk; psql's \copy (TO STDOUT) is a read.
    let file = std::env::temp_dir().join(format!("sfsql-roles-{port}.csv"));
    let copy = format!(
        "COPY (SELECT email FROM sandbox.contact LIMIT 2) TO '{}'",
        file.display()
    );
    refused(&reader, &copy, "admin").await;
    refused(
        &reader,
        &format!("copy reports.nps_score to '{}'", file.display()),
        "admin",
    )
    .await;
    // The extended protocol (JDBC, psycopg) too.
    for sql in [
        copy.clone(),
        format!("COPY reports.nps_score TO '{}'", file.display()),
    ] {
        let err = reader.execute(&sql, &[]).await.expect_err("refused");
        let db = err.as_db_error().expect("a database error");
        assert_eq!(db.code().code(), "42501", "{sql}: {db:?}");
        assert!(db.message().contains("need role admin"), "{db:?}");
        let err = reader.query(&sql, &[]).await.expect_err("refused");
        assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));
    }
    assert!(!file.exists(), "a reader wrote {}", file.display());
    refused(&reader, "SELECT sfsql.refresh()", "admin").await;
    let (_, message) = error_of(&reader, REFRESH).await;
    assert!(message.contains("catalog refreshes"), "{message}");
    // The extended protocol is checked at Execute too.
    let err = reader
        .execute(UPDATE_SANDBOX, &[])
        .await
        .expect_err("refused");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));

    let writer = connect(port, "will").await;
    assert_eq!(command_count(&writer, UPDATE_SANDBOX).await, 120);
    refused(&writer, UPDATE_PRODUCTION, "admin").await;
    let (_, message) = error_of(&writer, UPDATE_PRODUCTION).await;
    assert!(
        message.contains("production (a production org)"),
        "{message}"
    );
    refused(&writer, SCHEDULE, "admin").await;
    refused(&writer, REFRESH, "admin").await;
    refused(&writer, &copy, "admin").await;
    writer
        .batch_execute("SET sfsql.dry_run = on")
        .await
        .expect("set");
    refused(&writer, REFRESH, "admin").await;
    // The extended protocol is checked at Execute too.
    let err = writer.query(REFRESH, &[]).await.expect_err("refused");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));

    let admin = connect(port, "ada").await;
    assert_eq!(command_count(&admin, UPDATE_PRODUCTION).await, 0);
    assert_eq!(rows(&admin, SCHEDULE).await.len(), 1);
    assert_eq!(rows(&admin, &copy).await, vec![vec![Some("2".into())]]);
    assert!(file.exists());
    std::fs::remove_file(&file).expect("remove the copy");
    let refreshed = rows(&admin, REFRESH).await;
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert_eq!(refreshed[0][0].as_deref(), Some("sandbox"));
    assert_eq!(
        rows(&reader, "SELECT jobname FROM cron.job").await,
        vec![vec![Some("nightly".into())]],
        "reading the job tables is a read"
    );
}
