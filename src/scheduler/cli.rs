//! `sfsql jobs list | run | logs`: the same jobs and run tables as the
//! `cron.*` SQL interface, rendered as plain text for a terminal.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{JobRef, Scheduler, SchedulerError, schedule};
use crate::state::{JobRow, RunRow, Store};

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header.to_vec(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// `sfsql jobs list`: every job with its next run and last outcome.
pub fn list(store: &Store, now: DateTime<Utc>) -> Result<String, SchedulerError> {
    let jobs = store.jobs()?;
    if jobs.is_empty() {
        return Ok("no jobs: add sql/NAME.sql with a '-- schedule: 0 9 * * *' header, or SELECT cron.schedule(...)\n".into());
    }
    let last = store.last_runs()?;
    let rows = jobs
        .iter()
        .map(|j| {
            let next = j
                .active
                .then(|| schedule::parse_schedule(&j.schedule, &j.timezone).ok())
                .flatten()
                .and_then(|s| s.next_after(now));
            let last = last.iter().find(|r| r.jobid == Some(j.jobid));
            vec![
                j.jobid.to_string(),
                j.jobname.clone(),
                format!("{} ({})", j.schedule, j.timezone),
                state(j),
                when(next),
                last.map(|r| format!("{} {}", when(Some(r.start_time)), r.status))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    Ok(table(
        &["id", "job", "schedule", "state", "next run", "last run"],
        rows,
    ))
}

/// `active`; `inactive` (`cron.alter_job(id, active := false)`); or
/// paused until a connection's login, saying what to run.
fn state(job: &JobRow) -> String {
    match (&job.paused, job.active) {
        (_, false) => "inactive".into(),
        (Some(p), true) => format!("paused until `sfsql login {}`", p.connection),
        (None, true) => "active".into(),
    }
}

fn run_line(r: &RunRow) -> Vec<String> {
    let duration = r
        .end_time
        .map(|e| {
            format!(
                "{:.1}s",
                (e - r.start_time).num_milliseconds() as f64 / 1000.0
            )
        })
        .unwrap_or_else(|| "-".into());
    vec![
        r.runid.to_string(),
        when(Some(r.start_time)),
        duration,
        format!("{}{}", r.status, if r.dry_run { " (dry run)" } else { "" }),
        r.trigger.clone(),
        format!(
            "{} matched, {} updated, {} unchanged, {} failed",
            r.counts[0], r.counts[1], r.counts[5], r.counts[7]
        ),
        r.return_message.clone().unwrap_or_default(),
    ]
}

/// `sfsql jobs logs NAME [--errors]`: the job's runs, newest last; with
/// `errors`, each failed record of those runs.
pub fn logs(store: &Store, name: &str, errors: bool) -> Result<String, SchedulerError> {
    let runs = store.runs(Some(name))?;
    if runs.is_empty() && store.job_by_name(name)?.is_none() {
        return Err(SchedulerError::State(crate::state::StateError::NoSuchJob(
            name.to_string(),
        )));
    }
    let mut out = table(
        &[
            "run", "start", "runtime", "status", "trigger", "records", "message",
        ],
        runs.iter().map(run_line).collect(),
    );
    if errors {
        for r in &runs {
            for rec in store
                .records(Some(r.runid))?
                .iter()
                .filter(|x| x.status == "failed")
            {
                let _ = writeln!(
                    out,
                    "run {}: {} {} (key {}): {}: {}{}",
                    r.runid,
                    rec.sobject,
                    rec.record_id,
                    rec.match_key.as_deref().unwrap_or("-"),
                    rec.error_code.as_deref().unwrap_or("ERROR"),
                    rec.message.as_deref().unwrap_or(""),
                    rec.fields
                        .as_deref()
                        .map(|f| format!(" [{f}]"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(out)
}

/// `sfsql jobs run NAME [--dry-run]`: run now, in this process, with the
/// job's retries: this process has no scheduler loop, so a retriable
/// failure's retry is taken off the queue and run here after its backoff.
/// Each retry is announced on stderr. On a terminal, the writes' progress
/// is a bar redrawn in place on stderr; elsewhere (pipes, CI, logs) it is
/// one plain line per request.
pub async fn run(
    scheduler: &Scheduler,
    name: &str,
    dry_run: bool,
) -> Result<String, SchedulerError> {
    use std::io::IsTerminal;
    let terminal =
        std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    if !terminal {
        return run_retrying(scheduler, name, dry_run, tokio::time::sleep, |line| {
            eprintln!("{line}")
        })
        .await;
    }
    // Erase the line the cursor is on: the bar, redrawn in place.
    const CLEAR: &str = "\r\x1b[2K";
    let (tx, snapshots) = tokio::sync::watch::channel(Default::default());
    let start = std::time::Instant::now();
    let draw = || {
        use std::io::Write;
        let line = crate::session::progress::bar_line(name, &snapshots.borrow(), start.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR}{line}");
        let _ = err.flush();
    };
    // The bar says what the progress lines say; other lines (retries)
    // go above it.
    let work = crate::session::progress::scope_bar(
        tx,
        run_retrying(scheduler, name, dry_run, tokio::time::sleep, |line| {
            if !line.starts_with("progress: ") {
                eprintln!("{CLEAR}{line}");
            }
        }),
    );
    tokio::pin!(work);
    let mut redraw = tokio::time::interval(std::time::Duration::from_millis(200));
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = redraw.tick() => draw(),
        }
    };
    // The bar's last state stays above the summary.
    draw();
    eprintln!();
    result
}

/// [`run`] with the wait between attempts and the announcements given
/// (tests move an injected clock instead of sleeping).
pub async fn run_retrying<S, F>(
    scheduler: &Scheduler,
    name: &str,
    dry_run: bool,
    sleep: S,
    mut say: impl FnMut(String),
) -> Result<String, SchedulerError>
where
    S: FnMut(std::time::Duration) -> F,
    F: std::future::Future<Output = ()>,
{
    // This process has no loop: it starts its retries itself.
    scheduler
        .keeps_retries
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // The writes' progress lines (what psql shows as NOTICEs) and the
    // retry announcements come through one channel while the runs go on.
    let (tx, mut rx) = crate::session::progress::channel();
    let work =
        crate::session::progress::scope(tx.clone(), attempts(scheduler, name, dry_run, sleep, tx));
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            Some(line) = rx.recv() => say(line),
        }
    };
    while let Ok(line) = rx.try_recv() {
        say(line);
    }
    let (text, outcome) = result?;
    match outcome {
        Ok(_) => Ok(text),
        Err(e) => {
            say(text);
            Err(e)
        }
    }
}

/// Every attempt of one `sfsql jobs run`: the table of its runs and how the
/// last one ended.
async fn attempts<S, F>(
    scheduler: &Scheduler,
    name: &str,
    dry_run: bool,
    mut sleep: S,
    say: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<(String, Result<(), SchedulerError>), SchedulerError>
where
    S: FnMut(std::time::Duration) -> F,
    F: std::future::Future<Output = ()>,
{
    let job = JobRef::Name(name.to_string());
    let mut outcome = scheduler.run_now(&job, dry_run).await;
    let mut runids = vec![];
    loop {
        let runid = match &outcome {
            Ok(done) => done.runid,
            Err(SchedulerError::RunFailed { runid, .. }) => *runid,
            Err(_) => break,
        };
        runids.push(runid);
        let row = scheduler.job(&job)?;
        let Some(retry) = scheduler.store().my_waiting_retry(row.jobid)? else {
            break;
        };
        let wait = (retry.not_before - scheduler.clock.now())
            .to_std()
            .unwrap_or_default();
        let _ = say.send(format!(
            "run {runid} failed; retry {} of {} in {} s",
            retry.attempt - 1,
            row.options.retries,
            wait.as_secs()
        ));
        sleep(wait).await;
        outcome = match scheduler.run_waiting(&row, &retry).await {
            Ok(Some(done)) => Ok(done),
            Ok(None) => break,
            Err(e) => Err(e),
        };
    }
    let mut lines = vec![];
    for runid in runids {
        if let Some(r) = scheduler.store().run(runid)? {
            lines.push(run_line(&r));
        }
    }
    let text = table(
        &[
            "run", "start", "runtime", "status", "trigger", "records", "message",
        ],
        lines,
    );
    match outcome {
        Ok(_) => Ok((text, Ok(()))),
        Err(e @ SchedulerError::RunFailed { .. }) => Ok((text, Err(e))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::state::{JobOptions, JobSource, JobSpec};

    #[test]
    fn list_says_whether_each_job_runs_and_when() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let now = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("t");
        let id = |name: &str, schedule: &str| {
            store
                .upsert_job(
                    &JobSpec {
                        name: name.into(),
                        schedule: schedule.into(),
                        command: "UPDATE production.contact SET title = 'x'".into(),
                        timezone: "UTC".into(),
                        source: JobSource::Sql,
                        username: "demo".into(),
                        options: JobOptions::default(),
                    },
                    now,
                )
                .expect("job")
        };
        id("daily", "0 9 * * *");
        let off = id("off", "0 9 * * *");
        let paused = id("paused", "30 9 * * *");
        store
            .alter_job(off, None, None, Some(false), None, now)
            .expect("deactivate");
        store
            .pause_jobs(&[paused], "production", "paused: ...", now)
            .expect("pause");
        assert_eq!(
            list(&store, now).expect("list"),
            "id  job     schedule          state                                  next run                 last run\n\
             1   daily   0 9 * * * (UTC)   active                                 2026-03-02 09:00:00 UTC  -\n\
             2   off     0 9 * * * (UTC)   inactive                               -                        -\n\
             3   paused  30 9 * * * (UTC)  paused until `sfsql login production`  2026-03-02 09:30:00 UTC  -\n"
        );
    }
}
