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
}

fn default_catch_up() -> CatchUp {
    CatchUp::Once
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            catch_up: default_catch_up(),
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
    }
}
