//! Retention of `cron.job_run_records`: records of runs older than
//! `[scheduler] record_retention_days` are deleted at start and then once
//! a day by the loop, in batches so the SQLite writer is never held long.
//! Run rows (`cron.job_run_details`) are kept.

use chrono::{DateTime, Utc};

use super::Scheduler;

/// Records deleted per SQLite transaction.
const BATCH: usize = 5_000;

/// How often the loop purges.
const EVERY: chrono::Duration = chrono::Duration::days(1);

/// Whether a purge is due at `now`, the last one done at `last`.
pub fn purge_due(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|l| now - l >= EVERY)
}

impl Scheduler {
    /// Purge now if retention is set and a day has passed since `last`
    /// (or it never ran: at start). The deletes run on a blocking thread;
    /// the loop waits for them. Returns the records deleted.
    pub(super) async fn purge_if_due(&self, last: &mut Option<DateTime<Utc>>) -> usize {
        let Some(days) = self.config.record_retention_days else {
            return 0;
        };
        let now = self.clock.now();
        if !purge_due(*last, now) {
            return 0;
        }
        *last = Some(now);
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.purge_records_before(cutoff, BATCH)).await {
            Ok(Ok(n)) => {
                if n > 0 {
                    tracing::info!(
                        records = n,
                        days,
                        "run records past their retention deleted"
                    );
                }
                n
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot delete old run records");
                0
            }
            Err(e) => {
                tracing::error!(error = %e, "the purge of old run records stopped");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_purge_at_start_then_daily() {
        let t = Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("t");
        assert!(purge_due(None, t));
        assert!(!purge_due(Some(t), t + chrono::Duration::hours(23)));
        assert!(purge_due(Some(t), t + chrono::Duration::hours(24)));
    }
}
