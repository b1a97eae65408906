//! The real binary killed mid-run: `sfsql serve` runs a job writing
//! several Collections batches to a slow simulator, gets `kill -9` after
//! the first batch, and is started again on the same state directory. The
//! run is `failed` "interrupted", nothing stays `running`, the run is not
//! executed again, and every record the simulator received is in
//! `cron.job_run_records` (written, or `unknown` for the batch in flight).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sfsql::simulator::{self, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimConfig, SimHandle};

use crate::common::{connect_port, copy_dir, repo_catalog, rows};
use crate::scheduler_cutoff::until_sim;

const CONTACTS: u64 = 1000;

/// A `sfsql serve` process; killed when dropped.
pub struct Serve {
    pub child: Child,
    pub port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `sfsql serve` over `dir`'s catalog and state directory, and wait
/// until it accepts connections.
async fn serve(dir: &Path, sim: &SimHandle) -> Serve {
    serve_with(dir, sim, &[], Stdio::null()).await
}

/// [`serve`] with extra environment variables and its log (stderr) sent
/// to `stderr`.
pub async fn serve_with(
    dir: &Path,
    sim: &SimHandle,
    env: &[(&str, String)],
    stderr: Stdio,
) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_sfsql"))
        .args(["serve", "--catalog"])
        .arg(dir.join("catalog"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--listen", &listen])
        .env("SFSQL_SIM_URL", sim.base_url())
        .env("SFSQL_DEMO_CLIENT_ID", DEMO_CLIENT_ID)
        .env("SFSQL_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn sfsql serve");
    let server = Serve { child, port };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(&listen).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sfsql serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// A simulator of `contacts` answering after `latency`, and a directory
/// with the repository's catalog.
pub async fn slow_sim(contacts: u64, latency: Duration) -> (SimHandle, tempfile::TempDir) {
    let sim = simulator::start(
        SimConfig {
            contacts: contacts as usize,
            latency,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("catalog")).expect("mkdir");
    copy_dir(&repo_catalog(), &dir.path().join("catalog"));
    (sim, dir)
}

fn written(sim: &SimHandle) -> u64 {
    sim.stats()["sandbox"]["records_written"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_leaves_an_interrupted_run_with_its_records() {
    let (sim, dir) = slow_sim(CONTACTS, Duration::from_millis(300)).await;

    let mut first = serve(dir.path(), &sim).await;
    let client = connect_port(first.port).await;
    rows(
        &client,
        "SELECT cron.schedule('crash', '0 3 * * *', $$UPDATE sandbox.contact SET title = 'Crashed'$$)",
    )
    .await;
    let port = first.port;
    let run = tokio::spawn(async move {
        let client = connect_port(port).await;
        client.simple_query("SELECT cron.run('crash')").await
    });
    until_sim(&sim, "records_written", 200).await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reap");
    assert!(run.await.expect("task").is_err(), "the server died mid-run");
    let at_kill = written(&sim);
    assert!(
        at_kill < CONTACTS,
        "killed before the last batch: {at_kill}"
    );

    let second = serve(dir.path(), &sim).await;
    let client = connect_port(second.port).await;
    let runs = rows(
        &client,
        "SELECT status, return_message, end_time IS NOT NULL FROM cron.job_run_details",
    )
    .await;
    assert_eq!(runs.len(), 1, "one run, not executed again: {runs:?}");
    assert_eq!(runs[0][0].as_deref(), Some("failed"));
    assert!(
        runs[0][1]
            .as_deref()
            .unwrap_or("")
            .starts_with("interrupted"),
        "{runs:?}"
    );
    assert_eq!(runs[0][2].as_deref(), Some("t"));

    // Every record the org received is logged: written ones as updated,
    // the batch in flight at the kill as unknown (it may or may not have
    // reached the org); nothing is lost, nothing invented.
    let count = |status: &'static str| {
        let client = &client;
        async move {
            let r = rows(
                client,
                &format!("SELECT count(*) FROM cron.job_run_records WHERE status = '{status}'"),
            )
            .await;
            r[0][0]
                .as_deref()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        }
    };
    let (updated, unknown) = (count("updated").await, count("unknown").await);
    let now = written(&sim);
    // The kill comes as soon as the org has the first batch, possibly
    // before its answer is stored: that batch is then `unknown`, never lost.
    assert!(
        updated + unknown >= at_kill,
        "the {at_kill} records the org had at the kill are logged: updated {updated}, unknown {unknown}"
    );
    assert!(
        updated <= now && now <= updated + unknown,
        "updated {updated}, unknown {unknown}, received by the org {now}"
    );
    assert!(unknown <= 200, "at most one batch in flight: {unknown}");
    let counts = rows(
        &client,
        "SELECT rows_matched, rows_updated, rows_unknown FROM cron.job_run_details",
    )
    .await;
    assert_eq!(
        counts[0],
        vec![
            Some((updated + unknown).to_string()),
            Some(updated.to_string()),
            Some(unknown.to_string())
        ]
    );
    assert_eq!(
        written(&sim),
        now,
        "nothing was written again after the restart"
    );
}

/// The exit status and output of `child` once it ends.
pub async fn wait_output(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the child runs")
}

/// `sfsql jobs run NAME` over `dir`'s catalog and state directory, its
/// stderr kept for the test to read.
pub fn jobs_run(dir: &Path, sim: &SimHandle, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sfsql"))
        .args(["jobs", "--catalog"])
        .arg(dir.join("catalog"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["run", name])
        .env("SFSQL_SIM_URL", sim.base_url())
        .env("SFSQL_DEMO_CLIENT_ID", DEMO_CLIENT_ID)
        .env("SFSQL_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sfsql jobs run")
}

/// A run going in one process (`sfsql jobs run`) is not another process's
/// crash: an `sfsql serve` started on the same state directory meanwhile
/// takes the scheduler lock and recovers interrupted runs, but leaves this
/// one `running`; it then ends `succeeded`, written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_leaves_the_runs_of_another_live_process_alone() {
    const MANY: u64 = 2000;
    // Ten Collections batches of a second each: the run goes on long
    // after the second process is up.
    let (sim, dir) = slow_sim(MANY, Duration::from_millis(1000)).await;
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    std::fs::write(
        dir.path().join("sql/slow.sql"),
        "-- schedule: 0 3 * * *\nUPDATE sandbox.contact SET title = 'Slow'\n",
    )
    .expect("job file");

    let cli = jobs_run(dir.path(), &sim, "slow");
    until_sim(&sim, "records_written", 200).await;
    let server = serve(dir.path(), &sim).await;
    let client = connect_port(server.port).await;
    let runs = rows(
        &client,
        "SELECT runid, status, jobname, trigger FROM cron.job_run_details",
    )
    .await;
    assert!(
        written(&sim) < MANY,
        "the run was still writing when the server was up"
    );
    assert_eq!(
        runs,
        vec![vec![
            Some("1".into()),
            Some("running".into()),
            Some("slow".into()),
            Some("manual".into())
        ]],
        "the run of the live `sfsql jobs run` is left running"
    );

    let out = wait_output(cli).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = rows(
        &client,
        "SELECT status, return_message FROM cron.job_run_details",
    )
    .await;
    assert_eq!(
        runs,
        vec![vec![
            Some("succeeded".into()),
            Some(format!("UPDATE {MANY}"))
        ]]
    );
    assert_eq!(written(&sim), MANY, "each record written once");
}

/// Poll `sql`'s first cell until it is `want` (at most 150 s).
async fn until_cell(client: &tokio_postgres::Client, sql: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let r = rows(client, sql).await;
        if r.first().and_then(|r| r[0].as_deref()) == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql} never gave {want}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kill -9` while a scheduled run waits for its delay: the run is stored
/// `waiting`, the next `sfsql serve` takes it over and runs it once when
/// due; the org gets each record once. The slot is the next whole minute
/// of the real clock (the binary has no other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_run_waits_for_its_delay_then_it_runs_once() {
    use chrono::{DurationRound, Timelike};
    let (sim, dir) = slow_sim(CONTACTS, Duration::ZERO).await;
    let mut first = serve(dir.path(), &sim).await;
    let client = connect_port(first.port).await;
    let slot = (chrono::Utc::now() + chrono::Duration::seconds(64))
        .duration_trunc(chrono::Duration::minutes(1))
        .expect("minute");
    rows(
        &client,
        &format!(
            "SELECT cron.schedule('waits', '{} {} * * *', $$UPDATE sandbox.contact SET title = 'Waited'$$, delay := '15s')",
            slot.minute(),
            slot.hour()
        ),
    )
    .await;
    until_cell(
        &client,
        "SELECT status FROM cron.job_run_details",
        "waiting",
    )
    .await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reap");
    assert_eq!(written(&sim), 0, "killed before the run started");

    let second = serve(dir.path(), &sim).await;
    let client = connect_port(second.port).await;
    until_cell(
        &client,
        "SELECT status FROM cron.job_run_details",
        "succeeded",
    )
    .await;
    let runs = rows(
        &client,
        "SELECT runid, trigger, attempt, return_message, start_time >= not_before
         FROM cron.job_run_details",
    )
    .await;
    assert_eq!(
        runs,
        vec![vec![
            Some("1".into()),
            Some("schedule".into()),
            Some("1".into()),
            Some(format!("UPDATE {CONTACTS}")),
            Some("t".into()),
        ]],
        "one run, of the slot, run once"
    );
    assert_eq!(written(&sim), CONTACTS, "each record written once");
}
