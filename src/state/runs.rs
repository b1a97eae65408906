//! Runs and their per-record outcomes: starting a run without overlap,
//! finishing it, recovering runs a crash left `running`, and reading runs
//! and records back. Writes are logged by `write_log`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{StateError, Store, from_micros, record_chunks, to_micros};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    /// Another attempt after a retriable failure.
    Retry,
    /// A statement from psql or another client (no job).
    Client,
    /// The one run at start for slots missed while sfsql was down.
    CatchUp,
}

impl Trigger {
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
            Trigger::Client => "client",
            Trigger::CatchUp => "catch-up",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        [
            Trigger::Schedule,
            Trigger::Manual,
            Trigger::Retry,
            Trigger::Client,
            Trigger::CatchUp,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Stored, not started: waiting for its delay or a retry's backoff.
    Waiting,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Waiting => "waiting",
        }
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub jobid: i64,
    pub jobname: String,
    pub username: String,
    pub command: String,
    pub trigger: Trigger,
    pub dry_run: bool,
    /// The cron slot, for scheduled runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// 1 for the first try, n for the (n-1)th retry.
    pub attempt: u32,
}

/// What [`Store::begin_run`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginRun {
    Started {
        runid: i64,
    },
    /// The job's previous run is still going; this one is logged `skipped`.
    Skipped {
        runid: i64,
        running: i64,
    },
    /// Another server already took this slot.
    AlreadyClaimed,
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub runid: i64,
    pub jobid: Option<i64>,
    pub jobname: Option<String>,
    pub username: String,
    pub command: String,
    pub trigger: String,
    pub status: String,
    pub return_message: Option<String>,
    pub job_pid: Option<i64>,
    pub dry_run: bool,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub sobject: Option<String>,
    pub attempt: u32,
    /// When a run that waited (delay, retry backoff) was due.
    pub not_before: Option<DateTime<Utc>>,
    /// matched, updated, created, deleted, unknown, unchanged, skipped,
    /// failed, api_calls (the order of `cron.job_run_details`' count
    /// columns).
    pub counts: [i64; 9],
}

#[derive(Debug, Clone)]
pub struct RecordRow {
    pub runid: i64,
    pub sobject: String,
    pub record_id: String,
    pub match_key: Option<String>,
    pub action: String,
    pub status: String,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub fields: Option<String>,
}

const RUN_COLUMNS: &str = "runid, jobid, jobname, username, command, trigger, status,
    return_message, job_pid, dry_run, start_time, end_time, sobject, rows_matched,
    rows_updated, rows_created, rows_deleted, rows_unknown, rows_unchanged, rows_skipped,
    rows_failed, api_calls, attempt, not_before";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    let mut counts = [0i64; 9];
    for (i, c) in counts.iter_mut().enumerate() {
        *c = r.get(13 + i)?;
    }
    Ok(RunRow {
        runid: r.get(0)?,
        jobid: r.get(1)?,
        jobname: r.get(2)?,
        username: r.get(3)?,
        command: r.get(4)?,
        trigger: r.get(5)?,
        status: r.get(6)?,
        return_message: r.get(7)?,
        job_pid: r.get(8)?,
        dry_run: r.get(9)?,
        start_time: from_micros(r.get(10)?),
        end_time: r.get::<_, Option<i64>>(11)?.map(from_micros),
        sobject: r.get(12)?,
        attempt: r.get(22)?,
        not_before: r.get::<_, Option<i64>>(23)?.map(from_micros),
        counts,
    })
}

/// Insert `run` with its status, message and end time; `verb` is `INSERT` or `INSERT OR IGNORE`
/// (a slot another server took already). Returns rows inserted.
pub(super) fn insert_run(
    tx: &rusqlite::Transaction<'_>,
    verb: &str,
    run: &NewRun,
    (status, message, end): (RunStatus, Option<&str>, Option<i64>),
    now: DateTime<Utc>,
    owner: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "{verb} INTO run (jobid, jobname, username, command, trigger, status, return_message,
                              job_pid, dry_run, scheduled_for, start_time, end_time, attempt,
                              owner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            run.jobid,
            run.jobname,
            run.username,
            run.command,
            run.trigger.as_str(),
            status.as_str(),
            message,
            std::process::id() as i64,
            run.dry_run,
            run.scheduled_for.map(to_micros),
            to_micros(now),
            end,
            run.attempt,
            owner
        ],
    )
}

/// The run of `jobid` going now, if any.
pub(super) fn running_run(
    tx: &rusqlite::Transaction<'_>,
    jobid: i64,
) -> rusqlite::Result<Option<i64>> {
    tx.query_row(
        "SELECT runid FROM run WHERE jobid = ?1 AND status = 'running' LIMIT 1",
        [jobid],
        |r| r.get(0),
    )
    .optional()
}

impl Store {
    /// Start a run of a job unless its previous run is still going (then
    /// the new run is logged `skipped`) or, for a scheduled slot, another
    /// server already took it. One IMMEDIATE transaction decides, so two
    /// processes cannot both start.
    pub fn begin_run(&self, run: &NewRun, now: DateTime<Utc>) -> Result<BeginRun, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(slot) = run.scheduled_for {
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT runid FROM run WHERE jobid = ?1 AND scheduled_for = ?2",
                    params![run.jobid, to_micros(slot)],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Ok(BeginRun::AlreadyClaimed);
            }
        }
        let running = running_run(&tx, run.jobid)?;
        let (status, message, end) = match running {
            Some(r) => (
                RunStatus::Skipped,
                Some(format!("skipped: run {r} of this job was still running")),
                Some(to_micros(now)),
            ),
            None => (RunStatus::Running, None, None),
        };
        insert_run(
            &tx,
            "INSERT",
            run,
            (status, message.as_deref(), end),
            now,
            self.owner(),
        )?;
        let runid = tx.last_insert_rowid();
        tx.commit()?;
        Ok(match running {
            Some(running) => BeginRun::Skipped { runid, running },
            None => BeginRun::Started { runid },
        })
    }

    pub fn finish_run(
        &self,
        runid: i64,
        status: RunStatus,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE run SET status = ?2, return_message = ?3, end_time = ?4 WHERE runid = ?1",
            params![runid, status.as_str(), message, to_micros(now)],
        )?;
        Ok(())
    }

    /// Mark failed the runs left `running` by a process that is gone (a
    /// crash, a `kill -9`), and take over its `waiting` runs (they never
    /// started, so this process starts each when due); runs of live
    /// processes, this one included, are left alone. Returns how many were
    /// marked failed. Only the scheduler lock's holder may call this.
    pub fn recover_interrupted(&self, now: DateTime<Utc>) -> Result<usize, StateError> {
        let owners = super::OwnerFiles::new(&self.dir);
        let n = self.recover_interrupted_with(now, &owners)?;
        owners.sweep();
        Ok(n)
    }

    /// [`Store::recover_interrupted`] with the liveness check given.
    pub fn recover_interrupted_with(
        &self,
        now: DateTime<Utc>,
        liveness: &dyn super::Liveness,
    ) -> Result<usize, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let running: Vec<(i64, Option<String>)> = {
            let mut stmt = tx.prepare("SELECT runid, owner FROM run WHERE status = 'running'")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let waiting_owners: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT owner FROM run
                 WHERE status = 'waiting' AND owner IS NOT NULL AND owner <> ?1",
            )?;
            let rows = stmt.query_map([self.owner()], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for owner in waiting_owners.iter().filter(|o| !liveness.alive(o)) {
            let adopted = tx.execute(
                "UPDATE run SET owner = ?2 WHERE status = 'waiting' AND owner = ?1",
                params![owner, self.owner()],
            )?;
            tracing::info!(
                runs = adopted,
                "waiting runs of an sfsql that stopped are taken over; each starts when due"
            );
        }
        let mut n = 0;
        for (runid, owner) in running {
            if owner.as_deref().is_some_and(|o| liveness.alive(o)) {
                continue;
            }
            n += tx.execute(
                "UPDATE run SET status = 'failed', end_time = ?2,
                        return_message = 'interrupted: sfsql stopped while this run was going; check the records it wrote in cron.job_run_records, then run it again'
                 WHERE runid = ?1 AND status = 'running'",
                params![runid, to_micros(now)],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    pub fn run(&self, runid: i64) -> Result<Option<RunRow>, StateError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM run WHERE runid = ?1"),
                [runid],
                run_row,
            )
            .optional()?)
    }

    /// The job's latest run that started (not skipped), for min_interval.
    pub fn last_started_run(&self, jobid: i64) -> Result<Option<RunRow>, StateError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM run
                     WHERE jobid = ?1 AND status NOT IN ('skipped', 'waiting')
                     ORDER BY runid DESC LIMIT 1"
                ),
                [jobid],
                run_row,
            )
            .optional()?)
    }

    /// When the job's latest run of any kind (skipped ones too: their
    /// slot was seen) started.
    pub fn last_run_start(&self, jobid: i64) -> Result<Option<DateTime<Utc>>, StateError> {
        let conn = self.lock()?;
        let us: Option<i64> = conn.query_row(
            "SELECT max(start_time) FROM run WHERE jobid = ?1",
            [jobid],
            |r| r.get(0),
        )?;
        Ok(us.map(from_micros))
    }

    /// Delete the per-record outcomes of finished runs that started
    /// before `cutoff`, `batch` rows of each table per transaction (a chunk
    /// row holds up to `record_chunks::CHUNK` records) so the SQLite writer
    /// (and this store's mutex) is never held long; run rows are kept.
    /// Returns the records deleted.
    pub fn purge_records_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, StateError> {
        let mut total = 0;
        loop {
            let n = {
                let mut conn = self.lock()?;
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let rows = tx.execute(
                    "DELETE FROM run_record WHERE rowid IN (
                       SELECT rowid FROM run_record WHERE runid IN (
                         SELECT runid FROM run WHERE start_time < ?1 AND status <> 'running')
                       LIMIT ?2)",
                    params![to_micros(cutoff), batch as i64],
                )?;
                let chunks: Vec<(i64, i64, i64)> = tx
                    .prepare(
                        "SELECT runid, first_seq, n FROM run_record_chunk WHERE runid IN (
                           SELECT runid FROM run WHERE start_time < ?1 AND status <> 'running')
                         LIMIT ?2",
                    )?
                    .query_map(params![to_micros(cutoff), batch as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<Result<_, _>>()?;
                let mut delete =
                    tx.prepare("DELETE FROM run_record_chunk WHERE runid = ?1 AND first_seq = ?2")?;
                for (runid, first, _) in &chunks {
                    delete.execute(params![runid, first])?;
                }
                drop(delete);
                tx.commit()?;
                total += rows + chunks.iter().map(|(_, _, k)| *k as usize).sum::<usize>();
                rows.max(chunks.len())
            };
            if n < batch {
                return Ok(total);
            }
        }
    }

    /// Runs, oldest first; only `jobname`'s when given.
    pub fn runs(&self, jobname: Option<&str>) -> Result<Vec<RunRow>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE ?1 IS NULL OR jobname = ?1 ORDER BY runid"
        ))?;
        let rows = stmt.query_map([jobname], run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest run of each job that is not waiting, by jobid.
    pub fn last_runs(&self) -> Result<Vec<RunRow>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE runid IN
               (SELECT max(runid) FROM run WHERE jobid IS NOT NULL AND status <> 'waiting'
                GROUP BY jobid)"
        ))?;
        let rows = stmt.query_map([], run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Per-record outcomes, of one run when given, by run and record
    /// number: the rows stored a record each before schema version 9 and
    /// the chunks stored since.
    pub fn records(&self, runid: Option<i64>) -> Result<Vec<RecordRow>, StateError> {
        let conn = self.lock()?;
        let mut numbered: Vec<(i64, i64, RecordRow)> = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT runid, seq, sobject, record_id, match_key, action, status, error_code,
                    message, fields
             FROM run_record WHERE ?1 IS NULL OR runid = ?1 ORDER BY runid, seq",
        )?;
        let mut rows = stmt.query([runid])?;
        while let Some(r) = rows.next()? {
            numbered.push((
                r.get(0)?,
                r.get(1)?,
                RecordRow {
                    runid: r.get(0)?,
                    sobject: r.get(2)?,
                    record_id: r.get(3)?,
                    match_key: r.get(4)?,
                    action: r.get(5)?,
                    status: r.get(6)?,
                    error_code: r.get(7)?,
                    message: r.get(8)?,
                    fields: r.get(9)?,
                },
            ));
        }
        let old = numbered.len();
        let mut stmt = conn.prepare(
            "SELECT runid, first_seq, n, sobject, action, records, outcomes
             FROM run_record_chunk WHERE ?1 IS NULL OR runid = ?1 ORDER BY runid, first_seq",
        )?;
        let mut rows = stmt.query([runid])?;
        while let Some(r) = rows.next()? {
            let (run, first, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let (sobject, action): (String, String) = (r.get(3)?, r.get(4)?);
            let (records, outcomes): (Vec<u8>, Vec<u8>) = (r.get(5)?, r.get(6)?);
            let chunk = record_chunks::decode_chunk(&records, &outcomes, n as usize)?;
            for (k, ((id, key), o)) in chunk.into_iter().enumerate() {
                numbered.push((
                    run,
                    first + k as i64,
                    RecordRow {
                        runid: run,
                        sobject: sobject.clone(),
                        record_id: id.to_string(),
                        match_key: key.map(str::to_string),
                        action: action.clone(),
                        status: o.status.to_string(),
                        error_code: o.error_code.map(str::to_string),
                        message: o.message.map(str::to_string),
                        fields: o.fields.as_deref().map(str::to_string),
                    },
                ));
            }
        }
        // Each part is in order; a run with records in both (logged across
        // the upgrade) needs them merged.
        if old > 0 && old < numbered.len() {
            numbered.sort_by_key(|(run, seq, _)| (*run, *seq));
        }
        Ok(numbered.into_iter().map(|(_, _, r)| r).collect())
    }
}
