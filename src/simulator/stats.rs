//! Request and record counters per org, as `GET /__sim/stats` reports them.
//! Counted by the server from what it receives, whatever the client.

use std::collections::BTreeMap;

use serde::Serialize;

/// Kinds of requests, as named in the stats JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequestKind {
    Token,
    Authorize,
    Revoke,
    Identity,
    Versions,
    Resources,
    DescribeGlobal,
    Describe,
    SObjectInfo,
    BlobRetrieve,
    ReportList,
    ReportDescribe,
    ReportRun,
    Query,
    QueryAll,
    QueryMore,
    Limits,
    CollectionsCreate,
    CollectionsUpdate,
    CollectionsUpsert,
    CollectionsDelete,
    Composite,
    BulkIngestCreate,
    BulkIngestUpload,
    BulkIngestState,
    BulkIngestInfo,
    BulkIngestResults,
    BulkQueryCreate,
    BulkQueryList,
    BulkQueryInfo,
    BulkQueryState,
    BulkQueryResults,
    NotFound,
}

impl RequestKind {
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Token => "token",
            RequestKind::Authorize => "authorize",
            RequestKind::Revoke => "revoke",
            RequestKind::Identity => "identity",
            RequestKind::Versions => "versions",
            RequestKind::Resources => "resources",
            RequestKind::DescribeGlobal => "describe_global",
            RequestKind::Describe => "describe",
            RequestKind::SObjectInfo => "sobject_info",
            RequestKind::BlobRetrieve => "blob_retrieve",
            RequestKind::ReportList => "report_list",
            RequestKind::ReportDescribe => "report_describe",
            RequestKind::ReportRun => "report_run",
            RequestKind::Query => "query",
            RequestKind::QueryAll => "query_all",
            RequestKind::QueryMore => "query_more",
            RequestKind::Limits => "limits",
            RequestKind::CollectionsCreate => "collections_create",
            RequestKind::CollectionsUpdate => "collections_update",
            RequestKind::CollectionsUpsert => "collections_upsert",
            RequestKind::CollectionsDelete => "collections_delete",
            RequestKind::Composite => "composite",
            RequestKind::BulkIngestCreate => "bulk_ingest_create",
            RequestKind::BulkIngestUpload => "bulk_ingest_upload",
            RequestKind::BulkIngestState => "bulk_ingest_state",
            RequestKind::BulkIngestInfo => "bulk_ingest_info",
            RequestKind::BulkIngestResults => "bulk_ingest_results",
            RequestKind::BulkQueryCreate => "bulk_query_create",
            RequestKind::BulkQueryList => "bulk_query_list",
            RequestKind::BulkQueryInfo => "bulk_query_info",
            RequestKind::BulkQueryState => "bulk_query_state",
            RequestKind::BulkQueryResults => "bulk_query_results",
            RequestKind::NotFound => "not_found",
        }
    }
}

/// Counters of one org since start or the last reset.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OrgStats {
    /// Requests by kind, whether they succeeded or not.
    pub requests: BTreeMap<&'static str, u64>,
    /// Records in query and queryMore responses and in Bulk query result
    /// pages.
    pub records_returned: u64,
    /// Detail rows in the fact maps of report runs.
    pub report_rows_returned: u64,
    /// Records in Collections request bodies (ids for delete).
    pub records_written: u64,
    /// Records of a Collections update or delete that repeat an Id named
    /// earlier in the same request (Salesforce applies up to 12 repeats of
    /// an update and refuses the rest with DUPLICATE_VALUE; a repeated
    /// delete finds the record deleted).
    pub duplicate_ids: u64,
    /// Records that Bulk 2.0 ingest jobs processed (failed ones included).
    pub bulk_records_processed: u64,
    /// Subrequests of composite requests by kind. A composite request is
    /// one API call (`requests.composite`, as Salesforce counts it toward
    /// the daily limit); what it carried is counted here, not in
    /// `requests`.
    pub composite_subrequests: BTreeMap<&'static str, u64>,
}

impl OrgStats {
    pub fn count(&mut self, kind: RequestKind) {
        *self.requests.entry(kind.name()).or_default() += 1;
    }

    pub fn count_subrequest(&mut self, kind: RequestKind) {
        *self.composite_subrequests.entry(kind.name()).or_default() += 1;
    }
}
