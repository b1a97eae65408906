//! Runs waiting for their delay are stored: a slot with `-- delay: 5m`
//! shows as `waiting` in `cron.job_run_details` (no start time yet, its
//! `not_before`), survives a stop of the server while it waits, and runs
//! exactly once after the restart, when due. In process with a
//! [`ManualClock`]; the real binary under `kill -9` is in
//! `scheduler_crash`.

use std::sync::Arc;

use sfsql::scheduler::ManualClock;
use sfsql::simulator::SimConfig;

use crate::common::{TestDemo, launch, rows};
use crate::scheduler_loop::{at, demo_at, next_done, tick};

const DELAYED: &str =
    "-- schedule: 0 9 * * *\n-- delay: 5m\nUPDATE sandbox.contact SET title = 'Waited'\n";

async fn details(demo: &TestDemo) -> Vec<Vec<Option<String>>> {
    rows(
        &demo.connect().await,
        "SELECT runid, status, trigger, attempt, start_time, not_before, return_message
         FROM cron.job_run_details ORDER BY runid",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_its_delay_survives_a_stop_and_runs_once() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let demo = demo_at(&clock, &[("delayed.sql", DELAYED.to_string())]).await;
    clock.set(at(9, 0, 0));
    tick(&demo.demo.jobs.scheduler).await;
    let waiting = vec![vec![
        Some("1".into()),
        Some("waiting".into()),
        Some("schedule".into()),
        Some("1".into()),
        None,
        Some("2026-03-02 09:05:00.000000+00".into()),
        Some("waiting: delay until 2026-03-02 09:05:00 UTC".into()),
    ]];
    assert_eq!(details(&demo).await, waiting);

    // Stopped while the run waits, started again before it is due: the
    // run is still there, waiting, and nothing ran.
    let dir = demo.stop();
    // A stopped in-process demo's store may linger in this test process
    // (tasks still holding it); a dead process holds no lock, which is
    // what removing the owner files says here. The real `kill -9` is in
    // `scheduler_crash`.
    let owners = dir.path().join(".sfsql").join(sfsql::state::OWNERS_DIR);
    for f in std::fs::read_dir(&owners).expect("owners") {
        std::fs::remove_file(f.expect("entry").path()).expect("remove");
    }
    clock.set(at(9, 2, 0));
    let demo = launch(
        dir,
        SimConfig {
            contacts: 300,
            ..SimConfig::default()
        },
        Arc::clone(&clock) as _,
    )
    .await;
    let scheduler = &demo.demo.jobs.scheduler;
    tick(scheduler).await;
    assert_eq!(details(&demo).await, waiting, "no catch-up, no second run");
    assert!(demo.demo.jobs.catch_up.is_empty());

    let mut done = scheduler.subscribe();
    clock.set(at(9, 5, 0));
    tick(scheduler).await;
    let run = next_done(&mut done).await;
    assert_eq!((run.runid, run.status.as_str()), (1, "succeeded"));
    tick(scheduler).await;
    assert_eq!(
        details(&demo).await,
        vec![vec![
            Some("1".into()),
            Some("succeeded".into()),
            Some("schedule".into()),
            Some("1".into()),
            Some("2026-03-02 09:05:00.000000+00".into()),
            Some("2026-03-02 09:05:00.000000+00".into()),
            Some("UPDATE 300".into()),
        ]]
    );
    assert_eq!(
        demo.stats()["sandbox"]["records_written"].as_u64(),
        Some(300),
        "the statement ran once"
    );
}
