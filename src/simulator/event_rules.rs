//! An Event's time fields as Salesforce keeps them: a timed event needs a
//! start (StartDateTime or ActivityDateTime) and either DurationInMinutes
//! or EndDateTime; the other is derived, both may be given only if they
//! agree, and ActivityDateTime always equals StartDateTime.

use chrono::{DateTime, Duration, Utc};

use super::schema::{ObjId, schema};
use super::store::{Store, Value};
use super::validate::RecordError;

/// The time fields of one Event, current values overlaid with the sent
/// ones (`None` = not sent, so the current value stands).
struct Times {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    duration: Option<i64>,
    sent_end: bool,
    sent_duration: bool,
    all_day: bool,
}

fn datetime(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::DateTime(d) => Some(*d),
        _ => None,
    }
}

fn minutes(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Double(d) => Some(d.round() as i64),
        _ => None,
    }
}

/// Check and complete the time fields of an Event create (`row: None`) or
/// update; `values` are the validated fields of the request and receive
/// the derived ones.
pub fn derive_times(
    store: &Store,
    obj: ObjId,
    row: Option<u32>,
    values: &mut Vec<(usize, Value)>,
) -> Result<(), RecordError> {
    let def = schema().object(obj);
    let idx = |name: &str| def.field_index(name);
    let (Some(start_f), Some(activity_f), Some(end_f), Some(duration_f), Some(all_day_f)) = (
        idx("StartDateTime"),
        idx("ActivityDateTime"),
        idx("EndDateTime"),
        idx("DurationInMinutes"),
        idx("IsAllDayEvent"),
    ) else {
        return Ok(());
    };
    let sent = |f: usize| values.iter().find(|(i, _)| *i == f).map(|(_, v)| v.clone());
    let current = |f: usize| {
        row.map(|r| store.table(obj).get(r, f).clone())
            .unwrap_or(Value::Null)
    };
    let value = |f: usize| sent(f).unwrap_or_else(|| current(f));
    let start_sent = sent(start_f)
        .as_ref()
        .and_then(datetime)
        .or_else(|| sent(activity_f).as_ref().and_then(datetime));
    let times = Times {
        start: start_sent.or_else(|| datetime(&current(start_f))),
        end: datetime(&value(end_f)),
        duration: minutes(&value(duration_f)),
        sent_end: sent(end_f).is_some_and(|v| !v.is_null()),
        sent_duration: sent(duration_f).is_some_and(|v| !v.is_null()),
        all_day: value(all_day_f) == Value::Bool(true),
    };
    if times.all_day {
        return Ok(());
    }
    let (start, end, duration) = resolve(&times)?;
    for (f, v) in [
        (start_f, Value::DateTime(start)),
        (activity_f, Value::DateTime(start)),
        (end_f, Value::DateTime(end)),
        (duration_f, Value::Int(duration)),
    ] {
        match values.iter_mut().find(|(i, _)| *i == f) {
            Some(slot) => slot.1 = v,
            None => values.push((f, v)),
        }
    }
    Ok(())
}

/// Start, end and duration of a timed event, or the error Salesforce gives.
fn resolve(t: &Times) -> Result<(DateTime<Utc>, DateTime<Utc>, i64), RecordError> {
    let start = t
        .start
        .ok_or_else(|| RecordError::required_missing(&["ActivityDateTime"]))?;
    let (end, duration) = match (t.sent_end, t.sent_duration) {
        (true, true) => {
            let (Some(end), Some(d)) = (t.end, t.duration) else {
                return Err(RecordError::required_missing(&["DurationInMinutes"]));
            };
            if end - start != Duration::minutes(d) {
                return Err(RecordError::new(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "Event duration and end time don't match: EndDateTime must be StartDateTime plus DurationInMinutes",
                    &["DurationInMinutes", "EndDateTime"],
                ));
            }
            (end, d)
        }
        // The end is given: the duration follows from it.
        (true, false) => {
            let end = t
                .end
                .ok_or_else(|| RecordError::required_missing(&["DurationInMinutes"]))?;
            (end, (end - start).num_minutes())
        }
        // A duration given, or neither (an update that keeps the duration
        // and may move the start): the end follows.
        _ => {
            let d = t
                .duration
                .ok_or_else(|| RecordError::required_missing(&["DurationInMinutes"]))?;
            (start + Duration::minutes(d), d)
        }
    };
    if duration < 0 {
        return Err(RecordError::new(
            "FIELD_INTEGRITY_EXCEPTION",
            "End Date Time must be on or after Start Date Time",
            &["EndDateTime"],
        ));
    }
    Ok((start, end, duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0)
    }

    fn times(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>, d: Option<i64>) -> Times {
        Times {
            start,
            end,
            duration: d,
            sent_end: end.is_some(),
            sent_duration: d.is_some(),
            all_day: false,
        }
    }

    #[test]
    fn duration_or_end_is_required_and_the_other_derived() {
        let e = resolve(&times(at(0), None, None)).unwrap_err();
        assert_eq!(e.status_code, "REQUIRED_FIELD_MISSING");
        assert_eq!(
            e.message,
            "Required fields are missing: [DurationInMinutes]"
        );
        assert_eq!(
            resolve(&times(at(0), None, Some(60))).unwrap().1,
            at(1).unwrap()
        );
        assert_eq!(resolve(&times(at(0), at(2), None)).unwrap().2, 120);
        assert!(resolve(&times(at(0), at(2), Some(120))).is_ok());
        let e = resolve(&times(at(0), at(2), Some(30))).unwrap_err();
        assert_eq!(e.status_code, "FIELD_INTEGRITY_EXCEPTION");
        let e = resolve(&times(None, None, Some(30))).unwrap_err();
        assert_eq!(e.fields, vec!["ActivityDateTime"]);
        assert!(resolve(&times(at(2), at(0), None)).is_err());
        // An update that only moves the start keeps the duration.
        let moved = Times {
            sent_duration: false,
            ..times(at(5), None, Some(45))
        };
        assert_eq!(
            resolve(&moved).unwrap().1,
            at(5).unwrap() + Duration::minutes(45)
        );
    }
}
