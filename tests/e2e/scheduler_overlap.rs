//! No overlap: while a run of a job goes, the next run of the same job
//! does not start. A scheduled slot that comes due meanwhile is logged
//! `skipped` in `cron.job_run_details`, saying which run still goes; a
//! `cron.run` meanwhile is refused (55006) and logged `skipped` too. The
//! run going is not disturbed, and the next slot after it runs as usual.
//! The loop is driven by a [`ManualClock`]; nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use sfsql::scheduler::ManualClock;

use crate::common::{error_of, rows};
use crate::scheduler_loop::{at, demo_at_latency, next_done, next_started, tick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_due_while_the_last_one_goes_is_logged_skipped() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    // Every minute; 300 contacts at 400 ms a request: a query and two
    // Collections calls, over a second of real time, while the clock
    // stands still unless the test moves it.
    let job = (
        "titles.sql",
        "-- schedule: * * * * *\nUPDATE sandbox.contact SET title = 'No overlap'\n".to_string(),
    );
    let demo = demo_at_latency(&clock, &[job], Duration::from_millis(400)).await;
    let scheduler = &demo.demo.jobs.scheduler;
    let client = demo.connect().await;
    let mut started = scheduler.subscribe_started();
    let mut done = scheduler.subscribe();
    // Two ticks: the second surely began after the clock moved.
    let settle = || async {
        tick(scheduler).await;
        tick(scheduler).await;
    };

    // 09:00: the slot starts run 1.
    clock.set(at(9, 0, 0));
    scheduler.wake();
    let first = next_started(&mut started).await;

    // 09:01 while run 1 goes: the slot is logged skipped, not started.
    clock.set(at(9, 1, 0));
    settle().await;
    // "Run now" meanwhile: refused, saying which run goes; logged too.
    let (state, message) = error_of(&client, "SELECT cron.run('titles')").await;
    assert_eq!(state, "55006", "{message}");
    let log = |client| async move {
        rows(
            client,
            "SELECT runid, status, trigger, start_time, return_message
             FROM cron.job_run_details WHERE jobname = 'titles' ORDER BY runid",
        )
        .await
    };
    let runs = log(&client).await;
    let ids: Vec<i64> = runs
        .iter()
        .map(|r| {
            r[0].as_deref()
                .and_then(|id| id.parse().ok())
                .expect("runid")
        })
        .collect();
    assert_eq!(ids.len(), 3, "{runs:?}");
    assert_eq!(ids[0], first);
    assert_eq!(
        message,
        format!(
            "job titles is still running (run {first}); run {} was logged as skipped. Wait for it: SELECT status FROM cron.job_run_details WHERE runid = {first}",
            ids[2]
        )
    );
    let skipped = format!("skipped: run {first} of this job was still running");
    let row = |runid: i64, status: &str, trigger: &str, start: &str, message: Option<&str>| {
        vec![
            Some(runid.to_string()),
            Some(status.to_string()),
            Some(trigger.to_string()),
            Some(start.to_string()),
            message.map(str::to_string),
        ]
    };
    assert_eq!(
        runs,
        vec![
            row(
                first,
                "running",
                "schedule",
                "2026-03-02 09:00:00.000000+00",
                None
            ),
            row(
                ids[1],
                "skipped",
                "schedule",
                "2026-03-02 09:01:00.000000+00",
                Some(&skipped)
            ),
            row(
                ids[2],
                "skipped",
                "manual",
                "2026-03-02 09:01:00.000000+00",
                Some(&skipped)
            ),
        ]
    );

    // Run 1 ends as it would have alone: every record written once.
    let run = next_done(&mut done).await;
    assert_eq!(
        (run.runid, run.status.as_str()),
        (first, "succeeded"),
        "{run:?}"
    );
    assert_eq!(run.message, "UPDATE 300");
    let written = demo.stats()["sandbox"]["records_written"].as_u64();
    assert_eq!(written, Some(300));

    // 09:02, nothing going: the slot runs.
    clock.set(at(9, 2, 0));
    scheduler.wake();
    let run = next_done(&mut done).await;
    assert_eq!(
        (run.runid > ids[2], run.status.as_str()),
        (true, "succeeded"),
        "{run:?}"
    );
    let statuses: Vec<_> = log(&client)
        .await
        .into_iter()
        .map(|r| r[1].clone().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["succeeded", "skipped", "skipped", "succeeded"]);
}
