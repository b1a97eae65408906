//! INSERT ... RETURNING id gives the created Ids, so a source can store
//! them and reruns create nothing twice.

use crate::common::{rows, start_demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_returning_gives_created_ids() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    let created = rows(
        &client,
        "INSERT INTO sandbox.task (whoid, subject, status, priority) \
         SELECT id, 'Welcome call', 'Not Started', 'Normal' FROM sandbox.contact \
         WHERE email IN ('chloe.allen5@stark.example', 'chloe.wilson3@example.org') \
         RETURNING id, whoid",
    )
    .await;
    assert_eq!(created.len(), 2, "{created:?}");
    for row in &created {
        let id = row[0].as_deref().unwrap_or_default();
        assert!(id.starts_with("00T") && id.len() == 18, "{id}");
    }
    let ids: Vec<String> = created.iter().filter_map(|r| r[0].clone()).collect();
    let back = rows(
        &client,
        &format!(
            "SELECT count(*) FROM sandbox.task WHERE id IN ('{}')",
            ids.join("','")
        ),
    )
    .await;
    assert_eq!(back[0][0].as_deref(), Some("2"));
    let stats = demo.stats();
    assert_eq!(
        stats["sandbox"]["requests"]["collections_create"].as_u64(),
        Some(1)
    );
}
