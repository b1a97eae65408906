//! Missed runs: at start, each active job whose latest slot before now
//! fell while sfsql was down gets ONE `catch-up` run, however many slots
//! were missed (policy `once`, the default), or none (policy `none`).
//! Only the process holding the scheduler lock does this, and the run
//! claims the missed slot like a scheduled run does, so two servers on one
//! state directory never both catch up.

use chrono::{DateTime, Utc};

use super::schedule::{missed_slots, parse_schedule};
use super::{Scheduler, SchedulerError};
use crate::state::{CatchUp, JobRow, Trigger};

/// What start decided for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpRun {
    pub jobid: i64,
    pub jobname: String,
    /// The latest missed slot: the run stands for it.
    pub slot: DateTime<Utc>,
    pub missed: usize,
}

/// The catch-up run `job` needs at `now`, if any: its policy is `once`
/// and a slot fell after both its latest run and its last schedule
/// change. Pure, so every case is a unit test.
pub fn catch_up_for(
    job: &JobRow,
    last_run_start: Option<DateTime<Utc>>,
    default: CatchUp,
    now: DateTime<Utc>,
) -> Option<CatchUpRun> {
    if !job.active || job.options.catch_up.unwrap_or(default) == CatchUp::None {
        return None;
    }
    let schedule = parse_schedule(&job.schedule, &job.timezone).ok()?;
    let since = last_run_start.map_or(job.schedule_changed_at, |t| t.max(job.schedule_changed_at));
    let (slot, missed) = missed_slots(&schedule, since, now)?;
    Some(CatchUpRun {
        jobid: job.jobid,
        jobname: job.jobname.clone(),
        slot,
        missed,
    })
}

impl Scheduler {
    /// Store the catch-up runs due at start as waiting (the loop starts
    /// them on its first tick, paused jobs logging theirs as skipped). Call only while
    /// holding the scheduler lock.
    pub(super) fn queue_catch_up(&self) -> Result<Vec<CatchUpRun>, SchedulerError> {
        let now = self.clock.now();
        let mut runs = Vec::new();
        for job in self.store.jobs()? {
            let last = self.store.last_run_start(job.jobid)?;
            if let Some(run) = catch_up_for(&job, last, self.config.catch_up, now) {
                runs.push(run);
            }
        }
        for run in &runs {
            tracing::info!(
                job = %run.jobname,
                slot = %run.slot,
                missed = run.missed,
                "slots missed while sfsql was down: one catch-up run"
            );
            if let Some(job) = self.store.job_by_id(run.jobid)? {
                self.queue_slot(&job, Trigger::CatchUp, run.slot, now)?;
            }
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::state::{JobOptions, JobSource};

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0)
            .single()
            .expect("time")
    }

    fn job(catch_up: Option<CatchUp>, changed: DateTime<Utc>) -> JobRow {
        JobRow {
            jobid: 7,
            jobname: "nps".into(),
            schedule: "0 9 * * *".into(),
            command: "SELECT 1".into(),
            timezone: "UTC".into(),
            active: true,
            source: JobSource::Sql,
            username: "demo".into(),
            options: JobOptions {
                catch_up,
                ..JobOptions::default()
            },
            paused: None,
            schedule_changed_at: changed,
        }
    }

    #[test]
    fn no_slot_missed() {
        // Ran at 09:00, down from 10:00, back at 23:00 the same day.
        let j = job(None, at(1, 8, 0));
        assert_eq!(
            catch_up_for(&j, Some(at(2, 9, 0)), CatchUp::Once, at(2, 23, 0)),
            None
        );
        // Created at 10:00 and never ran: the first slot is tomorrow.
        let new = job(None, at(2, 10, 0));
        assert_eq!(catch_up_for(&new, None, CatchUp::Once, at(2, 23, 0)), None);
    }

    #[test]
    fn one_slot_missed() {
        let j = job(None, at(1, 8, 0));
        let run = catch_up_for(&j, Some(at(1, 9, 0)), CatchUp::Once, at(2, 9, 30))
            .expect("a catch-up run");
        assert_eq!((run.slot, run.missed), (at(2, 9, 0), 1));
        // Never ran: counted from its creation.
        let run = catch_up_for(&j, None, CatchUp::Once, at(1, 12, 0)).expect("catch up");
        assert_eq!((run.slot, run.missed), (at(1, 9, 0), 1));
    }

    #[test]
    fn many_slots_missed_make_one_run_for_the_latest() {
        let j = job(None, at(1, 8, 0));
        let back = at(5, 12, 0);
        let run = catch_up_for(&j, Some(at(1, 9, 0)), CatchUp::Once, back).expect("one run");
        assert_eq!(run.slot, at(5, 9, 0));
        assert_eq!(run.missed, 4);
        // A schedule changed after the last run counts from the change.
        let changed = job(None, at(4, 10, 0));
        let run = catch_up_for(&changed, Some(at(1, 9, 0)), CatchUp::Once, back).expect("one");
        assert_eq!((run.slot, run.missed), (at(5, 9, 0), 1));
    }

    #[test]
    fn policy_none_and_inactive_jobs_do_not_catch_up() {
        let back = at(5, 12, 0) + Duration::days(1);
        let last = Some(at(1, 9, 0));
        let none = job(Some(CatchUp::None), at(1, 8, 0));
        assert_eq!(catch_up_for(&none, last, CatchUp::Once, back), None);
        // The server default applies when the job sets nothing...
        let default = job(None, at(1, 8, 0));
        assert_eq!(catch_up_for(&default, last, CatchUp::None, back), None);
        // ...and a job's own `once` wins over a `none` default.
        let once = job(Some(CatchUp::Once), at(1, 8, 0));
        assert!(catch_up_for(&once, last, CatchUp::None, back).is_some());
        let mut inactive = job(None, at(1, 8, 0));
        inactive.active = false;
        assert_eq!(catch_up_for(&inactive, last, CatchUp::Once, back), None);
    }
}
