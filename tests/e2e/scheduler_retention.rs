//! Retention of `cron.job_run_records`: with `[scheduler]
//! record_retention_days = 30`, records of runs older than that are
//! deleted at start and then daily by the loop, while every run row stays
//! in `cron.job_run_details`. Time is a [`ManualClock`]; nothing sleeps.

use std::sync::Arc;

use chrono::Duration;
use sfsql::scheduler::ManualClock;
use sfsql::simulator::SimConfig;
use tokio_postgres::Client;

use crate::common::{launch, rows};
use crate::scheduler_loop::{at, demo_at, tick};

fn sim() -> SimConfig {
    SimConfig {
        contacts: 300,
        ..SimConfig::default()
    }
}

async fn records_of(client: &Client, runid: &str) -> String {
    let r = rows(
        client,
        &format!("SELECT count(*) FROM cron.job_run_records WHERE runid = {runid}"),
    )
    .await;
    r[0][0].clone().expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_past_retention_are_purged_at_start_and_daily() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let demo = demo_at(&clock, &[]).await;
    let client = demo.connect().await;
    rows(
        &client,
        "SELECT cron.schedule('quiz', '0 3 1 1 *', $$UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)$$)",
    )
    .await;
    let first = rows(&client, "SELECT cron.run('quiz')").await[0][0]
        .clone()
        .expect("run id");
    assert_eq!(records_of(&client, &first).await, "120");

    // Retention set, started again ten days later: nothing is old enough.
    let catalog = demo.catalog_dir().to_path_buf();
    let dir = demo.stop();
    let toml = std::fs::read_to_string(catalog.join("server.toml")).expect("server.toml");
    std::fs::write(
        catalog.join("server.toml"),
        format!("{toml}\n[scheduler]\nrecord_retention_days = 30\ncatch_up = \"none\"\n"),
    )
    .expect("write server.toml");
    clock.set(at(9, 0, 0) + Duration::days(10));
    let demo = launch(dir, sim(), Arc::clone(&clock) as _).await;
    let scheduler = &demo.demo.jobs.scheduler;
    let mut ticks = scheduler.ticks();
    ticks.wait_for(|n| *n >= 1).await.expect("the loop runs");
    let client = demo.connect().await;
    assert_eq!(records_of(&client, &first).await, "120");
    rows(
        &client,
        "SELECT cron.schedule('titles', '0 3 1 1 *', $$UPDATE sandbox.contact SET title = 'Ten days' WHERE email LIKE 'chloe.%'$$)",
    )
    .await;
    let second = rows(&client, "SELECT cron.run('titles')").await[0][0]
        .clone()
        .expect("run id");
    assert_eq!(records_of(&client, &second).await, "7");

    // (Both jobs are due on 1 January only: no slot fires in between.)
    // 31 days after the first run: the daily purge deletes its records
    // and keeps the second's; both runs stay, counts and all. Two ticks:
    // the second surely began after the clock moved.
    clock.set(at(9, 0, 0) + Duration::days(31));
    tick(scheduler).await;
    tick(scheduler).await;
    assert_eq!(records_of(&client, &first).await, "0");
    assert_eq!(records_of(&client, &second).await, "7");
    let runs = rows(
        &client,
        "SELECT jobname, status, rows_updated FROM cron.job_run_details WHERE jobname IS NOT NULL ORDER BY runid",
    )
    .await;
    assert_eq!(
        runs,
        vec![
            vec![
                Some("quiz".into()),
                Some("succeeded".into()),
                Some("120".into())
            ],
            vec![
                Some("titles".into()),
                Some("succeeded".into()),
                Some("7".into())
            ],
        ]
    );

    // Down until the second run is 35 days old: purged at start.
    let dir = demo.stop();
    clock.set(at(9, 0, 0) + Duration::days(45));
    let demo = launch(dir, sim(), Arc::clone(&clock) as _).await;
    let mut ticks = demo.demo.jobs.scheduler.ticks();
    ticks.wait_for(|n| *n >= 1).await.expect("the loop runs");
    let client = demo.connect().await;
    assert_eq!(records_of(&client, &second).await, "0");
    let kept = rows(&client, "SELECT count(*) FROM cron.job_run_details").await;
    assert_eq!(kept[0][0].as_deref(), Some("2"));
}
