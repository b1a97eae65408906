//! Credentials gone bad: a run failing with a disconnected connection
//! (28000) pauses every job using that connection, their slots are logged
//! `skipped` saying to log in, a manual run is refused, and after
//! `sfsql login` the jobs resume by themselves. The pause POSTs one
//! Slack-compatible alert to a webhook (a small axum server of the test)
//! naming the job, the connection and what to do, with no secret in it.
//! Web flow, revoked refresh token, injected clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::Value;
use sfsql::scheduler::{self, AlertsConfig, CronHook, ManualClock, SchedulerOptions};
use sfsql::server;
use sfsql::session::Engine;
use sfsql::simulator::SimConfig;

use crate::common::{connect_port, error_of, rows};
use crate::oauth::{WEB_PRODUCTION, web_org};
use crate::scheduler_loop::{at, next_done, tick};

const HOOK_SECRET: &str = "hook-s3cr3t-path";

/// A webhook receiver: every body it gets, in order.
async fn webhook() -> (AlertsConfig, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    async fn receive(
        State(tx): State<tokio::sync::mpsc::UnboundedSender<Value>>,
        body: axum::Json<Value>,
    ) {
        let _ = tx.send(body.0);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new()
        .route("/services/T000/B000/{secret}", post(receive))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config: AlertsConfig =
        toml::from_str("webhook_url = \"${SFSQL_TEST_WEBHOOK}\"\non = [\"failed\", \"paused\"]\n")
            .expect("[alerts]");
    let url = format!("http://{addr}/services/T000/B000/{HOOK_SECRET}");
    config.resolve(|_| Ok(url.clone())).expect("resolve");
    (config, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_pauses_the_connections_jobs_until_the_next_login() {
    let org = web_org(SimConfig::default(), WEB_PRODUCTION).await;
    org.login("production").await;
    let engine = Arc::new(Engine::start(&org.catalog, &org.env).await.expect("engine"));
    let (alerts, mut posted) = webhook().await;
    let clock = Arc::new(ManualClock::new(at(8, 59, 0)));
    let jobs = scheduler::start(
        Arc::clone(&engine),
        &SchedulerOptions {
            state_dir: org.catalog.state_dir.clone(),
            sql_dir: None,
            run_loop: true,
            clock: Arc::clone(&clock) as _,
            config: org.catalog.server.scheduler.clone(),
            alerts: Some(alerts),
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
    let refresh = org
        .store()
        .get("production")
        .expect("store")
        .expect("entry")
        .refresh_token()
        .expect("refresh token");
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

    // One alert for the pause: Slack's `text` and `blocks`, naming the
    // job, the run, the connection, the jobs paused and what to do.
    let body = tokio::time::timeout(Duration::from_secs(30), posted.recv())
        .await
        .expect("a paused alert")
        .expect("the hook runs");
    assert!(body["blocks"].is_array(), "{body}");
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with(&format!(
            "sfsql job nightly: run {} failed: connection 'production' needs `sfsql login production`; paused until then: nightly, hourly.",
            run.runid
        )),
        "{text}"
    );
    assert!(text.contains("is disconnected"), "the reason: {text}");
    let whole = body.to_string();
    for secret in [refresh.expose_secret(), HOOK_SECRET] {
        assert!(!whole.contains(secret), "no secret in the alert: {whole}");
    }

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
    // The skipped slot and the good run after the login alert no one.
    assert!(posted.try_recv().is_err(), "one alert: the pause");
}
