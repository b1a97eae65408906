//! Binding the arguments of a `cron.*` call, positional or named, to what
//! the function needs, with pg_cron's signatures. Pure, so every mistake a
//! user can make is tested here.

use super::options::OPTION_NAMES;
use super::{JobRef, SchedulerError};

/// One literal argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CronCall {
    Schedule {
        name: String,
        schedule: String,
        command: String,
        /// sfsql's named extras (`retries := 3`), as text.
        options: Vec<(String, String)>,
    },
    Unschedule(JobRef),
    AlterJob {
        id: i64,
        schedule: Option<String>,
        command: Option<String>,
        active: Option<bool>,
        options: Vec<(String, String)>,
    },
    /// `job` is a name or an id, as text.
    Run {
        job: String,
        dry_run: bool,
        /// `false`: return the run id at once while the run goes on.
        wait: bool,
    },
}

const SIGNATURES: &str = "cron.schedule(name, schedule, command [, retries :=, timeout :=, delay :=, min_interval :=, catch_up :=]), cron.unschedule(name | id), \
cron.alter_job(job_id, schedule, command, database, username, active [, retries :=, ...]), cron.run(name | id [, dry_run [, wait]])";

fn bad(message: String) -> SchedulerError {
    SchedulerError::BadCall(message)
}

/// Arguments in pg_cron's order: positional first, then by name.
fn bind(
    function: &str,
    params: &[&str],
    args: Vec<(Option<String>, Arg)>,
) -> Result<Vec<Arg>, SchedulerError> {
    let mut out = vec![Arg::Null; params.len()];
    let mut seen_named = false;
    for (i, (name, value)) in args.into_iter().enumerate() {
        let slot = match name {
            None if seen_named => {
                return Err(bad(format!(
                    "cron.{function}: positional arguments must come before named ones"
                )));
            }
            None if i < params.len() => i,
            None => {
                return Err(bad(format!(
                    "cron.{function} takes at most {} arguments ({SIGNATURES})",
                    params.len()
                )));
            }
            Some(n) => {
                seen_named = true;
                params.iter().position(|p| *p == n).ok_or_else(|| {
                    bad(format!(
                        "cron.{function} has no argument '{n}'; it takes {}",
                        params.join(", ")
                    ))
                })?
            }
        };
        out[slot] = value;
    }
    Ok(out)
}

fn text(function: &str, param: &str, a: &Arg) -> Result<Option<String>, SchedulerError> {
    match a {
        Arg::Text(s) => Ok(Some(s.clone())),
        Arg::Int(n) => Ok(Some(n.to_string())),
        Arg::Null => Ok(None),
        Arg::Bool(_) => Err(bad(format!("cron.{function}: {param} must be text"))),
    }
}

fn required(function: &str, param: &str, a: &Arg) -> Result<String, SchedulerError> {
    text(function, param, a)?.ok_or_else(|| {
        bad(format!(
            "cron.{function}: {param} is required ({SIGNATURES})"
        ))
    })
}

/// The options given among `a` (bound after `first` pg_cron arguments).
fn options_of(
    function: &str,
    a: &[Arg],
    first: usize,
) -> Result<Vec<(String, String)>, SchedulerError> {
    let mut out = Vec::new();
    for (name, value) in OPTION_NAMES.iter().zip(&a[first..]) {
        if let Some(v) = text(function, name, value)? {
            out.push((name.to_string(), v));
        }
    }
    Ok(out)
}

/// pg_cron's parameters followed by sfsql's options.
fn params_with_options<'a>(pg_cron: &[&'a str]) -> Vec<&'a str> {
    let mut p = pg_cron.to_vec();
    p.extend(OPTION_NAMES);
    p
}

impl CronCall {
    pub fn parse(
        function: &str,
        args: Vec<(Option<String>, Arg)>,
    ) -> Result<CronCall, SchedulerError> {
        match function {
            "schedule" => {
                if args.len() == 2 && args.iter().all(|(n, _)| n.is_none()) {
                    return Err(bad(
                        "cron.schedule needs a job name first: cron.schedule('name', '0 9 * * *', $$UPDATE ...$$)".into(),
                    ));
                }
                let a = bind(
                    function,
                    &params_with_options(&["job_name", "schedule", "command"]),
                    args,
                )?;
                Ok(CronCall::Schedule {
                    name: required(function, "job_name", &a[0])?,
                    schedule: required(function, "schedule", &a[1])?,
                    command: required(function, "command", &a[2])?,
                    options: options_of(function, &a, 3)?,
                })
            }
            "unschedule" => {
                let a = bind(function, &["job_name"], args)?;
                Ok(CronCall::Unschedule(match &a[0] {
                    Arg::Int(id) => JobRef::Id(*id),
                    other => JobRef::Name(required(function, "job_name or job_id", other)?),
                }))
            }
            "alter_job" => {
                let a = bind(
                    function,
                    &params_with_options(&[
                        "job_id", "schedule", "command", "database", "username", "active",
                    ]),
                    args,
                )?;
                let Arg::Int(id) = a[0] else {
                    return Err(bad(
                        "cron.alter_job: job_id must be a number (SELECT jobid FROM cron.job)"
                            .into(),
                    ));
                };
                for (i, p) in [(3, "database"), (4, "username")] {
                    if a[i] != Arg::Null {
                        return Err(bad(format!(
                            "cron.alter_job: changing {p} is not supported"
                        )));
                    }
                }
                let active = match &a[5] {
                    Arg::Bool(b) => Some(*b),
                    Arg::Null => None,
                    _ => return Err(bad("cron.alter_job: active must be true or false".into())),
                };
                Ok(CronCall::AlterJob {
                    id,
                    schedule: text(function, "schedule", &a[1])?,
                    command: text(function, "command", &a[2])?,
                    active,
                    options: options_of(function, &a, 6)?,
                })
            }
            "run" => {
                let a = bind(function, &["job_name", "dry_run", "wait"], args)?;
                let flag = |i: usize, name: &str, default: bool| match &a[i] {
                    Arg::Bool(b) => Ok(*b),
                    Arg::Null => Ok(default),
                    _ => Err(bad(format!("cron.run: {name} must be true or false"))),
                };
                let dry_run = flag(1, "dry_run", false)?;
                let wait = flag(2, "wait", true)?;
                let job = required(function, "job_name", &a[0])?;
                Ok(CronCall::Run { job, dry_run, wait })
            }
            other => Err(bad(format!(
                "cron.{other} does not exist; sfsql has {SIGNATURES}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> (Option<String>, Arg) {
        (None, Arg::Text(s.into()))
    }

    #[test]
    fn schedule_takes_three_texts() {
        assert_eq!(
            CronCall::parse("schedule", vec![t("a"), t("0 9 * * *"), t("UPDATE x")]).expect("ok"),
            CronCall::Schedule {
                name: "a".into(),
                schedule: "0 9 * * *".into(),
                command: "UPDATE x".into(),
                options: vec![]
            }
        );
        let err =
            CronCall::parse("schedule", vec![t("0 9 * * *"), t("UPDATE x")]).expect_err("unnamed");
        assert!(err.to_string().contains("job name"), "{err}");
    }

    #[test]
    fn alter_job_by_name_keeps_the_rest() {
        let call = CronCall::parse(
            "alter_job",
            vec![
                (None, Arg::Int(3)),
                (Some("active".into()), Arg::Bool(false)),
            ],
        )
        .expect("ok");
        assert_eq!(
            call,
            CronCall::AlterJob {
                id: 3,
                schedule: None,
                command: None,
                active: Some(false),
                options: vec![]
            }
        );
        let call = CronCall::parse(
            "alter_job",
            vec![
                (None, Arg::Int(3)),
                (Some("retries".into()), Arg::Int(2)),
                (Some("timeout".into()), Arg::Text("10m".into())),
            ],
        )
        .expect("ok");
        let CronCall::AlterJob { options, .. } = call else {
            panic!("{call:?}")
        };
        assert_eq!(
            options,
            vec![
                ("retries".into(), "2".into()),
                ("timeout".into(), "10m".into())
            ]
        );
        let err = CronCall::parse(
            "alter_job",
            vec![(None, Arg::Int(3)), (Some("colour".into()), Arg::Null)],
        )
        .expect_err("unknown name");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn unschedule_by_id_or_name_and_unknown_functions() {
        assert_eq!(
            CronCall::parse("unschedule", vec![(None, Arg::Int(4))]).expect("ok"),
            CronCall::Unschedule(JobRef::Id(4))
        );
        assert_eq!(
            CronCall::parse("unschedule", vec![t("nps")]).expect("ok"),
            CronCall::Unschedule(JobRef::Name("nps".into()))
        );
        assert!(CronCall::parse("explode", vec![]).is_err());
        assert!(CronCall::parse("run", vec![]).is_err());
    }

    #[test]
    fn run_waits_unless_told_not_to() {
        let run = |args| CronCall::parse("run", args).expect("ok");
        assert_eq!(
            run(vec![t("nps")]),
            CronCall::Run {
                job: "nps".into(),
                dry_run: false,
                wait: true
            }
        );
        assert_eq!(
            run(vec![t("nps"), (Some("wait".into()), Arg::Bool(false))]),
            CronCall::Run {
                job: "nps".into(),
                dry_run: false,
                wait: false
            }
        );
        assert_eq!(
            run(vec![
                t("nps"),
                (None, Arg::Bool(true)),
                (None, Arg::Bool(false))
            ]),
            CronCall::Run {
                job: "nps".into(),
                dry_run: true,
                wait: false
            }
        );
        let err = CronCall::parse(
            "run",
            vec![t("nps"), (Some("wait".into()), Arg::Text("no".into()))],
        )
        .expect_err("not a bool");
        assert!(
            err.to_string().contains("wait must be true or false"),
            "{err}"
        );
    }
}
