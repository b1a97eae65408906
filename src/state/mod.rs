//! The embedded state store: one SQLite file (`state.db`, WAL) in the state
//! directory, holding saved jobs, their runs and every run's per-record
//! outcomes. Every write is logged here as it goes, from psql too (see
//! [`StoreWriteLog`], the store's [`RunRecorder`](crate::session::RunRecorder)).
//!
//! The store only stores: schedules are validated and interpreted by
//! [`crate::scheduler`]. Calls are short synchronous SQLite statements
//! behind a mutex; SQLite's own locking (`BEGIN IMMEDIATE`) orders writers
//! when several processes share one state directory.

mod jobs;
mod migrations;
mod owner;
mod record_chunks;
mod runs;
mod waiting;
mod write_log;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;
use thiserror::Error;

pub use jobs::{CatchUp, JobOptions, JobRow, JobSource, JobSpec, Paused};
pub use owner::{Liveness, OWNERS_DIR, OwnerFiles};
pub use runs::{BeginRun, NewRun, RecordRow, RunRow, RunStatus, Trigger};
pub use waiting::{StartedBy, WaitingRun};
pub use write_log::StoreWriteLog;

/// The file inside the state directory.
pub const DB_FILE: &str = "state.db";

#[derive(Debug, Error)]
pub enum StateError {
    #[error(
        "cannot create the state directory {dir}: {source} (check --state-dir and its permissions)"
    )]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state store {path}: {source} (is it a SQLite file sfsql wrote?)")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the state store {path} was written by a newer sfsql (schema version {found}, this one knows {known}); upgrade sfsql"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("job {name} is defined twice: {first} and {second}; keep one of them")]
    DefinedTwice {
        name: String,
        first: String,
        second: String,
    },
    #[error("job {0} does not exist; SELECT jobid, jobname FROM cron.job lists the jobs")]
    NoSuchJob(String),
    #[error("cannot take an owner lock {path}: {source} (check the state directory's permissions)")]
    Owner {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state store lock poisoned by an earlier panic; restart sfsql")]
    Poisoned,
}

/// A handle on the state store; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Where the file lives, for messages and for the scheduler's lock file.
    dir: PathBuf,
    /// The owner id stored with every run this store starts, locked while
    /// the store is open (see [`owner`]).
    owner: Arc<owner::OwnerLease>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Open (creating it if needed) the store in `dir` and migrate it to
    /// the current schema.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Another process holding the write lock: wait rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        let mut conn = conn;
        migrations::migrate(&mut conn, &path)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            dir: dir.to_path_buf(),
            owner: Arc::new(owner::OwnerLease::take(dir)?),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The owner id of the runs this store starts.
    pub fn owner(&self) -> &str {
        self.owner.id()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Poisoned)
    }
}

/// Times are stored as microseconds since the Unix epoch, UTC.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

#[cfg(test)]
mod tests;
