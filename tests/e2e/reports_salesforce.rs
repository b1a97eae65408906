//! Salesforce analytics reports (`format = "salesforce"`) over a Postgres
//! connection, against the simulator's Reports API over HTTP: the errors a
//! user can meet (a summary report, an unknown id, a report cut at 2,000
//! rows), each with its SQLSTATE and what to do, the server staying up.

use std::sync::Arc;

use sfsql::scheduler::SystemClock;
use sfsql::simulator::{SimConfig, report_id_of};

use crate::common::{TestDemo, copy_dir, error_of, launch, repo_catalog};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_cut_at_2000_rows_is_refused_not_returned_in_part() {
    let all = report_id_of("All Contacts").expect("report");
    let demo = demo_with(2_100, &[("all_contacts", "production", all)]).await;
    let client = demo.connect().await;
    let (code, message) = error_of(&client, "SELECT count(*) FROM reports.all_contacts").await;
    assert_eq!(code, "54000", "{message}");
    assert!(
        message.contains(
            "(All Contacts) has 2100 detail rows and the Reports API returns only the first 2,000"
        ),
        "{message}"
    );
    assert!(
        message.contains("query the object it reports on"),
        "{message}"
    );
    assert_eq!(requests(&demo, "production", "report_run"), 1);
}
