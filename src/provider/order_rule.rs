//! `SortLimitPushdown`: `ORDER BY ... LIMIT n` over an sObject scan asks
//! Salesforce for the first n records only (`ORDER BY ... LIMIT n` in
//! SOQL), instead of every record for DataFusion to pick n from.
//!
//! ```text
//!   SortExec: TopK(fetch=5), expr=[createddate DESC]      (stays: DataFusion still sorts)
//!     SObjectScanExec: soql=[SELECT ... FROM Contact ORDER BY CreatedDate DESC NULLS FIRST LIMIT 5]
//! ```
//!
//! The sort stays, so the result is SQL's whatever order Salesforce sends.
//! The rule applies only when the scan feeds the sort directly (every filter
//! pushed exactly, so SOQL's LIMIT cannot cut rows a filter would keep) and
//! every sort key is a column [`soql::sort_item`] can order exactly.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::sorts::sort::SortExec;

use super::scan::SObjectScanExec;
use crate::soql;

#[derive(Debug, Default)]
pub struct SortLimitPushdown;

/// Nodes between a sort and its scan that pass rows through unchanged
/// (DataFusion wraps leaves in `CooperativeExec` for cancellation).
fn is_pass_through(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name() == "CooperativeExec" && plan.children().len() == 1
}

/// The sObject scan at `plan` or below pass-through nodes.
fn scan_below(plan: &Arc<dyn ExecutionPlan>) -> Option<&SObjectScanExec> {
    if let Some(scan) = plan.downcast_ref::<SObjectScanExec>() {
        return Some(scan);
    }
    if is_pass_through(plan) {
        return plan.children().first().and_then(|c| scan_below(c));
    }
    None
}

/// `plan` with the scan that [`scan_below`] found replaced by `scan`.
fn with_scan(
    plan: &Arc<dyn ExecutionPlan>,
    scan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if !is_pass_through(plan) {
        return Ok(scan);
    }
    let child = match plan.children().first() {
        Some(c) => with_scan(c, scan)?,
        None => return Ok(scan),
    };
    replace_children_if_necessary(Arc::clone(plan), vec![child])
}

impl PhysicalOptimizerRule for SortLimitPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let (Some(fetch), Some(scan)) = (sort.fetch(), scan_below(sort.input())) else {
                return Ok(Transformed::no(node));
            };
            // A lookup scan's rows depend on the join; a scan with a limit
            // or an order already is not a plain scan.
            if scan.is_lookup() || scan.spec().limit.is_some() || !scan.spec().order_by.is_empty() {
                return Ok(Transformed::no(node));
            }
            let mut order_by = Vec::new();
            for key in sort.expr().iter() {
                let Some(column) = key.expr.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(node));
                };
                let item = scan.field(column.index()).and_then(|f| {
                    soql::sort_item(f, key.options.descending, key.options.nulls_first)
                });
                let Some(item) = item else {
                    return Ok(Transformed::no(node));
                };
                order_by.push(item);
            }
            let ordered: Arc<dyn ExecutionPlan> = Arc::new(scan.with_order(order_by, fetch)?);
            let input = with_scan(sort.input(), ordered)?;
            let sort = SortExec::new(sort.expr().clone(), input)
                .with_fetch(Some(fetch))
                .with_preserve_partitioning(sort.preserve_partitioning());
            Ok(Transformed::yes(Arc::new(sort) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "sfsql_sort_limit_pushdown"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
