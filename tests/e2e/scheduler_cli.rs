//! `sfsql jobs run NAME` (the binary) and its progress: off a terminal
//! (a pipe, as in CI and logs) stderr has the plain progress lines it
//! always had; on a terminal (a pseudo-TTY from util-linux `script`) a bar
//! is redrawn in place instead, and its last state stays above the
//! summary.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};

use sfsql::simulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SimHandle};

use crate::common::fail_records;
use crate::scheduler_crash::{jobs_run, slow_sim, wait_output};

/// 1,000 contacts and a job that changes every one: five Collections
/// calls of 200.
async fn titles_job() -> (SimHandle, tempfile::TempDir) {
    titles_job_of(1000, "From the CLI").await
}

/// `contacts` contacts and job `titles` (daily at 03:00 UTC) setting
/// every one's title to `title`.
async fn titles_job_of(contacts: u64, title: &str) -> (SimHandle, tempfile::TempDir) {
    let (sim, dir) = slow_sim(contacts, Duration::ZERO).await;
    std::fs::create_dir_all(dir.path().join("sql")).expect("mkdir");
    std::fs::write(
        dir.path().join("sql/titles.sql"),
        format!("-- schedule: 0 3 * * *\nUPDATE sandbox.contact SET title = '{title}'\n"),
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
    let out = wait_output(jobs_run(dir.path(), &sim, "titles")).await;
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

/// `sfsql jobs ...` over `dir`'s catalog and state directory and `sim`:
/// its exit status, stdout and stderr.
async fn jobs(dir: &std::path::Path, sim: &SimHandle, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sfsql"));
    command
        .args(["jobs", "--catalog"])
        .arg(dir.join("catalog"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env("SFSQL_SIM_URL", sim.base_url())
        .env("SFSQL_DEMO_CLIENT_ID", DEMO_CLIENT_ID)
        .env("SFSQL_DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("sfsql jobs");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The first time after `now` that the clock reads `hour`:00 in `tz`, as
/// the CLI prints it.
fn next_at(now: DateTime<Utc>, hour: u32, tz: chrono_tz::Tz) -> String {
    let local = now.with_timezone(&tz);
    let today = local.date_naive().and_hms_opt(hour, 0, 0).expect("time");
    let slot = [today, today + chrono::Duration::days(1)]
        .into_iter()
        .filter_map(|t| t.and_local_timezone(tz).single())
        .find(|t| *t > now)
        .expect("a next slot");
    slot.with_timezone(&Utc)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// What a user sees of their jobs: `jobs list` has every job file as soon
/// as it is written (no server needed), with its schedule, state, next run
/// and last run; `jobs run --dry-run` writes nothing and is logged as a
/// dry run; `jobs logs NAME` has each run with its counts and
/// message; `--errors` adds each failed record with its code and message,
/// and nothing of the records that went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_and_logs_show_jobs_runs_and_failed_records() {
    let (sim, dir) = titles_job_of(200, "Listed").await;
    std::fs::write(
        dir.path().join("sql/paris.sql"),
        "-- schedule: 0 9 * * *\n-- timezone: Europe/Paris\nSELECT 1 AS one\n",
    )
    .expect("job file");

    // Before any run: both jobs, next runs in UTC, no last run.
    let now = Utc::now();
    let (ok, list, err) = jobs(dir.path(), &sim, &["list"]).await;
    assert!(ok, "{list}{err}");
    let (titles_next, paris_next) = (
        next_at(now, 3, chrono_tz::UTC),
        next_at(now, 9, chrono_tz::Europe::Paris),
    );
    let lines: Vec<Vec<&str>> = list
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            vec!["id", "job", "schedule", "state", "next run", "last run"],
            vec![
                "1",
                "paris",
                "0 9 * * * (Europe/Paris)",
                "active",
                &paris_next,
                "-"
            ],
            vec![
                "2",
                "titles",
                "0 3 * * * (UTC)",
                "active",
                &titles_next,
                "-"
            ],
        ],
        "{list}"
    );

    // A dry run: what would change, nothing written.
    let (ok, out, err) = jobs(dir.path(), &sim, &["run", "titles", "--dry-run"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.contains("succeeded (dry run)") && l.contains("200 matched")),
        "{out}"
    );
    assert_eq!(sim.stats()["sandbox"]["records_written"].as_u64(), Some(0));

    // A run where the org refuses 3 records of 200.
    fail_records(&sim.base_url(), "sandbox", 3).await;
    let out = wait_output(jobs_run(dir.path(), &sim, "titles")).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let (ok, list, err) = jobs(dir.path(), &sim, &["list"]).await;
    assert!(ok, "{list}{err}");
    let titles = list.lines().nth(2).expect("titles");
    assert!(titles.starts_with("2   titles"), "{list}");
    assert!(
        titles.ends_with(" succeeded")
            && titles.contains(&Utc::now().format("%Y-%m-%d ").to_string()),
        "the last run, when and how: {list}"
    );

    // The runs: start, runtime, status, trigger, counts, message.
    let (ok, logs, err) = jobs(dir.path(), &sim, &["logs", "titles"]).await;
    assert!(ok, "{logs}{err}");
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 3, "{logs}");
    assert!(lines[0].starts_with("run  start"), "{logs}");
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("succeeded (dry run)"),
        "{logs}"
    );
    for part in [
        "succeeded",
        "manual",
        "200 matched, 197 updated, 0 unchanged, 3 failed",
        "UPDATE 197",
    ] {
        assert!(lines[2].contains(part), "{part:?} in {logs}");
    }

    // --errors: the same, then one line per failed record.
    let (ok, errors, err) = jobs(dir.path(), &sim, &["logs", "titles", "--errors"]).await;
    assert!(ok, "{errors}{err}");
    assert!(errors.starts_with(&logs), "{errors}");
    let failed: Vec<&str> = errors[logs.len()..].lines().collect();
    assert_eq!(failed.len(), 3, "{errors}");
    let mut ids = std::collections::BTreeSet::new();
    for line in &failed {
        let (head, rest) = line
            .split_once(": FIELD_CUSTOM_VALIDATION_EXCEPTION: ")
            .expect(line);
        assert!(head.starts_with("run 2: "), "{line}");
        assert!(!rest.trim().is_empty(), "a message: {line}");
        ids.insert(head.to_string());
    }
    assert_eq!(ids.len(), 3, "three different records: {errors}");

    // A job that does not exist: an error saying how to see the jobs.
    let (ok, out, err) = jobs(dir.path(), &sim, &["logs", "nosuch"]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains(
            "job nosuch does not exist; SELECT jobid, jobname FROM cron.job lists the jobs"
        ),
        "{err}"
    );
}
