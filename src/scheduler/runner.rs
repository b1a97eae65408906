//! Running one job (begin the run without overlap, execute its command
//! through the engine as `Origin::Job`, finish the run with its outcome)
//! and the loop that does it for due slots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::schedule::{TimerJob, Timers, parse_schedule};
use super::{JobRef, Scheduler, SchedulerError};
use crate::session::{Origin, StatementResult};
use crate::state::{BeginRun, JobRow, NewRun, RunStatus, Trigger};

/// The longest the loop sleeps, so jobs changed by another process are
/// seen within it.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunDone {
    pub runid: i64,
    pub jobname: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub message: String,
}

/// `UPDATE 12; UPDATE 0`: each statement's command tag and count.
fn tags(results: &[StatementResult]) -> String {
    results
        .iter()
        .map(|r| match r.rows_affected {
            Some(n) => format!("{} {n}", r.tag),
            None => r.tag.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Scheduler {
    /// Run `job` now. `Ok(None)`: another server already ran this slot.
    pub async fn run_job(
        &self,
        job: &JobRow,
        trigger: Trigger,
        slot: Option<DateTime<Utc>>,
        dry_run: bool,
    ) -> Result<Option<RunDone>, SchedulerError> {
        let begin = self.store.begin_run(
            &NewRun {
                jobid: job.jobid,
                jobname: job.jobname.clone(),
                username: job.username.clone(),
                command: job.command.clone(),
                trigger,
                dry_run,
                scheduled_for: slot,
            },
            self.clock.now(),
        )?;
        let runid = match begin {
            BeginRun::AlreadyClaimed => return Ok(None),
            BeginRun::Skipped { runid, running } => {
                return Err(SchedulerError::StillRunning {
                    job: job.jobname.clone(),
                    running,
                    skipped: runid,
                });
            }
            BeginRun::Started { runid } => runid,
        };
        let mut settings = HashMap::new();
        if dry_run {
            settings.insert("sfsql.dry_run".to_string(), "on".to_string());
        }
        let origin = Origin::Job {
            job_id: job.jobid,
            run_id: runid,
        };
        let result = self
            .engine
            .execute_sql(&job.command, &mut settings, &origin)
            .await;
        let (status, message) = match &result {
            Ok(results) => (RunStatus::Succeeded, tags(results)),
            Err(e) => (RunStatus::Failed, e.to_string()),
        };
        self.store
            .finish_run(runid, status, &message, self.clock.now())?;
        // No receiver is fine: nobody is waiting.
        let _ = self.done.send(RunDone {
            runid,
            jobname: job.jobname.clone(),
            trigger,
            status,
            message: message.clone(),
        });
        if let Err(e) = result {
            return Err(SchedulerError::RunFailed {
                job: job.jobname.clone(),
                runid,
                message,
                sqlstate: e.sqlstate(),
            });
        }
        Ok(Some(RunDone {
            runid,
            jobname: job.jobname.clone(),
            trigger,
            status,
            message,
        }))
    }

    /// "Run now": `cron.run(name)` and `sfsql jobs run NAME`; returns
    /// when the run is done.
    pub async fn run_now(&self, job: &JobRef, dry_run: bool) -> Result<RunDone, SchedulerError> {
        let row = self.job(job)?;
        self.run_job(&row, Trigger::Manual, None, dry_run)
            .await?
            .ok_or_else(|| SchedulerError::BadCall("the run was not started".into()))
    }

    /// One tick: start every due slot (each in its own task, so a long run
    /// never delays another job's slot). Returns the slots started.
    pub fn tick(self: &Arc<Self>, timers: &mut Timers) -> Vec<(i64, DateTime<Utc>)> {
        let jobs = match self.store.jobs() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "scheduler cannot read jobs");
                return vec![];
            }
        };
        let timer_jobs: Vec<TimerJob> = jobs
            .iter()
            .map(|j| TimerJob {
                jobid: j.jobid,
                key: format!("{}|{}|{}", j.schedule, j.timezone, j.active),
                schedule: j
                    .active
                    .then(|| parse_schedule(&j.schedule, &j.timezone).ok())
                    .flatten(),
            })
            .collect();
        let due = timers.due(&timer_jobs, self.clock.now());
        for (jobid, slot) in &due {
            let Some(job) = jobs.iter().find(|j| j.jobid == *jobid).cloned() else {
                continue;
            };
            let me = Arc::clone(self);
            let slot = *slot;
            tokio::spawn(async move {
                match me.run_job(&job, Trigger::Schedule, Some(slot), false).await {
                    Ok(Some(done)) => tracing::info!(
                        job = %job.jobname, runid = done.runid, message = %done.message, "run finished"
                    ),
                    Ok(None) => tracing::debug!(job = %job.jobname, "slot taken by another server"),
                    Err(e) => tracing::warn!(job = %job.jobname, error = %e, "run did not succeed"),
                }
            });
        }
        due
    }
}

/// The scheduler loop: tick, then sleep until the next due slot (at most
/// [`MAX_SLEEP`]) or until woken.
pub async fn run_loop(scheduler: Arc<Scheduler>) {
    let mut timers = Timers::default();
    loop {
        scheduler.tick(&mut timers);
        scheduler.ticks.send_modify(|n| *n += 1);
        let now = scheduler.clock.now();
        let sleep = timers
            .earliest()
            .and_then(|t| (t - now).to_std().ok())
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = scheduler.wake.notified() => {}
        }
    }
}

/// For `cron.run` by name or id.
pub fn job_ref(arg: &str) -> JobRef {
    match arg.parse::<i64>() {
        Ok(id) => JobRef::Id(id),
        Err(_) => JobRef::Name(arg.to_string()),
    }
}
