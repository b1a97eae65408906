//! `LookupJoin`, a physical optimizer rule: a hash join whose one side is
//! small (a report, a filtered sObject, another join) and whose other side
//! is an sObject scan keyed on a filterable field becomes a lookup join.
//!
//! ```text
//!   HashJoinExec(CollectLeft)                 before: HashJoinExec
//!     KeyCollectExec(key = lower(r.email))            report scan
//!       <small side>                                  SObjectScanExec: SELECT ... FROM Contact
//!     SObjectScanExec: lookup by key = [SELECT ... FROM Contact WHERE Email IN (<keys>)]
//! ```
//!
//! The build side is read first (a CollectLeft hash join always does), its
//! distinct keys go to the scan, which sends `IN` lists split under the
//! URI limit. DataFusion's own dynamic filters stop at 150 distinct keys;
//! this works for any number. SOQL's case-insensitive `IN` returns a
//! superset of the matches, and the hash join still applies the exact key.
//! The rule runs right after DataFusion's join selection, before
//! distribution is enforced.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::NullEquality;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr::projection::update_expr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

use super::lookup::{KeyCollectExec, KeySlot};
use super::scan::SObjectScanExec;
use crate::soql::{Condition, is_text_type};

#[derive(Debug, Default)]
pub struct LookupJoin;

impl PhysicalOptimizerRule for LookupJoin {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match node.downcast_ref::<HashJoinExec>() {
            Some(join) => Ok(match rewrite(join)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            }),
            None => Ok(Transformed::no(node)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "sfsql_lookup_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

struct Candidate {
    side: Side,
    pair: usize,
    /// The lookup is by the object's Id (a parent lookup).
    by_id: bool,
    /// The other side (the key source) is small.
    source_small: bool,
}

/// May the probe (right) side be restricted to rows whose key matches the
/// build side? Not when unmatched probe rows are part of the result.
fn probe_restrictable(join_type: JoinType) -> bool {
    matches!(
        join_type,
        JoinType::Inner
            | JoinType::Left
            | JoinType::LeftSemi
            | JoinType::LeftAnti
            | JoinType::LeftMark
            | JoinType::RightSemi
    )
}

fn rewrite(join: &HashJoinExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if join.null_equality() != NullEquality::NullEqualsNothing
        || join.left().is::<KeyCollectExec>()
        || join.on().is_empty()
    {
        return Ok(None);
    }
    let mut candidates = Vec::new();
    for (pair, (l, r)) in join.on().iter().enumerate() {
        if probe_restrictable(*join.join_type())
            && let Some(by_id) = probe(join.right(), r, None)?.map(|p| p.1)
        {
            candidates.push(Candidate {
                side: Side::Right,
                pair,
                by_id,
                source_small: is_small(join.left()),
            });
        }
        if probe_restrictable(join.join_type().swap())
            && let Some(by_id) = probe(join.left(), l, None)?.map(|p| p.1)
        {
            candidates.push(Candidate {
                side: Side::Left,
                pair,
                by_id,
                source_small: is_small(join.right()),
            });
        }
    }
    // A small key source first; then a lookup by Id (parents are few and
    // found by their key); then keep DataFusion's build side.
    let Some(best) = candidates
        .iter()
        .filter(|c| c.source_small || c.by_id)
        .max_by_key(|c| (c.source_small, c.by_id, c.side == Side::Right))
    else {
        return Ok(None);
    };
    let swapped = match best.side {
        Side::Right => join
            .builder()
            .with_partition_mode(PartitionMode::CollectLeft)
            .build_exec()?,
        Side::Left => join.swap_inputs(PartitionMode::CollectLeft)?,
    };
    // swap_inputs may put a projection above the join to restore the
    // column order.
    let pair = best.pair;
    if let Some(j) = swapped.downcast_ref::<HashJoinExec>() {
        return attach(j, pair);
    }
    let Some(child) = swapped.children().first().map(|c| Arc::clone(c)) else {
        return Ok(None);
    };
    match child.downcast_ref::<HashJoinExec>() {
        Some(j) => match attach(j, pair)? {
            Some(new_join) => Ok(Some(replace_children_if_necessary(
                Arc::clone(&swapped),
                vec![new_join],
            )?)),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Wrap the build side in a key collector and turn the probe side's scan
/// into a lookup by key `pair`.
fn attach(join: &HashJoinExec, pair: usize) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let (build_key, probe_key) = &join.on()[pair];
    let slot = KeySlot::new(build_key.to_string());
    let Some((probe_side, _)) = probe(join.right(), probe_key, Some(&slot))? else {
        return Ok(None);
    };
    let build_side: Arc<dyn ExecutionPlan> = Arc::new(KeyCollectExec::new(
        Arc::clone(join.left()),
        Arc::clone(build_key),
        slot,
    ));
    Ok(Some(
        join.builder()
            .with_new_children(vec![build_side, probe_side])?
            .build_exec()?,
    ))
}

/// Follow `key` (an expression over `plan`'s output) down to an sObject
/// scan that can be fetched by it. Returns the plan with that scan turned
/// into a lookup (when `slot` is given) and whether the key is the Id.
fn probe(
    plan: &Arc<dyn ExecutionPlan>,
    key: &Arc<dyn PhysicalExpr>,
    slot: Option<&Arc<KeySlot>>,
) -> Result<Option<(Arc<dyn ExecutionPlan>, bool)>> {
    if let Some(scan) = plan.downcast_ref::<SObjectScanExec>() {
        // A scan already fetched by an IN list (the UPDATE path's keys)
        // is selective, and two long IN lists cannot both be split.
        let keyed = scan
            .spec()
            .conditions
            .iter()
            .any(|c| matches!(c, Condition::InList { .. }));
        if scan.is_lookup() || scan.spec().limit.is_some() || keyed {
            return Ok(None);
        }
        let Some(column) = key_column(key) else {
            return Ok(None);
        };
        let Some(field) = scan.field(column) else {
            return Ok(None);
        };
        let lookupable = is_text_type(&field.sf_type)
            || matches!(
                field.sf_type.as_str(),
                "int" | "long" | "double" | "currency" | "percent" | "date"
            );
        if !field.filterable || !lookupable {
            return Ok(None);
        }
        let by_id = field.sf_type == "id";
        let new: Arc<dyn ExecutionPlan> = match slot {
            Some(slot) => Arc::new(scan.with_lookup(column, Arc::clone(slot))),
            None => Arc::clone(plan),
        };
        return Ok(Some((new, by_id)));
    }
    let child_key = if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        update_expr(key, p.expr(), true)?
    } else if let Some(f) = plan.downcast_ref::<FilterExec>() {
        match f.projection() {
            None => Some(Arc::clone(key)),
            Some(projection) => remap_columns(key, projection)?,
        }
    } else if plan.is::<RepartitionExec>() || plan.is::<CoalescePartitionsExec>() {
        Some(Arc::clone(key))
    } else {
        None
    };
    let Some(child_key) = child_key else {
        return Ok(None);
    };
    let children = plan.children();
    let [child] = children.as_slice() else {
        return Ok(None);
    };
    match probe(child, &child_key, slot)? {
        Some((new_child, by_id)) => Ok(Some((
            replace_children_if_necessary(Arc::clone(plan), vec![new_child])?,
            by_id,
        ))),
        None => Ok(None),
    }
}

/// The column under a key expression: `c`, `lower(c)`, `upper(c)`, or a
/// cast of `c` to text. SOQL's `IN` on the column returns a superset of
/// the rows matching any of these.
fn key_column(key: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    if let Some(c) = key.downcast_ref::<Column>() {
        return Some(c.index());
    }
    if let Some(cast) = key.downcast_ref::<CastExpr>() {
        use datafusion::arrow::datatypes::DataType;
        return matches!(
            cast.cast_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        )
        .then(|| key_column(cast.expr()))
        .flatten();
    }
    if let Some(f) = key.downcast_ref::<ScalarFunctionExpr>()
        && matches!(f.name(), "lower" | "upper")
        && f.args().len() == 1
    {
        return key_column(&f.args()[0]);
    }
    None
}

/// Rewrite column `i` of `expr` to column `projection[i]`.
fn remap_columns(
    expr: &Arc<dyn PhysicalExpr>,
    projection: &[usize],
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let mut ok = true;
    let out = Arc::clone(expr)
        .transform(|e| {
            if let Some(c) = e.downcast_ref::<Column>() {
                match projection.get(c.index()) {
                    Some(&i) => {
                        return Ok(Transformed::yes(
                            Arc::new(Column::new(c.name(), i)) as Arc<dyn PhysicalExpr>
                        ));
                    }
                    None => ok = false,
                }
            }
            Ok(Transformed::no(e))
        })
        .data()?;
    Ok(ok.then_some(out))
}

/// A side is small when it reads no sObject in full: every sObject scan
/// under it has a filter or a limit, or is itself a lookup.
fn is_small(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if let Some(scan) = plan.downcast_ref::<SObjectScanExec>() {
        return scan.is_lookup()
            || scan.spec().limit.is_some()
            || !scan.spec().conditions.is_empty();
    }
    plan.children().iter().all(|c| is_small(c))
}
