//! Per-connection `sfsql.*` settings, kept in the pgwire client's metadata
//! so that one connection's `SET` never changes another's.

use std::collections::HashMap;

use thiserror::Error;

use crate::dml::{DmlOptions, MatchPolicy};

pub const DRY_RUN: &str = "sfsql.dry_run";
pub const ON_MULTIPLE_MATCHES: &str = "sfsql.on_multiple_matches";
pub const BULK_THRESHOLD: &str = "sfsql.bulk_threshold";

/// Every `sfsql.*` setting with its default and what it does.
pub const ALL: &[(&str, &str, &str)] = &[
    (
        DRY_RUN,
        "off",
        "on: DML returns its change set as rows and writes nothing",
    ),
    (
        ON_MULTIPLE_MATCHES,
        "error",
        "error | all: what UPDATE does when one source key matches several records",
    ),
    (
        BULK_THRESHOLD,
        "2000",
        "writes of more records than this go through Bulk API 2.0 ingest instead of sObject Collections",
    ),
];

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("unrecognized configuration parameter \"{0}\"; sfsql knows: {known}", known = ALL.iter().map(|s| s.0).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("invalid value for parameter \"{name}\": \"{value}\"; expected {expected}")]
    InvalidValue {
        name: String,
        value: String,
        expected: &'static str,
    },
}

pub struct Settings;

impl Settings {
    pub fn is_ours(name: &str) -> bool {
        name.to_ascii_lowercase().starts_with("sfsql.")
    }

    /// Validate and normalise a value for `name`.
    pub fn normalise(name: &str, value: &str) -> Result<(String, String), SettingsError> {
        let name = name.to_ascii_lowercase();
        let v = value.trim().trim_matches('\'').to_ascii_lowercase();
        let normalised = match name.as_str() {
            DRY_RUN => match v.as_str() {
                "on" | "true" | "1" | "yes" => "on",
                "off" | "false" | "0" | "no" => "off",
                _ => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "on or off",
                    });
                }
            }
            .to_string(),
            ON_MULTIPLE_MATCHES => match MatchPolicy::parse(&v) {
                Some(_) => v,
                None => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "error or all",
                    });
                }
            },
            BULK_THRESHOLD => match v.parse::<usize>() {
                Ok(n) => n.to_string(),
                Err(_) => {
                    return Err(SettingsError::InvalidValue {
                        name,
                        value: value.to_string(),
                        expected: "a number of records, 0 or more",
                    });
                }
            },
            _ => return Err(SettingsError::Unknown(name)),
        };
        Ok((name, normalised))
    }

    pub fn get(metadata: &HashMap<String, String>, name: &str) -> Result<String, SettingsError> {
        let name = name.to_ascii_lowercase();
        let default = ALL
            .iter()
            .find(|s| s.0 == name)
            .map(|s| s.1)
            .ok_or_else(|| SettingsError::Unknown(name.clone()))?;
        Ok(metadata
            .get(&name)
            .cloned()
            .unwrap_or_else(|| default.to_string()))
    }

    pub fn dml_options(metadata: &HashMap<String, String>) -> DmlOptions {
        let dry_run = metadata.get(DRY_RUN).is_some_and(|v| v == "on");
        let on_multiple_matches = metadata
            .get(ON_MULTIPLE_MATCHES)
            .and_then(|v| MatchPolicy::parse(v))
            .unwrap_or(MatchPolicy::Error);
        let bulk_threshold = metadata
            .get(BULK_THRESHOLD)
            .and_then(|v| v.parse().ok())
            .unwrap_or(crate::dml::DEFAULT_BULK_THRESHOLD);
        DmlOptions {
            dry_run,
            on_multiple_matches,
            bulk_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_values() {
        assert_eq!(
            Settings::normalise("SFSQL.DRY_RUN", "ON").unwrap(),
            ("sfsql.dry_run".into(), "on".into())
        );
        assert!(Settings::normalise("sfsql.dry_run", "maybe").is_err());
        assert!(
            Settings::normalise("sfsql.dryrun", "on")
                .unwrap_err()
                .to_string()
                .contains("sfsql.dry_run")
        );
        let mut m = HashMap::new();
        assert!(!Settings::dml_options(&m).dry_run);
        m.insert(DRY_RUN.to_string(), "on".to_string());
        assert!(Settings::dml_options(&m).dry_run);
    }
}
