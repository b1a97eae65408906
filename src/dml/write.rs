//! The one write path: a [`ChangeSet`] (update, create, upsert or delete)
//! goes to Salesforce through sObject Collections, 200 records a call, and
//! comes back as one [`RecordOutcome`] per record. Records that fail with
//! `UNABLE_TO_LOCK_ROW` are sent again, alone, with backoff. Change sets
//! of more than `bulk_threshold` changed records (updates, inserts, upserts,
//! deletes) go through Bulk API 2.0 instead.
//! Each request's records are reported to a [`WriteSink`] before and after
//! it is sent, so a write cut short still has every record accounted for.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::bulk_write::{WriteMethod, write_through_bulk};
use super::changeset::{Action, ChangeSet, RecordChange, WriteOp};
use crate::salesforce::{
    COLLECTIONS_BATCH, JobProgress, SalesforceClient, SalesforceError, SaveResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    Updated,
    Created,
    Deleted,
    /// The request was sent but its response was lost: Salesforce may or
    /// may not have applied it. Never retried blindly for creates.
    Unknown,
    Unchanged,
    /// Not attempted because an earlier failure stopped the statement.
    Skipped,
    Failed,
}

impl OutcomeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OutcomeStatus::Updated => "updated",
            OutcomeStatus::Created => "created",
            OutcomeStatus::Deleted => "deleted",
            OutcomeStatus::Unknown => "unknown",
            OutcomeStatus::Unchanged => "unchanged",
            OutcomeStatus::Skipped => "skipped",
            OutcomeStatus::Failed => "failed",
        }
    }
}

/// The outcome of one matched record (DESIGN.md decision 6).
#[derive(Debug, Clone)]
pub struct RecordOutcome {
    pub id: String,
    pub match_key: Option<String>,
    pub status: OutcomeStatus,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub fields: Vec<String>,
}

impl RecordOutcome {
    fn of(r: &RecordChange, status: OutcomeStatus) -> RecordOutcome {
        RecordOutcome {
            id: r.id.clone().unwrap_or_default(),
            match_key: r.match_key.clone(),
            status,
            error_code: None,
            message: None,
            fields: vec![],
        }
    }

    fn failed(r: &RecordChange, status: OutcomeStatus, code: &str, message: &str) -> Self {
        RecordOutcome {
            error_code: Some(code.to_string()),
            message: Some(message.to_string()),
            ..RecordOutcome::of(r, status)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UpdateSummary {
    pub matched: usize,
    pub updated: usize,
    pub created: usize,
    pub deleted: usize,
    /// Sent, but the outcome is not known (lost response on create).
    pub unknown: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Collections calls made.
    pub write_calls: usize,
    /// Records sent again after `UNABLE_TO_LOCK_ROW`.
    pub retried: usize,
    /// Bulk API 2.0 jobs the write went through (empty for Collections).
    pub bulk_jobs: Vec<String>,
    pub outcomes: Vec<RecordOutcome>,
}

impl UpdateSummary {
    pub(crate) fn push(&mut self, outcome: RecordOutcome) {
        match outcome.status {
            OutcomeStatus::Updated => self.updated += 1,
            OutcomeStatus::Created => self.created += 1,
            OutcomeStatus::Deleted => self.deleted += 1,
            OutcomeStatus::Unknown => self.unknown += 1,
            OutcomeStatus::Unchanged => self.unchanged += 1,
            OutcomeStatus::Skipped => self.skipped += 1,
            OutcomeStatus::Failed => self.failed += 1,
        }
        self.outcomes.push(outcome);
    }

    /// Records written successfully (what the command tag counts).
    pub fn succeeded(&self) -> usize {
        self.updated + self.created + self.deleted
    }
}

/// Where [`apply`] reports each request as it goes, so a write cut short
/// (a timeout, a cancel, a crash) leaves every record it sent accounted
/// for, not only the records of a statement that finished.
pub trait WriteSink: Send + Sync + std::fmt::Debug {
    /// `records` (status unknown) go out in one request now; if nothing
    /// follows, they stay unknown.
    fn sending(&self, records: &[RecordOutcome]);
    /// The final outcomes of the records last given to `sending`, after
    /// `calls` requests (lock retries included).
    fn sent(&self, outcomes: &[RecordOutcome], calls: usize);
    /// The final outcomes of records never sent: unchanged or skipped.
    fn not_sent(&self, outcomes: &[RecordOutcome]);
    /// Why no further request may go out (a run past its timeout).
    fn stop_reason(&self) -> Option<String>;
    /// A poll of a Bulk job holding records last given to `sending`.
    fn job_progress(&self, _job: &JobProgress) {}
}

/// How a change set is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Salesforce's `allOrNone`: one failure rolls back the whole call.
    pub all_or_none: bool,
    /// How often a record refused with `UNABLE_TO_LOCK_ROW` is sent again.
    pub lock_retries: u32,
    /// First backoff before a retry; doubled each time.
    pub backoff: Duration,
    /// Updates of more changed records than this go through Bulk API 2.0.
    pub bulk_threshold: usize,
    /// Where each request's outcomes are reported as they come.
    pub sink: Option<Arc<dyn WriteSink>>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            all_or_none: false,
            lock_retries: 3,
            backoff: Duration::from_millis(100),
            bulk_threshold: super::DEFAULT_BULK_THRESHOLD,
            sink: None,
        }
    }
}

/// Tell the sink `records` go out now (`how`), each `unknown` until its
/// answer: what stays in the log if the answer never comes back.
fn announce(sink: Option<&dyn WriteSink>, records: &[&RecordChange], how: &str) {
    if let Some(sink) = sink {
        let message = format!(
            "sent {how}, but sfsql stopped before Salesforce answered: check this record before rerunning"
        );
        let flying: Vec<_> = records
            .iter()
            .map(|r| RecordOutcome::failed(r, OutcomeStatus::Unknown, "UNKNOWN_OUTCOME", &message))
            .collect();
        sink.sending(&flying);
    }
}

/// `records` skipped for `reason`, never sent, as told to the sink.
fn skipped(
    sink: Option<&dyn WriteSink>,
    records: &[&RecordChange],
    reason: &str,
) -> Vec<RecordOutcome> {
    let outcomes: Vec<_> = records
        .iter()
        .map(|r| {
            let mut o = RecordOutcome::of(r, OutcomeStatus::Skipped);
            o.message = Some(reason.to_string());
            o
        })
        .collect();
    if let Some(sink) = sink {
        sink.not_sent(&outcomes);
    }
    outcomes
}

/// Write every changed record of `set`; unchanged records cost no call.
/// One outcome per record of the set, in the set's order (so RETURNING can
/// pair them). A MERGE's records are written by action: updates, then
/// creates, then deletes, each as its own change set.
pub async fn apply(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    opts: &WriteOptions,
) -> UpdateSummary {
    if set.op != WriteOp::Merge {
        return apply_one(client, set, opts).await;
    }
    let mut summary = UpdateSummary {
        matched: set.records.len(),
        ..Default::default()
    };
    let mut slots: Vec<Option<RecordOutcome>> = set
        .records
        .iter()
        .map(|r| {
            (r.action == Action::Unchanged).then(|| RecordOutcome::of(r, OutcomeStatus::Unchanged))
        })
        .collect();
    let unchanged: Vec<RecordOutcome> = slots.iter().flatten().cloned().collect();
    if let Some(sink) = opts.sink.as_deref()
        && !unchanged.is_empty()
    {
        sink.not_sent(&unchanged);
    }
    for (action, op) in [
        (Action::Update, WriteOp::Update),
        (Action::Create, WriteOp::Create),
        (Action::Delete, WriteOp::Delete),
    ] {
        let positions: Vec<usize> = (0..set.records.len())
            .filter(|&i| set.records[i].action == action)
            .collect();
        if positions.is_empty() {
            continue;
        }
        let part = ChangeSet {
            op,
            records: positions.iter().map(|&i| set.records[i].clone()).collect(),
            ..set.clone_empty()
        };
        let written = apply_one(client, &part, opts).await;
        summary.write_calls += written.write_calls;
        summary.retried += written.retried;
        summary.bulk_jobs.extend(written.bulk_jobs);
        for (&i, o) in positions.iter().zip(written.outcomes) {
            slots[i] = Some(o);
        }
    }
    push_outcomes(&mut summary, slots, &set.records);
    summary
}

/// [`apply`] for a change set of one write operation.
async fn apply_one(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    opts: &WriteOptions,
) -> UpdateSummary {
    let mut summary = UpdateSummary {
        matched: set.records.len(),
        ..Default::default()
    };
    let sink = opts.sink.as_deref();
    let mut slots: Vec<Option<RecordOutcome>> = vec![None; set.records.len()];
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    for (i, r) in set.records.iter().enumerate() {
        if r.action == Action::Unchanged {
            let o = RecordOutcome::of(r, OutcomeStatus::Unchanged);
            unchanged.push(o.clone());
            slots[i] = Some(o);
        } else {
            changed.push(i);
        }
    }
    if let Some(sink) = sink
        && !unchanged.is_empty()
    {
        sink.not_sent(&unchanged);
    }
    let mut stop: Option<String> = None;
    if WriteMethod::for_op(&set.op, changed.len(), opts.bulk_threshold) == WriteMethod::Bulk {
        let records: Vec<&RecordChange> = changed.iter().map(|&i| &set.records[i]).collect();
        let outcomes = match sink.and_then(|s| s.stop_reason()) {
            Some(reason) => skipped(sink, &records, &reason),
            None => {
                announce(sink, &records, "in a Bulk API 2.0 job");
                let mut bulk = UpdateSummary::default();
                write_through_bulk(client, set, &records, &mut bulk, opts.sink.as_ref()).await;
                summary.write_calls += bulk.write_calls;
                summary.bulk_jobs = bulk.bulk_jobs;
                if let Some(sink) = sink {
                    sink.sent(&bulk.outcomes, bulk.write_calls);
                }
                bulk.outcomes
            }
        };
        for (&i, o) in changed.iter().zip(outcomes) {
            slots[i] = Some(o);
        }
        changed.clear();
    }
    for chunk in changed.chunks(COLLECTIONS_BATCH) {
        let records: Vec<&RecordChange> = chunk.iter().map(|&i| &set.records[i]).collect();
        if stop.is_none() {
            stop = sink.and_then(|s| s.stop_reason());
        }
        let outcomes = if let Some(reason) = &stop {
            skipped(sink, &records, reason)
        } else {
            announce(sink, &records, "in an sObject Collections call");
            let calls_before = summary.write_calls;
            let (outcomes, halt) = write_chunk(client, set, &records, opts, &mut summary).await;
            if let Some(sink) = sink {
                sink.sent(&outcomes, summary.write_calls - calls_before);
            }
            stop = halt;
            outcomes
        };
        for (&i, o) in chunk.iter().zip(outcomes) {
            slots[i] = Some(o);
        }
    }
    push_outcomes(&mut summary, slots, &set.records);
    summary
}

/// Record one outcome per record, in order; a record without one (which
/// no path should leave) is `unknown`, never silently dropped.
fn push_outcomes(
    summary: &mut UpdateSummary,
    slots: Vec<Option<RecordOutcome>>,
    records: &[RecordChange],
) {
    for (slot, r) in slots.into_iter().zip(records) {
        summary.push(slot.unwrap_or_else(|| {
            RecordOutcome::failed(r, OutcomeStatus::Unknown, "UNKNOWN_OUTCOME", "no result")
        }));
    }
}

/// One Collections call for `chunk`, then calls for its locked records
/// only, until none is locked or the retries are spent. Returns the
/// outcomes in chunk order and, when later chunks must not be sent, why.
async fn write_chunk(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    chunk: &[&RecordChange],
    opts: &WriteOptions,
    summary: &mut UpdateSummary,
) -> (Vec<RecordOutcome>, Option<String>) {
    let mut slots: Vec<Option<RecordOutcome>> = vec![None; chunk.len()];
    let mut pending: Vec<usize> = (0..chunk.len()).collect();
    let mut attempt = 0;
    let mut halt = None;
    while !pending.is_empty() {
        let records: Vec<&RecordChange> = pending.iter().map(|&i| chunk[i]).collect();
        summary.write_calls += 1;
        let results = send(client, set, &records, opts.all_or_none).await;
        let mut again = Vec::new();
        match results {
            Ok(results) => {
                let retry_all = opts.all_or_none && locked_only(&results);
                for (&i, res) in pending.iter().zip(&results) {
                    let locked = retry_all || is_locked(res);
                    if !res.success && locked && attempt < opts.lock_retries {
                        again.push(i);
                    } else {
                        slots[i] = Some(outcome_of(&set.op, chunk[i], res));
                    }
                }
            }
            Err(e) => {
                let (status, code, message) = request_failure(&set.op, &e);
                for &i in &pending {
                    slots[i] = Some(RecordOutcome::failed(chunk[i], status, &code, &message));
                }
                let fatal = e.is_auth()
                    || e.code() == Some("REQUEST_LIMIT_EXCEEDED")
                    || set.op == WriteOp::Create;
                if fatal {
                    halt = Some(format!("not sent: an earlier call failed: {e}"));
                }
            }
        }
        if !again.is_empty() {
            summary.retried += again.len();
            tokio::time::sleep(opts.backoff * 2u32.pow(attempt.min(6))).await;
            attempt += 1;
        }
        pending = again;
    }
    let outcomes = slots
        .into_iter()
        .zip(chunk)
        .map(|(o, r)| {
            o.unwrap_or_else(|| {
                RecordOutcome::failed(r, OutcomeStatus::Unknown, "UNKNOWN_OUTCOME", "no result")
            })
        })
        .collect();
    (outcomes, halt)
}

fn is_locked(res: &SaveResult) -> bool {
    res.errors
        .iter()
        .any(|e| e.status_code == "UNABLE_TO_LOCK_ROW")
}

/// Under allOrNone a locked record rolls back the others; when nothing
/// else failed, the whole call is worth sending again.
fn locked_only(results: &[SaveResult]) -> bool {
    results.iter().any(is_locked)
        && results.iter().filter(|r| !r.success).all(|r| {
            r.errors.iter().all(|e| {
                e.status_code == "UNABLE_TO_LOCK_ROW"
                    || e.status_code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
            })
        })
}

async fn send(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    records: &[&RecordChange],
    all_or_none: bool,
) -> Result<Vec<SaveResult>, SalesforceError> {
    let body = || -> Vec<Value> {
        records
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert(
                    "attributes".into(),
                    serde_json::json!({ "type": set.sobject }),
                );
                if set.op == WriteOp::Update
                    && let Some(id) = &r.id
                {
                    m.insert("id".into(), Value::String(id.clone()));
                }
                for c in &r.changes {
                    m.insert(c.field.clone(), c.new.clone());
                }
                Value::Object(m)
            })
            .collect()
    };
    match &set.op {
        WriteOp::Update => client.update_records(body(), all_or_none).await,
        WriteOp::Create => client.create_records(body(), all_or_none).await,
        WriteOp::Upsert { external_id } => {
            client
                .upsert_records(&set.sobject, external_id, body(), all_or_none)
                .await
        }
        WriteOp::Delete => {
            let ids: Vec<String> = records.iter().filter_map(|r| r.id.clone()).collect();
            client.delete_records(&ids, all_or_none).await
        }
        // `apply` splits a MERGE by action before anything is sent.
        WriteOp::Merge => Ok(vec![]),
    }
}

fn outcome_of(op: &WriteOp, r: &RecordChange, res: &SaveResult) -> RecordOutcome {
    let status = if !res.success {
        OutcomeStatus::Failed
    } else {
        match op {
            WriteOp::Update => OutcomeStatus::Updated,
            WriteOp::Create => OutcomeStatus::Created,
            WriteOp::Delete => OutcomeStatus::Deleted,
            WriteOp::Upsert { .. } if res.created == Some(true) => OutcomeStatus::Created,
            WriteOp::Upsert { .. } => OutcomeStatus::Updated,
            WriteOp::Merge => r.action.predicted(),
        }
    };
    let first = res.errors.first();
    RecordOutcome {
        id: res.id.clone().or_else(|| r.id.clone()).unwrap_or_default(),
        match_key: r.match_key.clone(),
        status,
        error_code: first.map(|e| e.status_code.clone()),
        message: first.map(|e| e.message.clone()),
        fields: first.map(|e| e.fields.clone()).unwrap_or_default(),
    }
}

/// The outcome of records whose whole request failed. A create that may
/// have reached Salesforce is `unknown`, never retried: a rerun could
/// create the records twice.
fn request_failure(op: &WriteOp, e: &SalesforceError) -> (OutcomeStatus, String, String) {
    let never_sent = matches!(e, SalesforceError::Transport { source, .. } if source.is_connect())
        || matches!(e, SalesforceError::Api { .. })
        || e.is_auth();
    if *op == WriteOp::Create && !never_sent {
        return (
            OutcomeStatus::Unknown,
            "UNKNOWN_OUTCOME".to_string(),
            format!(
                "{e}; the records may or may not exist now: check before rerunning, or upsert by an external ID field so reruns cannot duplicate"
            ),
        );
    }
    (
        OutcomeStatus::Failed,
        e.code().unwrap_or("REQUEST_FAILED").to_string(),
        e.to_string(),
    )
}

/// The outcomes a dry run predicts; no call is made.
pub fn dry_run_summary(set: &ChangeSet) -> UpdateSummary {
    let mut summary = UpdateSummary {
        matched: set.records.len(),
        ..Default::default()
    };
    for r in &set.records {
        summary.push(RecordOutcome::of(r, r.action.predicted()));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SaveError;

    fn res(success: bool, code: Option<&str>) -> SaveResult {
        SaveResult {
            id: None,
            success,
            errors: code
                .map(|c| {
                    vec![SaveError {
                        status_code: c.into(),
                        message: String::new(),
                        fields: vec![],
                    }]
                })
                .unwrap_or_default(),
            created: None,
        }
    }

    #[test]
    fn all_or_none_retries_only_when_locks_alone_failed() {
        let locked = res(false, Some("UNABLE_TO_LOCK_ROW"));
        let rolled = res(false, Some("ALL_OR_NONE_OPERATION_ROLLED_BACK"));
        let bad = res(false, Some("STRING_TOO_LONG"));
        assert!(locked_only(&[locked.clone(), rolled.clone()]));
        assert!(!locked_only(&[locked, rolled.clone(), bad]));
        assert!(!locked_only(&[rolled, res(true, None)]));
    }
}
