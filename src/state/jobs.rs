//! Saved jobs: create or replace by name (pg_cron's `cron.schedule`),
//! alter, unschedule, list. A job comes from SQL or from a `sql/*.sql`
//! file, never both.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{StateError, Store, from_micros, to_micros};

/// Where a job is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// `SELECT cron.schedule(...)`.
    Sql,
    /// A file in `sql/`; the path is kept for messages.
    File(String),
}

impl JobSource {
    fn encode(&self) -> String {
        match self {
            JobSource::Sql => "sql".into(),
            JobSource::File(p) => format!("file:{p}"),
        }
    }

    fn decode(s: &str) -> JobSource {
        match s.strip_prefix("file:") {
            Some(p) => JobSource::File(p.to_string()),
            None => JobSource::Sql,
        }
    }

    /// How a user would recognise the definition in an error message;
    /// `jobid` when the job exists already.
    pub fn describe(&self, name: &str, jobid: Option<i64>) -> String {
        match (self, jobid) {
            (JobSource::Sql, Some(id)) => {
                format!("job {id} made by SELECT cron.schedule('{name}', ...)")
            }
            (JobSource::Sql, None) => format!("SELECT cron.schedule('{name}', ...)"),
            (JobSource::File(p), _) => format!("the file {p}"),
        }
    }
}

/// What happens at start to a job's slots missed while sfsql was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed slots are not run; the job waits for its next slot.
    None,
    /// One `catch-up` run at start, however many slots were missed.
    Once,
}

impl CatchUp {
    pub fn as_str(&self) -> &'static str {
        match self {
            CatchUp::None => "none",
            CatchUp::Once => "once",
        }
    }

    pub fn parse(text: &str) -> Option<CatchUp> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(CatchUp::None),
            "once" => Some(CatchUp::Once),
            _ => None,
        }
    }
}

/// How a job's runs behave (parsed by `scheduler::options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// Extra attempts after a retriable failure.
    pub retries: u32,
    /// A run still going after this is cancelled and logged failed.
    pub timeout_secs: Option<i64>,
    /// Wait after the slot before running: (low, high), equal when fixed.
    pub delay_secs: Option<(i64, i64)>,
    /// The least time between two runs' starts; a manual run sooner is refused.
    pub min_interval_secs: Option<i64>,
    /// The missed-run policy; `None` takes the server's default.
    pub catch_up: Option<CatchUp>,
}

/// A job to create or replace.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub schedule: String,
    pub command: String,
    pub timezone: String,
    pub source: JobSource,
    pub username: String,
    pub options: JobOptions,
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub jobid: i64,
    pub jobname: String,
    pub schedule: String,
    pub command: String,
    pub timezone: String,
    pub active: bool,
    pub source: JobSource,
    pub username: String,
    pub options: JobOptions,
    /// Set while the job waits for `sfsql login` of a connection.
    pub paused: Option<Paused>,
    /// When the schedule (or time zone) last changed or the job was last
    /// activated: slots before it were not the job's to run.
    pub schedule_changed_at: DateTime<Utc>,
}

/// Why a job does not run although it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// The connection that needs `sfsql login`.
    pub connection: String,
    pub reason: String,
}

const JOB_COLUMNS: &str = "jobid, jobname, schedule, command, timezone, active, source, username,
    retries, timeout_secs, delay_min_secs, delay_max_secs, min_interval_secs,
    paused_connection, paused_reason, catch_up, schedule_changed_at";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        jobid: r.get(0)?,
        jobname: r.get(1)?,
        schedule: r.get(2)?,
        command: r.get(3)?,
        timezone: r.get(4)?,
        active: r.get(5)?,
        source: JobSource::decode(&r.get::<_, String>(6)?),
        username: r.get(7)?,
        options: JobOptions {
            retries: r.get(8)?,
            timeout_secs: r.get(9)?,
            delay_secs: match (r.get::<_, Option<i64>>(10)?, r.get::<_, Option<i64>>(11)?) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            },
            min_interval_secs: r.get(12)?,
            catch_up: r
                .get::<_, Option<String>>(15)?
                .as_deref()
                .and_then(CatchUp::parse),
        },
        paused: match (
            r.get::<_, Option<String>>(13)?,
            r.get::<_, Option<String>>(14)?,
        ) {
            (Some(connection), Some(reason)) => Some(Paused { connection, reason }),
            _ => None,
        },
        schedule_changed_at: from_micros(r.get::<_, Option<i64>>(16)?.unwrap_or_default()),
    })
}

impl Store {
    /// Create the job, or replace the one of the same name (keeping its id,
    /// as pg_cron does). A name defined in a file and in SQL is an error.
    pub fn upsert_job(&self, spec: &JobSpec, now: DateTime<Utc>) -> Result<i64, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT jobid, source FROM job WHERE jobname = ?1",
                [&spec.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((jobid, source)) = existing {
            let source = JobSource::decode(&source);
            let same_kind = matches!(
                (&source, &spec.source),
                (JobSource::Sql, JobSource::Sql) | (JobSource::File(_), JobSource::File(_))
            );
            if !same_kind {
                return Err(StateError::DefinedTwice {
                    name: spec.name.clone(),
                    first: source.describe(&spec.name, Some(jobid)),
                    second: spec.source.describe(&spec.name, None),
                });
            }
        }
        // One statement creates or replaces; a replaced job keeps its id.
        let id: i64 = tx.query_row(
            "INSERT INTO job (jobname, schedule, command, timezone, active, source,
                              username, created_at, updated_at, retries, timeout_secs,
                              delay_min_secs, delay_max_secs, min_interval_secs, catch_up,
                              schedule_changed_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?7)
             ON CONFLICT (jobname) DO UPDATE SET
                 schedule_changed_at = CASE
                     WHEN job.schedule <> excluded.schedule OR job.timezone <> excluded.timezone
                     THEN excluded.updated_at ELSE job.schedule_changed_at END,
                 schedule = excluded.schedule, command = excluded.command,
                 timezone = excluded.timezone, source = excluded.source,
                 username = excluded.username, updated_at = excluded.updated_at,
                 retries = excluded.retries, timeout_secs = excluded.timeout_secs,
                 delay_min_secs = excluded.delay_min_secs,
                 delay_max_secs = excluded.delay_max_secs,
                 min_interval_secs = excluded.min_interval_secs,
                 catch_up = excluded.catch_up
             RETURNING jobid",
            params![
                spec.name,
                spec.schedule,
                spec.command,
                spec.timezone,
                spec.source.encode(),
                spec.username,
                to_micros(now),
                spec.options.retries,
                spec.options.timeout_secs,
                spec.options.delay_secs.map(|d| d.0),
                spec.options.delay_secs.map(|d| d.1),
                spec.options.min_interval_secs,
                spec.options.catch_up.map(|c| c.as_str())
            ],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(id)
    }

    pub fn jobs(&self) -> Result<Vec<JobRow>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM job ORDER BY jobid"))?;
        let rows = stmt.query_map([], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn job_by_name(&self, name: &str) -> Result<Option<JobRow>, StateError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM job WHERE jobname = ?1"),
                [name],
                job_row,
            )
            .optional()?)
    }

    pub fn job_by_id(&self, id: i64) -> Result<Option<JobRow>, StateError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM job WHERE jobid = ?1"),
                [id],
                job_row,
            )
            .optional()?)
    }

    /// Remove a job; its runs stay in the log.
    pub fn delete_job(&self, id: i64) -> Result<(), StateError> {
        let conn = self.lock()?;
        let n = conn.execute("DELETE FROM job WHERE jobid = ?1", [id])?;
        if n == 0 {
            return Err(StateError::NoSuchJob(id.to_string()));
        }
        Ok(())
    }

    /// Change what is given; `None` keeps the current value (`options`
    /// replaces all the options when given). A new schedule, or activating
    /// a job, moves `schedule_changed_at` to `now`.
    pub fn alter_job(
        &self,
        id: i64,
        schedule: Option<&str>,
        command: Option<&str>,
        active: Option<bool>,
        options: Option<&JobOptions>,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let conn = self.lock()?;
        let o = options.cloned().unwrap_or_default();
        let n = conn.execute(
            "UPDATE job SET
                    schedule_changed_at = CASE
                        WHEN coalesce(?2, schedule) <> schedule OR (?4 AND NOT active)
                        THEN ?5 ELSE schedule_changed_at END,
                    schedule = coalesce(?2, schedule), command = coalesce(?3, command),
                    active = coalesce(?4, active), updated_at = ?5,
                    retries = CASE WHEN ?6 THEN ?7 ELSE retries END,
                    timeout_secs = CASE WHEN ?6 THEN ?8 ELSE timeout_secs END,
                    delay_min_secs = CASE WHEN ?6 THEN ?9 ELSE delay_min_secs END,
                    delay_max_secs = CASE WHEN ?6 THEN ?10 ELSE delay_max_secs END,
                    min_interval_secs = CASE WHEN ?6 THEN ?11 ELSE min_interval_secs END,
                    catch_up = CASE WHEN ?6 THEN ?12 ELSE catch_up END
             WHERE jobid = ?1",
            params![
                id,
                schedule,
                command,
                active,
                to_micros(now),
                options.is_some(),
                o.retries,
                o.timeout_secs,
                o.delay_secs.map(|d| d.0),
                o.delay_secs.map(|d| d.1),
                o.min_interval_secs,
                o.catch_up.map(|c| c.as_str())
            ],
        )?;
        if n == 0 {
            return Err(StateError::NoSuchJob(id.to_string()));
        }
        Ok(())
    }

    /// Drop file-defined jobs whose file is gone; returns their names.
    pub fn remove_file_jobs_except(&self, keep: &[String]) -> Result<Vec<String>, StateError> {
        let gone: Vec<JobRow> = self
            .jobs()?
            .into_iter()
            .filter(|j| matches!(j.source, JobSource::File(_)) && !keep.contains(&j.jobname))
            .collect();
        for j in &gone {
            self.delete_job(j.jobid)?;
        }
        Ok(gone.into_iter().map(|j| j.jobname).collect())
    }

    /// Pause `jobids` until `connection` is logged in again.
    pub fn pause_jobs(
        &self,
        jobids: &[i64],
        connection: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for id in jobids {
            tx.execute(
                "UPDATE job SET paused_connection = ?2, paused_reason = ?3, updated_at = ?4
                 WHERE jobid = ?1",
                params![id, connection, reason, to_micros(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Resume every job paused for `connection`; returns their names.
    pub fn resume_jobs(
        &self,
        connection: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let names = {
            let mut stmt =
                tx.prepare("SELECT jobname FROM job WHERE paused_connection = ?1 ORDER BY jobid")?;
            stmt.query_map([connection], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.execute(
            "UPDATE job SET paused_connection = NULL, paused_reason = NULL, updated_at = ?2
             WHERE paused_connection = ?1",
            params![connection, to_micros(now)],
        )?;
        tx.commit()?;
        Ok(names)
    }
}
