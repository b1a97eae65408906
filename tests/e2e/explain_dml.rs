//! EXPLAIN of every DML kind: the reads and the SOQL each sends, the change
//! set, the write method with its batches and estimated API calls, and the
//! org's remaining daily API requests from `GET /limits`; no write reaches
//! the simulator.

use serde_json::Value;

use crate::common::{rows, start_demo};

fn writes(stats: &Value) -> u64 {
    crate::common::write_requests(&stats["sandbox"])
}

/// The plan text of the rows whose plan_type is `kind`.
fn plan_of(explain: &[Vec<Option<String>>], kind: &str) -> Vec<String> {
    explain
        .iter()
        .filter(|r| r[0].as_deref() == Some(kind))
        .filter_map(|r| r[1].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_reads_write_plan_calls_and_limits_for_every_kind() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    let statements = [
        (
            "UPDATE sandbox.contact SET wm_nps_score__c = r.nps_score FROM reports.nps_score r \
             WHERE lower(contact.email) = lower(r.account_email)",
            "update",
        ),
        (
            "INSERT INTO sandbox.task (external_activity_id__c, subject, status, priority) \
             SELECT 'x-' || activity_id, subject, 'Completed', 'Normal' FROM reports.timeline_activities \
             ON CONFLICT (external_activity_id__c) DO UPDATE SET subject = EXCLUDED.subject",
            "upsert",
        ),
        (
            "INSERT INTO sandbox.task (subject, status, priority) VALUES ('a', 'Completed', 'Normal')",
            "insert",
        ),
        ("DELETE FROM sandbox.task WHERE subject = 'Call'", "delete"),
        (
            "MERGE INTO sandbox.contact c USING reports.nps_score r \
             ON lower(c.email) = lower(r.account_email) \
             WHEN MATCHED THEN UPDATE SET wm_nps_score__c = r.nps_score",
            "update",
        ),
    ];
    let before = writes(&demo.stats());
    let limits_before = demo.stats()["sandbox"]["requests"]["limits"]
        .as_u64()
        .unwrap_or(0);
    for (sql, op) in statements {
        let explain = rows(&client, &format!("EXPLAIN {sql}")).await;
        let write = plan_of(&explain, "sfsql: write");
        assert_eq!(write.len(), 1, "{sql}: {explain:?}");
        assert!(
            write[0].starts_with(&format!("{op} ")) && write[0].contains("sObject Collections: "),
            "{sql}: {write:?}"
        );
        let calls = plan_of(&explain, "sfsql: estimated API calls");
        assert!(calls[0].contains("write call(s) for"), "{calls:?}");
        let limits = plan_of(&explain, "sfsql: daily API requests");
        assert!(
            limits[0].contains("of 15000 remaining in sandbox (GET /limits)"),
            "{limits:?}"
        );
        assert!(
            plan_of(&explain, "sfsql: change set")[0].contains("records matched"),
            "{explain:?}"
        );
        let physical = plan_of(&explain, "physical_plan").join("\n");
        // An INSERT reads only its source (an upsert's key lookup is a row
        // of its own); the others scan the target by SOQL.
        assert!(
            physical.contains("SObjectScanExec") || op == "insert" || op == "upsert",
            "{physical}"
        );
    }
    // The UPDATE's lookup shows its SOQL by key.
    let explain = rows(&client, &format!("EXPLAIN {}", statements[0].0)).await;
    let physical = plan_of(&explain, "physical_plan").join("\n");
    assert!(
        physical.contains("FROM Contact WHERE Email IN ("),
        "{physical}"
    );
    // MERGE's plan: the LEFT JOIN fetches the target by key too.
    let explain = rows(&client, &format!("EXPLAIN {}", statements[4].0)).await;
    let physical = plan_of(&explain, "physical_plan").join("\n");
    assert!(physical.contains("lookup by key"), "{physical}");
    // A Bulk-sized change set says so, with one job's calls.
    client
        .simple_query("SET sfsql.bulk_threshold = 10")
        .await
        .expect("set");
    let explain = rows(&client, &format!("EXPLAIN {}", statements[0].0)).await;
    let write = plan_of(&explain, "sfsql: write");
    assert!(
        write[0].contains("through Bulk API 2.0 ingest: 1 job(s)")
            && write[0].contains("above sfsql.bulk_threshold (10)"),
        "{write:?}"
    );
    assert_eq!(writes(&demo.stats()), before, "EXPLAIN never writes");
    let limits_after = demo.stats()["sandbox"]["requests"]["limits"]
        .as_u64()
        .unwrap_or(0);
    // One GET /limits per EXPLAIN (eight above).
    assert_eq!(limits_after - limits_before, 8);
}
