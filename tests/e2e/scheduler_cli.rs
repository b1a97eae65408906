//! `sfsql jobs run NAME` (the binary) and its progress: off a terminal
//! (a pipe, as in CI and logs) stderr has the plain progress lines it
//! always had; on a terminal (a pseudo-TTY from util-linux `script`) a bar
//! is redrawn in place instead, and its last state stays above the
//! summary.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sfsql::simulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimHandle};

use crate::scheduler_crash::{jobs_run, slow_sim};

/// 1,000 contacts and a job that changes every one: five Collections
/// calls of 200.
async fn titles_job() -> (SimHandle, tempfile::TempDir) {
    let (sim, dir) = slow_sim(1000, Duration::ZERO).await;
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    std::fs::write(
        dir.path().join("sql/titles.sql"),
        "-- schedule: 0 3 * * *\nUPDATE sandbox.contact SET title = 'From the CLI'\n",
    )
    .expect("job file");
    (sim, dir)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_off_a_terminal_prints_its_plain_progress_lines() {
    let (sim, dir) = titles_job().await;
    let child = jobs_run(dir.path(), &sim, "titles");
    let out: Output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("sfsql jobs run");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    // Besides the server's log lines (tracing, INFO and up).
    assert_eq!(
        stderr
            .lines()
            .filter(|l| !l.contains("  INFO sfsql::"))
            .collect::<Vec<_>>(),
        [
            "progress: 200 of 1000 records sent (20%) in 1 call",
            "progress: 400 of 1000 records sent (40%) in 2 calls",
            "progress: 600 of 1000 records sent (60%) in 3 calls",
            "progress: 800 of 1000 records sent (80%) in 4 calls",
            "progress: 1000 of 1000 records sent (100%) in 5 calls",
        ],
        "{stderr}"
    );
    assert!(!stderr.contains(['\r', '\x1b']), "no bar off a terminal");
    let summary: Vec<&str> = stdout.lines().collect();
    assert_eq!(summary.len(), 2, "{stdout}");
    assert!(summary[0].starts_with("run  start"), "{stdout}");
    assert!(
        summary[1].contains("succeeded") && summary[1].contains("1000 updated"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_on_a_terminal_draws_a_bar_in_place() {
    let (sim, dir) = titles_job().await;
    let command = format!(
        "{} jobs --catalog {} --state-dir {} run titles",
        env!("CARGO_BIN_EXE_sfsql"),
        dir.path().join("catalog").display(),
        dir.path().join("state").display(),
    );
    let base_url = sim.base_url();
    let out = tokio::task::spawn_blocking(move || {
        // `script` runs the command on a pseudo-terminal and copies what
        // it shows (stdout and stderr) to its stdout.
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("SFSQL_SIM_URL", base_url)
            .env("SFSQL_DEMO_CLIENT_ID", DEMO_CLIENT_ID)
            .env("SFSQL_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux) runs")
    })
    .await
    .expect("join");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert!(
        !shown.contains("progress: "),
        "the bar, not the lines: {shown:?}"
    );
    // Each drawing erases the line first; the last one is the whole write.
    let drawings: Vec<&str> = shown
        .split("\r\x1b[2K")
        .skip(1)
        .map(|d| d.lines().next().unwrap_or(""))
        .collect();
    assert!(drawings.len() >= 2, "{shown:?}");
    let last = drawings[drawings.len() - 1];
    assert!(
        last.starts_with(
            "titles [########################] 1000/1000 sent · 1000 succeeded · 0 failed · "
        ) && last.contains(" records/s · "),
        "{shown:?}"
    );
    // The summary follows the bar.
    let after = &shown[shown.rfind(last).expect("last drawing") + last.len()..];
    assert!(
        after.contains("run  start") && after.contains("succeeded"),
        "{shown:?}"
    );
}
