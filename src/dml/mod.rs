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
mod insert;
mod update;
mod validate;
mod write;

pub use bulk_write::WriteMethod;
pub use changeset::{
    ChangeSet, FieldChange, RecordChange, build_change_set, display_value,
    key_literals as key_literal_list,
};
pub use insert::{InsertPlan, apply_inserts, build_records, plan_insert};
pub use update::{UpdatePlan, plan_update, table_ref, target_name as update_target};
pub use validate::{check_value, required_on_create};
pub use write::{OutcomeStatus, RecordOutcome, UpdateSummary, apply_changes, dry_run_summary};

use thiserror::Error;

use crate::salesforce::SalesforceError;

/// What to do when one source key matches several target records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchPolicy {
    /// Stop the statement and name the keys (the default).
    Error,
    /// Update every matched record.
    All,
}

impl MatchPolicy {
    pub fn parse(s: &str) -> Option<MatchPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(MatchPolicy::Error),
            "all" => Some(MatchPolicy::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DmlOptions {
    pub dry_run: bool,
    pub on_multiple_matches: MatchPolicy,
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
            bulk_threshold: DEFAULT_BULK_THRESHOLD,
        }
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
    #[error("{0}")]
    Value(String),
    #[error("{0}")]
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
            DmlError::Ambiguous(_) => "21000",
            DmlError::Value(_) => "22P02",
            DmlError::Plan(_) => "42000",
            DmlError::Salesforce(e) if e.is_auth() => "28000",
            DmlError::Salesforce(SalesforceError::Transport { .. }) => "08006",
            DmlError::Salesforce(_) => "58000",
        }
    }
}
