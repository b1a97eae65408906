//! Jobs as code, reloaded while `sfsql` runs: the loop notices an edited,
//! added or deleted `sql/*.sql` file; a deleted file unschedules its job
//! (its runs stay in the log); a file named like a `cron.schedule` job is
//! refused with an error naming both (and so is
//! `cron.schedule` named like a job file), and nothing changes. In-process
//! the loop is driven by waking it, nothing sleeps; the binary's test
//! polls its log.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use sfsql::scheduler::ManualClock;
use tokio_postgres::Client;

use crate::common::{connect_port, error_of, rows};
use crate::scheduler_crash::{serve_with, slow_sim};
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

/// Job `c` by `cron.schedule` (7:00), then `sql/c.sql` (8:00); the job's id.
async fn schedule_c_then_add_its_file(client: &Client, sql: &Path) -> String {
    let id = rows(
        client,
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
    id
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
    let id = schedule_c_then_add_its_file(&client, &sql).await;
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

/// The other order: a job file first, then `cron.schedule` of the same
/// name. Refused (42710) with an error naming both; the file's job stays
/// as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedule_named_like_a_job_file_is_refused_naming_both() {
    let clock = Arc::new(ManualClock::new(at(8, 59, 30)));
    let a = format!("-- schedule: 0 9 * * *\n{SELECT_ONE}\n");
    let demo = demo_at(&clock, &[("a.sql", a.clone())]).await;
    let client = demo.connect().await;
    let (state, message) = error_of(
        &client,
        "SELECT cron.schedule('a', '0 7 * * *', $$SELECT 2 AS two$$)",
    )
    .await;
    assert_eq!(state, "42710", "{message}");
    let source = rows(&client, "SELECT source FROM cron.job").await[0][0]
        .clone()
        .expect("source");
    assert_eq!(
        message,
        format!(
            "job a is defined twice: the file {} and SELECT cron.schedule('a', ...); keep one of them",
            source.trim_start_matches("file ")
        ),
        "{source}"
    );
    assert!(message.contains("/sql/a.sql"), "{message}");
    assert_eq!(jobs(&client).await, vec![job("a", "0 9 * * *", "file")]);
    let command = rows(&client, "SELECT command FROM cron.job").await;
    assert_eq!(command[0][0].as_deref(), Some(a.as_str()));
}

/// SQL first, then a job file of the same name appears, as a user of
/// `sfsql serve` (the binary) sees it: the server's log says the files
/// were not reloaded and names both; `cron.job` keeps the SQL job and the
/// server goes on serving. Removing the file lets the next edit load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_file_named_like_a_cron_schedule_job_is_refused_in_the_log() {
    let (sim, dir) = slow_sim(100, Duration::ZERO).await;
    let sql = dir.path().join("sql");
    std::fs::create_dir_all(&sql).expect("mkdir");
    let log_path = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let server = serve_with(dir.path(), &sim, &[], Stdio::from(log_file)).await;
    let client = connect_port(server.port).await;
    let id = schedule_c_then_add_its_file(&client, &sql).await;

    // The loop looks at sql/ at least once a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let line = loop {
        let log = std::fs::read_to_string(&log_path).expect("log");
        if let Some(line) = log.lines().find(|l| l.contains("job c is defined twice")) {
            break line.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error in the log: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for part in [
        "ERROR",
        "job files changed but were not reloaded; the jobs stay as they were",
        &format!("job {id} made by SELECT cron.schedule('c', ...) and the file "),
        "/sql/c.sql; keep one of them",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert_eq!(jobs(&client).await, vec![job("c", "0 7 * * *", "sql")]);

    // One of them kept: the file renamed d.sql loads as job d.
    std::fs::rename(sql.join("c.sql"), sql.join("d.sql")).expect("rename");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while jobs(&client).await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "d.sql never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        jobs(&client).await,
        vec![job("c", "0 7 * * *", "sql"), job("d", "0 8 * * *", "file")]
    );
}
