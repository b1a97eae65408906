//! Running one job (begin the run without overlap, execute its command
//! through the engine as `Origin::Job`, finish the run with its outcome)
//! and the loop that does it: due slots after their delay, retries after
//! their backoff, timeouts. Waiting runs are stored (status `waiting`, see
//! [`crate::state::WaitingRun`]), so a restart starts each once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::options::{backoff_secs, show_duration, slot_delay};
use super::schedule::{TimerJob, Timers, parse_schedule};
use super::{JobRef, Scheduler, SchedulerError};
use crate::salesforce::SalesforceError;
use crate::session::{Origin, StatementError, StatementResult, StopSignal};
use crate::state::{BeginRun, JobRow, NewRun, RunStatus, StartedBy, Trigger, WaitingRun};

/// The longest the loop sleeps, so jobs changed by another process are
/// seen within it.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// How long a run past its timeout may take to stop at a request boundary
/// (a Collections call in flight, a Bulk job's results) before it is
/// dropped.
const STOP_GRACE: Duration = Duration::from_secs(120);

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

/// A run of `job` as the store takes it.
fn new_run(
    job: &JobRow,
    trigger: Trigger,
    dry_run: bool,
    scheduled_for: Option<DateTime<Utc>>,
    attempt: u32,
) -> NewRun {
    NewRun {
        jobid: job.jobid,
        jobname: job.jobname.clone(),
        username: job.username.clone(),
        command: job.command.clone(),
        trigger,
        dry_run,
        scheduled_for,
        attempt,
    }
}

/// The run id of a run the store started; an error saying which run still
/// goes when it was skipped; `None` when another process took it.
fn begun(job: &JobRow, begin: BeginRun) -> Result<Option<i64>, SchedulerError> {
    match begin {
        BeginRun::AlreadyClaimed => Ok(None),
        BeginRun::Skipped { runid, running } => Err(SchedulerError::StillRunning {
            job: job.jobname.clone(),
            running,
            skipped: runid,
        }),
        BeginRun::Started { runid } => Ok(Some(runid)),
    }
}

/// A run going in this process.
pub struct Running {
    runid: i64,
    deadline: Option<DateTime<Utc>>,
    cancel: Option<oneshot::Sender<()>>,
}

/// The Salesforce error behind `e`, wherever it sits: the statement's own
/// error, behind a write's, or inside a lookup's DataFusion error. The
/// statement's own is matched first: its `#[error(transparent)]` variants
/// forward `source()` past the error they hold.
pub(super) fn salesforce_cause(e: &StatementError) -> Option<&SalesforceError> {
    if let StatementError::Salesforce(sf) = e {
        return Some(sf);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(sf) = err.downcast_ref::<SalesforceError>() {
            return Some(sf);
        }
        cur = err.source();
    }
    None
}

/// Whether trying the same run again may succeed: a lost connection, a
/// 5xx or lock contention at Salesforce, wherever in the error it sits.
/// Not an error the same statement meets again (validation, a statement
/// Salesforce refuses as written) nor the org's request limit
/// (REQUEST_LIMIT_EXCEEDED, 53400): that is counted over a rolling 24
/// hours, which a backoff of at most 15 minutes cannot outwait, so the
/// job's next slot is its retry.
pub fn is_retriable(e: &StatementError) -> bool {
    matches!(
        e.sqlstate(),
        "08006" | "08001" | "40001" | "40P01" | "55P03"
    ) || salesforce_cause(e).is_some_and(SalesforceError::is_retriable)
}

impl Scheduler {
    /// Log a manual run of `job` as `running`, returning its id; while
    /// another run of the job goes, it is logged `skipped` and the error
    /// says which run goes.
    fn begin_manual_run(&self, job: &JobRow, dry_run: bool) -> Result<i64, SchedulerError> {
        let begin = self.store.begin_run(
            &new_run(job, Trigger::Manual, dry_run, None, 1),
            self.clock.now(),
        )?;
        // Only a scheduled slot can be claimed by another process.
        begun(job, begin)?.ok_or_else(|| SchedulerError::BadCall("the run was not started".into()))
    }

    /// Execute the begun run `runid` and finish it with its outcome.
    async fn execute_run(
        &self,
        job: &JobRow,
        runid: i64,
        trigger: Trigger,
        dry_run: bool,
        attempt: u32,
    ) -> Result<RunDone, SchedulerError> {
        let timeout = job.options.timeout_secs;
        let (cancel, cancelled) = oneshot::channel();
        self.running_runs().push(Running {
            runid,
            deadline: timeout.map(|t| self.clock.now() + chrono::Duration::seconds(t)),
            cancel: Some(cancel),
        });
        let _ = self.started.send(runid);
        let mut settings = HashMap::new();
        if dry_run {
            settings.insert("sfsql.dry_run".to_string(), "on".to_string());
        }
        let stop = StopSignal::default();
        let origin = Origin::Job {
            job_id: job.jobid,
            run_id: runid,
            stop: stop.clone(),
        };
        // Timed out by the loop (the scheduler's clock passed the deadline)
        // or by a plain timer, whichever comes first. The statement is
        // asked to stop, not dropped: a write finishes its request in
        // flight and logs the rest as skipped. Only past STOP_GRACE is it
        // dropped, its records in flight then staying `unknown` in the log.
        let real_timeout = Duration::from_secs(timeout.unwrap_or(0).max(0) as u64);
        let exec = self
            .engine
            .execute_sql(&job.command, &mut settings, &origin);
        tokio::pin!(exec);
        let result = tokio::select! {
            r = &mut exec => Some(r),
            _ = cancelled => None,
            _ = tokio::time::sleep(real_timeout), if timeout.is_some() => None,
        };
        if result.is_none() {
            stop.stop(format!(
                "cancelled: timeout after {}",
                show_duration(timeout.unwrap_or(0))
            ));
            let _ = tokio::time::timeout(STOP_GRACE, &mut exec).await;
        }
        self.running_runs().retain(|r| r.runid != runid);
        let disconnected = match &result {
            Some(Err(e)) => super::pause::disconnected_connection(e),
            _ => None,
        };
        let (status, mut message, failure) = match &result {
            Some(Ok(results)) => (RunStatus::Succeeded, tags(results), None),
            Some(Err(e)) => (
                RunStatus::Failed,
                e.to_string(),
                Some((e.sqlstate(), is_retriable(e))),
            ),
            None => (
                RunStatus::Failed,
                format!(
                    "timeout: cancelled after {}; records written before it are in cron.job_run_records",
                    show_duration(timeout.unwrap_or(0))
                ),
                Some(("57014", false)),
            ),
        };
        let mut paused_jobs = Vec::new();
        if let Some(connection) = &disconnected {
            let reason = result
                .as_ref()
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            match self.pause_connection(connection, &reason) {
                Ok(names) if !names.is_empty() => {
                    message = format!(
                        "{message}; paused {} until `sfsql login {connection}`",
                        names.join(", ")
                    );
                    paused_jobs = names;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot pause the jobs of {connection}"),
            }
        }
        let retrying = matches!(failure, Some((_, true))) && attempt <= job.options.retries;
        if retrying {
            let at = self.clock.now() + chrono::Duration::seconds(backoff_secs(attempt));
            message = format!(
                "{message}; retry {attempt} of {} at {}",
                job.options.retries,
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            self.queue_retry(job, runid, dry_run, attempt, at);
        }
        self.store
            .finish_run(runid, status, &message, self.clock.now())?;
        let paused = disconnected.as_deref().map(|c| (c, paused_jobs.as_slice()));
        self.alert(runid, retrying, paused).await;
        // No receiver is fine: nobody is waiting.
        let _ = self.done.send(RunDone {
            runid,
            jobname: job.jobname.clone(),
            trigger,
            status,
            message: message.clone(),
        });
        if let Some((sqlstate, _)) = failure {
            return Err(SchedulerError::RunFailed {
                job: job.jobname.clone(),
                runid,
                message,
                sqlstate,
            });
        }
        Ok(RunDone {
            runid,
            jobname: job.jobname.clone(),
            trigger,
            status,
            message,
        })
    }

    /// Send the alert a finished run calls for, if alerts are set up.
    /// Awaited (bounded by the webhook's timeout) so a one-shot `sfsql
    /// jobs run` sends it before exiting; it never changes the run.
    async fn alert(&self, runid: i64, retrying: bool, paused: Option<(&str, &[String])>) {
        let Some(alerter) = &self.alerter else {
            return;
        };
        let run = match self.store.run(runid) {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(runid, error = %e, "cannot read the run to alert about");
                return;
            }
        };
        if let Some(alert) = super::alerts::alert_for(alerter.config(), &run, retrying, paused) {
            alerter.send(&alert, &run).await;
        }
    }

    fn running_runs(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        // The list stays valid if a holder panicked mid-update.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Store retry `attempt` of `job` (after run `runid` failed) as
    /// waiting until `at`: started by this process when it runs the loop
    /// or takes its own retries (`sfsql jobs run`), else by the scheduler.
    fn queue_retry(
        &self,
        job: &JobRow,
        runid: i64,
        dry_run: bool,
        attempt: u32,
        at: DateTime<Utc>,
    ) {
        let by = if self
            .keeps_retries
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            StartedBy::Me
        } else {
            StartedBy::Scheduler
        };
        let queued = self.store.queue_run(
            &new_run(job, Trigger::Retry, dry_run, None, attempt + 1),
            at,
            &format!(
                "waiting: retry {attempt} of {} after run {runid} failed",
                job.options.retries
            ),
            by,
            self.clock.now(),
        );
        if let Err(e) = queued {
            tracing::error!(job = %job.jobname, error = %e, "cannot store the retry; it will not run");
        }
        self.wake();
    }

    /// Store a run of `job` for `slot` (trigger `schedule` or `catch-up`)
    /// as waiting until `at`, claiming the slot; started by this process.
    pub(super) fn queue_slot(
        &self,
        job: &JobRow,
        trigger: Trigger,
        slot: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>, SchedulerError> {
        let now = self.clock.now();
        let message = if at > now {
            format!(
                "waiting: delay until {}",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            )
        } else {
            "waiting: due now".to_string()
        };
        Ok(self.store.queue_run(
            &new_run(job, trigger, false, Some(slot), 1),
            at,
            &message,
            StartedBy::Me,
            now,
        )?)
    }

    /// Start the stored waiting run `w` of `job` and run it to its end.
    /// `Ok(None)`: it was not waiting any more.
    pub(super) async fn run_waiting(
        &self,
        job: &JobRow,
        w: &WaitingRun,
    ) -> Result<Option<RunDone>, SchedulerError> {
        let begin = self.store.start_waiting(w.runid, self.clock.now())?;
        match begun(job, begin)? {
            None => Ok(None),
            Some(runid) => self
                .execute_run(job, runid, w.trigger, w.dry_run, w.attempt)
                .await
                .map(Some),
        }
    }

    /// "Run now": `cron.run(name)` and `sfsql jobs run NAME`; returns
    /// when the run is done. Refused while the job's `min_interval` since
    /// its last run has not passed.
    pub async fn run_now(&self, job: &JobRef, dry_run: bool) -> Result<RunDone, SchedulerError> {
        let row = self.manual_run_allowed(job)?;
        let runid = self.begin_manual_run(&row, dry_run)?;
        self.execute_run(&row, runid, Trigger::Manual, dry_run, 1)
            .await
    }

    /// "Run now" without waiting: `cron.run(name, wait := false)`. The run
    /// is logged `running` before its id comes back, then goes on in its
    /// own task; its end shows in `cron.job_run_details`.
    pub fn start_now(self: &Arc<Self>, job: &JobRef, dry_run: bool) -> Result<i64, SchedulerError> {
        let row = self.manual_run_allowed(job)?;
        let runid = self.begin_manual_run(&row, dry_run)?;
        self.spawn_run(row, runid, Trigger::Manual, dry_run, 1);
        Ok(runid)
    }

    /// Execute the begun run `runid` of `job` in its own task; its end
    /// is logged.
    fn spawn_run(
        self: &Arc<Self>,
        job: JobRow,
        runid: i64,
        trigger: Trigger,
        dry_run: bool,
        attempt: u32,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            match me.execute_run(&job, runid, trigger, dry_run, attempt).await {
                Ok(done) => tracing::info!(
                    job = %job.jobname, runid, message = %done.message, "run finished"
                ),
                Err(e) => tracing::warn!(job = %job.jobname, error = %e, "run did not succeed"),
            }
        });
    }

    /// The job, if a manual run may start now: not paused (a login since
    /// counts), and its `min_interval` since the last run has passed.
    fn manual_run_allowed(&self, job: &JobRef) -> Result<JobRow, SchedulerError> {
        let mut row = self.job(job)?;
        if row.paused.is_some() {
            // A login since the loop last looked counts already.
            self.resume_logged_in(std::slice::from_ref(&row));
            row = self.job(job)?;
        }
        if let Some(min) = row.options.min_interval_secs {
            let last = self.store.last_started_run(row.jobid)?;
            if let Some(last) = last {
                let next = last.start_time + chrono::Duration::seconds(min);
                if self.clock.now() < next {
                    return Err(SchedulerError::TooEarly {
                        job: row.jobname.clone(),
                        next,
                        min_interval: show_duration(min),
                        last: last.runid,
                        last_start: last.start_time,
                    });
                }
            }
        }
        if let Some(p) = &row.paused {
            return Err(SchedulerError::Paused {
                job: row.jobname.clone(),
                reason: p.reason.clone(),
            });
        }
        Ok(row)
    }

    /// Start the waiting run `w` (claimed here, so a next tick never
    /// starts it again) and run it in its own task.
    fn spawn_waiting(self: &Arc<Self>, job: JobRow, w: WaitingRun) {
        let runid = match self.store.start_waiting(w.runid, self.clock.now()) {
            Ok(BeginRun::Started { runid }) => runid,
            Ok(BeginRun::Skipped { runid, running }) => {
                tracing::warn!(job = %job.jobname, runid, running, "run skipped: the previous one still goes");
                return;
            }
            Ok(BeginRun::AlreadyClaimed) => return,
            Err(e) => {
                tracing::error!(job = %job.jobname, error = %e, "cannot start a waiting run");
                return;
            }
        };
        self.spawn_run(job, runid, w.trigger, w.dry_run, w.attempt);
    }

    /// One tick: queue every due slot (after its delay), start what is
    /// waiting and due (each run in its own task, so a long run never
    /// delays another job), and cancel runs past their timeout. Returns
    /// the slots that came due.
    pub fn tick(self: &Arc<Self>, timers: &mut Timers) -> Vec<(i64, DateTime<Utc>)> {
        let read_jobs = || {
            self.store
                .jobs()
                .map_err(|e| tracing::error!(error = %e, "scheduler cannot read jobs"))
        };
        let Ok(mut jobs) = read_jobs() else {
            return vec![];
        };
        if jobs.iter().any(|j| j.paused.is_some()) {
            self.resume_logged_in(&jobs);
            let Ok(again) = read_jobs() else {
                return vec![];
            };
            jobs = again;
        }
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
        let now = self.clock.now();
        let due = timers.due(&timer_jobs, now);
        for (jobid, slot) in &due {
            let Some(job) = jobs.iter().find(|j| j.jobid == *jobid) else {
                continue;
            };
            let at = *slot + chrono::Duration::seconds(slot_delay(&job.options, job.jobid, *slot));
            if let Err(e) = self.queue_slot(job, Trigger::Schedule, *slot, at) {
                tracing::error!(job = %job.jobname, error = %e, "cannot store a due run");
            }
        }
        let ready = self
            .store
            .due_waiting(now)
            .map_err(|e| tracing::error!(error = %e, "scheduler cannot read waiting runs"))
            .unwrap_or_default();
        for w in ready {
            // A job removed or deactivated while its run waited does not
            // run; a paused one logs the run as skipped, saying why.
            let skip = match jobs.iter().find(|j| j.jobid == w.jobid) {
                Some(job) if !job.active => {
                    Some("skipped: the job was deactivated while this run waited".to_string())
                }
                Some(job) => match &job.paused {
                    Some(p) => Some(p.reason.clone()),
                    None => {
                        self.spawn_waiting(job.clone(), w);
                        continue;
                    }
                },
                None => Some("skipped: the job was unscheduled while this run waited".to_string()),
            };
            if let Some(message) = skip
                && let Err(e) = self.store.skip_waiting(w.runid, &message, now)
            {
                tracing::error!(runid = w.runid, error = %e, "cannot log a skipped run");
            }
        }
        for r in self.running_runs().iter_mut() {
            if r.deadline.is_some_and(|d| d <= now)
                && let Some(cancel) = r.cancel.take()
            {
                let _ = cancel.send(());
            }
        }
        due
    }

    /// The earliest time the loop must look again: a timer, a waiting run
    /// or a timeout.
    fn next_wake(&self, timers: &Timers) -> Option<DateTime<Utc>> {
        let pending = self
            .store
            .next_waiting()
            .map_err(|e| tracing::error!(error = %e, "scheduler cannot read waiting runs"))
            .ok()
            .flatten();
        let deadline = self.running_runs().iter().filter_map(|r| r.deadline).min();
        [timers.earliest(), pending, deadline]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The scheduler loop: reload changed job files, purge old run records
/// (at start, then daily), tick, then sleep until the next due slot (at most
/// [`MAX_SLEEP`]) or until woken.
/// `files_seen`: the job files as loaded at start.
pub async fn run_loop(scheduler: Arc<Scheduler>, mut files_seen: super::files::Fingerprint) {
    let mut timers = Timers::default();
    let mut last_purge = None;
    // `start` recovered already.
    let mut last_recovery = scheduler.clock.now();
    loop {
        scheduler.reload_if_changed(&mut files_seen);
        scheduler.recover_if_due(&mut last_recovery);
        scheduler.purge_if_due(&mut last_purge).await;
        scheduler.tick(&mut timers);
        scheduler.ticks.send_modify(|n| *n += 1);
        let now = scheduler.clock.now();
        let sleep = scheduler
            .next_wake(&timers)
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

#[cfg(test)]
mod tests {
    use datafusion::error::DataFusionError;

    use super::*;
    use crate::dml::DmlError;

    fn api(status: u16, code: &str) -> SalesforceError {
        SalesforceError::Api {
            connection: "sandbox".into(),
            status,
            code: code.into(),
            message: "as Salesforce says it".into(),
        }
    }

    /// The places a Salesforce error reaches a job's run: the statement's
    /// own error, behind a write, behind a write's lookup, and inside a
    /// query's plan.
    fn everywhere(status: u16, code: &str) -> Vec<StatementError> {
        let external = || DataFusionError::External(Box::new(api(status, code)));
        vec![
            StatementError::Salesforce(api(status, code)),
            StatementError::Dml(DmlError::Salesforce(api(status, code))),
            StatementError::Dml(DmlError::Plan(external())),
            StatementError::DataFusion(DataFusionError::Context(
                "scan sandbox.contact".into(),
                Box::new(external()),
            )),
        ]
    }

    #[test]
    fn lock_contention_and_5xx_are_retriable_wherever_they_sit() {
        for (status, code) in [
            (400, "UNABLE_TO_LOCK_ROW"),
            (503, "SERVER_UNAVAILABLE"),
            (500, "UNKNOWN_EXCEPTION"),
            (502, "BAD_GATEWAY"),
        ] {
            for e in everywhere(status, code) {
                assert!(is_retriable(&e), "{code}: {e:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_lost_connection_is_retriable() {
        // A port nobody listens on any more: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let refused = || async {
            reqwest::get(format!("http://127.0.0.1:{port}/"))
                .await
                .expect_err("nobody listens")
        };
        let direct = StatementError::Salesforce(SalesforceError::Transport {
            connection: "sandbox".into(),
            source: refused().await,
        });
        assert_eq!(direct.sqlstate(), "08006");
        let in_plan = StatementError::DataFusion(DataFusionError::External(Box::new(
            SalesforceError::Transport {
                connection: "sandbox".into(),
                source: refused().await,
            },
        )));
        for e in [direct, in_plan] {
            assert!(is_retriable(&e), "{e:?}");
        }
    }

    #[test]
    fn what_the_same_statement_meets_again_is_not_retriable() {
        let mut errors = vec![
            // Validation before sending: the same values fail the same way.
            StatementError::Dml(DmlError::Invalid(
                "value too long for Title (128 characters at most)".into(),
            )),
            StatementError::Dml(DmlError::Value("invalid number: 'abc'".into())),
            // A statement that is wrong as written (42xxx).
            StatementError::Dml(DmlError::UnknownColumn {
                table: "sandbox.contact".into(),
                column: "no_such_field".into(),
            }),
            StatementError::Sql("syntax error at or near UPDAT".into()),
            // Credentials: the job is paused until `sfsql login` instead.
            StatementError::Salesforce(SalesforceError::Disconnected {
                connection: "sandbox".into(),
                reason: "refresh token revoked".into(),
            }),
        ];
        errors.extend(everywhere(400, "INVALID_FIELD"));
        errors.extend(everywhere(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION"));
        for e in &errors {
            assert!(!is_retriable(e), "{} {e:?}", e.sqlstate());
        }
    }

    /// The org's daily requests are used up: 53400, and no retry (see
    /// [`is_retriable`]).
    #[test]
    fn the_request_limit_is_not_retriable() {
        for e in everywhere(403, "REQUEST_LIMIT_EXCEEDED") {
            assert_eq!(e.sqlstate(), "53400", "{e:?}");
            assert!(!is_retriable(&e), "{e:?}");
        }
    }
}
