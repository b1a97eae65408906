//! The one write path: a [`ChangeSet`] (update, create, upsert or delete)
//! goes to Salesforce through sObject Collections, 200 records a call, and
//! comes back as one [`RecordOutcome`] per record. Records that fail with
//! `UNABLE_TO_LOCK_ROW` are sent again, alone, with backoff; so are the
//! records of a call Salesforce refused for now (503, the concurrent-request
//! limit) and, except for creates, of a call whose answer was lost. A create
//! whose answer was lost ends `unknown`: sending it again could create its
//! records twice. Change sets
//! of more than `bulk_threshold` changed records (updates, inserts, upserts,
//! deletes) go through Bulk API 2.0 instead.
//! Each request's records are reported to a [`WriteSink`] before and after
//! it is sent, so a write cut short still has every record accounted for.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::bulk_write::{WriteMethod, write_through_bulk};
use super::changeset::{Action, ChangeSet, RecordChange, WriteOp};
use super::validate::Refusal;
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

/// How many failed or unknown outcomes a summary keeps for the client's
/// notice when it does not keep every outcome.
pub const FIRST_FAILURES: usize = 5;

/// Records told to a [`WriteSink`] at a time when a write reports many at
/// once (a Bulk job, unchanged records), so the run log stores them in
/// batches rather than holding one list of the whole write.
pub const SINK_BATCH: usize = 10_000;

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
    /// Collections calls made, retries included.
    pub write_calls: usize,
    /// Records sent again (after `UNABLE_TO_LOCK_ROW`, a refused call, a
    /// lost answer).
    pub retried: usize,
    /// Why records were sent again (`UNABLE_TO_LOCK_ROW`, `503
    /// SERVER_UNAVAILABLE`, `a lost connection`), each once.
    pub retry_reasons: Vec<String>,
    /// Bulk API 2.0 jobs the write went through (empty for Collections).
    pub bulk_jobs: Vec<String>,
    /// Every record's outcome in the change set's order, when kept
    /// ([`WriteOptions::keep_outcomes`]: RETURNING, dry runs, writes no run
    /// log stores). Otherwise empty: the run log has them.
    pub outcomes: Vec<RecordOutcome>,
    /// Whether `push` keeps each outcome in `outcomes`.
    pub keep_outcomes: bool,
    /// The first failed or unknown outcomes, for the client's notice.
    pub first_failures: Vec<RecordOutcome>,
}

impl UpdateSummary {
    /// An empty summary of `matched` records that keeps every outcome or
    /// only counts them.
    pub fn new(matched: usize, keep_outcomes: bool) -> UpdateSummary {
        UpdateSummary {
            matched,
            keep_outcomes,
            ..UpdateSummary::default()
        }
    }

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
        if matches!(
            outcome.status,
            OutcomeStatus::Failed | OutcomeStatus::Unknown
        ) && self.first_failures.len() < FIRST_FAILURES
        {
            self.first_failures.push(outcome.clone());
        }
        if self.keep_outcomes {
            self.outcomes.push(outcome);
        }
    }

    /// Note that records were sent again for `reason`.
    fn retried_for(&mut self, reason: String) {
        if !self.retry_reasons.contains(&reason) {
            self.retry_reasons.push(reason);
        }
    }

    /// Add the counts of `part` (a MERGE's step) whose outcomes are not
    /// kept.
    fn absorb(&mut self, part: UpdateSummary) {
        self.updated += part.updated;
        self.created += part.created;
        self.deleted += part.deleted;
        self.unknown += part.unknown;
        self.unchanged += part.unchanged;
        self.skipped += part.skipped;
        self.failed += part.failed;
        let room = FIRST_FAILURES.saturating_sub(self.first_failures.len());
        self.first_failures
            .extend(part.first_failures.into_iter().take(room));
    }

    /// Records written successfully (what the command tag counts).
    pub fn succeeded(&self) -> usize {
        self.updated + self.created + self.deleted
    }

    /// Failed and unknown outcomes: what the notice lists the first of.
    pub fn failures(&self) -> usize {
        self.failed + self.unknown
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
    /// How often a record is sent again after `UNABLE_TO_LOCK_ROW`, a call
    /// refused for now or a lost answer.
    pub retries: u32,
    /// First backoff before a retry; doubled each time (and ten times as
    /// long after the concurrent-request limit, which takes longer to clear).
    pub backoff: Duration,
    /// Updates of more changed records than this go through Bulk API 2.0.
    pub bulk_threshold: usize,
    /// Where each request's outcomes are reported as they come.
    pub sink: Option<Arc<dyn WriteSink>>,
    /// Keep every outcome in the summary (RETURNING needs them; the run
    /// log, when there is one, stores them as they come).
    pub keep_outcomes: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            all_or_none: false,
            retries: 3,
            backoff: Duration::from_millis(100),
            bulk_threshold: super::DEFAULT_BULK_THRESHOLD,
            sink: None,
            keep_outcomes: true,
        }
    }
}

/// Tell the sink `records` go out now (`how`), each `unknown` until its
/// answer: what stays in the log if the answer never comes back.
pub(super) fn announce(sink: Option<&dyn WriteSink>, records: &[&RecordChange], how: &str) {
    if let Some(sink) = sink {
        let message = format!(
            "sent {how}, but sfsql stopped before Salesforce answered: check this record before rerunning"
        );
        for batch in records.chunks(SINK_BATCH) {
            let flying: Vec<_> = batch
                .iter()
                .map(|r| {
                    RecordOutcome::failed(r, OutcomeStatus::Unknown, "UNKNOWN_OUTCOME", &message)
                })
                .collect();
            sink.sending(&flying);
        }
    }
}

/// Where a write settles each record's outcome: kept by position when the
/// summary keeps outcomes (so they come out in the set's order), counted
/// at once otherwise. Either way each record is settled once.
struct Settle {
    /// Outcomes by position, when kept.
    slots: Vec<Option<RecordOutcome>>,
    /// Positions settled, when outcomes are only counted.
    done: Vec<bool>,
}

impl Settle {
    fn new(records: usize, keep: bool) -> Settle {
        if keep {
            Settle {
                slots: vec![None; records],
                done: vec![],
            }
        } else {
            Settle {
                slots: vec![],
                done: vec![false; records],
            }
        }
    }

    fn put(&mut self, summary: &mut UpdateSummary, i: usize, outcome: RecordOutcome) {
        if summary.keep_outcomes {
            self.slots[i] = Some(outcome);
        } else if !std::mem::replace(&mut self.done[i], true) {
            summary.push(outcome);
        }
    }

    /// Record the kept outcomes in order; a record without one (which no
    /// path should leave) is `unknown`, never silently dropped.
    fn finish(self, summary: &mut UpdateSummary, records: &[RecordChange]) {
        let missing = |r: &RecordChange| {
            RecordOutcome::failed(r, OutcomeStatus::Unknown, "UNKNOWN_OUTCOME", "no result")
        };
        if summary.keep_outcomes {
            for (slot, r) in self.slots.into_iter().zip(records) {
                summary.push(slot.unwrap_or_else(|| missing(r)));
            }
        } else {
            for (done, r) in self.done.into_iter().zip(records) {
                if !done {
                    summary.push(missing(r));
                }
            }
        }
    }
}

/// `records` skipped for `reason`, never sent, as told to the sink (in
/// batches) and settled at `positions`.
fn skip_all(
    sink: Option<&dyn WriteSink>,
    records: &[RecordChange],
    positions: &[usize],
    reason: &str,
    settle: &mut Settle,
    summary: &mut UpdateSummary,
) {
    for batch in positions.chunks(SINK_BATCH) {
        let refs: Vec<&RecordChange> = batch.iter().map(|&i| &records[i]).collect();
        for (&i, o) in batch.iter().zip(skipped(sink, &refs, reason)) {
            settle.put(summary, i, o);
        }
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

/// Unchanged records cost no call: their outcomes go to the sink in
/// batches and are settled.
fn settle_unchanged(
    sink: Option<&dyn WriteSink>,
    records: &[RecordChange],
    settle: &mut Settle,
    summary: &mut UpdateSummary,
) {
    let positions: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].action == Action::Unchanged)
        .collect();
    for batch in positions.chunks(SINK_BATCH) {
        let outcomes: Vec<RecordOutcome> = batch
            .iter()
            .map(|&i| RecordOutcome::of(&records[i], OutcomeStatus::Unchanged))
            .collect();
        if let Some(sink) = sink {
            sink.not_sent(&outcomes);
        }
        for (&i, o) in batch.iter().zip(outcomes) {
            settle.put(summary, i, o);
        }
    }
}

/// Write every changed record of `set`; unchanged records cost no call.
/// One outcome per record of the set, in the set's order when kept (so
/// RETURNING can pair them). A MERGE's records are written by action:
/// updates, then creates, then deletes, each as its own change set.
pub async fn apply(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    opts: &WriteOptions,
) -> UpdateSummary {
    if set.op != WriteOp::Merge {
        return apply_one(client, set, opts).await;
    }
    let mut summary = UpdateSummary::new(set.records.len(), opts.keep_outcomes);
    let mut settle = Settle::new(set.records.len(), opts.keep_outcomes);
    settle_unchanged(
        opts.sink.as_deref(),
        &set.records,
        &mut settle,
        &mut summary,
    );
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
        let mut written = apply_one(client, &part, opts).await;
        summary.write_calls += written.write_calls;
        summary.retried += written.retried;
        for reason in std::mem::take(&mut written.retry_reasons) {
            summary.retried_for(reason);
        }
        summary.bulk_jobs.append(&mut written.bulk_jobs);
        if opts.keep_outcomes {
            for (&i, o) in positions.iter().zip(written.outcomes) {
                settle.put(&mut summary, i, o);
            }
        } else {
            for &i in &positions {
                settle.done[i] = true;
            }
            summary.absorb(written);
        }
    }
    settle.finish(&mut summary, &set.records);
    summary
}

/// [`apply`] for a change set of one write operation.
async fn apply_one(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    opts: &WriteOptions,
) -> UpdateSummary {
    let mut summary = UpdateSummary::new(set.records.len(), opts.keep_outcomes);
    let mut settle = Settle::new(set.records.len(), opts.keep_outcomes);
    let sink = opts.sink.as_deref();
    settle_unchanged(sink, &set.records, &mut settle, &mut summary);
    let changed: Vec<usize> = (0..set.records.len())
        .filter(|&i| set.records[i].action != Action::Unchanged)
        .collect();
    let mut stop: Option<String> = None;
    if WriteMethod::for_op(&set.op, changed.len(), opts.bulk_threshold) == WriteMethod::Bulk {
        match sink.and_then(|s| s.stop_reason()) {
            Some(reason) => skip_all(
                sink,
                &set.records,
                &changed,
                &reason,
                &mut settle,
                &mut summary,
            ),
            None => {
                let mut put = |i, o| settle.put(&mut summary, i, o);
                let (calls, jobs) =
                    write_through_bulk(client, set, &changed, opts.sink.as_ref(), &mut put).await;
                summary.write_calls += calls;
                summary.bulk_jobs = jobs;
            }
        }
        settle.finish(&mut summary, &set.records);
        return summary;
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
            settle.put(&mut summary, i, o);
        }
    }
    settle.finish(&mut summary, &set.records);
    summary
}

/// One Collections call for `chunk`, then calls for the records worth
/// sending again (locked ones; all of them after a call refused for now or,
/// unless they are creates, whose answer was lost), until none is or the
/// retries are spent. Returns the outcomes in chunk order and, when later
/// chunks must not be sent, why.
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
    // Sent again after a lost answer: the first call may have applied it.
    let mut after_loss = false;
    while !pending.is_empty() {
        let records: Vec<&RecordChange> = pending.iter().map(|&i| chunk[i]).collect();
        summary.write_calls += 1;
        let results = send(client, set, &records, opts.all_or_none).await;
        let mut again = Vec::new();
        let mut wait = opts.backoff;
        match results {
            Ok(results) => {
                let retry_all = opts.all_or_none && locked_only(&results);
                for (&i, res) in pending.iter().zip(&results) {
                    let locked = retry_all || is_locked(res);
                    if !res.success && locked && attempt < opts.retries {
                        again.push(i);
                    } else {
                        slots[i] = Some(outcome_after(&set.op, chunk[i], res, after_loss));
                    }
                }
                if !again.is_empty() {
                    summary.retried_for("UNABLE_TO_LOCK_ROW".to_string());
                }
            }
            Err(e) if attempt < opts.retries && may_send_again(&set.op, &e) => {
                after_loss |= !e.is_refused_for_now();
                if e.code() == Some("REQUEST_LIMIT_EXCEEDED") {
                    wait *= 10;
                }
                summary.retried_for(retry_reason(&e));
                again = pending.clone();
            }
            Err(e) => {
                let (mut status, mut code, mut message) = request_failure(&set.op, &e);
                // Retries ran out on a call whose answer was lost (now or
                // before): Salesforce may have applied it.
                let maybe_applied = after_loss || (e.is_transient() && !e.is_refused_for_now());
                if maybe_applied && status == OutcomeStatus::Failed && !e.is_auth() {
                    status = OutcomeStatus::Unknown;
                    code = "UNKNOWN_OUTCOME".to_string();
                    message = format!(
                        "{e}; sent {} times without an answer, and a lost call may have applied it: check the records before rerunning",
                        attempt + 1
                    );
                }
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
            tokio::time::sleep(wait * 2u32.pow(attempt.min(6))).await;
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

/// Whether the records of a call that failed with `e` may be sent again:
/// any call Salesforce refused for now (it did nothing); a call whose
/// answer was lost or that failed mid-way only when a repeat cannot harm
/// it. A create is never sent blindly again: it could create its records
/// twice. The 24-hour request limit is not worth waiting for.
fn may_send_again(op: &WriteOp, e: &SalesforceError) -> bool {
    e.is_refused_for_now() || (*op != WriteOp::Create && e.is_transient())
}

/// What the notice says records were sent again after.
fn retry_reason(e: &SalesforceError) -> String {
    match e {
        SalesforceError::Api { status, code, .. } => format!("{status} {code}"),
        _ => "a lost connection".to_string(),
    }
}

/// [`outcome_of`] a record's result, where a delete sent again after a lost
/// answer that finds its record deleted counts it deleted: the lost call
/// deleted it.
fn outcome_after(
    op: &WriteOp,
    r: &RecordChange,
    res: &SaveResult,
    after_loss: bool,
) -> RecordOutcome {
    let deleted_by_lost_call = after_loss
        && *op == WriteOp::Delete
        && !res.success
        && !res.errors.is_empty()
        && res
            .errors
            .iter()
            .all(|e| e.status_code == "ENTITY_IS_DELETED");
    if deleted_by_lost_call {
        return RecordOutcome::of(r, OutcomeStatus::Deleted);
    }
    let outcome = outcome_of(op, r, res);
    // An upsert of a key no record held (the lookup before the write said
    // create) that, sent again, finds a record: the lost call created it.
    let created_by_lost_call = after_loss
        && matches!(op, WriteOp::Upsert { .. })
        && r.action == Action::Create
        && outcome.status == OutcomeStatus::Updated;
    if created_by_lost_call {
        return RecordOutcome {
            status: OutcomeStatus::Created,
            ..outcome
        };
    }
    outcome
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
                    m.insert(c.field.to_string(), c.new.clone());
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

/// The outcomes a dry run predicts; no call is made. A record with a
/// value Salesforce would refuse (`refused`, in record order) is predicted
/// `failed` with the first code and every field and reason.
pub fn dry_run_summary(set: &ChangeSet, refused: &[Refusal]) -> UpdateSummary {
    let mut summary = UpdateSummary::new(set.records.len(), true);
    let mut refused = refused.iter().peekable();
    for (i, r) in set.records.iter().enumerate() {
        let mine: Vec<&Refusal> =
            std::iter::from_fn(|| refused.next_if(|x| x.record == i)).collect();
        let Some(first) = mine.first() else {
            summary.push(RecordOutcome::of(r, r.action.predicted()));
            continue;
        };
        let message = mine
            .iter()
            .map(|x| format!("{}: {}", x.field, x.why))
            .collect::<Vec<_>>()
            .join("; ");
        summary.push(RecordOutcome {
            fields: mine.iter().map(|x| x.field.to_string()).collect(),
            ..RecordOutcome::failed(r, OutcomeStatus::Failed, first.code, &message)
        });
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

    fn api(status: u16, code: &str, message: &str) -> SalesforceError {
        SalesforceError::Api {
            connection: "sandbox".into(),
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn calls_refused_for_now_are_sent_again_and_creates_only_then() {
        let unavailable = api(503, "SERVER_UNAVAILABLE", "down");
        let concurrent = api(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
        );
        let daily = api(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        );
        let crashed = api(500, "UNKNOWN_EXCEPTION", "mid-way");
        let refused = api(400, "INVALID_FIELD", "no such field");
        for op in [WriteOp::Update, WriteOp::Create, WriteOp::Delete] {
            assert!(may_send_again(&op, &unavailable), "{op:?}");
            assert!(may_send_again(&op, &concurrent), "{op:?}");
            assert!(!may_send_again(&op, &daily), "{op:?}");
            assert!(!may_send_again(&op, &refused), "{op:?}");
        }
        assert!(may_send_again(&WriteOp::Update, &crashed));
        assert!(!may_send_again(&WriteOp::Create, &crashed));
        assert_eq!(retry_reason(&unavailable), "503 SERVER_UNAVAILABLE");
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
