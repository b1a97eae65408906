//! Credentials gone bad: a run failing with a disconnected connection
//! (28000) pauses every job using that connection, their slots are logged
//! `skipped` saying to log in, a manual run is refused, and after
//! `sfsql login` the jobs resume by themselves. Web flow, revoked refresh
//! token, injected clock.

use std::sync::Arc;

use sfsql::scheduler::{self, CronHook, ManualClock, SchedulerOptions};
use sfsql::server;
use sfsql::session::Engine;
use sfsql::simulator::SimConfig;

use crate::common::{connect_port, error_of, rows};
use crate::oauth::{WEB_PRODUCTION, web_org};
use crate::scheduler_loop::{at, next_done, tick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_pauses_the_connections_jobs_until_the_next_login() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    org.login("production").await;
    let engine = Arc::new(Engine::start(&org.catalog, &org.env).await.expect("engine"));
    let clock = Arc::new(ManualClock::new(at(8, 59, 0)));
    let jobs = scheduler::start(
        Arc::clone(&engine),
        &SchedulerOptions {
            state_dir: org.catalog.state_dir.clone(),
            sql_dir: None,
            run_loop: true,
            clock: Arc::clone(&clock) as _,
            config: org.catalog.server.scheduler.clone(),
            alerts: org.catalog.server.alerts.clone(),
        },
    )
    .await
    .expect("scheduler");
    let sched = &jobs.scheduler;
    let server = server::start_with_hooks(
        Arc::clone(&engine),
        &org.catalog.server,
        "127.0.0.1:0",
        vec![Arc::new(CronHook::new(Arc::clone(sched)))],
    )
    .await
    .expect("server");
    let client = connect_port(server.addr.port()).await;
    for sql in [
        "SELECT cron.schedule('nightly', '0 9 * * *', 'SELECT count(*) FROM production.contact')",
        "SELECT cron.schedule('hourly', '0 10 * * *', $$UPDATE production.contact SET title = 'x' WHERE email = 'nobody@example.org'$$)",
        "SELECT cron.schedule('local', '0 10 * * *', 'SELECT 1')",
    ] {
        rows(&client, sql).await;
    }
    tick(sched).await;
    let mut done = sched.subscribe();

    // An admin revokes the app's access: the next run fails with 28000
    // and pauses both jobs that use production, not the third.
    org.revoke("production").await;
    clock.set(at(9, 0, 0));
    sched.wake();
    let run = next_done(&mut done).await;
    assert_eq!(
        (run.jobname.as_str(), run.status.as_str()),
        ("nightly", "failed")
    );
    assert!(
        run.message
            .contains("connection 'production' is disconnected")
            && run
                .message
                .ends_with("paused nightly, hourly until `sfsql login production`"),
        "{run:?}"
    );
    let paused = rows(
        &client,
        "SELECT jobname, active, paused_reason FROM cron.job ORDER BY jobid",
    )
    .await;
    for row in &paused[..2] {
        assert_eq!(row[1].as_deref(), Some("t"), "active stays as set: {row:?}");
        let reason = row[2].as_deref().unwrap_or("");
        assert!(
            reason.starts_with("paused: connection 'production' is disconnected")
                && reason.ends_with("run `sfsql login production` and the job resumes by itself"),
            "{reason}"
        );
    }
    assert_eq!(paused[2][2], None, "a job not using production runs on");

    // Its 10:00 slot is logged skipped, saying why; the other job runs.
    clock.set(at(10, 0, 0));
    sched.wake();
    let local = next_done(&mut done).await;
    assert_eq!(
        (local.jobname.as_str(), local.status.as_str()),
        ("local", "succeeded")
    );
    tick(sched).await;
    let skipped = rows(
        &client,
        "SELECT status, trigger, return_message FROM cron.job_run_details WHERE jobname = 'hourly'",
    )
    .await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0][0].as_deref(), Some("skipped"));
    assert_eq!(skipped[0][1].as_deref(), Some("schedule"));
    assert!(
        skipped[0][2]
            .as_deref()
            .unwrap_or("")
            .contains("sfsql login production")
    );
    let (code, message) = error_of(&client, "SELECT cron.run('nightly')").await;
    assert_eq!(code, "28000");
    assert!(
        message.starts_with("job nightly is paused: connection 'production'"),
        "{message}"
    );

    // After `sfsql login production` the jobs resume by themselves.
    org.login("production").await;
    tick(sched).await;
    let resumed = rows(
        &client,
        "SELECT count(*) FROM cron.job WHERE paused_reason IS NOT NULL",
    )
    .await;
    assert_eq!(resumed[0][0].as_deref(), Some("0"));
    clock.set(at(9, 0, 0) + chrono::Duration::days(1));
    sched.wake();
    let run = next_done(&mut done).await;
    assert_eq!(
        (run.jobname.as_str(), run.status.as_str()),
        ("nightly", "succeeded"),
        "{run:?}"
    );
}
