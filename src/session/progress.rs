//! Progress of a write as it happens: a NOTICE after each request of a
//! statement that needs more than one, so a psql user sees a 20-minute
//! UPDATE move instead of a silent prompt.
//!
//! The client's hook runs a statement inside [`scope`]; the write path
//! picks the channel up with [`wrap`] (a task-local, so the statement
//! router's signatures stay as they are) and reports through a
//! [`WriteSink`] that also feeds the run log.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::dml::{OutcomeStatus, RecordOutcome, WriteSink};
use crate::salesforce::JobProgress;

tokio::task_local! {
    static PROGRESS: UnboundedSender<String>;
}

/// Run `work` with a progress channel; returns the receiving end's lines
/// through `rx` as they come (the caller forwards them as NOTICEs).
pub fn channel() -> (UnboundedSender<String>, UnboundedReceiver<String>) {
    unbounded_channel()
}

/// `work` with `tx` as the progress channel of the writes it makes.
pub async fn scope<F: Future>(tx: UnboundedSender<String>, work: F) -> F::Output {
    PROGRESS.scope(tx, work).await
}

/// The sink a write reports to: the run log's, with progress lines for the
/// client when the statement runs under [`scope`] and writes `to_send`
/// records.
pub fn wrap(inner: Option<Arc<dyn WriteSink>>, to_send: usize) -> Option<Arc<dyn WriteSink>> {
    match PROGRESS.try_with(|tx| tx.clone()) {
        Ok(tx) => Some(Arc::new(ProgressSink {
            inner,
            tx,
            to_send,
            tally: Mutex::new(Tally::default()),
        })),
        Err(_) => inner,
    }
}

#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    calls: usize,
    failed: usize,
    /// Each Bulk job's last poll: (state, records processed, failed).
    jobs: Vec<(String, String, u64, u64)>,
}

#[derive(Debug)]
struct ProgressSink {
    inner: Option<Arc<dyn WriteSink>>,
    tx: UnboundedSender<String>,
    to_send: usize,
    tally: Mutex<Tally>,
}

impl WriteSink for ProgressSink {
    fn sending(&self, records: &[RecordOutcome]) {
        if let Some(inner) = &self.inner {
            inner.sending(records);
        }
    }

    fn sent(&self, outcomes: &[RecordOutcome], calls: usize) {
        if let Some(inner) = &self.inner {
            inner.sent(outcomes, calls);
        }
        let line = {
            let Ok(mut tally) = self.tally.lock() else {
                return;
            };
            tally.sent += outcomes.len();
            tally.calls += calls;
            tally.failed += outcomes
                .iter()
                .filter(|o| o.status == OutcomeStatus::Failed)
                .count();
            // One request for the whole statement: its summary says it all.
            if tally.calls <= 1 && tally.sent >= self.to_send {
                return;
            }
            progress_line(&tally, self.to_send)
        };
        // The client may be gone; the write goes on regardless.
        let _ = self.tx.send(line);
    }

    fn not_sent(&self, outcomes: &[RecordOutcome]) {
        if let Some(inner) = &self.inner {
            inner.not_sent(outcomes);
        }
    }

    fn stop_reason(&self) -> Option<String> {
        self.inner.as_ref().and_then(|i| i.stop_reason())
    }

    /// A line each time a Bulk job's state or count moves, so a long job
    /// shows life while Salesforce works on it.
    fn job_progress(&self, job: &JobProgress) {
        if let Some(inner) = &self.inner {
            inner.job_progress(job);
        }
        let line = {
            let Ok(mut tally) = self.tally.lock() else {
                return;
            };
            let now = (job.state.clone(), job.processed, job.failed);
            match tally.jobs.iter_mut().find(|j| j.0 == job.job_id) {
                Some(j) if (j.1.as_str(), j.2, j.3) == (now.0.as_str(), now.1, now.2) => return,
                Some(j) => (j.1, j.2, j.3) = now,
                None => tally.jobs.push((job.job_id.clone(), now.0, now.1, now.2)),
            }
            let processed: u64 = tally.jobs.iter().map(|j| j.2).sum();
            let failed: u64 = tally.jobs.iter().map(|j| j.3).sum();
            let percent = (processed as usize * 100)
                .checked_div(self.to_send)
                .unwrap_or(100);
            format!(
                "progress: Bulk job {} {}: {processed} of {} records processed ({percent}%){}",
                job.job_id,
                job.state,
                self.to_send,
                match failed {
                    0 => String::new(),
                    n => format!(", {n} failed so far"),
                }
            )
        };
        let _ = self.tx.send(line);
    }
}

fn progress_line(tally: &Tally, to_send: usize) -> String {
    let percent = (tally.sent * 100).checked_div(to_send).unwrap_or(100);
    let failed = match tally.failed {
        0 => String::new(),
        n => format!(", {n} failed so far"),
    };
    format!(
        "progress: {} of {} records sent ({percent}%) in {} call{}{failed}",
        tally.sent,
        to_send,
        tally.calls,
        if tally.calls == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: OutcomeStatus) -> RecordOutcome {
        RecordOutcome {
            id: "003".into(),
            match_key: None,
            status,
            error_code: None,
            message: None,
            fields: vec![],
        }
    }

    #[tokio::test]
    async fn bulk_polls_give_a_line_when_the_job_moves() {
        let (tx, mut rx) = channel();
        scope(tx, async {
            let sink = wrap(None, 10_000).expect("a progress sink under scope");
            let poll = |state: &str, processed, failed| JobProgress {
                job_id: "750A".into(),
                state: state.into(),
                processed,
                failed,
            };
            sink.job_progress(&poll("InProgress", 0, 0));
            sink.job_progress(&poll("InProgress", 0, 0));
            sink.job_progress(&poll("InProgress", 4_000, 2));
            sink.job_progress(&poll("JobComplete", 10_000, 3));
        })
        .await;
        let mut lines = vec![];
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        assert_eq!(
            lines,
            [
                "progress: Bulk job 750A InProgress: 0 of 10000 records processed (0%)",
                "progress: Bulk job 750A InProgress: 4000 of 10000 records processed (40%), 2 failed so far",
                "progress: Bulk job 750A JobComplete: 10000 of 10000 records processed (100%), 3 failed so far",
            ]
        );
    }

    #[tokio::test]
    async fn a_line_per_request_only_when_the_write_needs_several() {
        let (tx, mut rx) = channel();
        scope(tx, async {
            let sink = wrap(None, 3).expect("a progress sink under scope");
            sink.sent(&[outcome(OutcomeStatus::Updated)], 1);
            sink.sent(
                &[
                    outcome(OutcomeStatus::Updated),
                    outcome(OutcomeStatus::Failed),
                ],
                1,
            );
        })
        .await;
        assert_eq!(
            rx.recv().await.as_deref(),
            Some("progress: 1 of 3 records sent (33%) in 1 call")
        );
        assert_eq!(
            rx.recv().await.as_deref(),
            Some("progress: 3 of 3 records sent (100%) in 2 calls, 1 failed so far")
        );

        let (tx, mut rx) = channel();
        scope(tx, async {
            let sink = wrap(None, 2).expect("sink");
            sink.sent(
                &[
                    outcome(OutcomeStatus::Updated),
                    outcome(OutcomeStatus::Updated),
                ],
                1,
            );
        })
        .await;
        assert!(rx.try_recv().is_err(), "one call: no progress line");
        assert!(wrap(None, 2).is_none(), "outside a client statement");
    }
}
