//! The run log of writes: [`Store`] as the engine's [`RunRecorder`]. Each
//! request's records are stored before it goes out (as `unknown`) and
//! settled when it answers, so a timeout, a cancel or a `kill -9` mid-write
//! leaves every record sent in `cron.job_run_records`, with run counts
//! that add up at every moment. Records are stored a batch per row (see
//! [`record_chunks`](super::record_chunks)).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{StateError, Store, record_chunks, to_micros};
use crate::dml::{OutcomeStatus, RecordOutcome, UpdateSummary, WriteSink};
use crate::session::{Origin, RunRecorder, StopSignal, WriteLog, WriteTarget};

/// The run column that counts records of `status`.
fn count_column(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Updated => "rows_updated",
        OutcomeStatus::Created => "rows_created",
        OutcomeStatus::Deleted => "rows_deleted",
        OutcomeStatus::Unknown => "rows_unknown",
        OutcomeStatus::Unchanged => "rows_unchanged",
        OutcomeStatus::Skipped => "rows_skipped",
        OutcomeStatus::Failed => "rows_failed",
    }
}

/// Add `n` to `column` of run `runid`.
fn bump(tx: &Transaction<'_>, runid: i64, column: &str, n: i64) -> rusqlite::Result<()> {
    if n != 0 {
        // `column` is one of ours, never user input.
        tx.execute(
            &format!("UPDATE run SET {column} = {column} + ?2 WHERE runid = ?1"),
            params![runid, n],
        )?;
    }
    Ok(())
}

fn bump_statuses(
    tx: &Transaction<'_>,
    runid: i64,
    outcomes: &[RecordOutcome],
) -> rusqlite::Result<()> {
    for status in [
        OutcomeStatus::Updated,
        OutcomeStatus::Created,
        OutcomeStatus::Deleted,
        OutcomeStatus::Unknown,
        OutcomeStatus::Unchanged,
        OutcomeStatus::Skipped,
        OutcomeStatus::Failed,
    ] {
        let n = outcomes.iter().filter(|o| o.status == status).count();
        bump(tx, runid, count_column(status), n as i64)?;
    }
    Ok(())
}

/// One write's log in the store.
#[derive(Debug)]
pub struct StoreWriteLog {
    store: Store,
    runid: i64,
    sobject: String,
    action: &'static str,
    /// A client statement's run belongs to its log: opened `running`,
    /// closed by `finish`, or by drop as cancelled.
    own_run: bool,
    stop: Option<StopSignal>,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    next_seq: i64,
    /// Runs of records (first seq, count) whose request is out, oldest
    /// first: `sent` settles them in the order `sending` announced them,
    /// whether in one call or in batches.
    in_flight: std::collections::VecDeque<(i64, usize)>,
    finished: bool,
    /// The first store failure, reported by `finish`.
    error: Option<String>,
}

impl StoreWriteLog {
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` in one store transaction; a failure is kept for `finish`.
    fn store_tx(&self, f: impl FnOnce(&Transaction<'_>, &mut LogState) -> rusqlite::Result<()>) {
        let mut state = self.state();
        let result = (|| -> Result<(), StateError> {
            let mut conn = self.store.lock()?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            f(&tx, &mut state)?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(runid = self.runid, error = %e, "the run log cannot store records");
            state.error.get_or_insert_with(|| e.to_string());
        }
    }

    fn insert(
        &self,
        tx: &Transaction<'_>,
        state: &mut LogState,
        outcomes: &[RecordOutcome],
    ) -> rusqlite::Result<i64> {
        let base = state.next_seq;
        record_chunks::insert(tx, self.runid, base, &self.sobject, self.action, outcomes)?;
        state.next_seq = base + outcomes.len() as i64;
        bump(tx, self.runid, "rows_matched", outcomes.len() as i64)?;
        Ok(base)
    }
}

impl WriteSink for StoreWriteLog {
    fn sending(&self, records: &[RecordOutcome]) {
        self.store_tx(|tx, state| {
            let base = self.insert(tx, state, records)?;
            bump_statuses(tx, self.runid, records)?;
            match state.in_flight.back_mut() {
                Some((first, n)) if *first + *n as i64 == base => *n += records.len(),
                _ => state.in_flight.push_back((base, records.len())),
            }
            Ok(())
        });
    }

    fn sent(&self, outcomes: &[RecordOutcome], calls: usize) {
        self.store_tx(|tx, state| {
            let mut rest = outcomes;
            while !rest.is_empty() {
                let Some((base, n)) = state.in_flight.pop_front() else {
                    // Outcomes without a matching `sending`: stored as they come.
                    self.insert(tx, state, rest)?;
                    break;
                };
                let (now, later) = rest.split_at(n.min(rest.len()));
                if n > now.len() {
                    state
                        .in_flight
                        .push_front((base + now.len() as i64, n - now.len()));
                }
                record_chunks::settle(tx, self.runid, base, now)?;
                bump(tx, self.runid, "rows_unknown", -(now.len() as i64))?;
                rest = later;
            }
            bump_statuses(tx, self.runid, outcomes)?;
            bump(tx, self.runid, "api_calls", calls as i64)
        });
    }

    fn not_sent(&self, outcomes: &[RecordOutcome]) {
        self.store_tx(|tx, state| {
            self.insert(tx, state, outcomes)?;
            bump_statuses(tx, self.runid, outcomes)
        });
    }

    fn stop_reason(&self) -> Option<String> {
        self.stop.as_ref().and_then(StopSignal::reason)
    }
}

impl WriteLog for StoreWriteLog {
    fn finish(&self, summary: &UpdateSummary, finished: DateTime<Utc>) -> Result<(), String> {
        if self.own_run {
            let written = summary.succeeded();
            let tag = self.action.to_ascii_uppercase();
            let message = if summary.failed > 0 {
                format!("{tag} {written}; {} records failed", summary.failed)
            } else {
                format!("{tag} {written}")
            };
            self.store_tx(|tx, _| {
                tx.execute(
                    "UPDATE run SET status = 'succeeded', return_message = ?2, end_time = ?3
                     WHERE runid = ?1",
                    params![self.runid, message, to_micros(finished)],
                )
                .map(|_| ())
            });
        }
        let mut state = self.state();
        state.finished = true;
        match state.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for StoreWriteLog {
    /// A client statement dropped mid-write (a cancel, a lost connection):
    /// its run is closed as failed rather than left `running`.
    fn drop(&mut self) {
        if !self.own_run || self.state().finished {
            return;
        }
        self.store_tx(|tx, _| {
            tx.execute(
                "UPDATE run SET status = 'failed', end_time = ?2,
                        return_message = 'cancelled: the statement stopped while writing; the records it sent are in cron.job_run_records (unknown: sent, no answer)'
                 WHERE runid = ?1",
                params![self.runid, to_micros(Utc::now())],
            )
            .map(|_| ())
        });
    }
}

impl Store {
    /// Open the log of one write: into its job's run, or a run of its own
    /// (`trigger = 'client'`) for a statement from psql or the CLI.
    pub fn begin_write(
        &self,
        origin: &Origin,
        statement_sql: &str,
        target: &WriteTarget,
    ) -> Result<StoreWriteLog, StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let qualified = format!(
            "{}.{}",
            target.connection,
            target.sobject.to_ascii_lowercase()
        );
        let (runid, stop) = match origin {
            Origin::Job { run_id, stop, .. } => {
                tx.execute(
                    "UPDATE run SET sobject = coalesce(sobject, ?2), dry_run = max(dry_run, ?3)
                     WHERE runid = ?1",
                    params![run_id, qualified, target.dry_run],
                )?;
                (*run_id, Some(stop.clone()))
            }
            Origin::Client { user } => {
                tx.execute(
                    "INSERT INTO run (jobid, jobname, username, command, trigger, status,
                                      job_pid, dry_run, start_time, sobject, owner)
                     VALUES (NULL, NULL, ?1, ?2, 'client', 'running', ?3, ?4, ?5, ?6, ?7)",
                    params![
                        user,
                        statement_sql,
                        std::process::id() as i64,
                        target.dry_run,
                        to_micros(target.started),
                        qualified,
                        self.owner()
                    ],
                )?;
                (tx.last_insert_rowid(), None)
            }
        };
        let next_seq = record_chunks::next_seq(&tx, runid)?;
        tx.commit()?;
        Ok(StoreWriteLog {
            store: self.clone(),
            runid,
            sobject: target.sobject.clone(),
            action: target.action,
            own_run: matches!(origin, Origin::Client { .. }),
            stop,
            state: Mutex::new(LogState {
                next_seq,
                ..LogState::default()
            }),
        })
    }
}

impl StoreWriteLog {
    /// The run this log writes into.
    pub fn runid(&self) -> i64 {
        self.runid
    }
}

impl RunRecorder for Store {
    fn begin_write(
        &self,
        origin: &Origin,
        statement_sql: &str,
        target: &WriteTarget,
    ) -> Result<Arc<dyn WriteLog>, String> {
        Store::begin_write(self, origin, statement_sql, target)
            .map(|log| Arc::new(log) as Arc<dyn WriteLog>)
            .map_err(|e| e.to_string())
    }
}
