//! A connection marked `read_only = true` in the catalog refuses every
//! write (25006), for a writer and an admin alike, before any request
//! reaches Salesforce; SELECT, EXPLAIN and dry runs still work.

use std::sync::Arc;

use sfsql::config::{AuthMethod, Role};
use sfsql::scheduler::SystemClock;
use sfsql::simulator::SimConfig;
use tokio_postgres::NoTls;

use crate::auth::serve_users;
use crate::common::{copy_dir, error_of, launch, repo_catalog, rows, write_requests};

const UPDATE: &str = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name \
     FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_connection_refuses_writes_but_reads_and_dry_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo_catalog(), dir.path());
    let connections = dir.path().join("connections.toml");
    let toml = std::fs::read_to_string(&connections).expect("connections.toml");
    let (before, sandbox) = toml.split_once("[sandbox]\n").expect("a [sandbox] table");
    std::fs::write(
        &connections,
        format!("{before}[sandbox]\nread_only = true\n{sandbox}"),
    )
    .expect("write connections.toml");
    let sim = SimConfig {
        contacts: 300,
        ..SimConfig::default()
    };
    let demo = launch(dir, sim, Arc::new(SystemClock)).await;
    let server = serve_users(
        &demo,
        AuthMethod::ScramSha256,
        &[("will", "pw-will", Role::Writer)],
    )
    .await;
    let conn = format!(
        "host=127.0.0.1 port={} user=will password=pw-will dbname=demo",
        server.addr.port()
    );
    let (writer, connection) = tokio_postgres::connect(&conn, NoTls).await.expect("login");
    tokio::spawn(connection);
    let admin = demo.connect().await;

    let writes = [
        UPDATE.to_string(),
        "INSERT INTO sandbox.task (subject, status, priority) VALUES ('Refused', 'Not Started', 'Normal')".to_string(),
        "DELETE FROM sandbox.contact WHERE email = 'chloe.allen5@stark.example'".to_string(),
    ];
    for client in [&writer, &admin] {
        for sql in &writes {
            let (code, message) = error_of(client, sql).await;
            assert_eq!(code, "25006", "{sql}: {message}");
            assert_eq!(
                message, "connection sandbox is read-only in the catalog; writes are refused",
                "{sql}"
            );
        }
    }
    assert_eq!(write_requests(&demo.stats()["sandbox"]), 0);

    let counted = rows(&writer, "SELECT count(*) FROM sandbox.contact").await;
    assert_eq!(counted, vec![vec![Some("300".to_string())]]);
    writer
        .batch_execute("SET sfsql.dry_run = on")
        .await
        .expect("dry run on");
    let predicted = rows(&writer, UPDATE).await;
    assert_eq!(predicted.len(), 120, "{:?}", predicted.first());
    assert!(
        predicted.iter().all(|r| r[0].as_deref() == Some("update")),
        "{:?}",
        predicted.first()
    );
    assert_eq!(write_requests(&demo.stats()["sandbox"]), 0);
}
