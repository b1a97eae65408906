//! Jobs as code, reloaded while `sfsql` runs: the loop notices an edited,
//! added or deleted `sql/*.sql` file; a deleted file unschedules its job
//! (its runs stay in the log); a file named like a `cron.schedule` job is
//! refused with an error naming both, and nothing changes. The loop is
//! driven by waking it; nothing sleeps.

use std::sync::Arc;

use sfsql::scheduler::ManualClock;
use tokio_postgres::Client;

use crate::common::rows;
use crate::scheduler_loop::{at, demo_at, tick};

const SELECT_ONE: &str = "SELECT 1 AS one";

async fn jobs(client: &Client) -> Vec<Vec<Option<String>>> {
    rows(
        client,
        "SELECT jobname, schedule, split_part(source, ' ', 1) FROM cron.job ORDER BY jobname",
    )
    .await
}

fn job(name: &str, schedule: &str, source: &str) -> Vec<Option<String>> {
    vec![
        Some(name.into()),
        Some(schedule.into()),
        Some(source.into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_files_are_reloaded_when_they_change() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let a = format!("-- schedule: 0 9 * * *\n{SELECT_ONE}\n");
    let demo = demo_at(&clock, &[("a.sql", a)]).await;
    let scheduler = &demo.demo.jobs.scheduler;
    let client = demo.connect().await;
    let sql = demo.catalog_dir().join("sql");
    assert_eq!(jobs(&client).await, vec![job("a", "0 9 * * *", "file")]);
    // Two ticks: the second surely began after the files changed.
    let settle = || async {
        tick(scheduler).await;
        tick(scheduler).await;
    };

    // Edited and added.
    std::fs::write(
        sql.join("a.sql"),
        format!("-- schedule: 30 9 * * *\n{SELECT_ONE}\n"),
    )
    .expect("edit a");
    std::fs::write(
        sql.join("b.sql"),
        format!("-- schedule: 0 18 * * *\n{SELECT_ONE}\n"),
    )
    .expect("add b");
    settle().await;
    assert_eq!(
        jobs(&client).await,
        vec![
            job("a", "30 9 * * *", "file"),
            job("b", "0 18 * * *", "file")
        ]
    );

    // A file named like a cron.schedule job: refused, naming both; the
    // jobs stay as they were, the edit of b included.
    let id = rows(
        &client,
        &format!("SELECT cron.schedule('c', '0 7 * * *', $${SELECT_ONE}$$)"),
    )
    .await[0][0]
        .clone()
        .expect("job id");
    std::fs::write(
        sql.join("c.sql"),
        format!("-- schedule: 0 8 * * *\n{SELECT_ONE}\n"),
    )
    .expect("add c");
    std::fs::write(
        sql.join("b.sql"),
        format!("-- schedule: 0 19 * * *\n{SELECT_ONE}\n"),
    )
    .expect("edit b");
    settle().await;
    assert_eq!(
        jobs(&client).await,
        vec![
            job("a", "30 9 * * *", "file"),
            job("b", "0 18 * * *", "file"),
            job("c", "0 7 * * *", "sql"),
        ]
    );
    let err = scheduler.load_files(&sql).expect_err("defined twice");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("job {id} made by SELECT cron.schedule('c', ...)"))
            && msg.contains("c.sql"),
        "{msg}"
    );

    // The conflict gone and a.sql deleted: b's edit lands, a is
    // unscheduled, and a's run stays in the log.
    rows(&client, "SELECT cron.run('a')").await;
    std::fs::remove_file(sql.join("c.sql")).expect("rm c");
    std::fs::remove_file(sql.join("a.sql")).expect("rm a");
    settle().await;
    assert_eq!(
        jobs(&client).await,
        vec![job("b", "0 19 * * *", "file"), job("c", "0 7 * * *", "sql")]
    );
    let runs = rows(
        &client,
        "SELECT jobname, status FROM cron.job_run_details WHERE jobname IS NOT NULL",
    )
    .await;
    assert_eq!(runs, vec![vec![Some("a".into()), Some("succeeded".into())]]);
}
