//! Running a MERGE's change-set query and turning its rows into one change
//! set of mixed actions: each source row takes the first WHEN clause that
//! applies; matched rows update (changed fields only) or delete their
//! record, unmatched rows create one. Ambiguity follows DESIGN.md decision 4.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde_json::{Map, Value};

use super::changeset::{Action, ChangeSet, FieldChange, NewValues, RecordChange, WriteOp, to_json};
use super::merge::{ClauseAction, FIXED_COLUMNS, MergePlan};
use super::validate::{check_create_value, check_value};
use super::{DmlError, MatchPolicy};

/// One source row that picked a clause.
struct Picked {
    src: i64,
    id: Option<String>,
    key: Option<String>,
    modified: Value,
    clause: usize,
    /// The clause's values, cast to the target fields' types (for updates:
    /// new and old per assignment, interleaved).
    values: Vec<Value>,
}

fn utf8(col: &ArrayRef) -> Result<ArrayRef, DmlError> {
    Ok(
        cast_with_options(col, &DataType::Utf8, &CastOptions::default())
            .map_err(DataFusionError::from)?,
    )
}

/// Cast clause `i`'s value columns to the target fields' types, strictly:
/// a value that cannot become the field's type stops the statement (a dry
/// run keeps it as text and lists it as an `invalid` row).
fn clause_columns(
    plan: &MergePlan,
    batch: &RecordBatch,
    i: usize,
    start: usize,
    dry_run: bool,
) -> Result<Vec<NewValues>, DmlError> {
    let columns: Vec<(String, String)> = match &plan.clauses[i].action {
        ClauseAction::Update(a) => a
            .iter()
            .flat_map(|a| {
                let c = (a.column.clone(), a.field.sf_type.clone());
                [c.clone(), c]
            })
            .collect(),
        ClauseAction::Insert { fields, .. } => fields
            .iter()
            .map(|f| (f.name.to_ascii_lowercase(), f.field_type.clone()))
            .collect(),
        ClauseAction::Delete => vec![],
    };
    let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
    let types = plan.table.schema_of_columns(&names);
    columns
        .iter()
        .zip(types)
        .enumerate()
        .map(|(j, ((column, sf_type), ty))| {
            NewValues::cast(batch.column(start + j), &ty, dry_run, |e| {
                format!(
                    "the value for {column} cannot become a Salesforce {sf_type} ({ty}): {e}; cast or clean it in the MERGE"
                )
            })
        })
        .collect()
}

fn decode(
    plan: &MergePlan,
    batches: &[RecordBatch],
    dry_run: bool,
) -> Result<Vec<Picked>, DmlError> {
    let n = plan.clauses.len();
    let mut out = Vec::new();
    for batch in batches {
        let ids = utf8(batch.column(0))?;
        let keys = utf8(batch.column(1))?;
        let src = cast_with_options(batch.column(2), &DataType::Int64, &CastOptions::default())
            .map_err(DataFusionError::from)?;
        let whens = (0..n)
            .map(|i| {
                cast_with_options(
                    batch.column(FIXED_COLUMNS + i),
                    &DataType::Boolean,
                    &CastOptions::default(),
                )
                .map_err(DataFusionError::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut start = FIXED_COLUMNS + n;
        let mut data = Vec::with_capacity(n);
        for i in 0..n {
            data.push(clause_columns(plan, batch, i, start, dry_run)?);
            start += plan.width(i);
        }
        let (ids, keys) = (ids.as_string::<i32>(), keys.as_string::<i32>());
        let src = src.as_primitive::<Int64Type>();
        for r in 0..batch.num_rows() {
            let matched = !ids.is_null(r);
            let Some(clause) = (0..n).find(|&i| {
                plan.clauses[i].matched == matched
                    && !whens[i].is_null(r)
                    && whens[i].as_boolean().value(r)
            }) else {
                continue;
            };
            out.push(Picked {
                src: src.value(r),
                id: matched.then(|| ids.value(r).to_string()),
                key: (!keys.is_null(r)).then(|| keys.value(r).to_string()),
                modified: to_json(batch.column(3), r)?,
                clause,
                values: data[clause]
                    .iter()
                    .map(|a| a.value(r))
                    .collect::<Result<_, _>>()?,
            });
        }
    }
    out.sort_by(|a, b| (a.src, &a.id).cmp(&(b.src, &b.id)));
    Ok(out)
}

/// Run the MERGE's change-set query and build its change set.
pub async fn build_merge_set(
    ctx: &SessionContext,
    plan: &MergePlan,
    policy: MatchPolicy,
    dry_run: bool,
) -> Result<ChangeSet, DmlError> {
    let batches = ctx.sql(&plan.change_set_sql()).await?.collect().await?;
    let picked = resolve_matches(plan, decode(plan, &batches, dry_run)?, policy)?;
    let mut records = Vec::with_capacity(picked.len());
    let mut problems = Vec::new();
    let mut problem = |label: &str, why: String| {
        if problems.len() < 5 {
            problems.push(format!("{label}: {why}"));
        }
    };
    for p in picked {
        let label =
            p.id.clone()
                .unwrap_or_else(|| format!("source row {}", p.src));
        let record = match &plan.clauses[p.clause].action {
            ClauseAction::Delete => RecordChange {
                action: Action::Delete,
                id: p.id,
                match_key: p.key,
                changes: vec![],
            },
            ClauseAction::Update(assignments) => {
                let mut changes = Vec::new();
                for (j, a) in assignments.iter().enumerate() {
                    let (new, old) = (&p.values[2 * j], &p.values[2 * j + 1]);
                    if new == old {
                        continue;
                    }
                    if changes.is_empty() {
                        changes.reserve_exact(assignments.len() - j);
                    }
                    let describe = plan.table.describe();
                    if let Some(why) = describe
                        .field(&a.field.api_name)
                        .and_then(|f| check_value(f, new))
                    {
                        problem(&label, format!("{}: {why}", a.column));
                    }
                    changes.push(FieldChange {
                        field: a.field.api_name.as_str().into(),
                        old: old.clone(),
                        new: new.clone(),
                    });
                }
                RecordChange::update(p.id.unwrap_or_default(), p.key, changes)
            }
            ClauseAction::Insert { fields, .. } => {
                let mut record = Map::new();
                for (f, v) in fields.iter().zip(p.values) {
                    if let Some(why) = check_create_value(f, &v) {
                        problem(&label, why);
                    }
                    record.insert(f.name.clone(), v);
                }
                RecordChange::create(p.key, record)
            }
        };
        records.push(record);
    }
    // A dry run shows every refused value beside the changes instead.
    if !problems.is_empty() && !dry_run {
        return Err(DmlError::Invalid(format!(
            "nothing was sent: {}",
            problems.join("; ")
        )));
    }
    Ok(ChangeSet {
        connection: plan.connection.clone(),
        sobject: plan.sobject().to_string(),
        op: WriteOp::Merge,
        records,
        keys: None,
    })
}

/// One source row matching several records follows `policy`; one record
/// matched by several source rows that would change it differently is an
/// error (PostgreSQL's "MERGE command cannot affect row a second time").
fn resolve_matches(
    plan: &MergePlan,
    picked: Vec<Picked>,
    policy: MatchPolicy,
) -> Result<Vec<Picked>, DmlError> {
    let sobject = plan.sobject();
    let mut ids_by_src: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, p) in picked.iter().enumerate() {
        if p.id.is_some() {
            ids_by_src.entry(p.src).or_default().push(i);
        }
    }
    let mut drop = vec![false; picked.len()];
    let mut multi = Vec::new();
    for rows in ids_by_src.values().filter(|rows| rows.len() > 1) {
        match policy {
            MatchPolicy::All => {}
            MatchPolicy::Newest => {
                let stamp = |&i: &usize| {
                    let p = &picked[i];
                    (
                        p.modified.as_str().unwrap_or_default().to_string(),
                        p.id.clone(),
                    )
                };
                if let Some(best) = rows.iter().max_by_key(|i| stamp(i)) {
                    rows.iter()
                        .filter(|i| *i != best)
                        .for_each(|&i| drop[i] = true);
                }
            }
            MatchPolicy::Error => multi.push(format!(
                "'{}' matches {} records ({})",
                picked[rows[0]].key.as_deref().unwrap_or("-"),
                rows.len(),
                rows.iter()
                    .filter_map(|&i| picked[i].id.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if !multi.is_empty() {
        return Err(DmlError::Ambiguous(format!(
            "{} source row(s) match several {sobject} records: {}; nothing was written. Narrow the ON condition, SET sfsql.on_multiple_matches = 'newest' to act on the most recently modified one, or = 'all' to act on every match",
            multi.len(),
            multi.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        )));
    }
    let mut kept: Vec<Picked> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut twice = Vec::new();
    for (p, dropped) in picked.into_iter().zip(drop) {
        if dropped {
            continue;
        }
        let Some(id) = p.id.clone() else {
            kept.push(p);
            continue;
        };
        match by_id.get(&id) {
            Some(&k) if kept[k].clause == p.clause && kept[k].values == p.values => {}
            Some(_) => {
                if twice.len() < 5 {
                    twice.push(format!("{id} (key {})", p.key.as_deref().unwrap_or("-")));
                }
            }
            None => {
                by_id.insert(id, kept.len());
                kept.push(p);
            }
        }
    }
    if !twice.is_empty() {
        return Err(DmlError::Ambiguous(format!(
            "MERGE would change {sobject} records a second time, from several source rows with different values: {}; make the source return one row per record; nothing was written",
            twice.join("; ")
        )));
    }
    Ok(kept)
}
