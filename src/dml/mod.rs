//! DML against Salesforce tables, routed by sfsql (never by DataFusion's DML
//! hooks; DESIGN.md decision 1).
//!
//! An `UPDATE ... FROM` becomes a *change set*: an ordinary SELECT planned
//! and run by DataFusion that yields, per matched record, its Id, the match
//! key, the new values and the current ones. The change set is diffed
//! ([`changeset`]), checked for ambiguous matches, and then either shown
//! (dry run) or written through sObject Collections ([`write`]). Nothing is
//! written while planning or explaining.

mod bulk_write;
mod changeset;
mod delete;
mod insert;
mod merge;
mod merge_set;
mod update;
mod upsert;
mod validate;
mod write;

pub use bulk_write::{WriteMethod, WriteStep, write_plan};
pub use changeset::{
    Action, ChangeSet, FieldChange, RecordChange, WriteOp, build_change_set, display_value,
    key_literals as key_literal_list,
};
pub use delete::{DeletePlan, build_delete_set, delete_target, plan_delete};
pub use insert::{InsertPlan, build_records, create_set, plan_insert};
pub use merge::{MergePlan, merge_target, plan_merge};
pub use merge_set::build_merge_set;
pub use update::{UpdatePlan, plan_update, table_ref, target_name as update_target};
pub use upsert::{Conflict, build_upsert_set};
pub use validate::{Refusal, check_value, refusals, required_on_create};
pub use write::{
    FIRST_FAILURES, OutcomeStatus, RecordOutcome, SINK_BATCH, UpdateSummary, WriteOptions,
    WriteSink, apply, dry_run_summary,
};

use thiserror::Error;

use crate::salesforce::SalesforceError;

/// What to do when one source key matches several target records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchPolicy {
    /// Stop the statement and name the keys (the default).
    Error,
    /// The record modified most recently (LastModifiedDate) wins.
    Newest,
    /// Update every matched record.
    All,
}

impl MatchPolicy {
    pub fn parse(s: &str) -> Option<MatchPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(MatchPolicy::Error),
            "newest" => Some(MatchPolicy::Newest),
            "all" => Some(MatchPolicy::All),
            _ => None,
        }
    }
}

/// Records a statement may change unless the session raises the limit.
pub const DEFAULT_MAX_ROWS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct DmlOptions {
    pub dry_run: bool,
    pub on_multiple_matches: MatchPolicy,
    /// Salesforce's allOrNone, for change sets of one Collections call.
    pub all_or_none: bool,
    /// Refuse statements that would write more records than this.
    pub max_rows: usize,
    /// Change sets with more changed records than this go through Bulk
    /// API 2.0 ingest instead of sObject Collections.
    pub bulk_threshold: usize,
}

/// Default of `sfsql.bulk_threshold`: ten Collections calls' worth, where
/// a Bulk job (about six calls and a wait) starts to save API requests.
pub const DEFAULT_BULK_THRESHOLD: usize = 2000;

impl Default for DmlOptions {
    fn default() -> Self {
        DmlOptions {
            dry_run: false,
            on_multiple_matches: MatchPolicy::Error,
            all_or_none: false,
            max_rows: DEFAULT_MAX_ROWS,
            bulk_threshold: DEFAULT_BULK_THRESHOLD,
        }
    }
}

impl DmlOptions {
    /// How the change set is written.
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            all_or_none: self.all_or_none,
            bulk_threshold: self.bulk_threshold,
            ..WriteOptions::default()
        }
    }

    /// The guardrails checked before any write: `sfsql.max_rows` and
    /// allOrNone's reach of one Collections call. A dry run is never
    /// refused: it is how a large change is inspected.
    pub fn check(&self, set: &ChangeSet) -> Result<(), DmlError> {
        if self.dry_run {
            return Ok(());
        }
        let writes = set.changed().count();
        if writes > self.max_rows {
            return Err(DmlError::TooManyRows(format!(
                "this statement would {} {writes} {} records, more than sfsql.max_rows ({}); nothing was written. Check it with SET sfsql.dry_run = on; if it is intended, SET sfsql.max_rows = {writes} in this session",
                set.op.as_str(),
                set.sobject,
                self.max_rows
            )));
        }
        if self.all_or_none && writes > crate::salesforce::COLLECTIONS_BATCH {
            return Err(DmlError::Invalid(format!(
                "sfsql.all_or_none covers one Collections call ({} records); this statement writes {writes}, so a failure could not roll back the others. Split the statement or SET sfsql.all_or_none = off; nothing was written",
                crate::salesforce::COLLECTIONS_BATCH
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum DmlError {
    #[error("relation \"{0}\" does not exist")]
    UnknownTable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    UnknownColumn { table: String, column: String },
    #[error(
        "column \"{column}\" of {sobject} cannot be updated: Salesforce marks the field as not updateable"
    )]
    NotUpdateable { sobject: String, column: String },
    #[error(
        "column \"{column}\" of {sobject} cannot be set on create: Salesforce marks the field as not createable"
    )]
    NotCreateable { sobject: String, column: String },
    #[error("{0}")]
    Required(String),
    #[error("{0}")]
    Invalid(String),
    #[error("connection {0} is read-only in the catalog; writes are refused")]
    ReadOnly(String),
    #[error("{0}")]
    Ambiguous(String),
    /// ON CONFLICT names no external ID field (PostgreSQL's 42P10).
    #[error("{0}")]
    NoConflictTarget(String),
    /// DELETE without WHERE (pg-safeupdate's 21000).
    #[error("{0}")]
    WhereRequired(String),
    /// The statement would change more records than `sfsql.max_rows`.
    #[error("{0}")]
    TooManyRows(String),
    #[error("{0}")]
    Value(String),
    /// The run log cannot store the write, so it is not started.
    #[error("the run log cannot store this write, so nothing was written: {0}")]
    RunLog(String),
    /// Shows the Salesforce error behind a failed lookup as it is, without
    /// DataFusion's "External error: " wrapping.
    #[error("{}", SalesforceError::in_datafusion(.0).map_or_else(|| .0.to_string(), |sf| sf.to_string()))]
    Plan(#[from] datafusion::error::DataFusionError),
    #[error("{0}")]
    Salesforce(#[from] SalesforceError),
}

impl DmlError {
    /// The SQLSTATE reported to Postgres clients.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            DmlError::UnknownTable(_) => "42P01",
            DmlError::Unsupported(_) => "0A000",
            DmlError::UnknownColumn { .. } => "42703",
            DmlError::NotUpdateable { .. } | DmlError::NotCreateable { .. } => "428C9",
            DmlError::Required(_) => "23502",
            DmlError::Invalid(_) => "22000",
            DmlError::ReadOnly(_) => "25006",
            DmlError::Ambiguous(_) | DmlError::WhereRequired(_) => "21000",
            DmlError::NoConflictTarget(_) => "42P10",
            DmlError::TooManyRows(_) => "54000",
            DmlError::Value(_) => "22P02",
            DmlError::RunLog(_) => "58030",
            DmlError::Plan(e) => {
                SalesforceError::in_datafusion(e).map_or("42000", SalesforceError::sqlstate)
            }
            DmlError::Salesforce(e) => e.sqlstate(),
        }
    }
}
