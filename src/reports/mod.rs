//! Report sources, served as tables in schema `reports`: files (CSV,
//! Parquet, JSON arrays, NDJSON; one file or a folder) and views (SQL over
//! other tables). The catalog's `reports.toml` declares them.
//!
//! File reports are DataFusion listing tables: a query re-reads the files,
//! so a report refreshed on disk is seen by the next query without a
//! restart. Views are planned at start, after every other report, so a
//! view may read reports, other views and Salesforce tables.

mod config;
mod files;
mod types;
mod view;

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionContext;
use thiserror::Error;

pub use config::{ReportConfig, ReportFile};
pub use types::{arrow_type, declared_schema};

use crate::config::Catalog;

/// The schema every report lives in.
pub const REPORTS_SCHEMA: &str = "reports";

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("report {name}: {message}")]
    Register { name: String, message: String },
    #[error("cannot create schema {REPORTS_SCHEMA}: {0}")]
    Schema(String),
}

/// The runtime every report query runs in. DataFusion caches folder
/// listings forever by default; reports re-list their folder on each query
/// so a file dropped into it is read without a restart.
pub fn runtime_env() -> Result<Arc<RuntimeEnv>, ReportError> {
    RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()
        .map_err(|e| ReportError::Schema(e.to_string()))
}

/// Register schema `reports` in `catalog_name` with every report of the
/// catalog: files first, then views (in an order that lets a view read
/// another view).
pub async fn register_all(
    ctx: &SessionContext,
    catalog_name: &str,
    catalog: &Catalog,
) -> Result<(), ReportError> {
    let df_catalog = ctx
        .catalog(catalog_name)
        .ok_or_else(|| ReportError::Schema(format!("catalog {catalog_name} is missing")))?;
    df_catalog
        .register_schema(REPORTS_SCHEMA, Arc::new(MemorySchemaProvider::new()))
        .map_err(|e| ReportError::Schema(e.to_string()))?;
    let mut views = Vec::new();
    for (name, report) in &catalog.reports {
        let failed = |message: String| ReportError::Register {
            name: name.clone(),
            message,
        };
        if let Some(file) = report.file() {
            files::register(ctx, name, &catalog.dir, report, &file)
                .await
                .map_err(failed)?;
        } else if let ReportConfig::Sql { query, .. } = report {
            views.push((name.as_str(), query.as_str()));
        }
    }
    view::register_views(ctx, views).await
}
