//! Runs left behind by a process that is gone: at start and then every
//! [`EVERY`] the loop marks `failed` "interrupted" each `running` run whose
//! owner (see [`crate::state::Liveness`]) no longer lives, so a crashed
//! `sfsql jobs run` next to a running `sfsql serve` does not leave its run
//! `running` (and its job blocked as overlapping) until the next restart.
//! Runs of live processes are never touched.

use chrono::{DateTime, Utc};

use super::Scheduler;

/// How often the loop looks for runs of processes that are gone.
const EVERY: chrono::Duration = chrono::Duration::seconds(30);

impl Scheduler {
    /// Mark the runs of processes that are gone as interrupted; returns
    /// how many.
    pub(super) fn recover_interrupted(&self) -> usize {
        match self.store.recover_interrupted(self.clock.now()) {
            Ok(n) => {
                if n > 0 {
                    tracing::warn!(
                        runs = n,
                        "runs of an sfsql that stopped while they were going marked failed (interrupted)"
                    );
                }
                n
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot look for interrupted runs");
                0
            }
        }
    }

    /// [`Scheduler::recover_interrupted`] when [`EVERY`] has passed since
    /// `last`.
    pub(super) fn recover_if_due(&self, last: &mut DateTime<Utc>) -> usize {
        let now = self.clock.now();
        if now - *last < EVERY {
            return 0;
        }
        *last = now;
        self.recover_interrupted()
    }
}
