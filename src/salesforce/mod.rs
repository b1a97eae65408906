//! The Salesforce HTTP client: authentication, SOQL queries with pagination,
//! key lookups as composite requests, describe (cached), sObject Collections
//! writes, Bulk API 2.0 ingest and Bulk API 2.0 query jobs.
//!
//! Everything here speaks the REST API's documented JSON shapes (see
//! `shared/SALESFORCE-API.md`); the same code talks to a real org and to
//! [`crate::simulator`].

mod analytics;
mod bulk;
mod bulk_csv;
mod bulk_query;
mod client;
mod composite;
mod error;
mod oauth;
mod types;

pub use analytics::{
    ReportCell, ReportColumn, ReportDescribe, ReportFilter, ReportRun, RunRequest,
};
pub use bulk::{
    BulkIngestWriter, BulkOperation, BulkRecordResult, BulkReport, Cell, DAILY_RECORD_LIMIT,
    JobEvents, JobObserver, JobProgress, JobResults, MAX_UPLOAD_BYTES, PollPolicy,
};
pub use bulk_query::{BULK_PAGE_RECORDS, BulkQueryOptions, CsvPage};
pub use client::{ApiUsage, MAX_BATCH, QueryPage, SalesforceClient};
pub use composite::MAX_COMPOSITE_QUERIES;
pub use error::SalesforceError;
pub use oauth::jwt::load_key as load_jwt_key;
pub use oauth::{Credentials, StoredConnection, TOKENS_FILE, TokenStore, web};
pub use types::{
    FieldDescribe, GlobalDescribe, PicklistValue, SObjectDescribe, SObjectSummary, SaveError,
    SaveResult,
};

/// The REST API version sfsql speaks.
pub const API_VERSION: &str = "62.0";

/// Records per sObject Collections call (Salesforce's limit).
pub const COLLECTIONS_BATCH: usize = 200;
