//! Store tests on a temporary directory: migrations, jobs, runs without
//! overlap, slot claims, crash recovery and the run log of writes.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::dml::WriteSink;
use crate::dml::{OutcomeStatus, RecordOutcome, UpdateSummary};
use crate::session::{Origin, StopSignal, WriteLog, WriteTarget};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("time")
}

fn spec(name: &str, source: JobSource) -> JobSpec {
    JobSpec {
        name: name.into(),
        schedule: "0 9 * * *".into(),
        command: "UPDATE sandbox.contact SET title = 'x'".into(),
        timezone: "UTC".into(),
        source,
        username: "demo".into(),
        options: JobOptions::default(),
    }
}

fn new_run(jobid: i64, slot: Option<DateTime<Utc>>) -> NewRun {
    NewRun {
        jobid,
        jobname: "j".into(),
        username: "demo".into(),
        command: "UPDATE ...".into(),
        trigger: if slot.is_some() {
            Trigger::Schedule
        } else {
            Trigger::Manual
        },
        dry_run: false,
        scheduled_for: slot,
        attempt: 1,
    }
}

fn outcome(id: &str, status: OutcomeStatus, code: Option<&str>) -> RecordOutcome {
    RecordOutcome {
        id: id.into(),
        match_key: Some(format!("{id}@example.org")),
        status,
        error_code: code.map(str::to_string),
        message: code.map(|_| "bad value".to_string()),
        fields: if code.is_some() {
            vec!["Title".into()]
        } else {
            vec![]
        },
    }
}

fn target() -> WriteTarget {
    WriteTarget {
        connection: "sandbox".into(),
        sobject: "Contact".into(),
        action: "update",
        dry_run: false,
        started: t0(),
    }
}

/// A started run of a new job `a`, as the origin of its writes.
fn job_run(store: &Store, stop: StopSignal) -> (Origin, i64) {
    let id = store
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    let BeginRun::Started { runid } = store.begin_run(&new_run(id, None), t0()).expect("b") else {
        panic!("should start");
    };
    let origin = Origin::Job {
        job_id: id,
        run_id: runid,
        stop,
    };
    (origin, runid)
}

/// One write as `dml::apply` reports it: an unchanged record, then one
/// request of two records, one updated and one failed.
fn log_write(store: &Store, origin: &Origin, sql: &str) -> i64 {
    let log = store.begin_write(origin, sql, &target()).expect("begin");
    log.not_sent(&[outcome("003B", OutcomeStatus::Unchanged, None)]);
    log.sending(&[
        outcome("003A", OutcomeStatus::Unknown, None),
        outcome("003C", OutcomeStatus::Unknown, None),
    ]);
    let done = [
        outcome("003A", OutcomeStatus::Updated, None),
        outcome("003C", OutcomeStatus::Failed, Some("INVALID_FIELD")),
    ];
    log.sent(&done, 1);
    let summary = UpdateSummary {
        matched: 3,
        updated: 1,
        unchanged: 1,
        failed: 1,
        write_calls: 1,
        ..Default::default()
    };
    log.finish(&summary, t0() + Duration::seconds(2))
        .expect("finish");
    log.runid()
}

#[test]
fn open_twice_keeps_schema_and_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.jobs().expect("jobs").len(), 1);
}

/// WAL, so the `cron.*` tables can be read (by another server, `sfsql jobs
/// logs`) while a run writes its records. WAL is a property of the file:
/// a fresh connection that never asked for it sees it.
#[test]
fn the_store_is_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let mode = |conn: &Connection| -> String {
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode")
    };
    assert_eq!(mode(&store.lock().expect("lock")), "wal");
    let other = Connection::open(dir.path().join(DB_FILE)).expect("open the file");
    assert_eq!(mode(&other), "wal");
}

#[test]
fn same_name_replaces_but_file_and_sql_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let id = store
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    let mut again = spec("a", JobSource::Sql);
    again.schedule = "*/5 * * * *".into();
    assert_eq!(store.upsert_job(&again, t0()).expect("replace"), id);
    assert_eq!(
        store.job_by_id(id).expect("get").expect("job").schedule,
        "*/5 * * * *"
    );
    let err = store
        .upsert_job(&spec("a", JobSource::File("sql/a.sql".into())), t0())
        .expect_err("defined twice");
    let msg = err.to_string();
    assert!(
        msg.contains("sql/a.sql") && msg.contains("cron.schedule('a'"),
        "{msg}"
    );
}

#[test]
fn schedule_changes_and_activation_restart_the_missed_run_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let changed = |id| {
        store
            .job_by_id(id)
            .expect("get")
            .expect("job")
            .schedule_changed_at
    };
    let mut a = spec("a", JobSource::Sql);
    a.options.catch_up = Some(CatchUp::None);
    let id = store.upsert_job(&a, t0()).expect("job");
    assert_eq!(changed(id), t0());
    let job = store.job_by_id(id).expect("get").expect("job");
    assert_eq!(job.options.catch_up, Some(CatchUp::None));
    // Replaced with the same schedule (a job file read again): kept.
    let t1 = t0() + Duration::hours(1);
    store.upsert_job(&a, t1).expect("same");
    assert_eq!(changed(id), t0());
    a.schedule = "30 9 * * *".into();
    store.upsert_job(&a, t1).expect("new schedule");
    assert_eq!(changed(id), t1);
    // Only activating a paused job moves it; a new command does not.
    let t2 = t1 + Duration::hours(1);
    store
        .alter_job(id, None, Some("SELECT 2"), None, None, t2)
        .expect("command");
    store
        .alter_job(id, None, None, Some(false), None, t2)
        .expect("pause");
    assert_eq!(changed(id), t1);
    let t3 = t2 + Duration::hours(1);
    store
        .alter_job(id, None, None, Some(true), None, t3)
        .expect("resume");
    assert_eq!(changed(id), t3);
    let t4 = t3 + Duration::hours(1);
    store
        .alter_job(id, Some("0 10 * * *"), None, Some(true), None, t4)
        .expect("reschedule");
    assert_eq!(changed(id), t4);
    assert_eq!(store.last_run_start(id).expect("none yet"), None);
    store.begin_run(&new_run(id, None), t4).expect("run");
    assert_eq!(store.last_run_start(id).expect("one"), Some(t4));
}

#[test]
fn overlapping_run_is_skipped_and_slot_claimed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let id = store
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    let BeginRun::Started { runid } = store.begin_run(&new_run(id, Some(t0())), t0()).expect("b")
    else {
        panic!("first run should start");
    };
    // A second server sees the slot taken.
    assert_eq!(
        store.begin_run(&new_run(id, Some(t0())), t0()).expect("b"),
        BeginRun::AlreadyClaimed
    );
    // The next slot while the first still runs: skipped.
    let next = t0() + Duration::days(1);
    match store.begin_run(&new_run(id, Some(next)), next).expect("b") {
        BeginRun::Skipped { running, .. } => assert_eq!(running, runid),
        other => panic!("expected skipped, got {other:?}"),
    }
    store
        .finish_run(runid, RunStatus::Succeeded, "UPDATE 0", next)
        .expect("finish");
    assert!(matches!(
        store.begin_run(&new_run(id, None), next).expect("b"),
        BeginRun::Started { .. }
    ));
}

#[test]
fn interrupted_runs_are_failed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = Store::open(dir.path()).expect("open");
    let id = crashed
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    crashed.begin_run(&new_run(id, None), t0()).expect("begin");
    // Its own run is not interrupted while the store is open.
    assert_eq!(crashed.recover_interrupted(t0()).expect("recover"), 0);
    drop(crashed);
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.recover_interrupted(t0()).expect("recover"), 1);
    let run = &store.runs(Some("j")).expect("runs")[0];
    assert_eq!(run.status, "failed");
    assert!(
        run.return_message
            .as_deref()
            .unwrap_or("")
            .starts_with("interrupted")
    );
    assert!(run.end_time.is_some());
    assert_eq!(
        std::fs::read_dir(dir.path().join(crate::state::OWNERS_DIR))
            .expect("owners")
            .count(),
        1,
        "only the open store's owner file is left"
    );
}

/// Owners given alive or gone by name.
struct FakeLiveness(Vec<String>);

impl crate::state::Liveness for FakeLiveness {
    fn alive(&self, owner: &str) -> bool {
        self.0.iter().any(|o| o == owner)
    }
}

#[test]
fn only_runs_of_owners_that_are_gone_are_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Store::open(dir.path()).expect("open");
    let b = Store::open(dir.path()).expect("open");
    let ja = a.upsert_job(&spec("a", JobSource::Sql), t0()).expect("job");
    let jb = a.upsert_job(&spec("b", JobSource::Sql), t0()).expect("job");
    let BeginRun::Started { runid: ra } = a.begin_run(&new_run(ja, None), t0()).expect("a") else {
        panic!("a started");
    };
    let BeginRun::Started { runid: rb } = b.begin_run(&new_run(jb, None), t0()).expect("b") else {
        panic!("b started");
    };
    let live = FakeLiveness(vec![b.owner().to_string()]);
    assert_eq!(a.recover_interrupted_with(t0(), &live).expect("recover"), 1);
    let status = |runid| a.run(runid).expect("run").expect("exists").status;
    assert_eq!(status(ra), "failed");
    assert_eq!(status(rb), "running");
    // Once b is gone too, its run goes the same way, once.
    let none = FakeLiveness(vec![]);
    assert_eq!(a.recover_interrupted_with(t0(), &none).expect("recover"), 1);
    assert_eq!(status(rb), "failed");
    assert_eq!(a.recover_interrupted_with(t0(), &none).expect("recover"), 0);
}

#[test]
fn client_writes_and_job_writes_are_logged_with_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let client = Origin::Client {
        user: "demo".into(),
    };
    let runid = log_write(&store, &client, "UPDATE sandbox.contact ...");
    let run = store.run(runid).expect("run").expect("exists");
    assert_eq!(run.jobname, None);
    assert_eq!(run.trigger, "client");
    assert_eq!(
        (run.status.as_str(), run.return_message.as_deref()),
        ("succeeded", Some("UPDATE 1; 1 records failed"))
    );
    assert_eq!(run.counts, [3, 1, 0, 0, 0, 1, 0, 1, 1]);
    let records = store.records(Some(runid)).expect("records");
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].error_code.as_deref(), Some("INVALID_FIELD"));
    assert_eq!(records[2].fields.as_deref(), Some("Title"));

    // Two statements of one job run add up in one run row.
    let (origin, runid) = job_run(&store, StopSignal::default());
    log_write(&store, &origin, "UPDATE 1");
    log_write(&store, &origin, "UPDATE 2");
    let run = store.run(runid).expect("run").expect("exists");
    assert_eq!(run.counts[0], 6);
    assert_eq!(store.records(Some(runid)).expect("records").len(), 6);
}

#[test]
fn records_announced_and_settled_in_batches_keep_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let client = Origin::Client {
        user: "demo".into(),
    };
    let log = store
        .begin_write(&client, "UPDATE big", &target())
        .expect("begin");
    // A Bulk job of five records, announced in two batches...
    let unknown = |id| outcome(id, OutcomeStatus::Unknown, None);
    log.sending(&[unknown("003A"), unknown("003B"), unknown("003C")]);
    log.sending(&[unknown("003D"), unknown("003E")]);
    let runid = log.runid();
    assert_eq!(store.run(runid).expect("run").expect("row").counts[4], 5);
    // ...and settled in three that cut across them; the job's calls come
    // with the last.
    log.sent(&[outcome("003A", OutcomeStatus::Updated, None)], 0);
    log.sent(
        &[
            outcome("003B", OutcomeStatus::Updated, None),
            outcome("003C", OutcomeStatus::Failed, Some("INVALID_FIELD")),
            outcome("003D", OutcomeStatus::Updated, None),
        ],
        0,
    );
    let run = store.run(runid).expect("run").expect("row");
    assert_eq!(run.counts, [5, 3, 0, 0, 1, 0, 0, 1, 0], "one still unknown");
    log.sent(&[outcome("003E", OutcomeStatus::Updated, None)], 6);
    let run = store.run(runid).expect("run").expect("row");
    assert_eq!(run.counts, [5, 4, 0, 0, 0, 0, 0, 1, 6]);
    let records = store.records(Some(runid)).expect("records");
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.record_id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("003A", "updated"),
            ("003B", "updated"),
            ("003C", "failed"),
            ("003D", "updated"),
            ("003E", "updated"),
        ]
    );
}

/// 25,000 records sent at once are stored in chunks of 10,000; settled
/// in batches that cut across chunks, with a failure and created ids, each
/// record reads back in its place; a job run's second write goes on after
/// the records an older sfsql stored a row each.
#[test]
fn many_records_are_stored_in_chunks_and_read_back_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let (origin, runid) = job_run(&store, StopSignal::default());
    // A record stored before schema version 9, a row of its own.
    store
        .lock()
        .expect("lock")
        .execute(
            "INSERT INTO run_record (runid, seq, sobject, record_id, action, status)
             VALUES (?1, 1, 'Contact', '003OLD', 'update', 'updated')",
            [runid],
        )
        .expect("old row");
    let mut create = target();
    create.action = "insert";
    let log = store
        .begin_write(&origin, "INSERT many", &create)
        .expect("begin");
    let n = 25_000;
    let flying: Vec<RecordOutcome> = (0..n)
        .map(|i| RecordOutcome {
            id: String::new(),
            match_key: Some(format!("k{i}")),
            status: OutcomeStatus::Unknown,
            error_code: Some("UNKNOWN_OUTCOME".into()),
            message: Some("sent".into()),
            fields: vec![],
        })
        .collect();
    log.sending(&flying);
    let chunks: i64 = store
        .lock()
        .expect("lock")
        .query_row(
            "SELECT count(*) FROM run_record_chunk WHERE runid = ?1",
            [runid],
            |r| r.get(0),
        )
        .expect("chunks");
    assert_eq!(chunks, 3);
    let done: Vec<RecordOutcome> = (0..n)
        .map(|i| {
            if i == 12_345 {
                RecordOutcome {
                    match_key: Some(format!("k{i}")),
                    ..outcome("", OutcomeStatus::Failed, Some("REQUIRED_FIELD_MISSING"))
                }
            } else {
                RecordOutcome {
                    match_key: Some(format!("k{i}")),
                    ..outcome(&format!("00T{i:06}"), OutcomeStatus::Created, None)
                }
            }
        })
        .collect();
    // Settled in two batches, the first ending inside the second chunk.
    log.sent(&done[..13_000], 0);
    let half = store.records(Some(runid)).expect("records");
    assert_eq!(half[13_001].status, "unknown");
    assert_eq!(half[13_001].error_code.as_deref(), Some("UNKNOWN_OUTCOME"));
    log.sent(&done[13_000..], 5);
    let records = store.records(Some(runid)).expect("records");
    assert_eq!(records.len(), n + 1);
    assert_eq!(
        (records[0].record_id.as_str(), records[0].action.as_str()),
        ("003OLD", "update")
    );
    for (i, r) in records[1..].iter().enumerate() {
        assert_eq!(r.match_key, Some(format!("k{i}")));
        assert_eq!(r.action, "insert");
        if i == 12_345 {
            assert_eq!((r.record_id.as_str(), r.status.as_str()), ("", "failed"));
            assert_eq!(r.error_code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
            assert_eq!(r.fields.as_deref(), Some("Title"));
        } else {
            assert_eq!(r.record_id, format!("00T{i:06}"));
            assert_eq!(r.status, "created");
            assert_eq!(r.error_code, None);
        }
    }
    let run = store.run(runid).expect("run").expect("row");
    assert_eq!(run.counts[2], n as i64 - 1, "created");
    // The next write of this run numbers its records after all of these.
    let again = store
        .begin_write(&origin, "INSERT more", &create)
        .expect("begin");
    again.not_sent(&[outcome("003Z", OutcomeStatus::Unchanged, None)]);
    let records = store.records(Some(runid)).expect("records");
    assert_eq!(records.len(), n + 2);
    assert_eq!(records[n + 1].record_id, "003Z");
}

#[test]
fn a_write_cut_short_leaves_every_record_sent_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let client = Origin::Client {
        user: "demo".into(),
    };
    // A first request answered, a second one out when the statement is
    // dropped (a cancel, or a crash that never reaches `finish`).
    let log = store
        .begin_write(&client, "UPDATE ...", &target())
        .expect("begin");
    log.sending(&[outcome("003A", OutcomeStatus::Unknown, None)]);
    log.sent(&[outcome("003A", OutcomeStatus::Updated, None)], 1);
    log.sending(&[
        outcome("003B", OutcomeStatus::Unknown, None),
        outcome("003C", OutcomeStatus::Unknown, None),
    ]);
    let runid = log.runid();
    let run = store.run(runid).expect("run").expect("exists");
    assert_eq!(run.status, "running");
    assert_eq!(run.counts, [3, 1, 0, 0, 2, 0, 0, 0, 1]);
    drop(log);
    let run = store.run(runid).expect("run").expect("exists");
    assert_eq!(run.status, "failed");
    assert!(
        run.return_message
            .unwrap_or_default()
            .starts_with("cancelled")
    );
    let statuses: Vec<String> = store
        .records(Some(runid))
        .expect("records")
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, ["updated", "unknown", "unknown"]);

    // A job's log reads the run's stop signal.
    let stop = StopSignal::default();
    let (origin, _) = job_run(&store, stop.clone());
    let log = store
        .begin_write(&origin, "UPDATE ...", &target())
        .expect("begin");
    assert_eq!(log.stop_reason(), None);
    stop.stop("cancelled: timeout after 5m");
    assert_eq!(
        log.stop_reason().as_deref(),
        Some("cancelled: timeout after 5m")
    );
}

#[test]
fn records_older_than_the_cutoff_are_purged_in_batches_and_runs_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let client = Origin::Client {
        user: "demo".into(),
    };
    let a = log_write(&store, &client, "UPDATE 1");
    let b = log_write(&store, &client, "UPDATE 2");
    let (origin, running) = job_run(&store, StopSignal::default());
    log_write(&store, &origin, "UPDATE 3");
    assert_eq!(store.records(None).expect("records").len(), 9);
    // Runs started at the cutoff are not older than it.
    assert_eq!(store.purge_records_before(t0(), 2).expect("purge"), 0);
    // Batches of 2: the 6 records of the two finished runs go; the running
    // run's stay (it is still writing them).
    let later = t0() + Duration::days(31);
    assert_eq!(store.purge_records_before(later, 2).expect("purge"), 6);
    let left = store.records(None).expect("records");
    assert!(left.iter().all(|r| r.runid == running), "{left:?}");
    assert_eq!(left.len(), 3);
    // Every run row is kept, counts included.
    for runid in [a, b, running] {
        let run = store.run(runid).expect("run").expect("kept");
        assert_eq!(run.counts[0], 3);
    }
    store
        .finish_run(running, RunStatus::Succeeded, "UPDATE 1", later)
        .expect("finish");
    assert_eq!(store.purge_records_before(later, 1000).expect("purge"), 3);
    assert!(store.records(None).expect("records").is_empty());
}

#[test]
fn a_waiting_run_is_stored_adopted_when_its_owner_is_gone_and_started_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Store::open(dir.path()).expect("open");
    let b = Store::open(dir.path()).expect("open");
    let id = a.upsert_job(&spec("a", JobSource::Sql), t0()).expect("job");
    let due = t0() + Duration::minutes(5);
    let queue = |store: &Store, by| {
        store
            .queue_run(&new_run(id, Some(t0())), due, "waiting: delay", by, t0())
            .expect("queue")
    };
    let runid = queue(&a, StartedBy::Me).expect("queued");
    assert_eq!(queue(&b, StartedBy::Me), None, "the slot is claimed once");
    let run = a.run(runid).expect("run").expect("exists");
    assert_eq!(
        (run.status.as_str(), run.not_before),
        ("waiting", Some(due))
    );
    assert!(
        a.due_waiting(due - Duration::seconds(1))
            .expect("due")
            .is_empty()
    );
    assert_eq!(a.next_waiting().expect("next"), Some(due));
    let mine = a.due_waiting(due).expect("due");
    assert_eq!(
        mine.iter()
            .map(|w| (w.runid, w.attempt))
            .collect::<Vec<_>>(),
        [(runid, 1)]
    );
    // Another process leaves a live owner's waiting run alone.
    assert!(b.due_waiting(due).expect("due").is_empty());
    assert_eq!(b.next_waiting().expect("next"), None);
    let a_alive = FakeLiveness(vec![a.owner().to_string()]);
    b.recover_interrupted_with(t0(), &a_alive).expect("recover");
    assert!(b.due_waiting(due).expect("due").is_empty());
    // Its owner gone, the scheduler takes it over, still waiting.
    drop(a);
    b.recover_interrupted_with(t0(), &FakeLiveness(vec![]))
        .expect("recover");
    assert_eq!(
        b.run(runid).expect("run").expect("exists").status,
        "waiting"
    );
    assert_eq!(b.due_waiting(due).expect("due").len(), 1);
    // Started once: the second start finds it taken.
    assert_eq!(
        b.start_waiting(runid, due).expect("start"),
        BeginRun::Started { runid }
    );
    assert_eq!(
        b.start_waiting(runid, due).expect("start"),
        BeginRun::AlreadyClaimed
    );
    let run = b.run(runid).expect("run").expect("exists");
    assert_eq!((run.status.as_str(), run.start_time), ("running", due));
    assert!(b.due_waiting(due).expect("due").is_empty());
}

#[test]
fn waiting_runs_left_to_the_scheduler_skip_while_the_job_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Store::open(dir.path()).expect("open");
    let scheduler = Store::open(dir.path()).expect("open");
    let id = cli
        .upsert_job(&spec("a", JobSource::Sql), t0())
        .expect("job");
    let mut retry = new_run(id, None);
    retry.trigger = Trigger::Retry;
    retry.attempt = 2;
    let waiting = cli
        .queue_run(&retry, t0(), "waiting: retry", StartedBy::Scheduler, t0())
        .expect("queue")
        .expect("queued");
    assert!(cli.my_waiting_retry(id).expect("mine").is_none());
    let due = scheduler.due_waiting(t0()).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].trigger, due[0].attempt), (Trigger::Retry, 2));
    let BeginRun::Started { runid: running } =
        cli.begin_run(&new_run(id, None), t0()).expect("begin")
    else {
        panic!("started");
    };
    assert_eq!(
        scheduler.start_waiting(waiting, t0()).expect("start"),
        BeginRun::Skipped {
            runid: waiting,
            running
        }
    );
    assert_eq!(
        scheduler.run(waiting).expect("run").expect("exists").status,
        "skipped"
    );
    assert!(!scheduler.skip_waiting(waiting, "gone", t0()).expect("skip"));
}
