//! `DescribeFirst`, the query planner: a catalog query that names its
//! tables through a join (psql's column completion, JDBC `getColumns`,
//! SQLAlchemy's reflection: `pg_attribute a JOIN pg_class c ON a.attrelid
//! = c.oid ... WHERE c.relname = 'contact'`) describes only those tables.
//!
//! ```text
//!   Join a.attrelid = c.oid            restriction run first:
//!     Join c.relnamespace = n.oid        SELECT c.oid FROM pg_class c JOIN pg_namespace n
//!       pg_attribute a                     ON c.relnamespace = n.oid
//!       pg_class c (relname = 'contact')   WHERE c.relname = 'contact' AND n.nspname = 'sandbox'
//!     pg_namespace n (nspname = 'sandbox')  -> describe those oids, then scan
//!                                            pg_attribute with `attrelid IN (<oids>)`
//! ```
//!
//! `pg_attribute` without an `attrelid` filter would describe every
//! sObject of every schema (see `super::catalog`). Before the physical plan
//! is made, for each `pg_attribute` (`attrelid`), `pg_constraint`
//! (`conrelid`) or `pg_index` (`indrelid`) scan whose relation column is a
//! join key, the other side of that join, and the inner joins above it
//! whose conditions touch only that side, is run as its own query (it reads
//! catalogs only: no describe, no API call). Only rows of the scan whose
//! relation is among its keys can reach the result, so the tables it names
//! are described and the scan is given them as a filter. Describing here,
//! before any scan is planned, means `pg_class`'s index rows and
//! `pg_constraint`'s keys, built when their own scans are planned, see
//! those tables described too.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, Session,
};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Expr, Join, JoinConstraint, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use super::comments::Comments;
use super::keys::describe_named;

/// DataFusion's planner, after describing what catalog queries name.
#[derive(Debug, Default)]
pub struct DescribeFirst {
    /// Set once pg_catalog exists (it is built over the session's
    /// catalogs, after the session): which oid is which table.
    comments: OnceLock<Arc<Comments>>,
}

impl DescribeFirst {
    /// Give the planner the relations pg_catalog's scans record.
    pub fn set_comments(&self, comments: Arc<Comments>) {
        let _ = self.comments.set(comments);
    }
}

#[async_trait]
impl QueryPlanner for DescribeFirst {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = match self.comments.get() {
            Some(comments) => restrict(plan, session, comments).await?,
            None => plan.clone(),
        };
        let plan = narrow_columns(plan, session).await?;
        DefaultPhysicalPlanner::default()
            .create_physical_plan(&plan, session)
            .await
    }
}

/// A catalog whose rows are per relation, and its relation column.
fn relation_column(scan: &TableScan) -> Option<&'static str> {
    if !is_catalog(scan) {
        return None;
    }
    match scan.table_name.table().to_ascii_lowercase().as_str() {
        "pg_attribute" => Some("attrelid"),
        "pg_constraint" => Some("conrelid"),
        "pg_index" => Some("indrelid"),
        _ => None,
    }
}

/// A pg_catalog table: reading it costs no API call.
fn is_catalog(scan: &TableScan) -> bool {
    scan.table_name
        .schema()
        .is_none_or(|s| s.eq_ignore_ascii_case("pg_catalog"))
        && scan
            .table_name
            .table()
            .to_ascii_lowercase()
            .starts_with("pg_")
}

/// One scan to restrict: the `index`-th table scan of the plan (pre-order),
/// its relation column, and the query whose one column holds the relations
/// that can reach the result.
struct Restriction {
    scan: usize,
    column: &'static str,
    keys: LogicalPlan,
}

/// Describe the tables each restrictable scan of `plan` can match, and
/// return `plan` with those scans filtered to them.
async fn restrict(
    plan: &LogicalPlan,
    session: &dyn Session,
    comments: &Comments,
) -> Result<LogicalPlan> {
    let found = {
        let scans = scan_positions(plan)?;
        let mut found = Vec::new();
        find(plan, &mut Vec::new(), &scans, &mut found)?;
        found
    };
    if found.is_empty() {
        return Ok(plan.clone());
    }
    let mut filters: HashMap<usize, (&'static str, BTreeSet<i32>)> = HashMap::new();
    for r in found {
        if filters.contains_key(&r.scan) {
            continue;
        }
        let physical = session.create_physical_plan(&r.keys).await?;
        let batches = datafusion::physical_plan::collect(physical, session.task_ctx()).await?;
        let mut oids = BTreeSet::new();
        for batch in &batches {
            let Some(column) = batch.columns().first() else {
                continue;
            };
            let values = cast(column, &DataType::Int64)?;
            let values = values.as_primitive::<Int64Type>();
            for i in 0..values.len() {
                if values.is_valid(i)
                    && let Ok(oid) = i32::try_from(values.value(i))
                {
                    oids.insert(oid);
                }
            }
        }
        let relations: HashMap<i32, (String, String)> = comments
            .relations()
            .into_iter()
            .map(|(oid, schema, table)| (oid, (schema, table)))
            .collect();
        describe_named(&comments.info, &relations, &oids).await?;
        filters.insert(r.scan, (r.column, oids));
    }
    let mut n = 0;
    plan.clone()
        .transform_down(|node| {
            let LogicalPlan::TableScan(mut scan) = node else {
                return Ok(Transformed::no(node));
            };
            let index = n;
            n += 1;
            match filters.remove(&index) {
                Some((column, oids)) => {
                    let list = oids
                        .into_iter()
                        .map(|oid| Expr::Literal(ScalarValue::Int32(Some(oid)), None))
                        .collect();
                    let filter = Expr::Column(Column::new_unqualified(column)).in_list(list, false);
                    scan.filters.push(filter);
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
            }
        })
        .map(|t| t.data)
}

/// Each table scan's position in the plan (pre-order), by its address.
type Scans = HashMap<usize, usize>;

fn scan_positions(plan: &LogicalPlan) -> Result<Scans> {
    let mut scans: Scans = HashMap::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(_) = node {
            let n = scans.len();
            scans.insert(address(node), n);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(scans)
}

fn address(node: &LogicalPlan) -> usize {
    node as *const LogicalPlan as usize
}

/// Walk `plan` (its ancestors on `path`) and collect a restriction for
/// every join on a restrictable scan's relation column.
fn find<'a>(
    plan: &'a LogicalPlan,
    path: &mut Vec<&'a LogicalPlan>,
    scans: &Scans,
    found: &mut Vec<Restriction>,
) -> Result<()> {
    if let LogicalPlan::Join(join) = plan
        && join.null_equality == NullEquality::NullEqualsNothing
    {
        for (l, r) in &join.on {
            for (side, key, other, other_key, left) in [
                (&join.left, l, &join.right, r, true),
                (&join.right, r, &join.left, l, false),
            ] {
                if !restrictable(join.join_type, left) || !reads_catalogs_only(other) {
                    continue;
                }
                let Some(column) = key_column(key) else {
                    continue;
                };
                let Some((scan, relation)) = trace(side, column, scans) else {
                    continue;
                };
                let keys = narrowed(other, plan, path)?;
                let keys = LogicalPlanBuilder::from(keys)
                    .project(vec![other_key.clone()])?
                    .build()?;
                found.push(Restriction {
                    scan,
                    column: relation,
                    keys,
                });
            }
        }
    }
    path.push(plan);
    for input in plan.inputs() {
        find(input, path, scans, found)?;
    }
    path.pop();
    Ok(())
}

/// May the rows of a join's `left` (or right) side that match nothing on
/// the other side be dropped without changing the join's output?
fn restrictable(join_type: JoinType, left: bool) -> bool {
    use JoinType::*;
    if left {
        matches!(join_type, Inner | Right | LeftSemi | RightSemi | RightAnti)
    } else {
        matches!(join_type, Inner | Left | RightSemi | LeftSemi | LeftAnti)
    }
}

/// Every table under `plan` is a pg_catalog table other than
/// `pg_attribute` (which would describe everything itself).
fn reads_catalogs_only(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && (!is_catalog(scan) || scan.table_name.table().eq_ignore_ascii_case("pg_attribute"))
        {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ok
}

/// The column under a join key (`a.attrelid`, `CAST(a.attrelid AS ...)`).
fn key_column(key: &Expr) -> Option<&Column> {
    match key {
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => key_column(&c.expr),
        Expr::TryCast(c) => key_column(&c.expr),
        _ => None,
    }
}

/// Follow `column` down to the relation column of a restrictable scan,
/// through nodes that pass a scan row through unchanged or drop it: only
/// then does dropping a scan row whose relation the join would not match
/// leave the result as it was. Returns the scan's index and its column.
fn trace(plan: &LogicalPlan, column: &Column, scans: &Scans) -> Option<(usize, &'static str)> {
    let index = plan.schema().maybe_index_of_column(column)?;
    match plan {
        LogicalPlan::TableScan(scan) => {
            let relation = relation_column(scan)?;
            let name = plan.schema().qualified_field(index).1.name();
            if name != relation || scan.filters.iter().any(|f| names(f, relation)) {
                return None;
            }
            Some((*scans.get(&address(plan))?, relation))
        }
        LogicalPlan::Projection(p) => match p.expr.get(index)?.clone().unalias() {
            Expr::Column(c) => trace(&p.input, &c, scans),
            _ => None,
        },
        LogicalPlan::SubqueryAlias(a) => {
            let (qualifier, field) = a.input.schema().qualified_field(index);
            trace(
                &a.input,
                &Column::new(qualifier.cloned(), field.name()),
                scans,
            )
        }
        LogicalPlan::Filter(f) => trace(&f.input, column, scans),
        LogicalPlan::Sort(s) if s.fetch.is_none() => trace(&s.input, column, scans),
        LogicalPlan::Join(j)
            if !matches!(j.join_type, JoinType::LeftMark | JoinType::RightMark) =>
        {
            if j.left.schema().has_column(column) {
                trace(&j.left, column, scans)
            } else {
                trace(&j.right, column, scans)
            }
        }
        _ => None,
    }
}

/// Whether `filter` already names the relations (`attrelid = 16400`).
fn names(filter: &Expr, relation: &str) -> bool {
    super::catalog::filtered_oids(filter, relation).is_some()
}

/// `other` (one side of `join`) joined with the siblings of the inner
/// joins above `join` (`path` ends with its parent) whose conditions
/// touch only `other`'s columns and the sibling's: the rows of `other`
/// that can reach the result.
fn narrowed(
    other: &Arc<LogicalPlan>,
    join: &LogicalPlan,
    path: &[&LogicalPlan],
) -> Result<LogicalPlan> {
    let mut keys = other.as_ref().clone();
    let mut child = join;
    for parent in path.iter().rev() {
        // A projection or filter between two joins: the columns the join
        // above names keep their names through it (or are not found in
        // `keys` and end the walk); leaving a filter out only widens.
        if matches!(parent, LogicalPlan::Projection(_) | LogicalPlan::Filter(_)) {
            child = parent;
            continue;
        }
        let LogicalPlan::Join(up) = parent else {
            break;
        };
        if up.join_type != JoinType::Inner {
            break;
        }
        let child_is_left = std::ptr::eq(up.left.as_ref(), child);
        let sibling = if child_is_left { &up.right } else { &up.left };
        if !reads_catalogs_only(sibling) {
            break;
        }
        let within = |e: &Expr| {
            e.column_refs()
                .iter()
                .all(|c| keys.schema().has_column(c) || sibling.schema().has_column(c))
        };
        let conditions_fit = up.on.iter().all(|(l, r)| within(l) && within(r))
            && up.filter.as_ref().is_none_or(within);
        if !conditions_fit {
            break;
        }
        let (left, right) = if child_is_left {
            (Arc::new(keys), Arc::clone(sibling))
        } else {
            (Arc::clone(sibling), Arc::new(keys))
        };
        keys = LogicalPlan::Join(Join::try_new(
            left,
            right,
            up.on.clone(),
            up.filter.clone(),
            JoinType::Inner,
            JoinConstraint::On,
            up.null_equality,
            false,
        )?);
        child = parent;
    }
    Ok(keys)
}

/// The schemas and tables an `information_schema.columns` scan's filter
/// names (`None`: any).
#[derive(Debug, Default)]
struct Named {
    schemas: Option<BTreeSet<String>>,
    tables: Option<BTreeSet<String>>,
}

impl Named {
    /// Whether `name` is among `names` (any name when there is no list).
    fn lists(names: Option<&BTreeSet<String>>, name: &str) -> bool {
        names.is_none_or(|n| n.contains(name))
    }
}

/// `information_schema.columns` restricted by `table_schema` / `table_name`
/// (`= 'x'` or `IN (...)`), as a tool asks for one table's columns:
/// DataFusion's information schema would describe every table of every
/// schema to list them, so the scan reads a copy of it over just the tables
/// named (described here); the filter stays above it. Unrestricted, it
/// lists everything as before.
async fn narrow_columns(plan: LogicalPlan, session: &dyn Session) -> Result<LogicalPlan> {
    let scans = scan_positions(&plan)?;
    let mut wanted: HashMap<usize, Named> = HashMap::new();
    plan.apply(|node| {
        if let LogicalPlan::Filter(filter) = node
            && let LogicalPlan::TableScan(scan) = filter.input.as_ref()
            && is_information_schema_columns(scan)
            && let Some(index) = scans.get(&address(filter.input.as_ref()))
        {
            let named = named(&filter.predicate);
            if named.schemas.is_some() || named.tables.is_some() {
                wanted.insert(*index, named);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if wanted.is_empty() {
        return Ok(plan);
    }
    let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
        return Ok(plan);
    };
    let mut sources = HashMap::new();
    for (index, named) in wanted {
        let list = narrowed_catalogs(state.catalog_list().as_ref(), &named).await?;
        let provider = InformationSchemaProvider::new(list)
            .table("columns")
            .await?
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(
                    "information_schema has no columns table".into(),
                )
            })?;
        sources.insert(index, provider_as_source(provider));
    }
    let mut n = 0;
    plan.transform_down(|node| {
        let LogicalPlan::TableScan(mut scan) = node else {
            return Ok(Transformed::no(node));
        };
        let index = n;
        n += 1;
        match sources.remove(&index) {
            Some(source) => {
                scan.source = source;
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
        }
    })
    .map(|t| t.data)
}

fn is_information_schema_columns(scan: &TableScan) -> bool {
    scan.table_name
        .schema()
        .is_some_and(|s| s.eq_ignore_ascii_case("information_schema"))
        && scan.table_name.table().eq_ignore_ascii_case("columns")
}

/// What a filter's conjuncts say of `table_schema` and `table_name`. One
/// conjunct per column is enough: the result only has to hold every row the
/// filter keeps.
fn named(predicate: &Expr) -> Named {
    let mut named = Named::default();
    for conjunct in split_conjunction(predicate) {
        let (column, values) = match conjunct {
            Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                match (b.left.as_ref(), b.right.as_ref()) {
                    (Expr::Column(c), value) | (value, Expr::Column(c)) => match text(value) {
                        Some(v) => (c, BTreeSet::from([v])),
                        None => continue,
                    },
                    _ => continue,
                }
            }
            Expr::InList(list) if !list.negated => {
                let Expr::Column(c) = list.expr.as_ref() else {
                    continue;
                };
                let Some(values) = list.list.iter().map(text).collect::<Option<BTreeSet<_>>>()
                else {
                    continue;
                };
                (c, values)
            }
            _ => continue,
        };
        let slot = match column.name.as_str() {
            "table_schema" => &mut named.schemas,
            "table_name" => &mut named.tables,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(values);
        }
    }
    named
}

/// A string literal's text (through the casts DataFusion puts around it).
fn text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(value, _) => value.try_as_str().flatten().map(str::to_string),
        Expr::Cast(c) => text(&c.expr),
        _ => None,
    }
}

/// The session's catalogs with only the named schemas and tables (tables
/// fetched, so described, here).
async fn narrowed_catalogs(
    list: &dyn CatalogProviderList,
    named: &Named,
) -> Result<Arc<dyn CatalogProviderList>> {
    let out = MemoryCatalogProviderList::new();
    for catalog_name in list.catalog_names() {
        let Some(catalog) = list.catalog(&catalog_name) else {
            continue;
        };
        let narrowed = MemoryCatalogProvider::new();
        for schema_name in catalog.schema_names() {
            if !Named::lists(named.schemas.as_ref(), &schema_name) {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let tables = MemorySchemaProvider::new();
            for table_name in schema.table_names() {
                if !Named::lists(named.tables.as_ref(), &table_name) {
                    continue;
                }
                if let Some(table) = schema.table(&table_name).await? {
                    tables.register_table(table_name, table)?;
                }
            }
            narrowed.register_schema(&schema_name, Arc::new(tables))?;
        }
        out.register_catalog(catalog_name, Arc::new(narrowed));
    }
    Ok(Arc::new(out))
}
