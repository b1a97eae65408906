//! The scheduler: pg_cron's interface over the state store. Jobs come from
//! `cron.schedule(...)` or `sql/*.sql` files; the loop runs due jobs
//! through the engine's one statement path ([`Engine::execute_sql`]) with
//! no overlap; every run and record lands in the `cron.*` tables.
//!
//! | file | owns |
//! | --- | --- |
//! | [`schedule`] | cron math with an injected clock (pure) |
//! | [`files`] | reading `sql/*.sql` job files (pure) |
//! | `lock` | one scheduler loop per state directory |
//! | `recovery` | failing the runs of processes that are gone (at start, then every 30 s) |
//! | `retention` | purging `cron.job_run_records` past their retention |
//! | `runner` | running one job: begin, execute, finish; the loop |
//! | `tables` | `cron.job`, `cron.job_run_details`, `cron.job_run_records` |
//! | `call` | binding `cron.*` call arguments (pure) |
//! | [`options`] | retries, timeout, delay, min_interval: parsing, backoff (pure) |
//! | [`alerts`] | webhook alerts: failed runs, failed records, paused jobs |
//! | `catch_up` | one `catch-up` run at start for slots missed while down |
//! | [`settings`] | `[scheduler]` in `server.toml` |
//! | `pause` | pausing a connection's jobs on 28000, resuming after `sfsql login` |
//! | [`cli`] | `sfsql jobs list/run/logs` as text |
//! | `hook` | `SELECT cron.schedule/unschedule/alter_job/run(...)` over pgwire |

pub mod alerts;
mod call;
mod catch_up;
pub mod cli;
pub mod files;
mod hook;
mod lock;
pub mod options;
mod pause;
mod recovery;
mod retention;
mod runner;
pub mod schedule;
pub mod settings;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

pub use alerts::AlertsConfig;
pub use catch_up::CatchUpRun;
pub use hook::{CronHook, is_cron_call};
pub use lock::SchedulerLock;
pub use runner::RunDone;
pub use schedule::{Clock, ManualClock, SystemClock};
pub use settings::SchedulerConfig;

use crate::session::Engine;
use crate::state::{JobOptions, JobRow, JobSource, JobSpec, StateError, Store};

/// The SQL schema of the log tables.
pub const CRON_SCHEMA: &str = "cron";

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error("invalid schedule '{schedule}': {reason}")]
    BadSchedule { schedule: String, reason: String },
    #[error("unknown time zone '{0}'; use an IANA name such as 'UTC' or 'Europe/Paris'")]
    BadTimezone(String),
    #[error("{path}: {reason}")]
    BadJobFile { path: String, reason: String },
    #[error("cannot read job files in {path}: {source}")]
    ReadJobs {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot take the scheduler lock {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "job {job} is still running (run {running}); run {skipped} was logged as skipped. Wait for it: SELECT status FROM cron.job_run_details WHERE runid = {running}"
    )]
    StillRunning {
        job: String,
        running: i64,
        skipped: i64,
    },
    #[error(
        "run {runid} of job {job} failed: {message} (details: SELECT * FROM cron.job_run_details WHERE runid = {runid})"
    )]
    RunFailed {
        job: String,
        runid: i64,
        message: String,
        sqlstate: &'static str,
    },
    #[error("{0}")]
    BadCall(String),
    #[error(
        "{0}; options are retries := 3, timeout := '10m', delay := '0-10m', min_interval := '2h', catch_up := 'none'"
    )]
    BadOption(String),
    #[error(
        "job {job} may run again at {next} (min_interval {min_interval}; run {last} started at {last_start})"
    )]
    TooEarly {
        job: String,
        next: chrono::DateTime<chrono::Utc>,
        min_interval: String,
        last: i64,
        last_start: chrono::DateTime<chrono::Utc>,
    },
    #[error("job {job} is {reason}")]
    Paused { job: String, reason: String },
    #[error(transparent)]
    State(#[from] StateError),
}

impl SchedulerError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SchedulerError::BadSchedule { .. }
            | SchedulerError::BadTimezone(_)
            | SchedulerError::BadJobFile { .. }
            | SchedulerError::BadOption(_) => "22023",
            SchedulerError::TooEarly { .. } => "55000",
            SchedulerError::Paused { .. } => "28000",
            SchedulerError::StillRunning { .. } => "55006",
            SchedulerError::RunFailed { sqlstate, .. } => sqlstate,
            SchedulerError::BadCall(_) => "42883",
            SchedulerError::State(StateError::DefinedTwice { .. }) => "42710",
            SchedulerError::State(StateError::NoSuchJob(_)) => "42704",
            _ => "58000",
        }
    }
}

/// `opts` with the named options set.
fn apply_options(
    mut opts: JobOptions,
    given: &[(String, String)],
) -> Result<JobOptions, SchedulerError> {
    for (k, v) in given {
        options::set_option(&mut opts, k, v).map_err(SchedulerError::BadOption)?;
    }
    Ok(opts)
}

/// A job named by name or by id (`cron.unschedule` takes either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    Name(String),
    Id(i64),
}

/// Jobs, runs and the loop, over one engine and one store.
pub struct Scheduler {
    engine: Arc<Engine>,
    store: Store,
    clock: Arc<dyn Clock>,
    /// `[scheduler]` of `server.toml`.
    config: SchedulerConfig,
    /// `[alerts]` of `server.toml`, when set.
    alerter: Option<alerts::Alerter>,
    /// The `sql/` directory of job files, reloaded by the loop on change.
    sql_dir: Option<PathBuf>,
    /// Cuts the loop's sleep short (a test moved its clock, a job changed).
    wake: tokio::sync::Notify,
    /// Every finished run, for whoever waits on one (tests, `cron.run`
    /// callers) instead of polling the store.
    done: tokio::sync::broadcast::Sender<RunDone>,
    /// How many ticks the loop has made, so a test knows the loop has seen
    /// its jobs before it moves the clock.
    ticks: tokio::sync::watch::Sender<u64>,
    /// Every run that has started, for tests that act mid-run.
    started: tokio::sync::broadcast::Sender<i64>,
    /// Whether a retry of a run started here is started by this process
    /// (it runs the loop, or is a `sfsql jobs run` taking its own) rather
    /// than left to the scheduler of another.
    keeps_retries: std::sync::atomic::AtomicBool,
    /// Runs going in this process, with their timeout deadline and the
    /// switch that cancels them.
    running: std::sync::Mutex<Vec<runner::Running>>,
}

/// Where the scheduler keeps and finds things.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub state_dir: PathBuf,
    /// `sql/*.sql` job files; `None` loads none.
    pub sql_dir: Option<PathBuf>,
    /// Run the loop (when the lock is free); off for one-shot CLI use.
    pub run_loop: bool,
    /// Where "now" comes from: the system clock, or a test's.
    pub clock: Arc<dyn Clock>,
    /// `[scheduler]` of the catalog's `server.toml`.
    pub config: SchedulerConfig,
    /// `[alerts]` of the catalog's `server.toml` (URL resolved).
    pub alerts: Option<AlertsConfig>,
}

impl SchedulerOptions {
    /// The defaults beside a catalog directory: `.sfsql/` and `sql/`.
    pub fn beside(catalog: &Path) -> SchedulerOptions {
        let parent = catalog
            .canonicalize()
            .ok()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        SchedulerOptions {
            state_dir: parent.join(".sfsql"),
            sql_dir: Some(parent.join("sql")),
            run_loop: true,
            clock: Arc::new(SystemClock),
            config: SchedulerConfig::default(),
            alerts: None,
        }
    }
}

/// A started scheduler; the loop stops when this is dropped.
pub struct SchedulerHandle {
    pub scheduler: Arc<Scheduler>,
    /// The loop task, when this process holds the lock.
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// The catch-up runs queued at start (none without the lock).
    pub catch_up: Vec<CatchUpRun>,
    _lock: Option<SchedulerLock>,
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Open the store, log every write through it, serve the `cron.*` tables,
/// load job files, and (holding the lock) recover interrupted runs, queue
/// one catch-up run per job that missed slots while sfsql was down, and
/// start the loop.
pub async fn start(
    engine: Arc<Engine>,
    opts: &SchedulerOptions,
) -> Result<SchedulerHandle, SchedulerError> {
    let store = Store::open(&opts.state_dir)?;
    engine.set_recorder(Arc::new(store.clone()));
    let scheduler = Arc::new(Scheduler {
        engine: Arc::clone(&engine),
        store,
        clock: Arc::clone(&opts.clock),
        config: opts.config.clone(),
        alerter: opts.alerts.clone().map(alerts::Alerter::new),
        sql_dir: opts.sql_dir.clone(),
        wake: tokio::sync::Notify::new(),
        done: tokio::sync::broadcast::channel(64).0,
        ticks: tokio::sync::watch::channel(0).0,
        started: tokio::sync::broadcast::channel(64).0,
        keeps_retries: std::sync::atomic::AtomicBool::new(false),
        running: std::sync::Mutex::new(Vec::new()),
    });
    tables::register(&scheduler)?;
    // Taken before loading, so a file changed meanwhile is reloaded.
    let files_seen = scheduler.files_fingerprint();
    if let Some(dir) = &opts.sql_dir {
        scheduler.load_files(dir)?;
    }
    let lock = if opts.run_loop {
        SchedulerLock::try_acquire(&opts.state_dir)?
    } else {
        None
    };
    let mut catch_up = Vec::new();
    let task = match &lock {
        Some(_) => {
            let n = scheduler.store.recover_interrupted(scheduler.clock.now())?;
            if n > 0 {
                tracing::warn!(
                    runs = n,
                    "runs interrupted by an earlier stop marked failed"
                );
            }
            scheduler
                .keeps_retries
                .store(true, std::sync::atomic::Ordering::Relaxed);
            catch_up = scheduler.queue_catch_up()?;
            Some(tokio::spawn(runner::run_loop(
                Arc::clone(&scheduler),
                files_seen,
            )))
        }
        None if opts.run_loop => {
            tracing::warn!(
                state_dir = %opts.state_dir.display(),
                "another sfsql runs the scheduler on this state directory; this one serves queries and manual runs only"
            );
            None
        }
        None => None,
    };
    Ok(SchedulerHandle {
        scheduler,
        task,
        catch_up,
        _lock: lock,
    })
}

/// Load `sql/*.sql` jobs into `store`, replacing earlier versions and
/// unscheduling jobs whose file is gone (their runs stay in the log). A
/// file named like a `cron.schedule` job is an error naming both, and then
/// nothing changes, as for a file that does not parse. Returns the jobs'
/// names.
pub fn load_job_files(
    store: &Store,
    dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, SchedulerError> {
    let jobs = files::load_dir(dir)?;
    for job in &jobs {
        if let Some(existing) = store.job_by_name(&job.name)?
            && existing.source == JobSource::Sql
        {
            return Err(StateError::DefinedTwice {
                name: job.name.clone(),
                first: existing.source.describe(&job.name, Some(existing.jobid)),
                second: JobSource::File(job.path.clone()).describe(&job.name, None),
            }
            .into());
        }
    }
    let mut names = Vec::new();
    for job in jobs {
        store.upsert_job(
            &JobSpec {
                name: job.name.clone(),
                schedule: job.schedule,
                command: job.command,
                timezone: job.timezone,
                source: JobSource::File(job.path),
                username: "sfsql".into(),
                options: job.options,
            },
            now,
        )?;
        names.push(job.name);
    }
    let removed = store.remove_file_jobs_except(&names)?;
    if !removed.is_empty() {
        tracing::info!(?removed, "jobs whose file is gone were unscheduled");
    }
    tracing::info!(jobs = names.len(), dir = %dir.display(), "job files loaded");
    Ok(names)
}

impl Scheduler {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Make the loop look at the clock and the jobs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Finished runs from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunDone> {
        self.done.subscribe()
    }

    /// Runs that start from now on (their run ids).
    pub fn subscribe_started(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.started.subscribe()
    }

    /// The loop's tick count.
    pub fn ticks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ticks.subscribe()
    }

    /// `cron.schedule(name, schedule, command)`: create or replace.
    pub fn schedule(
        &self,
        name: &str,
        schedule: &str,
        command: &str,
        username: &str,
        options: &[(String, String)],
    ) -> Result<i64, SchedulerError> {
        let options = apply_options(JobOptions::default(), options)?;
        schedule::parse_schedule(schedule, "")?;
        if name.trim().is_empty() {
            return Err(SchedulerError::BadCall(
                "cron.schedule needs a job name: cron.schedule('name', '0 9 * * *', $$UPDATE ...$$)"
                    .into(),
            ));
        }
        Ok(self.store.upsert_job(
            &JobSpec {
                name: name.to_string(),
                schedule: schedule.to_string(),
                command: command.to_string(),
                timezone: "UTC".into(),
                source: JobSource::Sql,
                username: username.to_string(),
                options,
            },
            self.clock.now(),
        )?)
    }

    pub fn job(&self, job: &JobRef) -> Result<JobRow, SchedulerError> {
        let found = match job {
            JobRef::Name(n) => self.store.job_by_name(n)?,
            JobRef::Id(id) => self.store.job_by_id(*id)?,
        };
        found.ok_or_else(|| {
            SchedulerError::State(StateError::NoSuchJob(match job {
                JobRef::Name(n) => n.clone(),
                JobRef::Id(id) => id.to_string(),
            }))
        })
    }

    /// `cron.unschedule(name | id)`. A file job comes back at the next
    /// start unless its file is removed, so that is refused.
    pub fn unschedule(&self, job: &JobRef) -> Result<(), SchedulerError> {
        let row = self.job(job)?;
        if let JobSource::File(path) = &row.source {
            return Err(SchedulerError::BadCall(format!(
                "job {} is defined in {path}; delete or rename the file (or pause it with cron.alter_job({}, active := false))",
                row.jobname, row.jobid
            )));
        }
        Ok(self.store.delete_job(row.jobid)?)
    }

    /// `cron.alter_job(id, schedule, command, active, options...)`;
    /// what is not given is kept.
    pub fn alter_job(
        &self,
        id: i64,
        schedule: Option<&str>,
        command: Option<&str>,
        active: Option<bool>,
        options: &[(String, String)],
    ) -> Result<(), SchedulerError> {
        let row = self.job(&JobRef::Id(id))?;
        if let Some(s) = schedule {
            schedule::parse_schedule(s, &row.timezone)?;
        }
        let options = if options.is_empty() {
            None
        } else {
            Some(apply_options(row.options.clone(), options)?)
        };
        self.store.alter_job(
            id,
            schedule,
            command,
            active,
            options.as_ref(),
            self.clock.now(),
        )?;
        self.wake();
        Ok(())
    }

    /// [`load_job_files`] into this scheduler's store.
    pub fn load_files(&self, dir: &Path) -> Result<Vec<String>, SchedulerError> {
        load_job_files(&self.store, dir, self.clock.now())
    }

    /// Reload the job files when `sql/` changed since `seen` (a file
    /// edited, added or removed); an error is logged and the jobs stay as
    /// they were until the next change.
    pub(super) fn reload_if_changed(&self, seen: &mut files::Fingerprint) {
        let Some(dir) = &self.sql_dir else { return };
        let now = files::fingerprint(dir);
        if now == *seen {
            return;
        }
        *seen = now;
        match self.load_files(dir) {
            Ok(names) => tracing::info!(jobs = ?names, "job files changed: reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "job files changed but were not reloaded; the jobs stay as they were"
            ),
        }
    }

    /// The job files as they are now.
    fn files_fingerprint(&self) -> files::Fingerprint {
        self.sql_dir
            .as_deref()
            .map(files::fingerprint)
            .unwrap_or_default()
    }

    /// When the job runs next, per its schedule and time zone (`None` when
    /// paused).
    pub fn next_run(&self, job: &JobRow) -> Option<chrono::DateTime<chrono::Utc>> {
        if !job.active {
            return None;
        }
        schedule::parse_schedule(&job.schedule, &job.timezone)
            .ok()?
            .next_after(self.clock.now())
    }
}
