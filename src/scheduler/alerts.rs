//! Alerts: a webhook POST with a Slack-compatible JSON body (`text`, and
//! `blocks` for Slack's layout) when a job's run fails, when its failed
//! records pass a percentage of the records it wrote, or when a bad login
//! pauses jobs. Configured as `[alerts]` in `server.toml`; the webhook URL
//! is a secret read from an environment variable, never logged nor stored.
//! A webhook that fails is logged (without the URL) and never fails a run.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{RunRow, RunStatus};

/// How long a webhook may take before it is given up (and logged).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack's limit for a section's text is 3000 characters.
const MAX_MESSAGE: usize = 1500;

/// What sends an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOn {
    /// A job's run failed (after its last retry).
    Failed,
    /// A bad login paused jobs until `sfsql login`.
    Paused,
    /// A run's failed records passed `failed_records_percent`.
    FailedRecords,
}

/// The webhook URL: a secret, so it never shows in `Debug` output.
#[derive(Clone)]
pub struct WebhookUrl(SecretString);

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookUrl(<secret>)")
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(WebhookUrl(SecretString::from(String::deserialize(d)?)))
    }
}

/// `[alerts]` in `server.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `"${SLACK_WEBHOOK_URL}"`: an environment variable, expanded when
    /// the catalog loads.
    pub webhook_url: WebhookUrl,
    #[serde(default = "default_on")]
    pub on: Vec<AlertOn>,
    /// With `failed_records` in `on`: alert when more than this percent
    /// of the records a run wrote failed.
    #[serde(default)]
    pub failed_records_percent: Option<f64>,
}

fn default_on() -> Vec<AlertOn> {
    vec![AlertOn::Failed, AlertOn::Paused]
}

impl AlertsConfig {
    /// Replace `${VAR}` in the URL with its value (`expand` is the
    /// catalog's); the URL must come from a variable and be http(s).
    /// Errors name the variable, never the value.
    pub fn resolve(
        &mut self,
        expand: impl Fn(&str) -> Result<String, String>,
    ) -> Result<(), String> {
        let written = self.webhook_url.0.expose_secret();
        if !written.trim_start().starts_with("${") {
            return Err(
                "[alerts] webhook_url must name an environment variable, e.g. \"${SLACK_WEBHOOK_URL}\": the URL is a secret"
                    .into(),
            );
        }
        let url = expand(written).map_err(|e| format!("[alerts] webhook_url: {e}"))?;
        match reqwest::Url::parse(&url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(format!(
                    "[alerts] webhook_url: the value of {} is not an http(s) URL",
                    written.trim()
                ));
            }
        }
        if self.on.contains(&AlertOn::FailedRecords) && self.failed_records_percent.is_none() {
            return Err(
                "[alerts] on has \"failed_records\": set failed_records_percent (e.g. 5)".into(),
            );
        }
        if let Some(p) = self.failed_records_percent
            && !(0.0..=100.0).contains(&p)
        {
            return Err("[alerts] failed_records_percent is between 0 and 100".into());
        }
        self.webhook_url = WebhookUrl(SecretString::from(url));
        Ok(())
    }
}

/// Why an alert goes out.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    Failed,
    /// Jobs paused until `sfsql login <connection>`.
    Paused {
        connection: String,
        jobs: Vec<String>,
    },
    FailedRecords {
        failed: i64,
        written: i64,
        percent: f64,
    },
}

/// Records a run wrote (or tried to): its failed ones are counted
/// against these.
fn written(run: &RunRow) -> (i64, i64) {
    let [_, updated, created, deleted, unknown, _, _, failed, _] = run.counts;
    (failed, updated + created + deleted + unknown + failed)
}

/// The alert `run` (finished) calls for under `config`, if any. One per
/// run: a pause says more than a failure, a failure more than its
/// records. `retrying`: another attempt is queued, so it is not the end.
pub fn alert_for(
    config: &AlertsConfig,
    run: &RunRow,
    retrying: bool,
    paused: Option<(&str, &[String])>,
) -> Option<Alert> {
    let on = |a| config.on.contains(&a);
    if let Some((connection, jobs)) = paused
        && !jobs.is_empty()
        && on(AlertOn::Paused)
    {
        return Some(Alert::Paused {
            connection: connection.to_string(),
            jobs: jobs.to_vec(),
        });
    }
    if run.status == RunStatus::Failed.as_str() {
        return (on(AlertOn::Failed) && !retrying).then_some(Alert::Failed);
    }
    let limit = config.failed_records_percent?;
    let (failed, written) = written(run);
    if !on(AlertOn::FailedRecords) || written == 0 || failed == 0 {
        return None;
    }
    let percent = failed as f64 * 100.0 / written as f64;
    (percent > limit).then_some(Alert::FailedRecords {
        failed,
        written,
        percent,
    })
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The Slack-compatible body: `text` (what notifications and plain
/// webhooks show) and `blocks` (Slack's layout of the same facts).
pub fn body(alert: &Alert, run: &RunRow, limit: Option<f64>) -> Value {
    let job = run.jobname.as_deref().unwrap_or("(no job)");
    let message = truncate(run.return_message.as_deref().unwrap_or(""));
    let headline = match alert {
        Alert::Failed => format!(
            "sfsql job {job}: run {} {} (attempt {}): {message}",
            run.runid, run.status, run.attempt
        ),
        Alert::Paused { connection, jobs } => format!(
            "sfsql job {job}: run {} {}: connection '{connection}' needs `sfsql login {connection}`; paused until then: {}. {message}",
            run.runid,
            run.status,
            jobs.join(", ")
        ),
        Alert::FailedRecords {
            failed,
            written,
            percent,
        } => format!(
            "sfsql job {job}: run {} {} with {failed} of {written} records failed ({percent:.1}%, over {}%): {message}",
            run.runid,
            run.status,
            limit.unwrap_or_default()
        ),
    };
    let [
        matched,
        updated,
        created,
        deleted,
        unknown,
        unchanged,
        skipped,
        failed,
        api_calls,
    ] = run.counts;
    let counts = format!(
        "records: {matched} matched, {updated} updated, {created} created, {deleted} deleted, {unchanged} unchanged, {skipped} skipped, {failed} failed, {unknown} unknown; {api_calls} API calls"
    );
    let details = format!(
        "SELECT * FROM cron.job_run_records WHERE runid = {} AND status = 'failed'",
        run.runid
    );
    json!({
        "text": format!("{headline}\n{counts}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Job*\n{job}")},
                {"type": "mrkdwn", "text": format!("*Run*\n{}", run.runid)},
                {"type": "mrkdwn", "text": format!("*Status*\n{}", run.status)},
                {"type": "mrkdwn", "text": format!("*Trigger*\n{}", run.trigger)},
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": counts},
                {"type": "mrkdwn", "text": format!("details: `{details}`")},
            ]},
        ],
    })
}

/// Sends alerts to the configured webhook.
pub struct Alerter {
    config: AlertsConfig,
    http: reqwest::Client,
}

impl Alerter {
    pub fn new(config: AlertsConfig) -> Alerter {
        Alerter {
            config,
            http: reqwest::Client::new(),
        }
    }

    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    /// POST the alert; a failure is logged without the URL and otherwise
    /// ignored.
    pub async fn send(&self, alert: &Alert, run: &RunRow) {
        let body = body(alert, run, self.config.failed_records_percent);
        let job = run.jobname.as_deref().unwrap_or_default();
        let sent = self
            .http
            .post(self.config.webhook_url.0.expose_secret())
            .timeout(SEND_TIMEOUT)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%job, runid = run.runid, "alert sent")
            }
            Ok(r) => tracing::warn!(
                %job, runid = run.runid, status = %r.status(),
                "alert webhook refused the alert ([alerts] webhook_url)"
            ),
            Err(e) => tracing::warn!(
                %job, runid = run.runid, error = %e.without_url(),
                "alert webhook failed ([alerts] webhook_url)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn config(on: Vec<AlertOn>, percent: Option<f64>) -> AlertsConfig {
        AlertsConfig {
            webhook_url: WebhookUrl(SecretString::from("${HOOK}".to_string())),
            on,
            failed_records_percent: percent,
        }
    }

    fn run(status: RunStatus, updated: i64, failed: i64) -> RunRow {
        RunRow {
            runid: 12,
            jobid: Some(3),
            jobname: Some("nps".into()),
            username: "demo".into(),
            command: "UPDATE ...".into(),
            trigger: "schedule".into(),
            status: status.as_str().into(),
            return_message: Some("UPDATE 110".into()),
            job_pid: None,
            dry_run: false,
            start_time: Utc::now(),
            end_time: None,
            sobject: Some("sandbox.contact".into()),
            attempt: 1,
            not_before: None,
            counts: [updated + failed, updated, 0, 0, 0, 0, 0, failed, 2],
        }
    }

    #[test]
    fn which_runs_alert() {
        let all = config(
            vec![AlertOn::Failed, AlertOn::Paused, AlertOn::FailedRecords],
            Some(5.0),
        );
        let ok = run(RunStatus::Succeeded, 120, 0);
        assert_eq!(alert_for(&all, &ok, false, None), None);
        let bad = run(RunStatus::Failed, 0, 0);
        assert_eq!(alert_for(&all, &bad, false, None), Some(Alert::Failed));
        // A retry is queued: not the end yet.
        assert_eq!(alert_for(&all, &bad, true, None), None);
        let jobs = vec!["nps".to_string(), "tasks".to_string()];
        assert_eq!(
            alert_for(&all, &bad, false, Some(("production", &jobs))),
            Some(Alert::Paused {
                connection: "production".into(),
                jobs: jobs.clone()
            })
        );
        // 10 of 120 (8.3%) is over 5%; 5 of 120 (4.2%) is not.
        let Some(Alert::FailedRecords {
            failed, written, ..
        }) = alert_for(&all, &run(RunStatus::Succeeded, 110, 10), false, None)
        else {
            panic!("a failed-records alert")
        };
        assert_eq!((failed, written), (10, 120));
        assert_eq!(
            alert_for(&all, &run(RunStatus::Succeeded, 115, 5), false, None),
            None
        );
        // Only what `on` names.
        let failed_only = config(vec![AlertOn::Failed], Some(5.0));
        assert_eq!(
            alert_for(
                &failed_only,
                &run(RunStatus::Succeeded, 110, 10),
                false,
                None
            ),
            None
        );
        assert_eq!(
            alert_for(&failed_only, &bad, false, Some(("production", &jobs))),
            Some(Alert::Failed)
        );
    }

    #[test]
    fn the_body_names_job_run_status_message_and_counts() {
        let r = run(RunStatus::Succeeded, 110, 10);
        let alert = Alert::FailedRecords {
            failed: 10,
            written: 120,
            percent: 8.33,
        };
        let b = body(&alert, &r, Some(5.0));
        let text = b["text"].as_str().expect("text");
        for needle in [
            "nps",
            "run 12",
            "succeeded",
            "10 of 120 records failed (8.3%, over 5%)",
            "UPDATE 110",
            "110 updated",
            "10 failed",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        assert_eq!(b["blocks"][0]["type"], "section");
        assert_eq!(b["blocks"][1]["fields"][1]["text"], "*Run*\n12");
    }

    #[test]
    fn the_url_comes_from_the_environment_and_stays_secret() {
        let mut c = config(vec![AlertOn::Failed], None);
        let url = "https://hooks.slack.com/services/T0/B0/s3cr3t";
        c.resolve(|s| Ok(s.replace("${HOOK}", url))).expect("ok");
        assert_eq!(c.webhook_url.0.expose_secret(), url);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let mut literal = config(vec![AlertOn::Failed], None);
        literal.webhook_url = WebhookUrl(SecretString::from(url.to_string()));
        let err = literal
            .resolve(|s| Ok(s.into()))
            .expect_err("a literal URL");
        assert!(err.contains("environment variable"), "{err}");
        let mut unset = config(vec![AlertOn::Failed], None);
        let err = unset
            .resolve(|_| Err("environment variable HOOK is not set".into()))
            .expect_err("unset");
        assert!(err.contains("HOOK is not set"), "{err}");
        let mut not_url = config(vec![AlertOn::Failed], None);
        let err = not_url
            .resolve(|_| Ok("s3cr3t".into()))
            .expect_err("not a URL");
        assert!(!err.contains("s3cr3t") && err.contains("${HOOK}"), "{err}");
        let mut no_limit = config(vec![AlertOn::FailedRecords], None);
        assert!(no_limit.resolve(|_| Ok(url.into())).is_err());
    }
}
