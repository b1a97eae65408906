//! Salesforce analytics reports (`format = "salesforce"`) over a Postgres
//! connection, against the simulator's Reports API over HTTP: the errors a
//! user can meet (a summary report, an unknown id), each with its SQLSTATE
//! and what to do, the server staying up; a report over 2,000 rows read
//! whole in sorted parts, and a WHERE sent as a report filter, with the
//! runs each costs.

use std::sync::Arc;

use sfsql::scheduler::SystemClock;
use sfsql::simulator::{SimConfig, report_id_of};

use crate::common::{TestDemo, copy_dir, error_of, launch, repo_catalog, rows};

/// The demo with these Salesforce reports added to its catalog: (table,
/// connection, report id).
async fn demo_with(contacts: usize, reports: &[(&str, &str, String)]) -> TestDemo {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo_catalog(), dir.path());
    let path = dir.path().join("reports.toml");
    let mut toml = std::fs::read_to_string(&path).expect("reports.toml");
    for (name, connection, id) in reports {
        toml.push_str(&format!(
            "\n[{name}]\nformat = \"salesforce\"\nconnection = \"{connection}\"\nreport_id = \"{id}\"\n"
        ));
    }
    std::fs::write(&path, toml).expect("write reports.toml");
    let sim = SimConfig {
        contacts,
        ..SimConfig::default()
    };
    launch(dir, sim, Arc::new(SystemClock)).await
}

fn requests(demo: &TestDemo, org: &str, kind: &str) -> u64 {
    demo.stats()[org]["requests"][kind].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_unknown_reports_say_what_to_do() {
    let summary = report_id_of("Contacts by Lead Source").expect("summary report");
    let demo = demo_with(
        300,
        &[
            ("by_source", "sandbox", summary.clone()),
            ("missing", "sandbox", "00O5g0000009ZZZEAA".into()),
        ],
    )
    .await;
    let client = demo.connect().await;

    // Listing the reports asks Salesforce nothing.
    let rows = client
        .simple_query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'reports'",
        )
        .await
        .expect("list");
    assert!(rows.len() > 4);
    assert_eq!(requests(&demo, "sandbox", "report_describe"), 0);

    let (code, message) = error_of(&client, "SELECT * FROM reports.by_source").await;
    assert_eq!(code, "0A000", "{message}");
    assert!(
        message.contains(&format!(
            "report by_source: Salesforce report {summary} (Contacts by Lead Source) is a SUMMARY report"
        )),
        "{message}"
    );
    assert!(message.contains("Save a tabular copy"), "{message}");

    let (code, message) = error_of(&client, "SELECT * FROM reports.missing").await;
    assert_eq!(code, "42704", "{message}");
    assert!(
        message.contains("connection sandbox has no report 00O5g0000009ZZZEAA; check report_id"),
        "{message}"
    );
    // Neither was run: the describe failed first.
    assert_eq!(requests(&demo, "sandbox", "report_run"), 0);
    assert_eq!(requests(&demo, "sandbox", "report_describe"), 2);

    // The server stays up, and a good report still answers.
    let rows = client
        .simple_query("SELECT count(*) FROM reports.contacts_by_nps")
        .await
        .expect("a tabular report");
    assert!(!rows.is_empty());
}

/// The first cell of each row of a query.
async fn column(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    rows(client, sql)
        .await
        .into_iter()
        .map(|r| r.into_iter().next().flatten().unwrap_or_default())
        .collect()
}

/// Every row of a query (EXPLAIN's plan lines), its cells joined by spaces.
async fn lines(client: &tokio_postgres::Client, sql: &str) -> String {
    rows(client, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|c| c.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_row_report_is_read_whole_in_sorted_parts() {
    let all = report_id_of("All Contacts").expect("report");
    let demo = demo_with(5_000, &[("all_contacts", "production", all)]).await;
    let client = demo.connect().await;
    let runs = |demo: &TestDemo| requests(demo, "production", "report_run");

    // Every row once: 2,000 a run, sorted by the contact id, each run
    // starting at the previous run's last id (1,999 new rows a run).
    let whole = lines(
        &client,
        "SELECT count(*), count(DISTINCT contact_id), count(email), count(lead_source) \
         FROM reports.all_contacts",
    )
    .await;
    assert_eq!(runs(&demo), 3);
    let object = lines(
        &client,
        "SELECT count(*), count(DISTINCT id), count(email), count(leadsource) FROM production.contact",
    )
    .await;
    assert_eq!(whole, object);
    assert!(whole.starts_with("5000 5000 "), "{whole}");
    let ids = column(
        &client,
        "SELECT r.contact_id FROM reports.all_contacts r JOIN production.contact c \
         ON c.id = r.contact_id AND (c.email IS NOT DISTINCT FROM r.email) \
         AND (c.leadsource IS NOT DISTINCT FROM r.lead_source)",
    )
    .await;
    assert_eq!(ids.len(), 5_000);
    assert_eq!(runs(&demo), 6);

    // count(*) alone reads the record count of one run.
    assert_eq!(
        column(&client, "SELECT count(*) FROM reports.all_contacts").await,
        ["5000"]
    );
    assert_eq!(runs(&demo), 7);

    // A WHERE goes with the run as a report filter: one run, fewer rows.
    let sources = column(
        &client,
        "SELECT leadsource FROM production.contact WHERE leadsource IS NOT NULL \
         GROUP BY leadsource ORDER BY count(*) LIMIT 1",
    )
    .await;
    let source = &sources[0];
    let filtered = format!(
        "SELECT count(*), count(DISTINCT contact_id) FROM reports.all_contacts \
         WHERE lead_source = '{source}'"
    );
    let counted = lines(&client, &filtered).await;
    assert_eq!(runs(&demo), 8);
    let expected = lines(
        &client,
        &format!(
            "SELECT count(*), count(DISTINCT id) FROM production.contact WHERE leadsource = '{source}'"
        ),
    )
    .await;
    assert_eq!(counted, expected);
    let plan = lines(&client, &format!("EXPLAIN {filtered}")).await;
    assert!(
        plan.contains(&format!(
            "SalesforceReportExec: connection=production, report_id={}, reportFilters=[LEAD_SOURCE equals \"{source}\"]",
            report_id_of("All Contacts").unwrap_or_default()
        )),
        "{plan}"
    );
    assert!(
        plan.contains("runs sorted by CONTACT.ID and split on it"),
        "{plan}"
    );
    // EXPLAIN ANALYZE says how many runs it took.
    let analyzed = lines(
        &client,
        "EXPLAIN ANALYZE SELECT count(email) FROM reports.all_contacts",
    )
    .await;
    assert!(analyzed.contains("runs=3 (as run)"), "{analyzed}");
}
