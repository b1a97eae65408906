//! Report sources, served as tables in schema `reports`: files (CSV,
//! Parquet, JSON arrays, NDJSON; one file or a folder), HTTP JSON APIs,
//! Salesforce analytics reports and views (SQL over other tables). The
//! catalog's `reports.toml` declares them.
//!
//! File reports are DataFusion listing tables: a query re-reads the files,
//! so a report refreshed on disk is seen by the next query without a
//! restart. Views are planned at start, after every other report, so a
//! view may read reports, other views and Salesforce tables.

mod config;
mod files;
mod http;
mod http_table;
mod salesforce;
mod salesforce_filters;
mod types;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::SchemaProvider;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionContext;
use thiserror::Error;

pub use config::{HttpAuth, Pagination, ReportConfig, ReportFile};
pub use http::HttpReportError;
pub use salesforce::SalesforceReportError;
pub use types::{arrow_type, declared_schema};

use crate::config::{Catalog, Env};
use crate::salesforce::SalesforceClient;
use http::HttpSource;
use http_table::LazyReport;

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
/// catalog: files, HTTP APIs and Salesforce reports first, then views (in
/// an order that lets a view read another view). Secrets are read from
/// `env`; a Salesforce report uses the client of its connection.
pub async fn register_all(
    ctx: &SessionContext,
    catalog_name: &str,
    catalog: &Catalog,
    env: &Env,
    clients: &BTreeMap<String, Arc<SalesforceClient>>,
) -> Result<(), ReportError> {
    let mut views = Vec::new();
    let mut declared_http = Vec::new();
    let mut lazy: Vec<(String, Arc<dyn LazyReport>)> = Vec::new();
    for (name, report) in &catalog.reports {
        match report {
            ReportConfig::Sql { query, .. } => views.push((name.as_str(), query.as_str())),
            ReportConfig::Http { columns, .. } => {
                let source = Arc::new(http_source(name, report, env).map_err(|message| {
                    ReportError::Register {
                        name: name.clone(),
                        message,
                    }
                })?);
                match columns {
                    Some(columns) => declared_http.push((name, source, columns)),
                    None => lazy.push((name.clone(), source)),
                }
            }
            ReportConfig::Salesforce {
                connection,
                report_id,
                ..
            } => {
                let client = clients
                    .get(connection)
                    .ok_or_else(|| ReportError::Register {
                        name: name.clone(),
                        message: format!("connection {connection} is not configured"),
                    })?;
                let source = salesforce::SalesforceReport {
                    report: name.clone(),
                    connection: connection.clone(),
                    report_id: report_id.clone(),
                    client: Arc::clone(client),
                };
                lazy.push((name.clone(), Arc::new(source)));
            }
            _ => {}
        }
    }
    let schema = Arc::new(http_table::ReportsSchema::with_lazy(lazy));
    ctx.catalog(catalog_name)
        .ok_or_else(|| ReportError::Schema(format!("catalog {catalog_name} is missing")))?
        .register_schema(REPORTS_SCHEMA, Arc::clone(&schema) as _)
        .map_err(|e| ReportError::Schema(e.to_string()))?;
    for (name, source, columns) in declared_http {
        let registered = declared_schema(columns)
            .and_then(|s| http_table::table(source, Arc::new(s)).map_err(|e| e.to_string()))
            .and_then(|table| {
                schema
                    .register_table(name.clone(), table)
                    .map_err(|e| e.to_string())
            });
        registered.map_err(|message| ReportError::Register {
            name: name.clone(),
            message,
        })?;
    }
    for (name, report) in &catalog.reports {
        if let Some(file) = report.file() {
            files::register(ctx, name, &catalog.dir, report, &file)
                .await
                .map_err(|message| ReportError::Register {
                    name: name.clone(),
                    message,
                })?;
        }
    }
    view::register_views(ctx, views).await
}

/// An HTTP report's source, with its secrets read from `env`.
fn http_source(name: &str, report: &ReportConfig, env: &Env) -> Result<HttpSource, String> {
    let ReportConfig::Http {
        url,
        headers,
        auth,
        records,
        pagination,
        max_pages,
        ..
    } = report
    else {
        return Err("not an HTTP report".into());
    };
    let headers = headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), env.expand(v)?.into())))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(HttpSource {
        report: name.to_string(),
        url: url::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?,
        headers,
        auth: auth
            .as_ref()
            .map(|a| HttpSource::auth_from(a, |var| env.get(var)))
            .transpose()?,
        records: records
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| p.split('.').map(str::to_string).collect())
            .unwrap_or_default(),
        pagination: pagination.clone(),
        max_pages: *max_pages,
        client: reqwest::Client::new(),
    })
}
