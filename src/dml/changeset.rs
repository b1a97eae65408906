//! Running the change-set query and diffing it: which records change, in
//! which fields, from what to what; and the ambiguity checks of DESIGN.md
//! decision 4.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time64NanosecondType,
    TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use serde_json::Value;

use super::update::UpdatePlan;
use super::{DmlError, DmlOptions, MatchPolicy};

#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// API name of the field.
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// How a change set is written to Salesforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Update,
    Create,
    /// Upsert by an external ID field (its API name); the field's value is
    /// among each record's changes.
    Upsert {
        external_id: String,
    },
    Delete,
    /// MERGE: each record's [`Action`] says how it is written.
    Merge,
}

impl WriteOp {
    /// The word the run log and dry run use.
    pub fn as_str(&self) -> &'static str {
        match self {
            WriteOp::Update => "update",
            WriteOp::Create => "insert",
            WriteOp::Upsert { .. } => "upsert",
            WriteOp::Delete => "delete",
            WriteOp::Merge => "merge",
        }
    }
}

/// What a record of the change set is expected to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Update,
    Create,
    Delete,
    /// Already holds the new values: no call.
    Unchanged,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Update => "update",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        }
    }

    /// The outcome a dry run predicts.
    pub fn predicted(&self) -> super::OutcomeStatus {
        match self {
            Action::Update => super::OutcomeStatus::Updated,
            Action::Create => super::OutcomeStatus::Created,
            Action::Delete => super::OutcomeStatus::Deleted,
            Action::Unchanged => super::OutcomeStatus::Unchanged,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecordChange {
    pub action: Action,
    /// The target record's Id; `None` for a record still to be created.
    pub id: Option<String>,
    pub match_key: Option<String>,
    /// Fields to send (for creates every field, with `old` null); empty
    /// for deletes and unchanged records.
    pub changes: Vec<FieldChange>,
}

impl RecordChange {
    /// A record to create with every field of `record`.
    pub fn create(match_key: Option<String>, record: serde_json::Map<String, Value>) -> Self {
        RecordChange {
            action: Action::Create,
            id: None,
            match_key,
            changes: record
                .into_iter()
                .map(|(field, new)| FieldChange {
                    field,
                    old: Value::Null,
                    new,
                })
                .collect(),
        }
    }

    /// An update of `changes`, or `unchanged` when there are none.
    pub fn update(id: String, match_key: Option<String>, changes: Vec<FieldChange>) -> Self {
        RecordChange {
            action: if changes.is_empty() {
                Action::Unchanged
            } else {
                Action::Update
            },
            id: Some(id),
            match_key,
            changes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub connection: String,
    pub sobject: String,
    pub op: WriteOp,
    /// Every matched record, changed or not, in the order first seen.
    pub records: Vec<RecordChange>,
    /// Distinct source keys collected for the key lookup (None when the
    /// target was fetched by its WHERE filters alone).
    pub keys: Option<usize>,
}

impl ChangeSet {
    /// Records that cost a write call.
    pub fn changed(&self) -> impl Iterator<Item = &RecordChange> {
        self.records
            .iter()
            .filter(|r| r.action != Action::Unchanged)
    }

    /// The same target and operation with no records.
    pub fn clone_empty(&self) -> ChangeSet {
        ChangeSet {
            connection: self.connection.clone(),
            sobject: self.sobject.clone(),
            op: self.op.clone(),
            records: vec![],
            keys: self.keys,
        }
    }

    pub fn unchanged(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.action == Action::Unchanged)
            .count()
    }
}

/// Collect keys, run the change-set query, and diff.
pub async fn build_change_set(
    ctx: &SessionContext,
    plan: &UpdatePlan,
    opts: &DmlOptions,
) -> Result<ChangeSet, DmlError> {
    let mut keys = None;
    let mut key_filter = None;
    if let (Some(keys_sql), Some(k)) = (plan.keys_sql(), &plan.key) {
        let batches = ctx.sql(&keys_sql).await?.collect().await?;
        match key_literals(&batches)? {
            Some(literals) if literals.is_empty() => {
                return Ok(ChangeSet {
                    connection: plan.connection.clone(),
                    sobject: plan.sobject().to_string(),
                    op: WriteOp::Update,
                    records: vec![],
                    keys: Some(0),
                });
            }
            Some(literals) => {
                keys = Some(literals.len());
                key_filter = Some(format!("{} IN ({})", k.target_sql, literals.join(", ")));
            }
            None => {}
        }
    }
    let sql = plan.change_set_sql(key_filter.as_deref());
    let batches = ctx.sql(&sql).await?.collect().await?;
    let rows = decode_rows(plan, &batches)?;
    let records = merge_and_diff(plan, rows, opts.on_multiple_matches)?;
    check_changes(plan, &records)?;
    Ok(ChangeSet {
        connection: plan.connection.clone(),
        sobject: plan.sobject().to_string(),
        op: WriteOp::Update,
        records,
        keys,
    })
}

/// Render the collected keys as SQL literals, or `None` when their type
/// has no safe literal form (then the target is filtered by WHERE alone).
pub fn key_literals(batches: &[RecordBatch]) -> Result<Option<Vec<String>>, DmlError> {
    let mut out = Vec::new();
    for batch in batches {
        let col = batch.column(0);
        match col.data_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                let strings = cast_with_options(col, &DataType::Utf8, &CastOptions::default())
                    .map_err(datafusion::error::DataFusionError::from)?;
                for v in strings.as_string::<i32>().iter().flatten() {
                    out.push(format!("'{}'", v.replace('\'', "''")));
                }
            }
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => {
                let ints = cast_with_options(col, &DataType::Int64, &CastOptions::default())
                    .map_err(datafusion::error::DataFusionError::from)?;
                for v in ints.as_primitive::<Int64Type>().iter().flatten() {
                    out.push(v.to_string());
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

struct Row {
    id: String,
    key: Option<String>,
    new: Vec<Value>,
    old: Vec<Value>,
    /// LastModifiedDate, when the plan reads it.
    modified: Value,
}

fn decode_rows(plan: &UpdatePlan, batches: &[RecordBatch]) -> Result<Vec<Row>, DmlError> {
    let schema = plan.table.schema_of_columns(
        &plan
            .assignments
            .iter()
            .map(|a| a.column.clone())
            .collect::<Vec<_>>(),
    );
    let mut rows = Vec::new();
    for batch in batches {
        let ids = cast_with_options(batch.column(0), &DataType::Utf8, &CastOptions::default())
            .map_err(datafusion::error::DataFusionError::from)?;
        let keys = cast_with_options(batch.column(1), &DataType::Utf8, &CastOptions::default())
            .map_err(datafusion::error::DataFusionError::from)?;
        let mut news = Vec::new();
        let mut olds = Vec::new();
        for (i, a) in plan.assignments.iter().enumerate() {
            let target_type = &schema[i];
            let new = batch.column(2 + 2 * i);
            let strict = CastOptions {
                safe: false,
                format_options: FormatOptions::default(),
            };
            let new = cast_with_options(new, target_type, &strict).map_err(|e| {
                DmlError::Value(format!(
                    "the value for {} cannot become a Salesforce {} ({}): {e}; cast or clean it in the SET expression",
                    a.column, a.field.sf_type, target_type
                ))
            })?;
            news.push(new);
            olds.push(Arc::clone(batch.column(3 + 2 * i)));
        }
        let modified = plan
            .newest
            .then(|| Arc::clone(batch.column(2 + 2 * plan.assignments.len())));
        let ids = ids.as_string::<i32>();
        let keys = keys.as_string::<i32>();
        for r in 0..batch.num_rows() {
            if ids.is_null(r) {
                continue;
            }
            let new = news
                .iter()
                .map(|a| to_json(a, r))
                .collect::<Result<Vec<_>, _>>()?;
            let old = olds
                .iter()
                .map(|a| to_json(a, r))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(Row {
                id: ids.value(r).to_string(),
                key: (!keys.is_null(r)).then(|| keys.value(r).to_string()),
                new,
                old,
                modified: match &modified {
                    Some(m) => to_json(m, r)?,
                    None => Value::Null,
                },
            });
        }
    }
    Ok(rows)
}

use std::sync::Arc;

fn merge_and_diff(
    plan: &UpdatePlan,
    rows: Vec<Row>,
    policy: MatchPolicy,
) -> Result<Vec<RecordChange>, DmlError> {
    let sobject = plan.sobject();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<(Row, Vec<String>)> = Vec::new();
    let mut conflicts = Vec::new();
    let mut ids_by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        if let Some(k) = &row.key {
            let ids = ids_by_key.entry(k.clone()).or_default();
            if !ids.contains(&row.id) {
                ids.push(row.id.clone());
            }
        }
        match by_id.get(&row.id) {
            Some(&i) => {
                let (first, keys) = &mut merged[i];
                if let Some(k) = &row.key
                    && !keys.contains(k)
                {
                    keys.push(k.clone());
                }
                if first.new != row.new && conflicts.len() < 5 {
                    conflicts.push(format!("{} (keys: {})", row.id, keys.join(", ")));
                }
            }
            None => {
                by_id.insert(row.id.clone(), merged.len());
                let keys = row.key.iter().cloned().collect();
                merged.push((row, keys));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(DmlError::Ambiguous(format!(
            "{sobject} records are matched by several source rows with different values: {}; make the source return one row per record (GROUP BY the key, or filter duplicates)",
            conflicts.join("; ")
        )));
    }
    if policy == MatchPolicy::Newest {
        let modified: HashMap<&str, &Value> = merged
            .iter()
            .map(|(r, _)| (r.id.as_str(), &r.modified))
            .collect();
        let (winners, losers) = newest_per_key(&ids_by_key, &modified);
        merged.retain(|(r, _)| winners.contains(&r.id) || !losers.contains(&r.id));
    }
    if policy == MatchPolicy::Error {
        let multi: Vec<String> = ids_by_key
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .take(5)
            .map(|(k, ids)| format!("'{k}' matches {} records ({})", ids.len(), ids.join(", ")))
            .collect();
        if !multi.is_empty() {
            let total = ids_by_key.values().filter(|ids| ids.len() > 1).count();
            return Err(DmlError::Ambiguous(format!(
                "{total} source key(s) match several {sobject} records: {}; nothing was written. Clean up the duplicates, narrow the WHERE, SET sfsql.on_multiple_matches = 'newest' to update the most recently modified one, or = 'all' to update every match",
                multi.join("; ")
            )));
        }
    }
    Ok(merged
        .into_iter()
        .map(|(row, keys)| {
            let changes = plan
                .assignments
                .iter()
                .zip(row.new.iter().zip(row.old.iter()))
                .filter(|(_, (new, old))| new != old)
                .map(|(a, (new, old))| FieldChange {
                    field: a.field.api_name.clone(),
                    old: old.clone(),
                    new: new.clone(),
                })
                .collect();
            RecordChange::update(row.id, (!keys.is_empty()).then(|| keys.join(", ")), changes)
        })
        .collect())
}

/// For each key matching several records, the most recently modified
/// record wins (ties: the greater Id, so the choice is stable). Returns
/// (winners, losers); a record that wins for any key is kept.
fn newest_per_key(
    ids_by_key: &BTreeMap<String, Vec<String>>,
    modified: &HashMap<&str, &Value>,
) -> (HashSet<String>, HashSet<String>) {
    let mut winners = HashSet::new();
    let mut losers = HashSet::new();
    for ids in ids_by_key.values().filter(|ids| ids.len() > 1) {
        let stamp = |id: &String| {
            modified
                .get(id.as_str())
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        if let Some(best) = ids.iter().max_by_key(|id| (stamp(id), (*id).clone())) {
            winners.insert(best.clone());
            losers.extend(ids.iter().filter(|id| *id != best).cloned());
        }
    }
    (winners, losers)
}

/// An Arrow value (already in the column's Salesforce-derived type) as the
/// JSON Salesforce expects in a write.
pub fn to_json(array: &ArrayRef, row: usize) -> Result<Value, DmlError> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| DmlError::Value(format!("{v} is not a number Salesforce accepts")))?
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            let f = v as f64 / 10f64.powi(i32::from(*scale));
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let d = NaiveDate::from_num_days_from_ce_opt(719_163 + days)
                .ok_or_else(|| DmlError::Value(format!("date out of range: {days} days")))?;
            Value::String(d.format("%Y-%m-%d").to_string())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = array.as_primitive::<TimestampMillisecondType>().value(row);
            let dt = DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| DmlError::Value(format!("timestamp out of range: {ms} ms")))?;
            Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            let ns = array.as_primitive::<Time64NanosecondType>().value(row);
            let t = NaiveTime::from_num_seconds_from_midnight_opt(
                (ns / 1_000_000_000) as u32,
                (ns % 1_000_000_000) as u32,
            )
            .ok_or_else(|| DmlError::Value(format!("time out of range: {ns} ns")))?;
            Value::String(t.format("%H:%M:%S%.3fZ").to_string())
        }
        // base64 fields are written base64-encoded, as the REST API takes them.
        DataType::Binary => {
            use base64::Engine;
            Value::String(
                base64::engine::general_purpose::STANDARD
                    .encode(array.as_binary::<i32>().value(row)),
            )
        }
        other => {
            let fmt = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
                .map_err(|e| DmlError::Value(format!("cannot format {other}: {e}")))?;
            Value::String(fmt.value(row).to_string())
        }
    })
}

/// A JSON value as text for dry-run output (`None` for null).
pub fn display_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Describe-based checks of every value about to be sent.
fn check_changes(plan: &UpdatePlan, records: &[RecordChange]) -> Result<(), DmlError> {
    let describe = plan.table.describe();
    let mut problems = Vec::new();
    let mut count = 0;
    for r in records {
        for c in &r.changes {
            let Some(field) = describe.field(&c.field) else {
                continue;
            };
            if let Some(why) = super::validate::check_value(field, &c.new) {
                count += 1;
                if problems.len() < 5 {
                    problems.push(format!(
                        "{} (key {}): {}: {why}",
                        r.id.as_deref().unwrap_or("new record"),
                        r.match_key.as_deref().unwrap_or("-"),
                        c.field
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DmlError::Invalid(format!(
            "{count} value(s) would be refused by Salesforce; nothing was sent: {}",
            problems.join("; ")
        )))
    }
}
