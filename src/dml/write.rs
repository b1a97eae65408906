//! Applying a change set through sObject Collections, 200 records a call
//! (or Bulk API 2.0 above the threshold), and recording one outcome per
//! matched record.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::bulk_write::{WriteMethod, update_through_bulk};
use super::changeset::ChangeSet;
use crate::salesforce::{COLLECTIONS_BATCH, SalesforceClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    Updated,
    Created,
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

#[derive(Debug, Clone, Default)]
pub struct UpdateSummary {
    pub matched: usize,
    pub updated: usize,
    pub created: usize,
    /// Sent, but the outcome is not known (lost response on create).
    pub unknown: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Collections calls made.
    pub write_calls: usize,
    /// Bulk API 2.0 jobs the write went through (empty for Collections).
    pub bulk_jobs: Vec<String>,
    pub outcomes: Vec<RecordOutcome>,
}

impl UpdateSummary {
    pub(crate) fn push(&mut self, outcome: RecordOutcome) {
        match outcome.status {
            OutcomeStatus::Updated => self.updated += 1,
            OutcomeStatus::Created => self.created += 1,
            OutcomeStatus::Unknown => self.unknown += 1,
            OutcomeStatus::Unchanged => self.unchanged += 1,
            OutcomeStatus::Skipped => self.skipped += 1,
            OutcomeStatus::Failed => self.failed += 1,
        }
        self.outcomes.push(outcome);
    }
}

/// Write the changed records of `set`; unchanged records cost no call.
/// More than `bulk_threshold` changed records go through Bulk API 2.0.
pub async fn apply_changes(
    client: &Arc<SalesforceClient>,
    set: &ChangeSet,
    all_or_none: bool,
    bulk_threshold: usize,
) -> UpdateSummary {
    let mut summary = UpdateSummary {
        matched: set.records.len(),
        ..Default::default()
    };
    for r in set.records.iter().filter(|r| r.changes.is_empty()) {
        summary.push(RecordOutcome {
            id: r.id.clone(),
            match_key: r.match_key.clone(),
            status: OutcomeStatus::Unchanged,
            error_code: None,
            message: None,
            fields: vec![],
        });
    }
    let changed: Vec<_> = set.changed().collect();
    if WriteMethod::choose(changed.len(), bulk_threshold) == WriteMethod::Bulk {
        update_through_bulk(client, set, &changed, &mut summary).await;
        return summary;
    }
    let mut stop: Option<String> = None;
    for chunk in changed.chunks(COLLECTIONS_BATCH) {
        if let Some(reason) = &stop {
            for r in chunk {
                summary.push(RecordOutcome {
                    id: r.id.clone(),
                    match_key: r.match_key.clone(),
                    status: OutcomeStatus::Skipped,
                    error_code: None,
                    message: Some(reason.clone()),
                    fields: vec![],
                });
            }
            continue;
        }
        let body: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert(
                    "attributes".into(),
                    serde_json::json!({ "type": set.sobject }),
                );
                m.insert("id".into(), Value::String(r.id.clone()));
                for c in &r.changes {
                    m.insert(c.field.clone(), c.new.clone());
                }
                Value::Object(m)
            })
            .collect();
        summary.write_calls += 1;
        match client.update_records(body, all_or_none).await {
            Ok(results) => {
                for (r, res) in chunk.iter().zip(results) {
                    let first = res.errors.first();
                    summary.push(RecordOutcome {
                        id: r.id.clone(),
                        match_key: r.match_key.clone(),
                        status: if res.success {
                            OutcomeStatus::Updated
                        } else {
                            OutcomeStatus::Failed
                        },
                        error_code: first.map(|e| e.status_code.clone()),
                        message: first.map(|e| e.message.clone()),
                        fields: first.map(|e| e.fields.clone()).unwrap_or_default(),
                    });
                }
            }
            Err(e) => {
                // The request failed as a whole: these records are failed
                // (Salesforce may or may not have applied them; an update of
                // the same values is safe to run again).
                let code = e.code().unwrap_or("REQUEST_FAILED").to_string();
                let message = e.to_string();
                if e.is_auth() || e.code() == Some("REQUEST_LIMIT_EXCEEDED") {
                    stop = Some(format!("not sent: an earlier call failed: {message}"));
                }
                for r in chunk {
                    summary.push(RecordOutcome {
                        id: r.id.clone(),
                        match_key: r.match_key.clone(),
                        status: OutcomeStatus::Failed,
                        error_code: Some(code.clone()),
                        message: Some(message.clone()),
                        fields: vec![],
                    });
                }
            }
        }
    }
    summary
}

/// The outcomes a dry run predicts: changed records as `updated`, the rest
/// `unchanged`; no call is made.
pub fn dry_run_summary(set: &ChangeSet) -> UpdateSummary {
    let mut summary = UpdateSummary {
        matched: set.records.len(),
        ..Default::default()
    };
    for r in &set.records {
        summary.push(RecordOutcome {
            id: r.id.clone(),
            match_key: r.match_key.clone(),
            status: if r.changes.is_empty() {
                OutcomeStatus::Unchanged
            } else {
                OutcomeStatus::Updated
            },
            error_code: None,
            message: None,
            fields: vec![],
        });
    }
    summary
}
