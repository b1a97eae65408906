//! Progress of a write as it happens: a NOTICE after each request of a
//! statement that needs more than one, so a psql user sees a 20-minute
//! UPDATE move instead of a silent prompt.
//!
//! The client's hook runs a statement inside [`scope`]; the write path
//! picks the channel up with [`wrap`] (a task-local, so the statement
//! router's signatures stay as they are) and reports through a
//! [`WriteSink`] that also feeds the run log.
//!
//! A terminal (`sfsql jobs run` on a TTY) also asks for a [`Snapshot`]
//! after each request or Bulk poll through [`scope_bar`], and draws it
//! with [`bar_line`] in place of the lines.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;

use crate::dml::{OutcomeStatus, RecordOutcome, WriteSink};
use crate::salesforce::JobProgress;

tokio::task_local! {
    static PROGRESS: UnboundedSender<String>;
    static BAR: watch::Sender<Snapshot>;
}

/// Where the write going on stands, for a progress bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Records the statement sends (0: no write has started yet).
    pub to_send: usize,
    /// Records sent and answered so far, and how many of those failed.
    pub sent: usize,
    pub failed: usize,
    /// API requests so far.
    pub calls: usize,
    /// Through Bulk API 2.0: the last job state polled, and the records
    /// Salesforce has processed and failed over all the statement's jobs.
    pub bulk_state: Option<String>,
    pub processed: u64,
    pub bulk_failed: u64,
}

/// `work` with `tx` receiving a [`Snapshot`] each time a write of it moves
/// (with [`scope`] around or inside, which makes the writes report).
pub async fn scope_bar<F: Future>(tx: watch::Sender<Snapshot>, work: F) -> F::Output {
    BAR.scope(tx, work).await
}

const BAR_WIDTH: usize = 24;

/// One line of a progress bar for `label` (the job's name), `elapsed`
/// since it started: records done of those to send, how many succeeded
/// and failed, the rate, and the Bulk job's state.
pub fn bar_line(label: &str, s: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if s.to_send == 0 {
        return format!("{label}: running… {secs:.1}s");
    }
    let done = s.sent.max(s.processed as usize).min(s.to_send);
    let failed = s.failed.max(s.bulk_failed as usize).min(done);
    let filled = done * BAR_WIDTH / s.to_send;
    let rate = if secs >= 0.1 {
        format!("{:.0} records/s", done as f64 / secs)
    } else {
        "- records/s".into()
    };
    let bulk = s
        .bulk_state
        .as_deref()
        .map(|state| format!(" · Bulk job {state}"))
        .unwrap_or_default();
    format!(
        "{label} [{}{}] {done}/{} sent · {} succeeded · {failed} failed · {rate}{bulk} · {secs:.1}s",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        s.to_send,
        done - failed,
    )
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
        Ok(tx) => {
            let bar = BAR.try_with(|b| b.clone()).ok();
            if let Some(bar) = &bar {
                bar.send_replace(Snapshot {
                    to_send,
                    ..Snapshot::default()
                });
            }
            Some(Arc::new(ProgressSink {
                inner,
                tx,
                bar,
                to_send,
                tally: Mutex::new(Tally::default()),
            }))
        }
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
    /// A terminal's bar, if one is drawn.
    bar: Option<watch::Sender<Snapshot>>,
    to_send: usize,
    tally: Mutex<Tally>,
}

impl ProgressSink {
    /// The bar's snapshot of `tally`, if a bar is drawn.
    fn snapshot(&self, tally: &Tally) {
        let Some(bar) = &self.bar else { return };
        let last = tally.jobs.last();
        bar.send_replace(Snapshot {
            to_send: self.to_send,
            sent: tally.sent,
            failed: tally.failed,
            calls: tally.calls,
            bulk_state: last.map(|j| j.1.clone()),
            processed: tally.jobs.iter().map(|j| j.2).sum(),
            bulk_failed: tally.jobs.iter().map(|j| j.3).sum(),
        });
    }
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
            self.snapshot(&tally);
            // One request for the whole statement: its summary says it all.
            // A batch that made no call is part of a request (a Bulk job's
            // records reported in batches): its last batch gives the line.
            if calls == 0 || (tally.calls <= 1 && tally.sent >= self.to_send) {
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
            self.snapshot(&tally);
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

    #[test]
    fn the_bar_shows_records_rate_and_bulk_state() {
        let at = Duration::from_secs(2);
        assert_eq!(
            bar_line("nps", &Snapshot::default(), Duration::from_millis(400)),
            "nps: running… 0.4s"
        );
        let rest = Snapshot {
            to_send: 1000,
            sent: 400,
            failed: 3,
            calls: 2,
            ..Snapshot::default()
        };
        assert_eq!(
            bar_line("nps", &rest, at),
            "nps [#########---------------] 400/1000 sent · 397 succeeded · 3 failed · 200 records/s · 2.0s"
        );
        let bulk = Snapshot {
            to_send: 10_000,
            bulk_state: Some("InProgress".into()),
            processed: 10_000,
            bulk_failed: 2,
            ..Snapshot::default()
        };
        assert_eq!(
            bar_line("nps", &bulk, Duration::from_millis(40)),
            "nps [########################] 10000/10000 sent · 9998 succeeded · 2 failed · - records/s · Bulk job InProgress · 0.0s"
        );
    }

    #[tokio::test]
    async fn a_bar_gets_a_snapshot_as_the_write_moves() {
        let (tx, _rx) = channel();
        let (bar, snapshots) = watch::channel(Snapshot::default());
        scope_bar(
            bar,
            scope(tx, async {
                let sink = wrap(None, 3).expect("a progress sink under scope");
                assert_eq!(snapshots.borrow().to_send, 3, "drawn before the first call");
                sink.sent(
                    &[
                        outcome(OutcomeStatus::Updated),
                        outcome(OutcomeStatus::Failed),
                    ],
                    1,
                );
                sink.job_progress(&JobProgress {
                    job_id: "750A".into(),
                    state: "UploadComplete".into(),
                    processed: 1,
                    failed: 0,
                });
            }),
        )
        .await;
        assert_eq!(
            *snapshots.borrow(),
            Snapshot {
                to_send: 3,
                sent: 2,
                failed: 1,
                calls: 1,
                bulk_state: Some("UploadComplete".into()),
                processed: 1,
                bulk_failed: 0,
            }
        );
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
