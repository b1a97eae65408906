//! The extended query protocol (what drivers and BI tools use): prepared
//! SELECTs with parameters, and sfsql's own statements through Parse/Bind/
//! Execute.

use crate::common::start_demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_reach_salesforce_tables_and_the_router() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;

    let rows = client
        .query(
            "SELECT id, email FROM sandbox.contact WHERE email = $1",
            &[&"chloe.allen5@stark.example"],
        )
        .await
        .expect("prepared select");
    assert_eq!(rows.len(), 1);
    let id: &str = rows[0].get(0);
    assert_eq!(id, "0038Z0000004CC1QAM");

    let update = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name FROM reports.nps_score r \
                  WHERE lower(contact.email) = lower(r.account_email)";
    client
        .batch_execute("SET sfsql.dry_run = on")
        .await
        .expect("set");
    let dry = client
        .query(update, &[])
        .await
        .expect("dry run over the extended protocol");
    assert_eq!(dry.len(), 120, "one row per changed field");
    let field: &str = dry[0].get("field");
    assert_eq!(field, "WM_Quiz_Name__c");

    client
        .batch_execute("SET sfsql.dry_run = off")
        .await
        .expect("set");
    let n = client
        .execute(update, &[])
        .await
        .expect("update over the extended protocol");
    assert_eq!(n, 120);
    assert_eq!(client.execute(update, &[]).await.expect("rerun"), 0);
}
