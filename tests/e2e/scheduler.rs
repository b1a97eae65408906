//! Saved jobs over a Postgres connection: `cron.schedule`, `cron.run`,
//! `cron.alter_job`, `cron.unschedule`, jobs from `sql/*.sql`, and the run
//! log in `cron.job_run_details` / `cron.job_run_records`, for job runs and
//! for UPDATEs typed in a client.

use std::net::SocketAddr;
use std::path::Path;

use sfsql::demo::DemoOptions;
use sfsql::simulator::SimConfig;
use tokio_postgres::Client;

use crate::common::{
    TestDemo, connect_port, copy_dir, error_of, rows, start_demo, start_demo_with_jobs,
};

const NPS_QUIZ: &str = "UPDATE sandbox.contact SET wm_quiz_name__c = r.quiz_name \
    FROM reports.nps_score r WHERE lower(contact.email) = lower(r.account_email)";

async fn demo_with_repo_jobs() -> TestDemo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/nps_to_contact.sql");
    let text = std::fs::read_to_string(path).expect("sql/nps_to_contact.sql");
    start_demo_with_jobs(300, &[], Some(&[("nps_to_contact.sql", text)])).await
}

async fn one(client: &Client, sql: &str) -> Vec<Option<String>> {
    let mut r = rows(client, sql).await;
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r.remove(0)
}

fn int(v: &Option<String>) -> i64 {
    v.as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {v:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_run_and_read_the_log() {
    let demo = demo_with_repo_jobs().await;
    let client = demo.connect().await;

    // The file job is loaded, with its next run shown.
    let file_job = one(
        &client,
        "SELECT jobname, schedule, timezone, source, active, next_run IS NOT NULL FROM cron.job",
    )
    .await;
    assert_eq!(file_job[0].as_deref(), Some("nps_to_contact"));
    assert_eq!(file_job[1].as_deref(), Some("0 9 * * *"));
    assert!(
        file_job[3]
            .as_deref()
            .unwrap_or("")
            .ends_with("nps_to_contact.sql")
    );
    assert_eq!(file_job[5].as_deref(), Some("t"));

    // cron.schedule returns the job id; the same name replaces the job.
    let sql = format!("SELECT cron.schedule('nps_quiz', '0 9 * * *', $${NPS_QUIZ}$$)");
    let id = int(&one(&client, &sql).await[0]);
    let sql = format!("SELECT cron.schedule('nps_quiz', '30 9 * * 1-5', $${NPS_QUIZ}$$)");
    assert_eq!(int(&one(&client, &sql).await[0]), id);
    let job = one(
        &client,
        "SELECT schedule, source, username FROM cron.job WHERE jobname = 'nps_quiz'",
    )
    .await;
    assert_eq!(
        job,
        vec![
            Some("30 9 * * 1-5".into()),
            Some("sql".into()),
            Some("demo".into())
        ]
    );

    // Run now: returns the run id when the run is done.
    let runid = int(&one(&client, "SELECT cron.run('nps_quiz')").await[0]);
    let run = one(
        &client,
        &format!(
            "SELECT status, trigger, jobname, rows_matched, rows_updated, rows_unchanged, rows_failed, api_calls, end_time IS NOT NULL
             FROM cron.job_run_details WHERE runid = {runid}"
        ),
    )
    .await;
    assert_eq!(run[0].as_deref(), Some("succeeded"), "{run:?}");
    assert_eq!(run[1].as_deref(), Some("manual"));
    assert_eq!(run[2].as_deref(), Some("nps_quiz"));
    let (matched, updated) = (int(&run[3]), int(&run[4]));
    assert!(updated > 0 && matched >= updated, "{run:?}");
    assert_eq!(int(&run[6]), 0);
    assert!(int(&run[7]) >= 1, "write calls: {run:?}");
    assert_eq!(run[8].as_deref(), Some("t"));

    // One record row per matched record, adding up to the counts.
    let by_status = rows(
        &client,
        &format!(
            "SELECT status, count(*) FROM cron.job_run_records WHERE runid = {runid} GROUP BY status ORDER BY status"
        ),
    )
    .await;
    let total: i64 = by_status.iter().map(|r| int(&r[1])).sum();
    assert_eq!(total, matched, "{by_status:?}");
    let updated_rows = by_status
        .iter()
        .find(|r| r[0].as_deref() == Some("updated"))
        .map(|r| int(&r[1]));
    assert_eq!(updated_rows, Some(updated));
    let record = one(
        &client,
        &format!(
            "SELECT sobject, action, record_id LIKE '003%', match_key IS NOT NULL
             FROM cron.job_run_records WHERE runid = {runid} AND status = 'updated' LIMIT 1"
        ),
    )
    .await;
    assert_eq!(
        record,
        vec![
            Some("Contact".into()),
            Some("update".into()),
            Some("t".into()),
            Some("t".into())
        ]
    );

    // A second run finds nothing to change.
    let again = int(&one(&client, "SELECT cron.run('nps_quiz')").await[0]);
    let run = one(
        &client,
        &format!(
            "SELECT rows_updated, rows_unchanged FROM cron.job_run_details WHERE runid = {again}"
        ),
    )
    .await;
    assert_eq!((int(&run[0]), int(&run[1])), (0, matched));

    // The file job runs the same way.
    let file_run = int(&one(&client, "SELECT cron.run('nps_to_contact')").await[0]);
    assert!(file_run > again);

    // The seeds' log window is one SELECT.
    let window = rows(
        &client,
        "SELECT jobname AS report, sobject AS object, start_time, duration AS runtime, status
         FROM cron.job_run_details WHERE jobname IS NOT NULL ORDER BY runid",
    )
    .await;
    assert_eq!(window.len(), 3);
    assert_eq!(window[0][1].as_deref(), Some("sandbox.contact"));
    assert!(
        window.iter().all(|r| r[2].is_some() && r[3].is_some()),
        "{window:?}"
    );

    // Pause, then remove; runs stay in the log.
    one(
        &client,
        &format!("SELECT cron.alter_job({id}, active := false)"),
    )
    .await;
    let paused = one(
        &client,
        "SELECT active, next_run IS NULL, last_status FROM cron.job WHERE jobname = 'nps_quiz'",
    )
    .await;
    assert_eq!(
        paused,
        vec![Some("f".into()), Some("t".into()), Some("succeeded".into())]
    );
    assert_eq!(
        one(&client, "SELECT cron.unschedule('nps_quiz')").await,
        vec![Some("t".into())]
    );
    assert!(
        rows(
            &client,
            "SELECT jobid FROM cron.job WHERE jobname = 'nps_quiz'"
        )
        .await
        .is_empty()
    );
    let kept = one(
        &client,
        "SELECT count(*) FROM cron.job_run_details WHERE jobname = 'nps_quiz'",
    )
    .await;
    assert_eq!(int(&kept[0]), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_errors() {
    let demo = demo_with_repo_jobs().await;
    let client = demo.connect().await;

    // A job defined in a file and in SQL: the error names both.
    let (code, message) = error_of(
        &client,
        "SELECT cron.schedule('nps_to_contact', '0 9 * * *', 'SELECT 1')",
    )
    .await;
    assert_eq!(code, "42710");
    assert!(
        message.contains("nps_to_contact.sql") && message.contains("cron.schedule"),
        "{message}"
    );

    let (code, message) = error_of(&client, "SELECT cron.schedule('x', 'daily', 'SELECT 1')").await;
    assert_eq!(code, "22023");
    assert!(message.contains("write 5"), "{message}");

    let (code, _) = error_of(&client, "SELECT cron.run('no_such_job')").await;
    assert_eq!(code, "42704");

    // A failing command: the run is logged failed and the caller told why.
    one(
        &client,
        "SELECT cron.schedule('broken', '0 9 * * *', 'UPDATE sandbox.contact SET no_such_field = 1')",
    )
    .await;
    let (_, message) = error_of(&client, "SELECT cron.run('broken')").await;
    assert!(
        message.contains("broken") && message.contains("job_run_details"),
        "{message}"
    );
    let failed = one(
        &client,
        "SELECT status, return_message IS NOT NULL FROM cron.job_run_details WHERE jobname = 'broken'",
    )
    .await;
    assert_eq!(failed, vec![Some("failed".into()), Some("t".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_updates_are_logged_without_a_job() {
    let demo = start_demo(300, &[]).await;
    let client = demo.connect().await;
    rows(
        &client,
        "UPDATE sandbox.contact SET wm_quiz_name__c = 'Retaken' WHERE email = 'chloe.allen5@stark.example'",
    )
    .await;
    let run = one(
        &client,
        "SELECT jobid IS NULL, jobname IS NULL, trigger, username, status, rows_updated, dry_run, runid
         FROM cron.job_run_details",
    )
    .await;
    assert_eq!(
        run[..7].to_vec(),
        vec![
            Some("t".into()),
            Some("t".into()),
            Some("client".into()),
            Some("demo".into()),
            Some("succeeded".into()),
            Some("1".into()),
            Some("f".into())
        ]
    );
    let records = rows(
        &client,
        &format!(
            "SELECT record_id, status FROM cron.job_run_records WHERE runid = {}",
            int(&run[7])
        ),
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0][1].as_deref(), Some("updated"));

    // Dry runs are logged too, marked as such.
    rows(&client, "SET sfsql.dry_run = on").await;
    rows(
        &client,
        "UPDATE sandbox.contact SET wm_quiz_name__c = 'Again' WHERE email = 'chloe.allen5@stark.example'",
    )
    .await;
    let dry = one(
        &client,
        "SELECT dry_run, rows_updated FROM cron.job_run_details ORDER BY runid DESC LIMIT 1",
    )
    .await;
    assert_eq!(dry, vec![Some("t".into()), Some("1".into())]);
}

/// Every seed job of the repository's `sql/` loads in the demo with its
/// schedule and next run, runs, and shows in `cron.job_run_details` with
/// what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_job_loads_runs_and_shows_in_the_log() {
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&sql)
        .expect("sql/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("seed"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    let named: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let demo = start_demo_with_jobs(300, &[], Some(&named)).await;
    let client = demo.connect().await;

    let jobs = rows(
        &client,
        "SELECT jobname, split_part(source, ' ', 1), next_run IS NOT NULL FROM cron.job ORDER BY jobname",
    )
    .await;
    let names: Vec<String> = files
        .iter()
        .map(|(n, _)| n.trim_end_matches(".sql").to_string())
        .collect();
    assert_eq!(
        jobs,
        names
            .iter()
            .map(|n| vec![Some(n.clone()), Some("file".into()), Some("t".into())])
            .collect::<Vec<_>>()
    );
    for name in &names {
        rows(&client, &format!("SELECT cron.run('{name}')")).await;
    }
    let log = rows(
        &client,
        "SELECT jobname, status, trigger, sobject IS NOT NULL, rows_matched > 0, api_calls > 0
         FROM cron.job_run_details WHERE jobname IS NOT NULL ORDER BY jobname",
    )
    .await;
    assert_eq!(
        log,
        names
            .iter()
            .map(|n| {
                let mut row = vec![Some(n.clone())];
                row.extend(["succeeded", "manual", "t", "t", "t"].map(|c| Some(c.to_string())));
                row
            })
            .collect::<Vec<_>>()
    );
}

/// `sfsql demo`'s own path: `demo::start` with a catalog directory finds
/// the job files in `sql/` beside it and keeps its state in `.sfsql/`
/// beside it (`SchedulerOptions::beside`), with no test option in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfsql_demo_loads_the_seed_jobs_beside_its_catalog_and_runs_them() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().expect("tempdir");
    let root_path = root.path().canonicalize().expect("canonical tempdir");
    for dir in ["catalog", "sql"] {
        std::fs::create_dir_all(root_path.join(dir)).expect("mkdir");
        copy_dir(&repo.join(dir), &root_path.join(dir));
    }
    let demo = sfsql::demo::start(DemoOptions {
        catalog: root_path.join("catalog"),
        listen: "127.0.0.1:0".into(),
        sim_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        sim: SimConfig {
            contacts: 300,
            ..SimConfig::default()
        },
    })
    .await
    .expect("sfsql demo starts");
    let state_dir = demo.jobs.scheduler.store().dir().to_path_buf();
    assert_eq!(state_dir, root_path.join(".sfsql"));
    assert!(state_dir.join("state.db").is_file(), "{state_dir:?}");
    assert!(demo.jobs.task.is_some(), "the demo runs the scheduler loop");
    let client = connect_port(demo.server.addr.port()).await;

    let mut seeds: Vec<String> = std::fs::read_dir(repo.join("sql"))
        .expect("sql/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    seeds.sort();
    assert_eq!(seeds.len(), 5, "{seeds:?}");
    let jobs = rows(
        &client,
        "SELECT jobname, source, active, next_run IS NOT NULL FROM cron.job ORDER BY jobname",
    )
    .await;
    let expected: Vec<Vec<Option<String>>> = seeds
        .iter()
        .map(|file| {
            let source = format!("file {}", root_path.join("sql").join(file).display());
            [file.trim_end_matches(".sql"), &source, "t", "t"]
                .map(|c| Some(c.to_string()))
                .to_vec()
        })
        .collect();
    assert_eq!(jobs, expected);

    // A seed job runs into the log, as a manual run would from psql.
    let runid = one(&client, "SELECT cron.run('nps_to_contact')").await;
    let run = one(
        &client,
        &format!(
            "SELECT jobname, trigger, status, sobject, rows_updated > 0, rows_created, rows_failed
             FROM cron.job_run_details WHERE runid = {}",
            int(&runid[0])
        ),
    )
    .await;
    assert_eq!(
        run,
        [
            "nps_to_contact",
            "manual",
            "succeeded",
            "sandbox.contact",
            "t",
            "0",
            "0"
        ]
        .map(|c| Some(c.to_string()))
        .to_vec()
    );
}
