//! Views: a report defined as a SELECT over other tables, registered once
//! the tables it reads exist.

use datafusion::common::TableReference;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;

use super::{REPORTS_SCHEMA, ReportError};

/// Register each `(name, query)` as a view in `reports`. A view may read
/// another view, whatever their order in the catalog: each pass registers
/// what it can plan, until a pass makes no progress.
pub async fn register_views(
    ctx: &SessionContext,
    mut pending: Vec<(&str, &str)>,
) -> Result<(), ReportError> {
    // A view is a query: DDL, DML or COPY in `query` must not run at start.
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut first_error = None;
        for (name, query) in pending.iter().copied() {
            match ctx.sql_with_options(query, read_only).await {
                Ok(frame) => {
                    let table = TableReference::partial(REPORTS_SCHEMA, name);
                    ctx.register_table(table, frame.into_view()).map_err(|e| {
                        ReportError::Register {
                            name: name.to_string(),
                            message: e.to_string(),
                        }
                    })?;
                }
                Err(e) => {
                    first_error.get_or_insert((name, e));
                    waiting.push((name, query));
                }
            }
        }
        if waiting.len() == pending.len()
            && let Some((name, e)) = first_error
        {
            return Err(ReportError::Register {
                name: name.to_string(),
                message: format!(
                    "query does not plan: {e}; fix query (a SELECT over reports.* or <connection>.<sobject>)"
                ),
            });
        }
        pending = waiting;
    }
    Ok(())
}
