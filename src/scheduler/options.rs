//! Per-job run options, from a job file's header (`-- retries: 3`) or
//! from named arguments of `cron.schedule` / `cron.alter_job`
//! (`retries := 3`), which pg_cron does not have: retries, timeout, delay,
//! min_interval and catch_up. Pure: parsing, backoff and the delay of a slot.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

use crate::state::{CatchUp, JobOptions};

/// The option names, as header keys and as named call arguments.
pub const OPTION_NAMES: [&str; 5] = ["retries", "timeout", "delay", "min_interval", "catch_up"];

/// The most retries a job may ask for: past that, a failing job should be
/// looked at, not hammered.
const MAX_RETRIES: u32 = 10;

/// Seconds from `90s`, `10m`, `2h`, `1d`, `1h30m` or a bare number of
/// seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return if n >= 0 {
            Ok(n)
        } else {
            Err(format!("'{text}' is negative"))
        };
    }
    let bad = || format!("'{text}' is not a duration; write e.g. 90s, 10m, 2h or 1h30m");
    let mut total = 0i64;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// `90s` and friends back from seconds, for `cron.job` and messages.
pub fn show_duration(secs: i64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Set option `key` from `value`. `Ok(false)`: not an option name.
pub fn set_option(opts: &mut JobOptions, key: &str, value: &str) -> Result<bool, String> {
    let v = value.trim();
    match key {
        "retries" => {
            let n: u32 = v
                .parse()
                .map_err(|_| format!("retries: '{value}' is not a whole number"))?;
            if n > MAX_RETRIES {
                return Err(format!("retries: at most {MAX_RETRIES}"));
            }
            opts.retries = n;
        }
        "timeout" => {
            let s = parse_duration(v).map_err(|e| format!("timeout: {e}"))?;
            opts.timeout_secs = (s > 0).then_some(s);
        }
        "delay" => {
            // `5m`, or a range `0-10m` (each run waits a spread of it, so
            // many jobs on one slot do not hit Salesforce at once).
            let (lo, hi) = match v.split_once('-') {
                Some((lo, hi)) => {
                    let hi_s = parse_duration(hi).map_err(|e| format!("delay: {e}"))?;
                    // `0-10m`: a bare low end takes the high end's unit.
                    let unit: String = hi.trim().chars().skip_while(char::is_ascii_digit).collect();
                    let lo_text = if lo.trim().chars().all(|c| c.is_ascii_digit()) {
                        format!("{}{unit}", lo.trim())
                    } else {
                        lo.to_string()
                    };
                    (
                        parse_duration(&lo_text).map_err(|e| format!("delay: {e}"))?,
                        hi_s,
                    )
                }
                None => {
                    let s = parse_duration(v).map_err(|e| format!("delay: {e}"))?;
                    (s, s)
                }
            };
            if lo > hi {
                return Err(format!("delay: '{value}' runs backwards; write low-high"));
            }
            opts.delay_secs = (hi > 0).then_some((lo, hi));
        }
        "min_interval" => {
            let s = parse_duration(v).map_err(|e| format!("min_interval: {e}"))?;
            opts.min_interval_secs = (s > 0).then_some(s);
        }
        "catch_up" => {
            opts.catch_up = Some(CatchUp::parse(v).ok_or_else(|| {
                format!("catch_up: '{value}' is not a policy; write none or once")
            })?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// How long a job waits after its slot before running: fixed, or a spread
/// of the range that depends only on the job and the slot, so it is the
/// same after a restart and in tests.
pub fn slot_delay(opts: &JobOptions, jobid: i64, slot: DateTime<Utc>) -> i64 {
    match opts.delay_secs {
        None => 0,
        Some((lo, hi)) if lo == hi => lo,
        Some((lo, hi)) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (jobid, slot.timestamp()).hash(&mut h);
            lo + (h.finish() % (hi - lo + 1) as u64) as i64
        }
    }
}

/// Wait before retry `attempt + 1` after attempt `attempt` failed: 30 s,
/// doubling, at most 15 minutes.
pub fn backoff_secs(attempt: u32) -> i64 {
    (30i64 << attempt.saturating_sub(1).min(5)).min(900)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("10").is_ok() && parse_duration("10x").is_err());
        assert_eq!(show_duration(7200), "2h");
        assert_eq!(show_duration(90), "90s");
    }

    #[test]
    fn options_from_text() {
        let mut o = JobOptions::default();
        assert_eq!(set_option(&mut o, "retries", "3"), Ok(true));
        assert_eq!(set_option(&mut o, "timeout", "10m"), Ok(true));
        assert_eq!(set_option(&mut o, "delay", "0-10m"), Ok(true));
        assert_eq!(set_option(&mut o, "min_interval", "2h"), Ok(true));
        assert_eq!(set_option(&mut o, "colour", "red"), Ok(false));
        assert_eq!(
            o,
            JobOptions {
                retries: 3,
                timeout_secs: Some(600),
                delay_secs: Some((0, 600)),
                min_interval_secs: Some(7200),
                catch_up: None,
            }
        );
        assert_eq!(set_option(&mut o, "catch_up", "None"), Ok(true));
        assert_eq!(o.catch_up, Some(CatchUp::None));
        let err = set_option(&mut o, "catch_up", "twice").expect_err("bad policy");
        assert!(err.contains("none or once"), "{err}");
        assert!(set_option(&mut o, "retries", "99").is_err());
        assert!(set_option(&mut o, "delay", "10m-1m").is_err());
        // Zero turns an option off.
        set_option(&mut o, "timeout", "0").expect("ok");
        assert_eq!(o.timeout_secs, None);
    }

    #[test]
    fn delays_are_spread_but_stable() {
        let slot = Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("t");
        let mut o = JobOptions::default();
        assert_eq!(slot_delay(&o, 1, slot), 0);
        set_option(&mut o, "delay", "0-10m").expect("ok");
        let d = slot_delay(&o, 1, slot);
        assert!((0..=600).contains(&d));
        assert_eq!(slot_delay(&o, 1, slot), d);
        set_option(&mut o, "delay", "5m").expect("ok");
        assert_eq!(slot_delay(&o, 7, slot), 300);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_secs(1), 30);
        assert_eq!(backoff_secs(2), 60);
        assert_eq!(backoff_secs(9), 900);
    }
}
