//! Writing a change set through Bulk API 2.0 ingest, the route for change
//! sets above `sfsql.bulk_threshold` (updates, inserts, upserts by external
//! ID and deletes): one CSV column per field sent (empty cells leave the
//! other fields alone) and each record's outcome read back from the job's
//! results.

use std::ops::Range;
use std::sync::Arc;

use super::changeset::{Action, ChangeSet, RecordChange, WriteOp};
use super::write::{OutcomeStatus, RecordOutcome, SINK_BATCH, WriteSink, announce};
use crate::salesforce::{
    BulkIngestWriter, BulkOperation, BulkRecordResult, Cell, JobEvents, JobResults, PollPolicy,
    SalesforceClient,
};

/// How a change set is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    /// sObject Collections, 200 records a call.
    Collections,
    /// Bulk API 2.0 ingest jobs.
    Bulk,
}

impl WriteMethod {
    /// Bulk when more than `threshold` records are to be written.
    pub fn choose(records: usize, threshold: usize) -> WriteMethod {
        if records > threshold {
            WriteMethod::Bulk
        } else {
            WriteMethod::Collections
        }
    }

    /// The method for `records` changed records of `op`: Bulk above the
    /// threshold for every operation (a MERGE is split by action first).
    pub fn for_op(op: &WriteOp, records: usize, threshold: usize) -> WriteMethod {
        match op {
            WriteOp::Merge => WriteMethod::Collections,
            _ => WriteMethod::choose(records, threshold),
        }
    }

    /// How a dry run or EXPLAIN names the method and its cost.
    pub fn describe(self, records: usize) -> String {
        match self {
            WriteMethod::Collections => format!(
                "sObject Collections ({} calls of up to 200 records)",
                records.div_ceil(crate::salesforce::COLLECTIONS_BATCH)
            ),
            WriteMethod::Bulk => format!(
                "Bulk API 2.0 ingest ({records} records in one job per 100 MB of CSV; \
                 create, upload, close, polls, results)"
            ),
        }
    }
}

/// Calls of one Bulk ingest job: create, upload, close, about two polls,
/// and the results.
pub const BULK_JOB_CALLS: usize = 6;

/// One step of writing a change set: the records of one operation and
/// how they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStep {
    /// `update`, `insert`, `upsert`, `delete` (a MERGE has one step per
    /// action).
    pub op: WriteOp,
    pub records: usize,
    pub method: WriteMethod,
    /// Collections calls, or Bulk jobs.
    pub batches: usize,
    /// Estimated API requests (before any retry).
    pub calls: usize,
}

impl WriteStep {
    fn of(op: WriteOp, records: usize, bulk_threshold: usize) -> WriteStep {
        let method = WriteMethod::for_op(&op, records, bulk_threshold);
        let batches = match method {
            WriteMethod::Collections => records.div_ceil(crate::salesforce::COLLECTIONS_BATCH),
            WriteMethod::Bulk => 1,
        };
        let calls = match method {
            WriteMethod::Collections => batches,
            WriteMethod::Bulk => batches * BULK_JOB_CALLS,
        };
        WriteStep {
            op,
            records,
            method,
            batches,
            calls,
        }
    }

    /// `update 3 records through sObject Collections: 1 call`.
    pub fn describe(&self) -> String {
        match self.method {
            WriteMethod::Collections => format!(
                "{} {} records through sObject Collections: {} call(s) of up to 200",
                self.op.as_str(),
                self.records,
                self.batches
            ),
            WriteMethod::Bulk => format!(
                "{} {} records through Bulk API 2.0 ingest: {} job(s) of about {} calls (create, upload, close, polls, results)",
                self.op.as_str(),
                self.records,
                self.batches,
                BULK_JOB_CALLS
            ),
        }
    }
}

/// How the changed records of `set` would be written: one step per
/// operation (a MERGE's updates, creates and deletes are separate steps).
pub fn write_plan(set: &ChangeSet, bulk_threshold: usize) -> Vec<WriteStep> {
    if set.op != WriteOp::Merge {
        let n = set.changed().count();
        return if n == 0 {
            vec![]
        } else {
            vec![WriteStep::of(set.op.clone(), n, bulk_threshold)]
        };
    }
    [
        (Action::Update, WriteOp::Update),
        (Action::Create, WriteOp::Create),
        (Action::Delete, WriteOp::Delete),
    ]
    .into_iter()
    .filter_map(|(action, op)| {
        let n = set.records.iter().filter(|r| r.action == action).count();
        (n > 0).then(|| WriteStep::of(op, n, bulk_threshold))
    })
    .collect()
}

/// The outcome of one record from its Bulk result; `done` is the status a
/// success means (updated or created).
pub fn bulk_outcome(
    id: &str,
    match_key: Option<&str>,
    result: BulkRecordResult,
    done: OutcomeStatus,
) -> RecordOutcome {
    let mut outcome = RecordOutcome {
        id: id.to_string(),
        match_key: match_key.map(str::to_string),
        status: done,
        error_code: None,
        message: None,
        fields: vec![],
    };
    match result {
        BulkRecordResult::Saved { id, .. } => {
            if outcome.id.is_empty() {
                outcome.id = id;
            }
        }
        BulkRecordResult::Failed(e) => {
            outcome.status = OutcomeStatus::Failed;
            outcome.error_code = Some(e.status_code);
            outcome.message = Some(e.message);
            outcome.fields = e.fields;
        }
        BulkRecordResult::Unprocessed(reason) => {
            outcome.status = OutcomeStatus::Skipped;
            outcome.message = Some(reason);
        }
        BulkRecordResult::Unknown(reason) => {
            outcome.status = OutcomeStatus::Unknown;
            outcome.message = Some(reason);
        }
    }
    outcome
}

/// The Bulk operation of a change set's operation, and the status a saved
/// record gets (an upsert's depends on whether it was created).
fn bulk_operation(op: &WriteOp) -> (BulkOperation, OutcomeStatus) {
    match op {
        WriteOp::Update | WriteOp::Merge => (BulkOperation::Update, OutcomeStatus::Updated),
        WriteOp::Create => (BulkOperation::Insert, OutcomeStatus::Created),
        WriteOp::Upsert { .. } => (BulkOperation::Upsert, OutcomeStatus::Updated),
        WriteOp::Delete => (BulkOperation::Delete, OutcomeStatus::Deleted),
    }
}

/// Writes the records of `set` at `changed` through one or more Bulk
/// jobs: an `Id` column for updates and deletes, then one column per field
/// sent (an empty cell leaves a field alone). Rows are encoded as the
/// upload fills; each job's records go to the sink (in batches) before it
/// starts and with their outcomes when it is read back, and each outcome
/// is handed to `settle` with its position in `set`. Returns the calls
/// made and the jobs' ids.
pub async fn write_through_bulk(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    changed: &[usize],
    sink: Option<&Arc<dyn WriteSink>>,
    settle: &mut (dyn FnMut(usize, RecordOutcome) + Send),
) -> (usize, Vec<String>) {
    let (operation, done) = bulk_operation(&set.op);
    let with_id = matches!(operation, BulkOperation::Update | BulkOperation::Delete);
    let mut columns: Vec<String> = if with_id {
        vec!["Id".to_string()]
    } else {
        vec![]
    };
    if operation != BulkOperation::Delete {
        for &i in changed {
            for c in &set.records[i].changes {
                if !columns.iter().any(|k| k.eq_ignore_ascii_case(&c.field)) {
                    columns.push(c.field.to_string());
                }
            }
        }
    }
    let mut rows = changed.iter().map(|&i| {
        let r = &set.records[i];
        let mut row = vec![None; columns.len()];
        if with_id {
            row[0] = Some(Cell::Text(r.id.as_deref().unwrap_or_default()));
        }
        for c in &r.changes {
            if let Some(k) = columns
                .iter()
                .position(|k| k.eq_ignore_ascii_case(&c.field))
            {
                row[k] = Some(Cell::Value(&c.new));
            }
        }
        row
    });
    let mut writer = BulkIngestWriter::new(Arc::clone(client), &set.sobject, operation)
        .poll(PollPolicy::default())
        // Updates and deletes name their records: no need to keep the Ids
        // Salesforce echoes.
        .saved_ids(!with_id);
    if let Some(sink) = sink {
        let sink = Arc::clone(sink);
        writer = writer.observe(Arc::new(move |job| sink.job_progress(job)));
    }
    if let WriteOp::Upsert { external_id } = &set.op {
        writer = writer.external_id(external_id);
    }
    let mut events = Events {
        set,
        changed,
        sink: sink.map(|s| s.as_ref()),
        done,
        settle,
    };
    match writer.write_jobs(&columns, &mut rows, &mut events).await {
        Ok(report) => (report.calls, report.job_ids),
        Err(e) => {
            let reason = format!("not sent: {e}");
            for batch in changed.chunks(SINK_BATCH) {
                let outcomes: Vec<RecordOutcome> = batch
                    .iter()
                    .map(|&i| {
                        let r = &set.records[i];
                        bulk_outcome(
                            r.id.as_deref().unwrap_or_default(),
                            r.match_key.as_deref(),
                            BulkRecordResult::Unprocessed(reason.clone()),
                            done,
                        )
                    })
                    .collect();
                if let Some(sink) = sink {
                    sink.not_sent(&outcomes);
                }
                for (&i, o) in batch.iter().zip(outcomes) {
                    (events.settle)(i, o);
                }
            }
            (0, vec![])
        }
    }
}

/// A Bulk write's jobs as they go: records announced to the sink before
/// each job, outcomes reported and settled after it.
struct Events<'a> {
    set: &'a ChangeSet,
    changed: &'a [usize],
    sink: Option<&'a dyn WriteSink>,
    done: OutcomeStatus,
    settle: &'a mut (dyn FnMut(usize, RecordOutcome) + Send),
}

impl JobEvents for Events<'_> {
    fn sending(&mut self, rows: Range<usize>) {
        let records: Vec<&RecordChange> = self.changed[rows]
            .iter()
            .map(|&i| &self.set.records[i])
            .collect();
        announce(self.sink, &records, "in a Bulk API 2.0 job");
    }

    fn finished(&mut self, rows: Range<usize>, results: JobResults, calls: usize) {
        let positions = &self.changed[rows];
        let batches = positions.len().div_ceil(SINK_BATCH);
        for (b, batch) in positions.chunks(SINK_BATCH).enumerate() {
            let outcomes: Vec<RecordOutcome> = batch
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let r = &self.set.records[i];
                    let result = results.get(b * SINK_BATCH + k);
                    let done = match &result {
                        BulkRecordResult::Saved { created: true, .. } => OutcomeStatus::Created,
                        _ => self.done,
                    };
                    bulk_outcome(
                        r.id.as_deref().unwrap_or_default(),
                        r.match_key.as_deref(),
                        result,
                        done,
                    )
                })
                .collect();
            if let Some(sink) = self.sink {
                // The job's calls count once, with its last batch.
                sink.sent(&outcomes, if b + 1 == batches { calls } else { 0 });
            }
            for (&i, o) in batch.iter().zip(outcomes) {
                (self.settle)(i, o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SaveError;

    #[test]
    fn method_follows_threshold() {
        assert_eq!(WriteMethod::choose(2000, 2000), WriteMethod::Collections);
        assert_eq!(WriteMethod::choose(2001, 2000), WriteMethod::Bulk);
        assert!(WriteMethod::Collections.describe(401).contains("3 calls"));
    }

    #[test]
    fn results_map_to_one_outcome_each() {
        let saved = BulkRecordResult::Saved {
            id: "003X".into(),
            created: false,
        };
        assert_eq!(
            bulk_outcome("003X", None, saved, OutcomeStatus::Updated).status,
            OutcomeStatus::Updated
        );
        let failed = BulkRecordResult::Failed(SaveError {
            status_code: "STRING_TOO_LONG".into(),
            message: "too long".into(),
            fields: vec!["Title".into()],
        });
        let o = bulk_outcome("003X", Some("k"), failed, OutcomeStatus::Updated);
        assert_eq!(o.status, OutcomeStatus::Failed);
        assert_eq!(o.error_code.as_deref(), Some("STRING_TOO_LONG"));
        assert_eq!(o.fields, vec!["Title"]);
        let skipped = BulkRecordResult::Unprocessed("job failed".into());
        assert_eq!(
            bulk_outcome("003X", None, skipped, OutcomeStatus::Updated).status,
            OutcomeStatus::Skipped
        );
        let created = BulkRecordResult::Saved {
            id: "00TN".into(),
            created: true,
        };
        assert_eq!(
            bulk_outcome("", None, created, OutcomeStatus::Created).id,
            "00TN"
        );
    }
}
