//! Alerts over a real webhook: `sfsql serve` (the binary) with `[alerts]`
//! in `server.toml` and the URL in an environment variable POSTs a
//! Slack-compatible body to a small axum server of the test when a run
//! fails and when a run's failed records pass `failed_records_percent`;
//! a run that goes well sends nothing. The webhook answers 500 the first
//! time: that is logged, without the URL, and changes no run. The URL's
//! secret never shows in the log nor in the `cron.*` tables.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use sfsql::simulator::{self, SimConfig};
use tokio::sync::mpsc;

use crate::common::{connect_port, copy_dir, error_of, fail_records, repo_catalog, rows};
use crate::scheduler_crash::serve_with;

const SECRET: &str = "s3cr3t-token-xyz";

#[derive(Clone)]
struct Hook {
    received: mpsc::UnboundedSender<Value>,
    calls: Arc<AtomicUsize>,
}

/// Keeps every body; refuses the first with a 500.
async fn receive(State(hook): State<Hook>, body: axum::Json<Value>) -> StatusCode {
    let n = hook.calls.fetch_add(1, Ordering::SeqCst);
    let _ = hook.received.send(body.0);
    if n == 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn next_alert(rx: &mut mpsc::UnboundedReceiver<Value>) -> String {
    let body = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("an alert")
        .expect("the hook runs");
    assert!(body["blocks"].is_array(), "{body}");
    body["text"].as_str().expect("text").to_string()
}

fn assert_has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{n:?} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_and_failed_records_post_to_the_webhook() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hook = Hook {
        received: tx,
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let app = Router::new()
        .route("/services/T000/B000/{secret}", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = simulator::start(
        SimConfig {
            contacts: 300,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog).expect("mkdir");
    copy_dir(&repo_catalog(), &catalog);
    let mut toml = std::fs::read_to_string(catalog.join("server.toml")).expect("server.toml");
    toml.push_str(
        "\n[alerts]\nwebhook_url = \"${SFSQL_TEST_WEBHOOK}\"\non = [\"failed\", \"failed_records\", \"paused\"]\nfailed_records_percent = 5\n",
    );
    std::fs::write(catalog.join("server.toml"), toml).expect("write server.toml");
    let log = dir.path().join("serve.log");
    let url = format!("http://{hook_addr}/services/T000/B000/{SECRET}");
    let server = serve_with(
        dir.path(),
        &sim,
        &[("SFSQL_TEST_WEBHOOK", url)],
        Stdio::from(std::fs::File::create(&log).expect("log file")),
    )
    .await;
    let client = connect_port(server.port).await;

    // A run that fails: one alert naming the job, the run, its status and
    // the error. The webhook refuses it (500); the run is as it was.
    rows(
        &client,
        "SELECT cron.schedule('broken', '0 3 * * *', $$UPDATE sandbox.contact SET no_such_field__c = 1$$)",
    )
    .await;
    let (_, message) = error_of(&client, "SELECT cron.run('broken')").await;
    let text = next_alert(&mut rx).await;
    assert_has(
        &text,
        &[
            "broken",
            "run 1 failed",
            "no_such_field__c",
            "records: 0 matched",
        ],
    );
    assert!(message.contains("run 1 of job broken failed"), "{message}");

    // A run that goes well sends nothing (the alert, if any, is sent
    // before cron.run returns).
    rows(
        &client,
        "SELECT cron.schedule('chloe', '0 3 * * *', $$UPDATE sandbox.contact SET title = 'Alerted' WHERE email LIKE 'chloe.%'$$)",
    )
    .await;
    rows(&client, "SELECT cron.run('chloe')").await;
    assert!(rx.try_recv().is_err(), "no alert for a good run");

    // 10 of 120 records refused by a validation rule: over 5%.
    fail_records(&sim.base_url(), "sandbox", 10).await;
    let nps = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/nps_to_contact.sql"),
    )
    .expect("seed job");
    rows(
        &client,
        &format!("SELECT cron.schedule('nps', '0 9 * * *', $${nps}$$)"),
    )
    .await;
    let runid = rows(&client, "SELECT cron.run('nps')").await;
    let runid = runid[0][0].clone().expect("run id");
    let text = next_alert(&mut rx).await;
    assert_has(
        &text,
        &[
            "nps",
            &format!("run {runid} succeeded"),
            "10 of 120 records failed (8.3%, over 5%)",
            "UPDATE 110",
            "110 updated",
            "10 failed",
        ],
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2);

    // The secret is nowhere but in the environment.
    let leaked = rows(
        &client,
        &format!(
            "SELECT count(*) FROM cron.job_run_details WHERE return_message LIKE '%{SECRET}%' OR command LIKE '%{SECRET}%'"
        ),
    )
    .await;
    assert_eq!(leaked[0][0].as_deref(), Some("0"));
    drop(server);
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(
        log.contains("alert webhook refused the alert"),
        "the 500 is logged: {log}"
    );
    assert!(!log.contains(SECRET), "the URL is not logged: {log}");
}
