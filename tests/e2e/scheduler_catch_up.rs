//! Missed runs: a server stopped before a job's slot and started again
//! days later runs ONE `catch-up` run for the latest missed slot (not one
//! per slot), a job with `-- catch_up: none` waits for its next slot, a
//! server that does not hold the scheduler lock catches up nothing, and a
//! restart after the catch-up does not run it again. Time is a
//! [`ManualClock`]; nothing sleeps.

use std::sync::Arc;

use chrono::Duration;
use sfsql::scheduler::{ManualClock, SchedulerLock};
use sfsql::simulator::SimConfig;

use crate::common::{TestDemo, launch, rows};
use crate::scheduler_loop::{at, demo_at, next_done, seed_job};

fn sim() -> SimConfig {
    SimConfig {
        contacts: 300,
        ..SimConfig::default()
    }
}

/// Start the stopped demo in `dir` again and wait until its loop (if it
/// has one) has looked at the jobs.
async fn start(dir: tempfile::TempDir, clock: &Arc<ManualClock>) -> TestDemo {
    let demo = launch(dir, sim(), Arc::clone(clock) as _).await;
    if demo.demo.jobs.task.is_some() {
        let mut ticks = demo.demo.jobs.scheduler.ticks();
        ticks.wait_for(|n| *n >= 1).await.expect("the loop runs");
    }
    demo
}

async fn job_runs(demo: &TestDemo) -> Vec<Vec<Option<String>>> {
    let client = demo.connect().await;
    rows(
        &client,
        "SELECT jobname, trigger, status FROM cron.job_run_details
         WHERE jobname IS NOT NULL ORDER BY runid",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_catch_up_run_for_slots_missed_while_down() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let quiet = (
        "quiet.sql",
        "-- schedule: 0 9 * * *\n-- catch_up: none\nUPDATE sandbox.contact SET title = 'x' WHERE email = 'nobody@nowhere.example'\n"
            .to_string(),
    );
    let demo = demo_at(&clock, &[seed_job(), quiet]).await;
    let client = demo.connect().await;
    let policies = rows(
        &client,
        "SELECT jobname, catch_up FROM cron.job ORDER BY jobid",
    )
    .await;
    assert_eq!(
        policies,
        vec![
            vec![Some("nps_to_contact".into()), Some("once".into())],
            vec![Some("quiet".into()), Some("none".into())],
        ]
    );
    assert!(
        demo.demo.jobs.catch_up.is_empty(),
        "a new job missed nothing"
    );

    // Down before 09:00 on the 2nd, back at noon on the 4th: three 09:00
    // slots missed. Another server holds the lock first: it alone may
    // catch up, so this one queues nothing.
    let state_dir = demo.catalog_dir().join(".sfsql");
    let dir = demo.stop();
    clock.set(at(12, 0, 0) + Duration::days(2));
    let other = SchedulerLock::try_acquire(&state_dir)
        .expect("lock")
        .expect("free while stopped");
    let demo = start(dir, &clock).await;
    assert!(demo.demo.jobs.task.is_none(), "the lock is taken");
    assert!(demo.demo.jobs.catch_up.is_empty());
    assert!(job_runs(&demo).await.is_empty());
    let dir = demo.stop();
    drop(other);

    // The lock is free: one catch-up run, for the latest slot.
    let demo = start(dir, &clock).await;
    let scheduler = &demo.demo.jobs.scheduler;
    let mut done = scheduler.subscribe();
    let queued: Vec<_> = demo
        .demo
        .jobs
        .catch_up
        .iter()
        .map(|r| (r.jobname.as_str(), r.slot, r.missed))
        .collect();
    assert_eq!(
        queued,
        vec![("nps_to_contact", at(9, 0, 0) + Duration::days(2), 3)]
    );
    // The run may have finished before this test subscribed.
    let finished = |demo: &TestDemo| {
        demo.demo
            .jobs
            .scheduler
            .store()
            .runs(Some("nps_to_contact"))
            .expect("runs")
            .iter()
            .any(|r| r.status != "running")
    };
    if !finished(&demo) {
        let run = next_done(&mut done).await;
        assert_eq!(run.trigger.as_str(), "catch-up");
    }
    assert_eq!(
        job_runs(&demo).await,
        vec![vec![
            Some("nps_to_contact".into()),
            Some("catch-up".into()),
            Some("succeeded".into())
        ]]
    );
    let client = demo.connect().await;
    let details = rows(
        &client,
        "SELECT start_time, rows_updated > 0 FROM cron.job_run_details WHERE trigger = 'catch-up'",
    )
    .await;
    assert_eq!(
        details,
        vec![vec![
            Some("2026-03-04 12:00:00.000000+00".into()),
            Some("t".into())
        ]]
    );

    // Started again minutes later: the catch-up run was the last run, so
    // nothing was missed since.
    let dir = demo.stop();
    clock.set(at(12, 5, 0) + Duration::days(2));
    let demo = start(dir, &clock).await;
    assert!(demo.demo.jobs.task.is_some());
    assert!(demo.demo.jobs.catch_up.is_empty());
    assert_eq!(job_runs(&demo).await.len(), 1);
}
