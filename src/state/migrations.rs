//! Versioned schema migrations of the state store, tracked in SQLite's
//! `user_version`. A migration is appended, never edited.

use std::path::Path;

use rusqlite::Connection;

use super::StateError;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, runs, per-record outcomes.
    r#"
    CREATE TABLE job (
        jobid      INTEGER PRIMARY KEY AUTOINCREMENT,
        jobname    TEXT NOT NULL UNIQUE,
        schedule   TEXT NOT NULL,
        command    TEXT NOT NULL,
        timezone   TEXT NOT NULL DEFAULT 'UTC',
        active     INTEGER NOT NULL DEFAULT 1,
        -- 'sql' (cron.schedule) or 'file:<path>' (sql/*.sql)
        source     TEXT NOT NULL,
        username   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE run (
        runid          INTEGER PRIMARY KEY AUTOINCREMENT,
        jobid          INTEGER,
        jobname        TEXT,
        username       TEXT NOT NULL,
        command        TEXT NOT NULL,
        trigger        TEXT NOT NULL,
        status         TEXT NOT NULL,
        return_message TEXT,
        job_pid        INTEGER,
        dry_run        INTEGER NOT NULL DEFAULT 0,
        -- the cron slot a scheduled run was due at; with jobid it is unique,
        -- so two servers on one state directory cannot both run one slot
        scheduled_for  INTEGER,
        start_time     INTEGER NOT NULL,
        end_time       INTEGER,
        sobject        TEXT,
        rows_matched   INTEGER NOT NULL DEFAULT 0,
        rows_updated   INTEGER NOT NULL DEFAULT 0,
        rows_created   INTEGER NOT NULL DEFAULT 0,
        rows_unchanged INTEGER NOT NULL DEFAULT 0,
        rows_skipped   INTEGER NOT NULL DEFAULT 0,
        rows_failed    INTEGER NOT NULL DEFAULT 0,
        api_calls      INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX run_slot ON run (jobid, scheduled_for)
        WHERE scheduled_for IS NOT NULL;
    CREATE INDEX run_job ON run (jobid, status);
    CREATE INDEX run_status ON run (status);
    CREATE TABLE run_record (
        runid      INTEGER NOT NULL REFERENCES run (runid) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        sobject    TEXT NOT NULL,
        record_id  TEXT NOT NULL,
        match_key  TEXT,
        action     TEXT NOT NULL,
        status     TEXT NOT NULL,
        error_code TEXT,
        message    TEXT,
        fields     TEXT,
        PRIMARY KEY (runid, seq)
    );
    "#,
    // 2: records sent whose outcome is not known (a lost response on create).
    r#"
    ALTER TABLE run ADD COLUMN rows_unknown INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: per-job run options and the attempt number of each run.
    r#"
    ALTER TABLE job ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job ADD COLUMN timeout_secs INTEGER;
    ALTER TABLE job ADD COLUMN delay_min_secs INTEGER;
    ALTER TABLE job ADD COLUMN delay_max_secs INTEGER;
    ALTER TABLE job ADD COLUMN min_interval_secs INTEGER;
    ALTER TABLE run ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    "#,
    // 4: records deleted by a run (DELETE statements).
    r#"
    ALTER TABLE run ADD COLUMN rows_deleted INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: a job paused because its connection needs `sfsql login`; `active`
    // stays as the user set it.
    r#"
    ALTER TABLE job ADD COLUMN paused_connection TEXT;
    ALTER TABLE job ADD COLUMN paused_reason TEXT;
    "#,
    // 6: the missed-run policy ('none' / 'once'; NULL: the server's
    // default) and when the job's schedule last changed or it was last
    // activated, the start of its slots when it never ran.
    r#"
    ALTER TABLE job ADD COLUMN catch_up TEXT;
    ALTER TABLE job ADD COLUMN schedule_changed_at INTEGER;
    UPDATE job SET schedule_changed_at = updated_at;
    "#,
    // 7: who runs a run (an owner id whose lock file is held while the
    // process lives), so a start recovers only the runs of processes that
    // are gone. NULL (runs from before): no owner to wait for.
    r#"
    ALTER TABLE run ADD COLUMN owner TEXT;
    "#,
    // 8: runs stored while they wait (status 'waiting') for their delay or
    // a retry's backoff, with when they are due.
    r#"
    ALTER TABLE run ADD COLUMN not_before INTEGER;
    CREATE INDEX run_waiting ON run (not_before) WHERE status = 'waiting';
    "#,
    // 9: per-record outcomes a batch per row (state/record_chunks.rs):
    // records `first_seq .. first_seq + n` of a run, their ids and match
    // keys in `records`, their outcomes run-length encoded in `outcomes`.
    // Records stored before stay in run_record and are read from there.
    r#"
    CREATE TABLE run_record_chunk (
        runid     INTEGER NOT NULL REFERENCES run (runid) ON DELETE CASCADE,
        first_seq INTEGER NOT NULL,
        n         INTEGER NOT NULL,
        sobject   TEXT NOT NULL,
        action    TEXT NOT NULL,
        records   BLOB NOT NULL,
        outcomes  BLOB NOT NULL,
        PRIMARY KEY (runid, first_seq)
    ) WITHOUT ROWID;
    "#,
];

pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > current_version() {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            known: current_version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "state store migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store left at version 1 by an older sfsql: opening it applies
    /// every later migration in order and keeps its jobs; a store newer
    /// than this sfsql is refused, saying so.
    #[test]
    fn an_old_store_is_migrated_up_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO job (jobname, schedule, command, source, username, created_at, updated_at)
             VALUES ('old', '0 9 * * *', 'SELECT 1', 'sql', 'demo', 0, 0)",
            [],
        )
        .expect("an old job");
        migrate(&mut conn, &path).expect("migrate");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, current_version());
        assert!(current_version() > 1);
        let name: String = conn
            .query_row("SELECT jobname FROM job", [], |r| r.get(0))
            .expect("the job is kept");
        assert_eq!(name, "old");
        // Migrating again changes nothing.
        migrate(&mut conn, &path).expect("again");

        conn.pragma_update(None, "user_version", current_version() + 1)
            .expect("newer");
        let err = migrate(&mut conn, &path).expect_err("too new");
        assert!(matches!(err, StateError::TooNew { found, known, .. }
            if found == current_version() + 1 && known == current_version()));
        assert!(err.to_string().contains("old.db"), "{err}");
    }
}
