//! Missed runs: a server stopped before a job's slot and started again
//! days later runs ONE `catch-up` run for the latest missed slot (not one
//! per slot), a job with `-- catch_up: none` waits for its next slot, a
//! server that does not hold the scheduler lock catches up nothing, and a
//! restart after the catch-up does not run it again. Two live loops on
//! one state directory run a slot once. Time is a [`ManualClock`]; nothing
//! sleeps.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Duration;
use sfsql::demo::{self, Demo, DemoOptions};
use sfsql::scheduler::{ManualClock, SchedulerLock, SchedulerOptions};
use sfsql::simulator::SimConfig;

use crate::common::{TestDemo, connect_port, launch, rows};
use crate::scheduler_loop::{at, demo_at, next_done, seed_job, tick};

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

/// A second server on the catalog, `sql/` and state directory of `first`,
/// reading the same clock.
async fn second_server(first: &TestDemo, clock: &Arc<ManualClock>) -> Demo {
    let dir = first.catalog_dir();
    demo::start_with_jobs(
        DemoOptions {
            catalog: dir.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            sim_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sim: sim(),
        },
        SchedulerOptions {
            state_dir: dir.join(".sfsql"),
            sql_dir: Some(dir.join("sql")),
            run_loop: true,
            clock: Arc::clone(clock) as _,
            config: Default::default(),
            alerts: None,
        },
    )
    .await
    .expect("second server")
}

/// Records the org of one server's simulator took.
fn records_written(stats: &serde_json::Value) -> u64 {
    stats["sandbox"]["records_written"].as_u64().unwrap_or(0)
}

/// The scheduler lock keeps a second loop off a state directory, but a
/// lock can be lost (its file deleted by hand, a network filesystem that
/// ignores locks). Then two live loops pass the same slot, and the store
/// still lets one of them claim it: one run, each record written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_loops_on_one_state_dir_run_a_slot_once() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let first = demo_at(&clock, &[seed_job()]).await;
    assert!(first.demo.jobs.task.is_some());
    std::fs::remove_file(first.catalog_dir().join(".sfsql/scheduler.lock"))
        .expect("remove the lock file");
    let second = second_server(&first, &clock).await;
    assert!(second.jobs.task.is_some(), "the second loop runs too");
    let (a, b) = (&first.demo.jobs.scheduler, &second.jobs.scheduler);
    tick(b).await;
    let (mut done_a, mut done_b) = (a.subscribe(), b.subscribe());

    clock.set(at(9, 0, 0));
    tokio::join!(tick(a), tick(b));
    let run = tokio::select! {
        run = next_done(&mut done_a) => run,
        run = next_done(&mut done_b) => run,
    };
    assert_eq!(
        (
            run.jobname.as_str(),
            run.trigger.as_str(),
            run.status.as_str()
        ),
        ("nps_to_contact", "schedule", "succeeded"),
        "{run:?}"
    );
    // Both loops look again: the slot is taken, nothing else starts.
    tokio::join!(tick(a), tick(b));
    tokio::join!(tick(a), tick(b));
    assert!(done_a.try_recv().is_err() && done_b.try_recv().is_err());

    let client = first.connect().await;
    let runs = rows(
        &client,
        "SELECT runid, trigger, status, rows_updated FROM cron.job_run_details",
    )
    .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0][0], Some(run.runid.to_string()));
    let updated: u64 = runs[0][3]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("rows_updated");
    assert!(updated > 0, "{runs:?}");
    // The second server reads the same log.
    let seen = rows(
        &connect_port(second.server.addr.port()).await,
        "SELECT runid FROM cron.job_run_details",
    )
    .await;
    assert_eq!(seen, vec![vec![Some(run.runid.to_string())]]);
    // Each record once in the run's log, and once at "Salesforce": the
    // servers' simulators together took exactly the run's updates.
    let records = rows(
        &client,
        &format!(
            "SELECT count(*), count(DISTINCT record_id) FROM cron.job_run_records
             WHERE runid = {} AND status = 'updated'",
            run.runid
        ),
    )
    .await;
    assert_eq!(
        records,
        vec![vec![Some(updated.to_string()), Some(updated.to_string())]]
    );
    let written = [
        records_written(&first.stats()),
        records_written(&second.sim.stats()),
    ];
    assert_eq!(written.iter().sum::<u64>(), updated, "{written:?}");
    assert!(written.contains(&0), "one server wrote: {written:?}");
}
