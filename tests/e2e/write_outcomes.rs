//! What a write tells about every record, over a real connection: the
//! NOTICE that sums up all outcomes and lists the first failures, and what
//! becomes of records whose call Salesforce refused or whose answer was
//! lost. A refused call is sent again; a lost answer to an INSERT leaves its
//! records `unknown` (never created twice); the 24-hour request limit fails
//! the records and stops the statement. The simulator's counters show every
//! call that reached it.

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::Client;

use crate::common::{
    TestDemo, command_count, connect_with_notices, drain, fail_records, rows, start_demo,
};

const CHLOE: &str = "email LIKE 'chloe.%'";

/// POST to a simulator test endpoint (`fail_next?...`, `drop_next_response?...`).
async fn sim(demo: &TestDemo, endpoint: &str) {
    reqwest::Client::new()
        .post(format!("{}/__sim/{endpoint}", demo.demo.sim.base_url()))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("simulator endpoint");
}

/// Requests of `kind` the sandbox org received.
fn requests(demo: &TestDemo, kind: &str) -> u64 {
    demo.stats()["sandbox"]["requests"][kind]
        .as_u64()
        .unwrap_or(0)
}

const TASKS: &str = "INSERT INTO sandbox.task (whoid, subject, status, priority) \
     SELECT id, 'SUBJECT', 'Not Started', 'Normal' FROM sandbox.contact \
     WHERE email IN ('chloe.allen5@stark.example', 'chloe.wilson3@example.org')";

async fn tasks_named(client: &Client, subject: &str) -> String {
    rows(
        client,
        &format!("SELECT count(*) FROM sandbox.task WHERE subject = '{subject}'"),
    )
    .await[0][0]
        .clone()
        .expect("count")
}

/// A demo whose next Collections create meets `injection` (a simulator
/// endpoint and its query), a connection collecting notices, and what the
/// INSERT of two Tasks named `subject` then counts.
async fn insert_two_tasks_after(
    injection: &str,
    subject: &str,
) -> (TestDemo, Client, UnboundedReceiver<String>, u64) {
    let demo = start_demo(300, &[]).await;
    let (client, notices) = connect_with_notices(&demo).await;
    sim(&demo, &format!("{injection}&kind=collections_create")).await;
    let created = command_count(&client, &TASKS.replace("SUBJECT", subject)).await;
    (demo, client, notices, created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notice_sums_up_every_outcome_and_lists_the_first_failures() {
    let demo = start_demo(300, &[]).await;
    let (client, mut notices) = connect_with_notices(&demo).await;
    let one = "UPDATE sandbox.contact SET wm_quiz_name__c = 'Summed' \
               WHERE email = 'chloe.allen5@stark.example'";
    assert_eq!(command_count(&client, one).await, 1);
    drain(&mut notices);

    fail_records(&demo.demo.sim.base_url(), "sandbox", 2).await;
    let all = format!("UPDATE sandbox.contact SET wm_quiz_name__c = 'Summed' WHERE {CHLOE}");
    assert_eq!(command_count(&client, &all).await, 4);
    let notice = drain(&mut notices);
    assert!(
        notice.contains(
            "sandbox.contact: 7 records, 4 updated, 1 unchanged, 2 failed; 1 write calls"
        ),
        "{notice}"
    );
    let failures: Vec<&str> = notice.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(failures.len(), 2, "{notice}");
    for line in failures {
        assert!(
            line.starts_with("  003")
                && line.ends_with(
                    ": FIELD_CUSTOM_VALIDATION_EXCEPTION: failure injected by the simulator (a validation rule)"
                ),
            "{line}"
        );
    }
}

/// A dry run with values Salesforce would refuse lists them (as `invalid`
/// rows) and says so in its NOTICE; the record is predicted `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_names_the_values_salesforce_would_refuse_in_its_notice() {
    let demo = start_demo(300, &[]).await;
    let (client, mut notices) = connect_with_notices(&demo).await;
    rows(&client, "SET sfsql.dry_run = on").await;
    drain(&mut notices);
    let dry = rows(
        &client,
        "UPDATE sandbox.lead SET status = 'Bogus', company = 'Hooli Labs' \
         WHERE email = 'dmartin0@hooli.example'",
    )
    .await;
    let actions: Vec<_> = dry.iter().map(|r| r[0].as_deref()).collect();
    assert_eq!(actions, [Some("invalid"), Some("update")]);
    let notice = drain(&mut notices);
    assert!(
        notice.contains(
            "dry run of sandbox.lead: 1 records, 1 failed; would update 1 record"
        ) && notice.contains(
            "; 1 value(s) Salesforce would refuse (the rows with action invalid): fix them before writing; nothing was written"
        ),
        "{notice}"
    );
    assert_eq!(requests(&demo, "collections_update"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_answer_is_lost_ends_unknown_and_is_never_sent_again() {
    let (demo, client, mut notices, created) =
        insert_two_tasks_after("drop_next_response?org=sandbox&count=1", "Lost answer").await;
    assert_eq!(created, 0);
    assert_eq!(requests(&demo, "collections_create"), 1, "sent once");
    // Salesforce did create them: sending the call again would have made
    // two of each.
    assert_eq!(tasks_named(&client, "Lost answer").await, "2");

    let notice = drain(&mut notices);
    assert!(
        notice.contains(
            "sandbox.task: 2 records, 2 unknown; 1 write calls\n  a new record: UNKNOWN_OUTCOME: "
        ),
        "{notice}"
    );
    assert!(
        notice.contains("UNKNOWN_OUTCOME")
            && notice.contains("upsert by an external ID field so reruns cannot duplicate"),
        "{notice}"
    );
    let logged = rows(
        &client,
        "SELECT status, error_code, message FROM cron.job_run_records WHERE sobject = 'Task'",
    )
    .await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    for row in &logged {
        assert_eq!(row[0].as_deref(), Some("unknown"), "{row:?}");
        assert_eq!(row[1].as_deref(), Some("UNKNOWN_OUTCOME"), "{row:?}");
        let message = row[2].as_deref().unwrap_or_default();
        assert!(
            message.contains("may or may not exist now")
                && message.contains("upsert by an external ID field"),
            "{message}"
        );
    }
    let run = rows(
        &client,
        "SELECT rows_created, rows_unknown, rows_failed FROM cron.job_run_details \
         ORDER BY runid DESC LIMIT 1",
    )
    .await;
    assert_eq!(
        run,
        vec![vec![Some("0".into()), Some("2".into()), Some("0".into())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_refused_for_now_is_sent_again_and_created_once() {
    let (demo, client, mut notices, created) =
        insert_two_tasks_after("fail_next?org=sandbox&status=503&count=1", "After a 503").await;
    assert_eq!(created, 2);
    assert_eq!(requests(&demo, "collections_create"), 2);
    assert_eq!(tasks_named(&client, "After a 503").await, "2");
    let notice = drain(&mut notices);
    assert!(
        notice.contains(
            "sandbox.task: 2 records, 2 created; 2 write calls, 2 records retried after 503 SERVER_UNAVAILABLE"
        ),
        "{notice}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_whose_answer_is_lost_is_sent_again_and_counts_its_records_deleted() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    let insert = TASKS.replace("SUBJECT", "To delete");
    assert_eq!(command_count(&client, &insert).await, 2);
    sim(
        &demo,
        "drop_next_response?org=sandbox&count=1&kind=collections_delete",
    )
    .await;
    let deleted = command_count(
        &client,
        "DELETE FROM sandbox.task WHERE subject = 'To delete'",
    )
    .await;
    assert_eq!(deleted, 2);
    assert_eq!(requests(&demo, "collections_delete"), 2);
    assert_eq!(tasks_named(&client, "To delete").await, "0");
}

/// Every answer to an UPDATE lost, through all its retries: the first call
/// may have applied it, so its records end `unknown`, not `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_answers_are_all_lost_ends_unknown_not_failed() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    sim(
        &demo,
        "drop_next_response?org=sandbox&count=4&kind=collections_update",
    )
    .await;
    let update = format!("UPDATE sandbox.contact SET wm_quiz_name__c = 'Lost' WHERE {CHLOE}");
    assert_eq!(command_count(&client, &update).await, 0);
    assert_eq!(
        requests(&demo, "collections_update"),
        4,
        "1 call and 3 retries"
    );
    let records = rows(
        &client,
        "SELECT status, error_code, count(*) FROM cron.job_run_records \
         WHERE runid = (SELECT max(runid) FROM cron.job_run_details) GROUP BY status, error_code",
    )
    .await;
    assert_eq!(
        records,
        [[
            Some("unknown".into()),
            Some("UNKNOWN_OUTCOME".into()),
            Some("7".into())
        ]]
    );
    let run = rows(
        &client,
        "SELECT rows_unknown, rows_failed, api_calls FROM cron.job_run_details ORDER BY runid DESC LIMIT 1",
    )
    .await;
    assert_eq!(
        run,
        [[Some("7".into()), Some("0".into()), Some("4".into())]]
    );
}

/// An upsert whose answer was lost is sent again and finds the records the
/// lost call created: they count as created, as the lookup before the
/// write predicted, and exist once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_sent_again_after_a_lost_answer_reports_what_the_lost_call_created() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    sim(
        &demo,
        "drop_next_response?org=sandbox&count=1&kind=collections_upsert",
    )
    .await;
    let upsert = "INSERT INTO sandbox.task (external_activity_id__c, subject) \
                  VALUES ('lost-1', 'Upserted'), ('lost-2', 'Upserted') \
                  ON CONFLICT (external_activity_id__c) DO UPDATE SET subject = EXCLUDED.subject";
    assert_eq!(command_count(&client, upsert).await, 2);
    assert_eq!(requests(&demo, "collections_upsert"), 2);
    assert_eq!(tasks_named(&client, "Upserted").await, "2");
    let run = rows(
        &client,
        "SELECT rows_created, rows_updated, api_calls FROM cron.job_run_details ORDER BY runid DESC LIMIT 1",
    )
    .await;
    assert_eq!(
        run,
        [[Some("2".into()), Some("0".into()), Some("2".into())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_request_limit_fails_the_call_and_stops_the_statement() {
    let demo = start_demo(300, &[]).await;
    let (client, mut notices) = connect_with_notices(&demo).await;
    let total: usize = rows(
        &client,
        "SELECT count(*) FROM sandbox.contact WHERE lastname IS NOT NULL",
    )
    .await[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(total > 200, "two Collections calls: {total}");
    sim(
        &demo,
        "fail_next?org=sandbox&status=403&count=1&code=REQUEST_LIMIT_EXCEEDED\
         &kind=collections_update&message=TotalRequests%20Limit%20exceeded.",
    )
    .await;
    let updated = command_count(
        &client,
        "UPDATE sandbox.contact SET title = 'Over the limit' WHERE lastname IS NOT NULL",
    )
    .await;
    assert_eq!(updated, 0);
    // Not sent again (the 24-hour limit does not clear in seconds), and the
    // second call is not sent at all.
    assert_eq!(requests(&demo, "collections_update"), 1);
    let notice = drain(&mut notices);
    assert!(
        notice.contains(&format!(
            "sandbox.contact: {total} records, 200 failed, {} skipped; 1 write calls",
            total - 200
        )),
        "{notice}"
    );
    assert!(
        notice.contains("REQUEST_LIMIT_EXCEEDED: connection sandbox: Salesforce answered 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
        "{notice}"
    );
    // What to do: the failure says it.
    assert!(
        notice.contains("wait until Salesforce's 24-hour window frees requests"),
        "{notice}"
    );
}
