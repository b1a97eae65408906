//! A run cut off by its timeout mid-write leaves every record it sent in
//! `cron.job_run_records`: the Collections call in flight finishes, the
//! records not yet sent are logged `skipped`, and a Bulk job in flight has
//! its results fetched. Counted against the simulator's own counters.

use std::sync::Arc;
use std::time::Duration;

use sfsql::scheduler::ManualClock;
use sfsql::simulator::{SimConfig, SimHandle};

use crate::common::{TestDemo, connect_port, rows, start_demo_with_clock};
use crate::scheduler_loop::at;

const CONTACTS: usize = 1000;

/// A demo of `CONTACTS` contacts whose simulator answers after 300 ms,
/// with job `cut` (timeout 5m) running `command`, at 09:00.
async fn demo_with_job(command: &str) -> (Arc<ManualClock>, TestDemo) {
    let clock = Arc::new(ManualClock::new(at(9, 0, 0)));
    let sim = SimConfig {
        contacts: CONTACTS,
        latency: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let demo = start_demo_with_clock(sim, &[], Some(&[]), Arc::clone(&clock) as _).await;
    let client = demo.connect().await;
    rows(
        &client,
        &format!("SELECT cron.schedule('cut', '0 3 * * *', $${command}$$, timeout := '5m')"),
    )
    .await;
    (clock, demo)
}

/// Waits (bounded) until the sandbox org's `counter` reaches `n`.
pub async fn until_sim(sim: &SimHandle, counter: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats = sim.stats();
        let org = &stats["sandbox"];
        let seen = org[counter]
            .as_u64()
            .or_else(|| org["requests"][counter].as_u64())
            .unwrap_or(0);
        if seen >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{counter} never reached {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Start `cron.run('cut')` on its own connection, wait for `counter` to
/// reach `n` at the simulator, then pass the run's deadline; returns the
/// run's error (SQLSTATE, message).
async fn run_and_cut(
    clock: &ManualClock,
    demo: &TestDemo,
    counter: &str,
    n: u64,
) -> (String, String) {
    let port = demo.port();
    let run = tokio::spawn(async move {
        let client = connect_port(port).await;
        let err = client
            .simple_query("SELECT cron.run('cut')")
            .await
            .expect_err("a timeout");
        let db = err.as_db_error().expect("a database error");
        (db.code().code().to_string(), db.message().to_string())
    });
    until_sim(&demo.demo.sim, counter, n).await;
    clock.set(at(9, 5, 1));
    demo.demo.jobs.scheduler.wake();
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run stops")
        .expect("run task")
}

/// (status, count) of the run's records.
async fn record_counts(demo: &TestDemo) -> Vec<(String, u64)> {
    let client = demo.connect().await;
    rows(
        &client,
        "SELECT status, count(*) FROM cron.job_run_records GROUP BY status ORDER BY status",
    )
    .await
    .into_iter()
    .map(|r| {
        let n = r[1].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
        (r[0].clone().unwrap_or_default(), n)
    })
    .collect()
}

fn count(counts: &[(String, u64)], status: &str) -> u64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_mid_collections_write_logs_every_record_sent() {
    let (clock, demo) = demo_with_job("UPDATE sandbox.contact SET title = 'Cut off'").await;
    let (code, message) = run_and_cut(&clock, &demo, "records_written", 200).await;
    assert_eq!(code, "57014", "{message}");
    assert!(message.contains("timeout: cancelled after 5m"), "{message}");

    let written = demo.stats()["sandbox"]["records_written"]
        .as_u64()
        .unwrap_or(0);
    let counts = record_counts(&demo).await;
    // Every record the simulator received is logged as written, the rest
    // as skipped; nothing is left unknown, nothing is missing.
    assert_eq!(count(&counts, "updated"), written, "{counts:?}");
    assert_eq!(count(&counts, "unknown"), 0, "{counts:?}");
    assert!(written >= 200 && written < CONTACTS as u64, "{written}");
    assert_eq!(
        count(&counts, "skipped"),
        CONTACTS as u64 - written,
        "{counts:?}"
    );

    let client = demo.connect().await;
    let run = rows(
        &client,
        "SELECT status, rows_matched, rows_updated, rows_skipped FROM cron.job_run_details",
    )
    .await;
    assert_eq!(run[0][0].as_deref(), Some("failed"));
    assert_eq!(run[0][1].as_deref(), Some("1000"));
    assert_eq!(run[0][2], Some(written.to_string()));
    assert_eq!(run[0][3], Some((CONTACTS as u64 - written).to_string()));
    let skipped = rows(
        &client,
        "SELECT DISTINCT message FROM cron.job_run_records WHERE status = 'skipped'",
    )
    .await;
    assert_eq!(
        skipped,
        vec![vec![Some("cancelled: timeout after 5m".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_during_a_bulk_job_fetches_its_results() {
    let (clock, demo) = demo_with_job(
        "SET sfsql.bulk_threshold = 100; UPDATE sandbox.contact SET title = 'In bulk'",
    )
    .await;
    let (code, message) = run_and_cut(&clock, &demo, "bulk_ingest_create", 1).await;
    assert_eq!(code, "57014", "{message}");

    let processed = demo.stats()["sandbox"]["bulk_records_processed"]
        .as_u64()
        .unwrap_or(0);
    let counts = record_counts(&demo).await;
    assert_eq!(processed, CONTACTS as u64);
    assert_eq!(count(&counts, "updated"), processed, "{counts:?}");
    assert_eq!(count(&counts, "unknown"), 0, "{counts:?}");
}
