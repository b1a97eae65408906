//! Runs waiting for their time: a slot's `delay`, a retry's backoff, a
//! catch-up run at start. Each is a `run` row with status `waiting` and
//! `not_before` from the moment it is decided, so a crash loses none: the
//! next scheduler adopts the waiting runs of processes that are gone (see
//! [`Store::recover_interrupted`]) and starts each once, since starting is
//! one compare-and-set from `waiting` to `running`. A waiting run never
//! executed its statement, so starting it after a restart runs nothing
//! twice.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::runs::{insert_run, running_run};
use super::{BeginRun, NewRun, RunStatus, StateError, Store, Trigger, from_micros, to_micros};

/// A stored run waiting for `not_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRun {
    pub runid: i64,
    pub jobid: i64,
    pub trigger: Trigger,
    pub attempt: u32,
    pub dry_run: bool,
    pub not_before: DateTime<Utc>,
}

const WAITING_COLUMNS: &str = "runid, jobid, trigger, attempt, dry_run, not_before";

fn waiting_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WaitingRun> {
    let trigger: String = r.get(2)?;
    Ok(WaitingRun {
        runid: r.get(0)?,
        jobid: r.get(1)?,
        trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Schedule),
        attempt: r.get(3)?,
        dry_run: r.get(4)?,
        not_before: from_micros(r.get(5)?),
    })
}

/// Who may start a waiting run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedBy {
    /// This process (it runs the scheduler loop, or it is a `sfsql jobs
    /// run` that takes its own retries).
    Me,
    /// Whichever process runs the scheduler loop.
    Scheduler,
}

impl Store {
    /// Store `run` as waiting until `not_before`, with `message` saying
    /// for what. `None`: another server took its slot already.
    pub fn queue_run(
        &self,
        run: &NewRun,
        not_before: DateTime<Utc>,
        message: &str,
        by: StartedBy,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = insert_run(
            &tx,
            "INSERT OR IGNORE",
            run,
            (RunStatus::Waiting, Some(message), None),
            now,
            self.owner(),
        )?;
        if n == 0 {
            return Ok(None);
        }
        let runid = tx.last_insert_rowid();
        tx.execute(
            "UPDATE run SET not_before = ?2, owner = ?3 WHERE runid = ?1",
            params![
                runid,
                to_micros(not_before),
                (by == StartedBy::Me).then(|| self.owner())
            ],
        )?;
        tx.commit()?;
        Ok(Some(runid))
    }

    /// The waiting runs due at `now` that this process may start: its own
    /// and those left to the scheduler; oldest due first.
    pub fn due_waiting(&self, now: DateTime<Utc>) -> Result<Vec<WaitingRun>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {WAITING_COLUMNS} FROM run
             WHERE status = 'waiting' AND not_before <= ?1 AND (owner = ?2 OR owner IS NULL)
             ORDER BY not_before, runid"
        ))?;
        let rows = stmt.query_map(params![to_micros(now), self.owner()], waiting_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next of those is due.
    pub fn next_waiting(&self) -> Result<Option<DateTime<Utc>>, StateError> {
        let conn = self.lock()?;
        let us: Option<i64> = conn.query_row(
            "SELECT min(not_before) FROM run
             WHERE status = 'waiting' AND (owner = ?1 OR owner IS NULL)",
            [self.owner()],
            |r| r.get(0),
        )?;
        Ok(us.map(from_micros))
    }

    /// This process's waiting retry of `jobid` (a `sfsql jobs run` takes
    /// its own).
    pub fn my_waiting_retry(&self, jobid: i64) -> Result<Option<WaitingRun>, StateError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {WAITING_COLUMNS} FROM run
                     WHERE status = 'waiting' AND jobid = ?1 AND owner = ?2 AND trigger = 'retry'
                     ORDER BY runid LIMIT 1"
                ),
                params![jobid, self.owner()],
                waiting_row,
            )
            .optional()?)
    }

    /// Start the waiting run `runid` now: `running` (owned by this
    /// process), or `skipped` while another run of its job still goes.
    /// `AlreadyClaimed`: it is not waiting any more (another process
    /// started it, or it was skipped).
    pub fn start_waiting(&self, runid: i64, now: DateTime<Utc>) -> Result<BeginRun, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let jobid: Option<i64> = tx
            .query_row(
                "SELECT jobid FROM run WHERE runid = ?1 AND status = 'waiting'",
                [runid],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(jobid) = jobid else {
            return Ok(BeginRun::AlreadyClaimed);
        };
        let begin = match running_run(&tx, jobid)? {
            Some(running) => {
                tx.execute(
                    "UPDATE run SET status = 'skipped', end_time = ?2, return_message = ?3
                     WHERE runid = ?1",
                    params![
                        runid,
                        to_micros(now),
                        format!("skipped: run {running} of this job was still running")
                    ],
                )?;
                BeginRun::Skipped { runid, running }
            }
            None => {
                tx.execute(
                    "UPDATE run SET status = 'running', start_time = ?2, return_message = NULL,
                            owner = ?3, job_pid = ?4
                     WHERE runid = ?1",
                    params![
                        runid,
                        to_micros(now),
                        self.owner(),
                        std::process::id() as i64
                    ],
                )?;
                BeginRun::Started { runid }
            }
        };
        tx.commit()?;
        Ok(begin)
    }

    /// Close the waiting run `runid` as `skipped` with `message` (its job
    /// was paused, removed or deactivated meanwhile); false when it was
    /// not waiting any more.
    pub fn skip_waiting(
        &self,
        runid: i64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let conn = self.lock()?;
        Ok(conn.execute(
            "UPDATE run SET status = 'skipped', end_time = ?2, return_message = ?3
             WHERE runid = ?1 AND status = 'waiting'",
            params![runid, to_micros(now), message],
        )? == 1)
    }
}
