//! The run log's seam: what the engine asks of whoever stores writes (the
//! state store implements it), and the stop signal a job's run carries.
//!
//! A write opens a [`WriteLog`] before its first request; the log stores
//! each request's records as it goes ([`WriteSink`]), so a write cut short
//! by a timeout, a cancel or a crash leaves every record it sent in the
//! log, and [`WriteLog::finish`] closes it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::Origin;
use crate::dml::{UpdateSummary, WriteSink};

/// The write a log is opened for.
#[derive(Debug, Clone)]
pub struct WriteTarget {
    pub connection: String,
    pub sobject: String,
    /// `update`, `insert`, `upsert` or `delete`.
    pub action: &'static str,
    pub dry_run: bool,
    pub started: DateTime<Utc>,
}

/// One write's log: each request's records as they go, then the end.
pub trait WriteLog: WriteSink {
    /// The write is over; `summary` has every record's outcome.
    fn finish(&self, summary: &UpdateSummary, finished: DateTime<Utc>) -> Result<(), String>;
}

/// Stores what every write did (the run log). The scheduler's state store
/// implements it; without one, writes are reported to the client only.
pub trait RunRecorder: Send + Sync {
    /// Open the log of a write about to start. An error means the write
    /// must not start: it could not be accounted for.
    fn begin_write(
        &self,
        origin: &Origin,
        statement_sql: &str,
        target: &WriteTarget,
    ) -> Result<Arc<dyn WriteLog>, String>;
}

/// Set by the scheduler when a job's run must stop (its timeout passed):
/// a write stops before its next request, and no further statement of the
/// job starts. Clones share one signal.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<Mutex<Option<String>>>);

impl StopSignal {
    /// Ask the run to stop; the first reason wins.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason.into());
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::StopSignal;

    #[test]
    fn the_first_reason_wins_and_clones_share_it() {
        let a = StopSignal::default();
        let b = a.clone();
        assert_eq!(b.reason(), None);
        a.stop("cancelled: timeout after 5m");
        b.stop("later");
        assert_eq!(b.reason().as_deref(), Some("cancelled: timeout after 5m"));
    }
}
