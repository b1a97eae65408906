//! The real scheduler loop driven by a [`ManualClock`]: a cron slot fires
//! when the clock reaches it, and the run shows in `cron.job_run_details`.
//! Tests move the clock and wake the loop; they never sleep.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sfsql::scheduler::{ManualClock, RunDone, Scheduler};
use sfsql::simulator::SimConfig;
use tokio::sync::broadcast::Receiver;

use crate::common::{TestDemo, rows, start_demo_with_clock};

pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s)
        .single()
        .expect("time")
}

pub fn seed_job() -> (&'static str, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/nps_to_contact.sql");
    let text = std::fs::read_to_string(path).expect("sql/nps_to_contact.sql");
    ("nps_to_contact.sql", text)
}

/// A demo whose scheduler reads `clock`, once its loop has looked at the
/// jobs (so moving the clock after this is seen as time passing).
pub async fn demo_at(clock: &Arc<ManualClock>, jobs: &[(&str, String)]) -> TestDemo {
    demo_at_latency(clock, jobs, Duration::ZERO).await
}

/// [`demo_at`] whose simulator answers each request after `latency`.
pub async fn demo_at_latency(
    clock: &Arc<ManualClock>,
    jobs: &[(&str, String)],
    latency: Duration,
) -> TestDemo {
    let sim = SimConfig {
        contacts: 300,
        latency,
        ..SimConfig::default()
    };
    let demo = start_demo_with_clock(sim, &[], Some(jobs), Arc::clone(clock) as _).await;
    let mut ticks = demo.demo.jobs.scheduler.ticks();
    tokio::time::timeout(Duration::from_secs(30), ticks.wait_for(|n| *n >= 1))
        .await
        .expect("the loop ticks")
        .expect("the loop runs");
    demo
}

/// The next finished run (a bounded wait on the broadcast, not a sleep).
pub async fn next_done(done: &mut Receiver<RunDone>) -> RunDone {
    tokio::time::timeout(Duration::from_secs(60), done.recv())
        .await
        .expect("a run finishes")
        .expect("the scheduler is running")
}

/// The id of the next run to start (a bounded wait, not a sleep).
pub async fn next_started(started: &mut Receiver<i64>) -> i64 {
    tokio::time::timeout(Duration::from_secs(30), started.recv())
        .await
        .expect("a run starts")
        .expect("the scheduler is running")
}

/// Wake the loop and wait until it has ticked (looked at clock and jobs).
pub async fn tick(scheduler: &Scheduler) {
    let mut ticks = scheduler.ticks();
    let seen = *ticks.borrow_and_update();
    scheduler.wake();
    ticks.wait_for(|n| *n > seen).await.expect("tick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_job_fires_at_its_slot() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let demo = demo_at(&clock, &[seed_job()]).await;
    let scheduler = &demo.demo.jobs.scheduler;
    let client = demo.connect().await;
    let mut done = scheduler.subscribe();

    // Before 09:00 nothing runs.
    clock.set(at(8, 59, 59));
    scheduler.wake();
    let mut ticks = scheduler.ticks();
    let seen = *ticks.borrow_and_update();
    ticks.wait_for(|n| *n > seen).await.expect("tick");
    assert!(done.try_recv().is_err(), "nothing is due before 09:00");
    let next = rows(&client, "SELECT next_run FROM cron.job").await;
    assert_eq!(next[0][0].as_deref(), Some("2026-03-02 09:00:00.000000+00"));

    // At 09:00 the slot fires once, as a scheduled run.
    clock.set(at(9, 0, 0));
    scheduler.wake();
    let run = next_done(&mut done).await;
    assert_eq!(run.jobname, "nps_to_contact");
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");

    // The seeds' log window: report, object, start (UTC), runtime, status.
    let window = rows(
        &client,
        "SELECT jobname AS report, sobject AS object, start_time AS start_utc,
                duration AS runtime, status, trigger, rows_updated > 0, rows_unknown
         FROM cron.job_run_details WHERE jobname IS NOT NULL ORDER BY runid",
    )
    .await;
    let text: Vec<Vec<&str>> = window
        .iter()
        .map(|r| r.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect())
        .collect();
    assert_eq!(
        text,
        vec![vec![
            "nps_to_contact",
            "sandbox.contact",
            "2026-03-02 09:00:00.000000+00",
            "00:00:00",
            "succeeded",
            "schedule",
            "t",
            "0"
        ]]
    );
    let job = rows(&client, "SELECT last_status, next_run FROM cron.job").await;
    assert_eq!(job[0][0].as_deref(), Some("succeeded"));
    assert_eq!(job[0][1].as_deref(), Some("2026-03-03 09:00:00.000000+00"));

    // The same slot never fires twice.
    scheduler.wake();
    let seen = *ticks.borrow_and_update();
    ticks.wait_for(|n| *n > seen).await.expect("tick");
    assert!(done.try_recv().is_err());
}
