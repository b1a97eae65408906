//! Running the change-set query and diffing it: which records change, in
//! which fields, from what to what; and the ambiguity checks of DESIGN.md
//! decision 4.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

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
    /// API name of the field (shared by every record that changes it).
    pub field: Arc<str>,
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
                    field: field.into(),
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
    // Batch by batch: the query's rows are diffed as they arrive and only
    // the records' changes are kept.
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let mut diff = Diff::new(plan, opts.on_multiple_matches, opts.dry_run);
    while let Some(batch) = stream.next().await {
        diff.add(&batch?)?;
    }
    drop(stream);
    let records = diff.finish()?;
    // A dry run shows every refused value beside the changes instead.
    if !opts.dry_run {
        check_changes(plan, &records)?;
    }
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

/// The records of which source keys match several targets.
#[derive(Debug)]
enum KeyRecords {
    One(u32),
    Many(Vec<u32>),
}

impl KeyRecords {
    fn add(&mut self, record: u32) {
        match self {
            KeyRecords::One(first) if *first != record => {
                *self = KeyRecords::Many(vec![*first, record]);
            }
            KeyRecords::Many(all) if !all.contains(&record) => all.push(record),
            _ => {}
        }
    }
}

/// The change-set query's rows merged by target record and diffed, batch
/// by batch. A record matched by several rows is kept once (rows with
/// different new values are a conflict); the ambiguity checks of DESIGN.md
/// decision 4 run at the end.
struct Diff<'a> {
    plan: &'a UpdatePlan,
    policy: MatchPolicy,
    /// Keep each field's current value (a dry run shows it; a write only
    /// needs the new one).
    keep_old: bool,
    /// The assigned fields' Salesforce types and API names.
    types: Vec<DataType>,
    fields: Vec<Arc<str>>,
    records: Vec<RecordChange>,
    /// Record by hash of its Id (records whose Id hashes like another's
    /// are in `collided`). Only used when the statement has a FROM: a
    /// target alone yields each record once.
    by_id: HashMap<u64, u32>,
    collided: HashMap<String, u32>,
    /// Further source keys of records matched by several, in order seen.
    more_keys: HashMap<u32, Vec<String>>,
    /// The records each source key matched.
    by_key: HashMap<String, KeyRecords>,
    /// LastModifiedDate per record, for `newest`.
    modified: Vec<Value>,
    conflicts: Vec<String>,
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(id.as_bytes());
    h.finish()
}

impl<'a> Diff<'a> {
    fn new(plan: &'a UpdatePlan, policy: MatchPolicy, keep_old: bool) -> Self {
        let types = plan.table.schema_of_columns(
            &plan
                .assignments
                .iter()
                .map(|a| a.column.clone())
                .collect::<Vec<_>>(),
        );
        Diff {
            plan,
            policy,
            keep_old,
            types,
            fields: plan
                .assignments
                .iter()
                .map(|a| Arc::from(a.field.api_name.as_str()))
                .collect(),
            records: Vec::new(),
            by_id: HashMap::new(),
            collided: HashMap::new(),
            more_keys: HashMap::new(),
            by_key: HashMap::new(),
            modified: Vec::new(),
            conflicts: Vec::new(),
        }
    }

    /// The record already holding `id`, if any.
    fn find(&self, id: &str) -> Option<u32> {
        match self.by_id.get(&id_hash(id)) {
            Some(&i) if self.records[i as usize].id.as_deref() == Some(id) => Some(i),
            Some(_) => self.collided.get(id).copied(),
            None => None,
        }
    }

    fn remember(&mut self, id: &str, index: u32) {
        match self.by_id.entry(id_hash(id)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.insert(id.to_string(), index);
            }
        }
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<(), DmlError> {
        let plan = self.plan;
        let ids = cast_with_options(batch.column(0), &DataType::Utf8, &CastOptions::default())
            .map_err(datafusion::error::DataFusionError::from)?;
        let keys = cast_with_options(batch.column(1), &DataType::Utf8, &CastOptions::default())
            .map_err(datafusion::error::DataFusionError::from)?;
        let mut news = Vec::new();
        let mut olds = Vec::new();
        for (i, a) in plan.assignments.iter().enumerate() {
            let target_type = &self.types[i];
            let new = batch.column(2 + 2 * i);
            let new = NewValues::cast(new, target_type, self.keep_old, |e| {
                format!(
                    "the value for {} cannot become a Salesforce {} ({}): {e}; cast or clean it in the SET expression",
                    a.column, a.field.sf_type, target_type
                )
            })?;
            news.push(new);
            olds.push(Arc::clone(batch.column(3 + 2 * i)));
        }
        let modified = plan
            .newest
            .then(|| Arc::clone(batch.column(2 + 2 * plan.assignments.len())));
        let ids = ids.as_string::<i32>();
        let keys = keys.as_string::<i32>();
        // Without FROM each target record comes once: no merging needed.
        let merge = !plan.from_sql.is_empty();
        for r in 0..batch.num_rows() {
            if ids.is_null(r) {
                continue;
            }
            let id = ids.value(r);
            let key = (!keys.is_null(r)).then(|| keys.value(r));
            let seen = if merge { self.find(id) } else { None };
            let index = match seen {
                Some(index) => {
                    self.again(index, key, &news, &olds, r)?;
                    index
                }
                None => {
                    let index = u32::try_from(self.records.len()).map_err(|_| {
                        DmlError::Invalid(
                            "a change set holds at most 4,294,967,295 records; split the statement with a WHERE condition".into(),
                        )
                    })?;
                    let mut changes = Vec::new();
                    for (i, field) in self.fields.iter().enumerate() {
                        let new = news[i].value(r)?;
                        let old = to_json(&olds[i], r)?;
                        if new != old {
                            // At most the fields left: a pushed-to empty
                            // Vec takes room for 4, 320 bytes a record
                            // that changes one field (300 MB at 1M).
                            if changes.is_empty() {
                                changes.reserve_exact(self.fields.len() - i);
                            }
                            changes.push(FieldChange {
                                field: Arc::clone(field),
                                old: if self.keep_old { old } else { Value::Null },
                                new,
                            });
                        }
                    }
                    self.records.push(RecordChange::update(
                        id.to_string(),
                        key.map(str::to_string),
                        changes,
                    ));
                    if merge {
                        self.remember(id, index);
                    }
                    if let Some(m) = &modified {
                        self.modified.push(to_json(m, r)?);
                    }
                    index
                }
            };
            if let Some(k) = key {
                match self.by_key.get_mut(k) {
                    Some(records) => records.add(index),
                    None => {
                        self.by_key.insert(k.to_string(), KeyRecords::One(index));
                    }
                }
            }
        }
        Ok(())
    }

    /// Another row for record `index`: note its key, and a conflict when
    /// its new values differ from the first row's.
    fn again(
        &mut self,
        index: u32,
        key: Option<&str>,
        news: &[NewValues],
        olds: &[ArrayRef],
        r: usize,
    ) -> Result<(), DmlError> {
        let record = &self.records[index as usize];
        if let Some(k) = key
            && record.match_key.as_deref() != Some(k)
        {
            if record.match_key.is_none() {
                // Only possible when the first row had a null key.
                self.records[index as usize].match_key = Some(k.to_string());
            } else {
                let more = self.more_keys.entry(index).or_default();
                if !more.iter().any(|m| m == k) {
                    more.push(k.to_string());
                }
            }
        }
        if self.conflicts.len() >= 5 {
            return Ok(());
        }
        let record = &self.records[index as usize];
        // The first row's new value of each field: its change, or (no
        // change) the record's current value, which this row reads too.
        let mut differs = false;
        for (i, field) in self.fields.iter().enumerate() {
            let new = news[i].value(r)?;
            let first = match record.changes.iter().find(|c| c.field == *field) {
                Some(c) => c.new.clone(),
                None => to_json(&olds[i], r)?,
            };
            if new != first {
                differs = true;
                break;
            }
        }
        if differs {
            let keys = self.keys_of(index).join(", ");
            self.conflicts.push(format!(
                "{} (keys: {keys})",
                record.id.as_deref().unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn keys_of(&self, index: u32) -> Vec<&str> {
        let record = &self.records[index as usize];
        record
            .match_key
            .as_deref()
            .into_iter()
            .chain(
                self.more_keys
                    .get(&index)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            )
            .collect()
    }

    fn id_of(&self, index: u32) -> &str {
        self.records[index as usize]
            .id
            .as_deref()
            .unwrap_or_default()
    }

    fn finish(mut self) -> Result<Vec<RecordChange>, DmlError> {
        let sobject = self.plan.sobject();
        if !self.conflicts.is_empty() {
            return Err(DmlError::Ambiguous(format!(
                "{sobject} records are matched by several source rows with different values: {}; make the source return one row per record (GROUP BY the key, or filter duplicates)",
                self.conflicts.join("; ")
            )));
        }
        let mut multi: Vec<(&String, &Vec<u32>)> = self
            .by_key
            .iter()
            .filter_map(|(k, r)| match r {
                KeyRecords::Many(all) => Some((k, all)),
                KeyRecords::One(_) => None,
            })
            .collect();
        multi.sort_by(|a, b| a.0.cmp(b.0));
        let mut drop_records: HashSet<u32> = HashSet::new();
        if self.policy == MatchPolicy::Newest {
            let (winners, losers) = newest_per_key(&multi, &self.modified, |i| self.id_of(i));
            drop_records = losers.difference(&winners).copied().collect();
        }
        if self.policy == MatchPolicy::Error && !multi.is_empty() {
            let shown: Vec<String> = multi
                .iter()
                .take(5)
                .map(|(k, all)| {
                    let ids: Vec<&str> = all.iter().map(|&i| self.id_of(i)).collect();
                    format!("'{k}' matches {} records ({})", all.len(), ids.join(", "))
                })
                .collect();
            return Err(DmlError::Ambiguous(format!(
                "{} source key(s) match several {sobject} records: {}; nothing was written. Clean up the duplicates, narrow the WHERE, SET sfsql.on_multiple_matches = 'newest' to update the most recently modified one, or = 'all' to update every match",
                multi.len(),
                shown.join("; ")
            )));
        }
        drop(multi);
        let mut more_keys = std::mem::take(&mut self.more_keys);
        let records = std::mem::take(&mut self.records);
        Ok(records
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !drop_records.contains(&(*i as u32)))
            .map(|(i, mut r)| {
                if let Some(more) = more_keys.remove(&(i as u32))
                    && let Some(first) = &mut r.match_key
                {
                    for k in more {
                        first.push_str(", ");
                        first.push_str(&k);
                    }
                }
                r
            })
            .collect())
    }
}

/// For each key matching several records, the most recently modified
/// record wins (ties: the greater Id, so the choice is stable). Returns
/// (winners, losers); a record that wins for any key is kept.
fn newest_per_key<'r>(
    multi: &[(&String, &Vec<u32>)],
    modified: &[Value],
    id_of: impl Fn(u32) -> &'r str,
) -> (HashSet<u32>, HashSet<u32>) {
    let mut winners = HashSet::new();
    let mut losers = HashSet::new();
    for (_, records) in multi {
        let newest = records.iter().max_by_key(|&&i| {
            let stamp = modified
                .get(i as usize)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            (stamp, id_of(i))
        });
        if let Some(&best) = newest {
            winners.insert(best);
            losers.extend(records.iter().filter(|&&i| i != best));
        }
    }
    (winners, losers)
}

/// An Arrow value (already in the column's Salesforce-derived type) as the
/// JSON Salesforce expects in a write.
/// A SET column cast to its field's type. In a dry run, values that do
/// not convert (a write stops on them with 22P02) are kept as the source's
/// text, so the dry run can list them as `invalid` rows beside the rest.
pub(super) struct NewValues {
    cast: ArrayRef,
    /// The source as text, when some values did not convert.
    text: Option<ArrayRef>,
}

impl NewValues {
    /// `values` cast strictly to `target`. A value that does not convert
    /// stops the statement (22P02 worded by `refused`), except in a dry
    /// run, which keeps it as the source's text to list it.
    pub(super) fn cast(
        values: &ArrayRef,
        target: &DataType,
        dry_run: bool,
        refused: impl FnOnce(datafusion::arrow::error::ArrowError) -> String,
    ) -> Result<Self, DmlError> {
        let strict = CastOptions {
            safe: false,
            format_options: FormatOptions::default(),
        };
        match cast_with_options(values, target, &strict) {
            Ok(cast) => Ok(NewValues { cast, text: None }),
            Err(_) if dry_run => {
                let lenient = CastOptions::default();
                let cast = cast_with_options(values, target, &lenient)
                    .map_err(datafusion::error::DataFusionError::from)?;
                let text = cast_with_options(values, &DataType::Utf8, &lenient)
                    .map_err(datafusion::error::DataFusionError::from)?;
                Ok(NewValues {
                    cast,
                    text: Some(text),
                })
            }
            Err(e) => Err(DmlError::Value(refused(e))),
        }
    }

    pub(super) fn value(&self, row: usize) -> Result<Value, DmlError> {
        if let Some(text) = &self.text
            && self.cast.is_null(row)
            && !text.is_null(row)
        {
            return Ok(Value::String(
                text.as_string::<i32>().value(row).to_string(),
            ));
        }
        to_json(&self.cast, row)
    }
}

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
