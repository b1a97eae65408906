//! Write routing: an UPDATE whose change set is above `sfsql.bulk_threshold`
//! goes through one Bulk API 2.0 ingest job (polled until done) and makes no
//! Collections call; EXPLAIN and the dry run say which method is used.

use serde_json::Value;

use crate::common::{command_count, connect_with_notices, drain, rows, start_demo};

fn count(stats: &Value, kind: &str) -> u64 {
    stats["production"]["requests"][kind].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_above_threshold_goes_through_one_bulk_job() {
    let demo = start_demo(400, &[]).await;
    let (client, mut notices) = connect_with_notices(&demo).await;
    let update = "UPDATE production.contact SET title = 'Bulk VP' WHERE lastname IS NOT NULL";
    let total: u64 = rows(&client, "SELECT count(*) FROM production.contact").await[0][0]
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("count");
    assert!(total > 100, "{total}");

    assert_eq!(
        rows(&client, "SHOW sfsql.bulk_threshold").await[0][0].as_deref(),
        Some("2000")
    );
    client
        .simple_query("SET sfsql.bulk_threshold = 100")
        .await
        .expect("set threshold");
    let explain = rows(&client, &format!("EXPLAIN {update}")).await;
    let write = explain
        .iter()
        .find(|r| r[0].as_deref() == Some("sfsql: write"))
        .and_then(|r| r[1].clone())
        .expect("write row");
    assert!(
        write.contains(&format!(
            "update {total} records through Bulk API 2.0 ingest: 1 job(s)"
        )) && write.contains("above sfsql.bulk_threshold (100)"),
        "{write}"
    );

    client
        .simple_query("SET sfsql.dry_run = on")
        .await
        .expect("dry run on");
    let before = demo.stats();
    rows(&client, update).await;
    let dry = drain(&mut notices);
    assert!(
        dry.contains(&format!(
            "would update {total} records through Bulk API 2.0 ingest"
        )),
        "{dry}"
    );
    let after = demo.stats();
    assert_eq!(
        count(&after, "bulk_ingest_create"),
        count(&before, "bulk_ingest_create")
    );

    client
        .simple_query("SET sfsql.dry_run = off")
        .await
        .expect("dry run off");
    let before = demo.stats();
    let updated = command_count(&client, update).await;
    let after = demo.stats();
    let delta = |kind| count(&after, kind) - count(&before, kind);
    assert_eq!(updated, total);
    assert_eq!(delta("bulk_ingest_create"), 1);
    assert_eq!(delta("bulk_ingest_upload"), 1);
    assert_eq!(delta("bulk_ingest_state"), 1);
    assert!(
        delta("bulk_ingest_info") >= 2,
        "processing ends on a later poll"
    );
    assert_eq!(
        delta("bulk_ingest_results"),
        1,
        "only successfulResults: none failed"
    );
    assert_eq!(delta("collections_update"), 0);
    let applied = drain(&mut notices);
    assert!(
        applied.contains("through Bulk API 2.0 job 750"),
        "{applied}"
    );
    let bulk_titled = rows(
        &client,
        "SELECT count(*) FROM production.contact WHERE title = 'Bulk VP'",
    )
    .await;
    assert_eq!(
        bulk_titled[0][0].as_deref(),
        Some(total.to_string().as_str())
    );

    // Below the threshold the same statement uses Collections.
    client
        .simple_query("SET sfsql.bulk_threshold = 100000")
        .await
        .expect("raise threshold");
    let before = demo.stats();
    let n = command_count(
        &client,
        "UPDATE production.contact SET title = 'Collections VP' WHERE lastname IS NOT NULL",
    )
    .await;
    let after = demo.stats();
    assert_eq!(n, total);
    assert_eq!(
        count(&after, "collections_update") - count(&before, "collections_update"),
        total.div_ceil(200)
    );
    assert_eq!(
        count(&after, "bulk_ingest_create"),
        count(&before, "bulk_ingest_create")
    );
}

/// INSERT, upsert by external ID and DELETE above the threshold each go
/// through one Bulk job of their operation and no Collections call; every
/// record gets its outcome (created Ids come back for RETURNING).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_upsert_and_delete_above_threshold_use_bulk() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    client
        .simple_query("SET sfsql.bulk_threshold = 10")
        .await
        .expect("set threshold");
    let jobs_and_calls = |before: &Value, after: &Value| {
        let d = |kind| count(after, kind) - count(before, kind);
        (
            d("bulk_ingest_create"),
            d("collections_create") + d("collections_upsert") + d("collections_delete"),
        )
    };
    let before = demo.stats();
    let created = rows(
        &client,
        "INSERT INTO production.task (external_activity_id__c, whoid, subject, status, priority) \
         SELECT 'bulk-' || id, id, 'Bulk call', 'Completed', 'Normal' FROM production.contact \
         WHERE lastname IS NOT NULL LIMIT 40 RETURNING id",
    )
    .await;
    assert_eq!(created.len(), 40);
    assert!(
        created
            .iter()
            .all(|r| r[0].as_deref().is_some_and(|id| id.starts_with("00T")))
    );
    assert_eq!(jobs_and_calls(&before, &demo.stats()), (1, 0));

    // Upsert: 40 existing keys change their subject, 5 new keys are created.
    let before = demo.stats();
    let upserted = command_count(
        &client,
        "INSERT INTO production.task (external_activity_id__c, subject, status, priority) \
         SELECT external_activity_id__c, 'Bulk call (moved)', 'Completed', 'Normal' \
         FROM production.task WHERE external_activity_id__c LIKE 'bulk-%' \
         UNION ALL SELECT 'bulk-new-' || CAST(n AS VARCHAR), 'New', 'Completed', 'Normal' \
         FROM (VALUES (1), (2), (3), (4), (5)) AS v(n) \
         ON CONFLICT (external_activity_id__c) DO UPDATE SET subject = EXCLUDED.subject",
    )
    .await;
    assert_eq!(upserted, 45);
    assert_eq!(jobs_and_calls(&before, &demo.stats()), (1, 0));
    let subjects = rows(
        &client,
        "SELECT subject, count(*) FROM production.task WHERE external_activity_id__c LIKE 'bulk-%' \
         GROUP BY subject ORDER BY subject",
    )
    .await;
    assert_eq!(
        subjects,
        vec![
            vec![Some("Bulk call (moved)".into()), Some("40".into())],
            vec![Some("New".into()), Some("5".into())],
        ]
    );

    let before = demo.stats();
    let deleted = command_count(
        &client,
        "DELETE FROM production.task WHERE external_activity_id__c LIKE 'bulk-%'",
    )
    .await;
    assert_eq!(deleted, 45);
    assert_eq!(jobs_and_calls(&before, &demo.stats()), (1, 0));
    let left = rows(
        &client,
        "SELECT count(*) FROM production.task WHERE external_activity_id__c LIKE 'bulk-%'",
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"));
}
