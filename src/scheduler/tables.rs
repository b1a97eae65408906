//! The `cron.*` tables, read from the state store on each scan:
//! `cron.job`, `cron.job_run_details` and `cron.job_run_records`, with
//! pg_cron's columns first. `jobname = '...'` and `runid = n` are pushed
//! into the SQLite query (Inexact: DataFusion checks them again).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, DurationMillisecondArray, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemorySchemaProvider, Session};
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::options::show_duration;
use super::{CRON_SCHEMA, Clock, Scheduler, SchedulerError, schedule};
use crate::session::Engine;
use crate::state::{CatchUp, RunStatus, StateError, Store, to_micros};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Job,
    RunDetails,
    RunRecords,
}

struct CronTable {
    kind: Kind,
    schema: SchemaRef,
    store: Store,
    clock: Arc<dyn Clock>,
    /// The missed-run policy of jobs that set none, for `cron.job`.
    default_catch_up: CatchUp,
}

impl std::fmt::Debug for CronTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CronTable({:?})", self.kind)
    }
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn schema_of(kind: Kind) -> SchemaRef {
    use DataType::{Boolean, Int64, Utf8};
    let cols: Vec<(&str, DataType)> = match kind {
        Kind::Job => vec![
            ("jobid", Int64),
            ("schedule", Utf8),
            ("command", Utf8),
            ("nodename", Utf8),
            ("nodeport", Int64),
            ("database", Utf8),
            ("username", Utf8),
            ("active", Boolean),
            ("jobname", Utf8),
            ("source", Utf8),
            ("timezone", Utf8),
            ("next_run", ts()),
            ("last_run", ts()),
            ("last_status", Utf8),
            ("retries", Int64),
            ("timeout", Utf8),
            ("delay", Utf8),
            ("min_interval", Utf8),
            ("paused_reason", Utf8),
            ("catch_up", Utf8),
        ],
        Kind::RunDetails => {
            let mut c = vec![
                ("jobid", Int64),
                ("runid", Int64),
                ("job_pid", Int64),
                ("database", Utf8),
                ("username", Utf8),
                ("command", Utf8),
                ("status", Utf8),
                ("return_message", Utf8),
                ("start_time", ts()),
                ("end_time", ts()),
                ("jobname", Utf8),
                ("trigger", Utf8),
                ("attempt", Int64),
                ("dry_run", Boolean),
                ("duration", DataType::Duration(TimeUnit::Millisecond)),
                ("sobject", Utf8),
            ];
            for n in COUNT_COLUMNS {
                c.push((n, Int64));
            }
            c.push(("not_before", ts()));
            c
        }
        Kind::RunRecords => vec![
            ("runid", Int64),
            ("sobject", Utf8),
            ("record_id", Utf8),
            ("match_key", Utf8),
            ("action", Utf8),
            ("status", Utf8),
            ("error_code", Utf8),
            ("message", Utf8),
            ("fields", Utf8),
        ],
    };
    Arc::new(Schema::new(
        cols.into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    ))
}

/// In the order of [`crate::state::RunRow::counts`].
const COUNT_COLUMNS: [&str; 9] = [
    "rows_matched",
    "rows_updated",
    "rows_created",
    "rows_deleted",
    "rows_unknown",
    "rows_unchanged",
    "rows_skipped",
    "rows_failed",
    "api_calls",
];

fn strs<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}

fn ints(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}

fn times(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(
        v.collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

fn state_err(e: StateError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `col = literal` on `name`, as the literal.
fn eq_literal<'a>(expr: &'a Expr, name: &str) -> Option<&'a ScalarValue> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    if *op != Operator::Eq {
        return None;
    }
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))
            if c.name == name =>
        {
            Some(v)
        }
        _ => None,
    }
}

impl CronTable {
    /// The filter this table pushes into SQLite, if `expr` is one.
    fn pushed(&self, expr: &Expr) -> Option<ScalarValue> {
        match self.kind {
            Kind::RunDetails => {
                eq_literal(expr, "jobname").filter(|v| matches!(v, ScalarValue::Utf8(Some(_))))
            }
            Kind::RunRecords => {
                eq_literal(expr, "runid").filter(|v| matches!(v, ScalarValue::Int64(Some(_))))
            }
            Kind::Job => None,
        }
        .cloned()
    }

    fn batch(&self, filters: &[Expr]) -> Result<RecordBatch> {
        let pushed = filters.iter().find_map(|f| self.pushed(f));
        let columns: Vec<ArrayRef> = match self.kind {
            Kind::Job => {
                let jobs = self.store.jobs().map_err(state_err)?;
                let last = self.store.last_runs().map_err(state_err)?;
                let now = self.clock.now();
                let last_of = |id: i64| last.iter().find(|r| r.jobid == Some(id));
                let next: Vec<Option<i64>> = jobs
                    .iter()
                    .map(|j| {
                        j.active
                            .then(|| schedule::parse_schedule(&j.schedule, &j.timezone).ok())
                            .flatten()
                            .and_then(|s| s.next_after(now))
                            .map(to_micros)
                    })
                    .collect();
                let opt_texts: Vec<[Option<String>; 3]> = jobs
                    .iter()
                    .map(|j| {
                        let o = &j.options;
                        [
                            o.timeout_secs.map(show_duration),
                            o.delay_secs.map(|(lo, hi)| match lo == hi {
                                true => show_duration(lo),
                                false => format!("{}-{}", show_duration(lo), show_duration(hi)),
                            }),
                            o.min_interval_secs.map(show_duration),
                        ]
                    })
                    .collect();
                let sources: Vec<String> = jobs
                    .iter()
                    .map(|j| match &j.source {
                        crate::state::JobSource::Sql => "sql".to_string(),
                        crate::state::JobSource::File(p) => format!("file {p}"),
                    })
                    .collect();
                vec![
                    ints(jobs.iter().map(|j| Some(j.jobid))),
                    strs(jobs.iter().map(|j| Some(j.schedule.as_str()))),
                    strs(jobs.iter().map(|j| Some(j.command.as_str()))),
                    strs(jobs.iter().map(|_| Some("localhost"))),
                    ints(jobs.iter().map(|_| None)),
                    strs(jobs.iter().map(|_| Some("sfsql"))),
                    strs(jobs.iter().map(|j| Some(j.username.as_str()))),
                    Arc::new(
                        jobs.iter()
                            .map(|j| Some(j.active))
                            .collect::<BooleanArray>(),
                    ),
                    strs(jobs.iter().map(|j| Some(j.jobname.as_str()))),
                    strs(sources.iter().map(|s| Some(s.as_str()))),
                    strs(jobs.iter().map(|j| Some(j.timezone.as_str()))),
                    times(next.into_iter()),
                    times(
                        jobs.iter()
                            .map(|j| last_of(j.jobid).map(|r| to_micros(r.start_time))),
                    ),
                    strs(
                        jobs.iter()
                            .map(|j| last_of(j.jobid).map(|r| r.status.as_str())),
                    ),
                    ints(jobs.iter().map(|j| Some(i64::from(j.options.retries)))),
                    strs(opt_texts.iter().map(|o| o[0].as_deref())),
                    strs(opt_texts.iter().map(|o| o[1].as_deref())),
                    strs(opt_texts.iter().map(|o| o[2].as_deref())),
                    strs(
                        jobs.iter()
                            .map(|j| j.paused.as_ref().map(|p| p.reason.as_str())),
                    ),
                    strs(jobs.iter().map(|j| {
                        Some(j.options.catch_up.unwrap_or(self.default_catch_up).as_str())
                    })),
                ]
            }
            Kind::RunDetails => {
                let name = match &pushed {
                    Some(ScalarValue::Utf8(Some(n))) => Some(n.as_str()),
                    _ => None,
                };
                let runs = self.store.runs(name).map_err(state_err)?;
                let mut cols = vec![
                    ints(runs.iter().map(|r| r.jobid)),
                    ints(runs.iter().map(|r| Some(r.runid))),
                    ints(runs.iter().map(|r| r.job_pid)),
                    strs(runs.iter().map(|_| Some("sfsql"))),
                    strs(runs.iter().map(|r| Some(r.username.as_str()))),
                    strs(runs.iter().map(|r| Some(r.command.as_str()))),
                    strs(runs.iter().map(|r| Some(r.status.as_str()))),
                    strs(runs.iter().map(|r| r.return_message.as_deref())),
                    // A waiting run has not started (pg_cron's NULL for a
                    // run not started yet); `not_before` says when it will.
                    times(runs.iter().map(|r| {
                        (r.status != RunStatus::Waiting.as_str()).then(|| to_micros(r.start_time))
                    })),
                    times(runs.iter().map(|r| r.end_time.map(to_micros))),
                    strs(runs.iter().map(|r| r.jobname.as_deref())),
                    strs(runs.iter().map(|r| Some(r.trigger.as_str()))),
                    ints(runs.iter().map(|r| Some(i64::from(r.attempt)))),
                    Arc::new(
                        runs.iter()
                            .map(|r| Some(r.dry_run))
                            .collect::<BooleanArray>(),
                    ),
                    Arc::new(
                        runs.iter()
                            .map(|r| r.end_time.map(|e| (e - r.start_time).num_milliseconds()))
                            .collect::<DurationMillisecondArray>(),
                    ),
                    strs(runs.iter().map(|r| r.sobject.as_deref())),
                ];
                for i in 0..COUNT_COLUMNS.len() {
                    cols.push(ints(runs.iter().map(|r| Some(r.counts[i]))));
                }
                cols.push(times(runs.iter().map(|r| r.not_before.map(to_micros))));
                cols
            }
            Kind::RunRecords => {
                let runid = match &pushed {
                    Some(ScalarValue::Int64(Some(n))) => Some(*n),
                    _ => None,
                };
                let recs = self.store.records(runid).map_err(state_err)?;
                vec![
                    ints(recs.iter().map(|r| Some(r.runid))),
                    strs(recs.iter().map(|r| Some(r.sobject.as_str()))),
                    strs(recs.iter().map(|r| Some(r.record_id.as_str()))),
                    strs(recs.iter().map(|r| r.match_key.as_deref())),
                    strs(recs.iter().map(|r| Some(r.action.as_str()))),
                    strs(recs.iter().map(|r| Some(r.status.as_str()))),
                    strs(recs.iter().map(|r| r.error_code.as_deref())),
                    strs(recs.iter().map(|r| r.message.as_deref())),
                    strs(recs.iter().map(|r| r.fields.as_deref())),
                ]
            }
        };
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[async_trait]
impl TableProvider for CronTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.pushed(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.batch(filters)?;
        MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?
            .scan(state, projection, &[], limit)
            .await
    }
}

/// Register schema `cron` with its three tables in the engine's catalog.
pub fn register(scheduler: &Scheduler) -> Result<(), SchedulerError> {
    register_tables(
        &scheduler.engine,
        &scheduler.store,
        &scheduler.clock,
        scheduler.config.catch_up,
    )
}

fn register_tables(
    engine: &Engine,
    store: &Store,
    clock: &Arc<dyn Clock>,
    default_catch_up: CatchUp,
) -> Result<(), SchedulerError> {
    let setup = |e: DataFusionError| {
        SchedulerError::BadCall(format!("cannot register the cron tables: {e}"))
    };
    let default_catalog = engine
        .ctx
        .state()
        .config_options()
        .catalog
        .default_catalog
        .clone();
    let catalog = engine
        .ctx
        .catalog(&default_catalog)
        .ok_or_else(|| SchedulerError::BadCall("the engine has no default catalog".into()))?;
    let schema = Arc::new(MemorySchemaProvider::new());
    for (name, kind) in [
        ("job", Kind::Job),
        ("job_run_details", Kind::RunDetails),
        ("job_run_records", Kind::RunRecords),
    ] {
        let table = CronTable {
            kind,
            schema: schema_of(kind),
            store: store.clone(),
            clock: Arc::clone(clock),
            default_catch_up,
        };
        datafusion::catalog::SchemaProvider::register_table(
            schema.as_ref(),
            name.to_string(),
            Arc::new(table),
        )
        .map_err(setup)?;
    }
    catalog
        .register_schema(CRON_SCHEMA, schema)
        .map_err(setup)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::scheduler::ManualClock;
    use crate::state::{BeginRun, JobOptions, JobSource, JobSpec, NewRun, Trigger};

    fn table(kind: Kind, store: &Store) -> CronTable {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("t");
        CronTable {
            kind,
            schema: schema_of(kind),
            store: store.clone(),
            clock: Arc::new(ManualClock::new(now)),
            default_catch_up: CatchUp::Once,
        }
    }

    /// `jobname = '...'` on the run log and `runid = n` on the records
    /// reach the SQLite query: the scan reads only those rows.
    #[test]
    fn jobname_and_runid_filters_reach_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let now = chrono::Utc::now();
        for name in ["a", "b"] {
            let jobid = store
                .upsert_job(
                    &JobSpec {
                        name: name.into(),
                        schedule: "0 9 * * *".into(),
                        command: "SELECT 1".into(),
                        timezone: "UTC".into(),
                        source: JobSource::Sql,
                        username: "demo".into(),
                        options: JobOptions::default(),
                    },
                    now,
                )
                .expect("job");
            let run = NewRun {
                jobid,
                jobname: name.into(),
                username: "demo".into(),
                command: "SELECT 1".into(),
                trigger: Trigger::Manual,
                dry_run: false,
                scheduled_for: None,
                attempt: 1,
            };
            assert!(matches!(
                store.begin_run(&run, now).expect("run"),
                BeginRun::Started { .. }
            ));
        }
        let details = table(Kind::RunDetails, &store);
        let by_name = col("jobname").eq(lit("a"));
        let by_status = col("status").eq(lit("running"));
        assert_eq!(
            details
                .supports_filters_pushdown(&[&by_name, &by_status])
                .expect("pushdown"),
            [
                TableProviderFilterPushDown::Inexact,
                TableProviderFilterPushDown::Unsupported
            ]
        );
        assert_eq!(details.batch(&[]).expect("all").num_rows(), 2);
        let a = details.batch(&[by_name]).expect("a");
        assert_eq!(a.num_rows(), 1);
        let names = a
            .column_by_name("jobname")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .expect("jobname");
        assert_eq!(names.value(0), "a");

        let records = table(Kind::RunRecords, &store);
        let by_run = col("runid").eq(lit(1i64));
        assert_eq!(
            records
                .supports_filters_pushdown(&[&by_run])
                .expect("pushdown"),
            [TableProviderFilterPushDown::Inexact]
        );
        assert_eq!(records.pushed(&by_run), Some(ScalarValue::Int64(Some(1))));
    }
}
