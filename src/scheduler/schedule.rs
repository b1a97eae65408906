//! Schedule math, without I/O: parsing 5-field cron expressions in a time
//! zone, the next run after an instant, and which jobs are due at a tick.
//! Time comes in as an argument (the [`Clock`] is injected), so tests never
//! sleep.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::SchedulerError;

/// Where "now" comes from; tests pass a [`ManualClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told: tests drive the real scheduler loop
/// through cron slots without sleeping (set it, then
/// [`Scheduler::wake`](super::Scheduler::wake)).
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(t))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        // A poisoned lock only means a test panicked; the time is still valid.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A parsed schedule: a cron pattern read in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// Parse a standard 5-field cron expression (or `@daily` and friends) in
/// `timezone` (an IANA name; empty means UTC).
pub fn parse_schedule(expr: &str, timezone: &str) -> Result<Schedule, SchedulerError> {
    let fields = expr.split_whitespace().count();
    if !expr.trim_start().starts_with('@') && fields != 5 {
        return Err(SchedulerError::BadSchedule {
            schedule: expr.to_string(),
            reason: format!(
                "{fields} fields; write 5: minute hour day-of-month month day-of-week, e.g. '0 9 * * *'"
            ),
        });
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| SchedulerError::BadSchedule {
            schedule: expr.to_string(),
            reason: e.to_string(),
        })?;
    let tz = parse_timezone(timezone)?;
    Ok(Schedule { cron, tz })
}

pub fn parse_timezone(timezone: &str) -> Result<Tz, SchedulerError> {
    let name = timezone.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    Tz::from_str(name).map_err(|_| SchedulerError::BadTimezone(name.to_string()))
}

impl Schedule {
    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }
}

/// What a job's timer decides at `now`: the slot to run, if one is due,
/// and the job's next due time. Slots missed while a tick was late collapse
/// into one run (the latest), never a burst.
pub fn advance(
    schedule: &Schedule,
    next_due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    if now < next_due {
        return (None, Some(next_due));
    }
    let mut slot = next_due;
    // Bounded: a minutely job missed for a week is ~10k steps.
    for _ in 0..20_000 {
        match schedule.next_after(slot) {
            Some(n) if n <= now => slot = n,
            _ => break,
        }
    }
    (Some(slot), schedule.next_after(now))
}

/// Slots missed while sfsql was down: the latest slot in `(since, now]`
/// and how many there were, or `None` when no slot fell in between.
/// `since` is when the job last ran (or its schedule last changed, when
/// that is later). Only these are candidates: the loop counts from `now`.
pub fn missed_slots(
    schedule: &Schedule,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, usize)> {
    let mut slot = schedule.next_after(since).filter(|s| *s <= now)?;
    let mut count = 1;
    // Bounded as in `advance`: the count is for the message, not exact
    // past ~20k (a minutely job down for two weeks).
    for _ in 0..20_000 {
        match schedule.next_after(slot) {
            Some(n) if n <= now => {
                slot = n;
                count += 1;
            }
            _ => break,
        }
    }
    Some((slot, count))
}

/// A job as the timers see it: its id, a key that changes when its
/// schedule does, and the parsed schedule (`None` when paused).
pub struct TimerJob {
    pub jobid: i64,
    pub key: String,
    pub schedule: Option<Schedule>,
}

/// Each active job's next due time, kept between ticks.
#[derive(Default)]
pub struct Timers {
    next: HashMap<i64, (String, Option<DateTime<Utc>>)>,
}

impl Timers {
    /// The (jobid, slot) pairs due at `now`. New or changed jobs start
    /// counting from `now`: creating a job never runs it at once.
    pub fn due(&mut self, jobs: &[TimerJob], now: DateTime<Utc>) -> Vec<(i64, DateTime<Utc>)> {
        let mut due = Vec::new();
        let mut next = HashMap::new();
        for job in jobs {
            let Some(schedule) = &job.schedule else {
                continue;
            };
            let known = self
                .next
                .get(&job.jobid)
                .filter(|(key, _)| *key == job.key)
                .map(|(_, n)| *n);
            let next_due = match known {
                Some(Some(n)) => {
                    let (slot, after) = advance(schedule, n, now);
                    if let Some(slot) = slot {
                        due.push((job.jobid, slot));
                    }
                    after
                }
                Some(None) => None,
                None => schedule.next_after(now),
            };
            next.insert(job.jobid, (job.key.clone(), next_due));
        }
        self.next = next;
        due
    }

    /// The earliest next due time, to know how long to sleep.
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        self.next.values().filter_map(|(_, n)| *n).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0)
            .single()
            .expect("time")
    }

    fn job(id: i64, expr: &str) -> TimerJob {
        TimerJob {
            jobid: id,
            key: expr.to_string(),
            schedule: Some(parse_schedule(expr, "").expect("parse")),
        }
    }

    #[test]
    fn daily_at_nine_utc() {
        let s = parse_schedule("0 9 * * *", "").expect("parse");
        assert_eq!(s.next_after(at(8, 59)), Some(at(9, 0)));
        // Strictly after: at 09:00 the next one is tomorrow.
        assert_eq!(s.next_after(at(9, 0)), Some(at(9, 0) + Duration::days(1)));
    }

    #[test]
    fn time_zone_shifts_the_slot() {
        // 09:00 in Tokyo is 00:00 UTC.
        let s = parse_schedule("0 9 * * *", "Asia/Tokyo").expect("parse");
        assert_eq!(s.next_after(at(8, 0)), Some(at(0, 0) + Duration::days(1)));
        assert!(matches!(
            parse_schedule("0 9 * * *", "Mars/Olympus"),
            Err(SchedulerError::BadTimezone(_))
        ));
    }

    #[test]
    fn bad_expressions_say_what_to_write() {
        let err = parse_schedule("0 0 9 * * *", "").expect_err("6 fields");
        assert!(err.to_string().contains("write 5"), "{err}");
        assert!(parse_schedule("61 * * * *", "").is_err());
        assert!(parse_schedule("@hourly", "").is_ok());
    }

    #[test]
    fn missed_slots_collapse_into_one() {
        let s = parse_schedule("*/15 * * * *", "").expect("parse");
        let (slot, next) = advance(&s, at(9, 0), at(10, 7));
        assert_eq!(slot, Some(at(10, 0)));
        assert_eq!(next, Some(at(10, 15)));
        assert_eq!(advance(&s, at(9, 0), at(8, 59)), (None, Some(at(9, 0))));
    }

    #[test]
    fn missed_slots_zero_one_many() {
        let s = parse_schedule("0 9 * * *", "").expect("parse");
        // Last ran at 09:00 today; back at 23:00: nothing missed.
        assert_eq!(missed_slots(&s, at(9, 0), at(23, 0)), None);
        // Down from 08:00 to 09:30: the 09:00 slot, once.
        assert_eq!(missed_slots(&s, at(8, 0), at(9, 30)), Some((at(9, 0), 1)));
        // A slot exactly at start counts: the loop only looks after now.
        assert_eq!(missed_slots(&s, at(8, 0), at(9, 0)), Some((at(9, 0), 1)));
        // Down for three days: three slots, the latest is the one to run.
        let back = at(9, 30) + Duration::days(2);
        assert_eq!(
            missed_slots(&s, at(8, 0), back),
            Some((at(9, 0) + Duration::days(2), 3))
        );
        // In the job's time zone: 09:00 Tokyo is 00:00 UTC.
        let tokyo = parse_schedule("0 9 * * *", "Asia/Tokyo").expect("parse");
        assert_eq!(
            missed_slots(&tokyo, at(8, 0), at(1, 0) + Duration::days(1)),
            Some((at(0, 0) + Duration::days(1), 1))
        );
    }

    #[test]
    fn timers_fire_once_per_slot_and_restart_on_change() {
        let mut timers = Timers::default();
        let jobs = vec![job(1, "0 9 * * *"), job(2, "*/5 * * * *")];
        // First sight: nothing runs, next times are set.
        assert!(timers.due(&jobs, at(8, 58)).is_empty());
        assert_eq!(timers.earliest(), Some(at(9, 0)));
        assert_eq!(
            timers.due(&jobs, at(9, 0)),
            vec![(1, at(9, 0)), (2, at(9, 0))]
        );
        assert!(timers.due(&jobs, at(9, 0)).is_empty());
        assert_eq!(timers.due(&jobs, at(9, 6)), vec![(2, at(9, 5))]);
        // A changed schedule counts from now; a removed job is forgotten.
        let changed = vec![job(1, "30 9 * * *")];
        assert!(timers.due(&changed, at(9, 10)).is_empty());
        assert_eq!(timers.earliest(), Some(at(9, 30)));
        assert_eq!(timers.due(&changed, at(9, 31)), vec![(1, at(9, 30))]);
        // Paused jobs never fire.
        let paused = vec![TimerJob {
            jobid: 1,
            key: "30 9 * * *".into(),
            schedule: None,
        }];
        assert!(timers.due(&paused, at(23, 0)).is_empty());
    }
}
