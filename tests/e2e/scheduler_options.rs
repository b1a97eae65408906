//! Job options through the real loop with an injected clock: retries of
//! retriable failures (trigger `retry`, attempt n), none for others, a
//! timeout that cancels the run, a delay after the slot, and min_interval
//! refusing a too-early `cron.run` with SQLSTATE 55000.

use std::sync::Arc;
use std::time::Duration;

use sfsql::scheduler::{Clock, ManualClock};
use tokio_postgres::Client;

use crate::common::{TestDemo, fail_next, rows};
use crate::scheduler_loop::{at, demo_at_latency, next_done, next_started, tick};

const NPS_QUIZ: &str = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name \
    FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)";

/// A demo at 08:59:30 with `jobs` created by SQL and seen by the loop.
async fn demo_with(latency: Duration, jobs: &[String]) -> (Arc<ManualClock>, TestDemo, Client) {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let demo = demo_at_latency(&clock, &[], latency).await;
    let client = demo.connect().await;
    for sql in jobs {
        rows(&client, sql).await;
    }
    tick(&demo.demo.jobs.scheduler).await;
    (clock, demo, client)
}

/// The SQLSTATE and message of a statement that must fail.
async fn error_of(client: &Client, sql: &str) -> (String, String) {
    let err = client.simple_query(sql).await.expect_err(sql);
    let db = err.as_db_error().expect("a database error");
    (db.code().code().to_string(), db.message().to_string())
}

fn text(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| r.into_iter().map(|c| c.unwrap_or("NULL".into())).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_failures_are_retried_with_backoff() {
    let (clock, demo, client) = demo_with(
        Duration::ZERO,
        &[
            format!("SELECT cron.schedule('flaky', '0 9 * * *', $${NPS_QUIZ}$$, retries := 2)"),
            "SELECT cron.schedule('broken', '30 9 * * *', 'UPDATE sandbox.contact SET no_such_field = 1', retries := 3)".into(),
        ],
    )
    .await;
    let scheduler = &demo.demo.jobs.scheduler;
    let mut done = scheduler.subscribe();

    // Every request of the first attempt's read fails (the client's own
    // retries included): 503 is retriable, so a retry is queued.
    fail_next(&demo, "sandbox", 503, 4, "SERVER_UNAVAILABLE").await;
    clock.set(at(9, 0, 0));
    scheduler.wake();
    let first = next_done(&mut done).await;
    assert_eq!(first.status.as_str(), "failed", "{first:?}");
    assert!(
        first
            .message
            .contains("retry 1 of 2 at 2026-03-02 09:00:30 UTC"),
        "{first:?}"
    );

    // Not before the backoff; then attempt 2 runs and succeeds.
    clock.set(at(9, 0, 29));
    tick(scheduler).await;
    assert!(done.try_recv().is_err());
    clock.set(at(9, 0, 30));
    scheduler.wake();
    let retry = next_done(&mut done).await;
    assert_eq!(
        (retry.jobname.as_str(), retry.status.as_str()),
        ("flaky", "succeeded")
    );

    // A non-retriable failure (unknown column) is never retried.
    clock.set(at(9, 30, 0));
    scheduler.wake();
    let broken = next_done(&mut done).await;
    assert_eq!(broken.jobname, "broken");
    assert!(!broken.message.contains("retry"), "{broken:?}");
    clock.set(at(10, 30, 0));
    tick(scheduler).await;
    assert!(done.try_recv().is_err());
    let log = rows(
        &client,
        "SELECT jobname, trigger, attempt, status, start_time FROM cron.job_run_details ORDER BY runid",
    )
    .await;
    assert_eq!(
        text(log),
        vec![
            vec![
                "flaky",
                "schedule",
                "1",
                "failed",
                "2026-03-02 09:00:00.000000+00"
            ],
            vec![
                "flaky",
                "retry",
                "2",
                "succeeded",
                "2026-03-02 09:00:30.000000+00"
            ],
            vec![
                "broken",
                "schedule",
                "1",
                "failed",
                "2026-03-02 09:30:00.000000+00"
            ],
        ]
    );
}

/// `sfsql jobs run` has no scheduler loop: it waits out the backoff itself
/// (here by moving the clock) and runs the retry in the same call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_retries_in_its_own_call() {
    let (clock, demo, client) = demo_with(
        Duration::ZERO,
        &[format!(
            "SELECT cron.schedule('flaky', '0 10 * * *', $${NPS_QUIZ}$$, retries := 2)"
        )],
    )
    .await;
    fail_next(&demo, "sandbox", 503, 4, "SERVER_UNAVAILABLE").await;
    let mut said = vec![];
    let waited = clock.clone();
    let table = sfsql::scheduler::cli::run_retrying(
        &demo.demo.jobs.scheduler,
        "flaky",
        false,
        move |d| {
            waited.set(waited.now() + chrono::Duration::from_std(d).expect("a short wait"));
            std::future::ready(())
        },
        |line| said.push(line),
    )
    .await
    .expect("the retry succeeds");
    assert_eq!(said, ["run 1 failed; retry 1 of 2 in 30 s"], "{table}");
    assert!(
        table.contains("failed") && table.contains("succeeded"),
        "{table}"
    );
    let log = rows(
        &client,
        "SELECT trigger, attempt, status FROM cron.job_run_details ORDER BY runid",
    )
    .await;
    assert_eq!(
        text(log),
        vec![
            vec!["manual", "1", "failed"],
            vec!["retry", "2", "succeeded"],
        ]
    );
}

/// What psql shows as progress NOTICEs, `sfsql jobs run` says on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_says_the_progress_of_its_writes() {
    let (_clock, demo, _client) = demo_with(
        Duration::ZERO,
        &["SELECT cron.schedule('titles', '0 10 * * *', $$UPDATE sandbox.contact SET title = 'From the CLI'$$)".into()],
    )
    .await;
    let mut said = vec![];
    sfsql::scheduler::cli::run_retrying(
        &demo.demo.jobs.scheduler,
        "titles",
        false,
        |_| std::future::ready(()),
        |line| said.push(line),
    )
    .await
    .expect("the run succeeds");
    let progress: Vec<&String> = said
        .iter()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(progress.len() >= 2, "{said:?}");
    assert!(
        progress[0].starts_with("progress: 200 of ")
            && progress[progress.len() - 1].contains("records sent (100%)"),
        "{said:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_is_cancelled() {
    // Each request takes 300 ms, so the run is still going when the clock
    // passes its deadline.
    let (clock, demo, client) = demo_with(
        Duration::from_millis(300),
        &[format!(
            "SELECT cron.schedule('slow', '0 9 * * *', $${NPS_QUIZ}$$, timeout := '5m')"
        )],
    )
    .await;
    let scheduler = &demo.demo.jobs.scheduler;
    let mut started = scheduler.subscribe_started();
    let mut done = scheduler.subscribe();
    clock.set(at(9, 0, 0));
    scheduler.wake();
    let runid = next_started(&mut started).await;
    clock.set(at(9, 5, 1));
    scheduler.wake();
    let run = next_done(&mut done).await;
    assert_eq!(run.runid, runid);
    assert_eq!(run.status.as_str(), "failed");
    assert!(
        run.message.starts_with("timeout: cancelled after 5m"),
        "{run:?}"
    );
    let row = rows(
        &client,
        &format!("SELECT status, return_message, end_time FROM cron.job_run_details WHERE runid = {runid}"),
    )
    .await;
    assert_eq!(row[0][0].as_deref(), Some("failed"));
    assert_eq!(row[0][2].as_deref(), Some("2026-03-02 09:05:01.000000+00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_and_min_interval() {
    let (clock, demo, client) = demo_with(
        Duration::ZERO,
        &[
            format!(
                "SELECT cron.schedule('later', '0 9 * * *', $${NPS_QUIZ}$$, delay := '5m', min_interval := '2h')"
            ),
            "SELECT cron.alter_job(1, retries := 1)".into(),
        ],
    )
    .await;
    let scheduler = &demo.demo.jobs.scheduler;
    let mut done = scheduler.subscribe();
    let job = rows(
        &client,
        "SELECT retries, timeout, delay, min_interval FROM cron.job",
    )
    .await;
    assert_eq!(text(job), vec![vec!["1", "NULL", "5m", "2h"]]);

    // The 09:00 slot waits five minutes.
    clock.set(at(9, 0, 0));
    tick(scheduler).await;
    assert!(done.try_recv().is_err());
    clock.set(at(9, 5, 0));
    scheduler.wake();
    let run = next_done(&mut done).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");

    // A manual run within two hours of it is refused, saying when.
    let (code, message) = error_of(&client, "SELECT cron.run('later')").await;
    assert_eq!(code, "55000");
    assert!(
        message.contains("may run again at 2026-03-02 11:05:00 UTC"),
        "{message}"
    );
    clock.set(at(11, 5, 0));
    rows(&client, "SELECT cron.run('later')").await;
    let log = rows(
        &client,
        "SELECT trigger, start_time FROM cron.job_run_details ORDER BY runid",
    )
    .await;
    assert_eq!(
        text(log),
        vec![
            vec!["schedule", "2026-03-02 09:05:00.000000+00"],
            vec!["manual", "2026-03-02 11:05:00.000000+00"],
        ]
    );

    // A bad option says what to write.
    let (code, message) = error_of(&client, "SELECT cron.alter_job(1, timeout := 'soon')").await;
    assert_eq!(code, "22023");
    assert!(message.contains("90s, 10m"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_waiting_returns_the_run_id_while_it_runs() {
    // Each Salesforce request takes a second: the run is still going
    // when cron.run has answered.
    let (_clock, demo, client) = demo_with(
        Duration::from_secs(1),
        &[format!(
            "SELECT cron.schedule('slow', '0 3 1 1 *', $${NPS_QUIZ}$$)"
        )],
    )
    .await;
    let mut done = demo.demo.jobs.scheduler.subscribe();
    let runid = rows(&client, "SELECT cron.run('slow', wait := false)").await[0][0]
        .clone()
        .expect("run id");
    let running = rows(
        &client,
        &format!(
            "SELECT status, trigger, end_time IS NULL FROM cron.job_run_details WHERE runid = {runid}"
        ),
    )
    .await;
    assert_eq!(text(running), vec![vec!["running", "manual", "t"]]);
    // A second run meanwhile is logged skipped, naming the running one.
    let (code, message) = error_of(&client, "SELECT cron.run('slow', wait := false)").await;
    assert_eq!(code, "55006");
    assert!(message.contains(&format!("(run {runid})")), "{message}");

    let finished = next_done(&mut done).await;
    assert_eq!(finished.runid.to_string(), runid);
    let after = rows(
        &client,
        &format!("SELECT status, rows_updated FROM cron.job_run_details WHERE runid = {runid}"),
    )
    .await;
    assert_eq!(text(after), vec![vec!["succeeded", "120"]]);
}
