//! Access tokens that expire in the middle of a run: each 401
//! INVALID_SESSION_ID costs one refresh and one retry of that request, and
//! nothing is lost or written twice. The simulator's token lifetime is cut
//! to one API request per token, so every page and every Collections call
//! after the first meets an expired token.

use crate::common::{TestDemo, command_count, rows, start_demo};

/// Expire the current access tokens; from now on each new one is good
/// for `requests` API requests.
async fn limit_tokens(demo: &TestDemo, requests: u32) {
    let base = demo.demo.sim.base_url();
    for url in [
        format!("{base}/__sim/token_lifetime?requests={requests}"),
        format!("{base}/__sim/expire_tokens"),
    ] {
        let response = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .expect("sim control");
        assert_eq!(response.status(), 200);
    }
}

fn count(demo: &TestDemo, kind: &str) -> u64 {
    demo.stats()["production"]["requests"][kind]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn token_expiring_mid_pagination_loses_no_page() {
    let demo = start_demo(5000, &[]).await;
    let client = demo.connect().await;
    // Describe first, so that the token requests below are the query's.
    rows(&client, "SELECT id FROM production.contact LIMIT 1").await;
    limit_tokens(&demo, 1).await;
    let tokens = count(&demo, "token");
    let (queries, more) = (count(&demo, "query"), count(&demo, "query_more"));

    let ids = rows(&client, "SELECT id FROM production.contact").await;
    let distinct: std::collections::BTreeSet<_> = ids.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids.len(), 5000, "every record of every page");
    assert_eq!(distinct.len(), 5000, "no page twice");
    let more = count(&demo, "query_more") - more;
    assert!(more >= 2, "{more} queryMore calls");
    // Every page met an expired token: one renewal and one retry each.
    let pages = (count(&demo, "query") - queries) / 2 + more / 2;
    assert_eq!(pages, 3, "5000 records in pages of 2000");
    assert_eq!(count(&demo, "token") - tokens, pages);
}

#[tokio::test]
async fn token_expiring_mid_update_and_insert_writes_each_record_once() {
    let demo = start_demo(1000, &[]).await;
    let client = demo.connect().await;
    rows(&client, "SELECT id, title FROM production.contact LIMIT 1").await;
    rows(&client, "SELECT id FROM production.task LIMIT 1").await;
    limit_tokens(&demo, 1).await;
    let written = |demo: &TestDemo| {
        demo.stats()["production"]["records_written"]
            .as_u64()
            .unwrap_or(0)
    };

    // UPDATE: 1000 records, five Collections calls, each after an expiry.
    let before = written(&demo);
    let updates = count(&demo, "collections_update");
    let n = command_count(
        &client,
        "UPDATE production.contact SET title = 'Token expiry test'",
    )
    .await;
    assert_eq!(n, 1000);
    assert_eq!(written(&demo) - before, 1000, "each record sent once");
    assert_eq!(
        count(&demo, "collections_update") - updates,
        10,
        "5 calls, each retried once"
    );
    let left = rows(
        &client,
        "SELECT count(*) FROM production.contact WHERE title <> 'Token expiry test' OR title IS NULL",
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"));

    // INSERT: never retried on doubt, but a 401 means nothing was done.
    let before = written(&demo);
    let n = command_count(
        &client,
        "INSERT INTO production.task (whoid, subject, status, priority) \
         SELECT id, 'Expiry ' || id, 'Not Started', 'Normal' FROM production.contact",
    )
    .await;
    assert_eq!(n, 1000);
    assert_eq!(written(&demo) - before, 1000, "each record sent once");
    let tasks = rows(
        &client,
        "SELECT count(*), count(DISTINCT whoid) FROM production.task WHERE subject LIKE 'Expiry %'",
    )
    .await;
    assert_eq!(
        tasks[0][0].as_deref(),
        Some("1000"),
        "no task created twice"
    );
    assert_eq!(tasks[0][1].as_deref(), Some("1000"));
}
