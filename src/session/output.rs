//! Turning DML results into what a client sees: dry-run rows, RETURNING
//! rows, command tags, and the NOTICE that sums up every record's outcome.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::Insert;

use super::router::{StatementResult, WriteReport};
use super::writes::DmlResult;
use crate::dml::{self, Action, ChangeSet, OutcomeStatus, RecordOutcome, UpdateSummary, WriteOp};

/// How many per-record failures a notice lists.
const NOTICE_FAILURES: usize = dml::FIRST_FAILURES;

/// `error` is NULL but on `invalid` rows: the value in `new_value` is one
/// Salesforce would refuse, and why. A column of its own keeps `field`,
/// `old_value` and `new_value` meaning the same on every row, and psql
/// shows it blank where nothing is wrong.
pub const DRY_RUN_COLUMNS: [&str; 8] = [
    "action",
    "sobject",
    "id",
    "match_key",
    "field",
    "old_value",
    "new_value",
    "error",
];

/// A write's report before its end time is known.
pub struct Written {
    connection: String,
    sobject: String,
    action: &'static str,
    dry_run: bool,
    summary: UpdateSummary,
}

impl Written {
    pub fn into_report(self, started: DateTime<Utc>, finished: DateTime<Utc>) -> WriteReport {
        WriteReport {
            connection: self.connection,
            sobject: self.sobject,
            action: self.action,
            dry_run: self.dry_run,
            started,
            finished,
            summary: self.summary,
        }
    }
}

/// The command tag word of a write: `UPDATE n`, `INSERT 0 n`, `DELETE n`.
fn tag_of(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::Update => "UPDATE",
        WriteOp::Create | WriteOp::Upsert { .. } => "INSERT 0",
        WriteOp::Delete => "DELETE",
        WriteOp::Merge => "MERGE",
    }
}

/// What a client sees of a DML statement: the dry run's rows, RETURNING
/// rows or the command tag, and a NOTICE summing up every outcome.
pub fn write_output(result: DmlResult) -> Result<(StatementResult, Written), DataFusionError> {
    let DmlResult {
        set,
        refused,
        dry_run,
        summary,
        returning,
        method,
        log: _,
    } = result;
    let tag = tag_of(&set.op);
    let mut out = if dry_run {
        StatementResult::rows(tag, dry_run_batch(&set, &refused)?)
    } else if returning.is_empty() {
        StatementResult::command(tag, Some(summary.succeeded()))
    } else {
        let mut out = StatementResult::rows(tag, returning_batch(&set, &summary, &returning)?);
        out.rows_affected = Some(summary.succeeded());
        out
    };
    let counts = counts_text(&summary);
    let target = format!("{}.{}", set.connection, set.sobject.to_ascii_lowercase());
    if dry_run {
        let refused = match refused.len() {
            0 => String::new(),
            n => format!(
                "; {n} value(s) Salesforce would refuse (the rows with action invalid): fix them before writing"
            ),
        };
        out.notices.push(format!(
            "dry run of {target}: {} records, {counts}; would {method}{refused}; nothing was written",
            summary.matched
        ));
    } else {
        let mut notice = format!(
            "{target}: {} records, {counts}; {} write calls",
            summary.matched, summary.write_calls
        );
        if !summary.bulk_jobs.is_empty() {
            notice.push_str(&format!(
                " through Bulk API 2.0 job {}",
                summary.bulk_jobs.join(", ")
            ));
        }
        if summary.retried > 0 {
            notice.push_str(&format!(
                ", {} records retried after {}",
                summary.retried,
                summary.retry_reasons.join(" or ")
            ));
        }
        notice.push_str(&failures_text(&summary, |f| {
            match (f.id.as_str(), f.match_key.as_deref()) {
                ("", Some(key)) => format!("key {key}"),
                ("", None) => "a new record".to_string(),
                (id, Some(key)) => format!("{id} (key {key})"),
                (id, None) => id.to_string(),
            }
        }));
        out.notices.push(notice);
    }
    let written = Written {
        connection: set.connection,
        sobject: set.sobject,
        action: set.op.as_str(),
        dry_run,
        summary,
    };
    Ok((out, written))
}

/// `3 updated, 1 unchanged`: the non-zero outcome counts (a dry run's are
/// predictions).
fn counts_text(s: &UpdateSummary) -> String {
    let parts: Vec<String> = [
        (s.created, "created"),
        (s.updated, "updated"),
        (s.deleted, "deleted"),
        (s.unchanged, "unchanged"),
        (s.failed, "failed"),
        (s.unknown, "unknown"),
        (s.skipped, "skipped"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join(", ")
    }
}

/// RETURNING rows: records written (created or updated), as PostgreSQL
/// returns only the rows it inserted or updated.
fn returning_batch(
    set: &ChangeSet,
    summary: &UpdateSummary,
    returning: &[String],
) -> Result<RecordBatch, DataFusionError> {
    let rows = summary
        .outcomes
        .iter()
        .zip(&set.records)
        .filter(|(o, _)| matches!(o.status, OutcomeStatus::Created | OutcomeStatus::Updated))
        .map(|(o, r)| {
            returning
                .iter()
                .map(|c| {
                    if c == "id" {
                        Some(o.id.clone())
                    } else {
                        r.changes
                            .iter()
                            .find(|ch| ch.field.eq_ignore_ascii_case(c))
                            .and_then(|ch| dml::display_value(&ch.new))
                    }
                })
                .collect()
        })
        .collect();
    let cols: Vec<&str> = returning.iter().map(String::as_str).collect();
    text_batch(&cols, rows)
}

/// The first failures (and unknown outcomes), one line each, labelled by
/// `label(outcome)`.
fn failures_text(summary: &UpdateSummary, label: impl Fn(&RecordOutcome) -> String) -> String {
    let mut text = String::new();
    for f in summary.first_failures.iter().take(NOTICE_FAILURES) {
        text.push_str(&format!(
            "\n  {}: {}: {}{}",
            label(f),
            f.error_code.as_deref().unwrap_or("ERROR"),
            f.message.as_deref().unwrap_or(""),
            if f.fields.is_empty() {
                String::new()
            } else {
                format!(" [{}]", f.fields.join(", "))
            }
        ));
    }
    let total = summary.failures();
    if total > NOTICE_FAILURES {
        text.push_str(&format!(
            "\n  ... and {} more failures",
            total - NOTICE_FAILURES
        ));
    }
    text
}

pub fn returning_columns(insert: &Insert) -> Vec<String> {
    insert
        .returning
        .iter()
        .flatten()
        .map(|item| item.to_string().to_ascii_lowercase())
        .collect()
}

pub fn text_schema(cols: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

pub fn text_batch(
    cols: &[&str],
    rows: Vec<Vec<Option<String>>>,
) -> Result<RecordBatch, DataFusionError> {
    let schema = text_schema(cols);
    let arrays: Vec<ArrayRef> = (0..cols.len())
        .map(|c| Arc::new(rows.iter().map(|r| r[c].clone()).collect::<StringArray>()) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// One row per field a record would change (a create lists every field
/// it sets; a delete is one row without a field). A value in `refused` is
/// an `invalid` row with its error.
fn dry_run_batch(
    set: &ChangeSet,
    refused: &[dml::Refusal],
) -> Result<RecordBatch, DataFusionError> {
    let why: HashMap<(usize, &str), String> = refused
        .iter()
        .map(|x| ((x.record, &*x.field), x.why.clone()))
        .collect();
    let mut rows = Vec::new();
    for (i, r) in set.records.iter().enumerate() {
        if r.action == Action::Unchanged {
            continue;
        }
        let row = |field: Option<String>, old: Option<String>, new: Option<String>| {
            let error = field.as_deref().and_then(|f| why.get(&(i, f)).cloned());
            let action = if error.is_some() {
                "invalid"
            } else {
                r.action.as_str()
            };
            vec![
                Some(action.to_string()),
                Some(set.sobject.clone()),
                r.id.clone(),
                r.match_key.clone(),
                field,
                old,
                new,
                error,
            ]
        };
        if r.action == Action::Delete {
            rows.push(row(None, None, None));
            continue;
        }
        // An upsert carries its unchanged key along; it is not a change.
        for c in r
            .changes
            .iter()
            .filter(|c| r.action == Action::Create || c.old != c.new)
        {
            rows.push(row(
                Some(c.field.to_string()),
                dml::display_value(&c.old),
                dml::display_value(&c.new),
            ));
        }
    }
    text_batch(&DRY_RUN_COLUMNS, rows)
}
