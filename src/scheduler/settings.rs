//! The scheduler's server-wide settings: `[scheduler]` in `server.toml`.
//! Parsed strictly (`deny_unknown_fields`), so a typo is an error at start,
//! not a silent default.

use serde::Deserialize;

use crate::state::CatchUp;

/// `[scheduler]` in `server.toml`; every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// The missed-run policy of jobs that do not set their own
    /// (`-- catch_up:` or `catch_up :=`): `once` (one `catch-up` run at
    /// start) or `none`.
    #[serde(default = "default_catch_up")]
    pub catch_up: CatchUp,
    /// Keep `cron.job_run_records` of runs this many days old at most
    /// (purged at start and daily); run rows are kept. Unset: keep all.
    #[serde(default, deserialize_with = "positive_days")]
    pub record_retention_days: Option<u32>,
}

fn positive_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(d)? {
        Some(0) => Err(serde::de::Error::custom(
            "record_retention_days is at least 1; leave it out to keep every record",
        )),
        days => Ok(days),
    }
}

fn default_catch_up() -> CatchUp {
    CatchUp::Once
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            catch_up: default_catch_up(),
            record_retention_days: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_typos() {
        let c: SchedulerConfig = toml::from_str("").expect("empty");
        assert_eq!(c, SchedulerConfig::default());
        assert_eq!(c.catch_up, CatchUp::Once);
        let c: SchedulerConfig = toml::from_str("catch_up = \"none\"").expect("none");
        assert_eq!(c.catch_up, CatchUp::None);
        assert!(toml::from_str::<SchedulerConfig>("catch_up = \"twice\"").is_err());
        assert!(toml::from_str::<SchedulerConfig>("catchup = \"none\"").is_err());
        let c: SchedulerConfig = toml::from_str("record_retention_days = 30").expect("30");
        assert_eq!(c.record_retention_days, Some(30));
        let err = toml::from_str::<SchedulerConfig>("record_retention_days = 0").expect_err("0");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
