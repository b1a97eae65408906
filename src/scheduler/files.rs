//! Jobs as code: each `sql/*.sql` file whose header has `-- schedule:
//! <cron>` is a job named after the file. The header is the run of comment
//! lines at the top; `-- timezone:`, `-- retries:`, `-- timeout:`,
//! `-- delay:`, `-- min_interval:` and `-- catch_up:` are optional (see
//! [`super::options`]).

use std::path::Path;

use super::SchedulerError;
use super::options::set_option;
use super::schedule::parse_schedule;
use crate::state::JobOptions;

/// A job read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJob {
    pub name: String,
    /// For messages: `sql/nps_to_contact.sql`.
    pub path: String,
    pub schedule: String,
    pub timezone: String,
    /// The whole file: comments are kept, they document the job.
    pub command: String,
    pub options: JobOptions,
}

/// Read one file's text. `Ok(None)`: no `-- schedule:` header, so the file
/// is a saved statement, not a job.
pub fn parse_job_file(
    name: &str,
    path: &str,
    text: &str,
) -> Result<Option<FileJob>, SchedulerError> {
    let bad = |reason: String| SchedulerError::BadJobFile {
        path: path.to_string(),
        reason,
    };
    let mut schedule = None;
    let mut timezone = String::new();
    let mut options = JobOptions::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        match key.as_str() {
            "schedule" => schedule = Some(value.to_string()),
            "timezone" => timezone = value.to_string(),
            k => {
                // Other `-- word: text` lines are prose, not settings.
                set_option(&mut options, k, value).map_err(bad)?;
            }
        }
    }
    let Some(schedule) = schedule else {
        return Ok(None);
    };
    parse_schedule(&schedule, &timezone).map_err(|e| bad(e.to_string()))?;
    if !valid_job_name(name) {
        return Err(bad(format!(
            "'{name}' is not a job name: use letters, digits and _ in the file name"
        )));
    }
    Ok(Some(FileJob {
        name: name.to_string(),
        path: path.to_string(),
        schedule,
        timezone: if timezone.is_empty() {
            "UTC".into()
        } else {
            timezone
        },
        command: text.to_string(),
        options,
    }))
}

fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What the loop compares to notice edited, added or removed job files:
/// each `*.sql` file's name, size and modification time.
pub type Fingerprint = Vec<(String, u64, Option<std::time::SystemTime>)>;

/// `dir`'s [`Fingerprint`] (empty when it does not exist or cannot be
/// read; loading then says why).
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Fingerprint = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name().to_string_lossy().to_string(),
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every job in `dir` (`*.sql`, sorted by name). A missing directory has
/// no jobs.
pub fn load_dir(dir: &Path) -> Result<Vec<FileJob>, SchedulerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(SchedulerError::ReadJobs {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    let mut jobs = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| SchedulerError::ReadJobs {
            path: shown.clone(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Some(job) = parse_job_file(&name, &shown, &text)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_makes_a_job() {
        let text = "-- sql/nps.sql: push NPS\n-- schedule: 0 9 * * *\n-- timezone: Europe/Paris\n\nUPDATE x SET a = 1;\n-- schedule: ignored after the header\n";
        let job = parse_job_file("nps", "sql/nps.sql", text)
            .expect("parse")
            .expect("a job");
        assert_eq!(job.schedule, "0 9 * * *");
        assert_eq!(job.timezone, "Europe/Paris");
        assert_eq!(job.command, text);
    }

    #[test]
    fn no_schedule_is_not_a_job() {
        assert_eq!(
            parse_job_file("q", "sql/q.sql", "-- a saved query\nSELECT 1").expect("parse"),
            None
        );
    }

    #[test]
    fn bad_headers_name_the_file() {
        let err = parse_job_file("j", "sql/j.sql", "-- schedule: every day\nSELECT 1")
            .expect_err("bad cron");
        assert!(err.to_string().contains("sql/j.sql"), "{err}");
        let err = parse_job_file(
            "j",
            "sql/j.sql",
            "-- schedule: 0 9 * * *\n-- retries: many\n",
        )
        .expect_err("bad retries");
        assert!(err.to_string().contains("retries"), "{err}");
    }

    #[test]
    fn options_in_the_header() {
        let text = "-- schedule: 0 9 * * *\n-- retries: 2\n-- timeout: 10m\n-- delay: 0-10m\n-- min_interval: 2h\nSELECT 1";
        let job = parse_job_file("j", "sql/j.sql", text)
            .expect("parse")
            .expect("a job");
        assert_eq!(job.options.retries, 2);
        assert_eq!(job.options.timeout_secs, Some(600));
        assert_eq!(job.options.delay_secs, Some((0, 600)));
        assert_eq!(job.options.min_interval_secs, Some(7200));
    }

    #[test]
    fn missing_dir_has_no_jobs() {
        assert!(
            load_dir(Path::new("/nonexistent/sfsql/sql"))
                .expect("ok")
                .is_empty()
        );
    }
}
