//! Turning DML results into what a client sees: dry-run rows, RETURNING
//! rows, command tags, and the NOTICE that sums up every record's outcome.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::Insert;

use super::engine::{InsertResult, UpdateResult};
use super::router::{StatementResult, WriteReport};
use crate::dml::{self, OutcomeStatus, RecordOutcome, UpdateSummary};

/// How many per-record failures a notice lists.
const NOTICE_FAILURES: usize = 5;

pub const DRY_RUN_COLUMNS: [&str; 6] = [
    "sobject",
    "id",
    "match_key",
    "field",
    "old_value",
    "new_value",
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

pub fn update_output(
    result: UpdateResult,
    bulk_threshold: usize,
) -> Result<(StatementResult, Written), DataFusionError> {
    Ok(match result {
        UpdateResult::DryRun(set) => {
            let changed: Vec<_> = set.changed().collect();
            let fields: usize = changed.iter().map(|r| r.changes.len()).sum();
            let mut out = StatementResult::rows("UPDATE", dry_run_batch(&set)?);
            out.notices.push(format!(
                "dry run: {} {} records matched, {} would change ({} field values), {} unchanged; would write through {}; nothing was written",
                set.records.len(),
                set.sobject,
                changed.len(),
                fields,
                set.unchanged(),
                dml::WriteMethod::choose(changed.len(), bulk_threshold).describe(changed.len())
            ));
            let summary = dml::dry_run_summary(&set);
            (
                out,
                written(set.connection, set.sobject, "update", true, summary),
            )
        }
        UpdateResult::Applied { set, summary } => {
            let mut out = StatementResult::command("UPDATE", Some(summary.updated));
            let mut notice = format!(
                "{}.{}: {} matched, {} updated, {} unchanged, {} failed, {} skipped; {} write calls",
                set.connection,
                set.sobject.to_ascii_lowercase(),
                summary.matched,
                summary.updated,
                summary.unchanged,
                summary.failed,
                summary.skipped,
                summary.write_calls
            );
            if !summary.bulk_jobs.is_empty() {
                notice.push_str(&format!(
                    " through Bulk API 2.0 job {}",
                    summary.bulk_jobs.join(", ")
                ));
            }
            notice.push_str(&failures_text(&summary, |_, f| {
                format!("{} (key {})", f.id, f.match_key.as_deref().unwrap_or("-"))
            }));
            out.notices.push(notice);
            (
                out,
                written(set.connection, set.sobject, "update", false, summary),
            )
        }
    })
}

pub fn insert_output(result: InsertResult) -> Result<(StatementResult, Written), DataFusionError> {
    Ok(match result {
        InsertResult::DryRun { plan, records } => {
            let mut rows = Vec::new();
            for r in &records {
                for (field, value) in r {
                    rows.push(vec![
                        Some(plan.sobject().to_string()),
                        None,
                        None,
                        Some(field.clone()),
                        None,
                        dml::display_value(value),
                    ]);
                }
            }
            let mut out = StatementResult::rows("INSERT", text_batch(&DRY_RUN_COLUMNS, rows)?);
            out.notices.push(format!(
                "dry run: {} {} records would be created; nothing was written",
                records.len(),
                plan.sobject()
            ));
            let summary = UpdateSummary {
                matched: records.len(),
                created: records.len(),
                ..Default::default()
            };
            let sobject = plan.sobject().to_string();
            (
                out,
                written(plan.connection, sobject, "insert", true, summary),
            )
        }
        InsertResult::Applied {
            plan,
            records,
            summary,
        } => {
            let mut out = if plan.returning.is_empty() {
                StatementResult::command("INSERT 0", Some(summary.created))
            } else {
                // Only created records come back, as PostgreSQL returns only
                // inserted rows.
                let rows = summary
                    .outcomes
                    .iter()
                    .zip(&records)
                    .filter(|(o, _)| o.status == OutcomeStatus::Created)
                    .map(|(o, r)| {
                        plan.returning
                            .iter()
                            .map(|c| {
                                if c == "id" {
                                    Some(o.id.clone())
                                } else {
                                    r.iter()
                                        .find(|(k, _)| k.eq_ignore_ascii_case(c))
                                        .and_then(|(_, v)| dml::display_value(v))
                                }
                            })
                            .collect()
                    })
                    .collect();
                let cols: Vec<&str> = plan.returning.iter().map(String::as_str).collect();
                let mut out = StatementResult::rows("INSERT 0", text_batch(&cols, rows)?);
                out.rows_affected = Some(summary.created);
                out
            };
            let mut notice = format!(
                "{}.{}: {} created, {} failed, {} unknown, {} skipped; {} write calls",
                plan.connection,
                plan.sobject().to_ascii_lowercase(),
                summary.created,
                summary.failed,
                summary.unknown,
                summary.skipped,
                summary.write_calls
            );
            notice.push_str(&failures_text(&summary, |i, _| format!("row {}", i + 1)));
            out.notices.push(notice);
            let sobject = plan.sobject().to_string();
            (
                out,
                written(plan.connection, sobject, "insert", false, summary),
            )
        }
    })
}

fn written(
    connection: String,
    sobject: String,
    action: &'static str,
    dry_run: bool,
    summary: UpdateSummary,
) -> Written {
    Written {
        connection,
        sobject,
        action,
        dry_run,
        summary,
    }
}

/// The first failures (and unknown outcomes), one line each, labelled by
/// `label(position, outcome)`.
fn failures_text(
    summary: &UpdateSummary,
    label: impl Fn(usize, &RecordOutcome) -> String,
) -> String {
    let failing = summary
        .outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o.status, OutcomeStatus::Failed | OutcomeStatus::Unknown));
    let mut text = String::new();
    let mut total = 0;
    for (i, f) in failing {
        total += 1;
        if total > NOTICE_FAILURES {
            continue;
        }
        text.push_str(&format!(
            "\n  {}: {}: {}{}",
            label(i, f),
            f.error_code.as_deref().unwrap_or("ERROR"),
            f.message.as_deref().unwrap_or(""),
            if f.fields.is_empty() {
                String::new()
            } else {
                format!(" [{}]", f.fields.join(", "))
            }
        ));
    }
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

fn dry_run_batch(set: &dml::ChangeSet) -> Result<RecordBatch, DataFusionError> {
    let mut rows = Vec::new();
    for r in set.changed() {
        for c in &r.changes {
            rows.push(vec![
                Some(set.sobject.clone()),
                Some(r.id.clone()),
                r.match_key.clone(),
                Some(c.field.clone()),
                dml::display_value(&c.old),
                dml::display_value(&c.new),
            ]);
        }
    }
    text_batch(&DRY_RUN_COLUMNS, rows)
}
